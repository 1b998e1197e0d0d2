"""``SISAEnsemble``: sharded, isolated, sliced, aggregated training (Bourtoule et al., "Machine Unlearning").

The training data (``target_train``) is split into ``S`` disjoint *shards*, each shard into
``R`` disjoint *slices*. Constituent model ``s`` sees only shard ``s`` (isolation) and is trained
slice by slice with the paper's cumulative slices: step ``r`` trains on slices ``0 … r`` of the
shard, starting from the weights after step ``r − 1``, and a checkpoint is written after every
step. Unlearning a sample then only touches the shard holding it: the shard restarts from the
last checkpoint that predates the sample's slice and retrains the remaining steps without it.
Prediction is a majority vote of the constituents.

Reading of the paper made here:

* **Epochs per slice.** By default every step trains ``e' = max(1, round(2·E / (R + 1)))``
  epochs, ``E`` the recipe's ``max_epochs``: step ``r`` sees ``(r + 1)/R`` of the shard, so the
  ``R`` steps together make ``e'·(R + 1)/2`` passes over the shard, the ``E`` passes the
  target's recipe makes over its data (the accounting of Bourtoule et al. §V-B).
  ``epochs_per_slice`` overrides it.
* **Optimiser state.** Each step starts a fresh optimiser (the recipe's Adam) from the
  checkpointed weights, and every step is seeded by ``(seed, shard, slice)``. So retraining a
  step from its checkpoint on the same data reproduces it exactly: a resumed run ends with the
  same weights as an uninterrupted one, and an unaffected shard is bit-for-bit untouched.
* **Checkpoints** live in ``checkpoint_dir/shard_{s}/slice_{r}-{digest}.pt``; the digest hashes
  the settings and the samples of slices ``0 … r`` still present. A checkpoint is valid exactly
  when its digest matches the current data, so restarting after an unlearning request or an
  interruption is the same rule: resume every shard after its last valid checkpoint. Writes are
  atomic (a temporary file, then ``os.replace``); checkpoints that hold a forgotten sample are
  deleted as soon as the request is logged.
* **Request log.** ``checkpoint_dir/requests.jsonl`` holds one JSON line per event: a request
  (``"forget"``, its newly forgotten indices, the time), its completion (shards and slices
  retrained, seconds), or a request that changed nothing (``"noop"``, already forgotten). A new
  ensemble on the same folder reads the log, so every logged request stays forgotten, and
  :meth:`SISAEnsemble.fit` (or the next :meth:`SISAEnsemble.unlearn`) finishes any interrupted
  work.
* **Aggregation.** Majority vote; the posterior of the ensemble is the mean posterior of the
  constituents that voted for the winning class (as the Forsaken paper evaluates SISA), so the
  membership oracle and FR apply to it like to any classifier. Ties go to the tied class with
  the largest summed posterior over all constituents. A constituent whose shard has lost every
  sample abstains.
* **DDP.** When ``torch.distributed`` is initialised, rank ``r`` trains the shards ``s`` with
  ``s % world_size == r``; after a barrier every rank loads every constituent from the shared
  ``checkpoint_dir`` (which must be one folder visible to all ranks).
* **SISA-DP**: :class:`SISADPEnsemble` trains each constituent with DP-SGD by default
  (:mod:`lightning_unlearn.modules.dp_sgd`; its class docstring gives the privacy plan). The
  alternative, ``dp_mechanism="output_perturbation"`` (and :class:`SISAEnsemble`'s own
  ``dp_epsilon``), is this: each constituent is *published* by the Gaussian mechanism on its
  parameters (output perturbation): the parameter vector is clipped to L2 norm ``C``
  (``dp_clip_norm``), so two neighbouring training sets give published vectors at most
  ``Δ = 2C`` apart, and ``N(0, σ²·I)`` is added with ``σ`` the smallest value for which the
  Gaussian mechanism is ``(ε, δ)``-DP, from the exact privacy profile of Balle & Wang (2018,
  "Improving the Gaussian mechanism", Thm. 8) — valid for every ``ε``, unlike the classical
  ``σ = Δ·sqrt(2 ln(1.25/δ))/ε`` bound, which holds only for ``ε < 1``. ``δ`` defaults to
  ``1e-5``. The guarantee is per constituent (a sample lives in one shard only). Honest caveat:
  this worst-case sensitivity ignores how little one sample moves the weights, so for a model of
  ``d`` parameters the noise norm is about ``σ·sqrt(d)``, far above ``C``; at ``ε = 16`` it
  leaves the digits MLP near chance. Only parameters are perturbed: data-dependent buffers
  (batch-norm running statistics) are published as trained and are not covered. The
  unperturbed weights stay in the checkpoints (the curator's private copy).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Subset
from torchmetrics import Metric
from tqdm.auto import tqdm

from lightning_unlearn.datamodules.base import UnlearningDataModule
from lightning_unlearn.storage import atomic_write, atomic_write_text
from lightning_unlearn.trainers import quiet_lightning
from lightning_unlearn.training import TrainingRecipe

__all__ = [
    "SISADPEnsemble",
    "SISAEnsemble",
    "SISATrainingReport",
    "SISAUnlearningReport",
    "SISAVoteModel",
    "SliceTrained",
    "gaussian_mechanism_sigma",
]

log = logging.getLogger(__name__)

_CHECKPOINT_FORMAT = "lightning-unlearn/sisa-slice"
_MANIFEST_NAME = "sisa.json"
_LOG_NAME = "requests.jsonl"


# ---------------------------------------------------------------------------- differential privacy
def _gaussian_privacy_profile(sigma: float, epsilon: float, sensitivity: float) -> float:
    """The smallest δ for which ``N(0, σ²)`` noise on a query of L2-sensitivity Δ is (ε, δ)-DP.

    Balle & Wang (2018), Theorem 8: ``δ(σ) = Φ(Δ/(2σ) − εσ/Δ) − e^ε·Φ(−Δ/(2σ) − εσ/Δ)``.
    """
    from scipy.special import log_ndtr, ndtr

    a = sensitivity / (2.0 * sigma)
    b = epsilon * sigma / sensitivity
    return float(ndtr(a - b) - math.exp(epsilon + float(log_ndtr(-a - b))))


def gaussian_mechanism_sigma(epsilon: float, delta: float = 1e-5, sensitivity: float = 1.0) -> float:
    """The noise standard deviation that makes the Gaussian mechanism (ε, δ)-differentially private.

    Solves the exact privacy profile of the Gaussian mechanism (Balle & Wang 2018, Thm. 8) for
    the smallest ``σ`` by bisection; valid for every ``ε > 0``.

    Args:
        epsilon: the privacy budget ε, positive.
        delta: δ, in (0, 1).
        sensitivity: the L2-sensitivity Δ of the released vector, positive.

    Returns:
        ``σ``, proportional to ``sensitivity``.

    Raises:
        ValueError: a setting outside its range.

    Example:
        >>> round(gaussian_mechanism_sigma(16.0, 1e-5), 3)
        0.344
    """
    if not isinstance(epsilon, (int, float)) or isinstance(epsilon, bool) or not epsilon > 0:
        raise ValueError(f"Expected `dp_epsilon` (ε) to be a positive number, but got {epsilon!r}.")
    if not isinstance(delta, (int, float)) or isinstance(delta, bool) or not 0.0 < delta < 1.0:
        raise ValueError(f"Expected `dp_delta` (δ) to be in (0, 1), but got {delta!r}.")
    if not sensitivity > 0:
        raise ValueError(f"Expected the sensitivity to be positive, but got {sensitivity!r}.")
    low, high = 1e-8, 1e8  # in units of the sensitivity; δ(σ) decreases in σ
    for _ in range(200):
        middle = math.sqrt(low * high)
        if _gaussian_privacy_profile(middle, float(epsilon), 1.0) > delta:
            low = middle
        else:
            high = middle
    return high * float(sensitivity)


# ---------------------------------------------------------------------------- aggregation
class SISAVoteModel(nn.Module):
    """The SISA ensemble as one classifier: majority vote, posterior of the winning voters.

    ``forward`` returns log-posteriors: for each sample, the log of the mean posterior of the
    constituents whose arg-max is the winning class, so ``softmax`` of the output is that
    posterior and ``argmax`` the voted class (see :func:`~lightning_unlearn.inference.predict`).
    Ties between classes with as many votes go to the one with the largest posterior summed
    over all constituents.

    Args:
        constituents: the constituent classifiers, each mapping inputs to logits.

    Raises:
        ValueError: no constituent.
        TypeError: a constituent that is not an ``nn.Module``.

    Example:
        >>> model = SISAVoteModel([nn.Linear(4, 3), nn.Linear(4, 3), nn.Linear(4, 3)])
        >>> log_posteriors = model(torch.zeros(2, 4))
        >>> log_posteriors.shape, bool(torch.allclose(log_posteriors.exp().sum(dim=1), torch.ones(2)))
        (torch.Size([2, 3]), True)
    """

    def __init__(self, constituents: Sequence[nn.Module]) -> None:
        super().__init__()
        if len(constituents) == 0:
            raise ValueError("Expected at least one constituent model, but got none.")
        for position, model in enumerate(constituents):
            if not isinstance(model, nn.Module):
                raise TypeError(f"Expected constituent {position} to be an nn.Module, but got {type(model).__name__}.")
        self.constituents = nn.ModuleList(constituents)

    def constituent_log_posteriors(self, inputs: torch.Tensor) -> torch.Tensor:
        """Each constituent's log-posteriors, shape ``(constituents, batch, classes)``."""
        return torch.stack([F.log_softmax(model(inputs), dim=-1) for model in self.constituents])

    def votes(self, inputs: torch.Tensor) -> torch.Tensor:
        """How many constituents vote for each class, shape ``(batch, classes)``."""
        log_posteriors = self.constituent_log_posteriors(inputs)
        return F.one_hot(log_posteriors.argmax(dim=-1), log_posteriors.shape[-1]).sum(dim=0)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        log_posteriors = self.constituent_log_posteriors(inputs)
        count, _, num_classes = log_posteriors.shape
        choices = log_posteriors.argmax(dim=-1)  # (constituents, batch)
        votes = F.one_hot(choices, num_classes).sum(dim=0).to(log_posteriors.dtype)
        # The summed posterior is at most `count`, so dividing by count + 1 only breaks ties.
        tie_break = log_posteriors.exp().sum(dim=0) / (count + 1)
        winner = (votes + tie_break).argmax(dim=-1)  # (batch,)
        voted = choices == winner.unsqueeze(0)  # (constituents, batch)
        masked = log_posteriors.masked_fill(~voted.unsqueeze(-1), float("-inf"))
        voters = voted.sum(dim=0).clamp_min(1).to(log_posteriors.dtype)
        return torch.logsumexp(masked, dim=0) - voters.log().unsqueeze(-1)


