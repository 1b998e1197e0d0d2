"""Forgetting neural networks (FNN) for unlearning, after Hatua et al., "Machine Unlearning using
Forgetting Neural Networks", building on Cano-Córdoba et al.'s forgetting networks.

A :class:`ForgettingLayer` multiplies every neuron ``i`` of the layer it follows by the
Ebbinghaus retention

    φ_i(t) = exp(−t / τ_i)                                    (the paper's forgetting function)

where ``t`` is a clock the module advances and ``τ_i`` is the neuron's memory stability. It has
no trainable parameter. The τ policies (:func:`forgetting_rates`) are the paper's fixed rate
(FFR) and its varying rates (VFR): ``rank``, ``ordered``, ``top_k`` and ``random``.

How the phases work here (the paper leaves the mechanics open; this is our reading)
-----------------------------------------------------------------------------------
The schedule is ``turns × (learn_epochs, unlearn_epochs)`` (default 5 × (2, 4)), learn first.

* **Learn epochs** rehearse: the clock is 0 (φ = 1, the forgetting layers are the identity)
  and the whole network takes ordinary gradient steps on the ``retain`` split.
* **Unlearn epochs** decay: the clock is ``j`` in the ``j``-th unlearn epoch of a phase, so
  every neuron is attenuated by ``φ_i(j)``. The network keeps taking gradient steps on
  ``retain`` *through the attenuated layers* (``unlearn_training="retain"``, the default), so
  whatever the retained data needs is re-encoded around the decay, while nothing about the
  forget set is ever rehearsed. No step ever uses a forget sample (descending on the forget
  set would re-memorise it). With ``unlearn_training="none"`` unlearn epochs take no step
  at all: the decay alone acts and the epoch only measures it.
* **Consolidation** (``consolidate=True``): after the last unlearn epoch of a phase, the decay
  ``φ_i(unlearn_epochs)`` is folded into the weights and the clock returns to 0, so what the
  rehearsal did not restore stays weakened in the next turn and compounds over turns. We fold
  it into the layer that *produces* the neuron (row ``i`` of its weight and its bias) rather
  than into the input columns of the layer that consumes it: both give exactly the same
  function (``φ > 0`` commutes with ReLU), and the producing layer is always the one named
  at insertion, whereas the consumer may sit behind a reshape. With ``consolidate=False``
  (the other reading) the decay is temporary: resetting the clock for the next learn phase
  restores every neuron, and only the steps taken under decay change the weights.

Per epoch, the module logs accuracy on the ``validation`` split (``val/acc``), the MIA score of
the forget set against ``validation_heldout`` (``mia/score``, with its direction in
``mia/loss_auc``; see docs/evaluation.md) and the schedule (``fnn/turn``, ``fnn/phase``,
``fnn/clock``); :class:`~lightning_unlearn.callbacks.MIAEarlyStopping` stops at the first
acceptable epoch. The NeurIPS 2023 challenge baseline (fine-tuning on ``retain``,
:class:`~lightning_unlearn.modules.baselines.FinetuneBaseline`) is evaluated the same way, so
both draw on the same curve.
"""

from __future__ import annotations

import copy
import math
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, ClassVar, Literal, get_args

import torch
from lightning.pytorch.cli import OptimizerCallable
from lightning.pytorch.utilities import rank_zero_warn
from torch import nn
from torch.utils.data import DataLoader

from lightning_unlearn.checks import check_integer, check_positive
from lightning_unlearn.datamodules.base import IndexedBatch
from lightning_unlearn.models import LossName
from lightning_unlearn.modules.baselines import UnlearningBaseline

__all__ = [
    "FORGETTING_POLICIES",
    "FNNModule",
    "ForgettingBlock",
    "ForgettingLayer",
    "ForgettingPolicy",
    "Phase",
    "PhaseStep",
    "forgetting_blocks",
    "forgetting_rates",
    "fully_connected_layers",
    "insert_forgetting_layers",
    "last_fully_connected_layers",
    "mean_activations",
    "phase_schedule",
    "remove_forgetting_layers",
]

ForgettingPolicy = Literal["fixed", "rank", "ordered", "top_k", "random"]
FORGETTING_POLICIES: tuple[str, ...] = get_args(ForgettingPolicy)
Phase = Literal["learn", "unlearn"]
Placement = Literal["1-L", "2-L"]
UnlearnTraining = Literal["retain", "none"]


