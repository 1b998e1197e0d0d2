"""Stop unlearning at the first epoch that a membership attacker can no longer exploit.

Every figure it reads comes from the validation pair (``validation`` for accuracy, forget vs
``validation_heldout`` for the attack), never from ``test`` or ``heldout``, which the final
report scores. The acceptance criterion holds at an epoch when

* the monitored accuracy is at least ``accuracy_floor``;
* ``|MIA − reference| ≤ tolerance``, where ``reference`` is the retrained model's MIA score on
  the validation pair when the user gives one, else 0.5. A score *below* the reference is
  accepted like one above it: the attack is a fitted, cross-validated classifier that learns
  either direction, so a low score is noise of the cross-validation, never over-unlearning;
* the attack's direction does not show over-forgetting: the loss AUC (``direction_monitor``,
  nothing fitted; above 0.5 forget losses are below the unseen ones') is not clearly below
  0.5, i.e. not below ``0.5 − 1.96·sqrt((2g + 1)/(12g²))`` for g samples per balanced group
  (``group_size_monitor``). Forget samples whose losses are clearly *above* those of unseen
  samples look less like members than data never seen, which leaks membership too.

See docs/evaluation.md ("Verdicts") for the same evidence as the final report reads it.
"""

from __future__ import annotations

import copy
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.trainer.states import TrainerFn
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn

from lightning_unlearn.checks import check_in_range, check_path

if TYPE_CHECKING:  # the metrics package imports the training helpers, which import the modules
    from lightning_unlearn.metrics.functional import MIAScoreResult

__all__ = ["MIAEarlyStopping", "loss_auc_half_width"]

_SLACK = 1e-9


def loss_auc_half_width(group_size: float) -> float:
    """95 % half-width of a loss AUC under chance for two groups of ``group_size``: ``1.96·sqrt((2g+1)/(12g²))``.

    Example:
        >>> round(loss_auc_half_width(100), 3)
        0.08
    """
    if not group_size >= 1:
        return float("inf")
    return 1.96 * math.sqrt((2 * group_size + 1) / (12 * group_size * group_size))


