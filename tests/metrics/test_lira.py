"""LiRA's maths on hand-built Gaussians, its figures and errors, the torchmetric, and DDP == single process."""

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

from lightning_unlearn.metrics.lira import (
    LiRAGaussians,
    LiRAReferenceStatistics,
    fit_lira_gaussians,
    lira_attack,
    lira_attack_from_logits,
    lira_result,
    lira_scores,
)
from lightning_unlearn.metrics.lira_score import LiRAScore

LOG_2 = math.log(2.0)


def _gaussians(mean_in: list[float], std_in: list[float], mean_out: list[float], std_out: list[float]) -> LiRAGaussians:
    values = [torch.tensor(v, dtype=torch.float64) for v in (mean_in, std_in, mean_out, std_out)]
    return LiRAGaussians(*values, global_variance=False)


# ---------------------------------------------------------------------------- Gaussians
#: Two candidates, four models: models 0–1 trained on candidate 0, models 2–3 on candidate 1.
CONFIDENCES = torch.tensor([[4.0, -1.0], [6.0, 1.0], [0.0, 1.0], [2.0, 7.0]])
IS_IN = torch.tensor([[True, False], [True, False], [False, True], [False, True]])


def test_per_candidate_gaussians_are_the_unbiased_mean_and_spread_of_each_side() -> None:
    gaussians = fit_lira_gaussians(CONFIDENCES, IS_IN, variance="per_candidate")
    assert gaussians.global_variance is False
    assert gaussians.mean_in.tolist() == [5.0, 4.0]  # (4 + 6) / 2, (1 + 7) / 2
    assert gaussians.mean_out.tolist() == [1.0, 0.0]  # (0 + 2) / 2, (−1 + 1) / 2
    assert gaussians.std_in.tolist() == pytest.approx([math.sqrt(2.0), math.sqrt(18.0)])
    assert gaussians.std_out.tolist() == pytest.approx([math.sqrt(2.0), math.sqrt(2.0)])


def test_global_variance_pools_the_within_candidate_spread() -> None:
    gaussians = fit_lira_gaussians(CONFIDENCES, IS_IN, variance="global")
    assert gaussians.global_variance is True
    assert gaussians.mean_in.tolist() == [5.0, 4.0]  # means stay per candidate
    # IN: (2 + 18) / (1 + 1) = 10; OUT: (2 + 2) / 2 = 2.
    assert gaussians.std_in.tolist() == pytest.approx([math.sqrt(10.0)] * 2)
    assert gaussians.std_out.tolist() == pytest.approx([math.sqrt(2.0)] * 2)


def test_auto_variance_is_global_below_64_models_as_the_paper_advises() -> None:
    generator = torch.Generator().manual_seed(0)
    for models, expected in ((16, True), (63, True), (64, False)):
        confidences = torch.randn(models, 3, generator=generator, dtype=torch.float64)
        is_in = (torch.arange(models) % 2 == 0).unsqueeze(1).expand(models, 3).clone()
        assert fit_lira_gaussians(confidences, is_in).global_variance is expected


def test_a_constant_side_gets_the_floor_instead_of_zero_variance() -> None:
    confidences = torch.tensor([[30.0], [30.0], [-2.0], [0.0]])
    is_in = torch.tensor([[True], [True], [False], [False]])
    gaussians = fit_lira_gaussians(confidences, is_in, variance="per_candidate")
    assert gaussians.std_in.item() == 1e-3 and gaussians.std_out.item() == pytest.approx(math.sqrt(2.0))


# ---------------------------------------------------------------------------- scores
def test_online_score_is_the_log_likelihood_ratio() -> None:
    gaussians = _gaussians([2.0, 2.0, 0.0], [1.0, 1.0, 2.0], [0.0, 0.0, 0.0], [2.0, 1.0, 1.0])
    scores = lira_scores(torch.tensor([1.0, 2.0, 0.0], dtype=torch.float64), gaussians)
    # log N(1; 2, 1) − log N(1; 0, 2²) = (−½ − 0) − (−⅛ − log 2)
    # log N(2; 2, 1) − log N(2; 0, 1)  = 0 − (−2)
    # log N(0; 0, 2²) − log N(0; 0, 1) = −log 2
    assert scores.tolist() == pytest.approx([-0.375 + LOG_2, 2.0, -LOG_2], abs=1e-12)