# ---------------------------------------------------------------------------- the layer
class ForgettingLayer(nn.Module):
    """Multiplies neuron ``i`` by ``φ_i(t) = exp(−t / τ_i)``; no trainable parameters.

    Neurons lie along dimension 1 (features of a ``(batch, features)`` input, channels of a
    ``(batch, channels, ...)`` feature map). ``τ`` and the clock ``t`` are buffers, so they
    travel with the ``state_dict`` and every checkpoint.

    Args:
        tau: the memory stability of every neuron, one positive value per neuron.

    Raises:
        TypeError: ``tau`` is not a one-dimensional tensor or sequence of numbers.
        ValueError: ``tau`` is empty, or holds a value that is not positive and finite.

    Example:
        >>> layer = ForgettingLayer(torch.tensor([1.0, 2.0]))
        >>> layer.set_clock(2.0)
        >>> layer.retention()  # exp(-2/1), exp(-2/2)
        tensor([0.1353, 0.3679])
    """

    tau: torch.Tensor
    clock: torch.Tensor

    def __init__(self, tau: torch.Tensor | Sequence[float]) -> None:
        super().__init__()
        self.register_buffer("tau", self._validated_tau(tau))
        self.register_buffer("clock", torch.zeros((), dtype=torch.float32))

    @staticmethod
    def _validated_tau(tau: torch.Tensor | Sequence[float]) -> torch.Tensor:
        if not isinstance(tau, torch.Tensor):
            if isinstance(tau, (str, bytes)) or not isinstance(tau, Sequence):
                raise TypeError(
                    f"Expected `tau` to be a tensor or a sequence of numbers, but got {type(tau).__name__}."
                )
            tau = torch.tensor([float(value) for value in tau], dtype=torch.float32)
        if tau.ndim != 1 or tau.numel() == 0:
            raise ValueError(
                f"Expected `tau` to hold one value per neuron (1-D, non-empty), but got shape {tuple(tau.shape)}."
            )
        tau = tau.detach().to(torch.float32).clone()
        bad = ~(torch.isfinite(tau) & (tau > 0))
        if bad.any():
            raise ValueError(f"Expected `tau` to be positive, but got {float(tau[bad][0])}.")
        return tau

    @property
    def num_neurons(self) -> int:
        """How many neurons the layer attenuates."""
        return int(self.tau.numel())

    @property
    def time(self) -> float:
        """The current clock ``t``."""
        return float(self.clock.item())

    def set_tau(self, tau: torch.Tensor | Sequence[float]) -> None:
        """Replace every neuron's τ (same number of neurons).

        Raises:
            ValueError: a different number of neurons, or a τ that is not positive.
        """
        values = self._validated_tau(tau)
        if values.numel() != self.num_neurons:
            raise ValueError(
                f"Expected `tau` to have {self.num_neurons} values (one per neuron), but got {values.numel()}."
            )
        self.tau.copy_(values)

    def set_clock(self, t: float) -> None:
        """Set the clock to ``t`` (non-negative).

        Raises:
            ValueError: ``t`` negative or not finite.
        """
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t) or t < 0:
            raise ValueError(f"Expected the clock `t` to be a non-negative number, but got {t!r}.")
        self.clock.fill_(float(t))

    def advance(self, steps: float = 1.0) -> None:
        """Move the clock forward by ``steps``."""
        self.set_clock(self.time + steps)

    def reset_clock(self) -> None:
        """Set the clock back to 0: ``φ = 1``, the layer is the identity."""
        self.clock.zero_()

    def retention(self) -> torch.Tensor:
        """``φ(t) = exp(−t / τ)``, one factor per neuron."""
        return torch.exp(-self.clock / self.tau)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        if inputs.ndim < 2 or inputs.shape[1] != self.num_neurons:
            raise RuntimeError(
                f"Expected inputs with {self.num_neurons} neurons along dimension 1, but got shape"
                f" {tuple(inputs.shape)}."
            )
        factors = self.retention().to(inputs.dtype)
        return inputs * factors.view(1, -1, *([1] * (inputs.ndim - 2)))

    def extra_repr(self) -> str:
        return f"num_neurons={self.num_neurons}, t={self.time:g}, tau=[{self.tau.min():.3g}, {self.tau.max():.3g}]"


