"""FNN unlearning on digits: every τ policy × (1-L, 2-L) against fine-tuning and full retraining.

Scenario: OOD forgetting by label split (digits 0–4 are the task; 150 images of digits 5–9
inserted into the training data under random labels form the forget set), chosen because the
original model is clearly a member there (MIA ≈ 0.9), while on an ID forget set of digits it
barely is (≈ 0.53). ``target_fraction=0.8`` gives ~500 retained and ~215 test images. The
OOD pool of digits holds 896 images, split five ways, so ``forget`` (150) and ``heldout``
(198) cannot both reach 200; the class-matched MIA then uses about 145 of each.

For each of 5 seeds: train the target and the retrained model (same recipe), then run
:class:`~lightning_unlearn.modules.fnn.FNNModule` with
:class:`~lightning_unlearn.callbacks.MIAEarlyStopping` (accuracy ≥ original − 2 points,
|MIA − 0.5| ≤ 0.03) and the fine-tune baseline for the same 30 epochs. Printed: the first
accepted epoch (else the last), its MIA score and test accuracy (mean and 95 % t-interval over
seeds), the fine-tune baseline's best epoch, the wall time to acceptance (training only:
per-epoch evaluation time is measured and taken out) and the retraining time.

Run: ``python benchmarks/fnn_digits.py [--seeds 5] [--plot curve.png]``.
"""

from __future__ import annotations

import argparse
import logging
import math
import statistics
import tempfile
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback

from lightning_unlearn import DigitsDataModule, TrainingRecipe, predict, train_classifier
from lightning_unlearn.callbacks import MIAEarlyStopping
from lightning_unlearn.metrics import mia_score_from_logits
from lightning_unlearn.modules.baselines import FinetuneBaseline
from lightning_unlearn.modules.fnn import FORGETTING_POLICIES, FNNModule, phase_schedule
from lightning_unlearn.plots import plot_learning_unlearning_curve

TOLERANCE = 0.03
ACCURACY_DROP = 0.02


