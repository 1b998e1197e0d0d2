"""``LiRAScore``: LiRA (Carlini et al. 2022) on a model under test as a DDP-correct torchmetric.

The reference statistics are computed once, before any model is scored
(:func:`~lightning_unlearn.metrics.lira_references.lira_references`); scoring a model is then one
forward pass over the members and non-members it is fed, so the attack can run after every
validation epoch (:class:`~lightning_unlearn.callbacks.MembershipInferenceCallback`, ``lira=``).
The maths lives in :mod:`lightning_unlearn.metrics.lira`.
"""

from __future__ import annotations

from typing import Any, get_args

import torch

from lightning_unlearn.checks import check_choice
from lightning_unlearn.metrics.classes import MembershipMetric
from lightning_unlearn.metrics.functional import membership_features
from lightning_unlearn.metrics.lira import (
    LiRAGaussians,
    LiRAReferenceStatistics,
    LiRAResult,
    LiRAVariant,
    VarianceMode,
    lira_result,
    lira_scores,
)

__all__ = ["LiRAScore"]


class LiRAScore(MembershipMetric):
    """LiRA's AUC on members vs non-members, from precomputed reference statistics, gathered across ranks.

    Feed it the model's logits on forget samples (``is_member=True``) and on non-members
    (``heldout`` for a report, ``validation_heldout`` for a decision; ``is_member=False``), with the
    batches' labels and global indices; every sample must be a candidate of ``statistics``.
    ``compute()`` gathers every rank's samples (list states, ``dist_reduce_fx="cat"``), drops the
    duplicates a distributed sampler adds (same global index), scores each sample against its own
    IN/OUT Gaussians and returns the AUC. Nothing is fitted on the model under test, so every rank
    computes the same value from the same gathered samples, with no broadcast. The full
    :class:`~lightning_unlearn.metrics.lira.LiRAResult` (TPR at 1 % and 0.1 % FPR, per-sample
    scores) is then in :attr:`result`.

    Neither higher nor lower is better (``higher_is_better = None``): the target is the retrained
    model's value, about 0.5.

    Args:
        statistics: the reference models' confidences on the candidates.
        variant: ``"online"`` (likelihood ratio IN vs OUT) or ``"offline"`` (one-sided OUT test).
        variance: ``"auto"``, ``"global"`` or ``"per_candidate"`` variances of the Gaussians.
        **kwargs: ``torchmetrics.Metric`` options.

    Raises:
        TypeError: ``statistics`` that are not :class:`~lightning_unlearn.metrics.lira.LiRAReferenceStatistics`.
        ValueError: an unknown ``variant`` or ``variance``, or statistics the Gaussians cannot be fitted to.

    Example:
        >>> from lightning_unlearn.metrics.lira import LiRAReferenceStatistics
        >>> is_in = torch.tensor([[True, False], [True, False], [False, True], [False, True]]).repeat(1, 2)
        >>> statistics = LiRAReferenceStatistics(  # candidates 10, 11, 12, 13: IN ≈ +4, OUT ≈ −4
        ...     indices=torch.tensor([10, 11, 12, 13]), labels=torch.zeros(4, dtype=torch.long),
        ...     confidences=torch.where(is_in, 4.0, -4.0).double() + torch.tensor([[0.5], [-0.5], [0.3], [-0.3]]),
        ...     is_in=is_in, model_seeds=(1, 2, 3, 4), seconds=(0.1,) * 4,
        ... )
        >>> metric = LiRAScore(statistics)
        >>> confident, unsure = torch.tensor([[5.0, 0.0]] * 2), torch.tensor([[-3.0, 0.0]] * 2)
        >>> labels = torch.zeros(2, dtype=torch.long)
        >>> metric.update(confident, labels, torch.tensor([10, 11]), is_member=True)
        >>> metric.update(unsure, labels, torch.tensor([12, 13]), is_member=False)
        >>> metric.compute(), metric.result.tpr_at_1pct_fpr
        (tensor(1., dtype=torch.float64), 1.0)
    """

    feature_names = ("confidences",)
    result: LiRAResult | None

    def __init__(
        self,
        statistics: LiRAReferenceStatistics,
        variant: LiRAVariant = "online",
        variance: VarianceMode = "auto",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if not isinstance(statistics, LiRAReferenceStatistics):
            raise TypeError(
                f"Expected `statistics` to be LiRAReferenceStatistics, but got {type(statistics).__name__}."
            )
        check_choice("variant", variant, get_args(LiRAVariant))
        self.statistics = statistics
        self.variant: LiRAVariant = variant
        self.gaussians: LiRAGaussians = statistics.gaussians(variance)  # fitted once, read every epoch

    def features(self, logits: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The logit-scaled confidence of each sample's label, the statistic LiRA's Gaussians describe."""
        _, confidences = membership_features(logits, targets)
        return (confidences,)

    def compute(self) -> torch.Tensor:
        """LiRA's AUC over the de-duplicated samples of every rank (also sets :attr:`result`).

        Raises:
            ValueError: only members or only non-members were given, a sample that is not a
                candidate of the statistics, or a label that differs from the candidate's.
        """
        indices, confidences, labels, flags = (values.cpu() for values in self.gathered())
        groups = []
        for name, chosen in (("member", flags), ("nonmember", ~flags)):
            positions = self.statistics.positions(indices[chosen], labels[chosen], name=f"{name} indices")
            scores = lira_scores(confidences[chosen], self.gaussians.select(positions), self.variant)
            groups.append((scores, indices[chosen]))
        (member_scores, member_indices), (nonmember_scores, nonmember_indices) = groups
        self.result = lira_result(
            member_scores,
            nonmember_scores,
            member_indices,
            nonmember_indices,
            variant=self.variant,
            global_variance=self.gaussians.global_variance,
            num_models=self.statistics.num_models,
        )
        return torch.tensor(self.result.auc, dtype=torch.float64)