class ForgettingBlock(nn.Sequential):
    """A layer followed by its :class:`ForgettingLayer`: what :func:`insert_forgetting_layers` puts in place.

    The wrapped layer keeps its parameters under ``<name>.layer``; the forgetting layer's τ and
    clock are ``<name>.forgetting.tau`` / ``<name>.forgetting.clock``.

    Args:
        layer: a layer whose ``weight`` has one row (output channel) per neuron, such as
            ``nn.Linear`` or ``nn.Conv2d``.
        tau: τ of each of its neurons.
    """

    layer: nn.Module
    forgetting: ForgettingLayer

    def __init__(self, layer: nn.Module, tau: torch.Tensor | Sequence[float]) -> None:
        super().__init__(OrderedDict(layer=layer, forgetting=ForgettingLayer(tau)))

    @torch.no_grad()
    def consolidate(self) -> None:
        """Fold the current decay into the wrapped layer's weights and reset the clock.

        Row ``i`` of the weight and entry ``i`` of the bias are multiplied by ``φ_i(t)``, so the
        block computes exactly what it computed before, now with ``t = 0``.
        """
        factors = self.forgetting.retention()
        weight = self.layer.weight
        if not isinstance(weight, torch.Tensor):
            raise TypeError(f"Expected the wrapped layer to have a weight tensor, but got {type(weight).__name__}.")
        weight.mul_(factors.to(weight.dtype).view(-1, *([1] * (weight.ndim - 1))))
        bias = getattr(self.layer, "bias", None)
        if isinstance(bias, torch.Tensor):
            bias.mul_(factors.to(bias.dtype))
        self.forgetting.reset_clock()


# ---------------------------------------------------------------------------- placement
def fully_connected_layers(model: nn.Module) -> list[str]:
    """Names of the hidden fully connected layers of ``model``, in registration order.

    Every ``nn.Linear`` except the last one (the output layer, whose neurons are the logits:
    attenuating them would only rescale classes).

    Example:
        >>> from lightning_unlearn.models import MLP
        >>> fully_connected_layers(MLP(64, 5))
        ['1', '3']
    """
    names = [name for name, module in model.named_modules() if isinstance(module, nn.Linear)]
    return names[:-1]


def last_fully_connected_layers(model: nn.Module, count: int = 1) -> list[str]:
    """The last ``count`` hidden fully connected layers: 1-L is ``count=1``, 2-L is ``count=2``.

    Args:
        model: any network with ``nn.Linear`` layers.
        count: how many layers, counted back from the output layer.

    Returns:
        Their names (for :func:`insert_forgetting_layers`), in forward order.

    Raises:
        ValueError: ``count`` below 1, or the model has fewer hidden fully connected layers.

    Example:
        >>> from lightning_unlearn.models import MLP
        >>> last_fully_connected_layers(MLP(64, 5), 1)
        ['3']
    """
    check_integer("count", count)
    hidden = fully_connected_layers(model)
    if len(hidden) < count:
        raise ValueError(
            f"Expected the model to have at least {count} hidden fully connected layers, but it has {len(hidden)}:"
            f" {hidden}."
        )
    return hidden[-count:]


def _neuron_count(name: str, layer: nn.Module) -> int:
    weight = getattr(layer, "weight", None)
    if not isinstance(weight, torch.Tensor) or weight.ndim < 2:
        raise TypeError(
            f"Expected layer {name!r} to have a weight with one row per neuron (nn.Linear, nn.Conv2d), but got"
            f" {type(layer).__name__}."
        )
    return int(weight.shape[0])


def insert_forgetting_layers(
    model: nn.Module, after: Sequence[str], tau: float | Mapping[str, torch.Tensor] = 5.0
) -> dict[str, ForgettingLayer]:
    """Put a :class:`ForgettingLayer` right after each named layer of ``model``, in place.

    Each named submodule is replaced by a :class:`ForgettingBlock` holding it and its
    forgetting layer. At ``t = 0`` the model's outputs are exactly what they were.

    Args:
        model: any network (``nn.Sequential`` or named submodules alike).
        after: names as ``model.named_modules()`` gives them; see
            :func:`last_fully_connected_layers` for 1-L and 2-L.
        tau: one τ for every neuron, or a τ tensor per layer name.

    Returns:
        The forgetting layers, by the name of the layer they follow.

    Raises:
        ValueError: an unknown layer name (the message lists the available ones), a name given
            twice, no name, or a τ that is not positive.
        TypeError: a named layer without a weight with one row per neuron.

    Example:
        >>> from lightning_unlearn.models import MLP
        >>> model = MLP(64, 5, hidden=(32, 16))
        >>> layers = insert_forgetting_layers(model, after=["3"], tau=4.0)
        >>> layers["3"].num_neurons
        16
    """
    if isinstance(after, str) or not isinstance(after, Sequence):
        raise TypeError(f"Expected `after` to be a list of layer names, but got {type(after).__name__}.")
    if len(after) == 0:
        raise ValueError("Expected `after` to name at least one layer, but got an empty list.")
    if len(set(after)) != len(after):
        raise ValueError(f"Expected every name in `after` once, but got {list(after)}.")
    available = dict(model.named_modules())
    available.pop("", None)
    for name in after:
        if name not in available:
            raise ValueError(
                f"Expected every name in `after` to be a layer of the model, but got {name!r};"
                f" available: {list(available)}."
            )
        if isinstance(available[name], ForgettingBlock):
            raise ValueError(f"Expected layer {name!r} to have no forgetting layer yet, but it already has one.")
    inserted: dict[str, ForgettingLayer] = {}
    for name in after:
        layer = available[name]
        neurons = _neuron_count(name, layer)
        if isinstance(tau, Mapping):
            if name not in tau:
                raise ValueError(f"Expected a τ tensor for layer {name!r} in `tau`, but got only {list(tau)}.")
            values = tau[name]
        else:
            values = torch.full((neurons,), check_positive("tau", tau))
        block = ForgettingBlock(layer, values)
        if block.forgetting.num_neurons != neurons:
            raise ValueError(
                f"Expected {neurons} τ values for layer {name!r} (one per neuron), but got"
                f" {block.forgetting.num_neurons}."
            )
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, block)
        inserted[name] = block.forgetting
    return inserted