class EvaluationTimer(Callback):
    """Seconds spent in validation (the per-epoch MIA evaluation), to take out of the training time."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._start = 0.0

    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start = time.perf_counter()

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.seconds += time.perf_counter() - self._start


@dataclass
class Outcome:
    """One method on one seed: the reported epoch and what it cost."""

    accepted: bool
    epoch: int
    mia: float
    accuracy: float
    seconds: float
    history: list[dict[str, Any]] = field(default_factory=list)


def _trainer(callbacks: list[Callback], max_epochs: int) -> L.Trainer:
    return L.Trainer(
        accelerator="cpu",
        devices=1,
        max_epochs=max_epochs,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        callbacks=callbacks,
    )


def _evaluate(model: torch.nn.Module, dm: DigitsDataModule) -> tuple[float, float]:
    forget, heldout = predict(model, dm.dataloader("forget")), predict(model, dm.dataloader("heldout"))
    mia = mia_score_from_logits(forget.logits, forget.targets, heldout.logits, heldout.targets).score
    return predict(model, dm.dataloader("test")).accuracy(), mia


def _run(
    module: FNNModule | FinetuneBaseline, floor: float, epochs: int, stop: bool, fallback: str = "final"
) -> Outcome:
    """Fit with early stopping; without an accepted epoch, report the ``final`` one or the ``best`` (closest to 0.5)."""
    stopper = MIAEarlyStopping(accuracy_floor=floor, target=0.5, tolerance=TOLERANCE, stop=stop)
    timer = EvaluationTimer()
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _trainer([stopper, timer], epochs).fit(module)
    history = module.history
    if stopper.accepted_epoch is not None:
        row = history[stopper.accepted_epoch]
        # Training time up to and including the accepted epoch (evaluation excluded).
        seconds = time.perf_counter() - start - timer.seconds if stop else float("nan")
        return Outcome(True, int(row["epoch"]), row["mia"], row["acc"], seconds, history)
    if fallback == "final":
        row = history[-1]
    else:  # selected after the fact on the noisy score: optimistic for the method
        row = min([r for r in history if r["acc"] >= floor] or history, key=lambda r: abs(r["mia"] - 0.5))
    return Outcome(False, int(row["epoch"]), row["mia"], row["acc"], float("nan"), history)


def _half_width(model: torch.nn.Module, dm: DigitsDataModule) -> float:
    forget, heldout = predict(model, dm.dataloader("forget")), predict(model, dm.dataloader("heldout"))
    return mia_score_from_logits(forget.logits, forget.targets, heldout.logits, heldout.targets).half_width


def _interval(values: Sequence[float]) -> str:
    values = [v for v in values if not math.isnan(v)]
    if not values:
        return "—"
    mean = statistics.fmean(values)
    if len(values) < 2:
        return f"{mean:.3f}"
    from scipy.stats import t

    half = t.ppf(0.975, len(values) - 1) * statistics.stdev(values) / math.sqrt(len(values))
    return f"{mean:.3f} ± {half:.3f}"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--forget-size", type=int, default=150)
    parser.add_argument("--plot", type=Path, default=Path(tempfile.gettempdir()) / "fnn_digits_curve.png")
    args = parser.parse_args(argv)
    for name in ("lightning", "lightning.pytorch", "lightning.fabric", "lightning_utilities"):
        logging.getLogger(name).setLevel(logging.ERROR)
    torch.set_num_threads(1)

    methods = [f"{policy} {placement}" for policy in FORGETTING_POLICIES for placement in ("1-L", "2-L")]
    results: dict[str, list[Outcome]] = {name: [] for name in [*methods, "finetune (best)"]}
    original: list[tuple[float, float]] = []
    retrained: list[tuple[float, float, float]] = []
    sizes = ""
    curve: Outcome | None = None
    half_width = float("nan")
    for seed in range(args.seeds):
        dm = DigitsDataModule(seed=seed, forget_size=args.forget_size, target_fraction=0.8)
        dm.setup()
        sizes = ", ".join(f"{split} {len(dm.splits[split])}" for split in ("retain", "forget", "heldout", "test"))
        recipe = TrainingRecipe(seed=seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            target = train_classifier(recipe, dm, enable_progress_bar=False)
            reference = train_classifier(recipe, dm, "retain", enable_progress_bar=False)
        original.append(_evaluate(target.module.backbone, dm))
        half_width = _half_width(target.module.backbone, dm)
        retrained.append((*_evaluate(reference.module.backbone, dm), reference.seconds))
        floor = original[-1][0] - ACCURACY_DROP
        for name in methods:
            policy, placement = name.split()
            fnn = FNNModule(target.module, datamodule=dm, policy=policy, placement=placement, seed=seed)  # type: ignore[arg-type]
            results[name].append(_run(fnn, floor, fnn.total_epochs, stop=True))
        epochs = len(phase_schedule())  # the same 30 epochs as FNN's default schedule
        # Same optimiser as FNN (Adam, lr 1e-3), same number of epochs.
        finetune = FinetuneBaseline(target.module, datamodule=dm, max_epochs=epochs, optimizer=torch.optim.Adam)
        results["finetune (best)"].append(_run(finetune, floor, epochs, stop=False, fallback="best"))
        if seed == 0:  # the full rank 2-L schedule, for the curve
            full = FNNModule(target.module, datamodule=dm, policy="rank", placement="2-L", seed=seed)
            curve = _run(full, floor, full.total_epochs, stop=False)
        print(
            f"seed {seed}: original acc {original[-1][0]:.3f} MIA {original[-1][1]:.3f};"
            f" retrained acc {retrained[-1][0]:.3f} MIA {retrained[-1][1]:.3f};"
            f" rank 2-L accepted={results['rank 2-L'][-1].accepted} at epoch {results['rank 2-L'][-1].epoch}",
            flush=True,
        )

    print(
        f"\nDigits OOD label split (0–4 task, 5–9 forgotten), {args.seeds} seeds;"
        f" splits (seed {args.seeds - 1}): {sizes}"
    )
    print(f"Acceptance: test acc ≥ original − {ACCURACY_DROP:.2f}, |MIA − 0.5| ≤ {TOLERANCE}, MIA ≥ 0.5 − {TOLERANCE}")
    print(
        "Mean ± 95 % t-interval over seeds. FNN rows: the first accepted epoch, or the last epoch (30) when none"
        " was accepted; fine-tune: its epoch closest to 0.5 above the floor (chosen after the fact)."
    )
    print(f"One MIA score's own 95 % half-width at these group sizes: about {half_width:.3f}.\n")
    header = f"{'method':<14} {'accepted':>8} {'epoch':>14} {'MIA':>15} {'test acc':>15} {'train s to accept':>18}"
    print(header)
    print("-" * len(header))
    print(f"{'original':<14} {'':>8} {'':>14} {_interval([o[1] for o in original]):>15}"
          f" {_interval([o[0] for o in original]):>15}")  # fmt: skip
    print(f"{'retrained':<14} {'':>8} {'':>14} {_interval([r[1] for r in retrained]):>15}"
          f" {_interval([r[0] for r in retrained]):>15} {_interval([r[2] for r in retrained]):>18}")  # fmt: skip
    for name, outcomes in results.items():
        accepted = sum(o.accepted for o in outcomes)
        print(
            f"{name:<14} {f'{accepted}/{len(outcomes)}':>8} {_interval([float(o.epoch) for o in outcomes]):>14}"
            f" {_interval([o.mia for o in outcomes]):>15} {_interval([o.accuracy for o in outcomes]):>15}"
            f" {_interval([o.seconds for o in outcomes]):>18}"
        )

    rank = results["rank 2-L"]
    rank_mia = statistics.fmean(o.mia for o in rank)
    retrained_mia = statistics.fmean(r[1] for r in retrained)
    rank_acc = statistics.fmean(o.accuracy for o in rank)
    original_acc = statistics.fmean(o[0] for o in original)
    checks = [
        (
            f"|rank 2-L MIA − retrained MIA| = {abs(rank_mia - retrained_mia):.3f} ≤ 0.03",
            abs(rank_mia - retrained_mia) <= 0.03,
        ),
        (f"|rank 2-L MIA − 0.5| = {abs(rank_mia - 0.5):.3f} ≤ 0.05", abs(rank_mia - 0.5) <= 0.05),
        (f"rank 2-L test acc {rank_acc:.3f} ≥ original {original_acc:.3f} − 0.02", rank_acc >= original_acc - 0.02),
    ]
    print()
    for text, passed in checks:
        print(f"[{'PASS' if passed else 'FAIL'}] {text}")

    if curve is None:
        return
    path = plot_learning_unlearning_curve(
        curve.history, args.plot, accepted_epoch=curve.epoch if curve.accepted else None,
        baseline=results["finetune (best)"][0].history, title="FNN rank 2-L vs fine-tuning, digits OOD, seed 0",
    )  # fmt: skip
    print(f"\nCurve (seed 0, rank 2-L full schedule, fine-tune 30 epochs): {path}")


if __name__ == "__main__":
    main()
