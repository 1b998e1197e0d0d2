"""ℓ1-sparse unlearning: fine-tune on ``retain`` with an ℓ1 penalty on the weights, decayed over the epochs.

Jia et al., "Model Sparsity Can Simplify Machine Unlearning", NeurIPS 2023 ("ℓ1-sparse MU").
The model is fine-tuned on the retain set ``D_r`` with a sparsity-promoting penalty:

    min_θ  ℓ_r(θ; D_r) + γ_t · ‖θ‖₁

with ``γ_t`` decayed linearly over the ``T`` epochs. The paper promotes sparsity early and lets
the retain loss recover accuracy late; we use the schedule of the authors' code,
``γ_t = γ · (1 − t / T)`` for epoch ``t = 0 … T − 1``. ``‖θ‖₁`` sums every parameter.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from lightning_unlearn.datamodules.base import IndexedBatch
from lightning_unlearn.modules.baselines import UnlearningBaseline

__all__ = ["L1SparseBaseline"]


class L1SparseBaseline(UnlearningBaseline):
    """ℓ1-sparse: fine-tune on ``retain`` minimising ``ℓ_r(θ) + γ_t·‖θ‖₁``, ``γ_t = γ·(1 − t/T)``.

    Defaults: 10 epochs, SGD (lr 0.01, momentum 0.9), ``γ = 5e-4`` — the authors' CIFAR-10
    setting for epochs and learning rate; ``γ`` is our reading of their range and should be
    tuned on the validation pair for another dataset.

    Args:
        target: the trained classifier (copied).
        max_epochs: ``T``, fine-tuning epochs.
        l1_weight: ``γ``, the ℓ1 weight of the first epoch; non-negative (0 is plain fine-tuning).
        optimizer: builds the optimiser (default SGD, lr 0.01, momentum 0.9).
        loss: the training loss; by default the target's.
        mia_folds: cross-validation folds of the MIA score.
        seed: seeds the MIA score.

    Raises:
        ValueError: ``l1_weight`` negative, or what :class:`UnlearningBaseline` raises.
        TypeError: ``l1_weight`` is not a number.

    Example:
        >>> from lightning_unlearn.models import MLP
        >>> baseline = L1SparseBaseline(MLP(64, 5), max_epochs=4, l1_weight=1e-3)
        >>> [baseline.l1_weight_at(epoch) for epoch in range(4)]
        [0.001, 0.00075, 0.0005, 0.00025]
    """

    default_max_epochs = 10

    def __init__(
        self,
        target: nn.Module,
        l1_weight: float = 5e-4,
        **kwargs: Any,
    ) -> None:
        if isinstance(l1_weight, bool) or not isinstance(l1_weight, (int, float)):
            raise TypeError(f"Expected `l1_weight` (γ) to be a number, but got {type(l1_weight).__name__}.")
        if not l1_weight >= 0:
            raise ValueError(f"Expected `l1_weight` (γ) to be non-negative, but got {l1_weight!r}.")
        super().__init__(target, **kwargs)
        self.save_hyperparameters(ignore=["target", "optimizer"])
        self.l1_weight = float(l1_weight)

    def l1_weight_at(self, epoch: int, epochs: int | None = None) -> float:
        """``γ_t = γ·(1 − t/T)``: the ℓ1 weight of epoch ``t`` of ``T`` (default :attr:`max_epochs`)."""
        return self.l1_weight * (1.0 - epoch / (epochs or self.max_epochs))

    def training_step(self, batch: IndexedBatch, batch_idx: int) -> torch.Tensor | None:
        retain_loss = self.loss(batch)
        epochs = self.trainer.max_epochs if self.trainer.max_epochs and self.trainer.max_epochs > 0 else None
        weight = self.l1_weight_at(self.current_epoch, epochs)
        norm = torch.stack([p.abs().sum() for p in self.model.parameters()]).sum()
        loss = retain_loss + weight * norm  # ℓ_r(θ) + γ_t·‖θ‖₁
        self.log_dict(
            {"train/retain_loss": retain_loss, "train/loss": loss, "train/l1_weight": weight},
            prog_bar=True,
            batch_size=batch[0].shape[0],
        )
        return loss
