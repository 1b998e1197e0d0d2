"""SISAEnsemble: partition, slice checkpoints, unlearning one shard, voting, resuming, DDP, SISA-DP, errors."""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from lightning_unlearn import DigitsDataModule, TrainingRecipe, predict
from lightning_unlearn.modules.sisa import (
    SISADPEnsemble,
    SISAEnsemble,
    SISAVoteModel,
    SliceTrained,
    _gaussian_privacy_profile,
    gaussian_mechanism_sigma,
)

SHARDS, SLICES = 3, 4
RECIPE = TrainingRecipe(max_epochs=5)  # 2 epochs per slice over 4 cumulative slices


@contextmanager
def one_torch_thread() -> Iterator[None]:
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _ensemble(dm: DigitsDataModule, directory: Path, **settings: object) -> SISAEnsemble:
    options: dict[str, object] = dict(num_shards=SHARDS, num_slices=SLICES, progress_bar=False)
    options.update(settings)
    return SISAEnsemble(dm, RECIPE, checkpoint_dir=directory, **options)  # type: ignore[arg-type]


def _weights(ensemble: SISAEnsemble) -> list[dict[str, torch.Tensor]]:
    return [{k: v.clone() for k, v in model.state_dict().items()} for model in ensemble.constituents()]


@dataclass
class Trained:
    datamodule: DigitsDataModule
    directory: Path
    weights: list[dict[str, torch.Tensor]]


@pytest.fixture(scope="module")
def datamodule() -> DigitsDataModule:
    dm = DigitsDataModule()
    dm.setup()
    return dm


@pytest.fixture(scope="module")
def trained(datamodule: DigitsDataModule, tmp_path_factory: pytest.TempPathFactory) -> Trained:
    """A 3 × 4 ensemble trained once; tests that change it work on a copy of its folder."""
    directory = tmp_path_factory.mktemp("sisa") / "trained"
    with one_torch_thread():
        ensemble = _ensemble(datamodule, directory)
        report = ensemble.fit()
    assert report.slices_trained == {0: SLICES, 1: SLICES, 2: SLICES}
    return Trained(datamodule, directory, _weights(ensemble))


def _copy(trained: Trained, tmp_path: Path) -> Path:
    directory = tmp_path / "copy"
    shutil.copytree(trained.directory, directory)
    return directory


# ---------------------------------------------------------------------------- partition
def test_shards_and_slices_partition_target_train(datamodule: DigitsDataModule, tmp_path: Path) -> None:
    ensemble = _ensemble(datamodule, tmp_path)
    pieces = [piece for shard in ensemble.slices for piece in shard]
    assert len(ensemble.slices) == SHARDS and all(len(shard) == SLICES for shard in ensemble.slices)
    everything = np.concatenate(pieces)
    assert len(everything) == len(np.unique(everything))  # disjoint
    np.testing.assert_array_equal(np.sort(everything), np.sort(datamodule.splits["target_train"].indices))  # complete
    shard_sizes = [sum(len(piece) for piece in shard) for shard in ensemble.slices]
    assert max(shard_sizes) - min(shard_sizes) <= 1
    assert all(len(piece) >= 1 for piece in pieces)
    assert ensemble.epochs_per_slice == round(2 * RECIPE.max_epochs / (SLICES + 1))
    index = int(ensemble.slices[2][3][0])
    assert ensemble.shard_of(index) == 2
    # Same seed, same partition; the manifest records it.
    again = _ensemble(datamodule, tmp_path)
    assert all(np.array_equal(a, b) for x, y in zip(ensemble.slices, again.slices) for a, b in zip(x, y))
    manifest = json.loads((tmp_path / "sisa.json").read_text())
    assert manifest["slices"][2][3] == ensemble.slices[2][3].tolist()


