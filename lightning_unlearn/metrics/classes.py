"""Unlearning metrics as ``torchmetrics.Metric`` classes, correct under DDP.

Each class only holds state: per-sample values and the samples' *global* indices (the third
field of every :class:`~lightning_unlearn.datamodules.IndexedBatch`), in list states that
torchmetrics concatenates across ranks (``dist_reduce_fx="cat"``). At ``compute()`` every
class drops the duplicates a ``DistributedSampler`` adds to even out the ranks (same global
index: the first occurrence is kept; a duplicate carries the same values anyway) and sorts the
samples by global index, so the value cannot depend on how the samples were spread over
ranks. The maths lives in :mod:`lightning_unlearn.metrics.functional`.

:class:`MIAScore` fits an attack, so it fits once, on rank 0, and broadcasts the scalars
(``torch.distributed.broadcast``); the other ranks validate the same gathered inputs first,
so a bad input raises everywhere instead of leaving ranks waiting.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat

from lightning_unlearn.metrics.functional import (
    MIAScoreResult,
    catastrophic_forgetting_rate_from_membership,
    check_attack_settings,
    check_mia_inputs,
    forgetting_rate_from_membership,
    membership_features,
    mia_score,
)

__all__ = [
    "CatastrophicForgettingRate",
    "ForgettingRate",
    "MIAScore",
    "MembershipMetric",
    "checked_membership_batch",
    "require_both_groups",
    "unique_by_index",
]


def unique_by_index(indices: torch.Tensor, *values: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Keep the first occurrence of every global index, ordered by index.

    Args:
        indices: ``(n,)`` global sample indices, possibly repeated.
        *values: tensors whose first dimension is aligned with ``indices``.

    Returns:
        ``(unique_indices, *values_at_those_samples)``.
    """
    index_array = indices.detach().cpu().numpy()
    _, first_positions = np.unique(index_array, return_index=True)  # sorted by index, first occurrence
    keep = torch.from_numpy(first_positions).to(indices.device)
    return (indices[keep], *(value[keep] for value in values))


def _check_aligned(name: str, value: torch.Tensor, indices: torch.Tensor) -> None:
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"Expected `{name}` to be a tensor, but got {type(value).__name__}.")
    if value.shape[0] != indices.shape[0]:
        raise ValueError(
            f"Expected `{name}` to hold one entry per global index ({indices.shape[0]:,}), but got {value.shape[0]:,}."
        )


def _check_indices(indices: torch.Tensor) -> None:
    if not isinstance(indices, torch.Tensor):
        raise TypeError(
            f"Expected `indices` to be a tensor of global sample indices, but got {type(indices).__name__}."
        )
    if indices.ndim != 1 or indices.is_floating_point() or indices.dtype == torch.bool:
        raise ValueError(
            f"Expected `indices` to be a 1-D integer tensor of global sample indices, but got dtype {indices.dtype}"
            f" and shape {tuple(indices.shape)}."
        )


def checked_membership_batch(
    logits: torch.Tensor, targets: torch.Tensor, indices: torch.Tensor, is_member: bool | torch.Tensor
) -> torch.Tensor:
    """Check one batch of a membership metric's ``update`` and return its per-sample member flags.

    Args:
        logits: ``(n, num_classes)`` outputs of the model under test.
        targets: ``(n,)`` labels the samples carry.
        indices: ``(n,)`` global indices (to drop the duplicates a distributed sampler adds).
        is_member: one flag for the whole batch, or a per-sample bool tensor.

    Returns:
        A ``(n,)`` bool tensor on the indices' device.

    Raises:
        TypeError: non-tensor inputs, or a membership flag that is not boolean.
        ValueError: inputs of different lengths.
    """
    _check_indices(indices)
    _check_aligned("logits", logits, indices)
    _check_aligned("targets", targets, indices)
    if isinstance(is_member, bool):
        return torch.full((indices.shape[0],), is_member, dtype=torch.bool, device=indices.device)
    if isinstance(is_member, torch.Tensor) and is_member.dtype == torch.bool:
        flags = is_member.reshape(-1)
        _check_aligned("is_member", flags, indices)
        return flags
    raise TypeError(f"Expected `is_member` to be a bool or a torch.bool tensor, but got {type(is_member).__name__}.")


