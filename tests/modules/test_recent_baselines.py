"""Random labels, SalUn, SCRUB and ℓ1-sparse: direction on digits (forget accuracy and MIA drop) and pinned errors."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any

import pytest
import torch
from torch import nn

from lightning_unlearn import DigitsDataModule, TrainingRecipe, predict, train_classifier
from lightning_unlearn.metrics import mia_score_from_logits
from lightning_unlearn.models import MLP
from lightning_unlearn.modules import (
    L1SparseBaseline,
    RandomLabelsBaseline,
    SalUnBaseline,
    SCRUBBaseline,
    UnlearningBaseline,
    run_baseline,
)
from lightning_unlearn.modules.random_labels import random_other_labels
from lightning_unlearn.modules.salun import saliency_mask

QUIET: dict[str, Any] = {"enable_progress_bar": False, "enable_model_summary": False}


@contextmanager
def one_torch_thread() -> Iterator[None]:
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@dataclass
class Figures:
    forget_accuracy: float
    mia: float


@dataclass
class Scenario:
    datamodule: DigitsDataModule
    target: nn.Module
    original: Figures


def _figures(model: nn.Module, dm: DigitsDataModule) -> Figures:
    # For the test only: the MIA on forget vs `heldout` (no method reads it).
    forget, heldout = predict(model, dm.dataloader("forget")), predict(model, dm.dataloader("heldout"))
    mia = mia_score_from_logits(forget.logits, forget.targets, heldout.logits, heldout.targets, seed=0)
    return Figures(forget.accuracy(), mia.score)


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    """The digits OOD scenario's target with the pipeline's recipe (60 epochs of Adam), trained once."""
    dm = DigitsDataModule()
    dm.setup()
    with one_torch_thread():
        target = train_classifier(TrainingRecipe(), dm, "target_train", **QUIET).module.backbone
    return Scenario(dm, target, _figures(target, dm))


#: The settings of configs/experiments/digits/ood_all_baselines.yaml (chosen on the validation pair).
DIGITS_SETTINGS: dict[str, Callable[[nn.Module], UnlearningBaseline]] = {
    "random_labels": lambda target: RandomLabelsBaseline(target),
    "salun": lambda target: SalUnBaseline(target),
    "scrub": lambda target: SCRUBBaseline(
        target,
        max_epochs=8,
        optimizer=partial(torch.optim.SGD, lr=0.01, momentum=0.9, weight_decay=5e-4),
    ),
    "scrub_rewind": lambda target: SCRUBBaseline(
        target,
        max_epochs=8,
        rewind=True,
        optimizer=partial(torch.optim.SGD, lr=0.01, momentum=0.9, weight_decay=5e-4),
    ),
    "l1_sparse": lambda target: L1SparseBaseline(target, l1_weight=0.05),
}


@pytest.mark.parametrize("method", list(DIGITS_SETTINGS))
def test_forget_accuracy_and_mia_drop_from_the_originals(scenario: Scenario, method: str) -> None:
    with one_torch_thread():
        run = run_baseline(DIGITS_SETTINGS[method](scenario.target), scenario.datamodule)
    after = _figures(run.model, scenario.datamodule)
    assert after.forget_accuracy < scenario.original.forget_accuracy - 0.2
    assert after.mia < scenario.original.mia - 0.1
    assert predict(run.model, scenario.datamodule.dataloader("validation")).accuracy() >= 0.8


def test_random_labels_are_wrong_and_train_on_retain_and_forget(scenario: Scenario, attach: Any) -> None:
    baseline = RandomLabelsBaseline(scenario.target, seed=3)
    attach(baseline, scenario.datamodule)
    labels = baseline.forget_labels()
    assert bool((labels != scenario.datamodule.dataset("forget").labels).all())
    assert torch.equal(labels, baseline.forget_labels())  # seeded
    loader = baseline.train_dataloader()
    seen = {int(i) for batch in loader for i in batch[2]}
    dm = scenario.datamodule
    assert seen == set(dm.splits["retain"].indices.tolist()) | set(dm.splits["forget"].indices.tolist())
    new = random_other_labels(torch.zeros(1000, dtype=torch.long), 5, torch.Generator().manual_seed(0))
    assert set(new.tolist()) == {1, 2, 3, 4}


def test_salun_moves_only_the_salient_weights(scenario: Scenario) -> None:
    salun = SalUnBaseline(scenario.target, max_epochs=2, saliency_ratio=0.3)
    with one_torch_thread():
        model = run_baseline(salun, scenario.datamodule).model
    assert salun.salient_share() == pytest.approx(0.3, abs=1e-4)
    original = dict(scenario.target.named_parameters())
    moved = 0
    for name, p in model.named_parameters():
        frozen = ~salun.mask[name]
        assert torch.equal(p[frozen], original[name].detach()[frozen])
        moved += int((p[salun.mask[name]] != original[name].detach()[salun.mask[name]]).sum())
    assert moved > 0


def test_saliency_mask_ranks_every_layer_together() -> None:
    mask = saliency_mask({"a": torch.tensor([[5.0, 1.0]]), "b": torch.tensor([4.0, -6.0, 0.5])}, 0.6)
    assert mask["a"].tolist() == [[True, False]] and mask["b"].tolist() == [True, True, False]


def test_scrub_rewinds_to_the_epoch_closest_to_the_reference_error(scenario: Scenario) -> None:
    scrub = SCRUBBaseline(
        scenario.target,
        max_epochs=4,
        max_steps=2,
        rewind=True,
        optimizer=partial(torch.optim.SGD, lr=0.01, momentum=0.9),
    )
    with one_torch_thread():
        model = run_baseline(scrub, scenario.datamodule).model
    assert scrub.rewound_to is not None and 0 <= scrub.rewound_to < 4
    error = 1.0 - predict(model, scenario.datamodule.dataloader("forget")).accuracy()
    errors = []
    for snapshot in scrub._snapshots:
        probe = SCRUBBaseline(scenario.target)
        probe.model.load_state_dict(snapshot)
        errors.append(1.0 - predict(probe.model, scenario.datamodule.dataloader("forget")).accuracy())
    gaps = [abs(e - scrub.reference_error) for e in errors]
    assert abs(error - scrub.reference_error) == pytest.approx(min(gaps))


def test_scrub_with_the_papers_small_learning_rate_stays_near_the_teacher(scenario: Scenario) -> None:
    with one_torch_thread():
        model = run_baseline(SCRUBBaseline(scenario.target), scenario.datamodule).model
    after = _figures(model, scenario.datamodule)
    assert after.forget_accuracy > scenario.original.forget_accuracy - 0.1  # why the digits config raises lr


def test_l1_weight_decays_linearly_to_zero() -> None:
    baseline = L1SparseBaseline(MLP(64, 5), max_epochs=5, l1_weight=0.1)
    assert [round(baseline.l1_weight_at(t), 4) for t in range(5)] == [0.1, 0.08, 0.06, 0.04, 0.02]
    assert baseline.l1_weight_at(2, epochs=4) == pytest.approx(0.05)


def test_bad_settings_are_rejected() -> None:
    target = MLP(64, 5)
    with pytest.raises(ValueError, match=re.escape("Expected `saliency_ratio` (the share of weights updated) to be")):
        SalUnBaseline(target, saliency_ratio=0.0)
    with pytest.raises(ValueError, match=re.escape("to be in (0, 1], but got 1.5.")):
        SalUnBaseline(target, saliency_ratio=1.5)
    with pytest.raises(TypeError, match=re.escape("Expected `saliency_ratio` to be a number, but got str.")):
        SalUnBaseline(target, saliency_ratio="half")  # type: ignore[arg-type]
    with pytest.raises(
        ValueError,
        match=re.escape(
            "Expected `max_steps` (epochs with a max pass over forget) to be between 0 and `max_epochs` (3), but got 4."
        ),
    ):
        SCRUBBaseline(target, max_steps=4)
    with pytest.raises(ValueError, match=re.escape("Expected `temperature` (T) to be positive, but got 0.")):
        SCRUBBaseline(target, temperature=0)
    with pytest.raises(
        ValueError, match=re.escape("Expected `retain_divergence_weight` to be non-negative, but got -1.")
    ):
        SCRUBBaseline(target, retain_divergence_weight=-1)
    with pytest.raises(
        ValueError, match=re.escape("Expected `forget_batch_size` to be a positive integer, but got 0.")
    ):
        SCRUBBaseline(target, forget_batch_size=0)
    with pytest.raises(TypeError, match=re.escape("Expected `rewind` to be a boolean, but got str.")):
        SCRUBBaseline(target, rewind="yes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=re.escape("Expected `l1_weight` (γ) to be non-negative, but got -0.1.")):
        L1SparseBaseline(target, l1_weight=-0.1)
    with pytest.raises(ValueError, match=re.escape("Expected `max_epochs` to be a positive integer, but got 0.")):
        RandomLabelsBaseline(target, max_epochs=0)