def test_bad_settings_are_rejected(datamodule: DigitsDataModule, tmp_path: Path) -> None:
    with pytest.raises(
        ValueError,
        match=re.escape("Expected `num_shards` to be at most the 494 samples of target_train, but got 1,000."),
    ):
        _ensemble(datamodule, tmp_path, num_shards=1000)
    with pytest.raises(
        ValueError, match=r"Expected `num_slices` to be at most 49 .* but got 100: a slice would be empty"
    ):
        _ensemble(datamodule, tmp_path, num_shards=10, num_slices=100)  # the paper's 10 × 100 on 494 samples
    with pytest.raises(ValueError, match=re.escape("Expected `num_shards` to be a positive integer, but got 0.")):
        _ensemble(datamodule, tmp_path, num_shards=0)
    with pytest.raises(TypeError, match=re.escape("Expected `num_slices` to be an integer, but got float.")):
        _ensemble(datamodule, tmp_path, num_slices=2.0)
    with pytest.raises(
        ValueError, match=re.escape("Expected `epochs_per_slice` to be a positive integer or None, but got 0.")
    ):
        _ensemble(datamodule, tmp_path, epochs_per_slice=0)
    for epsilon in (0.0, -1.0):
        with pytest.raises(
            ValueError, match=rf"Expected `dp_epsilon` \(ε\) to be a positive number or None, but got {epsilon}"
        ):
            _ensemble(datamodule, tmp_path, dp_epsilon=epsilon)
        with pytest.raises(ValueError, match=r"Expected `dp_epsilon` \(ε\) to be a positive number"):
            SISADPEnsemble(datamodule, RECIPE, num_shards=2, num_slices=2, checkpoint_dir=tmp_path, dp_epsilon=epsilon)
    with pytest.raises(ValueError, match=r"Expected `dp_delta` \(δ\) to be in \(0, 1\), but got 1.5."):
        _ensemble(datamodule, tmp_path, dp_epsilon=16.0, dp_delta=1.5)
    with pytest.raises(ValueError, match=re.escape("Expected `dp_clip_norm` to be a positive number, but got 0.")):
        _ensemble(datamodule, tmp_path, dp_epsilon=16.0, dp_clip_norm=0)
    with pytest.raises(
        TypeError, match=re.escape("Expected `datamodule` to be an UnlearningDataModule, but got list.")
    ):
        SISAEnsemble([], RECIPE)  # type: ignore[arg-type]
    _ensemble(datamodule, tmp_path)  # writes the manifest of a 3 × 4 ensemble
    with pytest.raises(ValueError, match=r"Expected `checkpoint_dir` .* to hold this ensemble \(or nothing\)"):
        _ensemble(datamodule, tmp_path, num_shards=2)
    with pytest.raises(
        RuntimeError, match=r"Expected a trained ensemble, but shards \[0, 1, 2\] have no final checkpoint"
    ):
        _ensemble(datamodule, tmp_path).as_module()


# ---------------------------------------------------------------------------- unlearning
def test_unlearning_one_sample_retrains_one_shard_from_its_slice(trained: Trained, tmp_path: Path) -> None:
    events: list[SliceTrained] = []
    directory = _copy(trained, tmp_path)
    ensemble = _ensemble(trained.datamodule, directory, on_slice_end=events.append)
    assert _weights(ensemble)[0]["1.weight"].equal(trained.weights[0]["1.weight"])  # loaded, not retrained
    shard, first = 1, 1
    index = int(ensemble.slices[shard][first][0])
    before = {path.name for path in (directory / "shard_0001").glob("*.pt")}

    with one_torch_thread():
        report = ensemble.unlearn([index])

    assert report.newly_forgotten == (index,) and report.already_forgotten == ()
    assert report.affected_shards == (shard,) and report.first_affected_slice == {shard: first}
    assert report.slices_retrained == {shard: SLICES - first} and report.shards_retrained == (shard,)
    assert [(e.shard, e.slice) for e in events] == [(shard, r) for r in range(first, SLICES)]
    assert report.seconds > 0
    after = _weights(ensemble)
    for other in (0, 2):  # untouched shards: bit for bit the same weights
        assert all(torch.equal(after[other][k], trained.weights[other][k]) for k in after[other])
    assert not all(torch.equal(after[shard][k], trained.weights[shard][k]) for k in after[shard])
    assert index not in ensemble.shard_indices(shard)
    assert index in ensemble.forgotten
    assert all(index not in ensemble.shard_indices(shard, r) for r in range(SLICES))
    # Slice 0's checkpoint predates the sample and is kept; every checkpoint that held it is gone.
    now = {path.name for path in (directory / "shard_0001").glob("*.pt")}
    assert len(now) == SLICES
    assert {n for n in now if n.startswith("slice_0000")} == {n for n in before if n.startswith("slice_0000")}
    assert not (now & before) - {n for n in before if n.startswith("slice_0000")}
    assert [e["event"] for e in ensemble.request_log()] == ["forget", "completed"]

    # Forgetting it again is idempotent: logged, nothing retrained.
    again = ensemble.unlearn(torch.tensor([index]))
    assert again.newly_forgotten == () and again.already_forgotten == (index,)
    assert again.total_slices == 0 and again.affected_shards == ()
    assert ensemble.request_log()[-1]["event"] == "noop"
    assert all(torch.equal(a, b) for a, b in zip(_weights(ensemble)[shard].values(), after[shard].values()))
    # A new ensemble on the folder reads the log: the sample stays forgotten, even past a line cut by a crash.
    with (directory / "requests.jsonl").open("a") as file:
        file.write('{"event": "forget", "request": 1, "indi')
    reopened = _ensemble(trained.datamodule, directory)
    assert reopened.forgotten == {index}
    assert reopened.unlearn([index]).total_slices == 0
    assert [e["event"] for e in reopened.request_log()] == ["forget", "completed", "noop", "noop"]


