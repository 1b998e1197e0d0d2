"""The shadow-model membership oracle on the digits OOD scenario, and its wiring."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from lightning_unlearn import TrainingRecipe
from lightning_unlearn.inference import Predictions, predict
from lightning_unlearn.metrics.oracle import (
    OracleNearChanceWarning,
    ShadowModelOracle,
    attack_features,
    chance_margin,
    membership_quality,
)
from lightning_unlearn.models import MLP


def _membership_rate(oracle: ShadowModelOracle, model: torch.nn.Module, loader) -> float:
    return oracle.predict_membership(model, loader).float().mean().item()


# ---------------------------------------------------------------------------- on the digits OOD scenario


def test_oracle_finds_forget_samples_as_members_far_more_often_than_unseen_ood(digits_scenario) -> None:
    oracle, dm, target = digits_scenario.oracle, digits_scenario.datamodule, digits_scenario.target
    before = oracle.predict_membership(target, dm.dataloader("forget"))
    bt, bf = int(before.sum()), int((~before).sum())
    heldout_rate = _membership_rate(oracle, target, dm.dataloader("heldout"))
    assert bt + bf == len(dm.dataset("forget")) == 179
    assert bt > 4 * bf  # BT well above BF
    assert bt / (bt + bf) - heldout_rate > 0.6  # members are recognised, unseen OOD samples are not


def test_oracle_sees_no_membership_in_the_retrained_model(digits_scenario) -> None:
    oracle, dm = digits_scenario.oracle, digits_scenario.datamodule
    forget_rate = _membership_rate(oracle, digits_scenario.retrained, dm.dataloader("forget"))
    heldout_rate = _membership_rate(oracle, digits_scenario.retrained, dm.dataloader("heldout"))
    assert abs(forget_rate - heldout_rate) < 2 * chance_margin(179, 179)
    result = oracle.forgetting_rate(digits_scenario.target, digits_scenario.retrained, dm)
    assert result.value > 0.7 and result.oracle_reliable
    assert result.bt + result.bf == 179


def test_oracle_quality_on_the_population_that_matters(digits_scenario) -> None:
    quality = digits_scenario.oracle.quality(digits_scenario.target, digits_scenario.datamodule)
    first = quality.forget_vs_heldout
    assert (first.num_members, first.num_nonmembers) == (179, 179)
    assert first.auc > 0.85 and first.balanced_accuracy > 0.8
    assert first.true_positive_rate - first.false_positive_rate > 0.6
    assert quality.reliable and not first.near_chance
    second = quality.retain_vs_test
    assert (second.num_members, second.num_nonmembers) == (315, 101)  # test after the validation carve-out
    assert 0.0 <= second.auc <= 1.0
    assert quality.to_dict()["reliable"] is True


def test_label_posterior_feature_is_what_makes_the_oracle_work(digits_scenario) -> None:
    """The paper's sorted posterior + one-hot label hides whether the top class is the label."""
    dm, shadow = digits_scenario.datamodule, digits_scenario.oracle.shadow_model
    members, nonmembers = predict(shadow, dm.dataloader("shadow_train")), predict(shadow, dm.dataloader("shadow_test"))
    literal = ShadowModelOracle(features="sorted_posterior_onehot").fit_attack(members, nonmembers)
    auc_default = digits_scenario.oracle.quality(digits_scenario.target, dm).forget_vs_heldout.auc
    auc_literal = literal.quality(digits_scenario.target, dm).forget_vs_heldout.auc
    assert auc_default > auc_literal + 0.1


def test_attack_is_reproducible_from_its_seed(digits_scenario) -> None:
    dm, shadow, target = digits_scenario.datamodule, digits_scenario.oracle.shadow_model, digits_scenario.target
    members, nonmembers = predict(shadow, dm.dataloader("shadow_train")), predict(shadow, dm.dataloader("shadow_test"))
    refit = ShadowModelOracle().fit_attack(members, nonmembers)
    loader = dm.dataloader("forget")
    torch.testing.assert_close(
        refit.membership_probability(target, loader)[0],
        digits_scenario.oracle.membership_probability(target, loader)[0],
        rtol=0,
        atol=0,
    )


def test_whole_oracle_is_reproducible_from_the_recipe_seed(digits_scenario) -> None:
    """Shadow training and attack again from scratch: the same membership probabilities, bit for bit."""
    dm, target = digits_scenario.datamodule, digits_scenario.target
    previous = torch.get_num_threads()
    torch.set_num_threads(1)  # as the session fixture trained
    try:
        again = ShadowModelOracle().fit(digits_scenario.recipe, dm, trainer_overrides={"enable_progress_bar": False})
    finally:
        torch.set_num_threads(previous)
    loader = dm.dataloader("forget")
    torch.testing.assert_close(
        again.membership_probability(target, loader)[0],
        digits_scenario.oracle.membership_probability(target, loader)[0],
        rtol=0,
        atol=0,
    )


