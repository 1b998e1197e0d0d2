"""The training recipe shared by the target, the shadow and the retrained model.

Full retraining is the gold standard of unlearning, and the shadow model of the membership
oracle must imitate the target. Both only mean something if they are trained exactly like
the target, so the recipe is one object: :class:`TrainingRecipe`.
"""

from __future__ import annotations

import copy
import math
import time
import warnings
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Literal

import lightning as L
import torch
from torch import nn

from lightning_unlearn.classifier import ClassifierModule
from lightning_unlearn.datamodules.base import UnlearningDataModule
from lightning_unlearn.models import MLP
from lightning_unlearn.trainers import DeviceSettings, build_trainer

__all__ = ["TrainedModel", "TrainingRecipe", "fresh_copy", "train_classifier"]


def fresh_copy(backbone: nn.Module, seed: int) -> nn.Module:
    """A deep copy of ``backbone`` with every layer re-initialised from ``seed``."""
    model = copy.deepcopy(backbone)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for module in model.modules():
            reset = getattr(module, "reset_parameters", None)
            if callable(reset):
                reset()
    return model


@dataclass
class TrainingRecipe:
    """How a classifier is trained: architecture, optimiser and schedule.

    Args:
        backbone: the architecture (None: an MLP sized to the data), re-initialised per run.
        max_epochs: training epochs.
        learning_rate: Adam's learning rate.
        weight_decay: Adam's weight decay.
        seed: seeds initialisation and data order.
        accelerator: auto, cpu, gpu, …
        devices: how many.
        strategy: auto, ddp, …
        precision: e.g. bf16-mixed.
        trainer_kwargs: anything else for the Trainer.

    Every stage of a run — target, shadow, retraining, each method, the LiRA references, the
    evaluation — runs where the recipe says (:meth:`device_settings`).

    Raises:
        ValueError: ``max_epochs`` below 1 or a learning rate that is not positive.
    """

    backbone: nn.Module | None = None
    max_epochs: int = 60
    learning_rate: float = 3e-3
    weight_decay: float = 0.0
    seed: int = 0
    accelerator: str = "auto"
    devices: int | str = 1
    strategy: str = "auto"
    precision: str | int | None = None
    trainer_kwargs: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.max_epochs, int) or self.max_epochs < 1:
            raise ValueError(f"Expected `max_epochs` to be a positive integer, but got {self.max_epochs!r}.")
        if not self.learning_rate > 0:
            raise ValueError(f"Expected `learning_rate` to be positive, but got {self.learning_rate!r}.")
        if self.weight_decay < 0:
            raise ValueError(f"Expected `weight_decay` to be non-negative, but got {self.weight_decay!r}.")
        self.device_settings()  # checks accelerator, devices and strategy now, before any training

    def device_settings(self) -> DeviceSettings:
        """Where every stage of a run with this recipe runs (accelerator, devices, strategy, precision)."""
        return DeviceSettings(self.accelerator, self.devices, self.strategy, self.precision)

    def describe(self, datamodule: UnlearningDataModule) -> dict[str, Any]:
        """What a model trained with this recipe on ``datamodule`` depends on, for cache keys.

        The data order depends on the datamodule's batch size, so it is part of the description.
        """
        return {
            "backbone": None if self.backbone is None else repr(self.backbone),
            "max_epochs": self.max_epochs,
            "learning_rate": self.learning_rate,
            "weight_decay": self.weight_decay,
            "seed": self.seed,
            "batch_size": datamodule.batch_size,
        }

    def build_backbone(self, datamodule: UnlearningDataModule) -> nn.Module:
        """A freshly initialised backbone for ``datamodule``'s inputs and classes."""
        if self.backbone is None:
            template: nn.Module = MLP(math.prod(datamodule.input_shape), datamodule.num_classes)
        else:
            template = self.backbone
        return fresh_copy(template, self.seed)

    def build_module(self, datamodule: UnlearningDataModule) -> ClassifierModule:
        """A :class:`ClassifierModule` ready to train with this recipe."""
        optimizer = partial(torch.optim.Adam, lr=self.learning_rate, weight_decay=self.weight_decay)
        return ClassifierModule(self.build_backbone(datamodule), optimizer=optimizer)

    def build_trainer(self, **overrides: Any) -> L.Trainer:
        """A Trainer with this recipe's schedule and devices; ``overrides`` win over ``trainer_kwargs``.

        Its progress bar, unless ``enable_progress_bar=False``, is a
        :class:`~lightning_unlearn.progress.StderrProgressBar`: stdout keeps the results.
        """
        settings: dict[str, Any] = dict(max_epochs=self.max_epochs, check_val_every_n_epoch=self.max_epochs)
        settings.update(self.trainer_kwargs)
        settings.update(overrides)
        progress_bar = bool(settings.pop("enable_progress_bar", True))
        return build_trainer(self.device_settings(), progress_bar=progress_bar, **settings)


@dataclass
class TrainedModel:
    """A trained classifier with the time its training took."""

    module: ClassifierModule
    seconds: float
    train_split: str


def train_classifier(
    recipe: TrainingRecipe,
    datamodule: UnlearningDataModule,
    train_split: Literal["target_train", "shadow_train", "retain"] = "target_train",
    **trainer_overrides: Any,
) -> TrainedModel:
    """Train a fresh classifier with ``recipe`` on one split of ``datamodule``.

    ``target_train`` gives the target, ``shadow_train`` the shadow model, ``retain`` the
    retrained reference. The returned time covers ``Trainer.fit`` alone, and the fit runs no
    validation: the time is training alone (the timing policy of docs/evaluation.md), and no
    split the final report reads (``test``, ``heldout``) is touched.

    Raises:
        ValueError: an unknown ``train_split``.
    """
    if train_split not in ("target_train", "shadow_train", "retain"):
        raise ValueError(
            f"Expected `train_split` to be 'target_train', 'shadow_train' or 'retain', but got {train_split!r}."
        )
    datamodule.setup("fit")
    L.seed_everything(recipe.seed, verbose=False)
    module = recipe.build_module(datamodule)
    trainer = recipe.build_trainer(**trainer_overrides)
    train_loader = datamodule.dataloader(train_split, shuffle=True)
    start = time.perf_counter()
    with warnings.catch_warnings():  # no validation on purpose (see above)
        warnings.filterwarnings("ignore", message=r".*`validation_step` but have no `val_dataloader`.*")
        trainer.fit(module, train_dataloaders=train_loader)
    seconds = time.perf_counter() - start
    module.eval()
    return TrainedModel(module=module, seconds=seconds, train_split=train_split)