# ---------------------------------------------------------------------------- reports
@dataclass(frozen=True)
class SliceTrained:
    """One training step of one constituent, passed to ``on_slice_end`` after its checkpoint is written.

    Attributes:
        shard: the constituent's shard.
        slice: the step ``r`` (trained on slices ``0 … r``).
        num_samples: samples it trained on.
        seconds: time of the step.
        path: the checkpoint written.
    """

    shard: int
    slice: int
    num_samples: int
    seconds: float
    path: Path


@dataclass(frozen=True)
class SISATrainingReport:
    """What :meth:`SISAEnsemble.fit` did on this rank.

    Attributes:
        slices_trained: shard → steps trained in this call (shards already complete are absent).
        seconds: wall-clock time of the call, barrier and loading included.
    """

    slices_trained: dict[int, int]
    seconds: float

    @property
    def total_slices(self) -> int:
        """Steps trained in this call on this rank."""
        return sum(self.slices_trained.values())


@dataclass(frozen=True)
class SISAUnlearningReport:
    """What :meth:`SISAEnsemble.unlearn` did.

    Attributes:
        newly_forgotten: requested indices that were still in the ensemble.
        already_forgotten: requested indices that an earlier request had removed (nothing done).
        affected_shards: shards that held a newly forgotten index.
        first_affected_slice: affected shard → the earliest slice holding one of its forgotten samples.
        slices_retrained: shard → steps retrained in this call on this rank (includes finishing
            an earlier interrupted request).
        seconds: wall-clock time of the unlearning, logging and retraining.
    """

    newly_forgotten: tuple[int, ...]
    already_forgotten: tuple[int, ...]
    affected_shards: tuple[int, ...]
    first_affected_slice: dict[int, int]
    slices_retrained: dict[int, int]
    seconds: float

    @property
    def shards_retrained(self) -> tuple[int, ...]:
        """Shards with at least one step retrained."""
        return tuple(sorted(shard for shard, count in self.slices_retrained.items() if count > 0))

    @property
    def total_slices(self) -> int:
        """Steps retrained in this call on this rank."""
        return sum(self.slices_retrained.values())


# ---------------------------------------------------------------------------- helpers
def _distributed() -> tuple[int, int]:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def _barrier() -> None:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.barrier()


def _save_checkpoint(path: Path, shard: int, step: int, num_samples: int, backbone: nn.Module) -> None:
    payload = {
        "format": _CHECKPOINT_FORMAT,
        "shard": shard,
        "slice": step,
        "num_samples": num_samples,
        "state_dict": {name: tensor.detach().clone() for name, tensor in backbone.state_dict().items()},
    }
    atomic_write(path, lambda file: torch.save(payload, file))


