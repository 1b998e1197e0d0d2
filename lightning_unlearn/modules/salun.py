"""SalUn: random-label unlearning restricted to the weights salient for the forget set.

Fan et al., "SalUn: Empowering Machine Unlearning via Gradient-based Weight Saliency", ICLR 2024.

1. **Weight saliency** (the paper's saliency map): the gradient of the forget loss at the
   original weights ``θ_o``, ``g = ∇_θ ℓ_f(θ; D_f) |_{θ = θ_o}``, thresholded:
   ``m_S = 1(|g| ≥ γ)``. As in the authors' code, ``γ`` is set by a sparsity: the
   ``saliency_ratio`` share of all weights (ranked together, across layers) with the largest
   ``|g|`` is salient; the paper's default is one half (γ the median). ``ℓ_f`` is the
   cross-entropy on the forget set's own labels (its sign does not change ``|g|``).
2. **Unlearning only the salient weights**: ``θ_u = m_S ⊙ (Δθ + θ_o) + (1 − m_S) ⊙ θ_o``, with
   ``Δθ`` found by random-label fine-tuning (:class:`RandomLabelsBaseline`'s objective,
   ``E_{D_f, y' ≠ y} ℓ_CE(θ_u; x, y') + α·E_{D_r} ℓ_CE(θ_u; x, y)``, α = 1). Here the gradient
   of every non-salient weight is zeroed before each step, and after each step the
   non-salient weights are put back to ``θ_o`` (so weight decay or momentum cannot move them).

The saliency map is computed when the fit starts, inside the unlearning's timer.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from lightning_unlearn.checks import check_in_range
from lightning_unlearn.classifier import classification_loss
from lightning_unlearn.modules.random_labels import RandomLabelsBaseline

__all__ = ["SalUnBaseline", "default_salun_optimizer", "saliency_mask"]


def default_salun_optimizer(params: Any) -> torch.optim.Optimizer:
    """SGD with lr 0.013 and momentum 0.9: the authors' setting for SalUn on CIFAR-10."""
    return torch.optim.SGD(params, lr=0.013, momentum=0.9)


def saliency_mask(gradients: dict[str, torch.Tensor], saliency_ratio: float) -> dict[str, torch.Tensor]:
    """``m_S``: True for the ``saliency_ratio`` share of all weights with the largest ``|g|``, ranked together.

    Args:
        gradients: parameter name → the forget loss's gradient.
        saliency_ratio: the share of weights marked salient, in (0, 1].

    Returns:
        Parameter name → a boolean mask of the parameter's shape.

    Example:
        >>> mask = saliency_mask({"a": torch.tensor([0.1, -3.0]), "b": torch.tensor([2.0, 0.0])}, 0.5)
        >>> mask["a"].tolist(), mask["b"].tolist()
        ([False, True], [True, False])
    """
    _check_ratio(saliency_ratio)
    flat = torch.cat([g.detach().abs().flatten() for g in gradients.values()])
    count = max(1, round(saliency_ratio * flat.numel()))
    chosen = torch.zeros_like(flat, dtype=torch.bool)
    chosen[torch.topk(flat, count).indices] = True
    masks, start = {}, 0
    for name, g in gradients.items():
        masks[name] = chosen[start : start + g.numel()].view_as(g)
        start += g.numel()
    return masks


def _check_ratio(saliency_ratio: float) -> None:
    check_in_range("saliency_ratio", saliency_ratio, 0, 1, include_low=False, meaning="the share of weights updated")


class SalUnBaseline(RandomLabelsBaseline):
    """SalUn: random labels on the salient weights only (see the module docstring for the equations).

    Defaults, from the authors' CIFAR-10 setting: half of the weights salient, 10 epochs, SGD with
    lr 0.013 and momentum 0.9 (their weight decay 5e-4 is left out: our choice, as for the other
    fine-tuning baselines here).

    Args:
        target: the trained classifier (copied).
        max_epochs: epochs over ``retain ∪ forget``.
        saliency_ratio: the share of weights marked salient and updated, in (0, 1]; 1 is plain
            random labels.
        optimizer: builds the optimiser (default SGD, lr 0.013, momentum 0.9).
        loss: the training loss; by default the target's.
        mia_folds: cross-validation folds of the MIA score.
        seed: seeds the random labels and the MIA score.

    Raises:
        ValueError: ``saliency_ratio`` outside (0, 1], or what :class:`RandomLabelsBaseline` raises.
        TypeError: ``saliency_ratio`` is not a number.

    Example:
        >>> from lightning_unlearn import DigitsDataModule, TrainingRecipe, train_classifier
        >>> from lightning_unlearn.modules.baselines import run_baseline
        >>> dm = DigitsDataModule()
        >>> target = train_classifier(TrainingRecipe(max_epochs=5), dm, enable_progress_bar=False).module
        >>> salun = SalUnBaseline(target, max_epochs=2, saliency_ratio=0.5)
        >>> model, seconds = run_baseline(salun, dm)
        >>> round(salun.salient_share(), 2)
        0.5
    """

    default_max_epochs = 10
    default_optimizer = staticmethod(default_salun_optimizer)

    def __init__(
        self,
        target: nn.Module,
        saliency_ratio: float = 0.5,
        **kwargs: Any,
    ) -> None:
        _check_ratio(saliency_ratio)
        super().__init__(target, **kwargs)
        self.save_hyperparameters(ignore=["target", "optimizer"])
        self.saliency_ratio = float(saliency_ratio)
        self.mask: dict[str, torch.Tensor] = {}
        self._original: dict[str, torch.Tensor] = {}

    def compute_saliency(self) -> dict[str, torch.Tensor]:
        """``m_S`` from the forget loss's gradient at the current (original) weights; stored in :attr:`mask`."""
        parameters = dict(self.model.named_parameters())
        sums = {name: torch.zeros_like(p) for name, p in parameters.items()}
        was_training = self.model.training
        self.model.eval()
        for batch in self.split_dataloader("forget"):
            inputs, targets = batch[0].to(self.device), batch[1].to(self.device)
            loss = classification_loss(self.model(inputs), targets, self.loss_name)
            gradients = torch.autograd.grad(loss, list(parameters.values()), allow_unused=True)
            for name, gradient in zip(parameters, gradients):
                if gradient is not None:
                    sums[name] += gradient
        self.model.train(was_training)
        self.mask = saliency_mask(sums, self.saliency_ratio)
        self._original = {name: p.detach().clone() for name, p in parameters.items()}
        return self.mask

    def salient_share(self) -> float:
        """The share of weights the mask lets move (NaN before the fit computed it)."""
        if not self.mask:
            return float("nan")
        return sum(int(m.sum()) for m in self.mask.values()) / sum(m.numel() for m in self.mask.values())

    def on_fit_start(self) -> None:
        super().on_fit_start()
        self.compute_saliency()  # part of the method: inside the unlearning's timer

    def on_after_backward(self) -> None:
        for name, p in self.model.named_parameters():
            if p.grad is not None:
                p.grad.mul_(self.mask[name])

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        with torch.no_grad():  # θ_u = m_S ⊙ θ + (1 − m_S) ⊙ θ_o
            for name, p in self.model.named_parameters():
                p.copy_(torch.where(self.mask[name], p, self._original[name]))
