"""Baselines: retraining, SMU (exact on a hand-checked SGD run), fine-tuning, NegGrad, NegGrad+, errors."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any

import lightning as L
import numpy as np
import pytest
import torch
from lightning.pytorch.callbacks import Callback
from torch import nn
from torch.utils.data import DataLoader, Subset

from lightning_unlearn import DigitsDataModule, TrainingRecipe, predict, train_classifier
from lightning_unlearn.models import MLP, LogisticRegression
from lightning_unlearn.modules import ClassifierModule
from lightning_unlearn.modules.baselines import (
    FinetuneBaseline,
    ForgetGradientRecorder,
    NegGradBaseline,
    NegGradPlusBaseline,
    RetrainBaseline,
    SMUBaseline,
    UnlearningBaseline,
    run_baseline,
)

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
class Scenario:
    datamodule: DigitsDataModule
    recipe: TrainingRecipe
    target: ClassifierModule
    recorder: ForgetGradientRecorder


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    """The digits OOD scenario's target (30 epochs of Adam), trained once with the SMU recorder attached."""
    dm = DigitsDataModule()
    dm.setup()
    recipe = TrainingRecipe(max_epochs=30)
    recorder = ForgetGradientRecorder(dm.splits["forget"].indices)
    with one_torch_thread():
        target = train_classifier(recipe, dm, "target_train", callbacks=[recorder], **QUIET).module
    return Scenario(dm, recipe, target, recorder)


class SeenIndices(Callback):
    """Collects the global indices of every training batch."""

    def __init__(self) -> None:
        self.seen: set[int] = set()

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        self.seen.update(int(i) for i in batch[2])


def _accuracy(model: nn.Module, dm: DigitsDataModule, split: str) -> float:
    return predict(model, dm.dataloader(split)).accuracy()


def _parameters(model: nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in model.parameters()])


# ---------------------------------------------------------------------------- retain-only baselines
@pytest.mark.parametrize("method", ["retrain", "finetune"])
def test_retrain_and_finetune_train_on_retain_only(scenario: Scenario, method: str) -> None:
    dm, target = scenario.datamodule, scenario.target
    spy = SeenIndices()
    baseline: UnlearningBaseline = (
        RetrainBaseline(target, recipe=scenario.recipe) if method == "retrain" else FinetuneBaseline(target)
    )
    with one_torch_thread():
        model, seconds = run_baseline(baseline, dm, callbacks=[spy])
    assert spy.seen == set(dm.splits["retain"].indices.tolist())  # every retain sample, never a forget sample
    assert not spy.seen & set(dm.splits["forget"].indices.tolist())
    assert seconds > 0 and not isinstance(model, L.LightningModule)
    assert type(model) is type(target.backbone)
    assert _accuracy(model, dm, "test") >= 0.9
    if method == "retrain":
        # Trained from scratch without the forget set: the OOD samples' random labels are not recalled.
        assert baseline.max_epochs == scenario.recipe.max_epochs
        assert _accuracy(model, dm, "forget") < 0.5 < _accuracy(target, dm, "forget")
    assert not torch.equal(_parameters(model), _parameters(target.backbone))
    assert _parameters(target.backbone).equal(_parameters(scenario.target.backbone))  # the target is not modified


def test_neggrad_lowers_forget_accuracy_and_sees_only_forget(scenario: Scenario) -> None:
    dm = scenario.datamodule
    spy = SeenIndices()
    with one_torch_thread():
        model, _ = run_baseline(NegGradBaseline(scenario.target), dm, callbacks=[spy])
    assert spy.seen == set(dm.splits["forget"].indices.tolist())
    before, after = _accuracy(scenario.target, dm, "forget"), _accuracy(model, dm, "forget")
    assert before > 0.8 and after < before - 0.3


