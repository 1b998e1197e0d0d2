"""The arithmetic of unlearning evaluation, as pure functions.

The method is written down in docs/evaluation.md (Membership oracle and FR; MIA score).

Nothing here holds state or knows about processes: the torchmetrics classes in
:mod:`lightning_unlearn.metrics.classes` gather per-sample values across ranks and call these.

* **FR**, the forgetting rate (Forsaken paper, Liu et al., "Learn to Forget: Machine Unlearning
  via Neuron Masking", Eq. 2): the share of the forget samples a membership oracle called
  members before unlearning that it calls non-members afterwards.
* **CFR**, the catastrophic forgetting rate (Forsaken Eq. 10): the same question asked of the
  retained training data, where the answer should be "nothing was forgotten".
* **MIA score**, the membership-inference attack of the FNN paper (Hatua et al.) and of the
  NeurIPS 2023 machine-unlearning challenge's starting kit: a cross-validated logistic
  regression that tells members from non-members by their per-sample loss (and logit-scaled
  confidence). 0.5 means the two groups cannot be told apart.

Which non-members? The negatives of an MIA score on the forget set must be ``heldout``: samples
the model never saw, drawn from the *forget set's own distribution* and labelled the same way.
When the forget set is out-of-distribution (OOD), the in-distribution (ID) test set is the wrong
negative: the attack then separates OOD from ID inputs, which is distribution shift, not
membership. Even the original model fits its memorised OOD insertions less tightly than clean ID
test digits, so forget samples look *less* like members than the test set does (the verdict
inverts), while a fitted attack still scores high for every model, the retrained one included,
because OOD and ID inputs differ. Measured on the digits OOD scenario (seed 0), fitted score /
loss AUC: against the ID test set, original 0.90 / 0.08 and retrained 0.94 / 0.02; against
``heldout``, original 0.94 / 0.96 and retrained 0.43 / 0.50.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from lightning_unlearn.checks import check_in_range, check_integer

__all__ = [
    "MIAScoreResult",
    "allowed_false_positives",
    "binomial_half_width",
    "catastrophic_forgetting_rate",
    "catastrophic_forgetting_rate_from_membership",
    "check_attack_settings",
    "check_mia_inputs",
    "forgetting_rate",
    "forgetting_rate_from_membership",
    "membership_counts",
    "membership_features",
    "mia_score",
    "mia_score_from_logits",
    "roc_point_at",
    "true_positive_rate_at",
]

#: Logit-scaled confidences are clipped to ``[-CONFIDENCE_CLIP, CONFIDENCE_CLIP]``.
CONFIDENCE_CLIP = 30.0

ArrayLike = torch.Tensor | np.ndarray


# ---------------------------------------------------------------------------- counts and rates
def _check_count(name: str, value: Any) -> int:
    """A count of samples: a non-negative integer, or a one-element integer tensor holding one."""
    if isinstance(value, torch.Tensor) and value.numel() == 1 and not value.is_floating_point():
        value = int(value.item())
    return check_integer(name, value, minimum=0)


def forgetting_rate(bt: int, bf: int, af: int) -> float:
    """The forgetting rate FR = (AF − BF) / BT (Forsaken paper, Eq. 2).

    Over the forget set ``D`` (``|D| = BT + BF``), a membership oracle is asked about every
    sample before and after unlearning. FR is the net number of samples that became
    non-members, relative to the members there were to forget. It is 1 when every member was
    forgotten and no non-member appeared out of nothing, 0 when nothing changed, negative
    when unlearning made more samples look like members, and NaN when the oracle saw no
    member before unlearning (there was nothing to forget, so the rate is undefined).

    Args:
        bt: samples the oracle predicts as members *before* unlearning (BT, "before true").
        bf: samples predicted as non-members before unlearning (BF, "before false").
        af: samples predicted as non-members *after* unlearning (AF, "after false").

    Returns:
        FR as a float, NaN when ``bt == 0``.

    Raises:
        TypeError: a count that is not an integer.
        ValueError: a negative count, or ``af`` above the forget set's size ``bt + bf``.

    Example:
        >>> forgetting_rate(bt=90, bf=10, af=90)  # |D| = 100
        0.8888888888888888
    """
    bt, bf, af = _check_count("bt", bt), _check_count("bf", bf), _check_count("af", af)
    if af > bt + bf:
        raise ValueError(f"Expected `af` to be at most bt + bf = {bt + bf:,} (the forget set's size), but got {af:,}.")
    if bt == 0:
        return float("nan")
    return (af - bf) / bt


def catastrophic_forgetting_rate(bt_train: int, at_train: int) -> float:
    """The catastrophic forgetting rate CFR = (BT.train − AT.train) / BT.train (Forsaken Eq. 10).

    Over the retained training data, the share of the samples the oracle called members
    before unlearning that are lost as members afterwards (net). 0 is ideal; positive values
    mean unlearning damaged what it should have kept; negative values mean more retained
    samples look like members than before.

    Args:
        bt_train: retained training samples predicted as members before unlearning.
        at_train: retained training samples predicted as members after unlearning.

    Returns:
        CFR as a float, NaN when ``bt_train == 0``.

    Raises:
        TypeError: a count that is not an integer.
        ValueError: a negative count.

    Example:
        >>> catastrophic_forgetting_rate(bt_train=200, at_train=190)
        0.05
    """
    bt_train, at_train = _check_count("bt_train", bt_train), _check_count("at_train", at_train)
    if bt_train == 0:
        return float("nan")
    return (bt_train - at_train) / bt_train


def _check_decisions(before: ArrayLike, after: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    arrays = []
    for name, value in (("before", before), ("after", after)):
        if not isinstance(value, (torch.Tensor, np.ndarray)):
            raise TypeError(f"Expected `{name}` to be a boolean tensor, but got {type(value).__name__}.")
        array = value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else value
        if array.dtype != np.bool_:
            raise TypeError(f"Expected `{name}` to be a boolean tensor of membership decisions, but got {array.dtype}.")
        arrays.append(array.reshape(-1))
    if arrays[0].shape != arrays[1].shape:
        raise ValueError(
            f"Expected `before` and `after` to hold one decision per sample each, but got {arrays[0].shape[0]:,}"
            f" and {arrays[1].shape[0]:,}."
        )
    return arrays[0], arrays[1]


def membership_counts(before: ArrayLike, after: ArrayLike) -> tuple[int, int, int, int]:
    """Count the oracle's decisions on the same samples before and after unlearning.

    Args:
        before: ``True`` where the oracle called the sample a member before unlearning.
        after: the same, after unlearning, aligned sample by sample with ``before``.

    Returns:
        ``(bt, bf, at, af)``: members and non-members before, members and non-members after.

    Raises:
        TypeError: a decision array that is not boolean.
        ValueError: ``before`` and ``after`` of different lengths.
    """
    before_array, after_array = _check_decisions(before, after)
    bt, at = int(before_array.sum()), int(after_array.sum())
    return bt, before_array.size - bt, at, after_array.size - at


def forgetting_rate_from_membership(before: ArrayLike, after: ArrayLike) -> float:
    """FR (Eq. 2) from the oracle's per-sample decisions on the forget set.

    Raises:
        TypeError: a decision array that is not boolean.
        ValueError: empty decisions, or ``before`` and ``after`` of different lengths.

    Example:
        >>> before = torch.tensor([True, True, True, False])
        >>> after = torch.tensor([False, True, False, False])
        >>> forgetting_rate_from_membership(before, after)  # (3 - 1) / 3
        0.6666666666666666
    """
    bt, bf, _, af = membership_counts(before, after)
    if bt + bf == 0:
        raise ValueError("Expected the forget set to be non-empty, but got 0 samples.")
    return forgetting_rate(bt, bf, af)


def catastrophic_forgetting_rate_from_membership(before: ArrayLike, after: ArrayLike) -> float:
    """CFR (Eq. 10) from the oracle's per-sample decisions on retained training data.

    Raises:
        TypeError: a decision array that is not boolean.
        ValueError: empty decisions, or ``before`` and ``after`` of different lengths.
    """
    bt, bf, at, _ = membership_counts(before, after)
    if bt + bf == 0:
        raise ValueError("Expected the retained training data to be non-empty, but got 0 samples.")
    return catastrophic_forgetting_rate(bt, at)


def binomial_half_width(n: int, proportion: float = 0.5, z: float = 1.96) -> float:
    """Half-width of the normal-approximation confidence interval of a proportion over ``n`` trials.

    ``z · sqrt(p(1 − p) / n)``; with the defaults (p = 0.5, 95 %) it is ``0.98 / sqrt(n)``,
    about ``1 / sqrt(n)``. Used to judge whether a rate or an attack accuracy is *clearly*
    away from a reference value, rather than by sampling noise.

    Raises:
        ValueError: ``n`` below 1 or ``proportion`` outside [0, 1].
    """
    if n < 1:
        raise ValueError(f"Expected `n` to be at least 1, but got {n}.")
    if not 0.0 <= proportion <= 1.0:
        raise ValueError(f"Expected `proportion` to be in [0, 1], but got {proportion}.")
    return z * math.sqrt(proportion * (1.0 - proportion) / n)


# ---------------------------------------------------------------------------- MIA score
#: How much wider than binomial the spread of a cross-validated attack's accuracy is under chance
#: (measured: 1.24–1.53 for 30–400 samples per group; see :attr:`MIAScoreResult.half_width`).
CROSS_VALIDATION_INFLATION = 1.4


@dataclass(frozen=True)
class MIAScoreResult:
    """The outcome of :func:`mia_score`: accuracy and AUC over the folds, TPR at a low FPR over all of them.

    Attributes:
        score: mean held-out accuracy of the attack (the MIA score); 0.5 = indistinguishable.
        score_std: its standard deviation over folds.
        auc: mean area under the ROC curve of the attack's member probability.
        auc_std: its standard deviation over folds.
        tpr_at_low_fpr: the true-positive rate at a false-positive rate of at most ``low_fpr``,
            read on the *pooled* out-of-fold scores: every sample scored by the fold's attack that
            did not train on it, then one threshold over all ``group_size`` non-members
            (:func:`roc_point_at`; a tie is never split). Not a mean over folds: a fold holds a
            fifth of the non-members, too few to place a 1 % threshold.
        achieved_fpr: the false-positive rate of that threshold, a multiple of ``1 / group_size``
            at most ``low_fpr``; 0 when ``group_size`` non-members allow no false positive at
            ``low_fpr`` (fewer than ``1 / low_fpr``: see :attr:`notes`).
        loss_auc: AUC of the loss alone read in the membership direction (lower loss = member),
            with nothing fitted, over the balanced groups. Unlike the fitted attack, which learns
            either direction, it falls clearly *below* 0.5 when forget samples look less like
            members than unseen ones: the tell of over-unlearning.
        low_fpr: the false-positive rate of ``tpr_at_low_fpr`` (default 1 %).
        num_members: members given.
        num_nonmembers: non-members given.
        group_size: samples used from each group after size balancing.
        class_matched: whether the groups were balanced class by class (labels given).
        n_splits: cross-validation folds.
    """

    score: float
    score_std: float
    auc: float
    auc_std: float
    tpr_at_low_fpr: float
    achieved_fpr: float
    loss_auc: float
    low_fpr: float
    num_members: int
    num_nonmembers: int
    group_size: int
    class_matched: bool
    n_splits: int

    @property
    def half_width(self) -> float:
        """95 % half-width of the score under chance: ``1.4 · 1.96·sqrt(0.25 / (2·group_size))``.

        Each of the ``2·group_size`` samples is scored once, which alone would give the binomial
        half-width; the attack is also refitted on every fold, which widens the spread: over 100
        draws of two groups from one distribution, the score's standard deviation was 1.24–1.53
        times the binomial one for 30–400 samples per group, hence :data:`CROSS_VALIDATION_INFLATION`.
        """
        return CROSS_VALIDATION_INFLATION * binomial_half_width(2 * self.group_size)

    @property
    def false_positives_allowed(self) -> int:
        """``⌊low_fpr · group_size⌋``: the false positives ``tpr_at_low_fpr``'s threshold may admit."""
        return allowed_false_positives(self.low_fpr, self.group_size)

    @property
    def notes(self) -> tuple[str, ...]:
        """What the group size cannot support: with fewer than ``1 / low_fpr`` non-members the FPR is coarse."""
        if self.false_positives_allowed > 0:
            return ()
        return (
            f"The MIA's TPR at {100 * self.low_fpr:g} % FPR is its TPR at zero false positives: {self.group_size:,}"
            f" non-members cannot measure an FPR below 1/{self.group_size:,} = {100 / self.group_size:.2f} %"
            f" (it needs at least {math.ceil(1 / self.low_fpr - 1e-9):,}).",
        )

    @property
    def loss_auc_half_width(self) -> float:
        """95 % half-width of ``loss_auc`` under chance: ``1.96·sqrt((2g + 1) / (12 g²))`` (Mann–Whitney)."""
        g = self.group_size
        return 1.96 * math.sqrt((2 * g + 1) / (12 * g * g))

    def to_dict(self) -> dict[str, Any]:
        """Every field, the false positives ``tpr_at_low_fpr`` allows, and the notes; JSON-ready."""
        return {**asdict(self), "false_positives_allowed": self.false_positives_allowed, "notes": list(self.notes)}