def forgetting_blocks(model: nn.Module) -> dict[str, ForgettingBlock]:
    """The :class:`ForgettingBlock` s of ``model`` by the name of the layer they wrap."""
    return {name: module for name, module in model.named_modules() if isinstance(module, ForgettingBlock)}


def remove_forgetting_layers(model: nn.Module, consolidate: bool = True) -> nn.Module:
    """Take the forgetting layers out of ``model`` in place, restoring its own architecture.

    Args:
        model: a model with forgetting layers.
        consolidate: fold each layer's current decay into the weights first (the function is
            unchanged); otherwise the decay is dropped (as at ``t = 0``).

    Returns:
        ``model``, whose state-dict keys are again those of the original network.
    """
    for name, block in forgetting_blocks(model).items():
        if consolidate:
            block.consolidate()
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, block.layer)
    return model


# ---------------------------------------------------------------------------- τ policies
def _graded(num_neurons: int, tau_min: float, tau_max: float) -> torch.Tensor:
    """``num_neurons`` values from ``tau_max`` (first, most stable) down to ``tau_min`` (last)."""
    if num_neurons == 1:
        return torch.tensor([tau_max])
    return torch.linspace(tau_max, tau_min, num_neurons)


def forgetting_rates(
    policy: ForgettingPolicy,
    num_neurons: int,
    *,
    tau: float = 5.0,
    tau_min: float = 1.0,
    tau_max: float = 10.0,
    k: int = 30,
    activations: torch.Tensor | None = None,
    seed: int = 0,
) -> torch.Tensor:
    """τ of every neuron of one layer under a forgetting-rate policy.

    A larger τ means a more stable memory (slower decay). Graded policies spread τ linearly
    from ``tau_max`` (the most stable neuron) to ``tau_min``:

    * ``fixed`` (FFR): every neuron gets ``tau``.
    * ``rank`` (VFR): by mean activation on retained data, most active = rank 1 = ``tau_max``.
      Neurons the retained data relies on are the slowest to forget; neurons it barely uses,
      where a memorised forget sample can hide, decay fastest.
    * ``ordered`` (VFR): by position in the layer, neuron 0 = ``tau_max``.
    * ``top_k`` (VFR): the ``k`` most active neurons are graded from ``tau_max`` down to ``tau``;
      every other neuron gets the constant ``tau``. (Giving the rest ``tau_min`` would all but
      prune most of a wide layer each phase: on digits, test accuracy fell by 13 points.)
    * ``random`` (VFR): the graded values in a permutation seeded by ``seed``.

    Args:
        policy: one of ``fixed``, ``rank``, ``ordered``, ``top_k``, ``random``.
        num_neurons: neurons of the layer.
        tau: τ of ``fixed``, and of the neurons outside the top ``k`` for ``top_k``.
        tau_min: the fastest-forgetting τ of the graded policies.
        tau_max: the most stable τ of the graded policies.
        k: how many neurons ``top_k`` grades (default 30, as in the paper).
        activations: mean activation per neuron, required by ``rank`` and ``top_k``.
        seed: seeds ``random``.

    Returns:
        A float32 tensor of ``num_neurons`` positive τ values.

    Raises:
        ValueError: an unknown policy, a τ that is not positive, ``tau_min > tau_max``, ``k``
            larger than the layer, or missing/mis-sized activations.

    Example:
        >>> forgetting_rates("rank", 3, tau_min=1.0, tau_max=3.0, activations=torch.tensor([0.1, 0.9, 0.5]))
        tensor([1., 3., 2.])
    """
    if policy not in FORGETTING_POLICIES:
        raise ValueError(f"Expected `policy` to be one of {list(FORGETTING_POLICIES)}, but got {policy!r}.")
    check_integer("num_neurons", num_neurons)
    tau = check_positive("tau", tau)
    tau_min = check_positive("tau_min", tau_min)
    tau_max = check_positive("tau_max", tau_max)
    if tau_min > tau_max:
        raise ValueError(f"Expected `tau_min` to be at most `tau_max` ({tau_max}), but got {tau_min}.")
    if policy == "fixed":
        return torch.full((num_neurons,), tau)
    if policy == "ordered":
        return _graded(num_neurons, tau_min, tau_max)
    if policy == "random":
        generator = torch.Generator().manual_seed(seed)
        return _graded(num_neurons, tau_min, tau_max)[torch.randperm(num_neurons, generator=generator)]
    if policy == "top_k":
        check_integer("k", k)
        if k > num_neurons:
            raise ValueError(f"Expected `k` to be at most the layer's {num_neurons} neurons, but got {k}.")
        if tau > tau_max:
            raise ValueError(
                f"Expected `tau` (the τ of the neurons outside the top k) to be at most `tau_max` ({tau_max}) for"
                f" policy 'top_k', but got {tau}."
            )
    if activations is None:
        raise ValueError(f"Expected `activations` (mean activation per neuron) for policy {policy!r}, but got None.")
    if activations.shape != (num_neurons,):
        raise ValueError(
            f"Expected `activations` of shape ({num_neurons},) (one per neuron), but got {tuple(activations.shape)}."
        )
    # Rank 1 = most active; ties keep the lower position first (stable sort).
    order = torch.sort(activations.detach().float().cpu(), descending=True, stable=True).indices
    if policy == "rank":
        rates = torch.empty(num_neurons)
        rates[order] = _graded(num_neurons, tau_min, tau_max)
        return rates
    rates = torch.full((num_neurons,), tau)
    rates[order[:k]] = _graded(k, tau, tau_max)
    return rates


