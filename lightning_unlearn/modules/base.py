"""The one contract every unlearning method keeps: :class:`UnlearningMethod`.

A method is a LightningModule built from the trained target (copied, never modified) and its
own settings. Its data arrives the Lightning way, ``trainer.fit(method, datamodule=dm)`` with an
:class:`~lightning_unlearn.datamodules.UnlearningDataModule`, and while it fits the datamodule's
``train_dataloader`` and ``val_dataloader`` defer to the method's, so the method chooses which
splits it trains and validates on. A method declares those splits in :attr:`~UnlearningMethod.reads`;
asking for any other split raises, and ``test`` and ``heldout`` (the final report's) can never
be declared. After the fit, :meth:`~UnlearningMethod.unlearned_model` returns a plain module of
the target's architecture, and :func:`fit_method` runs and times one method on the devices the
caller names.

Forsaken, FNN and every baseline (retraining, SMU, fine-tuning, NegGrad, NegGrad+, random
labels, SalUn, SCRUB, ℓ1-sparse) are subclasses. :class:`~lightning_unlearn.modules.SISAEnsemble`
is not: SISA trains S × R constituents of its own on shards and slices of the training set, keeps
them on disk, and answers deletion requests later, which no single fit over a datamodule can
express; it takes the recipe's devices for every constituent instead.

A subclass in a user's own package joins ``lightning-unlearn experiment`` by ``class_path``
(see :mod:`lightning_unlearn.pipeline`).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, ClassVar, NamedTuple

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from torch import nn
from torch.utils.data import DataLoader

from lightning_unlearn.classifier import output_classes
from lightning_unlearn.datamodules.base import IndexedBatch, SplitReader, UnlearningDataModule
from lightning_unlearn.datamodules.splits import REPORT_ONLY_SPLITS, SPLIT_NAMES
from lightning_unlearn.trainers import DeviceSettings, build_trainer, quiet_lightning

__all__ = ["MethodRun", "UnlearningMethod", "fit_method", "target_network"]


def target_network(target: nn.Module) -> nn.Module:
    """The classifier network of ``target``: a LightningModule's ``backbone``, or ``target`` itself.

    Raises:
        TypeError: ``target`` is not an ``nn.Module``.
    """
    if not isinstance(target, nn.Module):
        raise TypeError(f"Expected `target` to be an nn.Module, but got {type(target).__name__}.")
    backbone = getattr(target, "backbone", None)
    return backbone if isinstance(target, L.LightningModule) and isinstance(backbone, nn.Module) else target


class UnlearningMethod(SplitReader, L.LightningModule):
    """Base class of the unlearning methods: one data contract, one result.

    Subclasses set :attr:`reads` and implement :meth:`unlearned_model`; they override the
    Lightning hooks they need (``training_step``, ``configure_optimizers``,
    ``train_dataloader``, ``val_dataloader``, ``validation_step``) and may add Trainer settings
    in :meth:`fit_settings`. Data is read through :meth:`split_dataloader` or :meth:`whole_split`,
    which refuse a split not declared in :attr:`reads`.

    Args:
        target: the trained classifier (a network or a ``ClassifierModule``).

    Raises:
        TypeError: ``target`` is not an ``nn.Module``.
        ValueError: ``target`` neither declares ``num_classes`` nor ends in an ``nn.Linear``.

    Example:
        >>> from lightning_unlearn.models import MLP
        >>> import copy
        >>> class Unchanged(UnlearningMethod):  # the smallest method: returns the target as it is
        ...     reads = ("retain",)
        ...     def __init__(self, target):
        ...         super().__init__(target)
        ...         self.model = copy.deepcopy(target_network(target))
        ...     def unlearned_model(self):
        ...         return copy.deepcopy(self.model).eval()
        >>> Unchanged(MLP(64, 10)).num_classes
        10
    """

    #: The splits this method reads while it fits (never ``test`` or ``heldout``).
    reads: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        unknown = [split for split in cls.reads if split not in SPLIT_NAMES]
        if unknown:
            raise TypeError(
                f"Expected `{cls.__name__}.reads` to name splits of {list(SPLIT_NAMES)}, but got {unknown}."
            )
        reported = [split for split in cls.reads if split in REPORT_ONLY_SPLITS]
        if reported:
            raise TypeError(
                f"Expected `{cls.__name__}.reads` to leave out {list(REPORT_ONLY_SPLITS)} (the final report's), but"
                f" it names {reported}."
            )

    def __init__(self, target: nn.Module) -> None:
        super().__init__()
        num_classes = output_classes(target_network(target))  # subclasses keep their own copy of the target
        if num_classes is None:
            raise ValueError("Expected `target` to declare `num_classes` or end in an nn.Linear, but it does neither.")
        self.num_classes = num_classes
        self.history: list[dict[str, Any]] = []

    # ------------------------------------------------------------------ data
    @property
    def unlearning_data(self) -> UnlearningDataModule:
        """The datamodule this method is being fitted (or validated) with.

        Raises:
            RuntimeError: the method is not attached to a Trainer with an ``UnlearningDataModule``.
        """
        trainer = self._trainer
        datamodule = getattr(trainer, "datamodule", None) if trainer is not None else None
        if not isinstance(datamodule, UnlearningDataModule):
            raise RuntimeError(
                f"Expected `trainer.fit({type(self).__name__.lower()}, datamodule=dm)` with an UnlearningDataModule"
                f" (the splits come from it), but got {type(datamodule).__name__}."
            )
        return datamodule

    def _declared(self, split: str) -> None:
        if split not in self.reads:
            raise RuntimeError(
                f"Expected {type(self).__name__} to read only the splits it declares in `reads` ({list(self.reads)}),"
                f" but it asked for {split!r}."
            )

    def split_dataloader(self, split: str, shuffle: bool = False, batch_size: int | None = None) -> DataLoader:
        """A DataLoader over ``split`` of the attached datamodule (a split declared in :attr:`reads`)."""
        self._declared(split)
        return self.unlearning_data.dataloader(split, shuffle=shuffle, batch_size=batch_size)

    def whole_split(self, split: str, limit: int | None = None) -> IndexedBatch:
        """The first ``limit`` samples of ``split`` (all by default) as one batch, on the CPU."""
        self._declared(split)
        datamodule = self.unlearning_data
        size = len(datamodule.dataset(split))
        size = size if limit is None else min(limit, size)
        if size == 0:
            empty = torch.empty(0, dtype=torch.long)
            return IndexedBatch(torch.empty((0, *datamodule.input_shape)), empty, empty)
        inputs, targets, indices = next(iter(datamodule.dataloader(split, shuffle=False, batch_size=size)))
        return IndexedBatch(inputs, targets, indices)

    def setup(self, stage: str) -> None:
        """Check the attached datamodule: an ``UnlearningDataModule`` with the target's classes."""
        datamodule = self.unlearning_data
        datamodule.setup("fit")
        if datamodule.num_classes != self.num_classes:
            raise RuntimeError(
                f"Expected `target` to produce {datamodule.num_classes} logits (the datamodule's classes), but it"
                f" produces {self.num_classes}."
            )

    def train_dataloader(self) -> Any:
        """The training loader (default: ``retain``, shuffled, when declared in :attr:`reads`)."""
        return self.split_dataloader("retain", shuffle=True)

    def val_dataloader(self) -> Any:
        """The validation loaders (default: none)."""
        return []

    # ------------------------------------------------------------------ result
    def fit_settings(self) -> dict[str, Any]:
        """Trainer arguments this method needs for a fit (``max_epochs``, ``max_steps``, …); none by default."""
        return {}

    def unlearned_model(self) -> nn.Module:
        """The unlearned classifier: a plain module of the target's architecture, in eval mode."""
        raise NotImplementedError(f"Expected {type(self).__name__} to implement `unlearned_model()`.")


