"""``ClassifierModule``: the one recipe that trains the target, the shadow and the retrained model."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import nn
from torchmetrics.classification import MulticlassAccuracy

from lightning_unlearn.datamodules.base import IndexedBatch
from lightning_unlearn.models import LossName

__all__ = ["ClassifierModule", "classification_loss", "output_classes"]


def classification_loss(logits: torch.Tensor, targets: torch.Tensor, loss: LossName) -> torch.Tensor:
    """Cross-entropy, or the multi-class hinge loss of a linear SVM."""
    if loss == "hinge":
        return F.multi_margin_loss(logits, targets)
    return F.cross_entropy(logits, targets)


def output_classes(backbone: nn.Module) -> int | None:
    """The number of logits a backbone produces, read from ``num_classes`` or its last Linear."""
    declared = getattr(backbone, "num_classes", None)
    if isinstance(declared, int):
        return declared
    linears = [m for m in backbone.modules() if isinstance(m, nn.Linear)]
    return linears[-1].out_features if linears else None


class ClassifierModule(L.LightningModule):
    """Trains any classifier backbone with cross-entropy (or hinge loss for a linear SVM).

    The same recipe trains the target (on ``target_train``), the shadow model (on
    ``shadow_train``, with the datamodule's ``side="shadow"``) and the retrained reference
    (on ``retain``). Batches are :class:`~lightning_unlearn.datamodules.IndexedBatch`
    triples; accuracy is logged per stage as ``train/acc``, ``val/acc`` and ``test/acc``.

    Args:
        backbone: the network mapping inputs to logits (see :mod:`lightning_unlearn.models`).
        loss: ``"cross_entropy"`` or ``"hinge"``; by default the backbone's ``default_loss``
            (hinge for :class:`~lightning_unlearn.models.LinearSVM`), else cross-entropy.
        optimizer: builds the optimiser from the parameters (default Adam, lr 1e-3).
        scheduler: optionally builds a learning-rate scheduler from the optimiser.

    Raises:
        TypeError: ``backbone`` is not an ``nn.Module``.
        ValueError: an unknown ``loss``.
        RuntimeError: the backbone's number of outputs differs from the datamodule's classes.

    Example:
        >>> from lightning_unlearn.models import MLP
        >>> module = ClassifierModule(MLP(64, 5))
        >>> module(torch.zeros(3, 64)).shape
        torch.Size([3, 5])
    """

    def __init__(
        self,
        backbone: nn.Module,
        loss: LossName | None = None,
        optimizer: OptimizerCallable = torch.optim.Adam,
        scheduler: LRSchedulerCallable | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(backbone, nn.Module):
            raise TypeError(f"Expected `backbone` to be an nn.Module, but got {type(backbone).__name__}.")
        loss = loss if loss is not None else getattr(backbone, "default_loss", "cross_entropy")
        if loss not in ("cross_entropy", "hinge"):
            raise ValueError(f"Expected `loss` to be 'cross_entropy' or 'hinge', but got {loss!r}.")
        self.save_hyperparameters(ignore=["backbone", "optimizer", "scheduler"])
        self.backbone = backbone
        self.loss_name: LossName = loss
        self.optimizer = optimizer
        self.scheduler = scheduler
        num_classes = output_classes(backbone)
        if num_classes is None:
            raise ValueError(
                "Expected `backbone` to declare `num_classes` or end in an nn.Linear, but it does neither."
            )
        self.num_classes = num_classes
        self.train_acc = MulticlassAccuracy(num_classes, average="micro")
        self.val_acc = MulticlassAccuracy(num_classes, average="micro")
        self.test_acc = MulticlassAccuracy(num_classes, average="micro")

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.backbone(inputs)

    def setup(self, stage: str) -> None:
        datamodule = getattr(self.trainer, "datamodule", None) if self._trainer is not None else None
        expected = getattr(datamodule, "num_classes", None) if datamodule is not None else None
        if isinstance(expected, int) and expected != self.num_classes:
            raise RuntimeError(
                f"Expected the backbone to produce {expected} logits (the datamodule's classes), but it"
                f" produces {self.num_classes}. Set the backbone's `num_classes` to {expected}."
            )

    def _shared_step(self, batch: IndexedBatch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        inputs, targets = batch[0], batch[1]
        logits = self(inputs)
        return classification_loss(logits, targets, self.loss_name), logits, targets

    def training_step(self, batch: IndexedBatch, batch_idx: int) -> torch.Tensor:
        loss, logits, targets = self._shared_step(batch)
        self.train_acc(logits, targets)
        self.log("train/loss", loss, prog_bar=True)
        self.log("train/acc", self.train_acc, on_step=False, on_epoch=True, prog_bar=True)
        return loss

    def validation_step(self, batch: IndexedBatch, batch_idx: int) -> None:
        loss, logits, targets = self._shared_step(batch)
        self.val_acc(logits, targets)
        self.log("val/loss", loss, sync_dist=True)
        self.log("val/acc", self.val_acc, prog_bar=True)

    def test_step(self, batch: IndexedBatch, batch_idx: int) -> None:
        loss, logits, targets = self._shared_step(batch)
        self.test_acc(logits, targets)
        self.log("test/loss", loss, sync_dist=True)
        self.log("test/acc", self.test_acc)

    def predict_step(self, batch: IndexedBatch, batch_idx: int, dataloader_idx: int = 0) -> dict[str, torch.Tensor]:
        """Logits with the labels and global indices they belong to."""
        return {"logits": self(batch[0]), "targets": batch[1], "indices": batch[2]}

    def configure_optimizers(self) -> Any:
        optimizer = self.optimizer(self.parameters())
        if self.scheduler is None:
            return optimizer
        return {"optimizer": optimizer, "lr_scheduler": self.scheduler(optimizer)}
