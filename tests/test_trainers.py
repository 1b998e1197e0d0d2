"""The one Trainer factory and the method contract's checks."""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from lightning_unlearn import DigitsDataModule
from lightning_unlearn.models import MLP
from lightning_unlearn.modules.base import UnlearningMethod, fit_method, target_network
from lightning_unlearn.trainers import DeviceSettings, ReleaseSpawnedProcessGroup, build_trainer


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (dict(accelerator=""), r"Expected `accelerator` to be an accelerator name, but got ''\."),
        (dict(strategy=""), r"Expected `strategy` to be a Lightning strategy name, but got ''\."),
        (dict(devices=0), r"Expected `devices` to be a positive integer, a list or 'auto', but got 0\."),
        (dict(devices=True), r"Expected `devices` to be a positive integer, a list or 'auto', but got True\."),
    ],
)
def test_device_settings_refuse_bad_values(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        DeviceSettings(**settings)


def test_the_factory_takes_where_from_the_settings_and_the_rest_from_the_caller() -> None:
    trainer = build_trainer(DeviceSettings(accelerator="cpu", devices=1), max_steps=3, enable_progress_bar=False)
    assert type(trainer.accelerator).__name__ == "CPUAccelerator" and trainer.max_steps == 3
    assert trainer.logger is None and not trainer.checkpoint_callbacks
    assert DeviceSettings(accelerator="cpu", devices=[0]).trainer_kwargs()["devices"] == [0]
    assert DeviceSettings(accelerator="cpu").inference_device() == torch.device("cpu")
    assert "precision" not in DeviceSettings().trainer_kwargs()


class _Unchanged(UnlearningMethod):
    reads = ("retain",)

    def __init__(self, target: torch.nn.Module) -> None:
        super().__init__(target)
        self.model = copy.deepcopy(target_network(target))

    def fit_settings(self) -> dict[str, Any]:
        return {"max_steps": 1}

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        return (self.model(batch[0]) * 0).sum()

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.model.parameters(), lr=0.0)

    def unlearned_model(self) -> torch.nn.Module:
        return copy.deepcopy(self.model).eval()


def test_a_method_declaring_a_report_split_is_refused_when_defined() -> None:
    with pytest.raises(TypeError, match=r"Expected `Peeking.reads` to leave out \['test', 'heldout'\]"):

        class Peeking(_Unchanged):
            reads = ("retain", "heldout")


def test_a_method_declaring_an_unknown_split_is_refused_when_defined() -> None:
    with pytest.raises(TypeError, match=r"Expected `Typo.reads` to name splits of \[.*\], but got \['retian'\]\."):

        class Typo(_Unchanged):
            reads = ("retian",)


def test_a_split_not_declared_is_refused_while_fitting() -> None:
    class Undeclared(_Unchanged):
        def train_dataloader(self) -> Any:
            return self.split_dataloader("forget")

    dm = DigitsDataModule()
    with pytest.raises(RuntimeError, match=r"Expected Undeclared to read only the splits it declares in `reads` "):
        fit_method(Undeclared(MLP(64, 5)), dm, DeviceSettings(accelerator="cpu"))


def test_fit_method_runs_a_method_on_the_named_devices() -> None:
    run = fit_method(_Unchanged(MLP(64, 5)), DigitsDataModule(), DeviceSettings(accelerator="cpu"))
    assert type(run.model).__name__ == "MLP" and run.seconds > 0
    with pytest.raises(TypeError, match=r"Expected `datamodule` to be an UnlearningDataModule, but got NoneType\."):
        fit_method(_Unchanged(MLP(64, 5)), None)  # type: ignore[arg-type]


class _RecordsProcessGroup(L.LightningModule):
    """A one-step module whose ``teardown`` (after every callback's) writes whether the process group is still up."""

    def __init__(self, out: str) -> None:
        super().__init__()
        self.out = out
        self.layer = torch.nn.Linear(2, 1)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        return self.layer(batch[0]).sum()

    def train_dataloader(self) -> DataLoader:
        return DataLoader(TensorDataset(torch.ones(4, 2)), batch_size=2)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)

    def teardown(self, stage: str) -> None:
        rank = int(os.environ.get("LOCAL_RANK", "0"))
        Path(f"{self.out}.{rank}").write_text(json.dumps(torch.distributed.is_initialized()))


@pytest.mark.ddp
def test_spawned_workers_release_their_process_group(tmp_path: Path) -> None:
    # A ddp_spawn worker leaves through os._exit, which skips Lightning's atexit clean-up: the factory's
    # trainers destroy the group at teardown, so gloo's threads cannot abort a worker whose fit had finished.
    out = str(tmp_path / "initialized")
    trainer = build_trainer(DeviceSettings(accelerator="cpu", devices=2, strategy="ddp_spawn"), max_steps=1)
    trainer.fit(_RecordsProcessGroup(out))
    assert [json.loads(Path(f"{out}.{rank}").read_text()) for rank in (0, 1)] == [False, False]
    # In the main process (or a plain single-process fit) the factory leaves the group alone, and a trainer
    # that starts no worker carries no such callback (each one costs a little at every step).
    assert not torch.distributed.is_initialized()
    plain = build_trainer(DeviceSettings(accelerator="cpu"))
    assert not any(isinstance(callback, ReleaseSpawnedProcessGroup) for callback in plain.callbacks)
