"""Backbones: shapes, losses, and clear errors."""

from __future__ import annotations

import pytest
import torch

from lightning_unlearn.models import MLP, VGG16, LinearSVM, LogisticRegression, SmallCNN, count_parameters


@pytest.mark.parametrize(
    ("backbone", "inputs"),
    [
        (MLP(64, 5), torch.zeros(3, 64)),
        (MLP(784, 10, hidden=(32, 16), dropout=0.2), torch.zeros(3, 1, 28, 28)),
        (SmallCNN(1, 10, image_size=8), torch.zeros(3, 64)),
        (SmallCNN(3, 10, image_size=32), torch.zeros(3, 3, 32, 32)),
        (LogisticRegression(64, 10), torch.zeros(3, 64)),
        (LinearSVM(64, 10), torch.zeros(3, 64)),
    ],
)
def test_backbones_map_inputs_to_logits(backbone: torch.nn.Module, inputs: torch.Tensor) -> None:
    logits = backbone(inputs)
    assert logits.shape == (3, backbone.num_classes)
    assert count_parameters(backbone) > 0


def test_vgg16_runs_on_32x32_inputs() -> None:
    model = VGG16(num_classes=10).eval()
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 10)
    gray = VGG16(num_classes=4, in_channels=1).eval()
    assert gray(torch.zeros(1, 1, 32, 32)).shape == (1, 4)
    with pytest.raises(ValueError, match=r"Expected VGG16 inputs of at least 32×32 pixels, but got \(28, 28\)"):
        model(torch.zeros(1, 3, 28, 28))


def test_default_losses() -> None:
    assert LinearSVM(4, 2).default_loss == "hinge"
    assert LogisticRegression(4, 2).default_loss == "cross_entropy"


@pytest.mark.parametrize(
    ("build", "error", "message"),
    [
        (lambda: MLP(0, 5), ValueError, r"Expected `in_features` to be a positive integer, but got 0"),
        (lambda: MLP(64, 5, dropout=1.0), ValueError, r"Expected `dropout` to be in \[0, 1\), but got 1.0"),
        (lambda: MLP(64, 2.0), TypeError, r"Expected `num_classes` to be an integer, but got float"),
        (lambda: SmallCNN(1, 10, image_size=2), ValueError, r"Expected `image_size` to be at least 4"),
        (
            lambda: LogisticRegression(64, -1),
            ValueError,
            r"Expected `num_classes` to be a positive integer, but got -1",
        ),
    ],
)
def test_bad_backbone_settings(build: object, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        build()  # type: ignore[operator]
