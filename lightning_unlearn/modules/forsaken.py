"""``ForsakenModule``: unlearning by neuron masking with a learned mask-gradient generator.

Source: Liu et al., "Learn to Forget: Machine Unlearning via Neuron Masking" (Forsaken).
The trained target ``f_θ0`` stays frozen. A small trainable *mask-gradient generator* ``G``
proposes, at every iteration ``t``, a mask gradient ``μ_t`` with the shape of the target's
parameters; the unlearned parameters move by ``θ_t = θ_{t-1} − ξ·μ_t`` and ``G`` is trained so
that the posteriors ``Υ`` of ``f_θt`` on the forget set look like those of non-members ``P``:

* Eq. 4 — ``L = KL(P ‖ Υ) + λ·‖μ‖₁``;
* Eq. 5 — ``L = KL(P ‖ Υ) + λ·ω·‖μ‖₁``, with the dynamic penalty ``ω`` of Eq. 6: the mean
  absolute gradient of the cross-entropy over a small probe of retained data ``D0``, so that
  parameters the retained data rely on are expensive to move;
* Algorithm 1 — the loop above, run for ``T`` iterations; Algorithm 2 (MacForget) — the
  accumulated mask gradient ``μ = Σ ξ·μ_t`` exported as an ordinary gradient for a federated
  server.

Reading of the paper made here (the paper leaves the generator's architecture open):

* **Generator** (:class:`NeuronMaskGenerator`, Algorithm 1): ``μ_t = G(θ_{t-1}, Υ)`` is a learned
  per-*neuron* gain times a direction. The direction is the gradient of ``KL(P ‖ Υ)`` at
  ``θ_{t-1}`` (so ``G`` sees both the current parameters and the current posteriors ``Υ``),
  scaled per parameter by running first and second moments, Adam-style, so every layer moves
  on the same scale. A neuron is a slice along a parameter's first dimension (a row of a
  Linear weight, a filter of a convolution, a channel of a batch norm, an entry of a bias); a
  neuron whose gain reaches 0 is masked out of the update. Gains start at 1 (in units of
  ``initial_gain``), so the first iteration is a plain normalised descent step on the KL; the
  generator's optimiser then learns from Eq. 5 which neurons to move and by how much (the
  penalty pulls down the gains of neurons the retained data rely on). The generator has one
  parameter per neuron: 778 for the digits MLP 64→256→128→5 (see
  :attr:`ForsakenModule.generator_parameter_count`).
* **Order inside an iteration** (Algorithm 1): ``μ_t`` is produced by the generator *before*
  its update, ``θ_t`` is committed with that ``μ_t``, and the loss at ``θ_t`` updates the
  generator, whose new weights produce ``μ_{t+1}``. L-BFGS evaluates the loss several times
  per step; its first evaluation (at the generator's weights before the step) is committed.
* **ω** (Eq. 6) is divided by its mean over all parameters, so ``ω`` averages 1 and the same
  ``λ`` means the same overall strength with (Eq. 5) and without (Eq. 4) the dynamic penalty.
* **P** (Defs. 3–5): see :func:`non_member_posterior`. ``"per_class"`` (the paper's default)
  uses, for a forget sample, the mean reference posterior of the class the target predicts
  for it — or, for a ``poison`` datamodule, of the flip's source class, the posterior of the
  clean-labelled originals (§V-F). ``"nearest"`` and ``"shadow"`` are additions of ours: the
  mean posterior of the forget sample's nearest reference samples in input space, and the
  posterior of a model that never saw the forget set (see :class:`ForsakenModule`).

Two named configurations (:data:`FORSAKEN_CONFIGURATIONS`): ``"paper"``, the above as published,
and ``"recommended"``, which adds options of ours — P from the shadow model, a step relative to
each parameter tensor's own scale, a preservation term on retained samples, a warm-up of the step,
a stop on the validation pair — chosen on the validation pairs of three scenarios (digits, a text
corpus, a CNN on images); docs/forsaken.md gives what it achieves and where it falls short.
"""

from __future__ import annotations

import copy
import math
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal, get_args

import lightning as L
import torch
import torch.nn.functional as F
from lightning.pytorch.cli import OptimizerCallable
from lightning.pytorch.core.optimizer import LightningOptimizer
from lightning.pytorch.plugins.precision import Precision
from torch import nn
from torch.func import functional_call, grad, vmap
from torch.utils.data import DataLoader

from lightning_unlearn.checks import check_choice, check_in_range, check_integer, check_non_negative, check_positive
from lightning_unlearn.datamodules.base import IndexedBatch, UnlearningDataModule
from lightning_unlearn.modules.base import UnlearningMethod, fit_method, target_network
from lightning_unlearn.storage import atomic_write
from lightning_unlearn.trainers import DeviceSettings

__all__ = [
    "FORSAKEN_CONFIGURATIONS",
    "PAPER_CONFIGURATION",
    "RECOMMENDED_CONFIGURATION",
    "ForsakenModule",
    "ForsakenResult",
    "NeuronMaskGenerator",
    "PosteriorKind",
    "default_generator_optimizer",
    "dynamic_penalty_weights",
    "forsaken_configuration",
    "forsaken_unlearn",
    "gain_schedule",
    "loss_auc",
    "nearest_reference_posterior",
    "non_member_posterior",
    "paper_departures",
    "relative_step_scales",
    "retained_input_subspaces",
]

PosteriorKind = Literal["per_class", "global_mean", "uniform", "nearest", "shadow"]
TABLE_POSTERIORS: tuple[str, ...] = ("per_class", "global_mean", "uniform")
POSTERIOR_KINDS: tuple[str, ...] = get_args(PosteriorKind)
#: What the sparsity penalty reads: this iteration's mask gradient ``μ_t``, or the accumulated ``μ = Σ ξ·μ_τ``.
PenaltyReading = Literal["step", "accumulated"]
PENALTY_READINGS: tuple[str, ...] = get_args(PenaltyReading)
#: How the mask gradient's scale changes over the T iterations (after the warm-up).
Schedule = Literal["constant", "linear", "cosine"]
SCHEDULES: tuple[str, ...] = get_args(Schedule)
#: The mask gradient's unit per parameter tensor: ``initial_gain`` itself (``"absolute"``, the paper's reading), or
#: ``initial_gain`` times the tensor's root mean square in ``θ0`` (``"relative"``, a fraction of its own scale).
StepScale = Literal["absolute", "relative"]
STEP_SCALES: tuple[str, ...] = get_args(StepScale)
#: ``"fixed"``: run all T iterations; ``"validation"``: stop on the validation pair (see :class:`ForsakenModule`).
Stopping = Literal["fixed", "validation"]
STOPPINGS: tuple[str, ...] = get_args(Stopping)

#: The paper's Algorithm 1 as published (Liu et al., Algorithm 1 and Eqs. 5–6): P of Defs. 3–5 keyed by the
#: class the target predicts (per-class, the paper's default), the penalty λ·ω·|μ_t| on each iteration's mask
#: gradient, a constant step and a fixed T; the hyperparameters are the module's defaults (T = 20, ξ = 1,
#: λ = 1e-3, ω on, Adam lr 0.01; ``optimizer`` takes the paper's L-BFGS as well).
PAPER_CONFIGURATION: Mapping[str, Any] = MappingProxyType(
    {
        "posterior": "per_class",
        "penalised": "step",
        "schedule": "constant",
        "warmup": 0,
        "preservation_weight": 0.0,
        "stopping": "fixed",
        "step_scale": "absolute",
    }
)

#: The configuration we recommend (docs/forsaken.md, "The recommended configuration"): P per forget sample from
#: a model that never saw the forget set (the shadow model the membership oracle trains anyway); a step of a
#: quarter of each parameter tensor's own scale (``step_scale="relative"``), warmed up over 5 iterations; the
#: target's own posteriors kept, with weight 10, on up to 1,024 retained samples; and a stop on the validation
#: pair (forget vs ``validation_heldout``, accuracy on ``validation``, up to 1,024 samples of each) at the
#: latest after T = 20 iterations. Chosen on the validation pairs of three scenarios — digits (an MLP), the
#: generated Reuters corpus (a 10,000-word MLP) and the generated glyph images (a CNN); the step in absolute
#: units that the digits MLP had chosen cost 23 and 40 points of validation accuracy on the other two (seed 0).
#: ``shadow_model`` must be given.
RECOMMENDED_CONFIGURATION: Mapping[str, Any] = MappingProxyType(
    {
        "posterior": "shadow",
        "iterations": 20,
        "step_scale": "relative",
        "initial_gain": 0.25,
        "warmup": 5,
        "preservation_weight": 10.0,
        "preservation_size": 1024,
        "stopping": "validation",
        "stopping_margin": 0.02,
        "stopping_size": 1024,
    }
)

#: Every named configuration: ``forsaken[paper]`` and ``forsaken[recommended]`` in an experiment.
FORSAKEN_CONFIGURATIONS: Mapping[str, Mapping[str, Any]] = MappingProxyType(
    {"paper": PAPER_CONFIGURATION, "recommended": RECOMMENDED_CONFIGURATION}
)

#: The settings that make an algorithm other than the paper's, with the values the paper's algorithm takes.
_PAPER_ALGORITHM: Mapping[str, tuple[Any, ...]] = MappingProxyType(
    {
        "posterior": TABLE_POSTERIORS,
        "penalised": ("step",),
        "schedule": ("constant",),
        "warmup": (0,),
        "preservation_weight": (0, 0.0),
        "stopping": ("fixed",),
        "shadow_model": (None,),
        "step_scale": ("absolute",),
        "projection_energy": (None,),
        "head": (None,),
    }
)


def paper_departures(settings: Mapping[str, Any]) -> list[str]:
    """The settings of ``settings`` that leave the paper's algorithm, as ``"name=value"`` (empty: the paper's).

    Hyperparameters the paper itself varies (T, ξ, λ, ω on or off, the optimiser, the scale of the
    mask gradient) keep the paper's algorithm; a P it does not define, the accumulated penalty, a
    step schedule, the preservation term or a stopping rule leave it.

    Example:
        >>> paper_departures({"iterations": 40, "posterior": "per_class"})
        []
        >>> paper_departures({"posterior": "nearest", "warmup": 5})
        ["posterior='nearest'", 'warmup=5']
    """
    return [
        f"{key}={value!r}"
        for key, value in settings.items()
        if key in _PAPER_ALGORITHM and not any(value is choice or value == choice for choice in _PAPER_ALGORITHM[key])
    ]


