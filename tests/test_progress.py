"""Progress bars go to stderr, and appear by default only when stderr is a terminal."""

from __future__ import annotations

import io
import sys

import lightning as L
import pytest
from lightning.pytorch.callbacks import TQDMProgressBar
from lightning.pytorch.demos.boring_classes import BoringModel

from lightning_unlearn import TrainingRecipe
from lightning_unlearn.progress import StderrProgressBar, show_progress


def test_the_bar_is_drawn_on_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    trainer = L.Trainer(
        max_epochs=1,
        limit_train_batches=2,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        callbacks=[StderrProgressBar()],
    )
    trainer.fit(BoringModel())
    captured = capsys.readouterr()
    assert "Epoch 0" in captured.err
    assert "Epoch 0" not in captured.out


def test_recipe_trainers_use_the_stderr_bar_unless_told_otherwise() -> None:
    recipe = TrainingRecipe(max_epochs=1)
    assert isinstance(recipe.build_trainer().progress_bar_callback, StderrProgressBar)
    assert recipe.build_trainer(enable_progress_bar=False).progress_bar_callback is None
    own = TQDMProgressBar(refresh_rate=5)
    assert recipe.build_trainer(callbacks=[own]).progress_bar_callback is own


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_automatic_means_only_when_stderr_is_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    assert show_progress(None) is False
    monkeypatch.setattr(sys, "stderr", _Terminal())
    assert show_progress(None) is True
    assert show_progress(False) is False


def test_a_setting_that_is_not_a_boolean_is_refused() -> None:
    with pytest.raises(TypeError, match=r"Expected `progress_bar` to be a boolean or None, but got str\."):
        show_progress("yes")  # type: ignore[arg-type]
