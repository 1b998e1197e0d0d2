"""The torchmetrics classes: state, de-duplication, errors, and DDP == single process."""

from __future__ import annotations

import math
import os
import socket
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.utils.data import DistributedSampler

from lightning_unlearn.inference import predict
from lightning_unlearn.metrics import (
    CatastrophicForgettingRate,
    ForgettingRate,
    MIAScore,
    forgetting_rate_from_membership,
    mia_score_from_logits,
)
from lightning_unlearn.metrics.classes import unique_by_index

# ---------------------------------------------------------------------------- synthetic data
NUM_MEMBERS, NUM_NONMEMBERS, NUM_CLASSES = 101, 76, 4  # 177 samples: odd, so a 2-rank sampler pads one


def _synthetic() -> dict[str, torch.Tensor]:
    """Members fit their labels a little better than non-members: an MIA score well inside (0.5, 1)."""
    generator = torch.Generator().manual_seed(11)
    total = NUM_MEMBERS + NUM_NONMEMBERS
    targets = torch.randint(0, NUM_CLASSES, (total,), generator=generator)
    logits = torch.randn(total, NUM_CLASSES, generator=generator)
    is_member = torch.zeros(total, dtype=torch.bool)
    is_member[torch.randperm(total, generator=generator)[:NUM_MEMBERS]] = True
    logits[torch.arange(total), targets] += torch.where(is_member, 1.5, 0.5)
    return {
        "logits": logits,
        "targets": targets,
        "indices": 1000 + torch.randperm(total, generator=generator),  # global indices, in no particular order
        "is_member": is_member,
        "before": torch.rand(total, generator=generator) < 0.8,
        "after": torch.rand(total, generator=generator) < 0.3,
    }


def _feed(metrics: dict[str, object], data: dict[str, torch.Tensor], positions: list[int]) -> None:
    for start in range(0, len(positions), 16):
        batch = torch.tensor(positions[start : start + 16])
        logits, targets, indices = data["logits"][batch], data["targets"][batch], data["indices"][batch]
        metrics["fr"].update(data["before"][batch], data["after"][batch], indices)  # type: ignore[attr-defined]
        metrics["cfr"].update(data["before"][batch], data["after"][batch], indices)  # type: ignore[attr-defined]
        metrics["mia"].update(logits, targets, indices, data["is_member"][batch])  # type: ignore[attr-defined]


def _compute(metrics: dict[str, object]) -> dict[str, object]:
    values = {name: metric.compute().item() for name, metric in metrics.items()}  # type: ignore[attr-defined]
    values["mia_result"] = metrics["mia"].result  # type: ignore[attr-defined]
    return values


def _metrics() -> dict[str, object]:
    return {"fr": ForgettingRate(), "cfr": CatastrophicForgettingRate(), "mia": MIAScore(seed=3)}


# ---------------------------------------------------------------------------- single process


def test_forgetting_rate_metric_matches_the_functional() -> None:
    metric = ForgettingRate()
    before = torch.tensor([True, True, True, False, True])
    after = torch.tensor([False, False, True, False, False])
    metric.update(before[:2], after[:2], torch.tensor([10, 11]))
    metric.update(before[2:], after[2:], torch.tensor([12, 13, 14]))
    assert metric.compute().item() == forgetting_rate_from_membership(before, after) == (4 - 1) / 4
    assert ForgettingRate.higher_is_better is True and ForgettingRate.full_state_update is False
    assert ForgettingRate.is_differentiable is False


def test_catastrophic_forgetting_rate_metric() -> None:
    metric = CatastrophicForgettingRate()
    metric.update(torch.tensor([True] * 10), torch.tensor([True] * 8 + [False] * 2), torch.arange(10))
    assert metric.compute().item() == pytest.approx(0.2)
    assert CatastrophicForgettingRate.higher_is_better is False


def test_duplicated_indices_are_counted_once() -> None:
    metric = ForgettingRate()
    metric.update(torch.tensor([True, True, False]), torch.tensor([False, True, False]), torch.tensor([1, 2, 3]))
    metric.update(torch.tensor([True]), torch.tensor([False]), torch.tensor([1]))  # the sampler's padding
    assert metric.compute().item() == 0.5  # BT = 2, BF = 1, AF = 2
    indices, values = unique_by_index(torch.tensor([5, 3, 5, 1]), torch.tensor([50, 30, 51, 10]))
    assert indices.tolist() == [1, 3, 5] and values.tolist() == [10, 30, 50]  # first occurrence wins


def test_forgetting_rate_metric_is_nan_without_members_before() -> None:
    metric = ForgettingRate()
    metric.update(torch.zeros(3, dtype=torch.bool), torch.zeros(3, dtype=torch.bool), torch.arange(3))
    assert math.isnan(metric.compute().item())


