"""Evaluation that tells whether forgetting happened (the method: docs/evaluation.md).

* :mod:`~lightning_unlearn.metrics.functional` — the maths as pure functions: FR, CFR, MIA score.
* :mod:`~lightning_unlearn.metrics.oracle` — the shadow-model membership oracle (Forsaken §V-A).
* :mod:`~lightning_unlearn.metrics.classes` — torchmetrics classes, correct under DDP.
* :mod:`~lightning_unlearn.metrics.report` — original vs unlearned vs retrained, side by side.
* :mod:`~lightning_unlearn.metrics.lira`, :mod:`~lightning_unlearn.metrics.lira_references`,
  :mod:`~lightning_unlearn.metrics.lira_score` — LiRA, the per-example attack (Carlini et al. 2022).
"""

from lightning_unlearn.metrics.classes import CatastrophicForgettingRate, ForgettingRate, MIAScore
from lightning_unlearn.metrics.functional import (
    MIAScoreResult,
    binomial_half_width,
    catastrophic_forgetting_rate,
    catastrophic_forgetting_rate_from_membership,
    forgetting_rate,
    forgetting_rate_from_membership,
    membership_counts,
    membership_features,
    mia_score,
    mia_score_from_logits,
)
from lightning_unlearn.metrics.lira import (
    LiRAReferenceStatistics,
    LiRAResult,
    fit_lira_gaussians,
    lira_attack,
    lira_attack_from_logits,
    lira_scores,
)
from lightning_unlearn.metrics.lira_references import lira_references, train_lira_references
from lightning_unlearn.metrics.lira_score import LiRAScore
from lightning_unlearn.metrics.oracle import (
    ForgettingRateResult,
    MembershipQuality,
    OracleNearChanceWarning,
    OracleQualityReport,
    ShadowModelOracle,
    attack_features,
    chance_margin,
    membership_quality,
)
from lightning_unlearn.metrics.report import COLUMN_DEFINITIONS, ModelEvaluation, UnlearningReport
from lightning_unlearn.metrics.verdict import (
    VERDICT_RULE,
    VERDICTS,
    MembershipVerdict,
    comparison_band,
    membership_verdict,
)

__all__ = [
    "COLUMN_DEFINITIONS",
    "VERDICTS",
    "VERDICT_RULE",
    "CatastrophicForgettingRate",
    "ForgettingRate",
    "ForgettingRateResult",
    "LiRAReferenceStatistics",
    "LiRAResult",
    "LiRAScore",
    "MIAScore",
    "MIAScoreResult",
    "MembershipQuality",
    "MembershipVerdict",
    "ModelEvaluation",
    "OracleNearChanceWarning",
    "OracleQualityReport",
    "ShadowModelOracle",
    "UnlearningReport",
    "attack_features",
    "binomial_half_width",
    "catastrophic_forgetting_rate",
    "catastrophic_forgetting_rate_from_membership",
    "chance_margin",
    "comparison_band",
    "fit_lira_gaussians",
    "forgetting_rate",
    "forgetting_rate_from_membership",
    "lira_attack",
    "lira_attack_from_logits",
    "lira_references",
    "lira_scores",
    "membership_counts",
    "membership_features",
    "membership_quality",
    "membership_verdict",
    "mia_score",
    "mia_score_from_logits",
    "train_lira_references",
]