def test_bad_unlearning_requests(trained: Trained, tmp_path: Path) -> None:
    ensemble = _ensemble(trained.datamodule, _copy(trained, tmp_path))
    test_index = int(trained.datamodule.splits["test"].indices[0])
    member = int(ensemble.slices[0][0][0])
    with pytest.raises(ValueError, match=rf"target_train samples, but got 1 outside it: \[{test_index}\]\."):
        ensemble.unlearn([member, test_index])
    with pytest.raises(
        ValueError, match=rf"Expected `indices` to name each sample once, but got 1 repeated: \[{member}\]\."
    ):
        ensemble.unlearn([member, member])
    with pytest.raises(
        ValueError, match=re.escape("Expected `indices` to hold at least one global index to forget, but got none.")
    ):
        ensemble.unlearn([])
    with pytest.raises(TypeError, match=re.escape("Expected `indices` to be a 1-D sequence of integer global indices")):
        ensemble.unlearn([1.5])  # type: ignore[list-item]
    with pytest.raises(ValueError, match=re.escape("Expected a global index of a target_train sample, but got -1.")):
        ensemble.shard_of(-1)
    assert ensemble.forgotten == frozenset() and ensemble.request_log() == []  # nothing was logged


# ---------------------------------------------------------------------------- aggregation
class _Constant(nn.Module):
    """Outputs the same posterior for every input."""

    logits: torch.Tensor

    def __init__(self, posterior: list[float]) -> None:
        super().__init__()
        self.register_buffer("logits", torch.tensor(posterior).log())

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.logits.expand(inputs.shape[0], -1)


def test_majority_vote_and_the_winning_voters_mean_posterior() -> None:
    model = SISAVoteModel([_Constant([0.7, 0.2, 0.1]), _Constant([0.6, 0.3, 0.1]), _Constant([0.1, 0.1, 0.8])])
    output = model(torch.zeros(2, 4))
    # Class 0 wins 2 votes to 1 (even though constituent 3 is the most confident); its voters' mean posterior.
    torch.testing.assert_close(output.exp(), torch.tensor([[0.65, 0.25, 0.10]] * 2))
    assert output.argmax(dim=1).tolist() == [0, 0]
    assert model.votes(torch.zeros(1, 4)).tolist() == [[2, 0, 1]]
    # A tie goes to the class with the larger posterior summed over all constituents (class 1: 1.1 > 0.9).
    tied = SISAVoteModel([_Constant([0.6, 0.4]), _Constant([0.3, 0.7])])
    torch.testing.assert_close(tied(torch.zeros(1, 4)).exp(), torch.tensor([[0.3, 0.7]]))
    with pytest.raises(ValueError, match=re.escape("Expected at least one constituent model, but got none.")):
        SISAVoteModel([])


def test_the_ensemble_classifies_through_predict(trained: Trained) -> None:
    ensemble = _ensemble(trained.datamodule, trained.directory)
    module = ensemble.as_module()
    predictions = predict(module, trained.datamodule.dataloader("test"))
    assert predictions.accuracy() > 0.85
    torch.testing.assert_close(predictions.posteriors.sum(dim=1), torch.ones(len(predictions)))
    assert not any(p.requires_grad for p in module.parameters())


# ---------------------------------------------------------------------------- resuming
class _InterruptError(Exception):
    pass


def _stop_after(count: int, events: list[tuple[int, int]]) -> object:
    def on_slice_end(event: SliceTrained) -> None:
        events.append((event.shard, event.slice))
        if len(events) == count:
            raise _InterruptError

    return on_slice_end


