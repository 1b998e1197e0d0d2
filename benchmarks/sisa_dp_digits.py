"""SISA against SISA-DP (DP-SGD) on the digits OOD scenario, side by side with retraining, over seeds.

Run: ``python benchmarks/sisa_dp_digits.py [--seeds 0 1 2] [--shards 4] [--slices 5] [--epsilons 1 2 4 8]``.

Every seed builds its own splits, target, shadow-model oracle and retrained reference, then:

1. trains and unlearns (the whole forget set) four ensembles of ``S`` shards × ``R`` slices:
   plain SISA; SISA-DP with :class:`~lightning_unlearn.modules.sisa.SISADPEnsemble`'s defaults
   (DP-SGD, ε = 16, δ = 1e-5 per constituent); "SISA-DP lr 3e-3 B 32", the DP-SGD settings
   SISA-DP had before they were chosen (the recipe's learning rate 3e-3, expected batch 32, one
   noise multiplier for every step), for the before → after; and "SISA-DP constant σ", the new
   learning rate and batch with one noise multiplier for every step, to show what the noise
   schedule adds;
2. prints the comparison (:class:`~lightning_unlearn.metrics.UnlearningReport`: accuracy on
   retain / forget / test, FR, the MIA score forget vs ``heldout``, the unlearning time and its
   speed-up over retraining, the verdict against retraining) and, for each DP-SGD ensemble, the
   ε the RDP accountant spent per constituent, the noise multiplier and the settings;
3. trains SISA-DP with its defaults at each ε of ``--epsilons`` (the forget set removed before
   training, which trains what unlearning retrains) and prints its test accuracy: the
   accuracy-against-ε line.

With several seeds, a summary gives every figure's mean ± standard deviation over the seeds,
the verdicts counted, and the check the issue sets: SISA-DP's mean test accuracy within 5
points of plain SISA's.

Held-out discipline: no model and no choice here reads ``test`` or ``heldout``; SISA-DP's
defaults were chosen on ``validation`` (and ``retain``) of seeds 10–14, none of which this
benchmark uses by default (docs/sisa_dp.md gives the tuning). ``test`` and ``heldout`` are
read for the tables alone.

Times: wall-clock on CPU with one intra-op thread, one run each (not repeated): a method's time
is its ``unlearn`` call; "train s" is the ensemble's first ``fit``. Not a timed test: numbers
vary run to run.
"""

from __future__ import annotations

import argparse
import logging
import math
import shutil
import statistics
import tempfile
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from lightning_unlearn import DigitsDataModule, TrainingRecipe, predict, train_classifier
from lightning_unlearn.metrics import ShadowModelOracle, UnlearningReport
from lightning_unlearn.modules.sisa import SISADPEnsemble, SISAEnsemble

QUIET = {"enable_progress_bar": False, "enable_model_summary": False}
#: The SISA-DP rows beside plain SISA: its defaults, then the DP-SGD settings it had before they were
#: chosen on validation (the recipe's Adam learning rate 3e-3, expected batch 32, one noise multiplier
#: for every step), and between them the new learning rate and batch with one noise multiplier.
DP_ROWS: dict[str, dict[str, Any]] = {
    "SISA-DP": {},
    "SISA-DP constant σ": {"dp_noise_schedule": "constant"},
    "SISA-DP lr 3e-3 B 32": {"dp_learning_rate": 3e-3, "dp_batch_size": 32, "dp_noise_schedule": "constant"},
}


@dataclass
class SeedResult:
    """One seed's report, the DP ensembles' privacy, their training times and the ε line."""

    report: UnlearningReport
    privacy: dict[str, str]
    spent: dict[str, float]
    training_seconds: dict[str, float]
    epsilon_line: dict[float, tuple[float, float]]  # target ε → (spent ε, test accuracy)


def _quiet() -> None:
    warnings.filterwarnings("ignore")
    for name in ("lightning.pytorch", "lightning.fabric", "lightning_unlearn"):
        logging.getLogger(name).setLevel(logging.ERROR)


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(cell.rjust(w) if i else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths)))
        for row in [header, *rows]
    ]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


