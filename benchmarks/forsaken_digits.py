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
``heldout`` (0.5 = indistinguishable), cross-validated over 5 folds: where the forget set holds
fewer samples than folds (the smallest poison sets) the MIA, and with it the verdict, is not
computed and the row says why. Every model row carries its verdict against the retrained model
(:func:`~lightning_unlearn.metrics.membership_verdict`: under-forgotten, matches retraining,
over-forgotten, or oracle and attack disagree).

Held-out discipline: every setting compared is fixed in this file; nothing here is chosen from
``test`` or ``heldout``, which are read only to report (Forsaken itself reads ``forget``,
``reference`` and ``probe``).

Timing policy (the one :mod:`lightning_unlearn.pipeline` follows): Forsaken's time is its
``Trainer.fit`` (it reads no evaluation while unlearning); retraining's time is its training
alone, with the target's recipe. Retraining and every Forsaken setting are timed ``--repeats``
times each (median reported, with min–max). Wall-clock on CPU with one intra-op thread for every
model (the tensors are tiny; a shared 2-core machine thrashes with two), so the ratio compares
like with like. Not a timed test: the numbers vary run to run.
"""

from __future__ import annotations

import argparse
import logging
import math
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
from lightning_unlearn.metrics import (
    ForgettingRateResult,
    MIAScoreResult,
    ShadowModelOracle,
    membership_verdict,
    mia_score_from_logits,
)
from lightning_unlearn.modules.forsaken import forsaken_unlearn

warnings.filterwarnings("ignore")
for _name in ("lightning.pytorch", "lightning.fabric", "lightning_unlearn"):
    logging.getLogger(_name).setLevel(logging.ERROR)

QUIET: dict[str, Any] = dict(enable_progress_bar=False, enable_model_summary=False)

#: Cross-validation folds of every MIA score (the attack needs at least this many forget samples).
MIA_FOLDS = 5

#: Forsaken settings compared throughout (everything else is the module's default).
PAPER: dict[str, Any] = {}  # the module's defaults: per-class P, T=20, ξ=1, λ=1e-3, ω on, Adam(0.01)
NEAREST = dict(posterior="nearest", iterations=40, initial_gain=1e-3, optimizer=partial(torch.optim.Adam, lr=0.05))


@dataclass
class Row:
    name: str
    fr: float
    mia: MIAScoreResult | None
    test: float
    test_drop: float
    forget: float
    seconds: list[float]
    verdict: str
    explanation: str = ""

    @property
    def mia_text(self) -> str:
        return "—" if self.mia is None else f"{self.mia.score:.3f}"

    @property
    def fr_text(self) -> str:
        return f"{self.fr:.3f}" if math.isfinite(self.fr) else "—"


def undefined_fr_note(rows: Sequence[Row]) -> str | None:
    """Why a row's FR is blank: the oracle called no forget sample a member of the original (BT = 0)."""
    if all(math.isfinite(r.fr) for r in rows):
        return None
    return (
        "FR —: the oracle called none of the forget samples members of the original (BT = 0), so FR = (AF − BF)/BT"
        " is undefined."
    )


def median(seconds: Sequence[float]) -> float:
    return statistics.median(seconds) if seconds else 0.0