def forsaken_configuration(name: str, **overrides: Any) -> dict[str, Any]:
    """The settings of a named configuration (``"paper"`` or ``"recommended"``), with ``overrides`` on top.

    Args:
        name: a key of :data:`FORSAKEN_CONFIGURATIONS`.
        **overrides: any :class:`ForsakenModule` argument, e.g. ``iterations=40`` or ``shadow_model=...``.

    Returns:
        Keyword arguments for :class:`ForsakenModule` (besides ``target``).

    Raises:
        ValueError: an unknown name, or ``"paper"`` with an override that leaves the paper's algorithm.

    Example:
        >>> forsaken_configuration("paper", iterations=40)["iterations"]
        40
        >>> forsaken_configuration("recommended")["posterior"]
        'shadow'
    """
    if name not in FORSAKEN_CONFIGURATIONS:
        raise ValueError(f"Expected a Forsaken configuration from {list(FORSAKEN_CONFIGURATIONS)}, but got {name!r}.")
    settings = {**FORSAKEN_CONFIGURATIONS[name], **overrides}
    departures = paper_departures(settings)
    if name == "paper" and departures:
        raise ValueError(
            f"Expected the settings of Forsaken's paper configuration to keep the paper's algorithm, but"
            f" {', '.join(departures)} leave it: name the configuration otherwise (e.g. `forsaken[recommended]`"
            " or a label of your own)."
        )
    return settings


#: The fewest retained samples the preservation term reads by default (more when the forget set is larger).
MIN_PRESERVED = 256

#: Per-sample gradients are computed this many scalars at a time when building ω (Eq. 6).
_PER_SAMPLE_BUDGET = 2**25


def default_generator_optimizer(params: Iterable[Any]) -> torch.optim.Optimizer:
    """Adam with learning rate 0.01: the default optimiser of the mask-gradient generator."""
    return torch.optim.Adam(params, lr=1e-2)


# ---------------------------------------------------------------------------- the maths
def non_member_posterior(
    reference_posteriors: torch.Tensor, num_classes: int, kind: Literal["per_class", "global_mean", "uniform"]
) -> torch.Tensor:
    """The non-member posterior ``P`` of Defs. 3–5, as a ``num_classes × num_classes`` table.

    Row ``c`` is the posterior a forget sample keyed by class ``c`` should have after unlearning.

    Args:
        reference_posteriors: the target's posteriors on the non-member ``reference`` samples,
            ``(N, num_classes)``.
        num_classes: the target's classes ``K``.
        kind: ``"per_class"`` — row ``c`` is the mean posterior over the reference samples the
            target predicts as ``c`` (the class-conditioned P), falling back to the global mean for a class no
            reference sample is predicted as; ``"global_mean"`` — every row is the mean
            posterior over all reference samples; ``"uniform"`` — every row is ``1/K``
            (Def. 3; the reference samples are not needed).

    Returns:
        The table ``P``, ``(num_classes, num_classes)``, each row summing to 1.

    Raises:
        ValueError: an unknown ``kind``, posteriors of the wrong width, or no reference sample
            when ``kind`` needs them.

    Example:
        >>> posteriors = torch.tensor([[0.9, 0.1], [0.7, 0.3]])
        >>> non_member_posterior(posteriors, 2, "per_class")
        tensor([[0.8000, 0.2000],
                [0.8000, 0.2000]])
    """
    if kind not in TABLE_POSTERIORS:
        raise ValueError(f"Expected `posterior` to be one of {list(TABLE_POSTERIORS)}, but got {kind!r}.")
    if kind == "uniform":
        return torch.full((num_classes, num_classes), 1.0 / num_classes, device=reference_posteriors.device)
    if reference_posteriors.dim() != 2 or reference_posteriors.shape[0] == 0:
        raise ValueError(
            "Expected a non-empty `reference` split (the non-members P is built from), but it holds no sample."
        )
    if reference_posteriors.shape[1] != num_classes:
        raise ValueError(
            f"Expected reference posteriors over {num_classes} classes, but got {reference_posteriors.shape[1]}."
        )
    global_mean = reference_posteriors.mean(dim=0)
    table = global_mean.expand(num_classes, num_classes).clone()
    if kind == "per_class":
        predicted = reference_posteriors.argmax(dim=1)
        for c in range(num_classes):  # class-conditioned P: by the predicted class
            chosen = predicted == c
            if bool(chosen.any()):
                table[c] = reference_posteriors[chosen].mean(dim=0)
    return table


def nearest_reference_posterior(
    forget_inputs: torch.Tensor, reference_inputs: torch.Tensor, reference_posteriors: torch.Tensor, neighbours: int
) -> torch.Tensor:
    """A non-member posterior per forget sample: the mean posterior of its nearest reference samples.

    Distances are Euclidean between flattened inputs. The posterior the target gives unseen
    samples that *look like* a forget sample is what that sample's posterior would be had it
    never been trained on; its arg-max is the class the target sees in the input, not the
    label the sample was inserted under.

    Args:
        forget_inputs: the forget samples, ``(N, *shape)``.
        reference_inputs: the non-member reference samples, ``(M, *shape)``.
        reference_posteriors: the target's posteriors on them, ``(M, K)``.
        neighbours: how many nearest reference samples to average (capped at ``M``).

    Returns:
        ``P`` per forget sample, ``(N, K)``.

    Raises:
        ValueError: no reference sample.

    Example:
        >>> posteriors = torch.tensor([[0.9, 0.1], [0.2, 0.8]])
        >>> nearest_reference_posterior(torch.tensor([[0.1], [0.9]]), torch.tensor([[0.0], [1.0]]), posteriors, 1)
        tensor([[0.9000, 0.1000],
                [0.2000, 0.8000]])
    """
    if reference_inputs.shape[0] == 0:
        raise ValueError(
            "Expected a non-empty `reference` split (the non-members P is built from), but it holds no sample."
        )
    forget_flat = forget_inputs.flatten(1).float()
    reference_flat = reference_inputs.flatten(1).float()
    k = min(neighbours, reference_flat.shape[0])
    rows = []
    for start in range(0, forget_flat.shape[0], 1024):  # bounded memory for large forget sets
        distances = torch.cdist(forget_flat[start : start + 1024], reference_flat)
        nearest = distances.topk(k, dim=1, largest=False).indices
        rows.append(reference_posteriors[nearest].mean(dim=1))
    return torch.cat(rows)