@torch.no_grad()
def mean_activations(model: nn.Module, layer_names: Sequence[str], dataloader: DataLoader) -> dict[str, torch.Tensor]:
    """Mean activation of every neuron of the named layers over the samples of ``dataloader``.

    The activation is the positive part of the layer's output (what a following ReLU lets
    through), averaged over samples and, for feature maps, over positions. In a model with
    forgetting layers, a name refers to the wrapped layer.

    Args:
        model: the network (its training mode is restored afterwards).
        layer_names: layers to measure.
        dataloader: batches whose first item is the input (such as the ``probe`` split).

    Returns:
        One tensor of per-neuron means per layer name.

    Raises:
        ValueError: an unknown layer name, or a dataloader without samples.
    """
    modules = dict(model.named_modules())
    sums: dict[str, torch.Tensor] = {}
    counts: dict[str, int] = {}
    handles = []
    for name in layer_names:
        if name not in modules:
            raise ValueError(
                f"Expected a layer of the model, but got {name!r}; available: {[n for n in modules if n]}."
            )
        module = modules[name]
        target = module.layer if isinstance(module, ForgettingBlock) else module

        def record(_: nn.Module, __: Any, output: torch.Tensor, name: str = name) -> None:
            positive = output.detach().float().clamp_min(0)
            per_sample = positive.flatten(2).mean(dim=2) if positive.ndim > 2 else positive
            sums[name] = sums.get(name, 0) + per_sample.sum(dim=0).cpu()
            counts[name] = counts.get(name, 0) + per_sample.shape[0]

        handles.append(target.register_forward_hook(record))
    was_training = model.training
    model.eval()
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    try:
        for batch in dataloader:
            model(batch[0].to(device))
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    if not counts:
        raise ValueError("Expected the dataloader to yield samples to measure activations on, but it is empty.")
    return {name: sums[name] / counts[name] for name in layer_names}


# ---------------------------------------------------------------------------- schedule
@dataclass(frozen=True)
class PhaseStep:
    """Where one epoch sits in the schedule.

    Attributes:
        epoch: 0-based epoch index.
        turn: 0-based turn.
        phase: ``"learn"`` or ``"unlearn"``.
        clock: the forgetting layers' ``t`` during the epoch (0 in learn epochs, ``j`` in the
            ``j``-th unlearn epoch of a phase).
        ends_phase: whether this is the phase's last epoch.
    """

    epoch: int
    turn: int
    phase: Phase
    clock: int
    ends_phase: bool


def phase_schedule(turns: int = 5, learn_epochs: int = 2, unlearn_epochs: int = 4) -> list[PhaseStep]:
    """The epochs of ``turns × (learn_epochs, unlearn_epochs)``, learn phase first in every turn.

    Raises:
        ValueError: zero (or negative) turns or epochs.

    Example:
        >>> [(s.phase, s.clock) for s in phase_schedule(1, 1, 2)]
        [('learn', 0), ('unlearn', 1), ('unlearn', 2)]
    """
    check_integer("turns", turns)
    check_integer("learn_epochs", learn_epochs)
    check_integer("unlearn_epochs", unlearn_epochs)
    steps: list[PhaseStep] = []
    for turn in range(turns):
        for j in range(learn_epochs):
            steps.append(PhaseStep(len(steps), turn, "learn", 0, j == learn_epochs - 1))
        for j in range(1, unlearn_epochs + 1):
            steps.append(PhaseStep(len(steps), turn, "unlearn", j, j == unlearn_epochs))
    return steps


