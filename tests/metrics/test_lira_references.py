"""LiRA's reference models on digits: who trains on what, with which seed, cached as tensors and JSON,
and under DDP one model per rank, the same models as one process trains."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from lightning_unlearn import DigitsDataModule, TrainingRecipe
from lightning_unlearn.metrics.lira import LiRAReferenceStatistics
from lightning_unlearn.metrics.lira_references import (
    candidate_split,
    inclusion_matrix,
    lira_references,
    models_of_rank,
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


# ---------------------------------------------------------------------------- DDP: one model per rank
#: Small enough for two spawned processes to train four models in a few seconds.
DDP_RECIPE = TrainingRecipe(max_epochs=4)
DDP_MODELS, DDP_SEED = 4, 1


def test_models_of_rank_cover_every_model_once() -> None:
    for models, world in ((4, 2), (5, 2), (16, 3), (3, 4)):
        shares = [models_of_rank(models, rank, world) for rank in range(world)]
        assert sorted(k for share in shares for k in share) == list(range(models))
        assert all(k % world == rank for rank, share in enumerate(shares) for k in share)
    with pytest.raises(ValueError, match=r"Expected `rank` in \[0, 2\) for `world_size` 2, but got 2"):
        models_of_rank(4, 2, 2)


def _keep_weights(store: dict[str, torch.Tensor]):
    def keep(k: int, module: L.LightningModule) -> None:
        for name, tensor in module.state_dict().items():
            store[f"{k}/{name}"] = tensor.detach().clone()

    return keep


def _statistics_tensors(statistics: LiRAReferenceStatistics) -> dict[str, torch.Tensor]:
    return {
        "indices": statistics.indices,
        "labels": statistics.labels,
        "confidences": statistics.confidences,
        "is_in": statistics.is_in,
        "model_seeds": torch.tensor(statistics.model_seeds),
        "seconds": torch.tensor(statistics.seconds, dtype=torch.float64),
    }


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _ddp_references_worker(rank: int, world_size: int, port: int, directory: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world_size)
    try:
        datamodule = DigitsDataModule()
        datamodule.setup()
        weights: dict[str, torch.Tensor] = {}
        cache_dir = os.path.join(directory, "cache")
        settings = dict(num_models=DDP_MODELS, seed=DDP_SEED, cache_dir=cache_dir, progress_bar=False)
        trained = lira_references(DDP_RECIPE, datamodule, on_model_trained=_keep_weights(weights), **settings)
        listing = sorted(os.listdir(cache_dir))  # rank 0 wrote the entry before any rank returned
        again = lira_references(DDP_RECIPE, datamodule, on_model_trained=_keep_weights(weights), **settings)
        errors = []
        try:  # ranks that disagree fail together, before training anything
            train_lira_references(DDP_RECIPE, datamodule, DDP_MODELS, seed=rank, progress_bar=False)
        except RuntimeError as error:
            errors.append(str(error))
        if rank == 0:  # a cache entry rank 0 cannot read fails on every rank, instead of leaving rank 1 waiting
            config = Path(cache_dir, listing[0], "config.json")
            config.write_text(config.read_text().replace('"num_models": 4', '"num_models": 5'))
        dist.barrier()
        try:
            lira_references(DDP_RECIPE, datamodule, **settings)
        except RuntimeError as error:
            errors.append(str(error))
        outcome = {
            "errors": errors,
            "models": sorted({int(name.split("/")[0]) for name in weights}),
            "weights": weights,
            "trained": _statistics_tensors(trained.value),
            "again": _statistics_tensors(again.value),
            "from_cache": [trained.from_cache, again.from_cache],
            "listing": listing,
        }
        torch.save(outcome, os.path.join(directory, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


@pytest.mark.ddp
def test_two_ranks_train_two_models_each_the_same_models_as_one_process(tmp_path: Path) -> None:
    datamodule = DigitsDataModule()
    datamodule.setup()
    expected_weights: dict[str, torch.Tensor] = {}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in the workers: the same kernels, so the same bits
    try:
        expected = train_lira_references(
            DDP_RECIPE,
            datamodule,
            DDP_MODELS,
            DDP_SEED,
            progress_bar=False,
            on_model_trained=_keep_weights(expected_weights),
        )
    finally:
        torch.set_num_threads(threads)

    begin = time.perf_counter()
    mp.spawn(_ddp_references_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    print(f"two processes: {time.perf_counter() - begin:.1f} s")  # shown with -s
    outcomes = [torch.load(tmp_path / f"rank{rank}.pt", weights_only=True) for rank in range(2)]

    # Rank r trained the models k with k mod 2 = r, and those alone (the second call read the cache).
    assert [outcome["models"] for outcome in outcomes] == [[0, 2], [1, 3]]
    # Each model's weights are bit for bit the weights one process gives it (same seed, same data).
    for outcome in outcomes:
        assert outcome["weights"].keys() == {n for n in expected_weights if int(n.split("/")[0]) in outcome["models"]}
        for name, tensor in outcome["weights"].items():
            assert torch.equal(tensor, expected_weights[name]), name
    # Every rank ends with all four models' statistics, equal to one process's (times aside: measured).
    for outcome in outcomes:
        for call in ("trained", "again"):
            for name, tensor in _statistics_tensors(expected).items():
                if name != "seconds":
                    assert torch.equal(outcome[call][name], tensor), (call, name)
            assert bool((outcome[call]["seconds"] > 0).all())
        assert torch.equal(outcome["again"]["seconds"], outcomes[0]["trained"]["seconds"])  # read back from rank 0
        assert outcome["from_cache"] == [False, True]
        assert len(outcome["listing"]) == 1 and outcome["listing"][0].startswith("lira-references-")
    # Ranks that disagree, or a cache entry rank 0 cannot read, fail on every rank with a clear message.
    for outcome in outcomes:
        assert outcome["errors"][0].startswith(
            "Expected every rank to train the LiRA reference models with the same `num_models`, `seed`, recipe seed"
            " and candidates, but rank(s) [1] differ from rank 0"
        )
    assert "Expected the cached lira-references in" in outcomes[0]["errors"][1]
    assert outcomes[1]["errors"][1].startswith("Expected rank 0 to read the cached LiRA reference statistics in")
    # The one cache entry, written by rank 0, loads with weights_only=True as one process's would.
    cached = LiRAReferenceStatistics.load(tmp_path / "cache" / outcomes[0]["listing"][0])
    assert torch.equal(cached.confidences, expected.confidences) and cached.model_seeds == expected.model_seeds