def test_predict_membership_returns_one_bool_per_sample_with_indices(digits_scenario) -> None:
    oracle, dm = digits_scenario.oracle, digits_scenario.datamodule
    decisions, indices = oracle.predict_membership_with_indices(digits_scenario.target, dm.dataloader("heldout"))
    assert decisions.dtype == torch.bool and decisions.shape == (179,)
    assert torch.equal(indices, torch.from_numpy(dm.splits["heldout"].indices))
    assert oracle.num_classes == 5 and oracle.fit_seconds > 0


def test_near_chance_oracle_makes_every_fr_carry_a_warning(digits_scenario) -> None:
    """An oracle that only reads the label is blind to membership: FR computed with it is flagged."""
    generator = torch.Generator().manual_seed(0)
    labels = torch.arange(600) % 5
    logits = torch.randn(600, 5, generator=generator)
    members = Predictions(logits[labels == 0], labels[labels == 0], torch.arange(120))
    nonmembers = Predictions(logits[labels != 0], labels[labels != 0], torch.arange(480))
    label_reader = ShadowModelOracle().fit_attack(members, nonmembers)
    dm = digits_scenario.datamodule
    quality = label_reader.quality(digits_scenario.target, dm)
    assert quality.forget_vs_heldout.near_chance and not quality.reliable
    with pytest.warns(
        OracleNearChanceWarning, match=r"near chance .*the forgetting rate computed with it is meaningless"
    ):
        result = label_reader.forgetting_rate(digits_scenario.target, digits_scenario.retrained, dm)
    assert result.oracle_reliable is False


def test_reliable_oracle_does_not_warn(digits_scenario) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", OracleNearChanceWarning)
        digits_scenario.oracle.forgetting_rate(
            digits_scenario.target, digits_scenario.target, digits_scenario.datamodule
        )


# ---------------------------------------------------------------------------- persistence


def test_save_and_load_round_trip(digits_scenario, tmp_path: Path) -> None:
    oracle, dm, target = digits_scenario.oracle, digits_scenario.datamodule, digits_scenario.target
    path = oracle.save(tmp_path / "oracles" / "digits.pt")
    loaded = ShadowModelOracle.load(path)
    assert loaded.config() == oracle.config() and loaded.num_classes == 5
    loader = dm.dataloader("forget")
    torch.testing.assert_close(
        loaded.membership_probability(target, loader)[0], oracle.membership_probability(target, loader)[0]
    )
    assert loaded.fit_seconds == pytest.approx(oracle.fit_seconds)


def test_load_refuses_files_that_are_not_oracles(tmp_path: Path) -> None:
    other = tmp_path / "weights.pt"
    torch.save({"state_dict": {"weight": torch.zeros(2)}}, other)
    with pytest.raises(
        ValueError, match=r"Expected `path` .*weights.pt' to be a saved membership oracle .*but it is not\."
    ):
        ShadowModelOracle.load(other)
    text = tmp_path / "notes.txt"
    text.write_text("not a torch file")
    with pytest.raises(ValueError, match=r"notes.txt' to be a saved membership oracle, but it cannot be read as one"):
        ShadowModelOracle.load(text)
    old = tmp_path / "old.pt"
    torch.save({"format": "lightning-unlearn/membership-oracle", "version": 0}, old)
    with pytest.raises(ValueError, match=r"to hold a membership oracle of version 1, but got version 0\."):
        ShadowModelOracle.load(old)
    with pytest.raises(FileNotFoundError, match=r"Expected `path` to be a saved membership oracle, but .* does not"):
        ShadowModelOracle.load(tmp_path / "missing.pt")


# ---------------------------------------------------------------------------- errors


def test_unfitted_oracle_refuses_to_answer(digits_scenario, tmp_path: Path) -> None:
    oracle = ShadowModelOracle()
    assert not oracle.is_fitted
    message = r"The membership oracle is not fitted yet: call `fit\(recipe, datamodule\)` \(or `load\(path\)`\) first\."
    dm = digits_scenario.datamodule
    with pytest.raises(RuntimeError, match=message):
        oracle.predict_membership(digits_scenario.target, dm.dataloader("forget"))
    with pytest.raises(RuntimeError, match=message):
        oracle.quality(digits_scenario.target, dm)
    with pytest.raises(RuntimeError, match=message):
        oracle.save(tmp_path / "oracle.pt")