def test_mia_metric_matches_the_functional_on_digits(digits_scenario) -> None:
    dm, target = digits_scenario.datamodule, digits_scenario.target
    metric = MIAScore()
    for split, is_member in (("forget", True), ("heldout", False)):
        for inputs, targets, indices in dm.dataloader(split, batch_size=50):
            metric.update(target(inputs).detach(), targets, indices, is_member)
    forget, heldout = predict(target, dm.dataloader("forget")), predict(target, dm.dataloader("heldout"))
    expected = mia_score_from_logits(forget.logits, forget.targets, heldout.logits, heldout.targets)
    assert metric.compute().item() == expected.score
    assert metric.result == expected
    assert metric.result.score > 0.8


def test_mia_metric_is_reproducible_and_resettable() -> None:
    data = _synthetic()
    first, second = _metrics(), _metrics()
    _feed(first, data, list(range(len(data["indices"]))))
    _feed(second, data, list(range(len(data["indices"])))[::-1])  # another order, same samples
    assert _compute(first) == _compute(second)
    mia = first["mia"]
    mia.reset()  # type: ignore[attr-defined]
    assert mia.result is None  # type: ignore[attr-defined]
    with (
        pytest.warns(UserWarning, match=r"was called before the ``update`` method"),
        pytest.raises(ValueError, match=r"Expected both member and non-member samples, but `update\(\)` was never"),
    ):
        mia.compute()  # type: ignore[attr-defined]


def test_metric_errors_are_clear() -> None:
    with pytest.raises(TypeError, match=r"Expected `before` to be a torch.bool tensor of membership decisions, but"):
        ForgettingRate().update(torch.ones(2), torch.ones(2, dtype=torch.bool), torch.arange(2))
    with pytest.raises(ValueError, match=r"Expected `after` to hold one entry per global index \(2\), but got 3\."):
        ForgettingRate().update(torch.ones(2, dtype=torch.bool), torch.ones(3, dtype=torch.bool), torch.arange(2))
    with pytest.raises(ValueError, match=r"Expected `indices` to be a 1-D integer tensor of global sample indices"):
        ForgettingRate().update(torch.ones(2, dtype=torch.bool), torch.ones(2, dtype=torch.bool), torch.ones(2))
    with (
        pytest.warns(UserWarning, match=r"was called before the ``update`` method"),
        pytest.raises(ValueError, match=r"Expected the forget set to be non-empty, but got 0 samples\."),
    ):
        ForgettingRate().compute()
    with pytest.raises(ValueError, match=r"Expected `n_splits` to be at least 2, but got 1\."):
        MIAScore(n_splits=1)
    metric = MIAScore()
    with pytest.raises(TypeError, match=r"Expected `is_member` to be a bool or a torch.bool tensor, but got int\."):
        metric.update(torch.zeros(2, 3), torch.zeros(2, dtype=torch.long), torch.arange(2), 1)  # type: ignore[arg-type]
    metric.update(torch.randn(10, 3), torch.zeros(10, dtype=torch.long), torch.arange(10), True)
    with pytest.raises(ValueError, match=r"Expected both member and non-member samples, but got only members \(10"):
        metric.compute()
    nan_logits = torch.randn(10, 3)
    nan_logits[[2, 5]] = float("nan")
    metric.update(nan_logits, torch.zeros(10, dtype=torch.long), torch.arange(10, 20), False)
    with pytest.raises(ValueError, match=r"Expected `nonmember_losses` to be finite, but 2 of 10 samples are not"):
        metric.compute()


# ---------------------------------------------------------------------------- two processes


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _ddp_worker(rank: int, world_size: int, port: int, out_dir: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world_size)
    try:
        data = _synthetic()
        sampler = DistributedSampler(range(len(data["indices"])), num_replicas=world_size, rank=rank, shuffle=False)
        positions = list(sampler)
        metrics = _metrics()
        _feed(metrics, data, positions)
        values = _compute(metrics)
        values["fed"] = len(positions)
        torch.save(values, os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


@pytest.mark.ddp
def test_two_processes_give_exactly_the_single_process_values(tmp_path: Path) -> None:
    data = _synthetic()
    single = _metrics()
    _feed(single, data, list(range(len(data["indices"]))))
    expected = _compute(single)
    mp.spawn(_ddp_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    results = [torch.load(tmp_path / f"rank{rank}.pt", weights_only=False) for rank in range(2)]
    total = NUM_MEMBERS + NUM_NONMEMBERS
    assert sum(result.pop("fed") for result in results) == total + 1  # the sampler padded a duplicate
    for result in results:
        assert result == expected  # FR, CFR, MIA and the full MIA result, bit for bit
        assert result["mia_result"].num_members + result["mia_result"].num_nonmembers == total
    assert 0.55 < expected["mia"] < 0.95  # a score that any mistake in gathering would move
