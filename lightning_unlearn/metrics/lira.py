"""LiRA, the per-example likelihood-ratio membership attack, as pure functions (docs/evaluation.md, LiRA).

Carlini, Chien, Nasr, Song, Terzis and Tramèr, "Membership Inference Attacks From First
Principles" (IEEE S&P 2022). The population attack of :mod:`lightning_unlearn.metrics.functional`
fits one decision rule for every sample, so it misses the samples that stay *individually*
recognisable. LiRA asks, for each candidate ``(x, y)`` on its own: how does a model's confidence
on it vary over models trained with it (IN) and without it (OUT)?

1. ``K`` reference models are trained with the target's recipe on ``retain`` plus a seeded random
   half of the candidates (:mod:`lightning_unlearn.metrics.lira_references`), so every candidate
   is IN for half of them and OUT for the others.
2. Each model's confidence in a candidate's label is logit-scaled, ``φ = log(p_y / (1 − p_y))``
   (:func:`~lightning_unlearn.metrics.functional.membership_features`), which makes it close to
   Gaussian over models.
3. Per candidate, ``N(μ_in, σ_in²)`` is fitted to its IN confidences and ``N(μ_out, σ_out²)`` to its
   OUT ones (Algorithm 1). With few reference models the paper estimates one *global* variance
   per side instead of one per candidate (it found that better below 64 shadow models):
   ``variance="auto"`` does so for ``K < 64``.
4. The model under test gives the confidence ``φ_obs``. **Online** LiRA scores the likelihood ratio
   ``Λ = N(φ_obs; μ_in, σ_in²) / N(φ_obs; μ_out, σ_out²)`` (Algorithm 1), as ``log Λ``. **Offline**
   LiRA uses the OUT side alone, a one-sided test: ``Λ = 1 − Pr[Z > φ_obs]`` for
   ``Z ~ N(μ_out, σ_out²)``, scored as ``−log Pr[Z > φ_obs]`` (same order, no rounding to 1).
5. The members are the forget samples, the non-members ``heldout`` (``validation_heldout`` for a
   decision taken while unlearning). The attack is read at low false-positive rates, as the paper
   asks: the true-positive rate at 1 % and 0.1 % FPR, with the AUC beside them.

U-LiRA (Hayes et al., "Inexact Unlearning Needs More Careful Evaluations to Avoid a False Sense
of Privacy", 2024), whose IN side comes from reference models that were trained with the
candidates and then *unlearned* by the method under test, is not implemented here.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np
import torch

from lightning_unlearn.checks import check_choice
from lightning_unlearn.metrics.functional import allowed_false_positives, membership_features, true_positive_rate_at

__all__ = [
    "GLOBAL_VARIANCE_BELOW",
    "LOW_FALSE_POSITIVE_RATES",
    "LiRAGaussians",
    "LiRAReferenceStatistics",
    "LiRAResult",
    "LiRAVariant",
    "VarianceMode",
    "fit_lira_gaussians",
    "gaussian_log_density",
    "lira_attack",
    "lira_attack_from_logits",
    "lira_result",
    "lira_scores",
]

LiRAVariant = Literal["online", "offline"]
VarianceMode = Literal["auto", "global", "per_candidate"]

#: With fewer reference models than this, ``variance="auto"`` fits one global variance per side.
GLOBAL_VARIANCE_BELOW = 64
#: The smallest standard deviation a fitted Gaussian gets. Confidences are clipped at ±30, so a
#: candidate whose models all sit at the clip would otherwise have zero variance.
STD_FLOOR = 1e-3
#: The false-positive rates at which the true-positive rate is reported.
LOW_FALSE_POSITIVE_RATES = (0.01, 0.001)


# ---------------------------------------------------------------------------- checks
def _as_float_tensor(name: str, value: Any, ndim: int) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"Expected `{name}` to be a tensor, but got {type(value).__name__}.")
    if value.ndim != ndim:
        raise ValueError(f"Expected `{name}` to have {ndim} dimension(s), but got shape {tuple(value.shape)}.")
    if not value.is_floating_point():
        raise TypeError(f"Expected `{name}` to hold real numbers, but got {value.dtype}.")
    tensor = value.detach().to("cpu", torch.float64)
    bad = int((~torch.isfinite(tensor)).sum())
    if bad:
        raise ValueError(f"Expected `{name}` to be finite, but got {bad:,} non-finite values.")
    return tensor


def _as_index_tensor(name: str, value: Any) -> torch.Tensor:
    if not isinstance(value, (torch.Tensor, np.ndarray)):
        raise TypeError(f"Expected `{name}` to be a tensor of global indices, but got {type(value).__name__}.")
    tensor = torch.as_tensor(value).detach().cpu()
    if tensor.ndim != 1 or tensor.is_floating_point() or tensor.dtype == torch.bool:
        raise ValueError(
            f"Expected `{name}` to be a 1-D integer tensor, but got dtype {tensor.dtype} and shape"
            f" {tuple(tensor.shape)}."
        )
    return tensor.to(torch.long)


# ---------------------------------------------------------------------------- Gaussians
@dataclass(frozen=True)
class LiRAGaussians:
    """The IN and OUT Gaussians of every candidate (Algorithm 1), one entry per candidate.

    Attributes:
        mean_in: ``μ_in``, mean confidence of the reference models that trained on the candidate.
        std_in: ``σ_in``.
        mean_out: ``μ_out``, mean confidence of the reference models that did not.
        std_out: ``σ_out``.
        global_variance: whether ``σ_in`` and ``σ_out`` are each one value shared by every candidate.
    """

    mean_in: torch.Tensor
    std_in: torch.Tensor
    mean_out: torch.Tensor
    std_out: torch.Tensor
    global_variance: bool

    def __len__(self) -> int:
        return int(self.mean_in.shape[0])

    def select(self, positions: torch.Tensor) -> LiRAGaussians:
        """The Gaussians of the candidates at ``positions`` (columns of the reference statistics)."""
        return LiRAGaussians(
            self.mean_in[positions],
            self.std_in[positions],
            self.mean_out[positions],
            self.std_out[positions],
            self.global_variance,
        )


def fit_lira_gaussians(
    confidences: torch.Tensor, is_in: torch.Tensor, variance: VarianceMode = "auto"
) -> LiRAGaussians:
    """Fit ``N(μ_in, σ_in²)`` and ``N(μ_out, σ_out²)`` per candidate from the reference models' confidences.

    Means are per candidate. Variances are unbiased: per candidate, ``Σ (φ − μ)² / (n − 1)`` over its
    ``n`` IN (or OUT) models; globally, the pooled within-candidate variance
    ``Σ_candidates Σ (φ − μ_candidate)² / Σ_candidates (n − 1)``, one per side.

    Args:
        confidences: ``(K, N)`` logit-scaled confidence of reference model ``k`` on candidate ``n``.
        is_in: ``(K, N)`` booleans, ``True`` where candidate ``n`` was in model ``k``'s training data.
        variance: ``"per_candidate"``, ``"global"``, or ``"auto"`` (global below
            :data:`GLOBAL_VARIANCE_BELOW` models, as the paper recommends).

    Returns:
        The Gaussians, float64, standard deviations at least :data:`STD_FLOOR`.

    Raises:
        TypeError: non-tensors, ``confidences`` not real, or ``is_in`` not boolean.
        ValueError: shapes that differ, non-finite confidences, an unknown ``variance``, a candidate
            without an IN or an OUT model, or too few models on a side to estimate a variance.

    Example:
        >>> confidences = torch.tensor([[4.0, -1.0], [6.0, 1.0], [0.0, 3.0], [2.0, 5.0]])
        >>> is_in = torch.tensor([[True, False], [True, False], [False, True], [False, True]])
        >>> gaussians = fit_lira_gaussians(confidences, is_in, variance="per_candidate")
        >>> gaussians.mean_in.tolist(), gaussians.mean_out.tolist(), gaussians.std_in.tolist()
        ([5.0, 4.0], [1.0, 0.0], [1.4142135623730951, 1.4142135623730951])
    """
    check_choice("variance", variance, get_args(VarianceMode))
    values = _as_float_tensor("confidences", confidences, ndim=2)
    if not isinstance(is_in, torch.Tensor) or is_in.dtype != torch.bool:
        raise TypeError(
            f"Expected `is_in` to be a torch.bool tensor, but got {getattr(is_in, 'dtype', type(is_in).__name__)}."
        )
    if is_in.shape != values.shape:
        raise ValueError(
            f"Expected `is_in` of the shape of `confidences` {tuple(values.shape)}, but got {tuple(is_in.shape)}."
        )
    num_models = values.shape[0]
    use_global = variance == "global" or (variance == "auto" and num_models < GLOBAL_VARIANCE_BELOW)
    mask_in = is_in.detach().cpu()
    fitted: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    for side, mask in (("IN", mask_in), ("OUT", ~mask_in)):
        weights = mask.to(torch.float64)
        counts = weights.sum(dim=0)
        lacking = int((counts < 1).sum())
        if lacking:
            raise ValueError(f"Expected every candidate to have at least one {side} model, but {lacking:,} have none.")
        means = (values * weights).sum(dim=0) / counts
        squares = (((values - means) * weights) ** 2).sum(dim=0)
        if use_global:
            freedom = float((counts - 1).sum())
            if freedom < 1:
                raise ValueError(
                    f"Expected at least one candidate with two {side} models to estimate a variance, but got none."
                )
            spread = torch.full_like(means, math.sqrt(float(squares.sum()) / freedom))
        else:
            lacking = int((counts < 2).sum())
            if lacking:
                raise ValueError(
                    f"Expected at least two {side} models per candidate for variance='per_candidate', but {lacking:,}"
                    " candidates have fewer (use variance='global')."
                )
            spread = (squares / (counts - 1)).sqrt()
        fitted[side] = (means, spread.clamp_min(STD_FLOOR))
    return LiRAGaussians(*fitted["IN"], *fitted["OUT"], global_variance=use_global)


def gaussian_log_density(x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """``log N(x; mean, std²)``, element-wise.

    Example:
        >>> round(gaussian_log_density(torch.tensor(0.0), torch.tensor(0.0), torch.tensor(1.0)).item(), 6)
        -0.918939
    """
    z = (x - mean) / std
    return -0.5 * z * z - torch.log(std) - 0.5 * math.log(2.0 * math.pi)


def lira_scores(confidences: torch.Tensor, gaussians: LiRAGaussians, variant: LiRAVariant = "online") -> torch.Tensor:
    """The membership score of each candidate from the model under test's confidence; higher = member.

    Args:
        confidences: ``(n,)`` logit-scaled confidences of the model under test, aligned with ``gaussians``.
        gaussians: the candidates' fitted Gaussians (:meth:`LiRAGaussians.select` picks them).
        variant: ``"online"``: ``log N(φ; μ_in, σ_in²) − log N(φ; μ_out, σ_out²)`` (Algorithm 1);
            ``"offline"``: ``−log Pr[Z > φ]`` for ``Z ~ N(μ_out, σ_out²)``, the one-sided test.

    Returns:
        ``(n,)`` float64 scores.

    Raises:
        TypeError, ValueError: confidences not a finite real 1-D tensor, not one per Gaussian, or an
            unknown ``variant``.

    Example:
        >>> gaussians = LiRAGaussians(*(torch.tensor([v]) for v in (2.0, 1.0, 0.0, 1.0)), global_variance=True)
        >>> lira_scores(torch.tensor([2.0]), gaussians).tolist()  # 0 − (−½·2²)
        [2.0]
    """
    check_choice("variant", variant, get_args(LiRAVariant))
    observed = _as_float_tensor("confidences", confidences, ndim=1)
    if observed.shape[0] != len(gaussians):
        raise ValueError(
            f"Expected one confidence per Gaussian ({len(gaussians):,}), but got {observed.shape[0]:,} confidences."
        )
    if variant == "online":
        return gaussian_log_density(observed, gaussians.mean_in, gaussians.std_in) - gaussian_log_density(
            observed, gaussians.mean_out, gaussians.std_out
        )
    z = (observed - gaussians.mean_out) / gaussians.std_out
    return -torch.special.log_ndtr(-z)  # −log Pr[Z > φ]; log Φ(−z) stays finite far in the tail


# ---------------------------------------------------------------------------- the attack's figures
def _fpr_label(rate: float) -> str:
    return f"{100 * rate:g} %"


@dataclass(frozen=True)
class LiRAResult:
    """What LiRA achieves on one model: AUC, TPR at 1 % and 0.1 % FPR, and every sample's score.

    Attributes:
        auc: area under the ROC curve of the scores, members vs non-members; 0.5 = chance.
        tpr_at_1pct_fpr: the highest true-positive rate at a false-positive rate of at most 1 %.
        tpr_at_0_1pct_fpr: the same at 0.1 %.
        num_members: members scored (the forget samples).
        num_nonmembers: non-members scored (``heldout``, or ``validation_heldout`` for decisions).
        variant: ``"online"`` or ``"offline"``.
        global_variance: whether the Gaussians share one variance per side.
        num_models: reference models behind the Gaussians.
        member_indices: the members' global indices, in score order of ``member_scores``.
        member_scores: their scores (higher = member).
        nonmember_indices: the non-members' global indices.
        nonmember_scores: their scores.
    """

    auc: float
    tpr_at_1pct_fpr: float
    tpr_at_0_1pct_fpr: float
    num_members: int
    num_nonmembers: int
    variant: str
    global_variance: bool
    num_models: int
    member_indices: tuple[int, ...] = field(repr=False)
    member_scores: tuple[float, ...] = field(repr=False)
    nonmember_indices: tuple[int, ...] = field(repr=False)
    nonmember_scores: tuple[float, ...] = field(repr=False)

    def false_positives_allowed(self, rate: float) -> int:
        """How many of the non-members may be scored above the threshold at FPR ``rate``: ``⌊rate · n⌋``.

        Example:
            >>> allowed_false_positives(0.01, 179), allowed_false_positives(0.001, 179)
            (1, 0)
        """
        return allowed_false_positives(rate, self.num_nonmembers)

    @property
    def auc_half_width(self) -> float:
        """95 % half-width of the AUC under chance, ``1.96·sqrt((m + n + 1) / (12 m n))`` (Mann–Whitney)."""
        m, n = self.num_members, self.num_nonmembers
        return 1.96 * math.sqrt((m + n + 1) / (12 * m * n))

    @property
    def notes(self) -> tuple[str, ...]:
        """What the group sizes cannot support: an FPR below ``1 / non-members`` is not measurable."""
        notes = []
        for rate in LOW_FALSE_POSITIVE_RATES:
            if self.false_positives_allowed(rate) == 0:
                notes.append(
                    f"LiRA's TPR at {_fpr_label(rate)} FPR is its TPR at zero false positives: {self.num_nonmembers:,}"
                    f" non-members cannot measure an FPR below 1/{self.num_nonmembers:,} ="
                    f" {100 / self.num_nonmembers:.2f} % (it needs at least {math.ceil(1 / rate):,})."
                )
        return tuple(notes)

    def to_dict(self, scores: bool = True) -> dict[str, Any]:
        """Every figure, the false positives each TPR allows, the notes, and (with ``scores``) each sample's score."""
        values: dict[str, Any] = {
            "auc": self.auc,
            "auc_half_width": self.auc_half_width,
            "tpr_at_1pct_fpr": self.tpr_at_1pct_fpr,
            "tpr_at_0_1pct_fpr": self.tpr_at_0_1pct_fpr,
            "false_positives_at_1pct_fpr": self.false_positives_allowed(0.01),
            "false_positives_at_0_1pct_fpr": self.false_positives_allowed(0.001),
            "num_members": self.num_members,
            "num_nonmembers": self.num_nonmembers,
            "variant": self.variant,
            "global_variance": self.global_variance,
            "num_models": self.num_models,
            "notes": list(self.notes),
        }
        if scores:
            values["member_scores"] = dict(zip(map(str, self.member_indices), self.member_scores))
            values["nonmember_scores"] = dict(zip(map(str, self.nonmember_indices), self.nonmember_scores))
        return values


