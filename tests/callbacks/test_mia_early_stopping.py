"""MIAEarlyStopping: the acceptance criterion, where it stops, what it keeps, and DDP agreement."""

from __future__ import annotations

import json
import math
from pathlib import Path

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import Callback
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_unlearn.callbacks import MIAEarlyStopping, ReleaseSpawnedProcessGroup
from lightning_unlearn.metrics import mia_score

# (val/acc, mia/score[, mia/loss_auc]) per epoch; the loss AUC is 0.55 when not given, the group
# size 100 (loss AUC band ±0.08). Floor 0.9, reference 0.5 ± 0.03:
#   0: still a member · 1: closer · 2: accuracy below the floor · 3: over-forgotten (MIA within the
#   tolerance, forget losses clearly above unseen ones': loss AUC 0.35 < 0.42) · 4: accepted ·
#   5: would also be accepted, but training has stopped.
SCRIPT = [(0.95, 0.80), (0.95, 0.60), (0.85, 0.51), (0.95, 0.49, 0.35), (0.94, 0.52), (0.95, 0.50)]


class ScriptedModule(L.LightningModule):
    """Trains a tiny linear layer and logs scripted metrics, one script per DDP rank."""

    def __init__(self, scripts: list[list[tuple[float, ...]]], log_accuracy: bool = True) -> None:
        super().__init__()
        self.layer = nn.Linear(2, 1)
        self.scripts = scripts
        self.log_accuracy = log_accuracy

    def train_dataloader(self) -> DataLoader:
        return DataLoader(TensorDataset(torch.ones(4, 2)), batch_size=2)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(TensorDataset(torch.ones(2, 2)), batch_size=2)

    def training_step(self, batch: list[torch.Tensor], batch_idx: int) -> torch.Tensor:
        return self.layer(batch[0]).pow(2).mean()

    def validation_step(self, batch: list[torch.Tensor], batch_idx: int) -> None:
        pass

    def on_validation_epoch_end(self) -> None:
        if self.trainer.sanity_checking:
            return
        script = self.scripts[self.global_rank % len(self.scripts)]
        accuracy, mia, *direction = script[min(self.current_epoch, len(script) - 1)]
        if self.log_accuracy:
            self.log("val/acc", accuracy)
        self.log("mia/score", mia)
        self.log("mia/loss_auc", direction[0] if direction else 0.55)
        self.log("mia/group_size", 100.0)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)


class RecordOutcome(Callback):
    """Writes each rank's view of the stop to ``<folder>/rank<r>.json``."""

    def __init__(self, folder: str) -> None:
        self.folder = folder

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        stopper = next(c for c in trainer.callbacks if isinstance(c, MIAEarlyStopping))  # type: ignore[attr-defined]
        outcome = {"accepted_epoch": stopper.accepted_epoch, "last_epoch": trainer.current_epoch}
        Path(self.folder, f"rank{trainer.global_rank}.json").write_text(json.dumps(outcome))