def _mean_std(values: Sequence[float | None], digits: int = 3) -> str:
    finite = [v for v in values if v is not None and not math.isnan(v)]
    if not finite:
        return "—"
    spread = statistics.stdev(finite) if len(finite) > 1 else 0.0
    return f"{statistics.fmean(finite):.{digits}f}±{spread:.{digits}f}"


def _privacy(ensemble: SISADPEnsemble) -> str:
    sigmas = [round(value, 2) for value in ensemble.dp_step_noise_multipliers[0]]
    rates = sorted({round(rate, 3) for rate, _, _ in ensemble.dp_plan(0)})
    steps = sum(total for _, _, total in ensemble.dp_plan(0))
    learning_rate = ensemble.dp_learning_rate or ensemble.recipe.learning_rate
    return (
        f"spent ε per constituent {[round(v, 3) for v in ensemble.dp_spent_epsilon.values()]} (target"
        f" {ensemble.dp_epsilon:g}, δ = {ensemble.dp_delta:g}, RDP accountant); noise multiplier of shard 0's"
        f" steps {sigmas} ({ensemble.dp_noise_schedule});"
        f" clip {ensemble.dp_clip_norm:g}; expected batch {ensemble.dp_batch_size} (sample rates {rates});"
        f" {steps} noised steps per constituent; Adam lr {learning_rate:g}"
    )


def _run_seed(seed: int, shards: int, slices: int, epsilons: Sequence[float]) -> SeedResult:
    workdir = Path(tempfile.mkdtemp(prefix="sisa-dp-bench-"))
    dm = DigitsDataModule(seed=seed)
    dm.setup()
    recipe = TrainingRecipe(seed=seed)
    target = train_classifier(recipe, dm, "target_train", **QUIET)
    retrained = train_classifier(recipe, dm, "retain", **QUIET)
    oracle = ShadowModelOracle(seed=seed).fit(recipe, dm, trainer_overrides=QUIET)
    forget = dm.splits["forget"].indices

    def build(name: str, folder: Path) -> SISAEnsemble:
        if name == "SISA":
            return SISAEnsemble(dm, recipe, shards, slices, checkpoint_dir=folder, progress_bar=False)
        return SISADPEnsemble(dm, recipe, shards, slices, checkpoint_dir=folder, progress_bar=False, **DP_ROWS[name])

    models: dict[str, nn.Module] = {}
    times: dict[str, float] = {"retrained": retrained.seconds}
    privacy: dict[str, str] = {}
    spent: dict[str, float] = {}
    training: dict[str, float] = {}
    for position, name in enumerate(["SISA", *DP_ROWS]):
        ensemble = build(name, workdir / f"ensemble_{position}")
        training[name] = ensemble.fit().seconds
        times[name] = ensemble.unlearn(forget).seconds
        models[name] = ensemble.as_module()
        if isinstance(ensemble, SISADPEnsemble):
            privacy[name] = _privacy(ensemble)
            spent[name] = max(ensemble.dp_spent_epsilon.values())

    line: dict[float, tuple[float, float]] = {}
    for epsilon in epsilons:
        private = SISADPEnsemble(
            dm,
            recipe,
            num_shards=shards,
            num_slices=slices,
            checkpoint_dir=workdir / f"epsilon_{epsilon:g}",
            dp_epsilon=epsilon,
            progress_bar=False,
        )
        private.unlearn(forget)  # before any training: trains the ensemble without the forget set
        test_accuracy = predict(private.as_module(), dm.dataloader("test")).accuracy()
        line[float(epsilon)] = (max(private.dp_spent_epsilon.values()), test_accuracy)

    report = UnlearningReport.evaluate(
        dm,
        oracle,
        original=target.module,
        retrained=retrained.module,
        unlearned=models,
        times=times,
        mia_seed=seed,
    )
    shutil.rmtree(workdir, ignore_errors=True)
    return SeedResult(report, privacy, spent, training, line)