def _as_index_array(indices: Sequence[int] | np.ndarray | torch.Tensor) -> np.ndarray:
    array = indices.detach().cpu().numpy() if isinstance(indices, torch.Tensor) else np.asarray(indices)
    if array.ndim != 1 or (array.size and not np.issubdtype(array.dtype, np.integer)):
        raise TypeError(
            f"Expected `indices` to be a 1-D sequence of integer global indices, but got dtype {array.dtype}"
            f" and shape {array.shape}."
        )
    return array.astype(np.int64)


def _preview(values: Sequence[int] | np.ndarray, limit: int = 5) -> str:
    shown = ", ".join(str(int(v)) for v in list(values)[:limit])
    return f"[{shown}{', …' if len(values) > limit else ''}]"


# ---------------------------------------------------------------------------- the ensemble
class SISAEnsemble:
    """Sharded, isolated, sliced, aggregated training and unlearning (Bourtoule et al.).

    Each constituent has the target's architecture and is trained with the target's
    :class:`~lightning_unlearn.training.TrainingRecipe` (its optimiser and learning rate, its
    Trainer settings), ``epochs_per_slice`` epochs per step. See the module docstring for the
    reading of the paper: cumulative slices, checkpoints, the request log, aggregation, DDP and
    SISA-DP.

    The ensemble orchestrates one Lightning fit per (shard, step) rather than being a
    LightningModule itself: its constituents are ordinary
    :class:`~lightning_unlearn.modules.ClassifierModule` runs. :meth:`as_module` gives the
    aggregated classifier as a plain ``nn.Module``.

    Duplicate indices inside one request are an error (a request names each sample once);
    indices forgotten by an earlier request are reported in ``already_forgotten`` and cost
    nothing; the request is logged as a ``"noop"``.

    Args:
        datamodule: provides ``target_train``, the data the ensemble is trained on.
        recipe: the target's recipe (default: :class:`~lightning_unlearn.training.TrainingRecipe`).
        num_shards: ``S``, disjoint shards of ``target_train`` (the paper's setting: 10).
        num_slices: ``R``, disjoint slices of each shard (the paper's setting: 100).
        checkpoint_dir: where the slice checkpoints, the partition manifest and the request log
            live; the same folder resumes an earlier run (shared by all ranks under DDP).
        epochs_per_slice: epochs of each step; default ``max(1, round(2·E/(R + 1)))``.
        seed: seeds the partition and each step (default: the recipe's seed).
        dp_epsilon: publish each constituent with the Gaussian mechanism at this ε (SISA-DP);
            ``None`` publishes the weights as trained.
        dp_delta: δ of SISA-DP.
        dp_clip_norm: ``C``, the L2 norm each constituent's parameter vector is clipped to
            before the noise is added (SISA-DP).
        progress_bar: show a progress bar over the training steps (rank 0).
        on_slice_end: called with a :class:`SliceTrained` after every step's checkpoint is
            written; an exception raised there interrupts the run (resume with :meth:`fit`).

    Raises:
        TypeError: ``datamodule`` is not an UnlearningDataModule, ``recipe`` not a
            TrainingRecipe, or a count that is not an integer.
        ValueError: ``num_shards`` or ``num_slices`` below 1; more shards than samples of
            ``target_train``; so many slices that a slice would be empty; ``epochs_per_slice``
            below 1; ``dp_epsilon`` ≤ 0; ``dp_delta`` outside (0, 1); ``dp_clip_norm`` ≤ 0; or a
            ``checkpoint_dir`` holding an ensemble built with other settings.

    Example:
        >>> import tempfile
        >>> from lightning_unlearn import DigitsDataModule, TrainingRecipe, predict
        >>> dm = DigitsDataModule()
        >>> dm.setup()
        >>> sisa = SISAEnsemble(
        ...     dm, TrainingRecipe(max_epochs=5), num_shards=2, num_slices=3,
        ...     checkpoint_dir=tempfile.mkdtemp(), progress_bar=False,
        ... )
        >>> sisa.fit().total_slices  # S × R steps
        6
        >>> report = sisa.unlearn([int(dm.splits["forget"].indices[0])])
        >>> report.shards_retrained, report.slices_retrained  # only the shard holding the sample, from its slice on
        ((1,), {1: 2})
        >>> predict(sisa.as_module(), dm.dataloader("test")).accuracy() > 0.5
        True
    """

    def __init__(
        self,
        datamodule: UnlearningDataModule,
        recipe: TrainingRecipe | None = None,
        num_shards: int = 10,
        num_slices: int = 100,
        checkpoint_dir: str | os.PathLike[str] = "sisa_checkpoints",
        epochs_per_slice: int | None = None,
        seed: int | None = None,
        dp_epsilon: float | None = None,
        dp_delta: float = 1e-5,
        dp_clip_norm: float = 10.0,
        progress_bar: bool = True,
        on_slice_end: Callable[[SliceTrained], None] | None = None,
    ) -> None:
        if not isinstance(datamodule, UnlearningDataModule):
            raise TypeError(
                f"Expected `datamodule` to be an UnlearningDataModule, but got {type(datamodule).__name__}."
            )
        recipe = recipe if recipe is not None else TrainingRecipe()
        if not isinstance(recipe, TrainingRecipe):
            raise TypeError(f"Expected `recipe` to be a TrainingRecipe, but got {type(recipe).__name__}.")
        for name, value in (("num_shards", num_shards), ("num_slices", num_slices)):
            if not isinstance(value, int) or isinstance(value, bool):
                raise TypeError(f"Expected `{name}` to be an integer, but got {type(value).__name__}.")
            if value < 1:
                raise ValueError(f"Expected `{name}` to be a positive integer, but got {value}.")
        if epochs_per_slice is not None:
            if not isinstance(epochs_per_slice, int) or isinstance(epochs_per_slice, bool):
                raise TypeError(
                    f"Expected `epochs_per_slice` to be an integer or None, but got {type(epochs_per_slice).__name__}."
                )
            if epochs_per_slice < 1:
                raise ValueError(
                    f"Expected `epochs_per_slice` to be a positive integer or None, but got {epochs_per_slice}."
                )
        if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
            raise TypeError(f"Expected `seed` to be an integer or None, but got {type(seed).__name__}.")
        self.dp_sigma: float | None = None
        if dp_epsilon is not None:
            if isinstance(dp_epsilon, bool) or not isinstance(dp_epsilon, (int, float)) or not dp_epsilon > 0:
                raise ValueError(f"Expected `dp_epsilon` (ε) to be a positive number or None, but got {dp_epsilon!r}.")
            if isinstance(dp_clip_norm, bool) or not isinstance(dp_clip_norm, (int, float)) or not dp_clip_norm > 0:
                raise ValueError(f"Expected `dp_clip_norm` to be a positive number, but got {dp_clip_norm!r}.")
            self.dp_sigma = gaussian_mechanism_sigma(float(dp_epsilon), dp_delta, sensitivity=2.0 * dp_clip_norm)
        elif isinstance(dp_delta, bool) or not isinstance(dp_delta, (int, float)) or not 0.0 < dp_delta < 1.0:
            raise ValueError(f"Expected `dp_delta` (δ) to be in (0, 1), but got {dp_delta!r}.")

        datamodule.setup("fit")
        members = datamodule.splits["target_train"].indices
        count = len(members)
        if num_shards > count:
            raise ValueError(
                f"Expected `num_shards` to be at most the {count:,} samples of target_train, but got {num_shards:,}."
            )
        smallest_shard = count // num_shards
        if num_slices > smallest_shard:
            raise ValueError(
                f"Expected `num_slices` to be at most {smallest_shard:,} (the smallest of {num_shards:,} shards of the"
                f" {count:,} samples of target_train holds {smallest_shard:,}), but got {num_slices:,}: a slice would"
                " be empty."
            )

        self.datamodule = datamodule
        self.recipe = recipe
        self.num_shards = num_shards
        self.num_slices = num_slices
        self.checkpoint_dir = Path(checkpoint_dir)
        self.epochs_per_slice = (
            epochs_per_slice
            if epochs_per_slice is not None
            else max(1, round(2 * recipe.max_epochs / (num_slices + 1)))
        )
        self.seed = recipe.seed if seed is None else seed
        self.dp_epsilon = None if dp_epsilon is None else float(dp_epsilon)
        self.dp_delta = float(dp_delta)
        self.dp_clip_norm = float(dp_clip_norm)
        self.progress_bar = progress_bar
        self.on_slice_end = on_slice_end

        # The partition (Bourtoule et al. §IV): a seeded permutation cut into S shards, each into R slices.
        order = np.random.default_rng(self.seed).permutation(members)
        self._slices: list[list[np.ndarray]] = [
            [np.sort(piece) for piece in np.array_split(shard, num_slices)]
            for shard in np.array_split(order, num_shards)
        ]
        self._shard_of = {int(index): s for s, shard in enumerate(self._slices) for piece in shard for index in piece}
        self._slice_of = {int(index): r for shard in self._slices for r, piece in enumerate(shard) for index in piece}
        self._positions = {int(index): position for position, index in enumerate(members)}
        self._constituents: dict[int, nn.Module] = {}
        self._check_manifest()
        self._forgotten: set[int] = set(self._read_forgotten())

    # ------------------------------------------------------------------ partition
    @property
    def slices(self) -> list[list[np.ndarray]]:
        """``slices[s][r]``: the global indices of slice ``r`` of shard ``s``, as partitioned (before forgetting)."""
        return [[piece.copy() for piece in shard] for shard in self._slices]

    @property
    def forgotten(self) -> frozenset[int]:
        """Every global index forgotten so far (read from the request log at construction)."""
        return frozenset(self._forgotten)

    def shard_of(self, index: int) -> int:
        """The shard that holds global index ``index``.

        Raises:
            ValueError: ``index`` is not in ``target_train``.
        """
        if int(index) not in self._shard_of:
            raise ValueError(f"Expected a global index of a target_train sample, but got {index}.")
        return self._shard_of[int(index)]

    def shard_indices(self, shard: int, up_to_slice: int | None = None) -> np.ndarray:
        """The indices shard ``shard`` trains on now: slices ``0 … up_to_slice`` (default all), minus the forgotten."""
        last = self.num_slices - 1 if up_to_slice is None else up_to_slice
        pieces = np.concatenate(self._slices[shard][: last + 1])
        return np.array([i for i in pieces if int(i) not in self._forgotten], dtype=np.int64)

    def _settings(self) -> dict[str, Any]:
        backbone = self.recipe.backbone
        return {
            "num_shards": self.num_shards,
            "num_slices": self.num_slices,
            "epochs_per_slice": self.epochs_per_slice,
            "seed": self.seed,
            "recipe": {
                "backbone": "MLP (default)" if backbone is None else type(backbone).__name__,
                "learning_rate": self.recipe.learning_rate,
                "weight_decay": self.recipe.weight_decay,
                "seed": self.recipe.seed,
            },
            "batch_size": self.datamodule.batch_size,
        }

    def _digest(self, shard: int, step: int) -> str:
        """Hash of the settings and of the samples still present in slices ``0 … step`` of ``shard``."""
        content = hashlib.sha256(json.dumps(self._settings(), sort_keys=True).encode())
        content.update(f"{shard}:{step}:".encode())
        content.update(self.shard_indices(shard, step).tobytes())
        return content.hexdigest()[:16]

    # ------------------------------------------------------------------ files
    def _shard_dir(self, shard: int) -> Path:
        return self.checkpoint_dir / f"shard_{shard:04d}"

    def _checkpoint_path(self, shard: int, step: int) -> Path:
        return self._shard_dir(shard) / f"slice_{step:04d}-{self._digest(shard, step)}.pt"

    def _check_manifest(self) -> None:
        path = self.checkpoint_dir / _MANIFEST_NAME
        manifest = {
            "format": "lightning-unlearn/sisa",
            "settings": self._settings(),
            "slices": [[piece.tolist() for piece in shard] for shard in self._slices],
        }
        if path.is_file():
            saved = json.loads(path.read_text())
            if saved != json.loads(json.dumps(manifest)):
                raise ValueError(
                    f"Expected `checkpoint_dir` {str(self.checkpoint_dir)!r} to hold this ensemble (or nothing), but"
                    f" it holds one built with other settings or data: {saved.get('settings')}. Use another folder."
                )
        elif _distributed()[0] == 0:
            atomic_write_text(path, json.dumps(manifest))

    def _read_forgotten(self) -> list[int]:
        path = self.checkpoint_dir / _LOG_NAME
        if not path.is_file():
            return []
        forgotten: list[int] = []
        for line in path.read_text().splitlines():
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:  # a line cut by a crash while it was written: not a logged request
                log.warning("Ignoring an unreadable line of the SISA request log %s.", path)
                continue
            if entry.get("event") == "forget":
                forgotten.extend(int(i) for i in entry["indices"])
        return forgotten

    def pending_requests(self) -> list[int]:
        """Ids of logged requests whose retraining has not completed (an interrupted unlearning)."""
        path = self.checkpoint_dir / _LOG_NAME
        if not path.is_file():
            return []
        started, completed = [], set()
        for line in path.read_text().splitlines():
            with contextlib.suppress(json.JSONDecodeError):
                entry = json.loads(line)
                if entry.get("event") == "forget":
                    started.append(int(entry["request"]))
                elif entry.get("event") == "completed":
                    completed.add(int(entry["request"]))
        return [request for request in started if request not in completed]

    def request_log(self) -> list[dict[str, Any]]:
        """Every event of the request log, oldest first."""
        path = self.checkpoint_dir / _LOG_NAME
        if not path.is_file():
            return []
        entries = []
        for line in path.read_text().splitlines():
            with contextlib.suppress(json.JSONDecodeError):
                entries.append(json.loads(line))
        return entries

    def _append_log(self, entry: dict[str, Any]) -> None:
        if _distributed()[0] != 0:
            return
        path = self.checkpoint_dir / _LOG_NAME
        path.parent.mkdir(parents=True, exist_ok=True)
        # A line cut by a crash has no newline: start on a fresh line so this event stays readable.
        broken = path.is_file() and path.stat().st_size > 0 and not path.read_bytes().endswith(b"\n")
        with path.open("a") as file:  # one line per event, flushed to disk before anything else happens
            file.write(
                ("\n" if broken else "") + json.dumps({**entry, "time": time.strftime("%Y-%m-%dT%H:%M:%S%z")}) + "\n"
            )
            file.flush()
            os.fsync(file.fileno())

    def _delete_stale(self, shard: int, step: int, keep: Path | None) -> None:
        for path in self._shard_dir(shard).glob(f"slice_{step:04d}-*.pt"):
            if path != keep:
                path.unlink(missing_ok=True)

    # ------------------------------------------------------------------ training
    def _valid_steps(self, shard: int) -> int:
        """How many leading steps of ``shard`` have a checkpoint matching the current data."""
        for step in range(self.num_slices):
            if not self._checkpoint_path(shard, step).is_file():
                return step
        return self.num_slices

    def _step_seed(self, shard: int, step: int) -> int:
        return (self.seed * 1_000_003 + shard * 10_007 + step) % (2**31 - 1)

    def _initial_backbone(self, shard: int) -> nn.Module:
        """The constituent's initial weights: the recipe's architecture, initialised from the shard's seed."""
        return replace(self.recipe, seed=self._step_seed(shard, -1)).build_backbone(self.datamodule)

    def _load_backbone(self, shard: int, step: int) -> nn.Module:
        backbone = self._initial_backbone(shard)
        if step >= 0:
            content = torch.load(self._checkpoint_path(shard, step), map_location="cpu", weights_only=True)
            backbone.load_state_dict(content["state_dict"])
        return backbone.eval()

    def _train_step(self, shard: int, step: int, backbone: nn.Module) -> tuple[nn.Module, int]:
        """Train ``backbone`` on slices ``0 … step`` of ``shard`` for ``epochs_per_slice`` epochs."""
        indices = self.shard_indices(shard, step)
        if len(indices) == 0:  # every sample so far forgotten: nothing to learn, the weights carry over
            return backbone, 0
        dataset = Subset(self.datamodule.dataset("target_train"), [self._positions[int(i)] for i in indices])
        seed = self._step_seed(shard, step)
        loader = DataLoader(
            dataset,
            batch_size=self.datamodule.batch_size,
            shuffle=True,
            generator=torch.Generator().manual_seed(seed),
        )
        module = self.recipe.build_module(self.datamodule)
        module.backbone.load_state_dict(backbone.state_dict())
        for metric in module.modules():  # each rank trains its own shards: no collective may span ranks
            if isinstance(metric, Metric):
                metric.sync_on_compute = False
                metric.dist_sync_on_step = False
        L.seed_everything(seed, verbose=False)
        trainer = self.recipe.build_trainer(
            max_epochs=self.epochs_per_slice,
            enable_progress_bar=False,
            limit_val_batches=0,
        )
        trainer.fit(module, train_dataloaders=loader)
        return module.backbone.eval(), len(indices)

    def _bring_up_to_date(self, shards: Sequence[int]) -> dict[int, int]:
        """Train every step of ``shards`` after its last valid checkpoint; returns steps trained per shard."""
        plan = {shard: self._valid_steps(shard) for shard in shards}
        total = sum(self.num_slices - start for start in plan.values())
        trained: dict[int, int] = {}
        rank, _ = _distributed()
        with (
            quiet_lightning(),
            tqdm(
                total=total, desc="SISA slices", unit="slice", disable=not self.progress_bar or rank != 0 or total == 0
            ) as bar,
        ):
            for shard, start in plan.items():
                if start == self.num_slices:
                    continue
                backbone = self._load_backbone(shard, start - 1)
                for step in range(start, self.num_slices):
                    began = time.perf_counter()
                    backbone, num_samples = self._train_step(shard, step, backbone)
                    path = self._checkpoint_path(shard, step)
                    _save_checkpoint(path, shard, step, num_samples, backbone)
                    self._delete_stale(shard, step, keep=path)
                    trained[shard] = trained.get(shard, 0) + 1
                    self._constituents.pop(shard, None)
                    bar.update(1)
                    if self.on_slice_end is not None:
                        self.on_slice_end(SliceTrained(shard, step, num_samples, time.perf_counter() - began, path))
        return trained

    def _owned(self, shards: Sequence[int]) -> list[int]:
        rank, world = _distributed()
        return [shard for shard in shards if shard % world == rank]

    def fit(self) -> SISATrainingReport:
        """Train every constituent up to its last slice, resuming after the last valid checkpoints.

        A first call trains all ``S × R`` steps; a call after an interruption trains only the
        steps left; a call on a complete ensemble trains nothing. Under DDP each rank trains its
        own shards (``s % world_size == rank``), then waits for the others and loads every
        constituent, so the ensemble is complete on every rank. Any logged request whose
        retraining was interrupted is completed and logged as such.

        Returns:
            The steps trained per shard on this rank and the time.

        Example:
            >>> import tempfile
            >>> from lightning_unlearn import DigitsDataModule, TrainingRecipe
            >>> sisa = SISAEnsemble(
            ...     DigitsDataModule(), TrainingRecipe(max_epochs=3), num_shards=2, num_slices=2,
            ...     checkpoint_dir=tempfile.mkdtemp(), progress_bar=False,
            ... )
            >>> sisa.fit().total_slices  # S × R steps
            4
            >>> sisa.fit().total_slices  # complete already: nothing to train
            0
        """
        start = time.perf_counter()
        pending = self.pending_requests()
        trained = self._bring_up_to_date(self._owned(range(self.num_shards)))
        _barrier()
        for request in pending:
            self._append_log({"event": "completed", "request": request, "resumed": True})
        self._load_all()
        _barrier()  # no rank may change checkpoints while another still loads them
        return SISATrainingReport(slices_trained=trained, seconds=time.perf_counter() - start)

    resume = fit

    def unlearn(self, indices: Sequence[int] | np.ndarray | torch.Tensor) -> SISAUnlearningReport:
        """Forget ``indices``: retrain each affected shard from the last checkpoint before its first affected slice.

        The request is logged (and every checkpoint holding a forgotten sample deleted) before
        any retraining, so an interrupted unlearning resumes with :meth:`fit` or the next
        :meth:`unlearn`, which also finishes whatever an earlier interrupted request left. Shards
        that hold none of the indices are not touched. Indices forgotten before are skipped,
        logged as a ``"noop"`` when nothing new is requested. Called before :meth:`fit`, it
        trains the whole ensemble without the indices.

        Args:
            indices: global indices of ``target_train`` samples, each at most once.

        Returns:
            A :class:`SISAUnlearningReport`: what was forgotten, which shards and how many steps
            were retrained, and the time.

        Raises:
            TypeError: ``indices`` is not a 1-D integer sequence.
            ValueError: no index, an index twice, or an index that is not in ``target_train``.

        Example:
            >>> import tempfile
            >>> from lightning_unlearn import DigitsDataModule, TrainingRecipe
            >>> dm = DigitsDataModule()
            >>> sisa = SISAEnsemble(
            ...     dm, TrainingRecipe(max_epochs=3), num_shards=2, num_slices=2,
            ...     checkpoint_dir=tempfile.mkdtemp(), progress_bar=False,
            ... )
            >>> _ = sisa.fit()
            >>> index = int(dm.splits["forget"].indices[0])
            >>> report = sisa.unlearn([index])
            >>> report.newly_forgotten == (index,), report.shards_retrained, report.slices_retrained
            (True, (1,), {1: 2})
            >>> sisa.unlearn([index]).already_forgotten == (index,)  # a second request costs nothing
            True
        """
        start = time.perf_counter()
        requested = _as_index_array(indices)
        if requested.size == 0:
            raise ValueError("Expected `indices` to hold at least one global index to forget, but got none.")
        values, counts = np.unique(requested, return_counts=True)
        if (counts > 1).any():
            repeated = values[counts > 1]
            raise ValueError(
                f"Expected `indices` to name each sample once, but got {len(repeated):,} repeated:"
                f" {_preview(repeated)}."
            )
        unknown = [int(i) for i in requested if int(i) not in self._shard_of]
        if unknown:
            raise ValueError(
                f"Expected `indices` to be global indices of target_train samples, but got {len(unknown):,} outside"
                f" it: {_preview(unknown)}."
            )
        new = sorted(int(i) for i in requested if int(i) not in self._forgotten)
        old = sorted(int(i) for i in requested if int(i) in self._forgotten)
        first_slice: dict[int, int] = {}
        for index in new:
            shard = self._shard_of[index]
            first_slice[shard] = min(first_slice.get(shard, self.num_slices), self._slice_of[index])
        if not new:
            log.info("SISA: all %d requested indices were already forgotten; nothing to retrain.", len(old))
            self._append_log({"event": "noop", "indices": old})
        else:
            request = sum(1 for entry in self.request_log() if entry.get("event") == "forget")
            self._append_log({"event": "forget", "request": request, "indices": new})
            self._forgotten.update(new)
            for shard, first in first_slice.items():  # checkpoints that hold a forgotten sample go now
                for step in range(first, self.num_slices):
                    self._delete_stale(shard, step, keep=self._checkpoint_path(shard, step))
                self._constituents.pop(shard, None)
        _barrier()  # every rank sees the logged request and the deletions before retraining
        pending = self.pending_requests()
        retrained = self._bring_up_to_date(self._owned(range(self.num_shards)))
        _barrier()
        for request in pending:
            self._append_log({"event": "completed", "request": request, "slices_retrained": retrained})
        self._load_all()
        _barrier()  # no rank may change checkpoints while another still loads them
        return SISAUnlearningReport(
            newly_forgotten=tuple(new),
            already_forgotten=tuple(old),
            affected_shards=tuple(sorted(first_slice)),
            first_affected_slice=dict(sorted(first_slice.items())),
            slices_retrained=retrained,
            seconds=time.perf_counter() - start,
        )

    # ------------------------------------------------------------------ publishing
    def _load_all(self) -> None:
        for shard in range(self.num_shards):
            if shard not in self._constituents:
                if not self._checkpoint_path(shard, self.num_slices - 1).is_file():
                    raise RuntimeError(
                        f"Expected the last checkpoint of shard {shard} in {str(self._shard_dir(shard))!r} after"
                        " training, but it is missing: is `checkpoint_dir` shared by every rank?"
                    )
                self._constituents[shard] = self._publish(shard, self._load_backbone(shard, self.num_slices - 1))

    def _publish(self, shard: int, backbone: nn.Module) -> nn.Module:
        """The constituent as released: the trained weights, or SISA-DP's clipped and noised ones."""
        backbone.requires_grad_(False)
        if self.dp_sigma is None:
            return backbone
        parameters = list(backbone.parameters())
        norm = torch.linalg.vector_norm(torch.cat([p.detach().flatten() for p in parameters]))
        scale = min(1.0, self.dp_clip_norm / max(float(norm), 1e-12))
        digest = int(self._digest(shard, self.num_slices - 1), 16) % (2**31 - 1)
        generator = torch.Generator().manual_seed(digest)  # fresh noise whenever the shard's data changes
        with torch.no_grad():
            for p in parameters:
                p.mul_(scale).add_(torch.randn(p.shape, generator=generator, dtype=p.dtype) * self.dp_sigma)
        return backbone

    def constituents(self) -> list[nn.Module]:
        """The published constituents in shard order (training first if needed); empty shards are left out.

        Raises:
            RuntimeError: the ensemble is not trained yet (call :meth:`fit`), or every shard is empty.
        """
        if len(self._constituents) < self.num_shards:
            missing = [s for s in range(self.num_shards) if not self._checkpoint_path(s, self.num_slices - 1).is_file()]
            if missing:
                raise RuntimeError(
                    f"Expected a trained ensemble, but shards {_preview(missing)} have no final checkpoint:"
                    " call `fit()` first."
                )
            self._load_all()
        voting = [self._constituents[s] for s in range(self.num_shards) if len(self.shard_indices(s)) > 0]
        if not voting:
            raise RuntimeError("Expected at least one shard with data left, but every sample was forgotten.")
        return voting

    def as_module(self) -> SISAVoteModel:
        """The aggregated classifier: majority vote, log of the winning voters' mean posterior.

        Returns:
            A :class:`SISAVoteModel` over (copies of) the published constituents, in eval mode.
        """
        import copy

        return SISAVoteModel([copy.deepcopy(model) for model in self.constituents()]).eval()