def test_interrupted_training_and_unlearning_resume_without_retraining_or_losing_a_shard(
    trained: Trained, tmp_path: Path
) -> None:
    dm = trained.datamodule
    first: list[tuple[int, int]] = []
    with one_torch_thread():
        with pytest.raises(_InterruptError):
            _ensemble(dm, tmp_path / "run", on_slice_end=_stop_after(5, first)).fit()
        assert not list((tmp_path / "run").rglob("*.tmp"))  # no partial checkpoint left behind
        second: list[tuple[int, int]] = []
        resumed = _ensemble(dm, tmp_path / "run", on_slice_end=lambda e: second.append((e.shard, e.slice)))
        report = resumed.fit()
    assert len(first) == 5 and len(second) == SHARDS * SLICES - 5
    assert not set(first) & set(second)  # no slice trained twice
    assert set(first) | set(second) == {(s, r) for s in range(SHARDS) for r in range(SLICES)}  # none lost
    assert report.total_slices == SHARDS * SLICES - 5
    for shard, weights in enumerate(_weights(resumed)):  # exactly the uninterrupted run's weights
        assert all(torch.equal(weights[k], trained.weights[shard][k]) for k in weights)
    assert resumed.fit().total_slices == 0

    # Unlearning interrupted after 2 of the 4 retrained slices, then resumed by asking again.
    index = int(resumed.slices[2][0][0])
    events: list[tuple[int, int]] = []
    interrupted = _ensemble(dm, tmp_path / "run", on_slice_end=_stop_after(2, events))
    with one_torch_thread(), pytest.raises(_InterruptError):
        interrupted.unlearn([index])
    restarted = _ensemble(dm, tmp_path / "run", on_slice_end=lambda e: events.append((e.shard, e.slice)))
    assert index in restarted.forgotten and restarted.pending_requests() == [0]
    with one_torch_thread():
        report_again = restarted.unlearn([index])
    assert report_again.already_forgotten == (index,) and report_again.slices_retrained == {2: 2}
    assert events == [(2, 0), (2, 1), (2, 2), (2, 3)]  # each slice retrained once, across the two runs
    assert restarted.pending_requests() == []
    assert [e["event"] for e in restarted.request_log()] == ["forget", "noop", "completed"]
    assert index not in restarted.shard_indices(2)
    assert len(restarted.constituents()) == SHARDS