class Evaluator:
    """FR (oracle), MIA, accuracies and the verdict of any model on one datamodule, against one
    original and one retrained model."""

    def __init__(
        self, datamodule: DigitsDataModule, recipe: TrainingRecipe, original: nn.Module, retrained: nn.Module
    ) -> None:
        self.datamodule, self.original, self.retrained = datamodule, original, retrained
        self.test_original = predict(original, datamodule.dataloader("test")).accuracy()
        self.oracle = ShadowModelOracle().fit(recipe, datamodule, trainer_overrides=QUIET)
        self.quality = self.oracle.quality(original, datamodule)
        self.reference_fr, self.reference_mia, _ = self._membership(retrained)

    def describe_oracle(self) -> str:
        q = self.quality
        return (
            f"oracle on the original: forget vs heldout balanced acc {q.forget_vs_heldout.balanced_accuracy:.3f}"
            f" (reliable={q.reliable}); retain vs test {q.retain_vs_test.balanced_accuracy:.3f}"
        )

    def _membership(self, model: nn.Module) -> tuple[ForgettingRateResult, MIAScoreResult | None, str]:
        """FR, and the MIA score (or why it is not computed)."""
        dm = self.datamodule
        fr = self.oracle.forgetting_rate(self.original, model, dm, quality=self.quality)
        forget = predict(model, dm.dataloader("forget"))
        if len(forget) < MIA_FOLDS:  # a cross-validated attack needs a forget sample in every fold
            return fr, None, f"forget set of {len(forget)} < {MIA_FOLDS} folds"
        heldout = predict(model, dm.dataloader("heldout"))
        mia = mia_score_from_logits(forget.logits, forget.targets, heldout.logits, heldout.targets, n_splits=MIA_FOLDS)
        return fr, mia, ""

    def row(self, name: str, model: nn.Module, seconds: Sequence[float]) -> Row:
        dm = self.datamodule
        forget = predict(model, dm.dataloader("forget"))
        test = predict(model, dm.dataloader("test")).accuracy()
        fr, mia, why = self._membership(model)
        if model is self.retrained:
            verdict, explanation = "reference", ""
        elif mia is None or self.reference_mia is None:
            verdict, explanation = f"— (no MIA: {why})", ""
        else:
            judged = membership_verdict(
                mia,
                self.reference_mia,
                forgetting_rate=fr.value,
                retrained_forgetting_rate=self.reference_fr.value,
                bt=fr.bt,
                oracle_reliable=self.quality.reliable,
            )
            verdict, explanation = judged.label, judged.explanation
        return Row(
            name,
            fr.value,
            mia,
            test,
            self.test_original - test,
            forget.accuracy(),
            list(seconds),
            verdict,
            explanation,
        )


def print_rows(rows: Sequence[Row], retrain_seconds: Sequence[float], title: str, explain: bool = True) -> None:
    print(f"\n{title}")
    print("(drop = original test accuracy minus this model's, in points; forget = accuracy under the inserted labels;")
    print(" time = median of the timed runs, min–max beside it; speed-up = median retraining / median time)")
    print(
        f"{'model':<34} {'FR':>6} {'MIA':>6} {'test':>6} {'drop':>6} {'forget':>7} {'time s':>8} {'min–max':>15}"
        f" {'speed-up':>9}  verdict"
    )
    for r in rows:
        seconds = median(r.seconds)
        speed_text = "—" if seconds == 0 else f"{median(retrain_seconds) / seconds:8.1f}×"
        spread = f"{min(r.seconds):.3f}–{max(r.seconds):.3f}" if len(r.seconds) > 1 else "—"
        print(
            f"{r.name:<34} {r.fr_text:>6} {r.mia_text:>6} {r.test:6.3f} {100 * r.test_drop:+5.1f}p {r.forget:7.3f}"
            f" {seconds:8.3f} {spread:>15} {speed_text:>9}  {r.verdict}"
        )
    note = undefined_fr_note(rows)
    if note is not None:
        print(f"  {note}")
    if explain:
        explain_verdicts(rows)


def explain_verdicts(rows: Sequence[Row], indent: str = "  ") -> None:
    for r in rows:
        if r.explanation:
            print(f"{indent}{r.name}: {r.verdict} — {r.explanation}")


def timed_forsaken(target: nn.Module, dm: DigitsDataModule, repeats: int, **settings: Any) -> tuple[Any, list[float]]:
    """Run Forsaken ``repeats`` times (deterministic); return the first result and every run's seconds."""
    results = [forsaken_unlearn(target, dm, **settings) for _ in range(repeats)]
    return results[0], [result.seconds for result in results]


def retrain(recipe: TrainingRecipe, dm: DigitsDataModule, repeats: int) -> tuple[nn.Module, list[float]]:
    """Retrain on ``retain`` with the target's recipe ``repeats`` times: the first model, every run's seconds."""
    runs = [train_classifier(recipe, dm, "retain", **QUIET) for _ in range(repeats)]
    return runs[0].module.backbone.eval(), [run.seconds for run in runs]


