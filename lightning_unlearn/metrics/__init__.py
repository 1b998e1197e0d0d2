"""Evaluation that tells whether forgetting happened (the method: docs/evaluation.md).

* :mod:`~lightning_unlearn.metrics.functional` — the maths as pure functions: FR, CFR, MIA score.
* :mod:`~lightning_unlearn.metrics.oracle` — the shadow-model membership oracle (Forsaken §V-A).
* :mod:`~lightning_unlearn.metrics.classes` — torchmetrics classes, correct under DDP.
* :mod:`~lightning_unlearn.metrics.report` — original vs unlearned vs retrained, side by side.
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
    "forgetting_rate",
    "forgetting_rate_from_membership",
    "membership_counts",
    "membership_features",
    "membership_quality",
    "membership_verdict",
    "mia_score",
    "mia_score_from_logits",
]
