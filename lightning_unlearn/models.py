"""Classifier backbones used by the papers (Forsaken Table X; FNN §IV).

Each backbone is a plain ``nn.Module`` mapping a batch of inputs to logits. The sizes are
explicit constructor arguments so a YAML config says exactly what is built.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from torch import nn

from lightning_unlearn.checks import check_in_range, check_integer

__all__ = ["MLP", "VGG16", "LinearSVM", "LogisticRegression", "LossName", "SmallCNN", "count_parameters"]

LossName = Literal["cross_entropy", "hinge"]


class MLP(nn.Sequential):
    """A fully connected network: ``Flatten → (Linear → ReLU → Dropout)* → Linear``.

    Args:
        in_features: size of one flattened input (64 for digits, 784 for MNIST).
        num_classes: number of output logits.
        hidden: width of each hidden layer.
        dropout: dropout probability after each hidden layer.

    Example:
        >>> MLP(64, 10, hidden=(32,))(torch.zeros(2, 64)).shape
        torch.Size([2, 10])
    """

    default_loss: LossName = "cross_entropy"

    def __init__(
        self, in_features: int, num_classes: int, hidden: Sequence[int] = (256, 128), dropout: float = 0.0
    ) -> None:
        check_integer("in_features", in_features)
        check_integer("num_classes", num_classes)
        check_in_range("dropout", dropout, 0.0, 1.0, include_high=False)
        layers: list[nn.Module] = [nn.Flatten()]
        width = in_features
        for size in hidden:
            layers += [nn.Linear(width, check_integer("hidden", size)), nn.ReLU()]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = size
        layers.append(nn.Linear(width, num_classes))
        super().__init__(*layers)
        self.num_classes = num_classes


class SmallCNN(nn.Module):
    """Two convolution blocks and a fully connected head (the papers' small image CNN).

    ``Conv(32) → ReLU → MaxPool → Conv(64) → ReLU → MaxPool → Flatten → FC(128) → ReLU → FC``.
    Flat inputs (such as digits' 64 features) are reshaped to ``(in_channels, image_size,
    image_size)`` first.

    Args:
        in_channels: image channels (1 for grayscale, 3 for RGB).
        num_classes: number of output logits.
        image_size: height and width of the square input images.
        hidden: width of the fully connected layer.
    """

    default_loss: LossName = "cross_entropy"

    def __init__(self, in_channels: int, num_classes: int, image_size: int, hidden: int = 128) -> None:
        super().__init__()
        check_integer("in_channels", in_channels)
        check_integer("num_classes", num_classes)
        check_integer("image_size", image_size)
        if image_size < 4:
            raise ValueError(f"Expected `image_size` to be at least 4 (two 2×2 poolings), but got {image_size}.")
        self.in_channels, self.image_size, self.num_classes = in_channels, image_size, num_classes
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 32, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        side = image_size // 4
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(64 * side * side, check_integer("hidden", hidden)),
            nn.ReLU(),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2:
            x = x.view(x.shape[0], self.in_channels, self.image_size, self.image_size)
        return self.classifier(self.features(x))


class VGG16(nn.Module):
    """torchvision's VGG-16 (with batch norm) adapted to 32×32 inputs, as in the Forsaken paper.

    At 32×32 the five poolings leave a 1×1×512 map, so the adaptive pooling is dropped and
    the classifier is ``512 → 512 → 512 → num_classes`` instead of ImageNet's 4,096-wide head.
    Weights are initialised from scratch (no download).

    Args:
        num_classes: number of output logits.
        in_channels: image channels; grayscale inputs get a first convolution of 1 channel.
        dropout: dropout in the classifier head.
    """

    default_loss: LossName = "cross_entropy"

    def __init__(self, num_classes: int, in_channels: int = 3, dropout: float = 0.5) -> None:
        super().__init__()
        from torchvision.models import vgg16_bn

        check_integer("num_classes", num_classes)
        check_integer("in_channels", in_channels)
        self.num_classes = num_classes
        features = vgg16_bn(weights=None).features
        if in_channels != 3:
            features[0] = nn.Conv2d(in_channels, 64, kernel_size=3, padding=1)
        self.features = features
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(512, 512),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(512, 512),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(512, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] < 32 or x.shape[-2] < 32:
            raise ValueError(f"Expected VGG16 inputs of at least 32×32 pixels, but got {tuple(x.shape[-2:])}.")
        features = self.features(x)
        if features.shape[-1] != 1 or features.shape[-2] != 1:
            features = nn.functional.adaptive_avg_pool2d(features, 1)
        return self.classifier(features)


class LogisticRegression(nn.Sequential):
    """Multinomial logistic regression: ``Flatten → Linear`` trained with cross-entropy.

    Args:
        in_features: size of one flattened input.
        num_classes: number of output logits.
    """

    default_loss: LossName = "cross_entropy"

    def __init__(self, in_features: int, num_classes: int) -> None:
        linear = nn.Linear(check_integer("in_features", in_features), check_integer("num_classes", num_classes))
        super().__init__(nn.Flatten(), linear)
        self.num_classes = num_classes


class LinearSVM(LogisticRegression):
    """A linear support-vector machine: ``Flatten → Linear`` trained with the multi-class hinge
    loss (Crammer–Singer style margins, ``torch.nn.functional.multi_margin_loss``).

    Its scores are margins, not probabilities; evaluation reads them through a softmax like
    any classifier's logits.

    Args:
        in_features: size of one flattened input.
        num_classes: number of output scores.
    """

    default_loss: LossName = "hinge"


def count_parameters(module: nn.Module, trainable_only: bool = False) -> int:
    """How many scalar parameters ``module`` holds."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)
