"""One Trainer factory for every stage: where it runs comes from the caller, never from here.

Every stage of the library (the target, the shadow model, retraining, each unlearning method,
the LiRA references, SISA's constituents, the language models) builds its
:class:`lightning.Trainer` through :func:`build_trainer`. The factory sets what a library stage
wants and a user does not (no logger, no checkpoints, no model summary, no sanity validation,
and a progress bar on stderr only when asked for) and takes *where* it runs — accelerator,
devices, strategy, precision — from :class:`DeviceSettings`, which a
:class:`~lightning_unlearn.training.TrainingRecipe` or the command line fills in. Nothing in the
package names a device: with ``accelerator="auto"`` on a GPU machine every stage runs on the GPU.

:func:`quiet_lightning` is the one place that hushes Lightning's per-fit banners and the
warnings a library stage triggers on purpose (a single-worker loader, a frozen module in eval
mode, a fit with no validation loader).
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback, ProgressBar

from lightning_unlearn.progress import progress_callbacks

__all__ = ["DeviceSettings", "ReleaseSpawnedProcessGroup", "build_trainer", "quiet_lightning"]

#: Warnings a library stage triggers on purpose; each is explained where it arises.
_EXPECTED_WARNINGS = (
    ".*does not have many workers.*",  # small in-memory splits: workers would cost more than they save
    ".*smaller than the logging interval.*",  # forget sets of a few batches
    ".*but have no `val_dataloader`.*",  # training runs without validation on purpose (the timing policy)
    ".*no `validation_step`.*",
    ".*module\\(s\\) in eval mode.*",  # Forsaken's frozen target stays in eval mode
    ".*configure_optimizers` returned `None`.*",  # SMU subtracts gradients: no optimiser
    ".*isinstance\\(treespec, LeafSpec\\).*",
    "Full backward hook is firing",  # Opacus's per-sample hooks under SISA-DP
)


@dataclass(frozen=True)
class DeviceSettings:
    """Where a stage runs: Lightning's ``accelerator``, ``devices``, ``strategy`` and ``precision``.

    The defaults are Lightning's own, except ``devices=1``: a library stage uses one device
    unless the user asks for more (``devices=2, strategy="ddp"``).

    Args:
        accelerator: ``"auto"``, ``"cpu"``, ``"gpu"``, ``"cuda"``, ``"mps"``, …
        devices: how many devices, which ones, or ``"auto"``.
        strategy: ``"auto"``, ``"ddp"``, ``"ddp_spawn"``, … or a Lightning ``Strategy``.
        precision: Lightning's precision (``"32-true"``, ``"bf16-mixed"``, …); ``None`` keeps its default.

    Raises:
        ValueError: an empty accelerator or strategy name, or ``devices`` below 1.

    Example:
        >>> DeviceSettings(accelerator="cpu", devices=2, strategy="ddp_spawn").trainer_kwargs()
        {'accelerator': 'cpu', 'devices': 2, 'strategy': 'ddp_spawn'}
    """

    accelerator: str = "auto"
    devices: int | str | Sequence[int] = 1
    strategy: Any = "auto"
    precision: str | int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.accelerator, str) or not self.accelerator:
            raise ValueError(f"Expected `accelerator` to be an accelerator name, but got {self.accelerator!r}.")
        if isinstance(self.strategy, str) and not self.strategy:
            raise ValueError(f"Expected `strategy` to be a Lightning strategy name, but got {self.strategy!r}.")
        if isinstance(self.devices, bool) or (isinstance(self.devices, int) and self.devices < 1):
            raise ValueError(f"Expected `devices` to be a positive integer, a list or 'auto', but got {self.devices}.")

    def trainer_kwargs(self) -> dict[str, Any]:
        """The settings as :class:`lightning.Trainer` keyword arguments (``precision`` only when set)."""
        settings = asdict(self)
        if settings["precision"] is None:
            del settings["precision"]
        if isinstance(self.devices, Sequence) and not isinstance(self.devices, str):
            settings["devices"] = list(self.devices)
        return settings

    def inference_device(self) -> torch.device:
        """The device plain inference (the evaluation, the oracle's features) runs on: the first one of these settings.

        ``"auto"`` picks CUDA when it is available, else Apple's MPS, else the CPU, as Lightning does.

        Example:
            >>> DeviceSettings(accelerator="cpu").inference_device()
            device(type='cpu')
        """
        kind = self.accelerator
        if kind == "auto":
            kind = "cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu"
        if kind in ("gpu", "cuda"):
            index = self.devices[0] if isinstance(self.devices, Sequence) and not isinstance(self.devices, str) else 0
            return torch.device("cuda", int(index))
        return torch.device("mps" if kind == "mps" else "cpu")


def build_trainer(
    device_settings: DeviceSettings | None = None,
    *,
    progress_bar: bool = False,
    callbacks: Callback | Sequence[Callback] | None = None,
    **overrides: Any,
) -> L.Trainer:
    """A quiet :class:`lightning.Trainer` for one library stage.

    Args:
        device_settings: where it runs (default :class:`DeviceSettings`: ``accelerator="auto"``, one
            device).
        progress_bar: show a progress bar, on stderr (stdout keeps the results); off by default.
        callbacks: callbacks for the fit.
        **overrides: any other :class:`lightning.Trainer` argument (``max_epochs``, ``max_steps``,
            ``limit_val_batches``, …); they win over the quiet defaults, and ``accelerator``,
            ``devices``, ``strategy`` or ``precision`` given here win over ``device_settings``.

    Returns:
        The Trainer: no logger, no checkpointing, no model summary, no sanity validation.

    Example:
        >>> trainer = build_trainer(DeviceSettings(accelerator="cpu"), max_epochs=3)
        >>> trainer.max_epochs, trainer.logger is None, type(trainer.accelerator).__name__
        (3, True, 'CPUAccelerator')
    """
    given = [] if callbacks is None else [callbacks] if isinstance(callbacks, Callback) else list(callbacks)
    settings: dict[str, Any] = dict(
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        enable_progress_bar=progress_bar,
    )
    settings.update((device_settings or DeviceSettings()).trainer_kwargs())
    settings.update(overrides)
    if settings["enable_progress_bar"] and not any(isinstance(c, ProgressBar) for c in given):
        given = [*given, *progress_callbacks(True)]
    settings["callbacks"] = given
    with quiet_lightning():  # the "GPU available / TPU available" banners
        trainer = L.Trainer(**settings)
        # Only where workers are started by multiprocessing (ddp_spawn, ddp_fork, ddp_notebook), which the resolved
        # strategy tells: every callback costs a little at every step, which a one-process fit would feel.
        if getattr(trainer.strategy, "_start_method", None) in ("spawn", "fork", "forkserver"):
            trainer = L.Trainer(**{**settings, "callbacks": [*given, ReleaseSpawnedProcessGroup()]})
    return trainer


class ReleaseSpawnedProcessGroup(Callback):
    """Destroys the process group when a stage ends in a worker that ``ddp_spawn`` (or ``ddp_fork``) started.

    Such a worker leaves through ``os._exit``, which skips the ``atexit`` handler Lightning destroys
    the group with; gloo's threads are then torn down with the interpreter and can abort the
    worker as it exits ("terminate called without an active exception", SIGABRT), failing a fit
    that had finished. Nothing after ``teardown`` in the worker communicates (rank 0 only writes
    its weights for the main process), and processes the ``ddp`` launcher starts, which exit
    normally, keep the group to the end; in the main process it does nothing.

    :func:`build_trainer` adds it wherever the strategy spawns workers. Add it to a Trainer of
    your own that runs ``ddp_spawn``: ``L.Trainer(strategy="ddp_spawn", callbacks=[ReleaseSpawnedProcessGroup()])``.
    """

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if multiprocessing.parent_process() is None:  # the main process, or one the ddp launcher started
            return
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


@contextlib.contextmanager
def quiet_lightning() -> Iterator[None]:
    """Hush Lightning's per-fit banners and the warnings a library stage triggers on purpose.

    A comparison runs dozens of fits (SISA alone S × R); their banners would bury the results.
    Warnings about the user's own settings still come through.
    """
    loggers = [logging.getLogger(name) for name in ("lightning.pytorch", "lightning.fabric")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            for message in _EXPECTED_WARNINGS:
                warnings.filterwarnings("ignore", message=message)
            yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)
