"""LiRA's reference models on digits: who trains on what, with which seed, cached as tensors and JSON."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from lightning_unlearn import DigitsDataModule, TrainingRecipe
from lightning_unlearn.metrics.lira_references import (
    candidate_split,
    inclusion_matrix,
    lira_references,
    reference_seeds,
    train_lira_references,
)

QUIET = {"enable_progress_bar": False}


@pytest.fixture(scope="module")
def datamodule() -> DigitsDataModule:
    datamodule = DigitsDataModule()
    datamodule.setup()
    return datamodule


def test_every_candidate_is_in_for_half_the_models() -> None:
    for models in (4, 5, 16):
        is_in = inclusion_matrix(models, 300, seed=0)
        assert is_in.dtype == torch.bool and is_in.shape == (models, 300)
        assert set(is_in.sum(dim=0).tolist()) == {models // 2}
        shares = is_in.double().mean(dim=1)  # each model trains on about ⌊K/2⌋/K of the candidates
        assert (shares - (models // 2) / models).abs().max() < 0.1
    assert torch.equal(inclusion_matrix(8, 50, seed=3), inclusion_matrix(8, 50, seed=3))
    assert not torch.equal(inclusion_matrix(8, 50, seed=3), inclusion_matrix(8, 50, seed=4))


def test_reference_seeds_never_include_the_targets() -> None:
    for recipe_seed in (0, 7):
        for seed in (0, 1, 2):
            assert recipe_seed not in reference_seeds(recipe_seed, 16, seed)
    assert set(reference_seeds(0, 16, 0)).isdisjoint(reference_seeds(0, 16, 1))


def test_candidates_are_forget_heldout_and_validation_heldout(datamodule: DigitsDataModule) -> None:
    candidates = candidate_split(datamodule)
    splits = datamodule.splits
    expected = np.sort(np.concatenate([splits[n].indices for n in ("forget", "heldout", "validation_heldout")]))
    assert np.array_equal(candidates.indices, expected) and len(candidates) == 179 + 179 + 90
    assert not np.intersect1d(candidates.indices, splits["retain"].indices).size
    assert not np.intersect1d(candidates.indices, splits["test"].indices).size


@pytest.mark.parametrize(
    ("settings", "error", "message"),
    [
        (dict(num_models=2), ValueError, r"Expected `num_models` to be at least 4 \(two IN and two OUT models per"),
        (dict(num_models=4.0), TypeError, r"Expected `num_models` to be an integer, but got float"),
        (dict(num_models=True), TypeError, r"Expected `num_models` to be an integer, but got bool"),
        (dict(seed=-1), ValueError, r"Expected `seed` to be a non-negative integer, but got -1"),
    ],
)
def test_bad_settings_fail_before_training(
    datamodule: DigitsDataModule, settings: dict, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        train_lira_references(TrainingRecipe(max_epochs=1), datamodule, **settings)


def test_references_train_on_retain_plus_their_in_candidates(datamodule: DigitsDataModule, tmp_path: Path) -> None:
    recipe = TrainingRecipe(max_epochs=15)
    entry = lira_references(recipe, datamodule, num_models=4, seed=1, cache_dir=tmp_path, progress_bar=False)
    statistics = entry.value
    assert not entry.from_cache and statistics.num_models == 4 and statistics.num_candidates == 448
    assert statistics.model_seeds == (5, 6, 7, 8)  # recipe seed 0 + 1 + seed·K + k
    assert torch.equal(statistics.is_in, inclusion_matrix(4, 448, seed=1))
    assert len(statistics.seconds) == 4 and statistics.training_seconds > 0
    assert torch.isfinite(statistics.confidences).all()
    # The models remember what they trained on: IN confidences clearly above OUT ones, candidate by candidate.
    gaussians = statistics.gaussians()
    assert float((gaussians.mean_in > gaussians.mean_out).double().mean()) > 0.8
    # Cached as tensors and JSON, read back with weights_only=True, keyed by K and seed.
    again = lira_references(recipe, datamodule, num_models=4, seed=1, cache_dir=tmp_path, progress_bar=False)
    assert again.from_cache and torch.equal(again.value.confidences, statistics.confidences)
    assert entry.folder is not None
    assert {p.name for p in entry.folder.iterdir()} == {"config.json", "lira_references.json", "lira_references.pt"}
    assert len([p for p in tmp_path.iterdir() if p.name.startswith("lira-references-")]) == 1