def _as_numpy_1d(name: str, value: Any, *, integer: bool = False) -> np.ndarray:
    if not isinstance(value, (torch.Tensor, np.ndarray)):
        raise TypeError(f"Expected `{name}` to be a tensor or numpy array, but got {type(value).__name__}.")
    array = value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else np.asarray(value)
    if array.ndim != 1:
        raise ValueError(
            f"Expected `{name}` to be one-dimensional (one value per sample), but got shape {array.shape}."
        )
    if integer:
        if not np.issubdtype(array.dtype, np.integer):
            raise TypeError(f"Expected `{name}` to hold integer class labels, but got {array.dtype}.")
        return array.astype(np.int64)
    if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
        raise TypeError(f"Expected `{name}` to hold real numbers, but got {array.dtype}.")
    return array.astype(np.float64)


def _check_finite(name: str, array: np.ndarray) -> None:
    bad = ~np.isfinite(array)
    if bad.any():
        nan = int(np.isnan(array).sum())
        raise ValueError(
            f"Expected `{name}` to be finite, but {int(bad.sum()):,} of {array.size:,} samples are not"
            f" ({nan:,} NaN, {int(bad.sum()) - nan:,} infinite)."
        )


def _group_features(prefix: str, losses: Any, confidences: Any, labels: Any) -> tuple[np.ndarray, np.ndarray | None]:
    """Validate one group's inputs; return its feature matrix and labels."""
    loss_array = _as_numpy_1d(f"{prefix}_losses", losses)
    if loss_array.size == 0:
        raise ValueError(
            f"Expected `{prefix}_losses` to be non-empty (an MIA score compares members with non-members),"
            " but got 0 samples."
        )
    _check_finite(f"{prefix}_losses", loss_array)
    columns = [loss_array]
    if confidences is not None:
        confidence_array = _as_numpy_1d(f"{prefix}_confidences", confidences)
        if confidence_array.size != loss_array.size:
            raise ValueError(
                f"Expected `{prefix}_confidences` to have one value per sample of `{prefix}_losses`"
                f" ({loss_array.size:,}), but got {confidence_array.size:,}."
            )
        _check_finite(f"{prefix}_confidences", confidence_array)
        columns.append(confidence_array)
    label_array = None
    if labels is not None:
        label_array = _as_numpy_1d(f"{prefix}_labels", labels, integer=True)
        if label_array.size != loss_array.size:
            raise ValueError(
                f"Expected `{prefix}_labels` to have one label per sample of `{prefix}_losses`"
                f" ({loss_array.size:,}), but got {label_array.size:,}."
            )
    return np.stack(columns, axis=1), label_array


