"""DP-SGD training of a classifier, with a Rényi-DP accountant (for SISA-DP's constituents).

Abadi et al., "Deep Learning with Differential Privacy" (CCS 2016): at every step each sample
of a Poisson-sampled batch (each sample taken with probability ``q``) contributes a gradient
clipped to L2 norm ``C``; Gaussian noise ``N(0, σ²C²·I)`` is added to their sum, which is
divided by the expected batch size ``q·n`` and handed to the optimiser (Adam here, as the
target's recipe; any optimiser is post-processing). The privacy of the whole run is composed by
the Rényi-DP accountant of the subsampled Gaussian mechanism (Mironov et al., "Rényi
Differential Privacy of the Sampled Gaussian Mechanism", 2019) and converted to ``(ε, δ)``.

Per-sample gradients, clipping, noise, Poisson sampling and the accountant come from Opacus
(Meta's maintained DP library for PyTorch, ``pip install opacus``), checked to work with the
torch this project pins. :func:`noise_multiplier_for` calibrates ``σ`` by bisection so that a
planned run — a list of ``(sample_rate, steps)`` phases, as SISA's cumulative slices make, each
phase at ``σ`` times its own fixed scale — spends at most the target ``ε``;
:func:`spent_epsilon` reads the accountant for a plan. The accountant composes the Rényi-DP of
the phases, each a subsampled Gaussian mechanism with its own rate and noise.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from typing import Any

import torch
from lightning.pytorch.cli import OptimizerCallable
from torch import nn

from lightning_unlearn.classifier import ClassifierModule
from lightning_unlearn.datamodules.base import IndexedBatch
from lightning_unlearn.models import LossName

__all__ = ["DPSGDClassifierModule", "noise_multiplier_for", "require_opacus", "spent_epsilon"]

_OPACUS_AVAILABLE = importlib.util.find_spec("opacus") is not None
#: Rényi orders the accountant minimises over: integers, whose RDP has a closed form (fractional orders
#: need a slow series and would tighten ε by little).
_ALPHAS = [float(a) for a in range(2, 128)]


def require_opacus() -> None:
    """Raise a helpful error when Opacus (DP-SGD's per-sample gradients and accountant) is missing.

    Raises:
        ModuleNotFoundError: Opacus is not installed.
    """
    if not _OPACUS_AVAILABLE:
        raise ModuleNotFoundError(
            "SISA-DP's DP-SGD needs Opacus: `pip install opacus` (or use `dp_mechanism: output_perturbation`)."
        )


def _noise_scales(plan: Sequence[tuple[float, int]], noise_scales: Sequence[float] | None) -> list[float]:
    if noise_scales is None:
        return [1.0] * len(plan)
    scales = [float(scale) for scale in noise_scales]
    if len(scales) != len(plan) or not all(scale > 0 for scale in scales):
        raise ValueError(
            f"Expected `noise_scales` to hold one positive number per phase of the plan ({len(plan)}), but got"
            f" {list(noise_scales)}."
        )
    return scales


def spent_epsilon(
    noise_multiplier: float,
    plan: Sequence[tuple[float, int]],
    delta: float,
    noise_scales: Sequence[float] | None = None,
) -> float:
    """The ``ε`` the RDP accountant gives a DP-SGD run of ``plan`` at noise multiplier ``σ``.

    Args:
        noise_multiplier: ``σ``, the noise standard deviation in units of the clipping norm.
        plan: the run's phases, each ``(sample_rate, steps)``.
        delta: ``δ``.
        noise_scales: phase ``i`` runs at ``σ·noise_scales[i]`` (default: every phase at ``σ``).

    Raises:
        ValueError: ``noise_scales`` not one positive number per phase.

    Example:
        >>> round(spent_epsilon(1.0, [(0.01, 1000)], 1e-5), 2)
        2.11
        >>> round(spent_epsilon(1.0, [(0.01, 500), (0.01, 500)], 1e-5, noise_scales=[2.0, 1.0]), 2)
        1.72
    """
    require_opacus()
    from opacus.accountants import RDPAccountant

    scales = _noise_scales(plan, noise_scales)
    accountant = RDPAccountant()
    accountant.history = [
        (float(noise_multiplier) * scale, float(rate), int(steps))
        for (rate, steps), scale in zip(plan, scales)
        if steps > 0
    ]
    if not accountant.history:
        return 0.0
    return float(accountant.get_epsilon(delta=delta, alphas=_ALPHAS))


def noise_multiplier_for(
    epsilon: float,
    delta: float,
    plan: Sequence[tuple[float, int]],
    noise_scales: Sequence[float] | None = None,
) -> float:
    """The smallest noise multiplier ``σ`` (to 0.2 %) for which ``plan`` spends at most ``ε``.

    Args:
        epsilon: the target ``ε``, positive.
        delta: ``δ`` in (0, 1).
        plan: the run's phases, each ``(sample_rate, steps)``.
        noise_scales: phase ``i`` runs at ``σ·noise_scales[i]`` (default: every phase at ``σ``).

    Raises:
        ValueError: no noise makes the plan (ε, δ)-DP, or ``noise_scales`` not one positive
            number per phase.

    Example:
        >>> sigma = noise_multiplier_for(16.0, 1e-5, [(0.25, 80), (0.5, 40)])
        >>> spent_epsilon(sigma, [(0.25, 80), (0.5, 40)], 1e-5) <= 16.0
        True
    """
    scales = _noise_scales(plan, noise_scales)
    low, high = 0.0, 1.0
    while spent_epsilon(high, plan, delta, scales) > epsilon:
        low, high = high, high * 2
        if high > 1e6:
            raise ValueError(f"Expected a DP-SGD plan that some noise makes ({epsilon}, {delta})-DP, but got {plan}.")
    while high - low > 2e-3 * high:
        middle = (low + high) / 2
        if spent_epsilon(middle, plan, delta, scales) > epsilon:
            low = middle
        else:
            high = middle
    return high


class DPSGDClassifierModule(ClassifierModule):
    """A :class:`~lightning_unlearn.modules.ClassifierModule` trained with DP-SGD (see the module docstring).

    Feed it a Poisson-sampled loader (Opacus's ``DPDataLoader``) with the sample rate the
    accountant assumed. The optimiser the recipe builds is wrapped in Opacus's ``DPOptimizer``:
    per-sample clipping to ``max_grad_norm``, noise ``σ·max_grad_norm``, averaging by
    ``expected_batch_size``. Noise is drawn from torch's global generator (seeded by the caller),
    on whatever device the Trainer puts the module.

    Args:
        backbone: the network (trained in place).
        noise_multiplier: ``σ``.
        max_grad_norm: ``C``, the per-sample clipping norm.
        expected_batch_size: ``q·n``, what the noised sum is divided by.
        loss: the training loss; by default the backbone's.
        optimizer: builds the optimiser that is wrapped.

    Raises:
        ModuleNotFoundError: Opacus is not installed.
    """

    def __init__(
        self,
        backbone: nn.Module,
        noise_multiplier: float,
        max_grad_norm: float,
        expected_batch_size: int,
        loss: LossName | None = None,
        optimizer: OptimizerCallable = torch.optim.Adam,
    ) -> None:
        require_opacus()
        from opacus import GradSampleModule

        super().__init__(backbone, loss=loss, optimizer=optimizer)
        self.noise_multiplier = float(noise_multiplier)
        self.max_grad_norm = float(max_grad_norm)
        self.expected_batch_size = int(expected_batch_size)
        self.private = GradSampleModule(backbone, loss_reduction="mean")  # per-sample gradients by hooks

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.private(inputs)

    def training_step(self, batch: IndexedBatch, batch_idx: int) -> torch.Tensor:
        loss, logits, targets = self._shared_step(batch)
        if targets.shape[0] == 0:  # an empty Poisson batch: the step is noise alone
            loss = logits.sum() * 0.0
        self.log("train/loss", loss, prog_bar=True, batch_size=max(1, int(targets.shape[0])))
        return loss

    def configure_optimizers(self) -> Any:
        from opacus.optimizers import DPOptimizer

        return DPOptimizer(
            self.optimizer(self.backbone.parameters()),
            noise_multiplier=self.noise_multiplier,
            max_grad_norm=self.max_grad_norm,
            expected_batch_size=self.expected_batch_size,
            loss_reduction="mean",
        )

    def on_fit_end(self) -> None:
        self.private.remove_hooks()  # the backbone leaves as a plain network
