"""SISA, SISA-DP and the comparison baselines on the digits OOD scenario, side by side with retraining.

Run: ``python benchmarks/baselines_digits.py [--seed 0] [--shards 4] [--slices 5]``. Prints, in one run:

1. the comparison table (:class:`~lightning_unlearn.metrics.UnlearningReport`): accuracy on
   retain / forget / test and the drop from the original, FR and CFR from the shadow-model
   oracle, the MIA score (forget vs ``heldout``), and the unlearning time and speed-up over
   full retraining measured in the same run, for Retrain, SMU, SISA, SISA-DP, Finetune,
   NegGrad (its default 5 epochs, and 3), NegGrad+ and Forsaken with its defaults;
2. SISA against the number of shards 1, 2, 4, 8 (the shape of the Forsaken paper's Table VI):
   accuracy, and FR of unlearning the forget set relative to the ensemble before it;
3. SISA unlearning of single samples: which slice they sit in, how many steps are retrained,
   and the time against the whole ensemble's training.

The target is trained once, with :class:`~lightning_unlearn.modules.baselines.ForgetGradientRecorder`
attached for SMU. FR and CFR in table 1 are relative to the original target (the same BT for
every row); SISA's own before/after FR is in table 2. Times are wall-clock on CPU with one
intra-op thread, evaluation excluded. Not a timed test: numbers vary run to run.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from lightning_unlearn import DigitsDataModule, TrainingRecipe, predict, train_classifier
from lightning_unlearn.metrics import (
    ShadowModelOracle,
    UnlearningReport,
    forgetting_rate,
    membership_counts,
    mia_score_from_logits,
)
from lightning_unlearn.modules.baselines import (
    FinetuneBaseline,
    ForgetGradientRecorder,
    NegGradBaseline,
    NegGradPlusBaseline,
    RetrainBaseline,
    SMUBaseline,
    run_baseline,
)
from lightning_unlearn.modules.forsaken import forsaken_unlearn
from lightning_unlearn.modules.sisa import SISADPEnsemble, SISAEnsemble

QUIET = {"enable_progress_bar": False, "enable_model_summary": False}


def _quiet() -> None:
    warnings.filterwarnings("ignore")
    for name in ("lightning.pytorch", "lightning.fabric", "lightning_unlearn"):
        logging.getLogger(name).setLevel(logging.ERROR)


def _accuracy(model: nn.Module, dm: DigitsDataModule, split: str) -> float:
    return predict(model, dm.dataloader(split)).accuracy()


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(cell.rjust(w) if i else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths)))
        for row in [header, *rows]
    ]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--shards", type=int, default=4, help="S of the SISA rows of table 1")
    parser.add_argument("--slices", type=int, default=5, help="R of every SISA ensemble")
    arguments = parser.parse_args()
    torch.set_num_threads(1)
    _quiet()
    seed, shards, slices = arguments.seed, arguments.shards, arguments.slices
    workdir = Path(tempfile.mkdtemp(prefix="sisa-bench-"))

    dm = DigitsDataModule(seed=seed)
    dm.setup()
    recipe = TrainingRecipe(seed=seed)
    print(dm.summary())
    print(
        f"\nrecipe: {recipe.max_epochs} epochs of Adam (lr {recipe.learning_rate}), MLP 64→256→128→5; torch threads: 1"
    )

    recorder = ForgetGradientRecorder(dm.splits["forget"].indices)
    target_run = train_classifier(recipe, dm, "target_train", callbacks=[recorder], **QUIET)
    target = target_run.module
    oracle = ShadowModelOracle(seed=seed).fit(recipe, dm, trainer_overrides=QUIET)
    print(
        f"target trained in {target_run.seconds:.2f} s (SMU recorder attached);"
        f" oracle fitted in {oracle.fit_seconds:.2f} s"
    )

    # ------------------------------------------------------------------ 1. the comparison
    models: dict[str, nn.Module] = {}
    times: dict[str, float] = {}
    retrained, times["retrained"] = run_baseline(RetrainBaseline(target, recipe=recipe), dm, seed=seed)
    baselines = {
        "SMU": SMUBaseline(target, recorder),
        "Finetune": FinetuneBaseline(target, seed=seed),
        "NegGrad": NegGradBaseline(target, seed=seed),
        "NegGrad 3 ep": NegGradBaseline(target, max_epochs=3, seed=seed),
        "NegGrad+": NegGradPlusBaseline(target, seed=seed),
    }
    for name, baseline in baselines.items():
        models[name], times[name] = run_baseline(baseline, dm, seed=seed)

    sisa_dir = workdir / f"sisa_{shards}"
    sisa = SISAEnsemble(dm, recipe, num_shards=shards, num_slices=slices, checkpoint_dir=sisa_dir, progress_bar=False)
    sisa_training = sisa.fit()
    sisa_before = sisa.as_module()
    dp_dir = workdir / f"sisa_dp_{shards}"
    shutil.copytree(sisa_dir, dp_dir)  # same data and settings: SISA-DP reuses the trained checkpoints
    sisa_dp = SISADPEnsemble(
        dm, recipe, num_shards=shards, num_slices=slices, checkpoint_dir=dp_dir, progress_bar=False
    )
    assert sisa_dp.fit().total_slices == 0
    single_dir = workdir / "sisa_single"
    shutil.copytree(sisa_dir, single_dir)  # for table 3, before the forget set is removed
    forget_indices = dm.splits["forget"].indices
    sisa_report = sisa.unlearn(forget_indices)
    models["SISA"], times["SISA"] = sisa.as_module(), sisa_report.seconds
    dp_report = sisa_dp.unlearn(forget_indices)
    models["SISA-DP"], times["SISA-DP"] = sisa_dp.as_module(), dp_report.seconds

    result = forsaken_unlearn(target.backbone, dm, seed=seed)  # the Forsaken paper's method, module defaults
    models["Forsaken"], times["Forsaken"] = result.model, result.seconds

    order = ["SMU", "SISA", "SISA-DP", "Finetune", "NegGrad", "NegGrad 3 ep", "NegGrad+", "Forsaken"]
    report = UnlearningReport.evaluate(
        dm,
        oracle,
        original=target,
        retrained=retrained,
        unlearned={name: models[name] for name in order},
        times=times,
        mia_seed=seed,
    )
    print("\n1. Digits OOD scenario: forgetting the 179 OOD members (speed-up = retraining time / method time)")
    print(report)
    print(
        f"SISA: S={shards} × R={slices}, {sisa.epochs_per_slice} epochs per slice;"
        f" trained in {sisa_training.seconds:.2f} s;"
        f" unlearning the forget set touched shards {sisa_report.affected_shards} from slices"
        f" {sorted(set(sisa_report.first_affected_slice.values()))}, retraining {sisa_report.total_slices} of"
        f" {shards * slices} steps. SISA before unlearning: test accuracy {_accuracy(sisa_before, dm, 'test'):.3f},"
        f" forget accuracy {_accuracy(sisa_before, dm, 'forget'):.3f}."
    )
    num_parameters = sum(p.numel() for p in sisa_before.constituents[0].parameters())
    print(
        f"SISA-DP: ε = {sisa_dp.dp_epsilon}, δ = {sisa_dp.dp_delta}, clip C = {sisa_dp.dp_clip_norm}: Gaussian noise"
        f" σ = {sisa_dp.dp_sigma:.3f} on each of the {num_parameters:,} parameters of every constituent."
    )

    # ------------------------------------------------------------------ 2. shards sweep
    forget_loader = dm.dataloader("forget")
    rows = []
    for count in (1, 2, 4, 8):
        ensemble = SISAEnsemble(
            dm,
            recipe,
            num_shards=count,
            num_slices=slices,
            checkpoint_dir=workdir / f"sweep_{count}",
            progress_bar=False,
        )
        trained = ensemble.fit()
        before = ensemble.as_module()
        before_forget = oracle.predict_membership(before, forget_loader)
        unlearning = ensemble.unlearn(forget_indices)
        after = ensemble.as_module()
        bt, bf, _, af = membership_counts(before_forget, oracle.predict_membership(after, forget_loader))
        forget_after, heldout_after = predict(after, forget_loader), predict(after, dm.dataloader("heldout"))
        mia = mia_score_from_logits(
            forget_after.logits, forget_after.targets, heldout_after.logits, heldout_after.targets, seed=seed
        )
        rows.append(
            [
                str(count),
                f"{_accuracy(before, dm, 'test'):.3f}",
                f"{_accuracy(before, dm, 'forget'):.3f}",
                f"{_accuracy(after, dm, 'test'):.3f}",
                f"{forget_after.accuracy():.3f}",
                f"{forgetting_rate(bt, bf, af):.3f}",
                f"{bt}/{bf}/{af}",
                f"{mia.score:.3f}",
                f"{trained.seconds:.2f}",
                f"{unlearning.total_slices}/{count * slices}",
                f"{unlearning.seconds:.2f}",
                f"{times['retrained'] / unlearning.seconds:.2f}×",
            ]
        )
    print(f"\n2. SISA against the number of shards (R = {slices} slices; unlearning the whole forget set)")
    print(
        _table(
            [
                "shards",
                "acc test",
                "acc forget",
                "acc test after",
                "acc forget after",
                "FR vs before",
                "BT/BF/AF",
                "MIA after",
                "train s",
                "steps retrained",
                "unlearn s",
                "speed-up",
            ],
            rows,
        )
    )

    # ------------------------------------------------------------------ 3. single samples
    single = SISAEnsemble(
        dm, recipe, num_shards=shards, num_slices=slices, checkpoint_dir=single_dir, progress_bar=False
    )
    rng = np.random.default_rng(seed)
    chosen = [
        ("last slice", int(single.slices[0][slices - 1][0])),
        ("middle slice", int(single.slices[1 % shards][slices // 2][0])),
        ("first slice", int(single.slices[2 % shards][0][0])),
        ("random", int(rng.choice(dm.splits["forget"].indices))),
    ]
    rows = []
    for label, index in chosen:
        if index in single.forgotten:
            continue
        started = time.perf_counter()
        unlearning = single.unlearn([index])
        seconds = time.perf_counter() - started
        shard = single.shard_of(index)
        rows.append(
            [
                label,
                str(index),
                str(shard),
                str(unlearning.first_affected_slice[shard]),
                f"{unlearning.total_slices}/{shards * slices}",
                f"{seconds:.3f}",
                f"{sisa_training.seconds:.2f}",
                f"{sisa_training.seconds / seconds:.1f}×",
                f"{times['retrained'] / seconds:.1f}×",
            ]
        )
    print(f"\n3. SISA (S={shards} × R={slices}) unlearning one sample vs training the whole ensemble")
    print(
        _table(
            [
                "sample",
                "index",
                "shard",
                "slice",
                "steps retrained",
                "unlearn s",
                "ensemble train s",
                "vs ensemble",
                "vs retrain",
            ],
            rows,
        )
    )
    shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
