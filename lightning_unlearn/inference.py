"""Running a trained classifier over a split: logits with labels and global indices."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.data import DataLoader

__all__ = ["Predictions", "predict"]


@dataclass(frozen=True)
class Predictions:
    """Logits of a model on a set of samples, aligned with their labels and global indices."""

    logits: torch.Tensor
    targets: torch.Tensor
    indices: torch.Tensor

    def __len__(self) -> int:
        return int(self.targets.shape[0])

    @property
    def posteriors(self) -> torch.Tensor:
        """Softmax of the logits."""
        return self.logits.softmax(dim=1)

    def accuracy(self) -> float:
        """Share of samples whose arg-max logit is their label (NaN when there is none)."""
        if len(self) == 0:
            return float("nan")
        return (self.logits.argmax(dim=1) == self.targets).float().mean().item()


@torch.no_grad()
def predict(model: nn.Module, dataloader: DataLoader) -> Predictions:
    """Evaluate ``model`` (in eval mode, without gradients) on every batch of ``dataloader``.

    Batches are ``(inputs, targets, indices)`` triples, as every split of an
    :class:`~lightning_unlearn.datamodules.UnlearningDataModule` yields. The model's
    training/eval mode is restored afterwards.
    """
    was_training = model.training
    model.eval()
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    logits, targets, indices = [], [], []
    try:
        for batch in dataloader:
            logits.append(model(batch[0].to(device)).float().cpu())
            targets.append(batch[1])
            indices.append(batch[2])
    finally:
        model.train(was_training)
    if not logits:
        empty = torch.empty(0, dtype=torch.long)
        return Predictions(torch.empty(0, 0), empty, empty)
    return Predictions(torch.cat(logits), torch.cat(targets), torch.cat(indices))
