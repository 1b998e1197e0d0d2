"""Shared test set-up: quiet, offline, deterministic, and sized for a 2-core machine."""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable

import pytest
import torch

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
torch.set_num_threads(1)  # tiny models: one thread is faster and steadier on 2 shared cores
warnings.filterwarnings("ignore", message=".*does not have many workers.*")


@pytest.fixture(autouse=True)
def _quiet_lightning(monkeypatch: pytest.MonkeyPatch) -> None:
    """Lightning's tips and device banners are noise in test output."""
    import logging

    for name in ("lightning.pytorch", "lightning.fabric", "lightning.pytorch.utilities.rank_zero"):
        logging.getLogger(name).setLevel(logging.WARNING)


@pytest.fixture
def attach() -> Callable[[object, object], None]:
    """Attach a datamodule to an unlearning method the Lightning way, with a fit of no epochs.

    For tests that inspect what a method reads (its loaders, its labels) without training it.
    """
    import lightning as L

    def attach_to(module: object, datamodule: object) -> None:
        trainer = L.Trainer(
            max_epochs=0,
            logger=False,
            enable_progress_bar=False,
            enable_checkpointing=False,
            enable_model_summary=False,
        )
        trainer.fit(module, datamodule=datamodule)  # type: ignore[arg-type]

    return attach_to