def lira_result(
    member_scores: torch.Tensor,
    nonmember_scores: torch.Tensor,
    member_indices: torch.Tensor,
    nonmember_indices: torch.Tensor,
    *,
    variant: LiRAVariant = "online",
    global_variance: bool = True,
    num_models: int = 0,
) -> LiRAResult:
    """AUC and TPR at 1 % and 0.1 % FPR of per-sample scores (higher = member).

    Args:
        member_scores: ``(m,)`` scores of the members.
        nonmember_scores: ``(n,)`` scores of the non-members.
        member_indices: the members' global indices, aligned with ``member_scores``.
        nonmember_indices: the non-members' global indices.
        variant: recorded in the result.
        global_variance: recorded in the result.
        num_models: recorded in the result.

    Returns:
        The :class:`LiRAResult`.

    Raises:
        TypeError, ValueError: scores that are not finite real 1-D tensors, indices not aligned with
            them, or an empty group.

    Example:
        >>> members, nonmembers = torch.tensor([3.0, 2.0]), torch.tensor([1.0, 2.5])
        >>> result = lira_result(members, nonmembers, torch.arange(2), torch.arange(2, 4))
        >>> result.auc, result.tpr_at_1pct_fpr
        (0.75, 0.5)
    """
    from sklearn.metrics import roc_auc_score

    groups = []
    for name, scores, indices in (
        ("member", member_scores, member_indices),
        ("nonmember", nonmember_scores, nonmember_indices),
    ):
        values = _as_float_tensor(f"{name}_scores", scores, ndim=1)
        positions = _as_index_tensor(f"{name}_indices", indices)
        if positions.shape[0] != values.shape[0]:
            raise ValueError(
                f"Expected one index per score in `{name}_indices` ({values.shape[0]:,}), but got"
                f" {positions.shape[0]:,}."
            )
        if values.shape[0] == 0:
            raise ValueError(f"Expected at least one {name.replace('nonmember', 'non-member')}, but got none.")
        groups.append((values, positions))
    (members, member_positions), (nonmembers, nonmember_positions) = groups
    labels = np.concatenate([np.ones(len(members), dtype=np.int64), np.zeros(len(nonmembers), dtype=np.int64)])
    pooled = np.concatenate([members.numpy(), nonmembers.numpy()])
    rates = [true_positive_rate_at(labels, pooled, rate) for rate in LOW_FALSE_POSITIVE_RATES]
    return LiRAResult(
        auc=float(roc_auc_score(labels, pooled)),
        tpr_at_1pct_fpr=rates[0],
        tpr_at_0_1pct_fpr=rates[1],
        num_members=len(members),
        num_nonmembers=len(nonmembers),
        variant=variant,
        global_variance=bool(global_variance),
        num_models=int(num_models),
        member_indices=tuple(member_positions.tolist()),
        member_scores=tuple(members.tolist()),
        nonmember_indices=tuple(nonmember_positions.tolist()),
        nonmember_scores=tuple(nonmembers.tolist()),
    )