def test_a_checkpoint_write_that_fails_leaves_no_file(
    datamodule: DigitsDataModule, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_save(payload: object, file: Any) -> None:
        file.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with one_torch_thread(), pytest.raises(OSError, match="disk full"):
        _ensemble(datamodule, tmp_path).fit()
    assert not list(tmp_path.rglob("*.pt")) and not list(tmp_path.rglob("*.tmp"))


# ---------------------------------------------------------------------------- SISA-DP
def test_gaussian_mechanism_calibration() -> None:
    sigmas = [gaussian_mechanism_sigma(epsilon, 1e-5) for epsilon in (0.5, 1.0, 4.0, 16.0)]
    assert sigmas == sorted(sigmas, reverse=True)  # more budget, less noise
    for epsilon, sigma in zip((0.5, 1.0, 4.0, 16.0), sigmas):
        assert math.isclose(_gaussian_privacy_profile(sigma, epsilon, 1.0), 1e-5, rel_tol=1e-3)  # tight at δ
        assert _gaussian_privacy_profile(sigma * 0.99, epsilon, 1.0) > 1e-5  # any less noise breaks (ε, δ)
    assert gaussian_mechanism_sigma(16.0, 1e-5, sensitivity=20.0) == pytest.approx(20 * sigmas[-1])
    assert sigmas[-1] == pytest.approx(0.344, abs=1e-3)
    with pytest.raises(ValueError, match=r"Expected `dp_epsilon` \(ε\) to be a positive number, but got 0"):
        gaussian_mechanism_sigma(0.0)


@pytest.mark.parametrize("epsilon", [1.0, 16.0])
def test_sisa_dp_publishes_clipped_weights_with_noise_calibrated_to_epsilon(
    trained: Trained, tmp_path: Path, epsilon: float
) -> None:
    clip = 5.0
    private = SISADPEnsemble(
        trained.datamodule,
        RECIPE,
        num_shards=SHARDS,
        num_slices=SLICES,
        checkpoint_dir=_copy(trained, tmp_path),  # same data and settings: the checkpoints are reused
        dp_epsilon=epsilon,
        dp_clip_norm=clip,
        dp_mechanism="output_perturbation",
        progress_bar=False,
    )
    sigma = private.dp_sigma
    assert sigma is not None and sigma == pytest.approx(gaussian_mechanism_sigma(epsilon, 1e-5, sensitivity=2 * clip))
    for published, clean in zip(_weights(private), trained.weights):
        norm = torch.linalg.vector_norm(torch.cat([t.flatten() for t in clean.values()]))
        scale = min(1.0, clip / float(norm))
        noise = torch.cat([(published[k] - clean[k] * scale).flatten() for k in clean])
        assert float(noise.std()) == pytest.approx(sigma, rel=0.02)
        assert abs(float(noise.mean())) < 0.02 * sigma


def test_sisa_dp_sgd_spends_at_most_epsilon_by_the_accountant_and_keeps_its_plan_after_unlearning(
    datamodule: DigitsDataModule, tmp_path: Path
) -> None:
    from lightning_unlearn.modules.dp_sgd import spent_epsilon

    private = SISADPEnsemble(
        datamodule, RECIPE, num_shards=2, num_slices=2, checkpoint_dir=tmp_path, progress_bar=False
    )
    assert private.dp_mechanism == "dp_sgd" and private.dp_sigma is None  # no output noise: DP-SGD trains privately
    plans = {shard: private.dp_plan(shard) for shard in range(2)}
    for shard, spent in private.dp_spent_epsilon.items():
        assert 15.5 < spent <= 16.0
        plan = [(rate, steps) for rate, _, steps in plans[shard]]
        sigma, steps = private.dp_noise_multipliers[shard], private.dp_step_noise_multipliers[shard]
        scales = [value / sigma for value in steps]
        assert spent_epsilon(sigma, plan, 1e-5, scales) == pytest.approx(spent)
        assert spent_epsilon(sigma * 0.95, plan, 1e-5, scales) > 16.0  # the smallest σ
    private.fit()
    accuracy = predict(private.as_module(), datamodule.dataloader("validation")).accuracy()
    assert accuracy > 0.5  # 5 classes: well above chance
    private.unlearn(datamodule.splits["forget"].indices[:5])
    assert {shard: private.dp_plan(shard) for shard in range(2)} == plans  # forgetting leaves the plan (and ε)


def test_sisa_dp_sgd_takes_every_step_its_accountant_counts_at_its_learning_rate(
    datamodule: DigitsDataModule, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The accountant composes the plan: each fit must take exactly the plan's steps, with the DP learning rate."""
    from lightning_unlearn.modules import dp_sgd

    taken: list[tuple[int, float]] = []
    finish = dp_sgd.DPSGDClassifierModule.on_fit_end

    def record(module: dp_sgd.DPSGDClassifierModule) -> None:
        learning_rate = module.trainer.optimizers[0].param_groups[0]["lr"]
        taken.append((module.trainer.global_step, learning_rate))
        finish(module)

    monkeypatch.setattr(dp_sgd.DPSGDClassifierModule, "on_fit_end", record)
    private = SISADPEnsemble(
        datamodule,
        RECIPE,
        num_shards=2,
        num_slices=3,
        checkpoint_dir=tmp_path,
        dp_batch_size=40,  # sample rates below 1 on the later slices: several Poisson steps per epoch
        dp_learning_rate=0.05,
        progress_bar=False,
    )
    planned = [total for shard in range(2) for _, _, total in private.dp_plan(shard)]
    assert any(rate < 1 for rate, _, _ in private.dp_plan(0))
    with one_torch_thread():
        private.fit()
    assert taken == [(steps, 0.05) for steps in planned]


@pytest.mark.parametrize("schedule", ["inverse_batch", "constant"])
def test_sisa_dp_sgd_noise_schedule_scales_each_step_by_its_expected_batch(
    datamodule: DigitsDataModule, tmp_path: Path, schedule: str
) -> None:
    private = SISADPEnsemble(
        datamodule,
        RECIPE,
        num_shards=2,
        num_slices=3,
        checkpoint_dir=tmp_path,
        dp_batch_size=100,
        dp_noise_schedule=schedule,  # type: ignore[arg-type]
    )
    for shard in range(2):
        sizes = [sum(len(piece) for piece in private.slices[shard][: step + 1]) for step in range(3)]
        batches = [rate * size for (rate, _, _), size in zip(private.dp_plan(shard), sizes)]
        assert batches[0] < batches[-1] == pytest.approx(100)  # a small first slice, then Poisson batches of B
        sigma, steps = private.dp_noise_multipliers[shard], private.dp_step_noise_multipliers[shard]
        expected = [sigma * 100 / batch for batch in batches] if schedule == "inverse_batch" else [sigma] * 3
        assert steps == pytest.approx(expected)
        assert min(steps) == pytest.approx(sigma)
        assert private.dp_spent_epsilon[shard] <= 16.0


def test_sisa_dp_refuses_bad_mechanism_settings(datamodule: DigitsDataModule, tmp_path: Path) -> None:
    with pytest.raises(
        ValueError,
        match=re.escape("Expected `dp_mechanism` to be 'dp_sgd' or 'output_perturbation', but got 'laplace'."),
    ):
        SISADPEnsemble(datamodule, RECIPE, 2, 2, checkpoint_dir=tmp_path, dp_mechanism="laplace")  # type: ignore[arg-type]
    with pytest.raises(
        ValueError, match=re.escape("Expected `dp_batch_size` to be a positive integer or None, but got 0.")
    ):
        SISADPEnsemble(datamodule, RECIPE, 2, 2, checkpoint_dir=tmp_path, dp_batch_size=0)
    with pytest.raises(
        ValueError, match=re.escape("Expected `dp_learning_rate` to be a positive number or None, but got -0.1.")
    ):
        SISADPEnsemble(datamodule, RECIPE, 2, 2, checkpoint_dir=tmp_path, dp_learning_rate=-0.1)
    with pytest.raises(
        ValueError,
        match=re.escape("Expected `dp_noise_schedule` to be 'inverse_batch' or 'constant', but got 'linear'."),
    ):
        SISADPEnsemble(datamodule, RECIPE, 2, 2, checkpoint_dir=tmp_path, dp_noise_schedule="linear")  # type: ignore[arg-type]


# ---------------------------------------------------------------------------- DDP
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _ddp_worker(rank: int, world_size: int, port: int, directory: str, forget_index: int) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world_size)
    try:
        dm = DigitsDataModule()
        dm.setup()
        ensemble = SISAEnsemble(dm, RECIPE, SHARDS, SLICES, checkpoint_dir=directory, progress_bar=False)
        fitted = ensemble.fit()
        weights = _weights(ensemble)
        report = ensemble.unlearn([forget_index])
        outcome = {
            "fit": fitted.slices_trained,
            "weights": weights,
            "unlearn": report.slices_retrained,
            "after": _weights(ensemble),
        }
        torch.save(outcome, os.path.join(directory, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


@pytest.mark.ddp
def test_two_ranks_train_their_own_shards_and_both_hold_the_whole_ensemble(trained: Trained, tmp_path: Path) -> None:
    ensemble = _ensemble(trained.datamodule, trained.directory)
    forget_index = int(ensemble.slices[1][2][0])  # shard 1 belongs to rank 1
    mp.spawn(_ddp_worker, args=(2, _free_port(), str(tmp_path), forget_index), nprocs=2, join=True)
    outcomes = [torch.load(tmp_path / f"rank{rank}.pt", weights_only=False) for rank in range(2)]
    assert outcomes[0]["fit"] == {0: SLICES, 2: SLICES}  # s % world_size == rank
    assert outcomes[1]["fit"] == {1: SLICES}
    assert outcomes[0]["unlearn"] == {} and outcomes[1]["unlearn"] == {1: SLICES - 2}
    for key in ("weights", "after"):
        for shard in range(SHARDS):
            rank0, rank1 = outcomes[0][key][shard], outcomes[1][key][shard]
            assert all(torch.equal(rank0[k], rank1[k]) for k in rank0)  # the whole ensemble on both ranks
    for shard in range(SHARDS):  # and the same ensemble as one process trains
        for k, v in outcomes[0]["weights"][shard].items():
            torch.testing.assert_close(v, trained.weights[shard][k], rtol=0, atol=1e-6)
    log = [json.loads(line) for line in (tmp_path / "requests.jsonl").read_text().splitlines()]
    assert [entry["event"] for entry in log] == ["forget", "completed"]  # written once, by rank 0
