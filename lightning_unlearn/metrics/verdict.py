"""One verdict per model: under-forgotten, matches retraining, over-forgotten — or the evidence disagrees.

The ideal of an unlearned model is the *retrained* model, not a constant, so every verdict is
a comparison with the retrained model's figures, judged against the sampling noise of the
group sizes (docs/evaluation.md, "Verdicts"). Two witnesses are read:

* **The attack** (the MIA score: a fitted, cross-validated classifier, forget vs unseen
  samples of the forget set's distribution). It learns either direction, so its score says
  *whether* the groups can be told apart, never *which way*: a score below 0.5 is noise of the
  cross-validation, not over-unlearning. The direction comes from the loss AUC, read with
  nothing fitted (above 0.5: forget losses below the unseen ones', the samples still look like
  members; below 0.5: forget losses above them, the samples look *less* like members than
  data never seen).
* **The oracle** (FR, Forsaken Eq. 2): the share of forget samples the membership oracle
  called members before and non-members after.

Readings, with ``band`` the 95 % noise band of a difference between two models' figures
(``sqrt(h_a² + h_b²)``, each ``h`` the figure's own half-width under chance):

* attack — when the MIA score is above the retrained model's by more than the band: ``under``
  if forget losses are clearly below the unseen ones' (loss AUC above 0.5 by more than its own
  noise), ``over`` if clearly above them, ``separates`` if the losses show no clear direction;
  ``matches`` otherwise;
* oracle — ``above``, ``below`` or ``matches`` the retrained model's FR by the FR band;
  ``unavailable`` when FR is undefined or the oracle is near chance on the original.

Verdicts:

* ``under-forgotten`` — the attack says under and the oracle does not say otherwise (it is
  below retraining's FR, or unavailable); or the attack separates without a direction and the
  oracle's FR is below retraining's;
* ``matches retraining`` — the attack's score is within the band of the retrained model's and
  the oracle matches too (or is unavailable);
* ``over-forgotten`` — the attack separates with forget losses above the unseen ones' (and the
  oracle does not say below); or the attack separates without a direction and the oracle's FR
  is above retraining's; or the oracle's FR is clearly above the retrained model's *while* the
  loss AUC is clearly below 0.5 (the attack agrees on the direction);
* ``oracle and attack disagree`` — any other combination: the report says in words what each
  witness says instead of flagging either way.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Literal

from lightning_unlearn.metrics.functional import MIAScoreResult, binomial_half_width

__all__ = [
    "VERDICTS",
    "VERDICT_RULE",
    "MembershipVerdict",
    "VerdictLabel",
    "comparison_band",
    "membership_verdict",
]

VerdictLabel = Literal[
    "under-forgotten", "matches retraining", "over-forgotten", "oracle and attack disagree", "reference"
]
VERDICTS: tuple[str, ...] = (
    "under-forgotten",
    "matches retraining",
    "over-forgotten",
    "oracle and attack disagree",
    "reference",
)
AttackReading = Literal["under", "matches", "over", "separates"]
OracleReading = Literal["below", "matches", "above", "unavailable"]

VERDICT_RULE = (
    "Verdicts compare each model with the retrained one. The attack (MIA, forget vs heldout) separates when"
    " its score is above the retrained model's by more than the band sqrt(h_a² + h_b²), h = 1.4·1.96·sqrt(0.25/(2g)),"
    " g the samples per balanced group; the direction comes from the loss AUC (nothing fitted): above 0.5 the forget"
    " samples still look like members, below 0.5 they look less like members than unseen data. The oracle compares"
    " FR with the retrained model's FR by the band sqrt(2)·1.96·sqrt(0.25/BT). under-forgotten: the attack separates"
    " with forget losses below heldout losses (oracle not saying otherwise); matches retraining: the MIA is within"
    " the band and the oracle agrees or is unavailable; over-forgotten: the attack separates with forget losses above"
    " heldout losses, or FR is clearly above the retrained model's while the loss AUC is clearly below 0.5; otherwise"
    " the oracle and the attack disagree, and the report says what each says. A score below 0.5 is noise of a fitted"
    " attack, never over-forgetting."
)


def comparison_band(*half_widths: float) -> float:
    """The 95 % noise band of a difference between independent figures: ``sqrt(Σ h²)``.

    Example:
        >>> round(comparison_band(0.03, 0.04), 3)
        0.05
    """
    return math.sqrt(sum(h * h for h in half_widths))


@dataclass(frozen=True)
class MembershipVerdict:
    """How one model compares with retraining, and why.

    Attributes:
        label: one of :data:`VERDICTS`.
        attack: what the attack says: ``"under"``, ``"matches"``, ``"over"`` or ``"separates"``
            (different from retraining, no clear direction in the losses).
        oracle: what the oracle says: ``"below"``, ``"matches"``, ``"above"`` or ``"unavailable"``.
        mia_difference: this model's MIA score minus the retrained model's.
        mia_band: the noise band of that difference.
        fr_difference: this model's FR minus the retrained model's (NaN when unavailable).
        fr_band: the noise band of that difference (NaN when unavailable).
        explanation: the evidence in words.
    """

    label: VerdictLabel
    attack: AttackReading
    oracle: OracleReading
    mia_difference: float
    mia_band: float
    fr_difference: float
    fr_band: float
    explanation: str

    def to_dict(self) -> dict[str, Any]:
        """Every field, JSON-ready (NaN becomes ``None``)."""
        return {key: (None if isinstance(v, float) and not math.isfinite(v) else v) for key, v in asdict(self).items()}


def _attack_reading(candidate: MIAScoreResult, retrained: MIAScoreResult) -> tuple[AttackReading, float, float]:
    band = comparison_band(candidate.half_width, retrained.half_width)
    difference = candidate.score - retrained.score
    if not difference > band:  # also False for NaN: no evidence of separation
        return "matches", difference, band
    direction = candidate.loss_auc - 0.5
    if abs(direction) <= candidate.loss_auc_half_width:
        return "separates", difference, band  # the groups differ, but not clearly by their losses
    return ("under" if direction > 0 else "over"), difference, band


def _oracle_reading(
    forgetting_rate: float, retrained_forgetting_rate: float, bt: int, reliable: bool
) -> tuple[OracleReading, float, float]:
    if not reliable or bt < 1 or not (math.isfinite(forgetting_rate) and math.isfinite(retrained_forgetting_rate)):
        return "unavailable", float("nan"), float("nan")
    band = comparison_band(binomial_half_width(bt), binomial_half_width(bt))
    difference = forgetting_rate - retrained_forgetting_rate
    if difference > band:
        return "above", difference, band
    if difference < -band:
        return "below", difference, band
    return "matches", difference, band


def membership_verdict(
    candidate_mia: MIAScoreResult,
    retrained_mia: MIAScoreResult,
    *,
    forgetting_rate: float = float("nan"),
    retrained_forgetting_rate: float = float("nan"),
    bt: int = 0,
    oracle_reliable: bool = True,
) -> MembershipVerdict:
    """Judge one model against the retrained model (see the module docstring for the rule).

    Args:
        candidate_mia: the model's MIA result (forget vs unseen samples of its distribution).
        retrained_mia: the retrained model's MIA result on the same groups.
        forgetting_rate: the model's FR (NaN when there is no oracle).
        retrained_forgetting_rate: the retrained model's FR.
        bt: forget samples the oracle called members of the original (FR's denominator).
        oracle_reliable: ``False`` when the oracle is near chance on the original.

    Returns:
        The verdict with the evidence.

    Raises:
        TypeError: an MIA result that is not an :class:`~lightning_unlearn.metrics.functional.MIAScoreResult`.

    Example:
        >>> from lightning_unlearn.metrics.functional import mia_score
        >>> import torch
        >>> unseen = torch.linspace(1.0, 3.0, 200)
        >>> remembered = mia_score(torch.linspace(0.0, 0.5, 200), unseen)  # forget losses far below
        >>> retrained = mia_score(torch.linspace(1.01, 3.01, 200), unseen)  # indistinguishable
        >>> membership_verdict(remembered, retrained).label
        'under-forgotten'
    """
    for name, value in (("candidate_mia", candidate_mia), ("retrained_mia", retrained_mia)):
        if not isinstance(value, MIAScoreResult):
            raise TypeError(f"Expected `{name}` to be an MIAScoreResult, but got {type(value).__name__}.")
    attack, mia_difference, mia_band = _attack_reading(candidate_mia, retrained_mia)
    oracle, fr_difference, fr_band = _oracle_reading(forgetting_rate, retrained_forgetting_rate, bt, oracle_reliable)
    loss_auc = candidate_mia.loss_auc
    loss_auc_clearly_low = loss_auc < 0.5 - candidate_mia.loss_auc_half_width

    versus = f"MIA {candidate_mia.score:.3f} vs the retrained model's {retrained_mia.score:.3f}, band ±{mia_band:.3f}"
    said_attack = {
        "under": (
            f"the attack still separates forget from unseen samples ({versus}) and forget losses are below the unseen"
            f" ones' (loss AUC {loss_auc:.3f})"
        ),
        "over": (
            f"the attack separates forget from unseen samples ({versus}) because forget losses are *above* the unseen"
            f" ones' (loss AUC {loss_auc:.3f})"
        ),
        "separates": (
            f"the attack separates forget from unseen samples ({versus}), but their losses show no clear direction"
            f" (loss AUC {loss_auc:.3f}, within ±{candidate_mia.loss_auc_half_width:.3f} of 0.5)"
        ),
        "matches": (
            f"the attack's MIA {candidate_mia.score:.3f} is within ±{mia_band:.3f} of the retrained model's"
            f" {retrained_mia.score:.3f}"
            if mia_difference >= -mia_band
            else f"the attack's MIA {candidate_mia.score:.3f} is below the retrained model's {retrained_mia.score:.3f}"
            " (a fitted attack that scores lower has found less, not the opposite direction)"
        ),
    }[attack]
    said_oracle = {
        "above": f"the oracle's FR {forgetting_rate:.3f} is above the retrained model's {retrained_forgetting_rate:.3f}"
        f" (band ±{fr_band:.3f})",
        "below": f"the oracle's FR {forgetting_rate:.3f} is below the retrained model's {retrained_forgetting_rate:.3f}"
        f" (band ±{fr_band:.3f})",
        "matches": f"the oracle's FR {forgetting_rate:.3f} is within ±{fr_band:.3f} of the retrained model's"
        f" {retrained_forgetting_rate:.3f}",
        "unavailable": "the oracle gives no usable FR",
    }[oracle]

    label: VerdictLabel
    if attack == "under" and oracle in ("below", "unavailable"):
        label = "under-forgotten"
    elif attack == "over" and oracle in ("above", "matches", "unavailable"):
        label = "over-forgotten"
    elif attack == "separates" and oracle in ("above", "below"):
        # The attack says "different from retraining"; the oracle says which way.
        label = "over-forgotten" if oracle == "above" else "under-forgotten"
    elif attack == "separates" and oracle == "unavailable":
        label = "under-forgotten" if loss_auc >= 0.5 else "over-forgotten"
        said_attack += "; the direction is read from the loss AUC's side of 0.5 alone"
    elif attack == "matches" and oracle == "above" and loss_auc_clearly_low:
        label = "over-forgotten"
        said_attack += f", and forget losses are above the unseen ones' (loss AUC {loss_auc:.3f})"
    elif attack == "matches" and oracle in ("matches", "unavailable"):
        label = "matches retraining"
    else:
        label = "oracle and attack disagree"
    return MembershipVerdict(
        label=label,
        attack=attack,
        oracle=oracle,
        mia_difference=mia_difference,
        mia_band=mia_band,
        fr_difference=fr_difference,
        fr_band=fr_band,
        explanation=f"{said_attack}; {said_oracle}.",
    )