def scenario(
    dm: DigitsDataModule, recipe: TrainingRecipe, repeats: int
) -> tuple[nn.Module, nn.Module, list[float], Evaluator]:
    dm.setup("fit")
    original = train_classifier(recipe, dm, **QUIET).module.backbone.eval()
    retrained, retrain_seconds = retrain(recipe, dm, repeats)
    return original, retrained, retrain_seconds, Evaluator(dm, recipe, original, retrained)


def headline(seeds: Sequence[int], recipe: TrainingRecipe, repeats: int) -> dict[str, Any]:
    print("=" * 100)
    print("1. Digits OOD scenario (label split 0–4 | 5–9, forget = 179 OOD samples): Forsaken vs full retraining")
    summary: dict[str, list[float]] = {k: [] for k in ("fr_paper", "fr_near", "drop_paper", "drop_near", "speed")}
    verdicts: dict[str, list[str]] = {"paper": [], "near": []}
    kept: dict[str, Any] = {}
    for seed in seeds:
        dm = DigitsDataModule(seed=seed)
        original, retrained, retrain_seconds, ev = scenario(dm, recipe, repeats)
        paper, paper_seconds = timed_forsaken(original, dm, repeats, **PAPER)
        near, near_seconds = timed_forsaken(original, dm, repeats, **NEAREST)
        rows = [
            ev.row("original", original, []),
            ev.row("retrained (gold standard)", retrained, retrain_seconds),
            ev.row("Forsaken, per-class P (paper)", paper.model, paper_seconds),
            ev.row("Forsaken, nearest P, T=40", near.model, near_seconds),
        ]
        print_rows(rows, retrain_seconds, f"seed {seed} — {ev.describe_oracle()}")
        print(
            f"  in-module time (P, ω and the T iterations, no Trainer set-up; first run): per-class"
            f" {paper.module.unlearning_seconds:.3f}s, nearest {near.module.unlearning_seconds:.3f}s;"
            f" per iteration {1000 * near.module.unlearning_seconds / near.module.iteration:.1f} ms;"
            f" generator parameters {near.module.generator_parameter_count:,}"
        )
        summary["fr_paper"].append(rows[2].fr)
        summary["fr_near"].append(rows[3].fr)
        summary["drop_paper"].append(rows[2].test_drop)
        summary["drop_near"].append(rows[3].test_drop)
        summary["speed"].append(median(retrain_seconds) / median(near_seconds))
        verdicts["paper"].append(rows[2].verdict)
        verdicts["near"].append(rows[3].verdict)
        if seed == seeds[0]:
            kept = dict(dm=dm, original=original, retrained=retrained, ev=ev, retrain_seconds=retrain_seconds)
    mean = {k: statistics.fmean(v) for k, v in summary.items()}
    print(
        f"\nmean over seeds {list(seeds)}: FR per-class {mean['fr_paper']:.3f}, nearest {mean['fr_near']:.3f}"
        f" (target ≥ 0.95); test-accuracy drop per-class {100 * mean['drop_paper']:.1f}p,"
        f" nearest {100 * mean['drop_near']:.1f}p (target ≤ 1p); speed-up of nearest vs retraining"
        f" {mean['speed']:.1f}× (target ≥ 50×)"
    )
    print(f"verdicts per seed: per-class {verdicts['paper']}; nearest {verdicts['near']}")
    return kept


def sweep(title: str, kept: dict[str, Any], variants: Sequence[tuple[str, dict[str, Any]]], repeats: int) -> None:
    ev: Evaluator = kept["ev"]
    rows = []
    for name, settings in variants:
        result, seconds = timed_forsaken(kept["original"], kept["dm"], repeats, **settings)
        rows.append(ev.row(name, result.model, seconds))
    rows.append(ev.row("retrained", kept["retrained"], kept["retrain_seconds"]))
    print_rows(rows, kept["retrain_seconds"], title, explain=False)


