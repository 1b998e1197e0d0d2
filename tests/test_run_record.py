"""A run records its settings, versions and device beside its report."""

from __future__ import annotations

import json
from pathlib import Path

import lightning
import torch

import lightning_unlearn
from lightning_unlearn import DigitsDataModule, TrainingRecipe
from lightning_unlearn.run_record import environment, experiment_settings, write_config, write_run_record


def test_the_environment_names_versions_and_device() -> None:
    found = environment()
    assert found["lightning_unlearn"] == lightning_unlearn.__version__
    assert found["torch"] == torch.__version__ and found["lightning"] == lightning.__version__
    assert found["device"] == (torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu")


def test_the_record_fills_every_default(tmp_path: Path) -> None:
    settings = experiment_settings(
        DigitsDataModule(forget_size=100),
        TrainingRecipe(max_epochs=3),
        {"forsaken": {"iterations": 7}, "sisa": {}},
        seed=1,
        progress_bar=False,
    )
    path = write_run_record(tmp_path, settings)
    record = json.loads(path.read_text())
    data = record["settings"]["data"]
    assert data["class"] == "lightning_unlearn.datamodules.digits.DigitsDataModule"
    assert data["forget_size"] == 100 and data["kind"] == "ood_label_split"
    assert data["source"] == "lightning_unlearn.datamodules.sources.digits.DigitsSource"
    assert record["settings"]["recipe"]["max_epochs"] == 3
    forsaken = record["settings"]["methods"]["forsaken"]
    assert forsaken["iterations"] == 7 and forsaken["posterior"] == "per_class"
    assert forsaken["optimizer"] == "lightning_unlearn.modules.forsaken.default_generator_optimizer"
    assert record["settings"]["methods"]["sisa"]["progress_bar"] is False, "SISA's bar follows the run's"
    assert record["settings"]["seed"] == 1
    assert record["environment"]["torch"] == torch.__version__


def test_the_config_is_written_as_given(tmp_path: Path) -> None:
    path = write_config(tmp_path / "new", "seed: 3\n")
    assert path.read_text() == "seed: 3\n"