class MethodRun(NamedTuple):
    """The unlearned model and the seconds of the unlearning step (``Trainer.fit``, no evaluation)."""

    model: nn.Module
    seconds: float


def fit_method(
    method: UnlearningMethod,
    datamodule: UnlearningDataModule,
    device_settings: DeviceSettings | None = None,
    *,
    seed: int = 0,
    progress_bar: bool = False,
    callbacks: Callback | Sequence[Callback] | None = None,
    **trainer_kwargs: Any,
) -> MethodRun:
    """Fit one unlearning method on ``datamodule`` and time the fit.

    Args:
        method: the configured method.
        datamodule: the splits.
        device_settings: where it runs (default: ``accelerator="auto"``, one device).
        seed: seeds the run.
        progress_bar: show a progress bar on stderr.
        callbacks: callbacks for the fit (they run inside the timer).
        **trainer_kwargs: anything else for :class:`lightning.Trainer`; wins over
            :meth:`UnlearningMethod.fit_settings`.

    Returns:
        ``(model, seconds)``: :meth:`UnlearningMethod.unlearned_model` and the seconds of ``Trainer.fit``.

    Raises:
        TypeError: ``method`` is not an UnlearningMethod or ``datamodule`` not an UnlearningDataModule.
    """
    if not isinstance(method, UnlearningMethod):
        raise TypeError(f"Expected `method` to be an UnlearningMethod, but got {type(method).__name__}.")
    if not isinstance(datamodule, UnlearningDataModule):
        raise TypeError(f"Expected `datamodule` to be an UnlearningDataModule, but got {type(datamodule).__name__}.")
    settings = {**method.fit_settings(), **trainer_kwargs}
    L.seed_everything(seed, verbose=False)
    trainer = build_trainer(device_settings, progress_bar=progress_bar, callbacks=callbacks, **settings)
    with quiet_lightning():
        start = time.perf_counter()
        trainer.fit(method, datamodule=datamodule)
        seconds = time.perf_counter() - start
    return MethodRun(method.unlearned_model(), seconds)