class MIAEarlyStopping(Callback):
    """Stop at the first epoch where accuracy holds and the MIA score is at its reference.

    After every validation run it reads ``mia_monitor``, ``accuracy_monitor`` and, unless
    ``direction_monitor`` is ``None``, ``direction_monitor`` and ``group_size_monitor`` from
    ``trainer.callback_metrics``. At the first epoch meeting the criterion (see the module
    docstring) it keeps the module's state — in memory as :attr:`best_state` and, with
    ``checkpoint_path``, as a full Lightning checkpoint — and stops training. Under DDP the
    ranks agree first (``trainer.strategy.reduce_boolean_decision``, all ranks must accept),
    so every rank stops at the same epoch.

    Args:
        mia_monitor: the logged MIA score (``mia/score`` for :class:`~lightning_unlearn.modules.fnn.FNNModule`).
        accuracy_monitor: the logged accuracy that must not fall below the floor.
        accuracy_floor: the lowest acceptable accuracy, in [0, 1] (e.g. the original's − 0.02 on
            the ``validation`` split).
        reference: the MIA score to reach: the retrained model's score on the validation pair,
            or 0.5 when there is none; in [0, 1].
        tolerance: the largest acceptable ``|MIA − reference|``, in (0, 0.5].
        direction_monitor: the logged loss AUC (``mia/loss_auc``) that shows the attack's
            direction; ``None`` skips the over-forgetting check.
        group_size_monitor: the logged samples per balanced MIA group (``mia/group_size``), which
            sets the noise band of the loss AUC.
        checkpoint_path: where to save the accepted epoch's checkpoint (optional).
        stop: stop training at the accepted epoch (``False`` only records it).

    Raises:
        TypeError: a setting of the wrong type.
        ValueError: an empty monitor name, a floor or reference outside [0, 1], or a tolerance
            outside (0, 0.5].
        RuntimeError: at run time, a monitored metric that was not logged (the message lists
            those that were).

    Example:
        >>> stopper = MIAEarlyStopping(accuracy_floor=0.9, reference=0.5, tolerance=0.03)
        >>> stopper.accepts(accuracy=0.95, mia=0.45)  # below the reference: noise, accepted
        False
        >>> stopper.accepts(accuracy=0.95, mia=0.48)
        True

        In a run, with a module that logs the monitored figures (e.g. ``FNNModule``):
        ``L.Trainer(callbacks=[stopper]).fit(fnn, datamodule=dm)``, then ``stopper.accepted_epoch`` and
        ``stopper.best_state``.
    """

    def __init__(
        self,
        mia_monitor: str = "mia/score",
        accuracy_monitor: str = "val/acc",
        accuracy_floor: float = 0.0,
        reference: float = 0.5,
        tolerance: float = 0.03,
        direction_monitor: str | None = "mia/loss_auc",
        group_size_monitor: str = "mia/group_size",
        checkpoint_path: str | os.PathLike[str] | None = None,
        stop: bool = True,
    ) -> None:
        super().__init__()
        monitors = [("mia_monitor", mia_monitor), ("accuracy_monitor", accuracy_monitor)]
        if direction_monitor is not None:
            monitors += [("direction_monitor", direction_monitor), ("group_size_monitor", group_size_monitor)]
        for name, monitor in monitors:
            if not isinstance(monitor, str):
                raise TypeError(f"Expected `{name}` to be a metric name, but got {type(monitor).__name__}.")
            if not monitor:
                raise ValueError(f"Expected `{name}` to be a metric name, but got an empty string.")
        self.accuracy_floor = check_in_range("accuracy_floor", accuracy_floor, 0.0, 1.0)
        self.reference = check_in_range("reference", reference, 0.0, 1.0)
        check_in_range("tolerance", tolerance, 0.0, 0.5, include_low=False)
        if checkpoint_path is not None:
            check_path("checkpoint_path", checkpoint_path)
        self.mia_monitor = mia_monitor
        self.accuracy_monitor = accuracy_monitor
        self.direction_monitor = direction_monitor
        self.group_size_monitor = group_size_monitor
        self.tolerance = float(tolerance)
        self.checkpoint_path = None if checkpoint_path is None else Path(checkpoint_path)
        self.stop = bool(stop)
        self.accepted_epoch: int | None = None
        self.accepted_metrics: dict[str, float] | None = None
        self.best_state: dict[str, torch.Tensor] | None = None
        self.history: list[dict[str, float]] = []

    @property
    def state_key(self) -> str:
        return self._generate_state_key(
            mia_monitor=self.mia_monitor, accuracy_monitor=self.accuracy_monitor, reference=self.reference
        )

    def refusal(
        self, accuracy: float, mia: float, loss_auc: float | None = None, group_size: float | None = None
    ) -> str | None:
        """Why one epoch's figures are refused, or ``None`` when they are accepted.

        Args:
            accuracy: the monitored accuracy.
            mia: the MIA score on the validation pair.
            loss_auc: the loss AUC on the same groups (the direction); ``None`` skips that check.
            group_size: samples per balanced group, for the loss AUC's noise band.
        """
        if not (math.isfinite(accuracy) and math.isfinite(mia)):
            return "a figure is not finite"
        if accuracy < self.accuracy_floor:
            return f"accuracy {accuracy:.4f} is below the floor {self.accuracy_floor:.4f}"
        # Bounds are inclusive; the slack absorbs float rounding (0.53 − 0.5 is 0.030000000000000027).
        if abs(mia - self.reference) > self.tolerance + _SLACK:
            return f"MIA {mia:.4f} is more than {self.tolerance} from the reference {self.reference:.4f}"
        if loss_auc is not None:
            if not math.isfinite(loss_auc):
                return "the loss AUC is not finite"
            band = loss_auc_half_width(group_size if group_size is not None else 0.0)
            if loss_auc < 0.5 - band - _SLACK:
                return (
                    f"over-forgotten: loss AUC {loss_auc:.4f} is below 0.5 − {band:.4f} (forget losses above the"
                    " unseen samples')"
                )
        return None

    def accepts(
        self, accuracy: float, mia: float, loss_auc: float | None = None, group_size: float | None = None
    ) -> bool:
        """Whether one epoch's figures meet the criterion (:meth:`refusal` is ``None``).

        Example:
            >>> MIAEarlyStopping(accuracy_floor=0.9, tolerance=0.03).accepts(accuracy=0.95, mia=0.52)
            True
        """
        return self.refusal(accuracy, mia, loss_auc, group_size) is None

    def accepts_result(self, accuracy: float, result: MIAScoreResult) -> bool:
        """:meth:`accepts` on a whole :class:`~lightning_unlearn.metrics.functional.MIAScoreResult`."""
        loss_auc = result.loss_auc if self.direction_monitor is not None else None
        return self.accepts(accuracy, result.score, loss_auc, float(result.group_size))

    def _read(self, trainer: L.Trainer, name: str) -> float:
        metrics = trainer.callback_metrics
        if name not in metrics:
            available = ", ".join(f"`{key}`" for key in metrics) or "none"
            raise RuntimeError(
                f"Expected the metric `{name}` in the logged metrics to decide MIA early stopping, but it is missing;"
                f" available: {available}."
            )
        value = metrics[name]
        return float(value.item() if isinstance(value, torch.Tensor) else value)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.state.fn != TrainerFn.FITTING or trainer.sanity_checking or getattr(trainer, "fast_dev_run", False):
            return
        if self.accepted_epoch is not None:
            return
        accuracy = self._read(trainer, self.accuracy_monitor)
        mia = self._read(trainer, self.mia_monitor)
        loss_auc = group_size = None
        if self.direction_monitor is not None:
            loss_auc = self._read(trainer, self.direction_monitor)
            group_size = self._read(trainer, self.group_size_monitor)
        local = self.accepts(accuracy, mia, loss_auc, group_size)
        accepted = trainer.strategy.reduce_boolean_decision(local, all=True)
        record = {"epoch": float(trainer.current_epoch), "accuracy": accuracy, "mia": mia, "accepted": float(accepted)}
        if loss_auc is not None:
            record["loss_auc"] = loss_auc
        self.history.append(record)
        if not accepted:
            return
        self.accepted_epoch = trainer.current_epoch
        self.accepted_metrics = {self.accuracy_monitor: accuracy, self.mia_monitor: mia}
        self.best_state = {key: value.detach().cpu().clone() for key, value in pl_module.state_dict().items()}
        if self.checkpoint_path is not None:
            trainer.save_checkpoint(self.checkpoint_path)
        rank_zero_info(
            f"MIAEarlyStopping: epoch {trainer.current_epoch} accepted ({self.accuracy_monitor}={accuracy:.4f},"
            f" {self.mia_monitor}={mia:.4f}, reference {self.reference:.3f} ± {self.tolerance:.3f})."
        )
        if self.stop:
            trainer.should_stop = True

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.accepted_epoch is None and not getattr(trainer, "fast_dev_run", False):
            rank_zero_warn(
                f"MIAEarlyStopping: no epoch met the criterion ({self.accuracy_monitor} ≥ {self.accuracy_floor},"
                f" |{self.mia_monitor} − {self.reference}| ≤ {self.tolerance}, no over-forgetting by the loss AUC);"
                " no state was kept."
            )

    def load_best_state(self, pl_module: L.LightningModule) -> None:
        """Load the accepted epoch's state into ``pl_module``.

        Raises:
            RuntimeError: no epoch was accepted.
        """
        if self.best_state is None:
            raise RuntimeError("Expected an accepted epoch to restore, but no epoch met the criterion.")
        pl_module.load_state_dict(self.best_state)

    def state_dict(self) -> dict[str, Any]:
        return {
            "accepted_epoch": self.accepted_epoch,
            "accepted_metrics": copy.deepcopy(self.accepted_metrics),
            "history": copy.deepcopy(self.history),
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.accepted_epoch = state_dict.get("accepted_epoch")
        self.accepted_metrics = copy.deepcopy(state_dict.get("accepted_metrics"))
        self.history = copy.deepcopy(state_dict.get("history", []))