def dynamic_penalty_weights(
    target: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, normalize: bool = True
) -> dict[str, torch.Tensor]:
    """The dynamic penalty ``ω`` of Eq. 6: per-parameter mean absolute gradient over ``D0``.

    ``ω_i = (1/|D0|) Σ_{x ∈ D0} |∂ CE(f_θ0(x), y) / ∂θ_i|`` — the cross-entropy is used for every
    backbone (a linear SVM included), as in the paper. Per-sample gradients come from
    ``torch.func.vmap`` in chunks, so memory stays bounded for large backbones. The target's
    own parameters are read, never given gradients.

    Args:
        target: the trained target, in eval mode.
        inputs: the probe samples ``D0``.
        targets: their labels.
        normalize: divide ``ω`` by its mean over all parameters, so that it averages 1.

    Returns:
        ``ω`` per parameter name, shaped like the parameter.

    Raises:
        ValueError: an empty probe.

    Example:
        >>> from lightning_unlearn.models import LogisticRegression
        >>> model = LogisticRegression(4, 3).eval()
        >>> weights = dynamic_penalty_weights(model, torch.randn(5, 4), torch.tensor([0, 1, 2, 0, 1]))
        >>> sorted(weights), weights["1.weight"].shape
        (['1.bias', '1.weight'], torch.Size([3, 4]))
    """
    if inputs.shape[0] == 0:
        raise ValueError("Expected a non-empty `probe` split (D0, for the dynamic penalty ω), but it holds no sample.")
    params = {name: p.detach() for name, p in target.named_parameters()}
    buffers = {name: b.detach() for name, b in target.named_buffers()}

    def sample_loss(parameters: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        logits = functional_call(target, (parameters, buffers), (x.unsqueeze(0),))
        return F.cross_entropy(logits, y.unsqueeze(0))

    total = {name: torch.zeros_like(p) for name, p in params.items()}
    size = sum(p.numel() for p in params.values())
    chunk = max(1, min(256, _PER_SAMPLE_BUDGET // max(1, size)))
    per_sample_gradient = vmap(grad(sample_loss), in_dims=(None, 0, 0))
    for start in range(0, inputs.shape[0], chunk):
        gradients = per_sample_gradient(params, inputs[start : start + chunk], targets[start : start + chunk])
        for name, g in gradients.items():
            total[name] += g.abs().sum(dim=0)
    omega = {name: t / inputs.shape[0] for name, t in total.items()}  # Eq. 6
    if normalize:
        mean = sum(w.sum() for w in omega.values()) / max(1, size)
        if float(mean) > 0:
            omega = {name: w / mean for name, w in omega.items()}
    return omega


def gain_schedule(iteration: int, iterations: int, schedule: Schedule = "constant", warmup: int = 0) -> float:
    """The factor on the mask gradient's scale at ``iteration`` (1 … T): a linear warm-up, then ``schedule``.

    ``min(1, t / warmup)`` times 1 (``"constant"``), ``1 − (t − 1)/T`` (``"linear"``) or
    ``½·(1 + cos(π·(t − 1)/T))`` (``"cosine"``). The paper's Algorithm 1 has a constant step.

    Example:
        >>> [round(gain_schedule(t, 4, "linear"), 2) for t in (1, 2, 3, 4)]
        [1.0, 0.75, 0.5, 0.25]
        >>> [gain_schedule(t, 4, warmup=2) for t in (1, 2, 3)]
        [0.5, 1.0, 1.0]
    """
    ramp = min(1.0, iteration / warmup) if warmup > 0 else 1.0
    progress = (iteration - 1) / iterations
    if schedule == "linear":
        return ramp * (1.0 - progress)
    if schedule == "cosine":
        return ramp * 0.5 * (1.0 + math.cos(math.pi * progress))
    return ramp


def loss_auc(forget_losses: torch.Tensor, unseen_losses: torch.Tensor) -> torch.Tensor:
    """Pairs (forget, unseen) where the unseen sample's loss is the larger, ties counted half: the loss AUC's numerator.

    Divided by ``len(forget_losses) · len(unseen_losses)`` it is the AUC of the loss read in the
    membership direction (nothing fitted): 0.5 when forget samples look like unseen ones, above
    0.5 while their losses are still lower (members). A count, so that shards of the forget set
    on several processes sum to the whole set's.

    Example:
        >>> float(loss_auc(torch.tensor([0.1, 2.0]), torch.tensor([1.0, 2.0])))
        2.5
    """
    ordered = unseen_losses.detach().flatten().sort().values
    losses = forget_losses.detach().flatten()
    above = ordered.numel() - torch.searchsorted(ordered, losses, right=True)
    ties = torch.searchsorted(ordered, losses, right=True) - torch.searchsorted(ordered, losses, right=False)
    return (above.double() + 0.5 * ties.double()).sum()


# ---------------------------------------------------------------------------- the generator
class NeuronMaskGenerator(nn.Module):
    """The mask-gradient generator ``G`` of Algorithm 1: one learned gain per neuron.

    For every parameter tensor ``θ_p`` of the target (its first dimension indexes neurons: rows
    of a Linear weight, filters of a convolution, channels of a batch norm, entries of a bias),
    ``G`` holds a gain ``ρ_p`` per neuron and produces

    ``μ_p = initial_gain · s_p · ρ_p ⊙ d_p``

    where ``d_p`` is the direction :class:`ForsakenModule` computes from ``θ_{t-1}`` and ``Υ``
    (the moment-scaled gradient of ``KL(P ‖ Υ)``), and ``ρ_p`` is broadcast along each neuron's
    other dimensions. A gain of 0 masks the neuron out of the update. ``s_p`` is the tensor's unit
    (:attr:`scales`): 1 by default, its root mean square in ``θ0`` with :class:`ForsakenModule`'s
    ``step_scale="relative"``.

    Args:
        shapes: the shape of every parameter of the target, by name.
        initial_gain: the scale of the mask gradient: every gain starts at 1, so the first
            ``μ`` has entries of about ``initial_gain``.

    Example:
        >>> generator = NeuronMaskGenerator({"weight": torch.Size([3, 4]), "bias": torch.Size([3])}, 0.01)
        >>> generator.num_parameters
        6
        >>> generator({"weight": torch.ones(3, 4), "bias": torch.ones(3)})["bias"]
        tensor([0.0100, 0.0100, 0.0100], grad_fn=<MulBackward0>)
    """

    def __init__(self, shapes: Mapping[str, torch.Size], initial_gain: float) -> None:
        super().__init__()
        self.names = list(shapes)
        self.initial_gain = float(initial_gain)
        neurons = [shape[0] if len(shape) > 0 else 1 for shape in shapes.values()]
        self.gain = nn.ParameterList([nn.Parameter(torch.ones(n)) for n in neurons])
        #: Each parameter tensor's unit ``s_p`` (a plain float: not learned, not saved).
        self.scales: dict[str, float] = dict.fromkeys(self.names, 1.0)

    def reset_parameters(self) -> None:
        """Set every gain back to 1 (the first mask gradient is then ``initial_gain · d``)."""
        with torch.no_grad():
            for gain in self.gain:
                gain.fill_(1.0)

    @property
    def num_parameters(self) -> int:
        """How many scalars the generator learns: one per neuron of every parameter tensor."""
        return sum(p.numel() for p in self.parameters())

    def forward(self, directions: Mapping[str, torch.Tensor], scale: float = 1.0) -> dict[str, torch.Tensor]:
        """``μ_t``: per-neuron gains applied to the directions, by parameter name, times ``scale`` (the schedule)."""
        mask_gradient = {}
        step = self.initial_gain * scale
        for index, name in enumerate(self.names):
            direction = directions[name]
            gain = self.gain[index]
            gain = gain.reshape(()) if direction.dim() == 0 else gain.reshape((-1,) + (1,) * (direction.dim() - 1))
            mask_gradient[name] = (step * self.scales[name]) * gain * direction
        return mask_gradient


def relative_step_scales(model: nn.Module) -> dict[str, float]:
    """Each parameter tensor's root mean square, the unit of ``step_scale="relative"``.

    A tensor that is all zeros (a bias never moved from its initialisation) gets the mean of the
    other tensors' units, so it can still move.

    Example:
        >>> layer = nn.Linear(2, 1)
        >>> with torch.no_grad():
        ...     _ = layer.weight.fill_(0.5), layer.bias.zero_()
        >>> relative_step_scales(layer)
        {'weight': 0.5, 'bias': 0.5}

    Raises:
        TypeError: ``model`` is not an ``nn.Module``.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"Expected `model` to be an nn.Module, but got {type(model).__name__}.")
    scales = {
        name: float(p.detach().double().pow(2).mean().sqrt()) if p.numel() else 0.0
        for name, p in model.named_parameters()
    }
    moving = [value for value in scales.values() if value > 0.0]
    fallback = sum(moving) / len(moving) if moving else 1.0
    return {name: value if value > 0.0 else fallback for name, value in scales.items()}


#: The most rows (layer inputs; patches for a convolution) a layer's subspace is computed from.
PROJECTION_ROWS = 8192


def _projected_layers(model: nn.Module) -> dict[str, nn.Module]:
    """The layers :func:`retained_input_subspaces` covers: every ``nn.Linear`` and ungrouped ``nn.Conv2d``."""
    return {
        name: module
        for name, module in model.named_modules()
        if isinstance(module, nn.Linear) or (isinstance(module, nn.Conv2d) and module.groups == 1)
    }


def _layer_rows(layer: nn.Module, inputs: torch.Tensor) -> torch.Tensor:
    """A layer's inputs as rows of what its weight multiplies: features, or unfolded patches of a convolution."""
    if isinstance(layer, nn.Conv2d):
        if not isinstance(layer.padding, tuple):  # padding="same"/"valid": read the padding the layer applies
            raise ValueError(
                f"Expected the convolutions of a projected target to have numeric padding, but a layer has"
                f" padding={layer.padding!r}."
            )
        patches = F.unfold(inputs, layer.kernel_size, layer.dilation, layer.padding, layer.stride)
        return patches.transpose(1, 2).reshape(-1, patches.shape[1])
    return inputs.reshape(-1, inputs.shape[-1])


@torch.no_grad()
def retained_input_subspaces(
    model: nn.Module, inputs: torch.Tensor, energy: float, max_rows: int = PROJECTION_ROWS, chunk: int = 256
) -> dict[str, torch.Tensor]:
    """Per ``nn.Linear``/``nn.Conv2d`` layer, an orthonormal basis of the inputs it receives on ``inputs``.

    The basis spans the principal directions of the layer's inputs (patches for a convolution)
    that hold ``energy`` of their squared norm, at most the inputs' numerical rank. A weight step
    ``D`` (one row per output) with ``D·U = 0`` leaves the layer's outputs on those inputs as they
    were.

    Args:
        model: the network, in eval mode; its inputs per layer are read with forward hooks.
        inputs: the samples (a retained sample), on the model's device.
        energy: the share of the inputs' energy the basis holds, in ``(0, 1]``.
        max_rows: at most this many rows per layer (a seeded sample of the patches of a
            convolution), so memory stays bounded.
        chunk: samples per forward pass.

    Returns:
        ``U`` of shape ``(features, k)`` per layer name (``features`` = in-channels × kernel size
        for a convolution).

    Example:
        >>> layer = nn.Linear(3, 2)
        >>> retained_input_subspaces(layer, torch.randn(50, 3), energy=1.0)[""].shape  # full rank from 50 samples
        torch.Size([3, 3])
        >>> retained_input_subspaces(layer, torch.randn(50, 3), energy=0.01)[""].shape  # the first direction
        torch.Size([3, 1])

    Raises:
        TypeError: ``model`` is not an ``nn.Module``, or a setting of the wrong type.
        ValueError: ``energy`` outside ``(0, 1]``, ``max_rows`` or ``chunk`` below 1, or a convolution
            whose padding is given by name (``"same"``, ``"valid"``).
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"Expected `model` to be an nn.Module, but got {type(model).__name__}.")
    check_in_range("energy", energy, 0.0, 1.0, include_low=False, meaning="the share of the inputs' energy kept")
    check_integer("max_rows", max_rows, meaning="rows per layer")
    check_integer("chunk", chunk, meaning="samples per forward pass")
    layers = _projected_layers(model)
    total = max(1, inputs.shape[0])
    generator = torch.Generator().manual_seed(0)
    rows: dict[str, list[torch.Tensor]] = {name: [] for name in layers}

    def keep(name: str, layer: nn.Module, layer_inputs: tuple[torch.Tensor, ...], share: int) -> None:
        block = _layer_rows(layer, layer_inputs[0].detach())
        if block.dtype in (torch.float16, torch.bfloat16):  # the SVD needs single precision at least
            block = block.float()
        if block.shape[0] > share:
            chosen = torch.randperm(block.shape[0], generator=generator)[:share]
            block = block[chosen.to(block.device)]
        rows[name].append(block)

    hooks = []
    share = 0
    for name, layer in layers.items():
        hooks.append(layer.register_forward_hook(lambda mod, args, out, name=name: keep(name, mod, args, share)))
    try:
        for start in range(0, inputs.shape[0], chunk):
            part = inputs[start : start + chunk]
            share = max(1, -(-max_rows * part.shape[0] // total))
            model(part)
    finally:
        for hook in hooks:
            hook.remove()
    bases = {}
    for name in layers:
        if not rows[name]:
            continue  # a layer the forward pass never reached
        matrix = torch.cat(rows[name])
        _, singular, right = torch.linalg.svd(matrix, full_matrices=False)
        # the numerical rank: directions below it are rounding, not inputs the layer receives
        rank = int((singular > singular[0] * max(matrix.shape) * torch.finfo(singular.dtype).eps).sum())
        if rank == 0:
            continue  # inputs that are all zeros: nothing of the retained data passes through the weights
        power = singular.square()
        held = power.cumsum(0) / power.sum().clamp_min(torch.finfo(power.dtype).tiny)
        size = rank if energy >= 1.0 else min(int((held < energy).sum()) + 1, rank)
        bases[name] = right[:size].T.contiguous()
    return bases


# ---------------------------------------------------------------------------- the module
def _head_module(target: nn.Module, head: Any) -> nn.Module:
    """The submodule ``head`` names in ``target``, checked: a string, a submodule, with parameters."""
    if not isinstance(head, str):
        raise TypeError(f"Expected `head` to be the name of a submodule of the target, but got {type(head).__name__}.")
    try:
        module = target.get_submodule(head)
    except AttributeError:
        module = None
    if module is None or module is target or next(module.parameters(), None) is None:
        names = [name for name, child in target.named_modules() if name and next(child.parameters(), None) is not None]
        shown = ", ".join(repr(name) for name in names[:12]) + (", …" if len(names) > 12 else "")
        raise ValueError(
            f"Expected `head` to name a submodule of the target ({type(target).__name__}) that has parameters"
            f" (one of {shown}), but got {head!r}."
        )
    return module


def _load_weights(target: nn.Module, checkpoint: str | os.PathLike[str], argument: str = "checkpoint") -> None:
    """Load a plain state_dict, or a Lightning checkpoint of a module wrapping ``target`` as ``backbone``."""
    path = Path(checkpoint)
    if not path.is_file():
        raise FileNotFoundError(f"Expected `{argument}` to be a saved state_dict, but {str(path)!r} does not exist.")
    content = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(content, dict) and isinstance(content.get("state_dict"), dict):
        content = {k.removeprefix("backbone."): v for k, v in content["state_dict"].items()}
    if not isinstance(content, dict):
        raise ValueError(f"Expected `{argument}` {str(path)!r} to hold a state_dict, but got {type(content).__name__}.")
    try:
        target.load_state_dict(content)
    except RuntimeError as error:
        first_line = str(error).strip().splitlines()[0]
        raise ValueError(
            f"Expected `{argument}` {str(path)!r} to hold weights for the `target` architecture"
            f" ({type(target).__name__}), but they do not fit: {first_line} {str(error).strip().splitlines()[1:2]}"
        ) from None


class ForsakenModule(UnlearningMethod):
    """Forsaken unlearning (Algorithm 1): a frozen target and a trainable mask-gradient generator.

    Fit it like every method, ``trainer.fit(module, datamodule=dm)`` with an
    :class:`~lightning_unlearn.datamodules.UnlearningDataModule` (or :func:`fit_forsaken`). In
    ``setup`` the module reads, in full, the datamodule's ``forget`` split (the samples to
    remove), its ``reference`` split (non-members, for ``P``) and its ``probe`` split (``D0``,
    for ``ω``); with the options of ours below, also a sample of ``retain`` (preservation) and
    the validation pair (stopping). Each training step is one iteration ``t`` of Algorithm 1 over
    the whole forget set; the module's training loader only paces the loop. After ``iterations``
    steps (or at the stopping rule's iteration) the module stops the Trainer (give it
    ``max_steps`` of at least ``iterations``, or none).

    **Two named configurations** (:data:`FORSAKEN_CONFIGURATIONS`, :func:`forsaken_configuration`):
    ``"paper"`` — the module's defaults, Algorithm 1 as published; ``"recommended"`` — ours,
    the configuration that forgets by the attack as well as by the oracle on our benchmarks
    (docs/forsaken.md). In an experiment they are ``forsaken[paper]`` and ``forsaken[recommended]``.

    **Under DDP** each of the ``W`` processes keeps every ``W``-th forget sample (its shard) on
    its device (and every ``W``-th preserved sample); the data terms are summed over each shard
    and the generator's gradient, the next direction, the logged figures, the stopping rule's
    counts and L-BFGS's loss are reduced across processes, so every process takes the same steps
    and ends with the same ``θ_T`` as one process would, up to floating-point summation order.

    **Extension points** (override in a subclass): :meth:`posterior_targets` (``P``),
    :meth:`divergence` (the data terms of the objective) and :meth:`penalty` (the sparsity term).

    Every fit starts again from ``θ0`` with a fresh generator. Logged per iteration:
    ``forsaken/kl``, ``forsaken/penalty``, ``forsaken/loss`` and ``forsaken/forget_acc``
    (accuracy of ``f_θt`` on the forget set under the labels it was trained with), and with a
    preservation term ``forsaken/preservation``; the same values are kept in :attr:`history`
    (with the stopping rule's readings, ``stop_auc`` and ``validation_acc``, where it checked),
    so the curve of Fig. 5 can be drawn.

    The target is deep-copied, kept in eval mode, and none of its parameters ever requires a
    gradient: the unlearned parameters ``θ_t = θ0 − Σ ξ·μ_τ`` are separate tensors, evaluated
    with ``torch.func.functional_call``, so gradients reach the generator only. The generator's
    optimiser runs under manual optimisation with a closure, so L-BFGS works like Adam or SGD.

    **The choice of P.** With ``posterior="per_class"`` (the paper's default) a forget sample is
    pulled towards the non-member posterior *of the class the target predicts for it*, so its
    arg-max is kept: the unlearned model still outputs the label an OOD sample was inserted under
    (forget accuracy stays near 100 %), where a retrained model is at chance, and a loss attack
    still separates the forget samples. The options that do not keep the arg-max:
    ``"shadow"`` (ours) — per forget sample, the posterior of ``shadow_model``, a model that never
    saw the forget set (the membership oracle's shadow model: the target's recipe on the other
    half of the data); what the sample's posterior would be had it never been trained on, and
    the one P of these that lowers the attack to the retrained model's on digits;
    ``"nearest"`` (ours) — the mean posterior of the forget sample's ``neighbours`` nearest
    reference samples; the target's posteriors there still carry the memorised labels of nearby
    forget samples, so the attack keeps part of its edge; ``"global_mean"`` and ``"uniform"``
    (Def. 3) — class-blind targets that push every forget sample to the same flat posterior.

    **Options of ours beside the paper's** (each off in the paper configuration):

    * ``penalised="accumulated"`` — the penalty of Eq. 5 on the accumulated mask gradient
      ``μ = Σ ξ·μ_τ`` (the total move from ``θ0``) instead of on each step's ``μ_t``;
    * ``schedule`` and ``warmup`` — the mask gradient's scale ramps up linearly over ``warmup``
      iterations, then stays (``"constant"``) or decays (``"linear"``, ``"cosine"``) to T;
    * ``preservation_weight`` (γ) — adds ``γ·KL(f_θ0(x) ‖ f_θt(x))`` over a seeded sample of
      ``preservation_size`` retained samples (default: as many as the forget set, and at least
      :data:`MIN_PRESERVED` = 256 so that a handful of forget samples cannot drag the model
      along; the cost is then that of the forget set or a constant, flat as ``retain`` grows):
      the target's own posteriors on data it keeps, so the move that forgets does not carry the
      retained data along. Its gradient enters the generator's direction as well as its objective;
    * ``stopping="validation"`` — every ``check_every`` iterations, the loss AUC of forget vs
      ``validation_heldout`` (nothing fitted: above 0.5 the forget samples' losses are still
      lower than unseen ones') and the accuracy on ``validation`` are read at ``θ_t``; the fit
      stops at the first check where the AUC is at most ``0.5 + stopping_margin`` and the
      accuracy at least the original's minus ``accuracy_tolerance``. Only the validation pair is
      read (never ``test`` or ``heldout``), and the checks run inside the timed fit. ``iterations``
      is then the most it runs; :attr:`stopped_at` says where it stopped;
    * ``projection_energy`` — the weight step of every ``nn.Linear`` and ``nn.Conv2d`` layer of the
      target is projected off the inputs the layer receives from the preserved retained sample at
      ``θ0`` (their principal subspace holding this share of the energy;
      :func:`retained_input_subspaces`), as gradient projection memory does for continual learning
      (Saha et al., ICLR 2021). The weights then change only along directions the retained data
      hardly uses, and the preservation term can no longer pull the forget samples back through
      them. Biases, normalisation layers and embeddings move unprojected. It is in no named
      configuration: on dense inputs it moved the trade-off between the attack and accuracy
      rather than escaping it, and on bag-of-words text, where a thousand documents leave most
      word directions unseen, it cost most of the validation accuracy (docs/forsaken.md);
    * ``head`` — the name of the target's last stage (a submodule whose output is the target's
      logits, such as ``"classifier"`` of :class:`~lightning_unlearn.models.SmallCNN`): only its
      parameters move. Everything before it stays at ``θ0``, so the inputs it receives from the
      forget set, the preserved sample and the validation pair are computed once, at the start of
      the fit, and each iteration runs the head alone. On a convolutional backbone that makes the
      iterations nearly free: the fit costs about one forward pass over those samples. The rest
      of the network still holds what it learnt from the forget set; the evaluation reads the
      outputs only (docs/forsaken.md).

    Args:
        target: the trained classifier to unlearn from (any backbone of
            :mod:`lightning_unlearn.models`); it is copied, never modified.
        iterations: ``T``, the number of iterations of Algorithm 1 (training steps); with a
            stopping rule, the most it runs.
        xi: ``ξ``, the forgetting coefficient: ``θ_t = θ_{t-1} − ξ·μ_t``.
        penalty_weight: ``λ``, the weight of the sparsity penalty ``‖μ‖₁`` (Eqs. 4–5), a sum
            over all parameters.
        dynamic_penalty: weigh the penalty by ``ω`` (Eq. 5, default) or not (``ω = 1``, Eq. 4).
        probe_size: how many samples of the datamodule's ``probe`` split form ``D0`` for ``ω``
            (default: all of it; the split itself is ``probe_fraction`` ≤ 1 % of retain).
        posterior: ``P`` — ``"per_class"`` (default), ``"global_mean"``, ``"uniform"``,
            ``"nearest"`` or ``"shadow"``; see above.
        neighbours: reference samples averaged per forget sample by ``posterior="nearest"``.
        optimizer: builds the generator's optimiser from its parameters (default Adam, lr 0.01).
            SGD and L-BFGS (the paper's choice) work too; give L-BFGS a line search, e.g.
            ``partial(torch.optim.LBFGS, lr=0.1, max_iter=5, line_search_fn="strong_wolfe")``:
            its defaults (lr 1, no line search) can blow the gains up on this objective.
        initial_gain: the scale of the mask gradient (see :class:`NeuronMaskGenerator`): with
            ``ξ = 1`` the first iteration moves each parameter by about this much.
        checkpoint: optional weights for ``target``: a plain state_dict, or a Lightning checkpoint
            of a module holding the target as ``backbone`` (such as ``ClassifierModule``).
        shadow_model: for ``posterior="shadow"``, a classifier of the target's classes that never
            saw the forget set (e.g. ``ShadowModelOracle.shadow_model``), or the path of its
            weights for a copy of the target's architecture. Kept frozen.
        penalised: what the penalty reads, ``"step"`` (``μ_t``, the paper configuration) or
            ``"accumulated"`` (``μ = Σ ξ·μ_τ``).
        schedule: ``"constant"`` (the paper's), ``"linear"`` or ``"cosine"`` decay of the mask
            gradient's scale over the T iterations.
        warmup: iterations over which the scale ramps up linearly from ``1/warmup`` (0: none).
        preservation_weight: ``γ`` of the preservation term (0: none, the paper's objective).
        preservation_size: retained samples the preservation term reads (default: as many as
            the forget set and at least :data:`MIN_PRESERVED`; at most all of ``retain``).
        stopping: ``"fixed"`` (run ``iterations``) or ``"validation"`` (see above).
        stopping_margin: the loss AUC at which the stopping rule accepts is ``0.5 + stopping_margin``.
        accuracy_tolerance: the stopping rule accepts only while the accuracy on ``validation`` is at
            least the original's minus this.
        check_every: the stopping rule checks every this many iterations.
        stopping_size: the stopping rule reads a seeded sample of this many samples of each
            validation split (default: all of them), so its cost stays flat as they grow.
        step_scale: the mask gradient's unit per parameter tensor: ``"absolute"`` (the paper's
            reading: every parameter moves by about ``initial_gain``) or ``"relative"`` (ours:
            ``initial_gain`` times the tensor's root mean square in ``θ0``, so a layer of small
            weights — a 10,000-word input layer — moves by the same fraction of its scale as the
            others, whatever the architecture).
        projection_energy: ``None`` (default: no projection) or the share of the retained inputs'
            energy, in ``(0, 1]``, whose subspace every step avoids (see above). It reads the
            preservation term's sample of ``retain`` (``preservation_size`` samples) even when
            ``preservation_weight`` is 0.
        head: ``None`` (default: every parameter moves) or the dotted name of the target's
            submodule that computes its logits last (see above); an integer names a child of an
            ``nn.Sequential`` target by its index.

    Raises:
        TypeError: ``target`` (or ``shadow_model``) is not an ``nn.Module``, or a setting of the
            wrong type (``head`` not a string).
        ValueError: ``xi`` or ``initial_gain`` not positive, ``penalty_weight`` or ``preservation_weight`` negative,
            ``projection_energy`` outside ``(0, 1]``, a ``head`` that names no submodule with parameters,
            ``iterations``, ``probe_size``, ``neighbours``,
            ``preservation_size``, ``stopping_size`` or ``check_every`` below 1, ``warmup`` negative, an unknown
            ``posterior``, ``penalised``, ``schedule``, ``stopping`` or ``step_scale``, ``posterior="shadow"`` without
            ``shadow_model``, or a ``checkpoint`` that does not fit ``target``. At set-up: an empty ``forget`` split, an
            empty ``reference`` split (when ``posterior`` reads it), an empty ``probe`` split (with
            ``dynamic_penalty``), an empty ``retain`` split (with a preservation term or a projection), an empty
            validation pair (with ``stopping="validation"``), or ``reference`` labels outside the target's classes.
        RuntimeError: at set-up, no ``UnlearningDataModule`` attached, a target (or shadow
            model) whose class count or input shape differs from the datamodule's, a ``head`` that
            is not the last stage of the target's forward pass, or a Trainer whose ``max_steps``
            is below ``iterations``.

    Example:
        >>> from lightning_unlearn import DigitsDataModule, TrainingRecipe, train_classifier
        >>> dm = DigitsDataModule()
        >>> target = train_classifier(TrainingRecipe(max_epochs=5), dm, enable_progress_bar=False).module.backbone
        >>> module = ForsakenModule(target, iterations=20)
        >>> trainer = L.Trainer(max_steps=20, logger=False, enable_checkpointing=False, enable_progress_bar=False)
        >>> trainer.fit(module, datamodule=dm)
        >>> unlearned = module.unlearned_model()  # the target's class, θ_T loaded
        >>> type(unlearned).__name__, len(module.history)
        ('MLP', 20)
    """

    reads = ("forget", "reference", "probe", "retain", "validation", "validation_heldout")

    def __init__(
        self,
        target: nn.Module,
        iterations: int = 20,
        xi: float = 1.0,
        penalty_weight: float = 1e-3,
        dynamic_penalty: bool = True,
        probe_size: int | None = None,
        posterior: PosteriorKind = "per_class",
        neighbours: int = 5,
        optimizer: OptimizerCallable = default_generator_optimizer,
        initial_gain: float = 3e-3,
        checkpoint: str | os.PathLike[str] | None = None,
        shadow_model: nn.Module | str | os.PathLike[str] | None = None,
        penalised: PenaltyReading = "step",
        schedule: Schedule = "constant",
        warmup: int = 0,
        preservation_weight: float = 0.0,
        preservation_size: int | None = None,
        stopping: Stopping = "fixed",
        stopping_margin: float = 0.0,
        accuracy_tolerance: float = 0.02,
        check_every: int = 1,
        step_scale: StepScale = "absolute",
        stopping_size: int | None = None,
        projection_energy: float | None = None,
        head: str | int | None = None,
    ) -> None:
        if not isinstance(target, nn.Module):
            raise TypeError(f"Expected `target` to be an nn.Module, but got {type(target).__name__}.")
        super().__init__(target)
        self.iterations = check_integer("iterations", iterations, meaning="T, the number of iterations")
        self.xi = check_positive("xi", xi, meaning="ξ, the forgetting coefficient")
        self.penalty_weight = check_non_negative("penalty_weight", penalty_weight, meaning="λ, the sparsity penalty")
        if not isinstance(dynamic_penalty, bool):
            raise TypeError(f"Expected `dynamic_penalty` to be a boolean, but got {type(dynamic_penalty).__name__}.")
        self.probe_size = (
            None if probe_size is None else check_integer("probe_size", probe_size, meaning="samples of D0")
        )
        check_choice("posterior", posterior, POSTERIOR_KINDS)
        self.neighbours = check_integer("neighbours", neighbours, meaning="reference samples per forget sample")
        self.initial_gain = check_positive("initial_gain", initial_gain)
        if not callable(optimizer):
            raise TypeError(f"Expected `optimizer` to be callable, but got {type(optimizer).__name__}.")
        self.penalised: PenaltyReading = check_choice("penalised", penalised, PENALTY_READINGS)
        self.schedule: Schedule = check_choice("schedule", schedule, SCHEDULES)
        self.warmup = check_integer("warmup", warmup, 0, meaning="iterations of the warm-up")
        self.preservation_weight = check_non_negative(
            "preservation_weight", preservation_weight, meaning="γ, the preservation term"
        )
        self.preservation_size = (
            None
            if preservation_size is None
            else check_integer("preservation_size", preservation_size, meaning="retained samples preserved")
        )
        self.stopping: Stopping = check_choice("stopping", stopping, STOPPINGS)
        self.stopping_margin = check_in_range("stopping_margin", stopping_margin, 0.0, 0.5, include_high=False)
        self.accuracy_tolerance = check_in_range("accuracy_tolerance", accuracy_tolerance, 0.0, 1.0)
        self.check_every = check_integer("check_every", check_every, meaning="iterations between stopping checks")
        self.step_scale: StepScale = check_choice("step_scale", step_scale, STEP_SCALES)
        self.stopping_size = (
            None
            if stopping_size is None
            else check_integer("stopping_size", stopping_size, meaning="samples of each validation split checked")
        )
        self.projection_energy = (
            None
            if projection_energy is None
            else check_in_range(
                "projection_energy",
                projection_energy,
                0.0,
                1.0,
                include_low=False,
                meaning="the share of the retained inputs' energy the step avoids",
            )
        )
        self.save_hyperparameters(ignore=["target", "optimizer", "shadow_model"])
        self.automatic_optimization = False  # one closure-driven step per iteration, L-BFGS included

        target = copy.deepcopy(target_network(target))
        if checkpoint is not None:
            _load_weights(target, checkpoint)
        target.eval()
        target.requires_grad_(False)
        self.target = target
        self.shadow: nn.Module | None = None
        if posterior == "shadow" and shadow_model is None:
            raise ValueError(
                "Expected `shadow_model` (a classifier of the target's classes that never saw the forget set, such as"
                " the membership oracle's shadow model) with `posterior='shadow'`, but got None."
            )
        if shadow_model is not None:
            if isinstance(shadow_model, (str, os.PathLike)):
                shadow = copy.deepcopy(target)
                _load_weights(shadow, shadow_model, "shadow_model")
            elif isinstance(shadow_model, nn.Module):
                shadow = copy.deepcopy(target_network(shadow_model))
            else:
                raise TypeError(
                    f"Expected `shadow_model` to be an nn.Module or the path of its weights, but got"
                    f" {type(shadow_model).__name__}."
                )
            self.shadow = shadow.eval().requires_grad_(False)
        self.dynamic_penalty = dynamic_penalty
        self.posterior: PosteriorKind = posterior
        self.optimizer = optimizer
        if isinstance(head, int) and not isinstance(head, bool):
            head = str(head)  # a child of an nn.Sequential by its index, as YAML reads `head: 5`
        self.head = head
        self._edited = target if head is None else _head_module(target, head)  # the part whose parameters move
        self._prefix = "" if head is None else f"{head}."
        self.parameter_names = [self._prefix + name for name, _ in self._edited.named_parameters()]
        self.generator = NeuronMaskGenerator(
            {self._prefix + name: p.shape for name, p in self._edited.named_parameters()},
            initial_gain=self.initial_gain,
        )
        # M_t = Σ_{τ ≤ t} ξ·μ_τ, so that θ_t = θ0 − M_t (Algorithm 1); buffers, so checkpoints keep it.
        for index, p in enumerate(self._edited.parameters()):
            self.register_buffer(f"accumulated_{index}", torch.zeros_like(p))
        self.unlearning_seconds = float("nan")
        self.setup_seconds = float("nan")
        self.stopped_at: int | None = None
        self._iteration = 0
        self._started = 0.0
        self._world = 1
        self._lean = False
        self._accumulated_buffers: list[torch.Tensor] = []
        self._log_each_step = False
        self._buffers_of_target: dict[str, torch.Tensor] = {}
        self._inputs = torch.empty(0)  # the forget shard, then the preserved sample: one forward pass per step
        self._forget_size = 0
        self._theta: dict[str, torch.Tensor] = {}  # θ_{t-1} while fitting
        self._forget: IndexedBatch | None = None  # this process's shard of the forget set
        self._forget_total = 0  # samples in the whole forget set, over every process
        self._reference: IndexedBatch | None = None
        self._probe: IndexedBatch | None = None
        self._preserved: IndexedBatch | None = None  # this process's shard of the preserved retained sample
        self._preserved_total = 0
        self._validation: IndexedBatch | None = None
        self._validation_heldout: IndexedBatch | None = None
        self._flip_source: int | None = None
        self._forget_posterior = torch.empty(0)
        self._preserved_posterior = torch.empty(0)
        self._original_validation_accuracy = float("nan")
        self._omega: dict[str, torch.Tensor] = {}
        self._direction: dict[str, torch.Tensor] = {}
        self._moments: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        self._projection_sample: torch.Tensor | None = None  # the whole preserved sample's inputs (every process)
        #: Per projected layer, the orthonormal basis its steps avoid, set at the start of a fit with
        #: ``projection_energy`` (``(features, k)``; see :func:`retained_input_subspaces`).
        self.projection_bases: dict[str, torch.Tensor] = {}

    # ------------------------------------------------------------------ properties
    @property
    def generator_parameter_count(self) -> int:
        """How many scalars the mask-gradient generator learns."""
        return self.generator.num_parameters

    @property
    def iteration(self) -> int:
        """How many iterations of Algorithm 1 the current fit has completed."""
        return self._iteration

    @property
    def forget_posterior(self) -> torch.Tensor:
        """``P`` for every forget sample, ``(N, K)``, in the forget split's order (built when fitting starts)."""
        return self._forget_posterior.detach().clone()

    @property
    def paper_departures(self) -> list[str]:
        """The settings of this module that leave the paper's algorithm (empty: the paper configuration's)."""
        return paper_departures({**dict(self.hparams), "shadow_model": self.shadow})

    def _accumulated(self) -> dict[str, torch.Tensor]:
        return {name: getattr(self, f"accumulated_{i}") for i, name in enumerate(self.parameter_names)}

    @property
    def mask_gradient(self) -> dict[str, torch.Tensor]:
        """The accumulated mask gradient ``μ = Σ_t ξ·μ_t`` (so ``θ_T = θ0 − μ``) of every parameter of the
        target, by name (zeros outside ``head``)."""
        accumulated = self._accumulated()
        return {
            name: accumulated[name].detach().clone() if name in accumulated else torch.zeros_like(p)
            for name, p in self.target.named_parameters()
        }

    def unlearned_parameters(self) -> dict[str, torch.Tensor]:
        """``θ_t = θ0 − Σ ξ·μ_τ`` after the iterations run so far, by parameter name."""
        accumulated = self._accumulated()
        return {
            name: (p - accumulated[name]).detach() if name in accumulated else p.detach().clone()
            for name, p in self.target.named_parameters()
        }

    # ------------------------------------------------------------------ wiring
    def train(self, mode: bool = True) -> ForsakenModule:
        """Switch the generator's mode; the target (and the shadow model) always stay in eval mode."""
        super().train(mode)
        self.target.eval()
        if self.shadow is not None:
            self.shadow.eval()
        return self

    def _sample(self, split: str, size: int) -> IndexedBatch:
        """A seeded random sample of ``size`` samples of ``split`` (sorted by position), read without the rest."""
        self._declared(split)
        dataset = self.unlearning_data.dataset(split)
        chosen = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(0))[:size].sort().values
        loader = DataLoader(dataset, batch_size=max(1, len(chosen)), sampler=chosen.tolist())
        inputs, targets, indices = next(iter(loader))
        return IndexedBatch(inputs, targets, indices)

    def _check_classifier(self, name: str, model: nn.Module, inputs: torch.Tensor, shape: Sequence[int]) -> None:
        try:
            with torch.no_grad():
                device = next(iter(model.parameters()), torch.empty(0)).device
                logits = model(inputs[:2].to(device))
        except (RuntimeError, ValueError) as error:
            raise RuntimeError(
                f"Expected `{name}` ({type(model).__name__}) to accept the datamodule's inputs of shape"
                f" {tuple(shape)}, but its forward pass fails: {error}"
            ) from None
        if logits.shape[-1] != self.num_classes:
            raise RuntimeError(
                f"Expected `{name}` to produce {self.num_classes} logits, but its forward pass gives"
                f" {logits.shape[-1]}."
            )

    def setup(self, stage: str) -> None:
        """Read and check the forget, reference and probe splits (and those the options need) of the datamodule."""
        super().setup(stage)
        if stage != "fit":
            return
        datamodule = self.unlearning_data
        max_steps = self.trainer.max_steps
        if 0 <= max_steps < self.iterations:
            raise RuntimeError(
                f"Expected the Trainer's `max_steps` to be at least `iterations` ({self.iterations}) or -1,"
                f" but got {max_steps}."
            )
        forget = self.whole_split("forget")
        if forget.inputs.shape[0] == 0:
            raise ValueError("Expected a non-empty `forget` split, but it holds no sample.")
        rank, world = self.trainer.global_rank, self.trainer.world_size
        if forget.inputs.shape[0] < world:
            raise ValueError(
                f"Expected at least one forget sample per process ({world}), but the `forget` split holds"
                f" {forget.inputs.shape[0]}."
            )
        self._forget_total = int(forget.inputs.shape[0])
        forget = IndexedBatch(*(t[rank::world] for t in forget))  # this process's shard
        self._check_classifier("target", self.target, forget.inputs, datamodule.input_shape)
        if self.head is not None:
            self._head_inputs(forget.inputs[:2].to(next(iter(self.target.parameters())).device))
        if self.shadow is not None:
            self._check_classifier("shadow_model", self.shadow, forget.inputs, datamodule.input_shape)
        reads_reference = self.posterior in ("per_class", "global_mean", "nearest")
        reference = self.whole_split("reference")
        if reference.inputs.shape[0] == 0 and reads_reference:
            raise ValueError(
                "Expected a non-empty `reference` split (the non-members P is built from), but it holds no sample."
            )
        if reference.targets.numel() and int(reference.targets.max()) >= self.num_classes:
            raise ValueError(
                f"Expected the `reference` split's labels to be classes of the target (0–{self.num_classes - 1}),"
                f" but got class {int(reference.targets.max())}."
            )
        probe = self.whole_split("probe", self.probe_size)
        if probe.inputs.shape[0] == 0 and self.dynamic_penalty:
            raise ValueError(
                "Expected a non-empty `probe` split (D0, for the dynamic penalty ω), but it holds no sample."
            )
        self._preserved, self._preserved_total, self._projection_sample = None, 0, None
        if self.preservation_weight > 0 or self.projection_energy is not None:
            available = len(datamodule.dataset("retain"))
            if available == 0:
                reader = "the preservation term" if self.preservation_weight > 0 else "`projection_energy`"
                raise ValueError(
                    f"Expected a non-empty `retain` split ({reader} reads a sample of it), but it holds no sample."
                )
            size = min(available, self.preservation_size or max(self._forget_total, MIN_PRESERVED))
            if size < world:
                raise ValueError(
                    f"Expected at least one preserved sample per process ({world}), but `preservation_size` gives"
                    f" {size}."
                )
            preserved = self._sample("retain", size)
            if self.projection_energy is not None:  # every process builds the same subspaces from the whole sample
                self._projection_sample = preserved.inputs
            if self.preservation_weight > 0:
                self._preserved_total = size
                self._preserved = IndexedBatch(*(t[rank::world] for t in preserved))
        self._validation = self._validation_heldout = None
        if self.stopping == "validation":
            self._validation, self._validation_heldout = (
                self.whole_split(name)
                if self.stopping_size is None or self.stopping_size >= len(datamodule.dataset(name))
                else self._sample(name, self.stopping_size)
                for name in ("validation", "validation_heldout")
            )
            for name, split in (("validation", self._validation), ("validation_heldout", self._validation_heldout)):
                if split.inputs.shape[0] == 0:
                    raise ValueError(
                        f"Expected a non-empty `{name}` split (the stopping rule reads the validation pair), but it"
                        " holds no sample."
                    )
        settings = datamodule.splits.settings
        flip_source = settings.get("flip_source") if datamodule.splits.kind == "poison" else None
        self._flip_source = flip_source if isinstance(flip_source, int) else None
        self._forget, self._reference, self._probe = forget, reference, probe

    def train_dataloader(self) -> range:
        """Paces the loop: ``iterations`` steps on every process (each step reads the whole shard).

        A ``range``, not a DataLoader: nothing is loaded, so there is nothing to collate, and no
        distributed sampler splits it (each process runs every iteration on its own shard).
        """
        return range(self.iterations)

    def fit_settings(self) -> dict[str, Any]:
        return {"max_steps": self.iterations}

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return self.optimizer(self.generator.parameters())

    def _summed(self, tensor: torch.Tensor) -> torch.Tensor:
        """``tensor`` summed over the processes (itself on one)."""
        if self._world == 1:
            return tensor
        return self.trainer.strategy.reduce(tensor.detach().clone(), reduce_op="sum")

    def _averaged(self, tensor: torch.Tensor) -> torch.Tensor:
        return tensor if self._world == 1 else self._summed(tensor) / self._world

    # ------------------------------------------------------------------ the loss
    def _logits(self, parameters: dict[str, torch.Tensor], inputs: torch.Tensor) -> torch.Tensor:
        """``f_θ(inputs)``; with ``head``, the head alone at ``parameters`` on the inputs it receives."""
        if self._prefix:
            cut = len(self._prefix)
            parameters = {name[cut:]: value for name, value in parameters.items()}
        return functional_call(self._edited, (parameters, self._buffers_of_target), (inputs,))

    @torch.no_grad()
    def _head_inputs(self, inputs: torch.Tensor, chunk: int = 256) -> torch.Tensor:
        """What ``head`` receives when the target (at ``θ0``) reads ``inputs``, computed ``chunk`` samples at a time.

        Raises:
            RuntimeError: ``head`` is not run exactly once, on one tensor, as the last stage of the target's
                forward pass (its output the target's logits).
        """
        received: list[Any] = []
        produced: list[Any] = []

        def before(module: nn.Module, args: tuple[Any, ...]) -> None:
            received.append(args)

        def after(module: nn.Module, args: tuple[Any, ...], output: Any) -> None:
            produced.append(output)

        hooks = [self._edited.register_forward_pre_hook(before), self._edited.register_forward_hook(after)]
        pieces = []
        try:
            for start in range(0, inputs.shape[0], chunk):
                received.clear()
                produced.clear()
                logits = self.target(inputs[start : start + chunk])
                last = len(produced) == 1 and (
                    produced[0] is logits
                    or (
                        isinstance(produced[0], torch.Tensor)
                        and produced[0].shape == logits.shape
                        and torch.equal(produced[0], logits)
                    )
                )
                if len(received) != 1 or len(received[0]) != 1 or not isinstance(received[0][0], torch.Tensor):
                    raise RuntimeError(
                        f"Expected `head` ({self.head!r}) to be called once per forward pass of the target, on one"
                        f" tensor, but it was called {len(received)} times"
                        + (f" on {len(received[0])} arguments." if len(received) == 1 else ".")
                    )
                if not last:
                    raise RuntimeError(
                        f"Expected `head` ({self.head!r}) to be the last stage of the target's forward pass (its output"
                        " the target's logits), but the target changes what it returns."
                    )
                pieces.append(received[0][0])
        finally:
            for hook in hooks:
                hook.remove()
        return torch.cat(pieces) if pieces else inputs.new_empty(0)

    def divergence(self, logits: torch.Tensor, posterior: torch.Tensor) -> torch.Tensor:
        """A data term of the objective: ``KL(P ‖ Υ)`` summed over this process's samples (a hook).

        Called for the forget samples against ``P`` and, with a preservation term, for the
        preserved retained samples against the target's own posteriors on them.

        Args:
            logits: ``f_θt`` of the shard's samples, ``(n, K)``.
            posterior: their target posteriors, ``(n, K)``.

        Returns:
            A scalar; the objective divides it by the whole set's size, so the loss is the mean
            over every sample (Eqs. 4–5).
        """
        return F.kl_div(logits.log_softmax(dim=1), posterior, reduction="sum")

    def _kl(self, logits: torch.Tensor) -> torch.Tensor:
        # This process's share of the mean KL, scaled so that DDP's gradient average gives the
        # gradient of the mean over the whole forget set (× 1 on one process).
        return self.divergence(logits, self._forget_posterior) * (self._world / self._forget_total)

    def penalty(self, mask_gradient: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """The sparsity term: ``λ·Σ ω·|μ|`` (Eq. 5), or ``λ·‖μ‖₁`` without ω (Eq. 4) (a hook).

        Args:
            mask_gradient: the penalised mask gradient by parameter name: this iteration's ``μ_t``
                (``penalised="step"``) or the accumulated ``μ = Σ ξ·μ_τ`` including this
                iteration's (``penalised="accumulated"``).
        """
        if self._omega:
            l1 = sum((self._omega[name] * mask_gradient[name].abs()).sum() for name in self.parameter_names)
        else:
            l1 = sum(mask_gradient[name].abs().sum() for name in self.parameter_names)
        return self.penalty_weight * torch.as_tensor(l1)

    def _data_terms(self, parameters: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, Any]:
        """The forget set's logits, ``KL(P ‖ Υ)`` and the preservation term ``γ·KL(f_θ0 ‖ f_θt)`` over the
        preserved retained sample (or ``None``) at ``parameters``: one forward pass over both sets."""
        logits = self._logits(parameters, self._inputs)  # Υ = softmax(f_θt(D_u)), then the preserved sample's
        forget_logits = logits[: self._forget_size]
        preservation = None
        if self._preserved is not None:
            share = self.divergence(logits[self._forget_size :], self._preserved_posterior)
            preservation = self.preservation_weight * share * (self._world / self._preserved_total)
        return forget_logits, self._kl(forget_logits), preservation

    def on_fit_start(self) -> None:
        """Build ``P``, ``ω`` (Eq. 6) and the first direction (at ``θ0``); reset ``θ`` to ``θ0``."""
        if self._forget is None or self._reference is None or self._probe is None:
            raise RuntimeError("Expected `setup('fit')` to have read the datamodule's splits before fitting.")
        self._started = time.perf_counter()
        device = self.device
        self._world = self.trainer.world_size
        # One process at Lightning's plain 32-bit precision: the closure calls backward and the torch optimiser
        # directly (see `training_step`); otherwise Lightning's calls, which DDP and mixed precision need.
        optimizer = self.optimizers()
        self._lean = (
            self._world == 1
            and type(self.trainer.precision_plugin) is Precision
            and isinstance(optimizer, LightningOptimizer)
            and callable(getattr(optimizer, "_on_before_step", None))
            and callable(getattr(optimizer, "_on_after_step", None))
        )
        self._accumulated_buffers = list(self._accumulated().values())
        # Lightning's logging costs about as much as an iteration of a small model, so it is skipped
        # when nothing would show it; `history` keeps every iteration regardless.
        self._log_each_step = bool(self.trainer.loggers or self.trainer.progress_bar_callback is not None)
        self._buffers_of_target = dict(self._edited.named_buffers())
        self._forget = IndexedBatch(*(t.to(device) for t in self._forget))
        for m in self._accumulated().values():
            m.zero_()
        self.generator.reset_parameters()  # every fit is a fresh run of Algorithm 1 from θ0
        names = self.generator.names
        self.generator.scales = (
            {self._prefix + name: unit for name, unit in relative_step_scales(self._edited).items()}
            if self.step_scale == "relative"
            else dict.fromkeys(names, 1.0)
        )
        self._iteration = 0
        self.stopped_at = None
        self.history = []
        assert self._reference is not None
        self._forget_posterior = self.posterior_targets(self._forget, self._reference).to(device)
        # What the edited part reads: the target's inputs, or with `head` what the head receives from them (at θ0,
        # where everything before the head stays), computed once here.
        staged = (lambda inputs: inputs) if self.head is None else self._head_inputs
        if self.dynamic_penalty:  # Eq. 6, computed once from θ0
            probe_inputs = staged(self._probe.inputs.to(device))
            self._omega = {
                self._prefix + name: weights
                for name, weights in dynamic_penalty_weights(
                    self._edited, probe_inputs, self._probe.targets.to(device)
                ).items()
            }
        else:
            self._omega = {}
        self._forget_size = int(self._forget.inputs.shape[0])
        self._inputs = self._forget.inputs
        if self._preserved is not None:
            self._preserved = IndexedBatch(*(t.to(device) for t in self._preserved))
            self._inputs = torch.cat([self._forget.inputs, self._preserved.inputs])
        self._inputs = staged(self._inputs)
        with torch.no_grad():
            if self._preserved is not None:
                self._preserved_posterior = self._edited(self._inputs[self._forget_size :]).softmax(dim=1)
            if self._validation is not None and self._validation_heldout is not None:
                self._validation, self._validation_heldout = (
                    IndexedBatch(staged(split.inputs.to(device)), split.targets.to(device), split.indices)
                    for split in (self._validation, self._validation_heldout)
                )
                predicted = self._edited(self._validation.inputs).argmax(dim=1)
                self._original_validation_accuracy = float((predicted == self._validation.targets).float().mean())
        self.projection_bases = {}
        if self._projection_sample is not None:
            assert self.projection_energy is not None
            sample = self._projection_sample.to(device)
            if self._preserved is not None and self._world == 1:  # the preserved sample's, already computed
                sample = self._inputs[self._forget_size :]
            else:
                sample = staged(sample)
            bases = retained_input_subspaces(self._edited, sample, self.projection_energy)
            self.projection_bases = {(self._prefix + layer).rstrip("."): basis for layer, basis in bases.items()}
        theta0 = {
            self._prefix + name: p.detach().clone().requires_grad_(True) for name, p in self._edited.named_parameters()
        }
        _, kl, preservation = self._data_terms(theta0)
        data = kl if preservation is None else kl + preservation
        gradients = torch.autograd.grad(data, list(theta0.values()), allow_unused=True)
        self._moments = {}
        self._direction = self._project(
            self._normalise(
                {
                    name: self._averaged(torch.zeros_like(p) if g is None else g)
                    for (name, p), g in zip(theta0.items(), gradients)
                }
            )
        )
        self._theta = {name: p.detach().clone() for name, p in theta0.items()}  # θ_{t-1}
        self.setup_seconds = time.perf_counter() - self._started

    @torch.no_grad()
    def posterior_targets(self, forget: IndexedBatch, reference: IndexedBatch) -> torch.Tensor:
        """``P`` for every forget sample (Defs. 3–5), ``(n, K)``: what the unlearned model should output (a hook).

        Called once per fit, after :meth:`setup`, with this process's forget shard (on the
        module's device) and the whole ``reference`` split (non-members of the target).
        """
        if self.posterior == "shadow":
            assert self.shadow is not None  # checked in __init__
            return self.shadow(forget.inputs).softmax(dim=1)
        device = self.device
        reference_inputs = reference.inputs.to(device)
        if reference_inputs.shape[0]:
            reference_posteriors = self.target(reference_inputs).softmax(dim=1)
        else:  # only reached with posterior="uniform"
            reference_posteriors = torch.empty(0, self.num_classes, device=device)
        if self.posterior == "nearest":
            return nearest_reference_posterior(forget.inputs, reference_inputs, reference_posteriors, self.neighbours)
        table = non_member_posterior(reference_posteriors, self.num_classes, self.posterior)
        if self._flip_source is not None:  # poison: P of the clean-labelled originals (§V-F)
            keys = torch.full_like(forget.targets, self._flip_source)
        else:
            keys = self.target(forget.inputs).argmax(dim=1)
        return table[keys]

    def _normalise(self, gradient: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The generator's input direction: the data terms' gradient, scaled by running moments (Adam-style).

        Per parameter, ``m̂ / (√v̂ + ε)`` over the gradients seen so far (β1 = 0.9, β2 = 0.999),
        so every layer gets steps of the same scale whatever the scale of its gradient.
        """
        beta1, beta2, eps = 0.9, 0.999, 1e-8
        step = self._iteration + 1  # the gradient at θ_t is the (t+1)-th one (θ0's is the first)
        first_correction, second_correction = 1 - beta1**step, 1 - beta2**step
        direction = {}
        for name, g in gradient.items():
            if name not in self._moments:
                self._moments[name] = (torch.zeros_like(g), torch.zeros_like(g))
            m, v = self._moments[name]
            m.mul_(beta1).add_(g, alpha=1 - beta1)
            v.mul_(beta2).addcmul_(g, g, value=1 - beta2)
            denominator = (v / second_correction).sqrt_().add_(eps)
            direction[name] = (m / first_correction).div_(denominator)
        return direction

    def _project(self, direction: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """``direction`` with each projected layer's weight rows taken off the layer's retained subspace,
        ``D − (D·U)·Uᵀ`` (in place; unchanged without ``projection_energy``). The generator scales whole rows
        (one gain per output neuron), so its step ``μ_t`` stays off the subspace too; biases move freely."""
        for layer, basis in self.projection_bases.items():
            name = f"{layer}.weight" if layer else "weight"
            if name not in direction:  # a weight registered under another name (tied): left as it is
                continue
            weight = direction[name]
            rows = weight.reshape(weight.shape[0], -1)
            basis = basis.to(rows.dtype)
            direction[name] = (rows - (rows @ basis) @ basis.T).reshape(weight.shape)
        return direction

    def _objective(self, theta_previous: Mapping[str, torch.Tensor]) -> dict[str, Any]:
        """Eq. 5 (Eq. 4 without ω), with our preservation term when set, at the generator's current weights.

        Returns the loss and its terms, ``μ_t``, ``θ_t`` (non-leaf tensors that retain their
        gradient) and the forget set's logits under ``θ_t``.
        """
        scale = gain_schedule(self._iteration + 1, self.iterations, self.schedule, self.warmup)
        mask_gradient = self.generator(self._direction, scale)  # μ_t = G(θ_{t-1}, Υ) (Algorithm 1)
        theta = {name: theta_previous[name] - self.xi * mask_gradient[name] for name in self.parameter_names}
        for tensor in theta.values():
            tensor.retain_grad()  # ∂(data terms)/∂θ_t: the generator's direction at the next iteration
        logits, kl, preservation = self._data_terms(theta)
        if self.penalised == "accumulated":
            accumulated = self._accumulated()
            penalised = {name: accumulated[name] + self.xi * mask_gradient[name] for name in self.parameter_names}
        else:
            penalised = mask_gradient
        penalty = self.penalty(penalised)
        loss = kl + penalty if preservation is None else kl + preservation + penalty
        return dict(
            loss=loss,
            kl=kl,
            penalty=penalty,
            preservation=preservation,
            mask_gradient=mask_gradient,
            theta=theta,
            logits=logits,
        )

    def training_step(self, batch: IndexedBatch, batch_idx: int) -> torch.Tensor:
        """One iteration ``t`` of Algorithm 1 over the whole forget set; ``batch`` only paces the loop."""
        assert self._forget is not None  # set by setup; not user input
        optimizer = self.optimizers()
        if isinstance(optimizer, list):
            raise RuntimeError(f"Expected one optimiser for the generator, but got {len(optimizer)}.")
        theta_previous = self._theta  # θ_{t-1}
        first: dict[str, Any] = {}
        lean = self._lean

        def closure() -> torch.Tensor:
            optimizer.zero_grad()
            terms = self._objective(theta_previous)
            if lean:
                terms["loss"].backward()
            else:
                self.manual_backward(terms["loss"])
            loss = self._averaged(terms["loss"].detach())
            if not first:  # the evaluation at the generator's weights before this step is committed
                first.update(terms, loss=loss)
            return loss  # what L-BFGS reads: the same on every process

        # update G by ∇_φ L (Adam, SGD, or L-BFGS with its line search)
        if lean:  # the torch optimiser itself, the step still counted by Lightning's loop (global_step, max_steps)
            optimizer._on_before_step()
            optimizer.optimizer.step(closure=closure)  # type: ignore[arg-type]
            optimizer._on_after_step()
        else:
            optimizer.step(closure=closure)
        mask_gradient, theta = first["mask_gradient"], first["theta"]
        with torch.no_grad():
            for name, accumulated in zip(self.parameter_names, self._accumulated_buffers):
                accumulated.add_(mask_gradient[name], alpha=self.xi)  # M_t = M_{t-1} + ξ·μ_t, so θ_t = θ0 − M_t
            self._theta = {name: t.detach() for name, t in theta.items()}  # θ_t = θ_{t-1} − ξ·μ_t
        self._iteration += 1
        self._direction = self._project(
            self._normalise(
                {
                    name: self._averaged(t.grad if t.grad is not None else torch.zeros_like(t))
                    for name, t in theta.items()
                }
            )
        )
        self._record(first)
        if self._iteration >= self.iterations or self.stopped_at is not None:
            self.trainer.should_stop = True
        return first["loss"]

    def _record(self, first: Mapping[str, Any]) -> None:
        """Keep (and, when something would show it, log) the iteration's figures; run the stopping rule."""
        assert self._forget is not None
        logits = first["logits"].detach()
        correct = (logits.argmax(dim=1) == self._forget.targets).sum()
        record = {
            "kl": self._averaged(first["kl"].detach()),
            "penalty": first["penalty"].detach(),
            "loss": first["loss"],
            "forget_acc": self._summed(correct) / self._forget_total,
        }
        if first["preservation"] is not None:
            record["preservation"] = self._averaged(first["preservation"].detach())
        if self._checks_now():
            record.update(self._stopping_check(logits))
        if self._log_each_step:
            values = {f"forsaken/{key}": value for key, value in record.items()}
            self.log_dict(values, on_step=True, on_epoch=False, prog_bar=False, batch_size=self._forget_total)
        self.history.append(record)  # tensors until the fit ends: no device synchronisation per iteration

    def _checks_now(self) -> bool:
        """Whether the stopping rule reads the validation pair after this iteration: every ``check_every``
        iterations once the warm-up is over (before, the step is still growing)."""
        return (
            self.stopping == "validation" and self._iteration >= self.warmup and self._iteration % self.check_every == 0
        )

    @torch.no_grad()
    def _stopping_check(self, forget_logits: torch.Tensor) -> dict[str, torch.Tensor]:
        """The stopping rule at ``θ_t``: loss AUC of forget vs ``validation_heldout``, then, only when the AUC
        accepts, the accuracy on ``validation``."""
        assert self._forget is not None and self._validation is not None and self._validation_heldout is not None
        unseen = self._validation_heldout
        unseen_losses = F.cross_entropy(self._logits(self._theta, unseen.inputs), unseen.targets, reduction="none")
        forget_losses = F.cross_entropy(forget_logits, self._forget.targets, reduction="none")
        pairs = self._summed(loss_auc(forget_losses, unseen_losses))  # the same count on every process
        auc = pairs / (self._forget_total * unseen_losses.numel())
        readings = {"stop_auc": auc}
        if float(auc) <= 0.5 + self.stopping_margin:
            predicted = self._logits(self._theta, self._validation.inputs).argmax(dim=1)
            accuracy = (predicted == self._validation.targets).float().mean()
            readings["validation_acc"] = accuracy
            if float(accuracy) >= self._original_validation_accuracy - self.accuracy_tolerance - 1e-9:
                self.stopped_at = self._iteration
        return readings

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> int | None:
        # Skip the loop's batches once T iterations are done or the stopping rule accepted (the Trainer then stops).
        return -1 if self._iteration >= self.iterations or self.stopped_at is not None else None

    def on_fit_end(self) -> None:
        self.history = [{key: float(value) for key, value in record.items()} for record in self.history]
        self.unlearning_seconds = time.perf_counter() - self._started

    # ------------------------------------------------------------------ results
    def unlearned_model(self) -> nn.Module:
        """The unlearned classifier ``f_θT``: a plain copy of the target's architecture, ``θ_T`` loaded.

        Returns:
            A new module of the target's class (no wrapper), in eval mode, its parameters
            trainable again like any freshly loaded model.
        """
        model = copy.deepcopy(self.target)
        model.load_state_dict({**model.state_dict(), **self.unlearned_parameters()})
        model.requires_grad_(True)
        return model.eval()

    def save_unlearned(self, path: str | os.PathLike[str]) -> Path:
        """Save ``f_θT`` as an ordinary ``state_dict`` file.

        Load it without this library: ``model.load_state_dict(torch.load(path))`` into a freshly
        built backbone of the target's architecture.

        Args:
            path: where to write the checkpoint (parent folders are created).

        Returns:
            The path written.
        """
        return atomic_write(path, lambda file: torch.save(self.unlearned_model().state_dict(), file))

    def macforget_gradient(self, server_lr: float, batch_size: int) -> dict[str, torch.Tensor]:
        """MacForget (Algorithm 2): the accumulated mask gradient as an ordinary gradient ``μ' = (n0/η)·μ``.

        A federated client sends ``μ'`` as if it were the gradient of its loss *summed* over a
        batch of ``n0`` samples. The server follows the usual FedSGD convention: it averages the
        gradient over the batch (divides by ``n0``) and takes an SGD step with learning rate
        ``η``, ``θ ← θ − η·(μ'/n0) = θ − μ``; starting from ``θ0`` it lands exactly on ``θ_T``.
        With ``torch.optim.SGD(params, lr=η)`` that is: set ``p.grad = μ'[name] / n0``, then
        ``step()``. (A server that does not average should receive ``μ/η`` instead, i.e. call
        this with ``batch_size=1``.)

        Args:
            server_lr: ``η``, the server's learning rate, positive.
            batch_size: ``n0``, the batch size the server averages over, at least 1.

        Returns:
            ``μ'`` per parameter name (the names of the target's ``state_dict``).

        Raises:
            ValueError: ``server_lr`` not positive or ``batch_size`` below 1.

        Example:
            >>> from lightning_unlearn import DigitsDataModule, TrainingRecipe, train_classifier
            >>> dm = DigitsDataModule()
            >>> target = train_classifier(TrainingRecipe(max_epochs=5), dm, enable_progress_bar=False).module.backbone
            >>> module = forsaken_unlearn(target, dm, iterations=5).module
            >>> gradient = module.macforget_gradient(server_lr=0.1, batch_size=32)
            >>> server = copy.deepcopy(target)  # the server's copy of θ0
            >>> sgd = torch.optim.SGD(server.parameters(), lr=0.1)
            >>> for name, p in server.named_parameters():
            ...     p.grad = gradient[name] / 32  # the server averages over its batch of 32
            >>> sgd.step()  # the server now holds θ_T
            >>> theta_t = module.unlearned_parameters()
            >>> all(torch.allclose(p, theta_t[name], atol=1e-6) for name, p in server.named_parameters())
            True
        """
        eta = check_positive("server_lr", server_lr, meaning="η")
        n0 = check_integer("batch_size", batch_size, meaning="n0, the server's batch size")
        return {name: m * (n0 / eta) for name, m in self.mask_gradient.items()}


# ---------------------------------------------------------------------------- the helper
@dataclass
class ForsakenResult:
    """The outcome of :func:`forsaken_unlearn`.

    Attributes:
        model: the unlearned classifier, a plain module of the target's architecture.
        seconds: wall-clock time of ``Trainer.fit`` (set-up of P and ω, the T iterations and
            the Trainer's own overhead), with no evaluation inside.
        module: the fitted :class:`ForsakenModule` (history, mask gradient, MacForget export).
    """

    model: nn.Module
    seconds: float
    module: ForsakenModule


def forsaken_unlearn(
    target: nn.Module,
    datamodule: UnlearningDataModule,
    seed: int = 0,
    device_settings: DeviceSettings | None = None,
    **settings: Any,
) -> ForsakenResult:
    """Unlearn ``datamodule``'s forget set from ``target`` with Forsaken, timed.

    Args:
        target: the trained classifier (not modified).
        datamodule: the splits; its ``forget``, ``reference`` and ``probe`` are used.
        seed: seeds the run (the method itself is deterministic given the data).
        device_settings: where it runs (default: ``accelerator="auto"``, one device).
        **settings: any argument of :class:`ForsakenModule` (``iterations``, ``xi``,
            ``penalty_weight``, ``dynamic_penalty``, ``probe_size``, ``posterior``,
            ``optimizer``, ``initial_gain``).

    Returns:
        A :class:`ForsakenResult`: the unlearned model, the time of the unlearning step alone,
        and the fitted module.

    Raises:
        TypeError, ValueError, RuntimeError: see :class:`ForsakenModule`.

    Example:
        >>> from lightning_unlearn import DigitsDataModule, TrainingRecipe, train_classifier
        >>> dm = DigitsDataModule()
        >>> target = train_classifier(TrainingRecipe(max_epochs=5), dm, enable_progress_bar=False).module.backbone
        >>> result = forsaken_unlearn(target, dm, iterations=30)
        >>> type(result.model).__name__, len(result.module.history), result.seconds > 0
        ('MLP', 30, True)
    """
    module = ForsakenModule(target, **settings)
    seconds = fit_forsaken(module, datamodule, seed=seed, device_settings=device_settings)
    return ForsakenResult(model=module.unlearned_model(), seconds=seconds, module=module)


def fit_forsaken(
    module: ForsakenModule,
    datamodule: UnlearningDataModule,
    seed: int = 0,
    callbacks: Sequence[L.Callback] = (),
    device_settings: DeviceSettings | None = None,
    **trainer_kwargs: Any,
) -> float:
    """Run ``module``'s T iterations with a quiet Trainer and return the seconds ``fit`` took.

    The timer covers ``Trainer.fit`` alone (P, ω and the iterations, with the Trainer's own
    overhead); ``callbacks`` run inside it, so a callback that evaluates must time itself out.

    Args:
        module: the configured :class:`ForsakenModule`.
        datamodule: the splits (``forget``, ``reference``, ``probe``).
        seed: seeds the run.
        callbacks: extra Lightning callbacks (e.g. snapshots of θ_t for a curve).
        device_settings: where it runs (default: ``accelerator="auto"``, one device).
        **trainer_kwargs: anything else for :class:`lightning.Trainer`.

    Returns:
        Wall-clock seconds of ``Trainer.fit``.
    """
    run = fit_method(module, datamodule, device_settings, seed=seed, callbacks=list(callbacks), **trainer_kwargs)
    return run.seconds
