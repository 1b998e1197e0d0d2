"""Forsaken on the embedded digits scenarios, side by side with full retraining.

Run: ``python benchmarks/forsaken_digits.py [--seeds 0 1 2] [--sections 1 2 3 4 5 6]``. Prints, in one run:

1. the OOD scenario (digits 0–4 the task, 179 OOD digits 5–9 inserted under random labels and
   then forgotten): FR, MIA score, accuracies and time of the original, the retrained model and
   Forsaken (the paper's per-class P, and the ``nearest`` P that does not keep the arg-max),
   per seed, with the speed-up over retraining measured in the same run;
2. the iteration sweep (Table VII) and 3. the λ sweep with and without ω (Table VIII);
4. retain scaling ×1, ×2, ×4 (more of the available digits on the target side);
5. ID forgetting and 6. poison correction (5→3 flips at 2 %, 4 %, 10 %: recall of class 5).

FR comes from :class:`~lightning_unlearn.metrics.ShadowModelOracle` (shadow model with the
target's recipe, XGBoost attack); the MIA score is the logistic-regression attack on forget vs
``heldout`` (0.5 = indistinguishable). Times are ``Trainer.fit`` wall-clock on CPU with one
intra-op thread for every model (the tensors are tiny; a shared 2-core machine thrashes with
two), so the ratio compares like with like. Not a timed test: the numbers vary run to run.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import torch
from torch import nn

from lightning_unlearn import DigitsDataModule, TrainingRecipe, predict, train_classifier
from lightning_unlearn.modules.forsaken import forsaken_unlearn

try:
    from lightning_unlearn.metrics import ShadowModelOracle, mia_score_from_logits

    HAVE_METRICS = True
except ImportError:  # the evaluation package is optional here: accuracy-based figures still print
    HAVE_METRICS = False

warnings.filterwarnings("ignore")
for _name in ("lightning.pytorch", "lightning.fabric", "lightning_unlearn"):
    logging.getLogger(_name).setLevel(logging.ERROR)

QUIET: dict[str, Any] = dict(enable_progress_bar=False, enable_model_summary=False)

#: Forsaken settings compared throughout (everything else is the module's default).
PAPER: dict[str, Any] = {}  # the module's defaults: per-class P, T=20, ξ=1, λ=1e-3, ω on, Adam(0.01)
NEAREST = dict(posterior="nearest", iterations=40, initial_gain=1e-3, optimizer=partial(torch.optim.Adam, lr=0.05))


@dataclass
class Row:
    name: str
    fr: float
    mia: float
    test: float
    test_drop: float
    forget: float
    seconds: float


class Evaluator:
    """FR (oracle), MIA and accuracies of any model on one datamodule, against one original."""

    def __init__(self, datamodule: DigitsDataModule, recipe: TrainingRecipe, original: nn.Module) -> None:
        self.datamodule, self.original = datamodule, original
        self.oracle: Any = None
        self.quality: Any = None
        self.test_original = predict(original, datamodule.dataloader("test")).accuracy()
        if HAVE_METRICS:
            self.oracle = ShadowModelOracle().fit(recipe, datamodule, trainer_overrides=QUIET)
            self.quality = self.oracle.quality(original, datamodule)

    def describe_oracle(self) -> str:
        if self.quality is None:
            return "oracle: lightning_unlearn.metrics unavailable — FR pending"
        q = self.quality
        return (
            f"oracle on the original: forget vs heldout balanced acc {q.forget_vs_heldout.balanced_accuracy:.3f}"
            f" (reliable={q.reliable}); retain vs test {q.retain_vs_test.balanced_accuracy:.3f}"
        )

    def row(self, name: str, model: nn.Module, seconds: float) -> Row:
        dm = self.datamodule
        forget = predict(model, dm.dataloader("forget"))
        test = predict(model, dm.dataloader("test")).accuracy()
        fr = mia = float("nan")
        if self.oracle is not None:
            fr = self.oracle.forgetting_rate(self.original, model, dm, quality=self.quality).value
            heldout = predict(model, dm.dataloader("heldout"))
            try:
                mia = mia_score_from_logits(forget.logits, forget.targets, heldout.logits, heldout.targets).score
            except ValueError:  # too few forget samples for a cross-validated attack (tiny poison sets)
                mia = float("nan")
        return Row(name, fr, mia, test, self.test_original - test, forget.accuracy(), seconds)


def print_rows(rows: Sequence[Row], retrain_seconds: float, title: str) -> None:
    print(f"\n{title}")
    print("(drop = original test accuracy minus this model's, in points; forget = accuracy under the inserted labels)")
    print(f"{'model':<34} {'FR':>6} {'MIA':>6} {'test':>6} {'drop':>6} {'forget':>7} {'time s':>8} {'speed-up':>9}")
    for r in rows:
        speed = retrain_seconds / r.seconds if r.seconds > 0 else float("nan")
        speed_text = "—" if r.seconds == 0 else f"{speed:8.1f}×"
        print(
            f"{r.name:<34} {r.fr:6.3f} {r.mia:6.3f} {r.test:6.3f} {100 * r.test_drop:+5.1f}p {r.forget:7.3f}"
            f" {r.seconds:8.3f} {speed_text:>9}"
        )


def timed_forsaken(target: nn.Module, dm: DigitsDataModule, repeats: int, **settings: Any) -> tuple[Any, float]:
    """Run Forsaken ``repeats`` times (deterministic); return the last result and the median time."""
    times, result = [], None
    for _ in range(repeats):
        result = forsaken_unlearn(target, dm, **settings)
        times.append(result.seconds)
    assert result is not None
    return result, statistics.median(times)


def scenario(dm: DigitsDataModule, recipe: TrainingRecipe) -> tuple[nn.Module, nn.Module, float, float, Evaluator]:
    dm.setup("fit")
    original = train_classifier(recipe, dm, **QUIET)
    retrained = train_classifier(recipe, dm, "retain", **QUIET)
    evaluator = Evaluator(dm, recipe, original.module.backbone.eval())
    return (
        original.module.backbone.eval(),
        retrained.module.backbone.eval(),
        original.seconds,
        retrained.seconds,
        evaluator,
    )


def headline(seeds: Sequence[int], recipe: TrainingRecipe, repeats: int) -> dict[str, Any]:
    print("=" * 100)
    print("1. Digits OOD scenario (label split 0–4 | 5–9, forget = 179 OOD samples): Forsaken vs full retraining")
    summary: dict[str, list[float]] = {k: [] for k in ("fr_paper", "fr_near", "drop_paper", "drop_near", "speed")}
    kept: dict[str, Any] = {}
    for seed in seeds:
        dm = DigitsDataModule(seed=seed)
        original, retrained, _, retrain_seconds, ev = scenario(dm, recipe)
        paper, paper_seconds = timed_forsaken(original, dm, repeats, **PAPER)
        near, near_seconds = timed_forsaken(original, dm, repeats, **NEAREST)
        rows = [
            ev.row("original", original, 0.0),
            ev.row("retrained (gold standard)", retrained, retrain_seconds),
            ev.row("Forsaken, per-class P (paper)", paper.model, paper_seconds),
            ev.row("Forsaken, nearest P, T=40", near.model, near_seconds),
        ]
        print_rows(rows, retrain_seconds, f"seed {seed} — {ev.describe_oracle()}")
        print(
            f"  in-module time (P, ω and the T iterations, no Trainer set-up): per-class"
            f" {paper.module.unlearning_seconds:.3f}s, nearest {near.module.unlearning_seconds:.3f}s;"
            f" per iteration {1000 * near.module.unlearning_seconds / near.module.iteration:.1f} ms;"
            f" generator parameters {near.module.generator_parameter_count:,}"
        )
        summary["fr_paper"].append(rows[2].fr)
        summary["fr_near"].append(rows[3].fr)
        summary["drop_paper"].append(rows[2].test_drop)
        summary["drop_near"].append(rows[3].test_drop)
        summary["speed"].append(retrain_seconds / near_seconds)
        if seed == seeds[0]:
            kept = dict(dm=dm, original=original, retrained=retrained, ev=ev, retrain_seconds=retrain_seconds)
    mean = {k: statistics.fmean(v) for k, v in summary.items()}
    print(
        f"\nmean over seeds {list(seeds)}: FR per-class {mean['fr_paper']:.3f}, nearest {mean['fr_near']:.3f}"
        f" (target ≥ 0.95); test-accuracy drop per-class {100 * mean['drop_paper']:.1f}p,"
        f" nearest {100 * mean['drop_near']:.1f}p (target ≤ 1p); speed-up of nearest vs retraining"
        f" {mean['speed']:.1f}× (target ≥ 50×)"
    )
    return kept


def sweep(title: str, kept: dict[str, Any], variants: Sequence[tuple[str, dict[str, Any]]], repeats: int = 1) -> None:
    ev: Evaluator = kept["ev"]
    rows = []
    for name, settings in variants:
        result, seconds = timed_forsaken(kept["original"], kept["dm"], repeats, **settings)
        rows.append(ev.row(name, result.model, seconds))
    rows.append(ev.row("retrained", kept["retrained"], kept["retrain_seconds"]))
    print_rows(rows, kept["retrain_seconds"], title)


def retain_scaling(recipe: TrainingRecipe, repeats: int) -> None:
    print("\n" + "=" * 100)
    print(
        "4. Retain scaling: more of the available digits on the target side (target_fraction 0.2 / 0.4 / 0.8);"
        " forget fixed at the OOD default, D0 = 1 % of retain"
    )
    print(f"{'scale':<6} {'retain':>7} {'probe':>6} {'retrain s':>10} {'Forsaken s':>11} {'speed-up':>9} {'drop':>7}")
    base: tuple[float, float] | None = None
    for scale, fraction in ((1, 0.2), (2, 0.4), (4, 0.8)):
        dm = DigitsDataModule(target_fraction=fraction)
        dm.setup("fit")
        original = train_classifier(recipe, dm, **QUIET).module.backbone.eval()
        retrain_seconds = train_classifier(recipe, dm, "retain", **QUIET).seconds
        result, seconds = timed_forsaken(original, dm, repeats, **NEAREST)
        drop = (
            predict(original, dm.dataloader("test")).accuracy()
            - predict(result.model, dm.dataloader("test")).accuracy()
        )
        base = base or (retrain_seconds, seconds)
        print(
            f"×{scale:<5} {len(dm.splits['retain']):>7} {len(dm.splits['probe']):>6} {retrain_seconds:>10.3f}"
            f" {seconds:>11.3f} {retrain_seconds / seconds:>8.1f}× {100 * drop:+6.1f}p"
            f"   (vs ×1: retrain {retrain_seconds / base[0]:.2f}×, Forsaken {seconds / base[1]:.2f}×)"
        )


def id_forgetting(recipe: TrainingRecipe, repeats: int) -> None:
    print("\n" + "=" * 100)
    dm = DigitsDataModule(kind="id", forget_size=100)
    original, retrained, _, retrain_seconds, ev = scenario(dm, recipe)
    rows = [
        ev.row("original", original, 0.0),
        ev.row("retrained", retrained, retrain_seconds),
    ]
    for name, settings in (("Forsaken, per-class P (paper)", PAPER), ("Forsaken, nearest P, T=40", NEAREST)):
        result, seconds = timed_forsaken(original, dm, repeats, **settings)
        rows.append(ev.row(name, result.model, seconds))
    print_rows(
        rows,
        retrain_seconds,
        f"5. ID forgetting (10 digit classes, 100 random training samples) — {ev.describe_oracle()}",
    )


def recall(model: nn.Module, dm: DigitsDataModule, cls: int) -> float:
    predictions = predict(model, dm.dataloader("test"))
    chosen = predictions.targets == cls
    return float((predictions.logits[chosen].argmax(dim=1) == cls).float().mean())


def poison(recipe: TrainingRecipe, repeats: int) -> None:
    print("\n" + "=" * 100)
    print("6. Poison correction: training samples of class 5 relabelled 3 (the forget set); recall of class 5 on test")
    header = (
        f"{'rate':>5} {'flipped':>8} {'model':<30} {'recall5':>8} {'FR':>6} {'test':>6} {'forget→5':>9} {'time s':>7}"
    )
    print(header)
    for rate in (0.02, 0.04, 0.10):
        dm = DigitsDataModule(kind="poison", flip_source=5, flip_target=3, flip_rate=rate)
        original, retrained, _, retrain_seconds, ev = scenario(dm, recipe)
        models: list[tuple[str, nn.Module, float]] = [
            ("original", original, 0.0),
            ("retrained", retrained, retrain_seconds),
        ]
        for name, settings in (("Forsaken per-class (P of 5s)", PAPER), ("Forsaken nearest", NEAREST)):
            result, seconds = timed_forsaken(original, dm, repeats, **settings)
            models.append((name, result.model, seconds))
        for name, model, seconds in models:
            row = ev.row(name, model, seconds)
            to_five = float((predict(model, dm.dataloader("forget")).logits.argmax(dim=1) == 5).float().mean())
            print(
                f"{rate:>5.2f} {len(dm.splits['forget']):>8} {name:<30} {recall(model, dm, 5):>8.3f} {row.fr:>6.3f}"
                f" {row.test:>6.3f} {to_five:>9.3f} {seconds:>7.3f}"
            )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--repeats", type=int, default=3, help="timed Forsaken runs per setting (median)")
    parser.add_argument(
        "--sections", type=int, nargs="+", default=[1, 2, 3, 4, 5, 6], help="which numbered sections to run"
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    start = time.perf_counter()
    recipe = TrainingRecipe()  # the target's recipe: MLP 64→256→128→K, Adam 3e-3, 60 epochs
    print(
        f"threads={torch.get_num_threads()} metrics={'yes' if HAVE_METRICS else 'no (FR pending)'}"
        f" load average at start={os.getloadavg()[0]:.2f} (a shared machine: times are noisy)"
    )
    print(
        "Forsaken settings: paper = the module's defaults (per-class P, T=20, ξ=1, λ=1e-3, ω on, initial_gain=3e-3,"
        " Adam lr 0.01); nearest = posterior='nearest' (5 neighbours), T=40, initial_gain=1e-3, Adam lr 0.05"
    )
    sections = set(args.sections)
    kept = headline(args.seeds, recipe, args.repeats) if sections & {1, 2, 3} else {}
    if 2 in sections:
        print("\n" + "=" * 100)
        sweep(
            "2. Iteration sweep (Table VII), nearest P, seed " + str(args.seeds[0]),
            kept,
            [(f"T={t}", {**NEAREST, "iterations": t}) for t in (5, 10, 20, 40, 80)],
        )
    if 3 in sections:
        print("\n" + "=" * 100)
        variants: list[tuple[str, dict[str, Any]]] = []
        for lam in (0.0, 1e-3, 1e-2, 1e-1, 1.0):
            for omega in (True, False):
                label = f"λ={lam:g} " + ("with ω (Eq. 5)" if omega else "ω=1 (Eq. 4)")
                variants.append((label, {**NEAREST, "penalty_weight": lam, "dynamic_penalty": omega}))
        sweep("3. λ sweep with and without ω (Table VIII), nearest P, T=40", kept, variants)
    if 4 in sections:
        retain_scaling(recipe, args.repeats)
    if 5 in sections:
        id_forgetting(recipe, args.repeats)
    if 6 in sections:
        poison(recipe, args.repeats)
    print(f"\nbenchmark wall-clock: {time.perf_counter() - start:.0f}s; load average at end={os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