def test_neggrad_plus_lowers_forget_accuracy_and_keeps_test_accuracy(scenario: Scenario) -> None:
    dm = scenario.datamodule
    with one_torch_thread():
        model, _ = run_baseline(NegGradPlusBaseline(scenario.target, retain_weight=0.9), dm)
    assert _accuracy(model, dm, "forget") < _accuracy(scenario.target, dm, "forget") - 0.1
    assert _accuracy(model, dm, "test") >= 0.9


def test_evaluation_logs_the_methods_figures_outside_the_timer(scenario: Scenario) -> None:
    baseline = FinetuneBaseline(scenario.target, max_epochs=1)
    with one_torch_thread():
        run_baseline(baseline, scenario.datamodule, evaluate=True)
    assert len(baseline.history) == 1
    record = baseline.history[0]
    assert set(record) == {"epoch", "acc", "forget_acc", "mia", "mia_auc", "mia_loss_auc"}
    assert 0.9 <= record["acc"] <= 1.0 and 0.0 <= record["mia"] <= 1.0
    assert record["forget_acc"] == pytest.approx(_accuracy(baseline.unlearned_model(), scenario.datamodule, "forget"))


# ---------------------------------------------------------------------------- SMU
def test_smu_removes_exactly_the_recorded_contribution_of_sgd_steps() -> None:
    """Two full-batch SGD steps on 40 samples, 15 of them to forget, checked by hand."""
    dm = DigitsDataModule()
    dm.setup()
    members = dm.dataset("target_train")
    forget = set(dm.splits["forget"].indices.tolist())
    is_forget = np.array([int(i) in forget for i in dm.splits["target_train"].indices])
    positions = np.concatenate([np.flatnonzero(is_forget)[:15], np.flatnonzero(~is_forget)[:25]]).tolist()
    loader = DataLoader(Subset(members, positions), batch_size=len(positions), shuffle=False)
    lr, epochs = 0.5, 2

    def train(recorder: ForgetGradientRecorder | None) -> ClassifierModule:
        torch.manual_seed(0)
        module = ClassifierModule(LogisticRegression(64, 5), optimizer=partial(torch.optim.SGD, lr=lr))
        callbacks: list[Callback] = [] if recorder is None else [recorder]
        trainer = L.Trainer(max_epochs=epochs, logger=False, callbacks=callbacks, enable_checkpointing=False, **QUIET)
        trainer.fit(module, train_dataloaders=loader)
        return module

    recorder = ForgetGradientRecorder(sorted(forget))
    with one_torch_thread():
        target = train(recorder)
        untouched = train(None)
    assert torch.equal(_parameters(target.backbone), _parameters(untouched.backbone))  # recording changes nothing

    # By hand: θ_{t+1} = θ_t − lr·(1/B)·Σ_batch ∇ℓ_i(θ_t); SMU must land on θ_0 − lr·Σ_t (1/B)·Σ_retain ∇ℓ_i(θ_t).
    torch.manual_seed(0)
    theta = [p.detach().clone().requires_grad_(True) for p in LogisticRegression(64, 5).parameters()]
    batch = next(iter(loader))
    in_forget = torch.tensor([int(i) in forget for i in batch.indices])
    expected = [t.detach().clone() for t in theta]
    for epoch in range(epochs):
        losses = torch.nn.functional.cross_entropy(
            batch.inputs @ theta[0].T + theta[1], batch.targets, reduction="none"
        )
        full = torch.autograd.grad(losses.mean(), theta, retain_graph=True)
        forget_share = torch.autograd.grad(losses[in_forget].sum() / len(losses), theta, retain_graph=True)
        retain_share = torch.autograd.grad(losses[~in_forget].sum() / len(losses), theta)
        for name, share in zip(("1.weight", "1.bias"), forget_share):
            torch.testing.assert_close(recorder.gradient_sums[epoch][name], share)
            torch.testing.assert_close(recorder.contributions[epoch][name], lr * share)
        with torch.no_grad():
            for t, g, r, e in zip(theta, full, retain_share, expected):
                t -= lr * g
                e -= lr * r
    torch.testing.assert_close(_parameters(target.backbone), torch.cat([t.detach().flatten() for t in theta]))
    assert recorder.learning_rates == [[lr], [lr]] and recorder.optimizer_name == "SGD"

    with one_torch_thread():
        model, _ = run_baseline(SMUBaseline(target, recorder), dm)
    torch.testing.assert_close(_parameters(model), torch.cat([e.flatten() for e in expected]), rtol=0, atol=1e-6)