def test_model_with_other_number_of_classes_is_refused(digits_scenario) -> None:
    ten_classes = MLP(64, 10)
    with pytest.raises(
        ValueError, match=r"Expected a model with 5 classes \(the oracle's\), but it produces 10 logits\."
    ):
        digits_scenario.oracle.predict_membership(ten_classes, digits_scenario.datamodule.dataloader("forget"))


@pytest.mark.parametrize(
    ("settings", "error", "message"),
    [
        ({"features": "posterior"}, ValueError, r"Expected `features` to be one of \['sorted_posterior_label', "),
        ({"threshold": 1.0}, ValueError, r"Expected `threshold` to be in \(0, 1\), but got 1\.0\."),
        ({"n_estimators": 0}, ValueError, r"Expected `n_estimators` to be a positive integer, but got 0\."),
        ({"top_k": 2.0}, TypeError, r"Expected `top_k` to be an integer, but got float\."),
        ({"learning_rate": 0.0}, ValueError, r"Expected `learning_rate` to be positive, but got 0\.0\."),
    ],
)
def test_bad_settings_fail_at_construction(settings: dict, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        ShadowModelOracle(**settings)


def test_fit_checks_its_arguments(digits_scenario) -> None:
    with pytest.raises(TypeError, match=r"Expected `recipe` to be a TrainingRecipe, but got dict\."):
        ShadowModelOracle().fit({}, digits_scenario.datamodule)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"Expected `datamodule` to be an UnlearningDataModule, but got str\."):
        ShadowModelOracle().fit(TrainingRecipe(), "digits")  # type: ignore[arg-type]
    empty = Predictions(torch.empty(0, 5), torch.empty(0, dtype=torch.long), torch.empty(0, dtype=torch.long))
    some = Predictions(torch.zeros(4, 5), torch.zeros(4, dtype=torch.long), torch.arange(4))
    with pytest.raises(ValueError, match=r"Expected `nonmembers` to hold at least one prediction, but got 0 samples\."):
        ShadowModelOracle().fit_attack(some, empty)
    with pytest.raises(ValueError, match=r"Expected `top_k` to be at most 5 \(the classes\), but got 6\."):
        ShadowModelOracle(features="top_k", top_k=6).fit_attack(some, some)


# ---------------------------------------------------------------------------- pure helpers


def test_attack_features_layouts() -> None:
    posteriors = torch.tensor([[0.1, 0.7, 0.2], [0.5, 0.25, 0.25]])
    targets = torch.tensor([2, 0])
    default = attack_features(posteriors, targets)
    np.testing.assert_allclose(default[0], [0.7, 0.2, 0.1, 0.2, 0, 0, 1], rtol=1e-6)
    np.testing.assert_allclose(default[1], [0.5, 0.25, 0.25, 0.5, 1, 0, 0], rtol=1e-6)
    literal = attack_features(posteriors, targets, "sorted_posterior_onehot")
    np.testing.assert_allclose(literal[0], [0.7, 0.2, 0.1, 0, 0, 1], rtol=1e-6)
    np.testing.assert_allclose(attack_features(posteriors, targets, "top_k", top_k=2), [[0.7, 0.2], [0.5, 0.25]])
    with pytest.raises(ValueError, match=r"Expected `top_k` to be between 1 and 3 \(the classes\), but got 4\."):
        attack_features(posteriors, targets, "top_k", top_k=4)


def test_chance_margin_and_membership_quality() -> None:
    assert chance_margin(179, 179) == pytest.approx(1.96 * 0.25 * np.sqrt(2 / 179))
    quality = membership_quality(np.array([0.9, 0.8, 0.4, 0.7]), np.array([0.1, 0.6, 0.2, 0.3]))
    assert quality.true_positive_rate == 0.75 and quality.false_positive_rate == 0.25
    assert quality.accuracy == 0.75 and quality.balanced_accuracy == 0.75
    assert quality.auc == pytest.approx(15 / 16)  # one pair out of order: 0.4 < 0.6
    assert quality.near_chance  # 4 + 4 samples: 0.75 is within the margin of 0.5
    clear = membership_quality(np.full(400, 0.9), np.full(400, 0.1))
    assert not clear.near_chance
    with pytest.raises(ValueError, match=r"Expected `member_probabilities` to be non-empty, but got 0 samples\."):
        membership_quality(np.array([]), np.array([0.5]))