def _balanced_positions(
    member_labels: np.ndarray | None,
    nonmember_labels: np.ndarray | None,
    num_members: int,
    num_nonmembers: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Choose equally many members and non-members (positions into each group, sorted).

    Without labels, the larger group is subsampled to the smaller one's size. With labels,
    every class ``c`` contributes ``min(members of c, non-members of c)`` samples to each
    group, so both groups have the same class histogram and the attack cannot win by reading
    the class instead of membership. Samples of a class the other group lacks are dropped.
    """
    if member_labels is None or nonmember_labels is None:
        size = min(num_members, num_nonmembers)
        return np.sort(rng.permutation(num_members)[:size]), np.sort(rng.permutation(num_nonmembers)[:size])
    chosen_members, chosen_nonmembers = [], []
    for label in np.union1d(member_labels, nonmember_labels):
        members_of = rng.permutation(np.flatnonzero(member_labels == label))
        nonmembers_of = rng.permutation(np.flatnonzero(nonmember_labels == label))
        count = min(len(members_of), len(nonmembers_of))
        chosen_members.append(members_of[:count])
        chosen_nonmembers.append(nonmembers_of[:count])
    return np.sort(np.concatenate(chosen_members)), np.sort(np.concatenate(chosen_nonmembers))


def allowed_false_positives(false_positive_rate: float, num_nonmembers: int) -> int:
    """``⌊rate · n⌋``, the false positives a false-positive rate of ``rate`` admits among ``n`` non-members.

    Example:
        >>> allowed_false_positives(0.01, 179), allowed_false_positives(0.01, 36), allowed_false_positives(0.01, 300)
        (1, 0, 3)
    """
    return math.floor(false_positive_rate * num_nonmembers + 1e-9)  # 0.01 · 300 must give 3, not 2


def roc_point_at(labels: ArrayLike, scores: ArrayLike, false_positive_rate: float) -> tuple[float, float]:
    """The ROC point with the highest true-positive rate whose false-positive rate is at most ``false_positive_rate``.

    A sample is called a member when its score is *above* the threshold. Of the ``n``
    non-members, ``k = ⌊rate · n⌋`` may be called members (:func:`allowed_false_positives`), so
    the threshold is the ``(k+1)``-th highest non-member score: every sample scored strictly
    above it is called a member. Ties are never split: samples with equal scores are all called
    members or all not, so a group of tied non-members that would overrun the budget is left out
    whole, with every member tied with them (the ROC curve's own corner; no interpolation, no
    random tie-breaking). The false-positive rate returned is that threshold's (the lowest
    threshold within the budget): a multiple of ``1 / n``, at most ``rate`` and possibly below it
    (ties, or ``rate · n`` not a whole number). With fewer than ``1 / rate`` non-members, ``k = 0``
    and the point is the true-positive rate at zero false positives.

    Args:
        labels: 1 (or ``True``) for members, 0 for non-members.
        scores: higher means "more likely a member", one per label.
        false_positive_rate: the budget of false positives, in [0, 1].

    Returns:
        ``(true_positive_rate, achieved_false_positive_rate)``.

    Raises:
        ValueError: a budget outside [0, 1], labels other than 0 and 1 or of a single class,
            scores not one per label, or non-finite scores.

    Example:
        >>> labels = np.array([1, 1, 1, 1, 0, 0, 0, 0])
        >>> scores = np.array([0.9, 0.8, 0.6, 0.3, 0.7, 0.6, 0.2, 0.1])
        >>> roc_point_at(labels, scores, 0.25)  # one false positive (0.7); the tie at 0.6 would add a second
        (0.5, 0.25)
    """
    if not 0.0 <= false_positive_rate <= 1.0:
        raise ValueError(f"Expected `false_positive_rate` to be in [0, 1], but got {false_positive_rate}.")
    label_array = labels.detach().cpu().numpy() if isinstance(labels, torch.Tensor) else np.asarray(labels)
    score_array = scores.detach().cpu().numpy() if isinstance(scores, torch.Tensor) else np.asarray(scores)
    label_array, score_array = label_array.reshape(-1), score_array.reshape(-1).astype(np.float64)
    if label_array.shape != score_array.shape:
        raise ValueError(f"Expected one score per label ({label_array.size:,}), but got {score_array.size:,} scores.")
    if not np.isin(label_array, (0, 1)).all():
        raise ValueError("Expected `labels` to be 1 for members and 0 for non-members, but got other values.")
    if np.unique(label_array).size != 2:
        raise ValueError("Expected `labels` to contain both members (1) and non-members (0), but got one class.")
    _check_finite("scores", score_array)
    is_member = label_array.astype(bool)
    members, nonmembers = score_array[is_member], score_array[~is_member]
    allowed = allowed_false_positives(false_positive_rate, nonmembers.size)
    if allowed >= nonmembers.size:  # every sample may be called a member
        return 1.0, 1.0
    threshold = np.sort(nonmembers)[::-1][allowed]
    return float(np.mean(members > threshold)), float(np.mean(nonmembers > threshold))


def true_positive_rate_at(labels: ArrayLike, scores: ArrayLike, false_positive_rate: float) -> float:
    """The highest true-positive rate whose false-positive rate is at most ``false_positive_rate``.

    The first value of :func:`roc_point_at` (see there for thresholds and ties).

    Args:
        labels: 1 for members, 0 for non-members.
        scores: higher means "more likely a member".
        false_positive_rate: the budget of false positives, in [0, 1].

    Raises:
        ValueError: as :func:`roc_point_at`.
    """
    return roc_point_at(labels, scores, false_positive_rate)[0]


def check_attack_settings(n_splits: int, low_fpr: float) -> None:
    """Check the settings of the MIA attack: ``n_splits`` folds (at least 2) and ``low_fpr`` in (0, 1).

    Raises:
        TypeError: ``n_splits`` is not an integer, or ``low_fpr`` not a number.
        ValueError: ``n_splits`` below 2, or ``low_fpr`` outside (0, 1).

    Example:
        >>> check_attack_settings(n_splits=1, low_fpr=0.01)
        Traceback (most recent call last):
        ...
        ValueError: Expected `n_splits` to be at least 2, but got 1.
    """
    check_integer("n_splits", n_splits, 2)
    check_in_range("low_fpr", low_fpr, 0.0, 1.0, include_low=False, include_high=False)


def check_mia_inputs(
    member_losses: ArrayLike,
    nonmember_losses: ArrayLike,
    *,
    member_confidences: ArrayLike | None = None,
    nonmember_confidences: ArrayLike | None = None,
    member_labels: ArrayLike | None = None,
    nonmember_labels: ArrayLike | None = None,
    n_splits: int = 5,
    seed: int = 0,
    low_fpr: float = 0.01,
) -> tuple[np.ndarray, np.ndarray, int, int, bool]:
    """Validate :func:`mia_score`'s inputs and build its size-balanced attack data set, without fitting.

    It raises exactly what :func:`mia_score` raises for the same arguments (``mia_score`` calls
    it first). Under DDP the ranks that do not fit the attack call it on the same gathered
    data, so a bad input fails on every rank instead of leaving them waiting for a broadcast.

    Returns:
        ``(features, is_member, num_members, num_nonmembers, class_matched)``; members first.

    Raises:
        TypeError, ValueError: see :func:`mia_score`.
    """
    check_attack_settings(n_splits, low_fpr)
    for kind, member_value, nonmember_value in (
        ("confidences", member_confidences, nonmember_confidences),
        ("labels", member_labels, nonmember_labels),
    ):
        if (member_value is None) != (nonmember_value is None):
            given = "member" if member_value is not None else "nonmember"
            raise ValueError(
                f"Expected `member_{kind}` and `nonmember_{kind}` to be given together, but got only `{given}_{kind}`."
            )

    member_features, member_label_array = _group_features("member", member_losses, member_confidences, member_labels)
    nonmember_features, nonmember_label_array = _group_features(
        "nonmember", nonmember_losses, nonmember_confidences, nonmember_labels
    )
    rng = np.random.default_rng(seed)
    member_positions, nonmember_positions = _balanced_positions(
        member_label_array, nonmember_label_array, len(member_features), len(nonmember_features), rng
    )
    group_size = len(member_positions)
    if group_size < n_splits:
        matching = (
            " after class matching (pass no labels to balance without it)" if member_label_array is not None else ""
        )
        raise ValueError(
            f"Expected at least `n_splits` = {n_splits} samples in each balanced group, but got {group_size}{matching}."
        )
    features = np.concatenate([member_features[member_positions], nonmember_features[nonmember_positions]])
    is_member = np.concatenate([np.ones(group_size, dtype=np.int64), np.zeros(group_size, dtype=np.int64)])
    return features, is_member, len(member_features), len(nonmember_features), member_label_array is not None


def mia_score(
    member_losses: ArrayLike,
    nonmember_losses: ArrayLike,
    *,
    member_confidences: ArrayLike | None = None,
    nonmember_confidences: ArrayLike | None = None,
    member_labels: ArrayLike | None = None,
    nonmember_labels: ArrayLike | None = None,
    n_splits: int = 5,
    seed: int = 0,
    low_fpr: float = 0.01,
) -> MIAScoreResult:
    """The membership-inference score of the FNN paper and the NeurIPS 2023 unlearning challenge.

    A logistic regression (on standardised features) is trained to tell members from
    non-members by their per-sample loss, and by their logit-scaled confidence when given.
    The groups are first made equally large by seeded subsampling; where ``*_labels`` are
    given, class by class (each class keeps as many samples in both groups as the smaller
    group has of it), so the attack cannot win by predicting the larger group or by reading
    the class instead of membership. Its accuracy on held-out folds of a stratified
    k-fold split (seeded) is the MIA score: 0.5 means members are indistinguishable from
    non-members, 1 means every member is recognised.

    The true-positive rate at ``low_fpr`` is read once, not per fold: every sample's member
    probability comes from the fold's attack that did not train on it (out-of-fold), and one
    threshold is set over all ``group_size`` non-members (:func:`roc_point_at`). Per fold, a
    fifth of the non-members cannot place a 1 % threshold (36 non-members allow no false
    positive, an FPR step of 2.8 %). The FPR the threshold achieves is in ``achieved_fpr``.

    For an unlearning evaluation the members are the forget samples and the non-members are
    the ``heldout`` split, never the ID test set when the forget set is OOD (see the module
    docstring: that comparison measures distribution shift and inverts the verdict).

    Args:
        member_losses: per-sample loss of the members (the forget set).
        nonmember_losses: per-sample loss of the non-members (``heldout``).
        member_confidences: optional logit-scaled confidences of the members, ``log(p/(1−p))``
            of the label's probability (see :func:`membership_features`).
        nonmember_confidences: the same for the non-members; required with ``member_confidences``.
        member_labels: optional class labels of the members, for class-matched balancing.
        nonmember_labels: the same for the non-members.
        n_splits: cross-validation folds, at least 2.
        seed: seeds the subsampling and the fold assignment.
        low_fpr: the false-positive rate at which the true-positive rate is reported.

    Returns:
        An :class:`MIAScoreResult` with the mean and standard deviation over folds of accuracy
        and AUC, the pooled TPR at ``low_fpr`` with the FPR it achieves, and the group sizes.

    Raises:
        TypeError: inputs that are not tensors/arrays, or labels that are not integers.
        ValueError: an empty group, inputs of mismatched lengths, non-finite losses (the
            message counts them), confidences or labels given for one group only, or fewer
            balanced samples per group than ``n_splits``.

    Example:
        >>> members = torch.linspace(0.0, 0.1, 50)  # low loss: memorised
        >>> nonmembers = torch.linspace(2.0, 3.0, 50)
        >>> mia_score(members, nonmembers).score
        1.0
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    features, is_member, num_members, num_nonmembers, matched = check_mia_inputs(
        member_losses,
        nonmember_losses,
        member_confidences=member_confidences,
        nonmember_confidences=nonmember_confidences,
        member_labels=member_labels,
        nonmember_labels=nonmember_labels,
        n_splits=n_splits,
        seed=seed,
        low_fpr=low_fpr,
    )
    group_size = len(is_member) // 2

    accuracies, aucs = [], []
    out_of_fold = np.empty(len(is_member), dtype=np.float64)  # each sample's score from the attack that never saw it
    folds = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    for train_positions, test_positions in folds.split(features, is_member):
        attack = make_pipeline(StandardScaler(), LogisticRegression())
        attack.fit(features[train_positions], is_member[train_positions])
        member_probability = attack.predict_proba(features[test_positions])[:, 1]
        truth = is_member[test_positions]
        accuracies.append(float(np.mean((member_probability >= 0.5) == truth)))
        aucs.append(float(roc_auc_score(truth, member_probability)))
        out_of_fold[test_positions] = member_probability
    # A fold holds 1/n_splits of the non-members (36 of 179 on digits): too few for a 1 % threshold.
    tpr_at_low_fpr, achieved_fpr = roc_point_at(is_member, out_of_fold, low_fpr)

    return MIAScoreResult(
        score=float(np.mean(accuracies)),
        score_std=float(np.std(accuracies)),
        auc=float(np.mean(aucs)),
        auc_std=float(np.std(aucs)),
        tpr_at_low_fpr=tpr_at_low_fpr,
        achieved_fpr=achieved_fpr,
        loss_auc=float(roc_auc_score(is_member, -features[:, 0])),
        low_fpr=low_fpr,
        num_members=num_members,
        num_nonmembers=num_nonmembers,
        group_size=group_size,
        class_matched=matched,
        n_splits=n_splits,
    )