def test_smu_on_the_adam_target_warns_and_adds_back_the_recorded_sums(scenario: Scenario) -> None:
    recorder = scenario.recorder
    assert len(recorder.contributions) == scenario.recipe.max_epochs and recorder.steps_recorded > 0
    with one_torch_thread(), pytest.warns(UserWarning, match="exact only for plain SGD; the target trained with Adam"):
        model, seconds = run_baseline(SMUBaseline(scenario.target, recorder), scenario.datamodule)
    total = recorder.total_contribution()
    for name, parameter in model.named_parameters():
        original = dict(scenario.target.backbone.named_parameters())[name]
        torch.testing.assert_close(parameter.detach(), original.detach() + total[name])
    assert seconds < 5


# ---------------------------------------------------------------------------- errors
def test_bad_inputs_are_rejected(scenario: Scenario) -> None:
    target, dm = scenario.target, scenario.datamodule
    with pytest.raises(ValueError, match=re.escape("Expected `retain_weight` (α) to be in (0, 1), but got 1.5.")):
        NegGradPlusBaseline(target, retain_weight=1.5)
    with pytest.raises(ValueError, match=re.escape("Expected `max_epochs` to be a positive integer, but got 0.")):
        FinetuneBaseline(target, max_epochs=0)
    with pytest.raises(TypeError, match=re.escape("Expected `target` to be an nn.Module, but got str.")):
        NegGradBaseline("target")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=re.escape("Expected `loss` to be 'cross_entropy' or 'hinge', but got 'mse'.")):
        FinetuneBaseline(target, loss="mse")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=re.escape("Expected `mia_folds` to be an integer of at least 2, but got 1.")):
        FinetuneBaseline(target, mia_folds=1)
    with pytest.raises(TypeError, match=re.escape("Expected `recipe` to be a TrainingRecipe, but got dict.")):
        RetrainBaseline(target, recipe={})  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=re.escape("Expected `recorder` to be a ForgetGradientRecorder, but got list.")):
        SMUBaseline(target, [])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=re.escape("Expected `forget_indices` to hold at least one global index")):
        ForgetGradientRecorder([])
    with pytest.raises(RuntimeError, match="but it holds no epoch: pass it in the Trainer's `callbacks`"):
        SMUBaseline(target, ForgetGradientRecorder([1, 2]))
    with pytest.raises(ValueError, match=re.escape("Expected the recorder to have watched this target's architecture")):
        SMUBaseline(MLP(64, 5, hidden=(8,)), scenario.recorder)
    with pytest.raises(TypeError, match=re.escape("Expected `datamodule` to be an UnlearningDataModule, but got None")):
        run_baseline(NegGradBaseline(target), None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=re.escape("Expected `baseline` to be an UnlearningBaseline, but got MLP.")):
        run_baseline(MLP(64, 5), dm)  # type: ignore[arg-type]
    trainer = L.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, **QUIET)
    with pytest.raises(RuntimeError, match=re.escape("Expected `trainer.fit(finetunebaseline, datamodule=dm)`")):
        trainer.fit(FinetuneBaseline(target), train_dataloaders=dm.dataloader("retain"))
    with pytest.raises(
        RuntimeError, match=re.escape("Expected `target` to produce 5 logits (the datamodule's classes)")
    ):
        run_baseline(FinetuneBaseline(MLP(64, 3)), dm)