class SISADPEnsemble(SISAEnsemble):
    """SISA-DP: every constituent (ε, δ)-differentially private, ε = 16 and δ = 1e-5 by default.

    The Forsaken paper's SISA-DP row. Two mechanisms, chosen by ``dp_mechanism``:

    * ``"dp_sgd"`` (default): each constituent is *trained* with DP-SGD (Abadi et al. 2016)
      (:mod:`lightning_unlearn.modules.dp_sgd`: Poisson-sampled batches, per-sample gradients
      clipped to ``dp_clip_norm``, Gaussian noise, Adam on the noised mean; Opacus
      does the per-sample work and the RDP accounting). The privacy plan of a constituent is
      fixed by the partition: step ``r`` of shard ``s`` trains ``epochs_per_slice`` epochs of
      ``⌊1/q⌋`` steps with sample rate ``q = min(1, B / n_{s,r})``, ``B`` = ``dp_batch_size``
      and ``n_{s,r}`` the samples of slices ``0 … r`` *as partitioned*. Forgetting samples
      removes them from the Poisson draws but leaves every rate and step count as planned, so the
      plan — and its ε — holds before and after any unlearning. The accountant composes the
      shard's whole plan, every step of every slice: a sample of slice 0 is in the draws of all
      ``R`` steps (the worst case; a later slice's samples take part in fewer steps, and the same
      ε bounds them). Step ``r`` runs at noise multiplier ``σ_s·b_max/b_r``
      (``dp_noise_schedule="inverse_batch"``, ``b_r = q·n_{s,r}`` its expected batch) or at
      ``σ_s`` (``"constant"``), and ``σ_s``, the shard's smallest multiplier
      (:attr:`dp_noise_multipliers`; each step's in :attr:`dp_step_noise_multipliers`), is the
      smallest for which the accountant gives the whole plan at most ``ε``;
      :attr:`dp_spent_epsilon` is what the accountant reports for it. Published weights are
      the trained ones (post-processing). The guarantee is per constituent, with respect to its
      shard's data, and per release: an observer of the ensembles published before and after an
      unlearning request sees the retrained steps run twice on the samples that stayed, and the
      two releases compose (docs/sisa_dp.md).
    * ``"output_perturbation"``: each constituent trains as in plain SISA and is published with
      the Gaussian mechanism on its clipped parameter vector (see the module docstring); at
      ``ε = 16`` on digits this leaves the ensemble near chance.

    Same other arguments as :class:`SISAEnsemble`.

    Args:
        dp_mechanism: ``"dp_sgd"`` or ``"output_perturbation"``.
        dp_clip_norm: ``C``: the per-sample gradient norm (DP-SGD, default 1.0) or the parameter
            vector's norm (output perturbation, default 10.0).
        dp_batch_size: DP-SGD's expected batch size ``B`` (``None``: the datamodule's). Default
            128, our choice: at least the largest digits shard, so on digits every step is
            full-batch (sample rate 1) and the noise ``σ·C`` is divided by the most samples.
        dp_learning_rate: Adam's learning rate for the DP-SGD constituents (``None``: the
            recipe's). Default 0.02, our choice: the noised gradient's second moment is mostly
            noise, so Adam's steps along the signal are far smaller than in plain training, and
            the recipe's 3e-3 leaves the constituents under-trained (near 50 % accuracy on
            ``validation``). docs/sisa_dp.md gives the search (learning rate, batch size,
            epochs per slice, clip norm, weight averaging), decided on ``validation`` and
            ``retain`` of seeds the benchmarks do not use.
        dp_noise_schedule: how DP-SGD spreads the budget over the steps. ``"inverse_batch"``
            (default, our choice): each step's noise multiplier is inversely proportional to its
            expected batch, so the first, small slices (whose noised mean gradient is the
            noisiest) cost little of ``ε`` and the steps over the whole shard get less noise
            (on digits, 4 × 5: ``σ`` 12.1 on slice 0 down to 2.44 on the whole shard, against
            3.66 for every step with ``"constant"``); it raised the constituents' accuracy on
            ``validation`` and ``retain`` (docs/sisa_dp.md). ``"constant"``: one multiplier for
            every step.

    Raises:
        ValueError: ``dp_epsilon`` ≤ 0 (or None), an unknown ``dp_mechanism`` or
            ``dp_noise_schedule``, a ``dp_batch_size`` or ``dp_learning_rate`` that is not
            positive, and everything :class:`SISAEnsemble` raises.
        ModuleNotFoundError: DP-SGD without Opacus installed.

    Example:
        >>> import tempfile
        >>> from lightning_unlearn import DigitsDataModule
        >>> sisa_dp = SISADPEnsemble(
        ...     DigitsDataModule(), num_shards=4, num_slices=5, checkpoint_dir=tempfile.mkdtemp(),
        ...     dp_mechanism="output_perturbation",
        ... )
        >>> round(sisa_dp.dp_sigma, 2)  # ε = 16, δ = 1e-5, sensitivity 2·C = 20
        6.88
        >>> private = SISADPEnsemble(DigitsDataModule(), num_shards=4, num_slices=5, checkpoint_dir=tempfile.mkdtemp())
        >>> max(private.dp_spent_epsilon.values()) <= 16.0
        True
    """

    def __init__(
        self,
        datamodule: UnlearningDataModule,
        recipe: TrainingRecipe | None = None,
        num_shards: int = 10,
        num_slices: int = 100,
        checkpoint_dir: str | os.PathLike[str] = "sisa_dp_checkpoints",
        epochs_per_slice: int | None = None,
        seed: int | None = None,
        dp_epsilon: float = 16.0,
        dp_delta: float = 1e-5,
        dp_clip_norm: float | None = None,
        dp_mechanism: Literal["dp_sgd", "output_perturbation"] = "dp_sgd",
        dp_batch_size: int | None = 128,
        dp_learning_rate: float | None = 0.02,
        dp_noise_schedule: Literal["inverse_batch", "constant"] = "inverse_batch",
        progress_bar: bool = True,
        on_slice_end: Callable[[SliceTrained], None] | None = None,
    ) -> None:
        if dp_epsilon is None:
            raise ValueError("Expected `dp_epsilon` (ε) to be a positive number for SISA-DP, but got None.")
        if dp_mechanism not in ("dp_sgd", "output_perturbation"):
            raise ValueError(
                f"Expected `dp_mechanism` to be 'dp_sgd' or 'output_perturbation', but got {dp_mechanism!r}."
            )
        self.dp_mechanism = dp_mechanism
        sgd = dp_mechanism == "dp_sgd"
        if dp_clip_norm is None:
            dp_clip_norm = 1.0 if sgd else 10.0
        if sgd:
            from lightning_unlearn.modules.dp_sgd import require_opacus

            require_opacus()
            if isinstance(dp_epsilon, bool) or not isinstance(dp_epsilon, (int, float)) or not dp_epsilon > 0:
                raise ValueError(f"Expected `dp_epsilon` (ε) to be a positive number, but got {dp_epsilon!r}.")
            if isinstance(dp_clip_norm, bool) or not isinstance(dp_clip_norm, (int, float)) or not dp_clip_norm > 0:
                raise ValueError(f"Expected `dp_clip_norm` to be a positive number, but got {dp_clip_norm!r}.")
            if dp_batch_size is not None and (
                isinstance(dp_batch_size, bool) or not isinstance(dp_batch_size, int) or dp_batch_size < 1
            ):
                raise ValueError(
                    f"Expected `dp_batch_size` to be a positive integer or None, but got {dp_batch_size!r}."
                )
            if dp_learning_rate is not None and (
                isinstance(dp_learning_rate, bool)
                or not isinstance(dp_learning_rate, (int, float))
                or not dp_learning_rate > 0
            ):
                raise ValueError(
                    f"Expected `dp_learning_rate` to be a positive number or None, but got {dp_learning_rate!r}."
                )
            if dp_noise_schedule not in ("inverse_batch", "constant"):
                raise ValueError(
                    f"Expected `dp_noise_schedule` to be 'inverse_batch' or 'constant', but got {dp_noise_schedule!r}."
                )
            self._dp_sgd_settings = {
                "epsilon": float(dp_epsilon),
                "delta": dp_delta,
                "clip": float(dp_clip_norm),
                "batch_size": dp_batch_size,
                "learning_rate": dp_learning_rate,
                "noise_schedule": dp_noise_schedule,
            }
        self.dp_batch_size = dp_batch_size
        self.dp_learning_rate = dp_learning_rate
        self.dp_noise_schedule = dp_noise_schedule
        super().__init__(
            datamodule,
            recipe,
            num_shards=num_shards,
            num_slices=num_slices,
            checkpoint_dir=checkpoint_dir,
            epochs_per_slice=epochs_per_slice,
            seed=seed,
            dp_epsilon=None if sgd else dp_epsilon,  # output perturbation is SISAEnsemble's own publishing
            dp_delta=dp_delta,
            dp_clip_norm=dp_clip_norm,
            progress_bar=progress_bar,
            on_slice_end=on_slice_end,
        )
        self.dp_epsilon = float(dp_epsilon)
        self.dp_noise_multipliers: dict[int, float] = {}
        self.dp_step_noise_multipliers: dict[int, list[float]] = {}
        self.dp_spent_epsilon: dict[int, float] = {}
        if sgd:
            from lightning_unlearn.modules.dp_sgd import noise_multiplier_for, spent_epsilon

            calibrated: dict[tuple[Any, ...], float] = {}  # shards of one size share a plan
            for shard in range(self.num_shards):
                plan = tuple((rate, steps) for rate, _, steps in self.dp_plan(shard))
                scales = self._dp_noise_scales(shard)
                key = (plan, tuple(scales))
                if key not in calibrated:
                    calibrated[key] = noise_multiplier_for(self.dp_epsilon, self.dp_delta, plan, scales)
                sigma = calibrated[key]
                self.dp_noise_multipliers[shard] = sigma
                self.dp_step_noise_multipliers[shard] = [sigma * scale for scale in scales]
                self.dp_spent_epsilon[shard] = spent_epsilon(sigma, plan, self.dp_delta, scales)

    def _settings(self) -> dict[str, Any]:
        settings = super()._settings()
        if getattr(self, "dp_mechanism", None) == "dp_sgd":  # DP-SGD checkpoints differ from plain SISA's
            settings["dp_sgd"] = self._dp_sgd_settings
        return settings

    def dp_plan(self, shard: int) -> list[tuple[float, int, int]]:
        """DP-SGD's plan for ``shard``: per step ``r``, ``(sample rate q, steps per epoch ⌊1/q⌋, total steps)``."""
        plan = []
        for step in range(self.num_slices):
            planned = sum(len(piece) for piece in self._slices[shard][: step + 1])  # as partitioned
            rate = min(1.0, (self.dp_batch_size or self.datamodule.batch_size) / planned)
            per_epoch = int(1 / rate)
            plan.append((rate, per_epoch, per_epoch * self.epochs_per_slice))
        return plan

    def _dp_noise_scales(self, shard: int) -> list[float]:
        """Each step's noise multiplier over the shard's smallest: ``b_max / b_r`` (``inverse_batch``) or 1."""
        planned = [sum(len(piece) for piece in self._slices[shard][: step + 1]) for step in range(self.num_slices)]
        batches = [rate * size for (rate, _, _), size in zip(self.dp_plan(shard), planned)]  # b_r = q_r·n_r
        if self.dp_noise_schedule == "constant":
            return [1.0] * self.num_slices
        return [max(batches) / batch for batch in batches]

    def _train_step(self, shard: int, step: int, backbone: nn.Module) -> tuple[nn.Module, int]:
        if self.dp_mechanism != "dp_sgd":
            return super()._train_step(shard, step, backbone)
        from opacus.data_loader import DPDataLoader

        from lightning_unlearn.modules.dp_sgd import DPSGDClassifierModule

        indices = self.shard_indices(shard, step)
        if len(indices) == 0:
            return backbone, 0
        dataset = Subset(self.datamodule.dataset("target_train"), [self._positions[int(i)] for i in indices])
        seed = self._step_seed(shard, step)
        rate, _, _ = self.dp_plan(shard)[step]
        loader = DPDataLoader(dataset, sample_rate=rate, generator=torch.Generator().manual_seed(seed))
        recipe = (
            self.recipe if self.dp_learning_rate is None else replace(self.recipe, learning_rate=self.dp_learning_rate)
        )
        template = recipe.build_module(self.datamodule)
        template.backbone.load_state_dict(backbone.state_dict())
        module = DPSGDClassifierModule(
            template.backbone,
            noise_multiplier=self.dp_step_noise_multipliers[shard][step],
            max_grad_norm=self.dp_clip_norm,
            expected_batch_size=max(1, round(rate * sum(len(p) for p in self._slices[shard][: step + 1]))),
            loss=template.loss_name,
            optimizer=template.optimizer,
        )
        for metric in module.modules():
            if isinstance(metric, Metric):
                metric.sync_on_compute = False
                metric.dist_sync_on_step = False
        L.seed_everything(seed, verbose=False)
        trainer = self.recipe.build_trainer(
            max_epochs=self.epochs_per_slice, enable_progress_bar=False, limit_val_batches=0
        )
        trainer.fit(module, train_dataloaders=loader)
        return module.backbone.eval(), len(indices)
