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
  clean-labelled originals (§V-F). ``"nearest"`` is an addition of ours: the mean posterior of
  the forget sample's nearest reference samples in input space (see :class:`ForsakenModule`
  for when to prefer it).
"""

from __future__ import annotations

import copy
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

import lightning as L
import torch
import torch.nn.functional as F
from lightning.pytorch.cli import OptimizerCallable
from torch import nn
from torch.func import functional_call, grad, vmap
from torch.utils.data import DataLoader, TensorDataset

from lightning_unlearn.checks import check_integer, check_non_negative, check_positive
from lightning_unlearn.datamodules.base import IndexedBatch, UnlearningDataModule
from lightning_unlearn.modules.base import UnlearningMethod, fit_method, target_network
from lightning_unlearn.storage import atomic_write
from lightning_unlearn.trainers import DeviceSettings

__all__ = [
    "ForsakenModule",
    "ForsakenResult",
    "NeuronMaskGenerator",
    "PosteriorKind",
    "default_generator_optimizer",
    "dynamic_penalty_weights",
    "forsaken_unlearn",
    "nearest_reference_posterior",
    "non_member_posterior",
]

PosteriorKind = Literal["per_class", "global_mean", "uniform", "nearest"]
TABLE_POSTERIORS: tuple[str, ...] = ("per_class", "global_mean", "uniform")
POSTERIOR_KINDS: tuple[str, ...] = get_args(PosteriorKind)

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


# ---------------------------------------------------------------------------- the generator
class NeuronMaskGenerator(nn.Module):
    """The mask-gradient generator ``G`` of Algorithm 1: one learned gain per neuron.

    For every parameter tensor ``θ_p`` of the target (its first dimension indexes neurons: rows
    of a Linear weight, filters of a convolution, channels of a batch norm, entries of a bias),
    ``G`` holds a gain ``ρ_p`` per neuron and produces

    ``μ_p = initial_gain · ρ_p ⊙ d_p``

    where ``d_p`` is the direction :class:`ForsakenModule` computes from ``θ_{t-1}`` and ``Υ``
    (the moment-scaled gradient of ``KL(P ‖ Υ)``), and ``ρ_p`` is broadcast along each neuron's
    other dimensions. A gain of 0 masks the neuron out of the update.

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

    def reset_parameters(self) -> None:
        """Set every gain back to 1 (the first mask gradient is then ``initial_gain · d``)."""
        with torch.no_grad():
            for gain in self.gain:
                gain.fill_(1.0)

    @property
    def num_parameters(self) -> int:
        """How many scalars the generator learns: one per neuron of every parameter tensor."""
        return sum(p.numel() for p in self.parameters())

    def forward(self, directions: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """``μ_t``: per-neuron gains applied to the directions, by parameter name."""
        mask_gradient = {}
        for index, name in enumerate(self.names):
            direction = directions[name]
            gain = self.gain[index]
            gain = gain.reshape(()) if direction.dim() == 0 else gain.reshape((-1,) + (1,) * (direction.dim() - 1))
            mask_gradient[name] = self.initial_gain * gain * direction
        return mask_gradient


# ---------------------------------------------------------------------------- the module
def _load_weights(target: nn.Module, checkpoint: str | os.PathLike[str]) -> None:
    """Load a plain state_dict, or a Lightning checkpoint of a module wrapping ``target`` as ``backbone``."""
    path = Path(checkpoint)
    if not path.is_file():
        raise FileNotFoundError(f"Expected `checkpoint` to be a saved state_dict, but {str(path)!r} does not exist.")
    content = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(content, dict) and isinstance(content.get("state_dict"), dict):
        content = {k.removeprefix("backbone."): v for k, v in content["state_dict"].items()}
    if not isinstance(content, dict):
        raise ValueError(f"Expected `checkpoint` {str(path)!r} to hold a state_dict, but got {type(content).__name__}.")
    try:
        target.load_state_dict(content)
    except RuntimeError as error:
        first_line = str(error).strip().splitlines()[0]
        raise ValueError(
            f"Expected `checkpoint` {str(path)!r} to hold weights for the `target` architecture"
            f" ({type(target).__name__}), but they do not fit: {first_line} {str(error).strip().splitlines()[1:2]}"
        ) from None


class ForsakenModule(UnlearningMethod):
    """Forsaken unlearning (Algorithm 1): a frozen target and a trainable mask-gradient generator.

    Fit it like every method, ``trainer.fit(module, datamodule=dm)`` with an
    :class:`~lightning_unlearn.datamodules.UnlearningDataModule` (or :func:`fit_forsaken`). In
    ``setup`` the module reads, in full, the datamodule's ``forget`` split (the samples to
    remove), its ``reference`` split (non-members, for ``P``) and its ``probe`` split (``D0``,
    for ``ω``). Each training step is one iteration ``t`` of Algorithm 1 over the whole forget
    set; the module's training loader only paces the loop. After ``iterations`` steps the module
    stops the Trainer (give it ``max_steps`` of at least ``iterations``, or none).

    **Under DDP** each of the ``W`` processes keeps every ``W``-th forget sample (its shard) on
    its device; the KL is summed over each shard and the generator's gradient, the next
    direction, the logged figures and L-BFGS's loss are reduced across processes, so every
    process takes the same steps and ends with the same ``θ_T`` as one process would, up to
    floating-point summation order. A forget set larger than one device's memory can so be
    unlearned on several.

    **Extension points** (override in a subclass): :meth:`posterior_targets` (``P``),
    :meth:`divergence` (the data term of the objective) and :meth:`penalty` (the sparsity term).

    Every fit starts again from ``θ0`` with a fresh generator. Logged per iteration:
    ``forsaken/kl``, ``forsaken/penalty``, ``forsaken/loss`` and ``forsaken/forget_acc``
    (accuracy of ``f_θt`` on the forget set under the labels it was trained with); the same
    values are kept in :attr:`history`, so the curve of Fig. 5 can be drawn.

    The target is deep-copied, kept in eval mode, and none of its parameters ever requires a
    gradient: the unlearned parameters ``θ_t = θ0 − Σ ξ·μ_τ`` are separate tensors, evaluated
    with ``torch.func.functional_call``, so gradients reach the generator only. The generator's
    optimiser runs under manual optimisation with a closure, so L-BFGS works like Adam or SGD.

    **Forget-set accuracy and the choice of P.** With ``posterior="per_class"`` (the paper's
    default) a forget sample is pulled towards the non-member posterior *of the class the target
    predicts for it*, so its arg-max is kept: the unlearned model still outputs the label an OOD
    sample was inserted under (forget accuracy stays near 100 %), where a retrained model is at
    chance. It is the smallest change to the model, but an attack that reads the posterior of
    the sample's label (as the shadow-model oracle does) still sees members. The options that do
    not preserve the arg-max: ``"nearest"`` (ours) — the mean posterior of the forget sample's
    ``neighbours`` nearest reference samples, i.e. what the target says about unseen look-alikes;
    it moves forget accuracy to the retrained model's and costs least test accuracy of the
    three on digits; ``"global_mean"`` (mean posterior of all reference samples) and
    ``"uniform"`` (Def. 3) — class-blind targets that push every forget sample to the same
    flat posterior, which needs a larger move of ``θ`` and so risks more test accuracy.

    Args:
        target: the trained classifier to unlearn from (any backbone of
            :mod:`lightning_unlearn.models`); it is copied, never modified.
        iterations: ``T``, the number of iterations of Algorithm 1 (training steps).
        xi: ``ξ``, the forgetting coefficient: ``θ_t = θ_{t-1} − ξ·μ_t``.
        penalty_weight: ``λ``, the weight of the sparsity penalty ``‖μ‖₁`` (Eqs. 4–5), a sum
            over all parameters.
        dynamic_penalty: weigh the penalty by ``ω`` (Eq. 5, default) or not (``ω = 1``, Eq. 4).
        probe_size: how many samples of the datamodule's ``probe`` split form ``D0`` for ``ω``
            (default: all of it; the split itself is ``probe_fraction`` ≤ 1 % of retain).
        posterior: ``P`` — ``"per_class"`` (default), ``"global_mean"``, ``"uniform"`` or
            ``"nearest"``; see above.
        neighbours: reference samples averaged per forget sample by ``posterior="nearest"``.
        optimizer: builds the generator's optimiser from its parameters (default Adam, lr 0.01).
            SGD and L-BFGS (the paper's choice) work too; give L-BFGS a line search, e.g.
            ``partial(torch.optim.LBFGS, lr=0.1, max_iter=5, line_search_fn="strong_wolfe")``:
            its defaults (lr 1, no line search) can blow the gains up on this objective.
        initial_gain: the scale of the mask gradient (see :class:`NeuronMaskGenerator`): with
            ``ξ = 1`` the first iteration moves each parameter by about this much.
        checkpoint: optional weights for ``target``: a plain state_dict, or a Lightning checkpoint
            of a module holding the target as ``backbone`` (such as ``ClassifierModule``).

    Raises:
        TypeError: ``target`` is not an ``nn.Module``, or a setting of the wrong type.
        ValueError: ``xi`` or ``initial_gain`` not positive, ``penalty_weight`` negative,
            ``iterations``, ``probe_size`` or ``neighbours`` below 1, an unknown ``posterior``,
            or a ``checkpoint`` that does not fit ``target``. At set-up: an empty ``forget``
            split, an empty ``reference`` split (unless ``posterior="uniform"``), an empty
            ``probe`` split (with ``dynamic_penalty``), or ``reference`` labels outside the
            target's classes.
        RuntimeError: at set-up, no ``UnlearningDataModule`` attached, a target whose class
            count or input shape differs from the datamodule's, or a Trainer whose
            ``max_steps`` is below ``iterations``.

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

    reads = ("forget", "reference", "probe")

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
        if posterior not in POSTERIOR_KINDS:
            raise ValueError(f"Expected `posterior` to be one of {list(POSTERIOR_KINDS)}, but got {posterior!r}.")
        self.neighbours = check_integer("neighbours", neighbours, meaning="reference samples per forget sample")
        self.initial_gain = check_positive("initial_gain", initial_gain)
        if not callable(optimizer):
            raise TypeError(f"Expected `optimizer` to be callable, but got {type(optimizer).__name__}.")
        self.save_hyperparameters(ignore=["target", "optimizer"])
        self.automatic_optimization = False  # one closure-driven step per iteration, L-BFGS included

        target = copy.deepcopy(target_network(target))
        if checkpoint is not None:
            _load_weights(target, checkpoint)
        target.eval()
        target.requires_grad_(False)
        self.target = target
        self.dynamic_penalty = dynamic_penalty
        self.posterior: PosteriorKind = posterior
        self.optimizer = optimizer
        self.parameter_names = [name for name, _ in target.named_parameters()]
        self.generator = NeuronMaskGenerator(
            {name: p.shape for name, p in target.named_parameters()}, initial_gain=self.initial_gain
        )
        # M_t = Σ_{τ ≤ t} ξ·μ_τ, so that θ_t = θ0 − M_t (Algorithm 1); buffers, so checkpoints keep it.
        for index, p in enumerate(target.parameters()):
            self.register_buffer(f"accumulated_{index}", torch.zeros_like(p))
        self.unlearning_seconds = float("nan")
        self._iteration = 0
        self._started = 0.0
        self._forget: IndexedBatch | None = None  # this process's shard of the forget set
        self._forget_total = 0  # samples in the whole forget set, over every process
        self._reference: IndexedBatch | None = None
        self._probe: IndexedBatch | None = None
        self._flip_source: int | None = None
        self._forget_posterior = torch.empty(0)
        self._omega: dict[str, torch.Tensor] = {}
        self._direction: dict[str, torch.Tensor] = {}
        self._moments: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}

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

    def _accumulated(self) -> dict[str, torch.Tensor]:
        return {name: getattr(self, f"accumulated_{i}") for i, name in enumerate(self.parameter_names)}

    @property
    def mask_gradient(self) -> dict[str, torch.Tensor]:
        """The accumulated mask gradient ``μ = Σ_t ξ·μ_t`` (so ``θ_T = θ0 − μ``), by parameter name."""
        return {name: m.detach().clone() for name, m in self._accumulated().items()}

    def unlearned_parameters(self) -> dict[str, torch.Tensor]:
        """``θ_t = θ0 − Σ ξ·μ_τ`` after the iterations run so far, by parameter name."""
        accumulated = self._accumulated()
        return {name: (p - accumulated[name]).detach() for name, p in self.target.named_parameters()}

    # ------------------------------------------------------------------ wiring
    def train(self, mode: bool = True) -> ForsakenModule:
        """Switch the generator's mode; the target always stays in eval mode (frozen BN, no dropout)."""
        super().train(mode)
        self.target.eval()
        return self

    def setup(self, stage: str) -> None:
        """Read and check the forget, reference and probe splits of the attached datamodule."""
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
        try:
            with torch.no_grad():
                device = next(iter(self.target.parameters()), torch.empty(0)).device
                logits = self.target(forget.inputs[:2].to(device))
        except (RuntimeError, ValueError) as error:
            raise RuntimeError(
                f"Expected `target` ({type(self.target).__name__}) to accept the datamodule's inputs of shape"
                f" {tuple(datamodule.input_shape)}, but its forward pass fails: {error}"
            ) from None
        if logits.shape[-1] != self.num_classes:
            raise RuntimeError(
                f"Expected `target` to produce {self.num_classes} logits, but its forward pass gives"
                f" {logits.shape[-1]}."
            )
        reference = self.whole_split("reference")
        if reference.inputs.shape[0] == 0 and self.posterior != "uniform":
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
        settings = datamodule.splits.settings
        flip_source = settings.get("flip_source") if datamodule.splits.kind == "poison" else None
        self._flip_source = flip_source if isinstance(flip_source, int) else None
        self._forget, self._reference, self._probe = forget, reference, probe

    def train_dataloader(self) -> DataLoader:
        """Paces the loop: ``iterations`` batches per process, of indices alone (each step reads the whole shard)."""
        steps = self.iterations * max(1, self.trainer.world_size)
        return DataLoader(TensorDataset(torch.arange(steps)), batch_size=1)

    def fit_settings(self) -> dict[str, Any]:
        return {"max_steps": self.iterations}

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return self.optimizer(self.generator.parameters())

    def _summed(self, tensor: torch.Tensor) -> torch.Tensor:
        """``tensor`` summed over the processes (itself on one)."""
        if self.trainer.world_size == 1:
            return tensor
        return self.trainer.strategy.reduce(tensor.detach().clone(), reduce_op="sum")

    def _averaged(self, tensor: torch.Tensor) -> torch.Tensor:
        return self._summed(tensor) / self.trainer.world_size if self.trainer.world_size > 1 else tensor

    # ------------------------------------------------------------------ the loss
    def _logits(self, parameters: Mapping[str, torch.Tensor], inputs: torch.Tensor) -> torch.Tensor:
        buffers = dict(self.target.named_buffers())
        return functional_call(self.target, (dict(parameters), buffers), (inputs,))

    def divergence(self, logits: torch.Tensor, posterior: torch.Tensor) -> torch.Tensor:
        """The data term of the objective: ``KL(P ‖ Υ)`` summed over this process's forget samples (a hook).

        Args:
            logits: ``f_θt`` of the shard's forget samples, ``(n, K)``.
            posterior: their ``P``, ``(n, K)``.

        Returns:
            A scalar; the objective divides it by the whole forget set's size, so the loss is the
            mean over every forget sample (Eqs. 4–5).
        """
        return F.kl_div(logits.log_softmax(dim=1), posterior, reduction="sum")

    def _kl(self, logits: torch.Tensor) -> torch.Tensor:
        # This process's share of the mean KL, scaled so that DDP's gradient average gives the
        # gradient of the mean over the whole forget set (× 1 on one process).
        return self.divergence(logits, self._forget_posterior) * self.trainer.world_size / self._forget_total

    def penalty(self, mask_gradient: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """The sparsity term: ``λ·Σ ω·|μ_t|`` (Eq. 5), or ``λ·‖μ_t‖₁`` without ω (Eq. 4) (a hook).

        Args:
            mask_gradient: ``μ_t`` by parameter name.
        """
        if self._omega:
            l1 = sum((self._omega[name] * mask_gradient[name].abs()).sum() for name in self.parameter_names)
        else:
            l1 = sum(mask_gradient[name].abs().sum() for name in self.parameter_names)
        return self.penalty_weight * torch.as_tensor(l1)

    def on_fit_start(self) -> None:
        """Build ``P``, ``ω`` (Eq. 6) and the first direction (at ``θ0``); reset ``θ`` to ``θ0``."""
        if self._forget is None or self._reference is None or self._probe is None:
            raise RuntimeError("Expected `setup('fit')` to have read the datamodule's splits before fitting.")
        self._started = time.perf_counter()
        device = self.device
        self._forget = IndexedBatch(*(t.to(device) for t in self._forget))
        for m in self._accumulated().values():
            m.zero_()
        self.generator.reset_parameters()  # every fit is a fresh run of Algorithm 1 from θ0
        self._iteration = 0
        self.history = []
        assert self._reference is not None
        self._forget_posterior = self.posterior_targets(self._forget, self._reference).to(device)
        if self.dynamic_penalty:  # Eq. 6, computed once from θ0
            self._omega = dynamic_penalty_weights(
                self.target, self._probe.inputs.to(device), self._probe.targets.to(device)
            )
        else:
            self._omega = {}
        theta0 = {name: p.detach().clone().requires_grad_(True) for name, p in self.target.named_parameters()}
        kl = self._kl(self._logits(theta0, self._forget.inputs))
        gradients = torch.autograd.grad(kl, list(theta0.values()), allow_unused=True)
        self._moments = {}
        self._direction = self._normalise(
            {
                name: self._averaged(torch.zeros_like(p) if g is None else g)
                for (name, p), g in zip(theta0.items(), gradients)
            }
        )

    @torch.no_grad()
    def posterior_targets(self, forget: IndexedBatch, reference: IndexedBatch) -> torch.Tensor:
        """``P`` for every forget sample (Defs. 3–5), ``(n, K)``: what the unlearned model should output (a hook).

        Called once per fit, after :meth:`setup`, with this process's forget shard (on the
        module's device) and the whole ``reference`` split (non-members of the target).
        """
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
        """The generator's input direction: the KL's gradient, scaled by running moments (Adam-style).

        Per parameter, ``m̂ / (√v̂ + ε)`` over the KL gradients seen so far (β1 = 0.9, β2 = 0.999),
        so every layer gets steps of the same scale whatever the scale of its gradient.
        """
        beta1, beta2, eps = 0.9, 0.999, 1e-8
        step = self._iteration + 1  # the gradient at θ_t is the (t+1)-th one (θ0's is the first)
        direction = {}
        for name, g in gradient.items():
            m, v = self._moments.get(name, (torch.zeros_like(g), torch.zeros_like(g)))
            m = m.mul(beta1).add_(g, alpha=1 - beta1)
            v = v.mul(beta2).addcmul_(g, g, value=1 - beta2)
            self._moments[name] = (m, v)
            direction[name] = (m / (1 - beta1**step)) / ((v / (1 - beta2**step)).sqrt() + eps)
        return direction

    def _objective(
        self, theta_previous: Mapping[str, torch.Tensor]
    ) -> tuple[
        torch.Tensor, torch.Tensor, torch.Tensor, dict[str, torch.Tensor], dict[str, torch.Tensor], torch.Tensor
    ]:
        """Eq. 5 (Eq. 4 without ω) at the generator's current weights.

        Returns the loss, its KL and penalty terms, ``μ_t``, ``θ_t`` (non-leaf tensors that retain
        their gradient) and the forget set's logits under ``θ_t``.
        """
        assert self._forget is not None  # set by setup; not user input
        mask_gradient = self.generator(self._direction)  # μ_t = G(θ_{t-1}, Υ) (Algorithm 1)
        theta = {name: theta_previous[name] - self.xi * mask_gradient[name] for name in self.parameter_names}
        for tensor in theta.values():
            tensor.retain_grad()  # ∂KL/∂θ_t: the generator's direction at the next iteration
        logits = self._logits(theta, self._forget.inputs)  # Υ = softmax(f_θt(D_u))
        kl = self._kl(logits)
        penalty = self.penalty(mask_gradient)
        return kl + penalty, kl, penalty, mask_gradient, theta, logits

    def training_step(self, batch: IndexedBatch, batch_idx: int) -> torch.Tensor:
        """One iteration ``t`` of Algorithm 1 over the whole forget set; ``batch`` only paces the loop."""
        assert self._forget is not None  # set by setup; not user input
        optimizer = self.optimizers()
        if isinstance(optimizer, list):
            raise RuntimeError(f"Expected one optimiser for the generator, but got {len(optimizer)}.")
        accumulated = self._accumulated()
        with torch.no_grad():
            theta_previous = {
                name: p - accumulated[name] for name, p in self.target.named_parameters()
            }  # θ_{t-1} = θ0 − M_{t-1}
        first: dict[str, Any] = {}

        def closure() -> torch.Tensor:
            optimizer.zero_grad()
            loss, kl, penalty, mask_gradient, theta, logits = self._objective(theta_previous)
            self.manual_backward(loss)
            if not first:  # the evaluation at the generator's weights before this step is committed
                first.update(
                    loss=self._averaged(loss.detach()),
                    kl=self._averaged(kl.detach()),
                    penalty=penalty.detach(),
                    mask_gradient={name: m.detach() for name, m in mask_gradient.items()},
                    direction={
                        name: self._averaged(t.grad.detach() if t.grad is not None else torch.zeros_like(t))
                        for name, t in theta.items()
                    },
                    logits=logits.detach(),
                )
            return self._averaged(loss.detach())  # what L-BFGS reads: the same on every process

        optimizer.step(closure=closure)  # update G by ∇_φ L (Adam, SGD, or L-BFGS with its line search)
        with torch.no_grad():
            for name in self.parameter_names:  # θ_t = θ_{t-1} − ξ·μ_t, kept as M_t = M_{t-1} + ξ·μ_t
                accumulated[name].add_(first["mask_gradient"][name], alpha=self.xi)
        self._iteration += 1
        self._direction = self._normalise(first["direction"])
        correct = (first["logits"].argmax(dim=1) == self._forget.targets).sum().float()
        forget_accuracy = self._summed(correct) / self._forget_total
        values = {
            "forsaken/kl": first["kl"],
            "forsaken/penalty": first["penalty"],
            "forsaken/loss": first["loss"],
            "forsaken/forget_acc": forget_accuracy,
        }
        if self.trainer.loggers or self.trainer.progress_bar_callback is not None:
            # Lightning's logging costs about as much as an iteration of a small model, so it is
            # skipped when nothing would show it; `history` keeps every iteration regardless.
            self.log_dict(values, on_step=True, on_epoch=False, prog_bar=False, batch_size=self._forget_total)
        self.history.append({key.removeprefix("forsaken/"): float(v) for key, v in values.items()})
        if self._iteration >= self.iterations:
            self.trainer.should_stop = True
        return first["loss"]

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> int | None:
        # Skip the loop's batches once T iterations are done (the Trainer then stops).
        return -1 if self._iteration >= self.iterations else None

    def on_fit_end(self) -> None:
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
        return {name: m.detach() * (n0 / eta) for name, m in self._accumulated().items()}


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