# ---------------------------------------------------------------------------- modules
class FNNModule(UnlearningBaseline):
    """Forgetting neural network unlearning (Hatua et al.): forgetting layers and learn/unlearn turns.

    Wraps a copy of a trained classifier with :class:`ForgettingLayer` s after its last one
    (1-L) or two (2-L) hidden fully connected layers, or after ``layers`` by name, and runs
    :func:`phase_schedule` — see the module docstring for what learn and unlearn epochs do and
    how consolidation works. τ is set by ``policy`` in :meth:`setup`; ``rank`` and ``top_k``
    measure the target's mean activations on ``activation_split`` (the ``probe`` split, D0).

    Fit it like every method, ``trainer.fit(module, datamodule=dm)``: the module draws ``retain``
    for training and ``validation``/``forget``/``validation_heldout`` for validation (``test`` and
    ``heldout`` are left to the final report).

    Extension points: :meth:`build_schedule` (the phase schedule) and :meth:`tau_for_layer` (the
    τ policy of one layer); override them in a subclass instead of copying the module.
    Training ends with the schedule (``max_epochs`` may stay at its default). The phase, turn and
    clock are logged (``fnn/phase`` is 0 for learn and 1 for unlearn) and stored in checkpoints,
    so ``trainer.fit(module, ckpt_path=...)`` continues in the right phase.

    Args:
        target: the trained classifier (a network or a ``ClassifierModule``); it is copied.
        policy: the τ policy, one of ``fixed``, ``rank``, ``ordered``, ``top_k``, ``random``.
        placement: ``"1-L"`` or ``"2-L"``: after the last one or two hidden fully connected layers.
        layers: explicit layer names instead of ``placement``.
        tau: τ of the ``fixed`` policy, and of the neurons outside the top ``k`` for ``top_k``.
        tau_min: the fastest-forgetting τ of the graded policies. With the defaults (1 and 10) a
            4-epoch unlearn phase keeps between ``e^-4`` and ``e^-0.4`` of each neuron (chosen on
            digits: ``[2, 20]`` forgot too slowly to reach chance within the 30 epochs).
        tau_max: the most stable τ of the graded policies.
        top_k: neurons graded by ``top_k`` (default 30).
        turns: learn/unlearn turns.
        learn_epochs: rehearsal epochs per turn (clock 0).
        unlearn_epochs: decay epochs per turn (clock 1, 2, …).
        consolidate: fold the decay into the weights at the end of each unlearn phase.
        unlearn_training: ``"retain"`` (steps on retain through the decaying layers) or ``"none"``.
        activation_split: the split whose mean activations rank neurons (default ``probe``).
        optimizer: builds the optimiser from the parameters (default Adam, lr 1e-3).
        loss: the training loss; by default the target's.
        mia_folds: cross-validation folds of the MIA score.
        seed: seeds the ``random`` policy and the MIA score.

    Raises:
        TypeError: ``target`` not a module; a named layer without a per-neuron weight.
        ValueError: an unknown policy or placement, a τ that is not positive, ``k`` larger
            than a layer, zero turns or epochs, an unknown layer or split name.

    Example:
        >>> import lightning as L
        >>> from lightning_unlearn import DigitsDataModule, MIAEarlyStopping, TrainingRecipe, train_classifier
        >>> dm = DigitsDataModule()
        >>> target = train_classifier(TrainingRecipe(max_epochs=5), dm, enable_progress_bar=False).module
        >>> fnn = FNNModule(target, policy="rank", placement="2-L", turns=2)
        >>> stopper = MIAEarlyStopping(accuracy_floor=0.9)
        >>> trainer = L.Trainer(
        ...     max_epochs=fnn.total_epochs, callbacks=[stopper],
        ...     logger=False, enable_checkpointing=False, enable_progress_bar=False,
        ... )
        >>> trainer.fit(fnn, datamodule=dm)  # stops at the first epoch the stopper accepts, else with the schedule
        >>> model = fnn.unlearned_model()  # the target's network, forgetting layers folded in
        >>> type(model).__name__, list(model.state_dict()) == list(target.backbone.state_dict())
        ('MLP', True)
    """

    reads: ClassVar[tuple[str, ...]] = (*UnlearningBaseline.reads, "probe")

    def __init__(
        self,
        target: nn.Module,
        policy: ForgettingPolicy = "rank",
        placement: Placement = "2-L",
        layers: list[str] | None = None,
        tau: float = 5.0,
        tau_min: float = 1.0,
        tau_max: float = 10.0,
        top_k: int = 30,
        turns: int = 5,
        learn_epochs: int = 2,
        unlearn_epochs: int = 4,
        consolidate: bool = True,
        unlearn_training: UnlearnTraining = "retain",
        activation_split: str = "probe",
        optimizer: OptimizerCallable = torch.optim.Adam,
        loss: LossName | None = None,
        mia_folds: int = 5,
        seed: int = 0,
    ) -> None:
        schedule = self.build_schedule(turns, learn_epochs, unlearn_epochs)
        super().__init__(
            target, max_epochs=len(schedule), optimizer=optimizer, loss=loss, mia_folds=mia_folds, seed=seed
        )
        if policy not in FORGETTING_POLICIES:
            raise ValueError(f"Expected `policy` to be one of {list(FORGETTING_POLICIES)}, but got {policy!r}.")
        if placement not in get_args(Placement):
            raise ValueError(f"Expected `placement` to be one of {list(get_args(Placement))}, but got {placement!r}.")
        if unlearn_training not in get_args(UnlearnTraining):
            raise ValueError(
                f"Expected `unlearn_training` to be one of {list(get_args(UnlearnTraining))}, but got"
                f" {unlearn_training!r}."
            )
        if activation_split not in self.reads:
            raise ValueError(
                f"Expected `activation_split` to be one of {list(self.reads)} (`test` and `heldout` are the final"
                f" report's), but got {activation_split!r}."
            )
        self.schedule = schedule
        # Validate the τ settings now, so a bad config fails before any data is read.
        for name, value in (("tau", tau), ("tau_min", tau_min), ("tau_max", tau_max)):
            check_positive(name, value)
        if tau_min > tau_max:
            raise ValueError(f"Expected `tau_min` to be at most `tau_max` ({tau_max}), but got {tau_min}.")
        self.save_hyperparameters(ignore=["target", "optimizer"])
        self.layer_names = (
            list(layers) if layers is not None else last_fully_connected_layers(self.model, int(placement[0]))
        )
        self.forgetting_layers = insert_forgetting_layers(self.model, self.layer_names, tau=tau)
        if policy == "top_k":
            check_integer("top_k", top_k)
            if tau > tau_max:
                raise ValueError(
                    f"Expected `tau` (the τ of the neurons outside the top k) to be at most `tau_max` ({tau_max}) for"
                    f" policy 'top_k', but got {tau}."
                )
            for name, layer in self.forgetting_layers.items():
                if top_k > layer.num_neurons:
                    raise ValueError(
                        f"Expected `k` to be at most the {layer.num_neurons} neurons of layer {name!r},"
                        f" but got {top_k}."
                    )
        self.policy: ForgettingPolicy = policy
        self.consolidate = consolidate
        self.unlearn_training: UnlearnTraining = unlearn_training
        self.activation_split = activation_split
        self.tau, self.tau_min, self.tau_max, self.top_k, self.seed = tau, tau_min, tau_max, top_k, seed
        self.consolidations = 0  # completed unlearn phases folded into the weights
        self.rates_assigned = False

    # ------------------------------------------------------------------ schedule
    def build_schedule(self, turns: int, learn_epochs: int, unlearn_epochs: int) -> list[PhaseStep]:
        """The phase schedule, epoch by epoch (a hook: default :func:`phase_schedule`).

        Called from ``__init__`` before the module is built, so an override may read only its arguments.
        """
        return phase_schedule(turns, learn_epochs, unlearn_epochs)

    @property
    def total_epochs(self) -> int:
        """Epochs in the whole schedule: ``turns × (learn_epochs + unlearn_epochs)``."""
        return len(self.schedule)

    def step_at(self, epoch: int) -> PhaseStep:
        """The schedule's entry for ``epoch`` (the last one past the end)."""
        return self.schedule[min(epoch, len(self.schedule) - 1)]

    def _set_clock(self, t: float) -> None:
        for layer in self.forgetting_layers.values():
            layer.set_clock(t)

    def _consolidate(self) -> None:
        for block in forgetting_blocks(self.model).values():
            block.consolidate()

    # ------------------------------------------------------------------ hooks
    def setup(self, stage: str) -> None:
        """Check the datamodule and set τ of the forgetting layers once, by the policy.

        Later stages (``validate`` after ``fit``) keep the τ already set: ranking the unlearned
        network's activations would change the rates mid-way. A resumed run loads τ from the checkpoint.
        """
        super().setup(stage)
        if not self.rates_assigned:
            self.assign_forgetting_rates()

    def assign_forgetting_rates(self) -> dict[str, torch.Tensor]:
        """Compute τ by the policy and write it into the forgetting layers.

        Returns:
            τ by layer name.

        Raises:
            RuntimeError: ``rank``/``top_k`` without a datamodule.
        """
        activations: dict[str, torch.Tensor] = {}
        if self.policy in ("rank", "top_k"):
            saved = {name: layer.time for name, layer in self.forgetting_layers.items()}
            self._set_clock(0.0)  # the target's own activations
            loader = self.split_dataloader(self.activation_split)
            activations = mean_activations(self.model, self.layer_names, loader)
            for name, t in saved.items():
                self.forgetting_layers[name].set_clock(t)
        rates = {}
        for name, layer in self.forgetting_layers.items():
            rates[name] = self.tau_for_layer(name, layer, activations.get(name))
            layer.set_tau(rates[name])
        self.rates_assigned = True
        return rates

    def tau_for_layer(self, name: str, layer: ForgettingLayer, activations: torch.Tensor | None) -> torch.Tensor:
        """τ of every neuron of one forgetting layer (a hook: default :func:`forgetting_rates` by ``policy``).

        Args:
            name: the layer's name in the network.
            layer: its forgetting layer (``layer.num_neurons`` neurons).
            activations: the target's mean activations on ``activation_split`` (``rank``/``top_k`` only).
        """
        return forgetting_rates(
            self.policy,
            layer.num_neurons,
            tau=self.tau,
            tau_min=self.tau_min,
            tau_max=self.tau_max,
            k=self.top_k,
            activations=activations,
            seed=self.seed,
        )

    def on_fit_start(self) -> None:
        super().on_fit_start()
        max_epochs = self.trainer.max_epochs
        if max_epochs is not None and 0 <= max_epochs < self.total_epochs:
            rank_zero_warn(
                f"`max_epochs`={max_epochs} ends the run before the schedule's {self.total_epochs} epochs"
                f" (turns × (learn_epochs + unlearn_epochs))."
            )

    def on_train_epoch_start(self) -> None:
        step = self.step_at(self.current_epoch)
        # A run resumed from a checkpoint written before the phase-end hook ran catches up here.
        due = step.turn if self.consolidate else 0
        while self.consolidations < due:
            self._consolidate()
            self.consolidations += 1
        self._set_clock(float(step.clock))

    def training_step(self, batch: IndexedBatch, batch_idx: int) -> torch.Tensor | None:
        step = self.step_at(self.current_epoch)
        if step.phase == "unlearn" and self.unlearn_training == "none":
            return None  # the decay alone acts in this epoch
        return super().training_step(batch, batch_idx)

    epoch_figures_prefix = "fnn"

    def epoch_figures(self) -> dict[str, float]:
        """The turn, the phase (0 learn, 1 unlearn) and the clock of this epoch, logged as ``fnn/…``."""
        step = self.step_at(self.current_epoch)
        return {"turn": step.turn, "phase": 0 if step.phase == "learn" else 1, "clock": step.clock}

    def on_train_epoch_end(self) -> None:
        step = self.step_at(self.current_epoch)
        if step.phase == "unlearn" and step.ends_phase:
            if self.consolidate:
                self._consolidate()
                self.consolidations += 1
            else:
                self._set_clock(0.0)
        if self.current_epoch + 1 >= self.total_epochs:
            self.trainer.should_stop = True

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_save_checkpoint(checkpoint)
        step = self.step_at(self.current_epoch)
        checkpoint["fnn_schedule"] = {
            **asdict(step),
            "consolidations": self.consolidations,
            "turns": self.hparams["turns"],
            "learn_epochs": self.hparams["learn_epochs"],
            "unlearn_epochs": self.hparams["unlearn_epochs"],
            "consolidate": self.consolidate,
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_load_checkpoint(checkpoint)
        state = checkpoint.get("fnn_schedule")
        if state is None:
            raise RuntimeError("Expected an FNNModule checkpoint with its `fnn_schedule`, but it has none.")
        for name in ("turns", "learn_epochs", "unlearn_epochs", "consolidate"):
            ours = self.consolidate if name == "consolidate" else self.hparams[name]
            if state[name] != ours:
                raise RuntimeError(
                    f"Expected the checkpoint's `{name}` to match the module's ({ours}), but it was saved with"
                    f" {state[name]}."
                )
        self.consolidations = int(state["consolidations"])

    def unlearned_model(self) -> nn.Module:
        """The network with its current decay folded in and the forgetting layers removed.

        Returns:
            A plain copy with the target's architecture and state-dict keys, in eval mode.
        """
        return remove_forgetting_layers(copy.deepcopy(self.model), consolidate=True).eval()
