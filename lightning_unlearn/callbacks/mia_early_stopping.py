"""Stop unlearning at the first epoch that a membership attacker can no longer exploit.

The acceptance criterion (see docs/evaluation.md, Verdicts) holds at an epoch when

* the monitored accuracy is at least ``accuracy_floor``, and
* ``|MIA − target| ≤ tolerance``, where ``target`` is 0.5 (an attacker at chance) or the
  retrained model's MIA score, and
* the MIA score is not below ``0.5 − tolerance``: an attack that does *worse* than chance
  means the forget set now stands out by being forgotten too hard (over-unlearning), which
  leaks membership as much as remembering it. ``allow_over_unlearning=True`` lifts this.
"""

from __future__ import annotations

import copy
import math
import os
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.trainer.states import TrainerFn
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn

__all__ = ["MIAEarlyStopping"]

_SLACK = 1e-9


def _check_unit(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"Expected `{name}` to be a number, but got {type(value).__name__}.")
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"Expected `{name}` to be in [0, 1], but got {value}.")
    return float(value)


class MIAEarlyStopping(Callback):
    """Stop at the first epoch where accuracy holds and the MIA score is at its target.

    After every validation run it reads ``mia_monitor`` and ``accuracy_monitor`` from
    ``trainer.callback_metrics``. At the first epoch meeting the criterion (see the module
    docstring) it keeps the module's state — in memory as :attr:`best_state` and, with
    ``checkpoint_path``, as a full Lightning checkpoint — and stops training. Under DDP the
    ranks agree first (``trainer.strategy.reduce_boolean_decision``, all ranks must accept),
    so every rank stops at the same epoch.

    Args:
        mia_monitor: the logged MIA score (``mia/score`` for :class:`~lightning_unlearn.modules.fnn.FNNModule`).
        accuracy_monitor: the logged accuracy that must not fall below the floor.
        accuracy_floor: the lowest acceptable accuracy, in [0, 1] (e.g. the original's − 0.02).
        target: the MIA score to reach: 0.5, or the retrained model's score; in [0, 1].
        tolerance: the largest acceptable ``|MIA − target|``, in (0, 0.5].
        allow_over_unlearning: accept an MIA score below ``0.5 − tolerance``.
        checkpoint_path: where to save the accepted epoch's checkpoint (optional).
        stop: stop training at the accepted epoch (``False`` only records it).

    Raises:
        TypeError: a setting of the wrong type.
        ValueError: an empty monitor name, a floor or target outside [0, 1], or a tolerance
            outside (0, 0.5].
        RuntimeError: at run time, a monitored metric that was not logged (the message lists
            those that were).

    Example:
        >>> stopper = MIAEarlyStopping(accuracy_floor=0.9, target=0.5, tolerance=0.03)
        >>> trainer = L.Trainer(callbacks=[stopper])  # doctest: +SKIP
        >>> trainer.fit(fnn)  # doctest: +SKIP
        >>> stopper.accepted_epoch, stopper.best_state is not None  # doctest: +SKIP
    """

    def __init__(
        self,
        mia_monitor: str = "mia/score",
        accuracy_monitor: str = "val/acc",
        accuracy_floor: float = 0.0,
        target: float = 0.5,
        tolerance: float = 0.03,
        allow_over_unlearning: bool = False,
        checkpoint_path: str | os.PathLike[str] | None = None,
        stop: bool = True,
    ) -> None:
        super().__init__()
        for name, monitor in (("mia_monitor", mia_monitor), ("accuracy_monitor", accuracy_monitor)):
            if not isinstance(monitor, str):
                raise TypeError(f"Expected `{name}` to be a metric name, but got {type(monitor).__name__}.")
            if not monitor:
                raise ValueError(f"Expected `{name}` to be a metric name, but got an empty string.")
        self.accuracy_floor = _check_unit("accuracy_floor", accuracy_floor)
        self.target = _check_unit("target", target)
        if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float)):
            raise TypeError(f"Expected `tolerance` to be a number, but got {type(tolerance).__name__}.")
        if not 0.0 < tolerance <= 0.5:
            raise ValueError(f"Expected `tolerance` to be in (0, 0.5], but got {tolerance}.")
        if checkpoint_path is not None and not isinstance(checkpoint_path, (str, os.PathLike)):
            raise TypeError(f"Expected `checkpoint_path` to be a path, but got {type(checkpoint_path).__name__}.")
        self.mia_monitor = mia_monitor
        self.accuracy_monitor = accuracy_monitor
        self.tolerance = float(tolerance)
        self.allow_over_unlearning = bool(allow_over_unlearning)
        self.checkpoint_path = None if checkpoint_path is None else Path(checkpoint_path)
        self.stop = bool(stop)
        if not self.allow_over_unlearning and self.target + self.tolerance < 0.5 - self.tolerance:
            raise ValueError(
                f"Expected `target` ± `tolerance` to reach 0.5 − `tolerance` = {0.5 - self.tolerance:.3f} (below it the"
                f" attack is over-unlearned and refused), but got target={self.target}; pass"
                " `allow_over_unlearning=True` to accept such points."
            )
        self.accepted_epoch: int | None = None
        self.accepted_metrics: dict[str, float] | None = None
        self.best_state: dict[str, torch.Tensor] | None = None
        self.history: list[dict[str, float]] = []

    @property
    def state_key(self) -> str:
        return self._generate_state_key(
            mia_monitor=self.mia_monitor, accuracy_monitor=self.accuracy_monitor, target=self.target
        )

    def accepts(self, accuracy: float, mia: float) -> bool:
        """Whether one epoch's accuracy and MIA score meet the criterion.

        Example:
            >>> MIAEarlyStopping(accuracy_floor=0.9, tolerance=0.03).accepts(accuracy=0.95, mia=0.52)
            True
        """
        if not (math.isfinite(accuracy) and math.isfinite(mia)):
            return False
        if accuracy < self.accuracy_floor:
            return False
        # Bounds are inclusive; the slack absorbs float rounding (0.53 − 0.5 is 0.030000000000000027).
        if abs(mia - self.target) > self.tolerance + _SLACK:
            return False
        return self.allow_over_unlearning or mia >= 0.5 - self.tolerance - _SLACK

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
        local = self.accepts(accuracy, mia)
        accepted = trainer.strategy.reduce_boolean_decision(local, all=True)
        self.history.append(
            {"epoch": float(trainer.current_epoch), "accuracy": accuracy, "mia": mia, "accepted": float(accepted)}
        )
        if not accepted:
            return
        self.accepted_epoch = trainer.current_epoch
        self.accepted_metrics = {self.accuracy_monitor: accuracy, self.mia_monitor: mia}
        self.best_state = {key: value.detach().cpu().clone() for key, value in pl_module.state_dict().items()}
        if self.checkpoint_path is not None:
            trainer.save_checkpoint(self.checkpoint_path)
        rank_zero_info(
            f"MIAEarlyStopping: epoch {trainer.current_epoch} accepted ({self.accuracy_monitor}={accuracy:.4f},"
            f" {self.mia_monitor}={mia:.4f}, target {self.target:.3f} ± {self.tolerance:.3f})."
        )
        if self.stop:
            trainer.should_stop = True

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.accepted_epoch is None and not getattr(trainer, "fast_dev_run", False):
            rank_zero_warn(
                f"MIAEarlyStopping: no epoch met the criterion ({self.accuracy_monitor} ≥ {self.accuracy_floor},"
                f" |{self.mia_monitor} − {self.target}| ≤ {self.tolerance}); no state was kept."
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