def retain_scaling(recipe: TrainingRecipe, repeats: int) -> None:
    print("\n" + "=" * 100)
    print(
        "4. Retain scaling: more of the available digits on the target side (target_fraction 0.2 / 0.4 / 0.8);"
        f" forget fixed at the OOD default, D0 = 1 % of retain; times are medians of {repeats} runs each"
    )
    print(f"{'scale':<6} {'retain':>7} {'probe':>6} {'retrain s':>10} {'Forsaken s':>11} {'speed-up':>9} {'drop':>7}")
    base: tuple[float, float] | None = None
    for scale, fraction in ((1, 0.2), (2, 0.4), (4, 0.8)):
        dm = DigitsDataModule(target_fraction=fraction)
        dm.setup("fit")
        original = train_classifier(recipe, dm, **QUIET).module.backbone.eval()
        retrain_seconds = median(retrain(recipe, dm, repeats)[1])
        result, forsaken_seconds = timed_forsaken(original, dm, repeats, **NEAREST)
        seconds = median(forsaken_seconds)
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
    original, retrained, retrain_seconds, ev = scenario(dm, recipe, repeats)
    rows = [
        ev.row("original", original, []),
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
    print(f"(time s = median of {repeats} runs; MIA and verdict as in section 1, not computed below {MIA_FOLDS} flips)")
    header = (
        f"{'rate':>5} {'flipped':>8} {'model':<30} {'recall5':>8} {'FR':>6} {'MIA':>6} {'test':>6} {'forget→5':>9}"
        f" {'time s':>7}  verdict"
    )
    print(header)
    for rate in (0.02, 0.04, 0.10):
        dm = DigitsDataModule(kind="poison", flip_source=5, flip_target=3, flip_rate=rate)
        original, retrained, retrain_seconds, ev = scenario(dm, recipe, repeats)
        models: list[tuple[str, nn.Module, list[float]]] = [
            ("original", original, []),
            ("retrained", retrained, retrain_seconds),
        ]
        for name, settings in (("Forsaken per-class (P of 5s)", PAPER), ("Forsaken nearest", NEAREST)):
            result, seconds = timed_forsaken(original, dm, repeats, **settings)
            models.append((name, result.model, seconds))
        rows = []
        for name, model, seconds in models:
            row = ev.row(name, model, seconds)
            rows.append(row)
            to_five = float((predict(model, dm.dataloader("forget")).logits.argmax(dim=1) == 5).float().mean())
            print(
                f"{rate:>5.2f} {len(dm.splits['forget']):>8} {name:<30} {recall(model, dm, 5):>8.3f} {row.fr_text:>6}"
                f" {row.mia_text:>6} {row.test:>6.3f} {to_five:>9.3f} {median(seconds):>7.3f}  {row.verdict}"
            )
        note = undefined_fr_note(rows)
        if note is not None:
            print(f"      {note}")
        explain_verdicts(rows, indent="      ")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument(
        "--repeats", type=int, default=3, help="timed runs of retraining and of every Forsaken setting (median)"
    )
    parser.add_argument(
        "--sections", type=int, nargs="+", default=[1, 2, 3, 4, 5, 6], help="which numbered sections to run"
    )
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error(f"Expected --repeats to be a positive integer, but got {args.repeats}.")
    torch.set_num_threads(1)
    start = time.perf_counter()
    recipe = TrainingRecipe()  # the target's recipe: MLP 64→256→128→K, Adam 3e-3, 60 epochs
    print(
        f"threads={torch.get_num_threads()} repeats={args.repeats} (retraining and every Forsaken setting)"
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
            args.repeats,
        )
    if 3 in sections:
        print("\n" + "=" * 100)
        variants: list[tuple[str, dict[str, Any]]] = []
        for lam in (0.0, 1e-3, 1e-2, 1e-1, 1.0):
            for omega in (True, False):
                label = f"λ={lam:g} " + ("with ω (Eq. 5)" if omega else "ω=1 (Eq. 4)")
                variants.append((label, {**NEAREST, "penalty_weight": lam, "dynamic_penalty": omega}))
        sweep("3. λ sweep with and without ω (Table VIII), nearest P, T=40", kept, variants, args.repeats)
    if 4 in sections:
        retain_scaling(recipe, args.repeats)
    if 5 in sections:
        id_forgetting(recipe, args.repeats)
    if 6 in sections:
        poison(recipe, args.repeats)
    print(f"\nbenchmark wall-clock: {time.perf_counter() - start:.0f}s; load average at end={os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
