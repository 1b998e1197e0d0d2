"""The pure maths: FR, CFR, MIA score, on hand-built inputs and on the digits OOD scenario."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lightning_unlearn.inference import predict
from lightning_unlearn.metrics.functional import (
    allowed_false_positives,
    binomial_half_width,
    catastrophic_forgetting_rate,
    catastrophic_forgetting_rate_from_membership,
    check_mia_inputs,
    forgetting_rate,
    forgetting_rate_from_membership,
    membership_counts,
    membership_features,
    mia_score,
    mia_score_from_logits,
    roc_point_at,
    true_positive_rate_at,
)

# ---------------------------------------------------------------------------- FR and CFR


def test_forgetting_rate_worked_example() -> None:
    # |D| = 100, BF = 10 (so BT = 90), AF = 90  →  FR = (90 − 10) / 90.
    assert forgetting_rate(bt=90, bf=10, af=90) == 80 / 90


def test_forgetting_rate_full_none_and_negative() -> None:
    assert forgetting_rate(bt=40, bf=0, af=40) == 1.0
    assert forgetting_rate(bt=40, bf=10, af=10) == 0.0
    assert forgetting_rate(bt=50, bf=50, af=20) == pytest.approx(-0.6)


def test_forgetting_rate_is_nan_without_members_before() -> None:
    assert math.isnan(forgetting_rate(bt=0, bf=12, af=12))


def test_forgetting_rate_accepts_numpy_and_tensor_counts() -> None:
    assert forgetting_rate(np.int64(3), np.int32(1), torch.tensor(2)) == pytest.approx(1 / 3)


@pytest.mark.parametrize(
    ("arguments", "error", "message"),
    [
        ({"bt": -1, "bf": 0, "af": 0}, ValueError, r"Expected `bt` to be a non-negative integer, but got -1\."),
        ({"bt": 5, "bf": 5, "af": 11}, ValueError, r"Expected `af` to be at most bt \+ bf = 10 .*but got 11\."),
        ({"bt": 2.5, "bf": 0, "af": 0}, TypeError, r"Expected `bt` to be an integer, but got float\."),
        ({"bt": True, "bf": 0, "af": 0}, TypeError, r"Expected `bt` to be an integer, but got bool\."),
    ],
)
def test_forgetting_rate_rejects_bad_counts(arguments: dict, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        forgetting_rate(**arguments)


def test_forgetting_rate_from_membership_counts_decisions() -> None:
    before = torch.tensor([True, True, True, True, False, False])
    after = torch.tensor([False, False, True, False, False, True])
    assert membership_counts(before, after) == (4, 2, 2, 4)
    assert forgetting_rate_from_membership(before, after) == (4 - 2) / 4


def test_membership_decisions_are_validated() -> None:
    with pytest.raises(ValueError, match=r"Expected `before` and `after` to hold one decision per sample each, but"):
        membership_counts(torch.ones(3, dtype=torch.bool), torch.ones(4, dtype=torch.bool))
    with pytest.raises(TypeError, match=r"Expected `after` to be a boolean tensor of membership decisions, but got"):
        membership_counts(torch.ones(3, dtype=torch.bool), torch.ones(3))
    with pytest.raises(TypeError, match=r"Expected `before` to be a boolean tensor, but got list\."):
        membership_counts([True], torch.ones(1, dtype=torch.bool))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"Expected the forget set to be non-empty, but got 0 samples\."):
        forgetting_rate_from_membership(torch.ones(0, dtype=torch.bool), torch.ones(0, dtype=torch.bool))


def test_catastrophic_forgetting_rate() -> None:
    assert catastrophic_forgetting_rate(bt_train=200, at_train=190) == 0.05
    assert catastrophic_forgetting_rate(bt_train=200, at_train=200) == 0.0
    assert catastrophic_forgetting_rate(bt_train=100, at_train=110) == pytest.approx(-0.1)
    assert math.isnan(catastrophic_forgetting_rate(bt_train=0, at_train=3))
    before = torch.tensor([True, True, True, True, False])
    after = torch.tensor([True, False, True, True, True])
    # BT.train = 4, AT.train = 4: one member lost, one gained  →  0.
    assert catastrophic_forgetting_rate_from_membership(before, after) == 0.0
    with pytest.raises(ValueError, match=r"Expected `at_train` to be a non-negative integer, but got -2\."):
        catastrophic_forgetting_rate(bt_train=3, at_train=-2)
    with pytest.raises(ValueError, match=r"Expected the retained training data to be non-empty, but got 0 samples\."):
        catastrophic_forgetting_rate_from_membership(torch.ones(0, dtype=torch.bool), torch.ones(0, dtype=torch.bool))


def test_binomial_half_width() -> None:
    assert binomial_half_width(100) == pytest.approx(0.098)
    assert binomial_half_width(400, proportion=0.1) == pytest.approx(1.96 * 0.3 / 20)
    with pytest.raises(ValueError, match=r"Expected `n` to be at least 1, but got 0\."):
        binomial_half_width(0)


# ---------------------------------------------------------------------------- per-sample features


def test_membership_features_match_the_definitions() -> None:
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.0, 0.0, 0.0], [100.0, -100.0, 0.0]])
    targets = torch.tensor([0, 2, 1])
    losses, confidences = membership_features(logits, targets)
    expected_losses = torch.nn.functional.cross_entropy(logits.double(), targets, reduction="none")
    torch.testing.assert_close(losses, expected_losses)
    p = logits.double().softmax(1)[torch.arange(3), targets]
    assert confidences[0].item() == pytest.approx(math.log(p[0] / (1 - p[0])))
    assert confidences[1].item() == pytest.approx(math.log(0.5))  # p = 1/3
    assert confidences[2].item() == -30.0  # p ≈ e^-200: clipped, not -inf
    _, confident = membership_features(torch.tensor([[1000.0, 0.0]]), torch.tensor([0]))
    assert confident.item() == 30.0  # p rounds to 1: clipped, not +inf


def test_membership_features_reject_bad_inputs() -> None:
    with pytest.raises(ValueError, match=r"Expected one label per row of `logits` \(3\), but got `targets` of shape"):
        membership_features(torch.zeros(3, 4), torch.zeros(2, dtype=torch.long))
    with pytest.raises(TypeError, match=r"Expected `targets` to hold integer labels, but got torch.float32\."):
        membership_features(torch.zeros(3, 4), torch.zeros(3))
    with pytest.raises(
        ValueError, match=r"Expected `targets` in 0–3 \(the logits' classes\), but got values from 0 to 7"
    ):
        membership_features(torch.zeros(2, 4), torch.tensor([0, 7]))


# ---------------------------------------------------------------------------- MIA score


def test_mia_score_on_separable_losses_is_perfect() -> None:
    generator = torch.Generator().manual_seed(0)
    members = torch.rand(100, generator=generator) * 0.1
    nonmembers = 1.0 + torch.rand(100, generator=generator)
    result = mia_score(members, nonmembers)
    assert result.score == 1.0
    assert result.auc == pytest.approx(1.0)
    assert result.tpr_at_low_fpr == 1.0
    assert (result.num_members, result.num_nonmembers, result.group_size, result.n_splits) == (100, 100, 100, 5)


def test_mia_score_on_identical_distributions_is_chance() -> None:
    rng = np.random.default_rng(1)
    members, nonmembers = rng.exponential(size=1500), rng.exponential(size=1500)
    result = mia_score(members, nonmembers, seed=3)
    tolerance = 3 * 0.5 / math.sqrt(2 * result.group_size)  # three binomial standard errors
    assert abs(result.score - 0.5) < tolerance
    assert abs(result.auc - 0.5) < tolerance
    assert result.half_width == pytest.approx(1.4 * 0.98 / math.sqrt(3000))


def test_mia_score_is_reproducible_from_its_seed() -> None:
    rng = np.random.default_rng(2)
    members, nonmembers = rng.normal(0.0, 1.0, 300), rng.normal(0.4, 1.0, 250)
    assert mia_score(members, nonmembers, seed=7) == mia_score(members, nonmembers, seed=7)
    assert mia_score(members, nonmembers, seed=7).group_size == 250


def test_mia_score_balances_sizes_and_matches_classes() -> None:
    # The loss depends on the class only; members are mostly class 0, non-members mostly class 1.
    # Unmatched, the attack reads the class and "wins"; class-matched, membership is invisible.
    member_labels = np.array([0] * 360 + [1] * 40)
    nonmember_labels = np.array([0] * 40 + [1] * 360)
    rng = np.random.default_rng(4)
    member_losses = member_labels + rng.normal(0.0, 0.1, 400)
    nonmember_losses = nonmember_labels + rng.normal(0.0, 0.1, 400)
    unmatched = mia_score(member_losses, nonmember_losses)
    matched = mia_score(member_losses, nonmember_losses, member_labels=member_labels, nonmember_labels=nonmember_labels)
    assert unmatched.score > 0.85
    assert not unmatched.class_matched
    assert matched.class_matched and matched.group_size == 80
    assert abs(matched.score - 0.5) < 3 * 0.5 / math.sqrt(2 * 80)


def test_mia_score_uses_the_confidence_feature() -> None:
    # Same loss distribution in both groups; only the second feature tells them apart.
    rng = np.random.default_rng(5)
    member_losses, nonmember_losses = rng.exponential(size=200), rng.exponential(size=200)
    member_confidences, nonmember_confidences = rng.uniform(5, 6, 200), rng.uniform(-6, -5, 200)
    with_confidence = mia_score(
        member_losses,
        nonmember_losses,
        member_confidences=member_confidences,
        nonmember_confidences=nonmember_confidences,
    )
    loss_only = mia_score(member_losses, nonmember_losses)
    assert with_confidence.score == 1.0
    assert abs(loss_only.score - 0.5) < 3 * 0.5 / math.sqrt(400)


def test_true_positive_rate_at_low_false_positive_rate() -> None:
    labels = np.array([1, 1, 1, 1, 0, 0, 0, 0])
    scores = np.array([0.9, 0.8, 0.3, 0.2, 0.85, 0.1, 0.05, 0.0])
    # Above 0.85 only one member, no non-member; any lower threshold admits a false positive first.
    assert true_positive_rate_at(labels, scores, 0.0) == 0.25
    assert true_positive_rate_at(labels, scores, 0.25) == 1.0  # one false positive (0.85) admits every member
    with pytest.raises(ValueError, match=r"Expected `labels` to contain both members \(1\) and non-members \(0\)"):
        true_positive_rate_at(np.ones(3), np.ones(3), 0.01)


def test_roc_point_counts_false_positives_and_never_splits_a_tie() -> None:
    labels = np.array([1, 1, 1, 1, 0, 0, 0, 0])
    scores = np.array([0.9, 0.8, 0.6, 0.3, 0.7, 0.6, 0.2, 0.1])
    # 0.25 · 4 = 1 false positive: the threshold is the 2nd highest non-member score, 0.6, and only
    # what is strictly above it is called a member (0.9, 0.8 and the non-member 0.7). The member
    # tied with that non-member at 0.6 is not: admitting it would admit the tied non-member too.
    assert roc_point_at(labels, scores, 0.25) == (0.5, 0.25)
    assert roc_point_at(labels, scores, 0.49) == (0.5, 0.25)  # ⌊0.49 · 4⌋ = 1 as well
    assert roc_point_at(labels, scores, 0.5) == (1.0, 0.5)  # two false positives: the tie at 0.6 is in, whole
    assert roc_point_at(labels, scores, 0.0) == (0.5, 0.0)  # members above every non-member
    assert roc_point_at(labels, scores, 1.0) == (1.0, 1.0)
    # Torch tensors and booleans are read alike.
    assert roc_point_at(torch.tensor(labels).bool(), torch.tensor(scores), 0.25) == (0.5, 0.25)
    assert allowed_false_positives(0.01, 300) == 3 and allowed_false_positives(0.01, 99) == 0
    with pytest.raises(ValueError, match=r"Expected `false_positive_rate` to be in \[0, 1\], but got 1.5"):
        roc_point_at(labels, scores, 1.5)
    with pytest.raises(ValueError, match=r"Expected one score per label \(8\), but got 7 scores"):
        roc_point_at(labels, scores[:7], 0.01)
    with pytest.raises(ValueError, match=r"Expected `labels` to be 1 for members and 0 for non-members"):
        roc_point_at(labels * 2, scores, 0.01)
    with pytest.raises(ValueError, match=r"Expected `scores` to be finite, but 1 of 8 samples are not \(1 NaN"):
        roc_point_at(labels, np.r_[np.nan, scores[1:]], 0.01)


def test_roc_point_is_the_roc_curves_best_corner_within_the_budget() -> None:
    from sklearn.metrics import roc_curve

    rng = np.random.default_rng(8)
    for trial in range(20):
        size = int(rng.integers(20, 400))
        labels = rng.integers(0, 2, size)
        labels[:2] = (0, 1)
        scores = np.round(rng.normal(labels * 0.8, 1.0), 1)  # rounded: many ties
        fpr, tpr, _ = roc_curve(labels, scores, drop_intermediate=False)  # one point per distinct score
        for rate in (0.0, 0.001, 0.01, 0.05, 0.3):
            within = fpr <= allowed_false_positives(rate, int((labels == 0).sum())) / (labels == 0).sum()
            # The best TPR within the budget, at the lowest threshold that keeps to it.
            expected = (tpr[within].max(), fpr[within].max())
            assert roc_point_at(labels, scores, rate) == pytest.approx(expected, abs=1e-12), (trial, rate)


def test_mia_tpr_is_read_once_on_the_pooled_out_of_fold_scores() -> None:
    # 100 members at loss 0.5–1; 99 non-members at loss 2–3 and one at loss 0, below every member.
    # Over all 100 non-members, 1 % allows exactly that one false positive: every member is found.
    members = np.linspace(0.5, 1.0, 100)
    nonmembers = np.concatenate([[0.0], np.linspace(2.0, 3.0, 99)])
    result = mia_score(members, nonmembers)
    assert (result.tpr_at_low_fpr, result.achieved_fpr, result.false_positives_allowed) == (1.0, 0.01, 1)
    assert result.notes == ()
    # A mean over folds gave 0.8: the fold holding the odd non-member has 20 non-members, where
    # 1 % allows no false positive, so it found no member; the other four found them all.
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    features = np.concatenate([members, nonmembers])[:, None]
    is_member = np.concatenate([np.ones(100, dtype=np.int64), np.zeros(100, dtype=np.int64)])
    per_fold = []
    for train, held in StratifiedKFold(n_splits=5, shuffle=True, random_state=0).split(features, is_member):
        attack = make_pipeline(StandardScaler(), LogisticRegression()).fit(features[train], is_member[train])
        per_fold.append(true_positive_rate_at(is_member[held], attack.predict_proba(features[held])[:, 1], 0.01))
    assert sorted(per_fold) == [0.0, 1.0, 1.0, 1.0, 1.0] and np.mean(per_fold) == 0.8


def test_mia_tpr_is_the_roc_point_of_the_cross_validated_predictions() -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(9)
    members, nonmembers = rng.normal(0.0, 1.0, 250), rng.normal(1.0, 1.0, 250)
    confidences = rng.normal(0.0, 1.0, 500)
    result = mia_score(
        members, nonmembers, member_confidences=confidences[:250], nonmember_confidences=confidences[250:]
    )
    features = np.stack([np.concatenate([members, nonmembers]), confidences], axis=1)
    is_member = np.concatenate([np.ones(250, dtype=np.int64), np.zeros(250, dtype=np.int64)])
    folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=0)
    attack = make_pipeline(StandardScaler(), LogisticRegression())
    pooled = cross_val_predict(attack, features, is_member, cv=folds, method="predict_proba")[:, 1]
    assert (result.tpr_at_low_fpr, result.achieved_fpr) == roc_point_at(is_member, pooled, 0.01)
    assert result.false_positives_allowed == 2 and result.achieved_fpr <= 0.01
    assert 0.0 < result.tpr_at_low_fpr < 0.5


def test_mia_tpr_with_fewer_than_100_nonmembers_is_at_zero_false_positives_and_says_so() -> None:
    rng = np.random.default_rng(10)
    result = mia_score(rng.normal(0.0, 1.0, 60), rng.normal(2.0, 1.0, 60))
    assert result.group_size == 60 and result.false_positives_allowed == 0 and result.achieved_fpr == 0.0
    assert result.notes == (
        "The MIA's TPR at 1 % FPR is its TPR at zero false positives: 60 non-members cannot measure an FPR below"
        " 1/60 = 1.67 % (it needs at least 100).",
    )
    assert result.to_dict()["notes"] == list(result.notes) and result.to_dict()["false_positives_allowed"] == 0


@pytest.mark.parametrize(
    ("arguments", "error", "message"),
    [
        (
            {"member_losses": torch.zeros(0), "nonmember_losses": torch.ones(10)},
            ValueError,
            r"Expected `member_losses` to be non-empty \(an MIA score compares members with non-members\), but got 0",
        ),
        (
            {"member_losses": torch.ones(10), "nonmember_losses": torch.zeros(0)},
            ValueError,
            r"Expected `nonmember_losses` to be non-empty .*but got 0 samples\.",
        ),
        (
            {
                "member_losses": torch.ones(10),
                "nonmember_losses": torch.ones(10),
                "member_labels": torch.zeros(9, dtype=torch.long),
                "nonmember_labels": torch.zeros(10, dtype=torch.long),
            },
            ValueError,
            r"Expected `member_labels` to have one label per sample of `member_losses` \(10\), but got 9\.",
        ),
        (
            {
                "member_losses": torch.ones(10),
                "nonmember_losses": torch.ones(10),
                "member_confidences": torch.ones(10),
            },
            ValueError,
            r"Expected `member_confidences` and `nonmember_confidences` to be given together, but got only",
        ),
        (
            {"member_losses": torch.tensor([0.1, float("nan"), 0.3, float("nan")]), "nonmember_losses": torch.ones(4)},
            ValueError,
            r"Expected `member_losses` to be finite, but 2 of 4 samples are not \(2 NaN, 0 infinite\)\.",
        ),
        (
            {"member_losses": torch.ones(3), "nonmember_losses": torch.ones(8)},
            ValueError,
            r"Expected at least `n_splits` = 5 samples in each balanced group, but got 3\.",
        ),
        (
            {
                "member_losses": torch.ones(8),
                "nonmember_losses": torch.ones(8),
                "member_labels": torch.zeros(8, dtype=torch.long),
                "nonmember_labels": torch.ones(8, dtype=torch.long),
            },
            ValueError,
            r"but got 0 after class matching \(pass no labels to balance without it\)\.",
        ),
        (
            {"member_losses": torch.ones(8), "nonmember_losses": torch.ones(8), "n_splits": 1},
            ValueError,
            r"Expected `n_splits` to be at least 2, but got 1\.",
        ),
        (
            {"member_losses": [0.1, 0.2], "nonmember_losses": torch.ones(8)},
            TypeError,
            r"Expected `member_losses` to be a tensor or numpy array, but got list\.",
        ),
        (
            {
                "member_losses": torch.ones(8),
                "nonmember_losses": torch.ones(8),
                "member_labels": torch.zeros(8),
                "nonmember_labels": torch.zeros(8),
            },
            TypeError,
            r"Expected `member_labels` to hold integer class labels, but got float32\.",
        ),
    ],
)
def test_mia_score_rejects_bad_inputs(arguments: dict, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        mia_score(**arguments)
    with pytest.raises(error, match=message):
        check_mia_inputs(**arguments)


def test_mia_score_from_logits_names_the_samples_with_nan_logits() -> None:
    logits = torch.randn(20, 5, generator=torch.Generator().manual_seed(0))
    logits[3] = float("nan")
    targets = torch.zeros(20, dtype=torch.long)
    with pytest.raises(ValueError, match=r"Expected `member_losses` to be finite, but 1 of 20 samples are not"):
        mia_score_from_logits(logits, targets, torch.randn(20, 5), targets)


# ---------------------------------------------------------------------------- digits OOD scenario


def test_mia_direction_on_digits_ood(digits_scenario) -> None:
    """The original remembers its OOD insertions; the retrained model never saw them."""
    dm = digits_scenario.datamodule
    scores = {}
    for name in ("target", "retrained"):
        model = getattr(digits_scenario, name)
        forget, heldout = predict(model, dm.dataloader("forget")), predict(model, dm.dataloader("heldout"))
        scores[name] = mia_score_from_logits(forget.logits, forget.targets, heldout.logits, heldout.targets)
    half_width = scores["target"].half_width
    assert scores["target"].score > 0.5 + 3 * half_width
    assert scores["target"].auc > 0.85
    assert scores["target"].score - scores["retrained"].score > 0.3
    assert abs(scores["retrained"].score - 0.5) < 2 * half_width


def test_id_test_negatives_would_invert_the_verdict_on_digits_ood(digits_scenario) -> None:
    """Against the ID test set, the retrained model (which never saw the forget set) looks like it remembers it."""
    dm = digits_scenario.datamodule
    model = digits_scenario.retrained
    forget, test = predict(model, dm.dataloader("forget")), predict(model, dm.dataloader("test"))
    wrong = mia_score_from_logits(forget.logits, forget.targets, test.logits, test.targets)
    assert wrong.score > 0.5 + 3 * wrong.half_width