def _print_seed(seed: int, result: SeedResult, shards: int, slices: int) -> None:
    print(f"\n=================== seed {seed}: S = {shards} shards × R = {slices} slices, forgetting the forget set")
    print(result.report)
    for name, line in result.privacy.items():
        print(f"{name}: {line}")
    print("ensemble training s: " + "; ".join(f"{k} {v:.2f}" for k, v in result.training_seconds.items()))
    sisa = result.report.model("SISA").test_accuracy
    dp = result.report.model("SISA-DP").test_accuracy
    print(f"SISA-DP test accuracy {dp:.3f} vs SISA's {sisa:.3f}: gap {sisa - dp:+.3f} (target ≤ 0.05)")
    if result.epsilon_line:
        print(
            "SISA-DP (defaults) test accuracy against ε: "
            + "; ".join(f"ε {e:g} (spent {s:.2f}) → {a:.3f}" for e, (s, a) in result.epsilon_line.items())
        )


def _print_summary(seeds: Sequence[int], results: Sequence[SeedResult]) -> None:
    names = [model.name for model in results[0].report.models]
    rows = []
    for name in names:
        models = [result.report.model(name) for result in results]
        verdicts: dict[str, int] = {}
        for model in models:
            verdicts[model.verdict_label] = verdicts.get(model.verdict_label, 0) + 1
        rows.append(
            [
                name,
                _mean_std([m.retain_accuracy for m in models]),
                _mean_std([m.forget_accuracy for m in models]),
                _mean_std([m.test_accuracy for m in models]),
                _mean_std([m.mia.score for m in models]),
                _mean_std([result.spent.get(name) for result in results], 2),
                _mean_std([m.seconds for m in models], 2),
                _mean_std([result.training_seconds.get(name) for result in results], 2),
                ", ".join(f"{label} ×{count}" for label, count in verdicts.items()),
            ]
        )
    print(
        f"\nSummary over seeds {list(seeds)} (mean ± standard deviation; test and MIA (forget vs heldout) measured"
        " after unlearning; ε: the largest spent by a constituent, by the RDP accountant, δ = 1e-5; time s: the"
        " unlearning, train s: the ensemble's first fit)"
    )
    print(
        _table(
            ["model", "acc retain", "acc forget", "acc test", "MIA", "ε spent", "time s", "train s", "verdicts"],
            rows,
        )
    )
    gaps = [r.report.model("SISA").test_accuracy - r.report.model("SISA-DP").test_accuracy for r in results]
    gap = statistics.fmean(gaps)
    print(
        f"check: SISA-DP's mean test accuracy within 0.05 of SISA's → gap {gap:+.3f}"
        f" (per seed {[round(g, 3) for g in gaps]}) → {'PASS' if gap <= 0.05 else 'FAIL'}"
    )
    if results[0].epsilon_line:
        sisa = statistics.fmean(r.report.model("SISA").test_accuracy for r in results)
        line_rows = []
        for epsilon in results[0].epsilon_line:
            accuracies = [r.epsilon_line[epsilon][1] for r in results]
            line_rows.append(
                [
                    f"{epsilon:g}",
                    _mean_std([r.epsilon_line[epsilon][0] for r in results], 2),
                    _mean_std(accuracies),
                    f"{sisa - statistics.fmean(accuracies):+.3f}",
                ]
            )
        print("\nSISA-DP (defaults) against ε, the forget set removed (mean ± standard deviation over the seeds)")
        print(_table(["target ε", "ε spent", "acc test", "gap to SISA"], line_rows))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="one full run per seed")
    parser.add_argument("--shards", type=int, default=4, help="S of every ensemble")
    parser.add_argument("--slices", type=int, default=5, help="R of every ensemble")
    parser.add_argument(
        "--epsilons", type=float, nargs="*", default=[1.0, 2.0, 4.0, 8.0], help="ε values of the accuracy-vs-ε line"
    )
    arguments = parser.parse_args()
    bad = [e for e in arguments.epsilons if not e > 0]
    if bad:
        parser.error(f"Expected every --epsilons value to be positive, but got {bad}.")
    torch.set_num_threads(1)
    _quiet()
    results = []
    for seed in arguments.seeds:
        result = _run_seed(seed, arguments.shards, arguments.slices, arguments.epsilons)
        _print_seed(seed, result, arguments.shards, arguments.slices)
        results.append(result)
    _print_summary(arguments.seeds, results)


if __name__ == "__main__":
    main()