def membership_features(
    logits: torch.Tensor, targets: torch.Tensor, clip: float = CONFIDENCE_CLIP
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample cross-entropy loss and logit-scaled confidence of the label.

    The confidence is ``log(p / (1 − p))`` for ``p`` the softmax probability of the sample's
    label, computed stably as ``z_y − logsumexp(z_j, j ≠ y)`` and clipped to ``[−clip, clip]``
    (a memorised sample's ``p`` rounds to 1 in float32, where the naive formula is infinite).

    Args:
        logits: ``(n, num_classes)`` model outputs.
        targets: ``(n,)`` integer labels.
        clip: bound of the logit-scaled confidence.

    Returns:
        ``(losses, confidences)``, two float64 tensors of shape ``(n,)``.

    Raises:
        TypeError: ``targets`` not integer.
        ValueError: shapes that do not fit together, labels outside the classes, or fewer
            than two classes (``1 − p`` is then always 0).

    Example:
        >>> losses, confidences = membership_features(torch.tensor([[2.0, 0.0]]), torch.tensor([0]))
        >>> round(confidences.item(), 3)  # log(e^2 / e^0)
        2.0
    """
    if not isinstance(logits, torch.Tensor) or not isinstance(targets, torch.Tensor):
        raise TypeError(
            f"Expected `logits` and `targets` to be tensors, but got {type(logits).__name__} and"
            f" {type(targets).__name__}."
        )
    if logits.ndim != 2:
        raise ValueError(f"Expected `logits` of shape (n, num_classes), but got shape {tuple(logits.shape)}.")
    if logits.shape[1] < 2:
        raise ValueError(f"Expected `logits` with at least 2 classes, but got {logits.shape[1]}.")
    if targets.is_floating_point() or targets.dtype == torch.bool:
        raise TypeError(f"Expected `targets` to hold integer labels, but got {targets.dtype}.")
    if targets.shape != (logits.shape[0],):
        raise ValueError(
            f"Expected one label per row of `logits` ({logits.shape[0]:,}), but got `targets` of shape"
            f" {tuple(targets.shape)}."
        )
    if targets.numel() and (int(targets.min()) < 0 or int(targets.max()) >= logits.shape[1]):
        raise ValueError(
            f"Expected `targets` in 0–{logits.shape[1] - 1} (the logits' classes), but got values from"
            f" {int(targets.min())} to {int(targets.max())}."
        )
    z = logits.detach().to(torch.float64)
    y = targets.detach().to(torch.long).unsqueeze(1)
    label_logit = z.gather(1, y).squeeze(1)
    losses = torch.logsumexp(z, dim=1) - label_logit
    others = z.scatter(1, y, float("-inf"))
    confidences = (label_logit - torch.logsumexp(others, dim=1)).clamp(-clip, clip)
    return losses, confidences


def mia_score_from_logits(
    member_logits: torch.Tensor,
    member_targets: torch.Tensor,
    nonmember_logits: torch.Tensor,
    nonmember_targets: torch.Tensor,
    *,
    use_confidence: bool = True,
    class_matched: bool = True,
    n_splits: int = 5,
    seed: int = 0,
    low_fpr: float = 0.01,
) -> MIAScoreResult:
    """:func:`mia_score` on the features :func:`membership_features` computes from logits.

    Args:
        member_logits: ``(n, num_classes)`` logits of the members (the forget set).
        member_targets: their labels.
        nonmember_logits: logits of the non-members (``heldout``).
        nonmember_targets: their labels.
        use_confidence: add the logit-scaled confidence to the loss as a feature.
        class_matched: balance the groups class by class, using the targets.
        n_splits: cross-validation folds.
        seed: seeds subsampling and folds.
        low_fpr: false-positive rate of the reported true-positive rate.

    Raises:
        TypeError, ValueError: as :func:`membership_features` and :func:`mia_score`.
    """
    member_losses, member_confidences = membership_features(member_logits, member_targets)
    nonmember_losses, nonmember_confidences = membership_features(nonmember_logits, nonmember_targets)
    return mia_score(
        member_losses,
        nonmember_losses,
        member_confidences=member_confidences if use_confidence else None,
        nonmember_confidences=nonmember_confidences if use_confidence else None,
        member_labels=member_targets if class_matched else None,
        nonmember_labels=nonmember_targets if class_matched else None,
        n_splits=n_splits,
        seed=seed,
        low_fpr=low_fpr,
    )