def require_both_groups(flags: torch.Tensor) -> None:
    """Refuse gathered membership flags that hold only members or only non-members.

    Raises:
        ValueError: every flag is the same.
    """
    num_members = int(flags.sum())
    if num_members == 0 or num_members == flags.numel():
        group = "members" if num_members else "non-members"
        raise ValueError(
            f"Expected both member and non-member samples, but got only {group} ({flags.numel():,} samples)."
        )


def _check_decisions(name: str, value: torch.Tensor, indices: torch.Tensor) -> None:
    _check_aligned(name, value, indices)
    if value.dtype != torch.bool:
        raise TypeError(f"Expected `{name}` to be a torch.bool tensor of membership decisions, but got {value.dtype}.")


class _MembershipChange(Metric):
    """Shared state of FR and CFR: the oracle's decisions before and after unlearning, per sample."""

    is_differentiable = False
    full_state_update = False
    #: The rate a subclass computes from the decisions before and after, such as FR.
    rate_from_membership: Callable[[torch.Tensor, torch.Tensor], float]

    before: list[torch.Tensor]
    after: list[torch.Tensor]
    indices: list[torch.Tensor]

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.add_state("before", default=[], dist_reduce_fx="cat")
        self.add_state("after", default=[], dist_reduce_fx="cat")
        self.add_state("indices", default=[], dist_reduce_fx="cat")

    def update(self, before: torch.Tensor, after: torch.Tensor, indices: torch.Tensor) -> None:
        """Add the oracle's decisions on a batch of samples.

        Args:
            before: ``True`` where the oracle calls the sample a member of the original model.
            after: the same for the unlearned model.
            indices: the samples' global indices (``IndexedBatch.indices``).

        Raises:
            TypeError: decisions that are not ``torch.bool``, or non-tensor inputs.
            ValueError: inputs of different lengths, or indices that are not a 1-D integer tensor.
        """
        _check_indices(indices)
        _check_decisions("before", before, indices)
        _check_decisions("after", after, indices)
        # uint8, not bool: gloo cannot gather bool tensors.
        self.before.append(before.reshape(-1).to(torch.uint8))
        self.after.append(after.reshape(-1).to(torch.uint8))
        self.indices.append(indices.to(torch.long))

    def compute(self) -> torch.Tensor:
        """The rate (:attr:`rate_from_membership`) over the de-duplicated samples of every rank.

        Raises:
            ValueError: no sample was given.
        """
        if isinstance(self.indices, list) and not self.indices:
            before, after = torch.empty(0, dtype=torch.bool), torch.empty(0, dtype=torch.bool)
        else:
            _, before, after = unique_by_index(
                dim_zero_cat(self.indices), dim_zero_cat(self.before), dim_zero_cat(self.after)
            )
        return torch.tensor(self.rate_from_membership(before.bool(), after.bool()), dtype=torch.float64)


class ForgettingRate(_MembershipChange):
    """FR = (AF − BF) / BT over the forget set (Forsaken paper, Eq. 2), gathered across ranks.

    ``update()`` takes the membership oracle's *decisions* (not the models), so the metric
    needs no oracle of its own and works with any oracle: ask the oracle about the original
    and the unlearned model on the same forget batch, and pass both answers with the batch's
    global indices. NaN when the oracle saw no member before unlearning (BT = 0).

    Example:
        >>> metric = ForgettingRate()
        >>> before, after = torch.tensor([True, True, False]), torch.tensor([False, True, False])
        >>> metric.update(before, after, indices=torch.tensor([4, 7, 9]))
        >>> metric.compute()
        tensor(0.5000, dtype=torch.float64)
    """

    higher_is_better = True
    rate_from_membership = staticmethod(forgetting_rate_from_membership)


class CatastrophicForgettingRate(_MembershipChange):
    """CFR = (BT.train − AT.train) / BT.train over retained training data (Forsaken Eq. 10).

    ``update(before, after, indices)`` as :class:`ForgettingRate`, on retained samples. Lower is
    better; NaN when no retained sample was a member before unlearning.
    """

    higher_is_better = False
    rate_from_membership = staticmethod(catastrophic_forgetting_rate_from_membership)


