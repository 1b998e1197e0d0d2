"""run_experiment(lira=K): reference models trained once, then cached, and LiRA in every report row."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lightning_unlearn import DigitsDataModule, TrainingRecipe
from lightning_unlearn.pipeline import run_experiment


@pytest.mark.parametrize("lira", [2, -1, True])
def test_lira_must_be_off_or_at_least_four_models(tmp_path: Path, lira: int) -> None:
    with pytest.raises(ValueError, match=r"Expected `lira` to be 0 \(off\) or at least 4 reference models, but got"):
        run_experiment(output_dir=tmp_path, cache_dir=None, lira=lira)


def test_lira_is_trained_once_then_cached_and_reported(tmp_path: Path) -> None:
    settings = dict(
        recipe=TrainingRecipe(max_epochs=20),
        methods={"finetune": {"max_epochs": 1}},
        cache_dir=tmp_path / "cache",
        progress_bar=False,
        plots=False,
        repeats=1,
        lira=4,
    )
    first = run_experiment(DigitsDataModule(), output_dir=tmp_path / "one", **settings)  # type: ignore[arg-type]
    assert first.reused["lira_references"] is False and first.stage_seconds["lira_references"] > 0
    second = run_experiment(DigitsDataModule(), output_dir=tmp_path / "two", **settings)  # type: ignore[arg-type]
    assert second.reused == {"target": True, "oracle": True, "lira_references": True}
    payload = json.loads((tmp_path / "two" / "report.json").read_text())
    rows = {row["name"]: row for row in payload["report"]["models"]}
    assert set(rows) == {"original", "finetune", "retrained"}
    for row in rows.values():
        assert row["lira"]["num_models"] == 4 and len(row["lira"]["member_scores"]) == 179
    assert first.report.model("original").lira == second.report.model("original").lira  # same cached references
    assert "| LiRA AUC | LiRA TPR@1%FPR |" in (tmp_path / "two" / "report.md").read_text()