def test_offline_score_is_the_one_sided_test_against_out() -> None:
    gaussians = _gaussians([9.0, 9.0, 9.0], [1.0, 1.0, 1.0], [0.0, 1.0, -3.0], [1.0, 2.0, 1.0])
    z_95 = 1.6448536269514722  # Pr[Z > z_95] = 0.05
    observed = torch.tensor([0.0, 1.0 + 2.0 * z_95, -3.0 - 40.0], dtype=torch.float64)
    scores = lira_scores(observed, gaussians, variant="offline")
    # −log Pr[Z > μ_out] = log 2; −log 0.05; far below μ_out, Pr[Z > φ] rounds to 1: 0, not NaN.
    assert scores.tolist() == pytest.approx([LOG_2, -math.log(0.05), 0.0], abs=1e-9)


def test_offline_and_online_rank_alike_when_in_and_out_share_a_variance() -> None:
    """Equal variance σ and one shift Δ = μ_in − μ_out: online = (Δ/σ)·z − Δ²/(2σ²), offline = −log Pr[Z > z]."""
    generator = torch.Generator().manual_seed(3)
    count, shift, spread = 300, 2.5, 1.7
    mean_out = 4.0 * torch.randn(count, generator=generator, dtype=torch.float64)  # candidates differ
    same = torch.full((count,), spread, dtype=torch.float64)
    gaussians = LiRAGaussians(mean_out + shift, same, mean_out, same, global_variance=True)
    observed = mean_out + 3.0 * torch.randn(count, generator=generator, dtype=torch.float64)
    online = lira_scores(observed, gaussians, variant="online")
    offline = lira_scores(observed, gaussians, variant="offline")
    z = (observed - mean_out) / spread
    assert torch.allclose(online, shift / spread * z - shift**2 / (2 * spread**2), atol=1e-12)
    assert torch.equal(online.argsort(), offline.argsort())
    members = torch.arange(count) < 120
    results = [
        lira_result(scores[members], scores[~members], torch.arange(120), torch.arange(120, count))
        for scores in (online, offline)
    ]
    assert results[0].auc == results[1].auc
    assert results[0].tpr_at_1pct_fpr == results[1].tpr_at_1pct_fpr
    assert results[0].tpr_at_0_1pct_fpr == results[1].tpr_at_0_1pct_fpr


# ---------------------------------------------------------------------------- figures
def test_auc_and_tpr_at_low_fpr_with_the_false_positives_each_allows() -> None:
    # 200 non-members at 0, 1, …, 199; 10 members above all of them, 10 between the top two.
    nonmembers = torch.arange(200, dtype=torch.float64)
    members = torch.cat([torch.full((10,), 500.0), torch.full((10,), 198.5)]).double()
    result = lira_result(members, nonmembers, torch.arange(20), torch.arange(20, 220))
    assert result.false_positives_allowed(0.01) == 2 and result.false_positives_allowed(0.001) == 0
    assert result.tpr_at_1pct_fpr == 1.0  # threshold at 198: 1 false positive, every member above
    assert result.tpr_at_0_1pct_fpr == 0.5  # no false positive: only the ten at 500
    assert result.auc == pytest.approx((10 * 200 + 10 * 199) / (20 * 200))
    assert result.notes == (
        "LiRA's TPR at 0.1 % FPR is its TPR at zero false positives: 200 non-members cannot measure an FPR below"
        " 1/200 = 0.50 % (it needs at least 1,000).",
    )
    assert result.auc_half_width == pytest.approx(1.96 * math.sqrt(221 / (12 * 20 * 200)))
    payload = result.to_dict()
    assert payload["false_positives_at_1pct_fpr"] == 2 and payload["member_scores"]["0"] == 500.0
    assert len(payload["nonmember_scores"]) == 200 and "member_scores" not in result.to_dict(scores=False)