def _trainer(callbacks: list[Callback], **kwargs: object) -> L.Trainer:
    settings: dict[str, object] = dict(
        accelerator="cpu",
        devices=1,
        max_epochs=len(SCRIPT),
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    settings.update(kwargs)
    if settings.get("strategy") == "ddp_spawn":  # spawned workers must release their process group (see the callback)
        callbacks = [*callbacks, ReleaseSpawnedProcessGroup()]
    return L.Trainer(callbacks=callbacks, **settings)  # type: ignore[arg-type]


def test_stops_at_first_acceptable_epoch_and_keeps_it(tmp_path: Path) -> None:
    stopper = MIAEarlyStopping(accuracy_floor=0.9, tolerance=0.03, checkpoint_path=tmp_path / "accepted.ckpt")
    module = ScriptedModule([SCRIPT])
    trainer = _trainer([stopper])
    trainer.fit(module)
    assert stopper.accepted_epoch == 4
    assert trainer.current_epoch == 5  # the epoch counter moves past the stopped epoch
    assert stopper.accepted_metrics == {"val/acc": pytest.approx(0.94), "mia/score": pytest.approx(0.52)}
    assert [bool(row["accepted"]) for row in stopper.history] == [False, False, False, False, True]
    assert stopper.best_state is not None
    for key, value in module.state_dict().items():  # no step after the accepted epoch
        assert torch.equal(stopper.best_state[key], value)
    saved = torch.load(tmp_path / "accepted.ckpt", weights_only=False)
    assert saved["epoch"] == 4
    assert torch.equal(saved["state_dict"]["layer.weight"], stopper.best_state["layer.weight"])


def test_load_best_state_restores_the_accepted_epoch() -> None:
    stopper = MIAEarlyStopping(accuracy_floor=0.9, stop=False)
    module = ScriptedModule([SCRIPT])
    _trainer([stopper]).fit(module)
    assert stopper.accepted_epoch == 4  # recorded, but training ran on
    assert not torch.equal(module.layer.weight, stopper.best_state["layer.weight"])  # type: ignore[index]
    stopper.load_best_state(module)
    assert torch.equal(module.layer.weight, stopper.best_state["layer.weight"])  # type: ignore[index]


def test_a_score_below_half_that_matches_the_retrained_model_is_accepted() -> None:
    # The retrained model scores 0.43 on the validation pair (a fitted attack with nothing to find).
    script = [(0.95, 0.80), (0.95, 0.43, 0.50), (0.95, 0.50)]
    stopper = MIAEarlyStopping(accuracy_floor=0.9, reference=0.43, tolerance=0.03)
    _trainer([stopper], max_epochs=len(script)).fit(ScriptedModule([script]))
    assert stopper.accepted_epoch == 1


def test_an_over_forgotten_epoch_is_refused_by_its_direction() -> None:
    stopper = MIAEarlyStopping(accuracy_floor=0.9, tolerance=0.03)
    _trainer([stopper]).fit(ScriptedModule([SCRIPT]))
    assert stopper.history[3]["mia"] == pytest.approx(0.49) and not stopper.history[3]["accepted"]
    assert stopper.refusal(0.95, 0.49, 0.35, 100).startswith("over-forgotten: loss AUC 0.3500 is below 0.5")
    # Without the direction monitor the same epoch would have been accepted.
    blind = MIAEarlyStopping(accuracy_floor=0.9, tolerance=0.03, direction_monitor=None)
    _trainer([blind]).fit(ScriptedModule([SCRIPT]))
    assert blind.accepted_epoch == 3


def _losses(low: float, high: float, seed: int) -> torch.Tensor:
    return low + (high - low) * torch.rand(200, generator=torch.Generator().manual_seed(seed))


def test_decisions_on_hand_built_losses() -> None:
    unseen = _losses(1.0, 3.0, seed=0)
    stopper = MIAEarlyStopping(accuracy_floor=0.9, reference=0.5, tolerance=0.06)
    # Forget losses well below the unseen ones': still members, refused for the score.
    remembered = mia_score(unseen - 1.0, unseen)
    assert remembered.score > 0.7 and not stopper.accepts_result(0.95, remembered)
    # Shifted a little either way: the score alone cannot tell the two apart ...
    lower, higher = mia_score(unseen - 0.2, unseen), mia_score(unseen + 0.2, unseen)
    assert abs(lower.score - 0.5) <= 0.06 and abs(higher.score - 0.5) <= 0.06
    # ... the direction can: slightly member-like is accepted, forget losses above unseen ones' are not.
    assert lower.loss_auc > 0.5 and stopper.accepts_result(0.95, lower)
    assert higher.loss_auc < 0.44 and not stopper.accepts_result(0.95, higher)
    # Drawn like the unseen samples: accepted, even with a score below 0.5.
    like_unseen = mia_score(_losses(1.0, 3.0, seed=1), unseen)
    assert stopper.accepts_result(0.95, like_unseen)
    # Accuracy under the floor is refused whatever the attack says.
    assert not stopper.accepts_result(0.85, like_unseen)


def test_validation_outside_fit_is_ignored() -> None:
    stopper = MIAEarlyStopping()
    _trainer([stopper]).validate(ScriptedModule([[(0.95, 0.50)]]), verbose=False)
    assert stopper.accepted_epoch is None
    assert stopper.history == []


@pytest.mark.parametrize(
    ("accuracy", "mia", "expected"),
    [
        (0.95, 0.52, True),
        (0.95, 0.53, True),
        (0.95, 0.54, False),  # too far from the reference
        (0.89, 0.50, False),  # below the floor
        (0.95, 0.47, True),  # below 0.5 but within the tolerance: noise, not over-unlearning
        (0.95, 0.46, False),  # too far from the reference
        (math.nan, 0.50, False),
        (0.95, math.nan, False),
    ],
)
def test_accepts(accuracy: float, mia: float, expected: bool) -> None:
    assert MIAEarlyStopping(accuracy_floor=0.9, tolerance=0.03).accepts(accuracy, mia) is expected


def test_retrained_reference() -> None:
    stopper = MIAEarlyStopping(reference=0.58, tolerance=0.03)
    assert stopper.accepts(0.9, 0.60)
    assert not stopper.accepts(0.9, 0.52)


def test_missing_metric_lists_the_available_ones() -> None:
    stopper = MIAEarlyStopping()
    with pytest.raises(RuntimeError, match=r"Expected the metric `val/acc` .* available: `mia/score`"):
        _trainer([stopper]).fit(ScriptedModule([SCRIPT], log_accuracy=False))


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"accuracy_floor": 1.5}, ValueError, r"Expected `accuracy_floor` to be in \[0, 1\], but got 1.5."),
        ({"accuracy_floor": -0.1}, ValueError, r"Expected `accuracy_floor` to be in \[0, 1\], but got -0.1."),
        ({"reference": 2.0}, ValueError, r"Expected `reference` to be in \[0, 1\], but got 2.0."),
        ({"tolerance": 0.0}, ValueError, r"Expected `tolerance` to be in \(0, 0.5\], but got 0.0."),
        ({"tolerance": "0.1"}, TypeError, r"Expected `tolerance` to be a number, but got str."),
        ({"mia_monitor": ""}, ValueError, r"Expected `mia_monitor` to be a metric name, but got an empty string."),
        ({"direction_monitor": ""}, ValueError, r"Expected `direction_monitor` to be a metric name, but got an empty"),
        ({"accuracy_floor": True}, TypeError, r"Expected `accuracy_floor` to be a number, but got bool."),
    ],
)
def test_bad_settings_fail_in_init(kwargs: dict[str, object], error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        MIAEarlyStopping(**kwargs)  # type: ignore[arg-type]


@pytest.mark.ddp
def test_ranks_agree_on_the_stop(tmp_path: Path) -> None:
    # Rank 0 accepts from epoch 1; rank 1 only from epoch 3: both must stop at epoch 3.
    rank0 = [(0.95, 0.80), (0.95, 0.50), (0.95, 0.51), (0.95, 0.50), (0.95, 0.50)]
    rank1 = [(0.95, 0.80), (0.95, 0.70), (0.80, 0.50), (0.95, 0.52), (0.95, 0.50)]
    stopper = MIAEarlyStopping(accuracy_floor=0.9, tolerance=0.03)
    trainer = _trainer([stopper, RecordOutcome(str(tmp_path))], devices=2, strategy="ddp_spawn", max_epochs=len(rank0))
    trainer.fit(ScriptedModule([rank0, rank1]))
    outcomes = [json.loads((tmp_path / f"rank{rank}.json").read_text()) for rank in (0, 1)]
    assert [outcome["accepted_epoch"] for outcome in outcomes] == [3, 3]
    assert [outcome["last_epoch"] for outcome in outcomes] == [4, 4]
