"""MembershipInferenceCallback: per-epoch MIA and FR from the validation the module already runs."""

from __future__ import annotations

import json
from pathlib import Path

import lightning as L
import pytest
import torch

from lightning_unlearn import DigitsDataModule, TrainingRecipe, train_classifier
from lightning_unlearn.callbacks import MembershipInferenceCallback, MIAEarlyStopping, ReleaseSpawnedProcessGroup
from lightning_unlearn.metrics import ShadowModelOracle, mia_score_from_logits
from lightning_unlearn.metrics.functional import forgetting_rate_from_membership
from lightning_unlearn.modules import NegGradBaseline

QUIET = {"enable_progress_bar": False}


@pytest.fixture(scope="module")
def scenario() -> tuple[DigitsDataModule, torch.nn.Module, ShadowModelOracle]:
    datamodule = DigitsDataModule()
    datamodule.setup()
    recipe = TrainingRecipe(max_epochs=40)
    target = train_classifier(recipe, datamodule, "target_train", **QUIET).module.backbone
    oracle = ShadowModelOracle().fit(recipe, datamodule, trainer_overrides=QUIET)
    return datamodule, target, oracle


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


def test_logs_the_same_mia_as_a_direct_evaluation_and_a_real_fr(scenario: tuple) -> None:
    datamodule, target, oracle = scenario
    callback = MembershipInferenceCallback(oracle=oracle)
    module = NegGradBaseline(target, max_epochs=2)
    trainer = _trainer([callback], max_epochs=2)
    trainer.fit(module, datamodule=datamodule)
    logged = trainer.callback_metrics
    model = module.unlearned_model()
    from lightning_unlearn import predict

    forget = predict(model, datamodule.dataloader("forget"))
    heldout = predict(model, datamodule.dataloader("validation_heldout"))
    direct = mia_score_from_logits(forget.logits, forget.targets, heldout.logits, heldout.targets, seed=0)
    assert float(logged["membership/mia"]) == pytest.approx(
        direct.score, abs=1e-6
    )  # Lightning stores logged values as float32
    assert float(logged["membership/mia_auc"]) == pytest.approx(
        direct.auc, abs=1e-6
    )  # Lightning stores logged values as float32
    before_forget = predict(target, datamodule.dataloader("forget"))
    before = oracle.predict_membership_from_logits(before_forget.logits, before_forget.targets)
    after = oracle.predict_membership_from_logits(forget.logits, forget.targets)
    assert float(logged["membership/fr"]) == pytest.approx(forgetting_rate_from_membership(before, after))
    # It matches the module's own MIA metric, computed over the same batches.
    assert float(logged["membership/mia"]) == pytest.approx(
        float(logged["mia/score"]), abs=1e-6
    )  # Lightning stores logged values as float32


def test_works_with_mia_early_stopping(scenario: tuple) -> None:
    datamodule, target, oracle = scenario
    stopper = MIAEarlyStopping(
        mia_monitor="membership/mia",
        direction_monitor="membership/mia_loss_auc",
        group_size_monitor="membership/mia_group_size",
        accuracy_floor=0.0,
        reference=0.5,
        tolerance=0.5,
    )
    trainer = _trainer([MembershipInferenceCallback(oracle=oracle), stopper], max_epochs=5)
    trainer.fit(NegGradBaseline(target, max_epochs=5), datamodule=datamodule)
    assert stopper.accepted_epoch == 0 and trainer.current_epoch == 1, "the first epoch meets a tolerance of 0.5"


def test_without_an_oracle_it_logs_no_fr(scenario: tuple) -> None:
    datamodule, target, _ = scenario
    trainer = _trainer([MembershipInferenceCallback()], max_epochs=1)
    trainer.fit(NegGradBaseline(target, max_epochs=1), datamodule=datamodule)
    assert "membership/mia" in trainer.callback_metrics and "membership/fr" not in trainer.callback_metrics


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        (
            dict(splits=("validation", "forget")),
            ValueError,
            r"Expected `splits` to name .* \(missing \['validation_heldout'\]\)",
        ),
        (dict(prefix=""), ValueError, r"Expected `prefix` to be a non-empty string, but got ''"),
        (dict(oracle="xgboost"), TypeError, r"Expected `oracle` to be a ShadowModelOracle or None, but got str"),
        (dict(oracle=ShadowModelOracle()), TypeError, r"Expected `oracle` to be a fitted ShadowModelOracle"),
    ],
)
def test_bad_settings(kwargs: dict, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        MembershipInferenceCallback(**kwargs)


# ---------------------------------------------------------------- DDP: the single-process value on every rank
class _Record(L.Callback):
    def __init__(self, out: str) -> None:
        self.out = out

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        values = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("membership/")}
        gathered = trainer.strategy.all_gather(torch.tensor([values["membership/mia"], values["membership/fr"]]))
        if trainer.is_global_zero:
            Path(self.out).write_text(json.dumps(gathered.tolist()))


@pytest.mark.ddp
def test_ddp_gives_the_single_process_value(scenario: tuple, tmp_path: Path) -> None:
    from lightning_unlearn import predict

    datamodule, target, oracle = scenario
    out = tmp_path / "ranks.json"
    module = NegGradBaseline(target, max_epochs=1)
    distributed = L.Trainer(
        accelerator="cpu",
        devices=2,
        strategy="ddp_spawn",
        max_epochs=1,
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        enable_progress_bar=False,
        callbacks=[MembershipInferenceCallback(oracle=oracle), _Record(str(out)), ReleaseSpawnedProcessGroup()],
    )
    distributed.fit(module, datamodule=datamodule)
    ranks = json.loads(out.read_text())
    assert len(ranks) == 2 and ranks[0] == ranks[1], "ranks disagree"
    # ddp_spawn hands the trained weights back: evaluate them in this one process.
    model = module.unlearned_model()
    forget = predict(model, datamodule.dataloader("forget"))
    heldout = predict(model, datamodule.dataloader("validation_heldout"))
    single_mia = mia_score_from_logits(forget.logits, forget.targets, heldout.logits, heldout.targets, seed=0).score
    before_forget = predict(target, datamodule.dataloader("forget"))
    before = oracle.predict_membership_from_logits(before_forget.logits, before_forget.targets)
    single_fr = forgetting_rate_from_membership(
        before, oracle.predict_membership_from_logits(forget.logits, forget.targets)
    )
    assert ranks[0] == pytest.approx([single_mia, single_fr], abs=1e-6)