class MembershipMetric(Metric):
    """Base of the membership attacks as torchmetrics: members' and non-members' samples, gathered across ranks.

    ``update(logits, targets, indices, is_member)`` keeps, for every sample, the features the
    attack reads (:attr:`feature_names`, computed from the logits by :meth:`features`), its label,
    its membership flag and its global index, in list states that torchmetrics concatenates
    across ranks (``dist_reduce_fx="cat"``). A subclass's ``compute()`` starts from
    :meth:`gathered` (every rank's samples, de-duplicated by global index) and leaves its full
    result in :attr:`result`, which :meth:`reset` clears.

    Neither higher nor lower is better (``higher_is_better = None``): the target is the
    retrained model's value, about 0.5.

    Args:
        **kwargs: ``torchmetrics.Metric`` options.
    """

    is_differentiable = False
    higher_is_better = None
    full_state_update = False
    #: The per-sample features :meth:`features` returns, in that order; each is a list state.
    feature_names: tuple[str, ...] = ()

    labels: list[torch.Tensor]
    is_member: list[torch.Tensor]
    indices: list[torch.Tensor]

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.result: Any = None
        for name in (*self.feature_names, "labels", "is_member", "indices"):
            self.add_state(name, default=[], dist_reduce_fx="cat")

    def features(self, logits: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The per-sample features named by :attr:`feature_names`, from a batch's logits and labels."""
        raise NotImplementedError(f"{type(self).__name__} must say which features of the logits it keeps.")

    def reset(self) -> None:
        """Clear the gathered samples and the last :attr:`result`."""
        super().reset()
        self.result = None

    def update(
        self, logits: torch.Tensor, targets: torch.Tensor, indices: torch.Tensor, is_member: bool | torch.Tensor
    ) -> None:
        """Add a batch of members or non-members.

        Args:
            logits: ``(n, num_classes)`` model outputs.
            targets: the labels the samples carry.
            indices: their global indices.
            is_member: ``True`` for forget samples, ``False`` for non-members; or a per-sample bool tensor.

        Raises:
            TypeError: non-tensor inputs, or a membership flag that is not boolean.
            ValueError: inputs of different lengths.
        """
        flags = checked_membership_batch(logits, targets, indices, is_member)
        for name, values in zip(self.feature_names, self.features(logits, targets)):
            getattr(self, name).append(values)
        self.labels.append(targets.to(torch.long))
        self.is_member.append(flags.to(torch.uint8))  # gloo cannot gather bool tensors
        self.indices.append(indices.to(torch.long))

    def gathered(self) -> tuple[torch.Tensor, ...]:
        """``(indices, *features, labels, is_member)`` of every rank's samples, de-duplicated and sorted by index.

        Raises:
            ValueError: ``update()`` was never called, or only members or only non-members were given.
        """
        if isinstance(self.indices, list) and not self.indices:
            raise ValueError("Expected both member and non-member samples, but `update()` was never called.")
        gathered = unique_by_index(
            dim_zero_cat(self.indices),
            *(dim_zero_cat(getattr(self, name)) for name in self.feature_names),
            dim_zero_cat(self.labels),
            dim_zero_cat(self.is_member).bool(),
        )
        require_both_groups(gathered[-1])
        return gathered


class MIAScore(MembershipMetric):
    """The MIA score (FNN paper; NeurIPS 2023 unlearning challenge) as a DDP-safe torchmetric.

    Feed it the model's logits on forget samples (members, ``is_member=True``) and on
    ``heldout`` samples (non-members, ``is_member=False``), with the batches' labels and
    global indices. ``compute()`` gathers every rank's samples, drops sampler duplicates,
    fits the cross-validated logistic-regression attack of
    :func:`~lightning_unlearn.metrics.functional.mia_score` once on rank 0 and broadcasts
    the result. It returns the score (0.5 = indistinguishable); the full
    :class:`~lightning_unlearn.metrics.functional.MIAScoreResult` (AUC, TPR at 1 % FPR, group
    sizes) is then in :attr:`result` on every rank.

    Neither higher nor lower is better (``higher_is_better = None``): the target is the
    retrained model's score, about 0.5.

    Args:
        n_splits: cross-validation folds.
        seed: seeds subsampling and folds.
        use_confidence: use the logit-scaled confidence as a second feature besides the loss.
        class_matched: balance the groups class by class.
        low_fpr: false-positive rate of the reported true-positive rate.
        **kwargs: ``torchmetrics.Metric`` options.

    Example:
        >>> labels = torch.arange(100) % 2
        >>> memorised = 5.0 * torch.nn.functional.one_hot(labels, 2)  # members: sure of their label
        >>> unseen = torch.randn(100, 2, generator=torch.Generator().manual_seed(0))  # non-members: unsure
        >>> metric = MIAScore()
        >>> metric.update(memorised, labels, torch.arange(100), is_member=True)
        >>> metric.update(unseen, labels, torch.arange(100, 200), is_member=False)
        >>> metric.compute(), metric.result.auc  # the attack tells them apart: far from 0.5
        (tensor(0.9950, dtype=torch.float64), 1.0)
    """

    feature_names = ("losses", "confidences")
    result: MIAScoreResult | None

    def __init__(
        self,
        n_splits: int = 5,
        seed: int = 0,
        use_confidence: bool = True,
        class_matched: bool = True,
        low_fpr: float = 0.01,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        check_attack_settings(n_splits, low_fpr)
        self.n_splits = n_splits
        self.seed = seed
        self.use_confidence = use_confidence
        self.class_matched = class_matched
        self.low_fpr = low_fpr

    def features(self, logits: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Each sample's loss and logit-scaled confidence (see :func:`.functional.membership_features`)."""
        return membership_features(logits, targets)

    def compute(self) -> torch.Tensor:
        """The MIA score over the de-duplicated samples of every rank (also sets :attr:`result`).

        Raises:
            ValueError: only members or only non-members were given, non-finite losses, or too
                few samples for the folds (see :func:`~lightning_unlearn.metrics.functional.mia_score`).
        """
        _, losses, confidences, labels, flags = self.gathered()
        arguments: dict[str, Any] = dict(
            member_losses=losses[flags].cpu(),
            nonmember_losses=losses[~flags].cpu(),
            member_confidences=confidences[flags].cpu() if self.use_confidence else None,
            nonmember_confidences=confidences[~flags].cpu() if self.use_confidence else None,
            member_labels=labels[flags].cpu() if self.class_matched else None,
            nonmember_labels=labels[~flags].cpu() if self.class_matched else None,
            n_splits=self.n_splits,
            seed=self.seed,
            low_fpr=self.low_fpr,
        )
        distributed = torch.distributed.is_available() and torch.distributed.is_initialized()
        if not distributed or torch.distributed.get_rank() == 0:
            result = mia_score(**arguments)
        else:
            check_mia_inputs(**arguments)
            result = None
        if distributed:
            result = _broadcast_result(result, self.device)
        assert result is not None  # set on rank 0 and received everywhere else
        self.result = result
        return torch.tensor(result.score, dtype=torch.float64)


_RESULT_FLOATS = (
    "score",
    "score_std",
    "auc",
    "auc_std",
    "tpr_at_low_fpr",
    "achieved_fpr",
    "loss_auc",
    "low_fpr",
)
_RESULT_INTS = ("num_members", "num_nonmembers", "group_size", "n_splits")


def _broadcast_result(result: MIAScoreResult | None, device: torch.device) -> MIAScoreResult:
    """Send rank 0's result to every rank, packed into one float64 tensor."""
    names = (*_RESULT_FLOATS, *_RESULT_INTS, "class_matched")
    if result is None:
        packed = torch.zeros(len(names), dtype=torch.float64, device=device)
    else:
        packed = torch.tensor([float(getattr(result, name)) for name in names], dtype=torch.float64, device=device)
    torch.distributed.broadcast(packed, src=0)
    values = dict(zip(names, packed.cpu().tolist()))
    return MIAScoreResult(
        **{name: values[name] for name in _RESULT_FLOATS},
        **{name: round(values[name]) for name in _RESULT_INTS},
        class_matched=bool(values["class_matched"]),
    )
