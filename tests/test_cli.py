"""The ``lightning-unlearn`` command, and every shipped YAML config."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml

from lightning_unlearn.cli import main

CONFIGS = sorted((Path(__file__).parents[1] / "configs").rglob("*.yaml"))
LIGHTNING_CONFIGS = [c for c in CONFIGS if "trainer" in yaml.safe_load(c.read_text())]
EXPERIMENT_CONFIGS = [c for c in CONFIGS if c not in LIGHTNING_CONFIGS]


def test_configs_are_shipped() -> None:
    assert LIGHTNING_CONFIGS and EXPERIMENT_CONFIGS


@pytest.mark.parametrize("config", LIGHTNING_CONFIGS, ids=lambda p: str(p.relative_to(p.parents[1])))
def test_every_lightning_config_runs(config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "argv", ["lightning-unlearn"])
    main(
        [
            "fit",
            "--config",
            str(config),
            "--trainer.fast_dev_run=true",
            f"--trainer.default_root_dir={tmp_path}",
            "--trainer.enable_progress_bar=false",
        ]
    )


@pytest.mark.parametrize("config", EXPERIMENT_CONFIGS, ids=lambda p: str(p.relative_to(p.parents[1])))
def test_every_experiment_config_runs(config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main(
        [
            "experiment",
            "--config",
            str(config),
            "--recipe.max_epochs=2",
            f"--output_dir={tmp_path}",
            "--progress_bar=false",
        ]
    )
    printed = capsys.readouterr().out
    assert "Accuracy (share of samples predicted as their split's label)" in printed
    assert {p.name for p in tmp_path.iterdir()} == {"manifest.json", "target.pt", "shadow.pt", "training.json"}
    report = json.loads((tmp_path / "training.json").read_text())
    assert [m["name"] for m in report["models"]] == ["target", "shadow"]
    assert 0.0 <= report["models"][0]["accuracy"]["test"] <= 1.0


def test_experiment_prints_its_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["experiment", "--help"])
    assert exit_info.value.code == 0
    assert "--recipe.max_epochs" in capsys.readouterr().out


def test_usage_without_a_command(capsys: pytest.CaptureFixture[str]) -> None:
    main([])
    assert "usage: lightning-unlearn {experiment,fit,validate,test,predict}" in capsys.readouterr().out


def test_unknown_command_is_refused() -> None:
    with pytest.raises(
        SystemExit,
        match=r"expected a command from experiment, fit, validate, test, predict, but got "
        r"'unlearn'",
    ):
        main(["unlearn"])