def test_enough_negatives_leave_no_note() -> None:
    result = lira_result(torch.ones(3).double(), torch.zeros(1000).double(), torch.arange(3), torch.arange(3, 1003))
    assert result.false_positives_allowed(0.001) == 1 and result.notes == ()


# ---------------------------------------------------------------------------- statistics
def _statistics(num_models: int = 8, seed: int = 0) -> LiRAReferenceStatistics:
    """Candidates 100…139 (labels 0–2): IN models are confident (+4), OUT ones not (−4), with noise."""
    generator = torch.Generator().manual_seed(seed)
    count = 40
    is_in = torch.zeros(num_models, count, dtype=torch.bool)
    for n in range(count):
        is_in[torch.randperm(num_models, generator=generator)[: num_models // 2], n] = True
    confidences = torch.where(is_in, 4.0, -4.0).double() + torch.randn(num_models, count, generator=generator).double()
    return LiRAReferenceStatistics(
        indices=torch.arange(100, 100 + count),
        labels=torch.arange(count) % 3,
        confidences=confidences,
        is_in=is_in,
        model_seeds=tuple(range(1, num_models + 1)),
        seconds=(0.5,) * num_models,
    )


def _logits_with_confidence(confidences: torch.Tensor, labels: torch.Tensor, num_classes: int = 3) -> torch.Tensor:
    """Logits whose logit-scaled confidence in ``labels`` is ``confidences`` (the others at 0)."""
    logits = torch.zeros(len(labels), num_classes, dtype=torch.float64)
    logits[torch.arange(len(labels)), labels] = confidences + math.log(num_classes - 1)
    return logits


def test_statistics_round_trip_through_tensors_and_json(tmp_path: Path) -> None:
    statistics = _statistics()
    statistics.save(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lira_references.json", "lira_references.pt"]
    loaded = LiRAReferenceStatistics.load(tmp_path)  # weights_only=True inside
    assert torch.equal(loaded.confidences, statistics.confidences) and torch.equal(loaded.is_in, statistics.is_in)
    assert loaded.model_seeds == statistics.model_seeds and loaded.training_seconds == 4.0


def test_attack_from_logits_tells_confident_members_from_unsure_nonmembers() -> None:
    statistics = _statistics()
    labels = statistics.labels
    logits = _logits_with_confidence(torch.where(torch.arange(40) < 20, 4.0, -4.0).double(), labels)
    result = lira_attack_from_logits(
        statistics, logits[:20], labels[:20], statistics.indices[:20], logits[20:], labels[20:], statistics.indices[20:]
    )
    assert result.auc == 1.0 and result.tpr_at_1pct_fpr == 1.0 and result.num_models == 8
    assert result.member_indices == tuple(range(100, 120)) and result.global_variance is True


def test_a_model_that_saw_nothing_is_near_chance() -> None:
    statistics = _statistics(num_models=16, seed=1)
    generator = torch.Generator().manual_seed(5)
    observed = -4.0 + torch.randn(40, generator=generator, dtype=torch.float64)  # OUT for every candidate
    result = lira_attack(statistics, observed[:20], statistics.indices[:20], observed[20:], statistics.indices[20:])
    assert abs(result.auc - 0.5) < result.auc_half_width


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: fit_lira_gaussians(CONFIDENCES, IS_IN, variance="pooled"), ValueError, r"Expected `variance` to be"),
        (lambda: fit_lira_gaussians(CONFIDENCES, IS_IN.int()), TypeError, r"Expected `is_in` to be a torch.bool"),
        (lambda: fit_lira_gaussians(CONFIDENCES.long(), IS_IN), TypeError, r"Expected `confidences` to hold real"),
        (
            lambda: fit_lira_gaussians(CONFIDENCES, IS_IN[:, :1]),
            ValueError,
            r"Expected `is_in` of the shape of `confidences` \(4, 2\), but got \(4, 1\)",
        ),
        (
            lambda: fit_lira_gaussians(torch.tensor([[float("nan")], [0.0]]), torch.tensor([[True], [False]])),
            ValueError,
            r"Expected `confidences` to be finite, but got 1 non-finite values",
        ),
        (
            lambda: fit_lira_gaussians(CONFIDENCES, torch.ones(4, 2, dtype=torch.bool)),
            ValueError,
            r"Expected every candidate to have at least one OUT model, but 2 have none",
        ),
        (
            lambda: fit_lira_gaussians(CONFIDENCES[:3], IS_IN[:3], variance="per_candidate"),
            ValueError,
            r"Expected at least two IN models per candidate for variance='per_candidate', but 1 candidates",
        ),
        (
            lambda: fit_lira_gaussians(CONFIDENCES[1:3], IS_IN[1:3], variance="global"),
            ValueError,
            r"Expected at least one candidate with two IN models to estimate a variance",
        ),
        (
            lambda: lira_scores(torch.zeros(3).double(), _gaussians([0.0], [1.0], [0.0], [1.0])),
            ValueError,
            r"Expected one confidence per Gaussian \(1\), but got 3 confidences",
        ),
        (
            lambda: lira_scores(torch.zeros(1).double(), _gaussians([0.0], [1.0], [0.0], [1.0]), variant="both"),
            ValueError,
            r"Expected `variant` to be one of \['online', 'offline'\], but got 'both'",
        ),
        (
            lambda: lira_result(torch.zeros(0).double(), torch.zeros(2).double(), torch.arange(0), torch.arange(2)),
            ValueError,
            r"Expected at least one member, but got none",
        ),
        (
            lambda: lira_result(torch.zeros(2).double(), torch.zeros(2).double(), torch.arange(3), torch.arange(2)),
            ValueError,
            r"Expected one index per score in `member_indices` \(2\), but got 3",
        ),
        (
            lambda: lira_attack(_statistics(), torch.zeros(1).double(), torch.tensor([7]), torch.zeros(1).double(),
                                torch.tensor([101])),
            ValueError,
            r"Expected `member_indices` to be candidates of the LiRA reference statistics, but got 1 that are not"
            r" \(e.g. global index 7\)",
        ),
        (
            lambda: lira_attack(_statistics(), torch.zeros(1).double(), torch.tensor([100]), torch.zeros(1).double(),
                                torch.tensor([101]), member_labels=torch.tensor([2])),
            ValueError,
            r"Expected the labels of `member_indices` to be the labels the reference models were scored on, but 1"
            r" differ \(e.g. global index 100\)",
        ),
        (
            lambda: lira_attack(_statistics(), torch.zeros(2).double(), torch.tensor([100, 101]),
                                torch.zeros(1).double(), torch.tensor([101])),
            ValueError,
            r"Expected members and non-members to be different samples, but 1 are both \(e.g. global index 101\)",
        ),
        (
            lambda: lira_attack("statistics", torch.zeros(1), torch.tensor([1]), torch.zeros(1), torch.tensor([2])),
            TypeError,
            r"Expected `statistics` to be LiRAReferenceStatistics, but got str",
        ),
        (
            lambda: LiRAReferenceStatistics(torch.tensor([2, 1]), torch.zeros(2).long(), torch.zeros(4, 2).double(),
                                            IS_IN, (1, 2, 3, 4), (0.0,) * 4),
            ValueError,
            r"Expected `indices` to be sorted and unique, but they are not",
        ),
        (
            lambda: LiRAReferenceStatistics(torch.tensor([1, 2]), torch.zeros(2).long(), torch.zeros(4, 2).double(),
                                            IS_IN, (1, 2), (0.0,) * 4),
            ValueError,
            r"Expected one seed and one time per reference model \(4\), but got 2 and 4",
        ),
    ],
)
def test_errors_name_the_expectation(call, error: type[Exception], message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(error, match=message):
        call()


# ---------------------------------------------------------------------------- the torchmetric
def _feed(metric: LiRAScore, logits: torch.Tensor, labels: torch.Tensor, indices: torch.Tensor,
          is_member: torch.Tensor, positions: list[int]) -> None:
    for start in range(0, len(positions), 7):
        batch = torch.tensor(positions[start : start + 7])
        metric.update(logits[batch], labels[batch], indices[batch], is_member[batch])


def _synthetic() -> tuple[LiRAReferenceStatistics, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """A model under test that remembers some members: a LiRA AUC well inside (0.5, 1)."""
    statistics = _statistics(num_models=8, seed=2)
    generator = torch.Generator().manual_seed(9)
    order = torch.randperm(39, generator=generator)  # 39 samples (odd): a 2-rank sampler pads one
    indices, labels = statistics.indices[order], statistics.labels[order]
    is_member = torch.arange(39) < 17
    observed = torch.where(is_member & (torch.rand(39, generator=generator) < 0.7), 3.5, -3.5).double()
    observed = observed + 1.5 * torch.randn(39, generator=generator, dtype=torch.float64)
    return statistics, _logits_with_confidence(observed, labels), labels, indices, is_member


def test_metric_matches_the_functional_and_counts_duplicates_once() -> None:
    statistics, logits, labels, indices, is_member = _synthetic()
    metric = LiRAScore(statistics)
    _feed(metric, logits, labels, indices, is_member, [*range(39), 0, 5, 20])  # three duplicates
    auc = metric.compute().item()
    direct = lira_attack_from_logits(
        statistics,
        logits[is_member], labels[is_member], indices[is_member],
        logits[~is_member], labels[~is_member], indices[~is_member],
    )
    assert metric.result is not None and metric.result.num_members + metric.result.num_nonmembers == 39
    assert auc == direct.auc and metric.result.tpr_at_1pct_fpr == direct.tpr_at_1pct_fpr
    assert 0.6 < auc < 0.95
    metric.reset()
    assert metric.result is None
    assert LiRAScore.higher_is_better is None and LiRAScore.full_state_update is False


def test_metric_offline_variant_and_errors() -> None:
    statistics, logits, labels, indices, is_member = _synthetic()
    offline = LiRAScore(statistics, variant="offline")
    _feed(offline, logits, labels, indices, is_member, list(range(39)))
    assert offline.compute().item() > 0.5 and offline.result is not None and offline.result.variant == "offline"
    with pytest.raises(TypeError, match=r"Expected `statistics` to be LiRAReferenceStatistics, but got dict"):
        LiRAScore({})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"Expected `variant` to be one of \['online', 'offline'\], but got 'on'"):
        LiRAScore(statistics, variant="on")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"Expected `variance` to be one of"):
        LiRAScore(statistics, variance="each")  # type: ignore[arg-type]
    only_members = LiRAScore(statistics)
    only_members.update(logits[:3], labels[:3], indices[:3], is_member=True)
    with pytest.raises(ValueError, match=r"Expected both member and non-member samples, but got only members"):
        only_members.compute()
    with pytest.raises(TypeError, match=r"Expected `is_member` to be a bool or a torch.bool tensor, but got int"):
        only_members.update(logits[:3], labels[:3], indices[:3], is_member=1)  # type: ignore[arg-type]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _ddp_worker(rank: int, world_size: int, port: int, out_dir: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world_size)
    try:
        statistics, logits, labels, indices, is_member = _synthetic()
        sampler = DistributedSampler(range(39), num_replicas=world_size, rank=rank, shuffle=False)
        metric = LiRAScore(statistics)
        _feed(metric, logits, labels, indices, is_member, list(sampler))
        auc = metric.compute().item()
        torch.save({"auc": auc, "result": metric.result}, os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


@pytest.mark.ddp
def test_two_processes_give_exactly_the_single_process_value(tmp_path: Path) -> None:
    statistics, logits, labels, indices, is_member = _synthetic()
    single = LiRAScore(statistics)
    _feed(single, logits, labels, indices, is_member, list(range(39)))
    expected = {"auc": single.compute().item(), "result": single.result}
    mp.spawn(_ddp_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    for rank in range(2):
        assert torch.load(tmp_path / f"rank{rank}.pt", weights_only=False) == expected  # bit for bit

