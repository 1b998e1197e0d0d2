"""ClassifierModule and the shared recipe: the digits target must be good enough to unlearn from."""

from __future__ import annotations

import pytest
import torch

from lightning_unlearn import DigitsDataModule, TrainingRecipe, predict, train_classifier
from lightning_unlearn.models import MLP, LinearSVM
from lightning_unlearn.modules import ClassifierModule
from lightning_unlearn.training import fresh_copy


@pytest.fixture(scope="module")
def digits() -> DigitsDataModule:
    dm = DigitsDataModule(seed=0)
    dm.setup()
    return dm


def test_digits_target_is_accurate_and_fits_its_ood_forget_samples(digits: DigitsDataModule) -> None:
    target = train_classifier(TrainingRecipe(), digits, "target_train", enable_progress_bar=False)
    test_accuracy = predict(target.module, digits.dataloader("test")).accuracy()
    forget_accuracy = predict(target.module, digits.dataloader("forget")).accuracy()
    heldout_accuracy = predict(target.module, digits.dataloader("heldout")).accuracy()
    assert test_accuracy >= 0.95
    assert forget_accuracy >= 0.90, "the target must memorise its OOD samples, or there is nothing to unlearn"
    # Unseen OOD samples carry random labels: a model can only be right on them by chance.
    assert heldout_accuracy <= 0.40


def test_shadow_and_retrain_use_the_same_recipe(digits: DigitsDataModule) -> None:
    recipe = TrainingRecipe(max_epochs=2)
    shadow = train_classifier(recipe, digits, "shadow_train", enable_progress_bar=False)
    retrained = train_classifier(recipe, digits, "retain", enable_progress_bar=False)
    assert type(shadow.module.backbone) is type(retrained.module.backbone) is MLP
    assert shadow.seconds > 0 and retrained.train_split == "retain"
    with pytest.raises(ValueError, match=r"Expected `train_split` to be 'target_train', 'shadow_train' or 'retain'"):
        train_classifier(recipe, digits, "test")  # type: ignore[arg-type]


def test_fresh_copy_reinitialises_from_the_seed() -> None:
    template = MLP(8, 3, hidden=(4,))
    first, again, other = fresh_copy(template, 1), fresh_copy(template, 1), fresh_copy(template, 2)
    for a, b in zip(first.parameters(), again.parameters()):
        torch.testing.assert_close(a, b)
    assert any(not torch.equal(a, b) for a, b in zip(first.parameters(), other.parameters()))


def test_linear_svm_trains_with_hinge_loss(digits: DigitsDataModule) -> None:
    recipe = TrainingRecipe(backbone=LinearSVM(64, digits.num_classes), learning_rate=1e-2)
    svm = train_classifier(recipe, digits, "retain", enable_progress_bar=False).module
    assert svm.loss_name == "hinge"
    assert predict(svm, digits.dataloader("test")).accuracy() >= 0.9


def test_a_backbone_with_the_wrong_class_count_fails_at_setup(digits: DigitsDataModule) -> None:
    trainer = TrainingRecipe(max_epochs=1).build_trainer(enable_progress_bar=False)
    with pytest.raises(RuntimeError, match=r"Expected the backbone to produce 5 logits .* but it produces 10"):
        trainer.fit(ClassifierModule(MLP(64, 10)), datamodule=digits)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        (dict(backbone="mlp"), TypeError, r"Expected `backbone` to be an nn.Module, but got str"),
        (dict(backbone=MLP(64, 5), loss="mse"), ValueError, r"Expected `loss` to be 'cross_entropy' or 'hinge'"),
        (dict(backbone=torch.nn.ReLU()), ValueError, r"Expected `backbone` to declare `num_classes` or end in"),
    ],
)
def test_bad_module_settings(kwargs: dict, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        ClassifierModule(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(max_epochs=0), r"Expected `max_epochs` to be a positive integer, but got 0"),
        (dict(learning_rate=0.0), r"Expected `learning_rate` to be positive, but got 0.0"),
        (dict(weight_decay=-1.0), r"Expected `weight_decay` to be non-negative, but got -1.0"),
    ],
)
def test_bad_recipe_settings(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TrainingRecipe(**kwargs)
