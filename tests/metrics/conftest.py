"""The digits OOD scenario, trained once per test session: target, retrained model, shadow + oracle."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest
import torch
from torch import nn

from lightning_unlearn import DigitsDataModule, TrainingRecipe, train_classifier
from lightning_unlearn.metrics import ShadowModelOracle

QUIET = {"enable_progress_bar": False}


@contextmanager
def one_torch_thread() -> Iterator[None]:
    """Tiny MLPs train faster, and far more steadily on a busy 2-core machine, on one thread."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@dataclass
class DigitsScenario:
    datamodule: DigitsDataModule
    recipe: TrainingRecipe
    target: nn.Module
    retrained: nn.Module
    oracle: ShadowModelOracle


@pytest.fixture(scope="session")
def digits_scenario() -> DigitsScenario:
    """The default digits OOD scenario (seed 0) with its three trained models and a fitted oracle."""
    datamodule = DigitsDataModule()
    datamodule.setup()
    recipe = TrainingRecipe()
    with one_torch_thread():
        target = train_classifier(recipe, datamodule, "target_train", **QUIET).module
        retrained = train_classifier(recipe, datamodule, "retain", **QUIET).module
        oracle = ShadowModelOracle().fit(recipe, datamodule, trainer_overrides=QUIET)
    return DigitsScenario(datamodule, recipe, target, retrained, oracle)