# ---------------------------------------------------------------------------- reference statistics
_STATISTICS_TENSORS = "lira_references.pt"
_STATISTICS_JSON = "lira_references.json"


@dataclass(frozen=True)
class LiRAReferenceStatistics:
    """What ``K`` reference models say about each candidate: their confidences, and who trained on it.

    Built by :func:`~lightning_unlearn.metrics.lira_references.train_lira_references`; all a LiRA
    evaluation needs afterwards (the models themselves are not kept).

    Attributes:
        indices: ``(N,)`` the candidates' global indices, sorted and unique.
        labels: ``(N,)`` the label each candidate carries (its confidence is the confidence of that label).
        confidences: ``(K, N)`` float64 logit-scaled confidence of reference model ``k`` on candidate ``n``.
        is_in: ``(K, N)`` bool, ``True`` where candidate ``n`` was in model ``k``'s training data.
        model_seeds: the recipe seed each reference model was trained with.
        seconds: each reference model's training time (``Trainer.fit`` alone).

    Raises:
        ValueError: shapes that do not fit together, or indices that are not sorted and unique.
    """

    indices: torch.Tensor
    labels: torch.Tensor
    confidences: torch.Tensor
    is_in: torch.Tensor
    model_seeds: tuple[int, ...]
    seconds: tuple[float, ...]

    def __post_init__(self) -> None:
        num_models, num_candidates = self.confidences.shape
        if self.indices.shape != (num_candidates,) or self.labels.shape != (num_candidates,):
            raise ValueError(
                f"Expected `indices` and `labels` of shape ({num_candidates},) (the columns of `confidences`), but got"
                f" {tuple(self.indices.shape)} and {tuple(self.labels.shape)}."
            )
        if self.is_in.shape != self.confidences.shape:
            raise ValueError(
                f"Expected `is_in` of the shape of `confidences` {tuple(self.confidences.shape)}, but got"
                f" {tuple(self.is_in.shape)}."
            )
        if len(self.model_seeds) != num_models or len(self.seconds) != num_models:
            raise ValueError(
                f"Expected one seed and one time per reference model ({num_models}), but got {len(self.model_seeds)}"
                f" and {len(self.seconds)}."
            )
        if num_candidates > 1 and not bool((self.indices[1:] > self.indices[:-1]).all()):
            raise ValueError("Expected `indices` to be sorted and unique, but they are not.")

    @property
    def num_models(self) -> int:
        """``K``, the reference models."""
        return int(self.confidences.shape[0])

    @property
    def num_candidates(self) -> int:
        """``N``, the candidates."""
        return int(self.confidences.shape[1])

    @property
    def training_seconds(self) -> float:
        """The reference models' training time, all together."""
        return float(sum(self.seconds))

    def gaussians(self, variance: VarianceMode = "auto") -> LiRAGaussians:
        """:func:`fit_lira_gaussians` on these statistics."""
        return fit_lira_gaussians(self.confidences, self.is_in, variance)

    def positions(
        self, indices: torch.Tensor, labels: torch.Tensor | None = None, name: str = "indices"
    ) -> torch.Tensor:
        """The columns of the candidates with these global indices.

        Args:
            indices: global indices, each a candidate.
            labels: optionally, the labels the samples carry; they must be the candidates' labels.
            name: the argument's name in error messages.

        Raises:
            ValueError: an index that is not a candidate, or a label that differs from the candidate's.
        """
        wanted = _as_index_tensor(name, indices)
        positions = torch.searchsorted(self.indices, wanted).clamp_max(max(self.num_candidates - 1, 0))
        found = self.indices[positions] == wanted if self.num_candidates else torch.zeros_like(wanted, dtype=torch.bool)
        if not bool(found.all()):
            missing = wanted[~found]
            raise ValueError(
                f"Expected `{name}` to be candidates of the LiRA reference statistics, but got {missing.numel():,} that"
                f" are not (e.g. global index {int(missing[0])}): were the statistics built from these splits?"
            )
        if labels is not None:
            carried = torch.as_tensor(labels).detach().cpu().to(torch.long).reshape(-1)
            differ = carried != self.labels[positions]
            if bool(differ.any()):
                raise ValueError(
                    f"Expected the labels of `{name}` to be the labels the reference models were scored on, but"
                    f" {int(differ.sum()):,} differ (e.g. global index {int(wanted[differ][0])})."
                )
        return positions

    def save(self, folder: str | os.PathLike[str]) -> Path:
        """Write the tensors (``lira_references.pt``) and the seeds and times (``lira_references.json``)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        tensors = {"indices": self.indices, "labels": self.labels, "confidences": self.confidences, "is_in": self.is_in}
        torch.save(tensors, folder / _STATISTICS_TENSORS)
        meta = {"model_seeds": list(self.model_seeds), "seconds": list(self.seconds)}
        (folder / _STATISTICS_JSON).write_text(json.dumps(meta, indent=2))
        return folder

    @classmethod
    def load(cls, folder: str | os.PathLike[str]) -> LiRAReferenceStatistics:
        """Read what :meth:`save` wrote (tensors only, ``weights_only=True``)."""
        folder = Path(folder)
        tensors = torch.load(folder / _STATISTICS_TENSORS, map_location="cpu", weights_only=True)
        meta = json.loads((folder / _STATISTICS_JSON).read_text())
        return cls(
            indices=tensors["indices"],
            labels=tensors["labels"],
            confidences=tensors["confidences"],
            is_in=tensors["is_in"],
            model_seeds=tuple(int(seed) for seed in meta["model_seeds"]),
            seconds=tuple(float(seconds) for seconds in meta["seconds"]),
        )


def lira_attack(
    statistics: LiRAReferenceStatistics,
    member_confidences: torch.Tensor,
    member_indices: torch.Tensor,
    nonmember_confidences: torch.Tensor,
    nonmember_indices: torch.Tensor,
    *,
    member_labels: torch.Tensor | None = None,
    nonmember_labels: torch.Tensor | None = None,
    variant: LiRAVariant = "online",
    variance: VarianceMode = "auto",
) -> LiRAResult:
    """LiRA on a model under test, from its confidences on members and non-members.

    Args:
        statistics: the reference models' confidences on the candidates.
        member_confidences: the model under test's logit-scaled confidences on the members.
        member_indices: the members' global indices (each a candidate of ``statistics``).
        nonmember_confidences: the same on the non-members.
        nonmember_indices: the non-members' global indices.
        member_labels: optionally the members' labels, checked against the candidates'.
        nonmember_labels: the same for the non-members.
        variant: ``"online"`` or ``"offline"`` (see :func:`lira_scores`).
        variance: ``"auto"``, ``"global"`` or ``"per_candidate"`` (see :func:`fit_lira_gaussians`).

    Returns:
        The :class:`LiRAResult`.

    Raises:
        TypeError, ValueError: as :func:`fit_lira_gaussians`, :func:`lira_scores` and :func:`lira_result`;
            a sample that is not a candidate, a label that differs from the candidate's, or a sample
            that is both a member and a non-member.
    """
    if not isinstance(statistics, LiRAReferenceStatistics):
        raise TypeError(f"Expected `statistics` to be LiRAReferenceStatistics, but got {type(statistics).__name__}.")
    check_choice("variant", variant, get_args(LiRAVariant))
    gaussians = statistics.gaussians(variance)
    scored = []
    for name, confidences, indices, labels in (
        ("member", member_confidences, member_indices, member_labels),
        ("nonmember", nonmember_confidences, nonmember_indices, nonmember_labels),
    ):
        positions = statistics.positions(indices, labels, name=f"{name}_indices")
        scored.append((lira_scores(confidences, gaussians.select(positions), variant), positions))
    (member_scores, member_positions), (nonmember_scores, nonmember_positions) = scored
    both = np.intersect1d(member_positions.numpy(), nonmember_positions.numpy())
    if both.size:
        raise ValueError(
            f"Expected members and non-members to be different samples, but {both.size:,} are both (e.g. global"
            f" index {int(statistics.indices[int(both[0])])})."
        )
    return lira_result(
        member_scores,
        nonmember_scores,
        statistics.indices[member_positions],
        statistics.indices[nonmember_positions],
        variant=variant,
        global_variance=gaussians.global_variance,
        num_models=statistics.num_models,
    )


def lira_attack_from_logits(
    statistics: LiRAReferenceStatistics,
    member_logits: torch.Tensor,
    member_targets: torch.Tensor,
    member_indices: torch.Tensor,
    nonmember_logits: torch.Tensor,
    nonmember_targets: torch.Tensor,
    nonmember_indices: torch.Tensor,
    *,
    variant: LiRAVariant = "online",
    variance: VarianceMode = "auto",
) -> LiRAResult:
    """:func:`lira_attack` on the confidences :func:`~lightning_unlearn.metrics.functional.membership_features`
    computes from logits (the targets are checked against the candidates' labels).

    Raises:
        TypeError, ValueError: as :func:`membership_features` and :func:`lira_attack`.
    """
    _, member_confidences = membership_features(member_logits, member_targets)
    _, nonmember_confidences = membership_features(nonmember_logits, nonmember_targets)
    return lira_attack(
        statistics,
        member_confidences,
        member_indices,
        nonmember_confidences,
        nonmember_indices,
        member_labels=member_targets,
        nonmember_labels=nonmember_targets,
        variant=variant,
        variance=variance,
    )
