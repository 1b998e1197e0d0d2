"""MembershipInferenceCallback with LiRA: per-epoch AUC and TPR on forget vs validation_heldout, never heldout."""

from __future__ import annotations

import lightning as L
import pytest
import torch

from lightning_unlearn import DigitsDataModule, TrainingRecipe, predict, train_classifier
from lightning_unlearn.callbacks import MembershipInferenceCallback, MIAEarlyStopping
from lightning_unlearn.metrics.lira import LiRAReferenceStatistics, lira_attack_from_logits
from lightning_unlearn.metrics.lira_references import train_lira_references
from lightning_unlearn.modules import NegGradBaseline

QUIET = {"enable_progress_bar": False}


@pytest.fixture(scope="module")
def scenario() -> tuple[DigitsDataModule, torch.nn.Module, LiRAReferenceStatistics]:
    datamodule = DigitsDataModule()
    datamodule.setup()
    recipe = TrainingRecipe(max_epochs=40)
    target = train_classifier(recipe, datamodule, "target_train", **QUIET).module.backbone
    statistics = train_lira_references(recipe, datamodule, num_models=4, progress_bar=False)
    return datamodule, target, statistics


def _trainer(callbacks: list[L.Callback], **settings: object) -> L.Trainer:
    return L.Trainer(
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        callbacks=callbacks,
        **QUIET,
        **settings,  # type: ignore[arg-type]
    )


def test_logs_the_lira_of_a_direct_evaluation_on_the_validation_pair(scenario: tuple) -> None:
    datamodule, target, statistics = scenario
    callback = MembershipInferenceCallback(lira=statistics)
    module = NegGradBaseline(target, max_epochs=2)
    trainer = _trainer([callback], max_epochs=2)
    trainer.fit(module, datamodule=datamodule)
    logged = trainer.callback_metrics
    model = module.unlearned_model()
    forget = predict(model, datamodule.dataloader("forget"))
    unseen = predict(model, datamodule.dataloader("validation_heldout"))
    direct = lira_attack_from_logits(
        statistics, forget.logits, forget.targets, forget.indices, unseen.logits, unseen.targets, unseen.indices
    )
    assert float(logged["membership/lira_auc"]) == pytest.approx(direct.auc, abs=1e-6)  # logged as float32
    assert float(logged["membership/lira_tpr_at_1pct"]) == pytest.approx(direct.tpr_at_1pct_fpr, abs=1e-6)
    assert "membership/mia" in logged  # the population attack is logged beside it


def test_the_attack_reads_validation_heldout_never_heldout(scenario: tuple) -> None:
    datamodule, target, statistics = scenario
    callback = MembershipInferenceCallback(lira=statistics)
    seen: list[torch.Tensor] = []
    update = callback.lira.update

    def spy(logits, targets, indices, is_member):  # type: ignore[no-untyped-def]
        seen.append(indices.clone())
        update(logits, targets, indices, is_member)

    callback.lira.update = spy
    _trainer([callback], max_epochs=1).fit(NegGradBaseline(target, max_epochs=1), datamodule=datamodule)
    read = set(torch.cat(seen).tolist())
    splits = datamodule.splits
    assert read == set(splits["forget"].indices.tolist()) | set(splits["validation_heldout"].indices.tolist())
    assert read.isdisjoint(splits["heldout"].indices.tolist())


def test_mia_early_stopping_can_stop_on_lira(scenario: tuple) -> None:
    datamodule, target, statistics = scenario
    stopper = MIAEarlyStopping(
        mia_monitor="membership/lira_auc",
        direction_monitor=None,
        accuracy_floor=0.0,
        reference=0.5,
        tolerance=0.5,
    )
    trainer = _trainer([MembershipInferenceCallback(lira=statistics), stopper], max_epochs=5)
    trainer.fit(NegGradBaseline(target, max_epochs=5), datamodule=datamodule)
    assert stopper.accepted_epoch == 0 and trainer.current_epoch == 1, "the first epoch meets a tolerance of 0.5"
    assert "mia" in stopper.history[0]


def test_lira_must_be_reference_statistics() -> None:
    with pytest.raises(TypeError, match=r"Expected `lira` to be LiRAReferenceStatistics or None, but got str"):
        MembershipInferenceCallback(lira="lira")  # type: ignore[arg-type]
