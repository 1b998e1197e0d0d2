"""The verdicts on hand-built losses: each of the three situations, the disagreements, and the FR rule."""

from __future__ import annotations

import math

import pytest
import torch

from lightning_unlearn.metrics import MIAScoreResult, comparison_band, membership_verdict, mia_score

GROUP = 200


def _uniform(low: float, high: float, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return low + (high - low) * torch.rand(GROUP, generator=generator)


#: Per-sample losses of unseen samples (the heldout split) under every model.
UNSEEN = _uniform(1.0, 3.0, seed=0)


def _attack(forget_losses: torch.Tensor) -> MIAScoreResult:
    return mia_score(forget_losses, UNSEEN, seed=0)


@pytest.fixture(scope="module")
def retrained() -> MIAScoreResult:
    """A retrained model: its forget losses come from the unseen samples' own distribution."""
    return _attack(_uniform(1.0, 3.0, seed=1))


def test_forget_losses_far_below_unseen_ones_are_under_forgotten(retrained: MIAScoreResult) -> None:
    remembered = _attack(UNSEEN - 1.0)
    assert remembered.loss_auc > 0.5  # forget losses below the unseen ones'
    verdict = membership_verdict(remembered, retrained)
    assert verdict.label == "under-forgotten"
    assert verdict.attack == "under" and verdict.oracle == "unavailable"
    assert verdict.mia_difference > verdict.mia_band
    assert "forget losses are below the unseen ones'" in verdict.explanation


def test_forget_losses_like_unseen_ones_match_retraining(retrained: MIAScoreResult) -> None:
    like_unseen = _attack(_uniform(1.0, 3.0, seed=2))
    verdict = membership_verdict(like_unseen, retrained)
    assert verdict.label == "matches retraining"
    assert abs(verdict.mia_difference) <= verdict.mia_band


def test_forget_losses_far_above_unseen_ones_are_over_forgotten(retrained: MIAScoreResult) -> None:
    pushed = _attack(UNSEEN + 1.0)
    # The fitted attack separates just as well as for the remembered case: only the direction differs.
    assert pushed.score > 0.6 and pushed.loss_auc < 0.5
    verdict = membership_verdict(pushed, retrained)
    assert verdict.label == "over-forgotten"
    assert "forget losses are *above* the unseen ones'" in verdict.explanation


def test_a_score_below_the_retrained_one_is_noise_not_over_forgetting() -> None:
    retrained_high = MIAScoreResult(0.56, 0.02, 0.55, 0.02, 0.02, 0.01, 0.52, 0.01, GROUP, GROUP, GROUP, False, 5)
    below = MIAScoreResult(0.41, 0.03, 0.40, 0.03, 0.0, 0.0, 0.49, 0.01, GROUP, GROUP, GROUP, False, 5)
    verdict = membership_verdict(below, retrained_high)
    assert verdict.label == "matches retraining"
    assert "found less" in verdict.explanation


def test_the_oracle_calling_samples_forgotten_while_the_attack_separates_them_is_a_disagreement(
    retrained: MIAScoreResult,
) -> None:
    remembered = _attack(UNSEEN - 1.0)
    # The README's old Forsaken row: FR above the retrained model's, yet the attack still separates.
    verdict = membership_verdict(
        remembered, retrained, forgetting_rate=0.99, retrained_forgetting_rate=0.80, bt=170
    )
    assert verdict.oracle == "above"
    assert verdict.label == "oracle and attack disagree"
    assert "the oracle's FR 0.990 is above the retrained model's 0.800" in verdict.explanation
    # The oracle agreeing (FR well below retraining's) makes it plainly under-forgotten.
    agreeing = membership_verdict(remembered, retrained, forgetting_rate=0.1, retrained_forgetting_rate=0.87, bt=170)
    assert agreeing.label == "under-forgotten"


def test_fr_clearly_above_retraining_is_over_forgotten_only_when_the_loss_direction_agrees(
    retrained: MIAScoreResult,
) -> None:
    # Hand-built results whose MIA matches the retrained model's; only the loss AUC differs.
    matching = dict(score=retrained.score, score_std=0.02, auc=0.5, auc_std=0.02, tpr_at_low_fpr=0.01)
    common = dict(achieved_fpr=0.0, low_fpr=0.01, num_members=GROUP, num_nonmembers=GROUP)
    sizes = dict(group_size=GROUP, class_matched=False, n_splits=5)
    pushed = MIAScoreResult(**matching, **common, loss_auc=0.40, **sizes)  # type: ignore[arg-type]
    neutral = MIAScoreResult(**matching, **common, loss_auc=0.50, **sizes)  # type: ignore[arg-type]
    assert pushed.loss_auc < 0.5 - pushed.loss_auc_half_width
    oracle = dict(forgetting_rate=0.99, retrained_forgetting_rate=0.80, bt=170)
    assert membership_verdict(pushed, retrained, **oracle).label == "over-forgotten"  # type: ignore[arg-type]
    assert membership_verdict(neutral, retrained, **oracle).label == "oracle and attack disagree"  # type: ignore[arg-type]


def test_an_unreliable_oracle_leaves_the_attack_to_decide(retrained: MIAScoreResult) -> None:
    like_unseen = _attack(_uniform(1.0, 3.0, seed=3))
    verdict = membership_verdict(
        like_unseen, retrained, forgetting_rate=0.0, retrained_forgetting_rate=0.9, bt=170, oracle_reliable=False
    )
    assert verdict.oracle == "unavailable" and math.isnan(verdict.fr_band)
    assert verdict.label == "matches retraining"


def test_the_band_adds_the_two_noises() -> None:
    assert comparison_band(0.03, 0.04) == pytest.approx(0.05)
    result = _attack(UNSEEN)
    assert membership_verdict(result, result).mia_band == pytest.approx(math.sqrt(2) * result.half_width)


def test_bad_input_is_named() -> None:
    with pytest.raises(TypeError, match=r"Expected `candidate_mia` to be an MIAScoreResult, but got float."):
        membership_verdict(0.5, _attack(UNSEEN))  # type: ignore[arg-type]
