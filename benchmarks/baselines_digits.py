"""Every method, old and new, on the digits OOD scenario, side by side with retraining, over seeds.

Run: ``python benchmarks/baselines_digits.py [--seeds 0 1 2] [--shards 4] [--slices 5] [--repeats 3]``. Prints:

1. for every seed, the comparison table (:class:`~lightning_unlearn.metrics.UnlearningReport`):
   accuracy on retain / forget / test and the drop from the original, FR and CFR from the
   shadow-model oracle, the MIA score (forget vs ``heldout``), the unlearning time and speed-up
   over full retraining measured in the same run, and each model's verdict against retraining
   (under-forgotten, matches retraining, over-forgotten, or oracle and attack disagree), for
   Retrain, SMU, SISA, SISA-DP (DP-SGD, ε = 16, δ = 1e-5 per constituent; the spent ε is printed),
   SISA-DP with output perturbation, Finetune, NegGrad (its default 5 epochs, and 3), NegGrad+,
   random labels, SalUn, SCRUB, SCRUB+R (rewinding), ℓ1-sparse, Forsaken with its module's
   defaults and FNN as the pipeline runs it; then two checks that can fail: SISA, exact
   unlearning, should match retraining, and SISA-DP's test accuracy should be within 5 points of
   SISA's;
2. (first seed) SISA against the number of shards 1, 2, 4, 8 (the shape of the Forsaken paper's
   Table VI): accuracy, and FR of unlearning the forget set relative to the ensemble before it;
3. (first seed) SISA unlearning of single samples: which slice they sit in, how many steps are
   retrained, and the time against the whole ensemble's training;
4. with several seeds, one table of every model: each figure's mean ± standard deviation over
   the seeds, and how many seeds gave each verdict.

SCRUB's learning rate and epochs and ℓ1-sparse's γ are not the papers' CIFAR-10 defaults (which
leave the digits MLP's forget set as remembered as the original): they were chosen on the
validation pair, as in ``configs/experiments/digits/ood_all_baselines.yaml``.

Every baseline of :data:`lightning_unlearn.pipeline.METHODS` has a row in table 1 (the script
refuses to run when one is missing). The target is trained once, with
:class:`~lightning_unlearn.modules.baselines.ForgetGradientRecorder` attached for SMU. FR and CFR
in table 1 are relative to the original target (the same BT for every row); SISA's own
before/after FR is in table 2.

Held-out discipline: no method and no choice here reads ``test`` or ``heldout``; every figure in
the tables (and the check) is measured on them, for the report alone.

Timing policy (the one :mod:`lightning_unlearn.pipeline` follows): a method's time is everything it needs to
produce its model, never the final evaluation; none of these methods reads an evaluation while
unlearning but FNN (whose per-epoch MIA on the validation pair is inside its timer), so each timer
covers its ``Trainer.fit`` (SalUn's saliency map included; SISA: its ``unlearn`` call) alone.
Retraining's time is its training alone, with the target's recipe. Retraining and every method
are timed ``--repeats`` times, each repeat from scratch (a fresh baseline; for SISA a freshly
trained ensemble, or a fresh copy of one), and the median is reported with min–max; the model
of the first repeat is the one evaluated. Wall-clock on CPU with one intra-op thread. Not a
timed test: numbers vary run to run.
"""

from __future__ import annotations

import argparse
import logging
import math
import shutil
import statistics
import tempfile
import warnings
from collections.abc import Callable, Sequence
from functools import partial
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
from lightning_unlearn.modules import L1SparseBaseline, RandomLabelsBaseline, SalUnBaseline, SCRUBBaseline
from lightning_unlearn.modules.baselines import (
    FinetuneBaseline,
    ForgetGradientRecorder,
    NegGradBaseline,
    NegGradPlusBaseline,
    RetrainBaseline,
    SMUBaseline,
    UnlearningBaseline,
    run_baseline,
)
from lightning_unlearn.modules.forsaken import forsaken_unlearn
from lightning_unlearn.modules.sisa import SISADPEnsemble, SISAEnsemble
from lightning_unlearn.pipeline import METHODS, ExperimentContext

QUIET = {"enable_progress_bar": False, "enable_model_summary": False}

#: Each method of the pipeline's :data:`~lightning_unlearn.pipeline.METHODS` → its row in table 1
#: (retraining is every report's own row).
ROWS = {
    "smu": "SMU",
    "sisa": "SISA",
    "sisa_dp": "SISA-DP",
    "finetune": "Finetune",
    "neggrad": "NegGrad",
    "neggrad_plus": "NegGrad+",
    "random_labels": "Random labels",
    "salun": "SalUn",
    "scrub": "SCRUB",
    "l1_sparse": "l1-sparse",
    "forsaken": "Forsaken",
    "fnn": "FNN",
}
#: Methods of METHODS that are not in table 1 and have a benchmark of their own.
ELSEWHERE: dict[str, str] = {}

#: Settings of the recent baselines where the papers' CIFAR-10 defaults do nothing on the digits MLP,
#: chosen on the validation pair (as configs/experiments/digits/ood_all_baselines.yaml).
SCRUB_OPTIMIZER = partial(torch.optim.SGD, lr=0.01, momentum=0.9, weight_decay=5e-4)
L1_WEIGHT = 0.05


def _quiet() -> None:
    warnings.filterwarnings("ignore")
    for name in ("lightning.pytorch", "lightning.fabric", "lightning_unlearn"):
        logging.getLogger(name).setLevel(logging.ERROR)


def _check_coverage() -> None:
    missing = sorted(set(METHODS) - set(ROWS) - set(ELSEWHERE))
    if missing:
        raise RuntimeError(
            f"Expected a row of table 1 for every method of lightning_unlearn.pipeline.METHODS, but {missing} have"
            " none: add them to ROWS (or to ELSEWHERE with the benchmark that runs them)."
        )


def _accuracy(model: nn.Module, dm: DigitsDataModule, split: str) -> float:
    return predict(model, dm.dataloader(split)).accuracy()


def _seconds(values: Sequence[float], digits: int = 2) -> str:
    """The median, with min–max when several repeats were timed."""
    median = f"{statistics.median(values):.{digits}f}"
    return median if len(values) == 1 else f"{median} ({min(values):.{digits}f}–{max(values):.{digits}f})"


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(cell.rjust(w) if i else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths)))
        for row in [header, *rows]
    ]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


def _timed(
    build: Callable[[], UnlearningBaseline], dm: DigitsDataModule, seed: int, repeats: int
) -> tuple[nn.Module, list[float]]:
    """Run a freshly built baseline ``repeats`` times: the first run's model, and every run's seconds."""
    runs = [run_baseline(build(), dm, seed=seed) for _ in range(repeats)]
    return runs[0].model, [run.seconds for run in runs]


def _copy_ensemble(source: Path, folder: Path, make: Callable[[Path], SISAEnsemble]) -> SISAEnsemble:
    """A fresh ensemble over a copy of ``source``'s trained checkpoints, loaded (nothing trained)."""
    shutil.copytree(source, folder)
    ensemble = make(folder)
    trained = ensemble.fit()
    if trained.total_slices != 0:
        raise RuntimeError(
            f"Expected the copy of {str(source)!r} to hold a complete ensemble, but loading it trained"
            f" {trained.total_slices} steps."
        )
    return ensemble


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="one full run per seed (splits, target, …)")
    parser.add_argument("--shards", type=int, default=4, help="S of the SISA rows of table 1")
    parser.add_argument("--slices", type=int, default=5, help="R of every SISA ensemble")
    parser.add_argument(
        "--repeats", type=int, default=3, help="timed runs of retraining and of every method (median, min–max)"
    )
    arguments = parser.parse_args()
    if arguments.repeats < 1:
        parser.error(f"Expected --repeats to be a positive integer, but got {arguments.repeats}.")
    _check_coverage()
    torch.set_num_threads(1)
    _quiet()
    reports = []
    for position, seed in enumerate(arguments.seeds):
        print(f"\n=================== seed {seed}")
        reports.append(_run_seed(seed, arguments.shards, arguments.slices, arguments.repeats, sweeps=position == 0))
    if len(reports) > 1:
        _print_summary(arguments.seeds, reports)


def _mean_std(values: Sequence[float], digits: int = 3) -> str:
    finite = [v for v in values if v is not None and not math.isnan(v)]
    if not finite:
        return "—"
    mean = statistics.fmean(finite)
    spread = statistics.stdev(finite) if len(finite) > 1 else 0.0
    return f"{mean:.{digits}f}±{spread:.{digits}f}"


def _print_summary(seeds: Sequence[int], reports: Sequence[UnlearningReport]) -> None:
    """Every model's figures over the seeds: mean ± standard deviation, and how often each verdict came."""
    names = [model.name for model in reports[0].models]
    rows = []
    for name in names:
        models = [report.model(name) for report in reports]
        verdicts: dict[str, int] = {}
        for model in models:
            label = "reference" if model.role == "retrained" else model.verdict_label
            verdicts[label] = verdicts.get(label, 0) + 1
        rows.append(
            [
                name,
                _mean_std([m.retain_accuracy for m in models]),
                _mean_std([m.forget_accuracy for m in models]),
                _mean_std([m.test_accuracy for m in models]),
                _mean_std([m.forgetting_rate for m in models]),
                _mean_std([m.mia.score for m in models]),
                _mean_std([m.mia.loss_auc for m in models]),
                _mean_std([m.seconds for m in models if m.seconds is not None], 2),
                _mean_std([m.speedup for m in models if m.speedup is not None], 1),
                ", ".join(f"{label} ×{count}" for label, count in verdicts.items()),
            ]
        )
    print(
        f"\nSummary over seeds {list(seeds)} (mean ± standard deviation of the per-seed figures; each seed its own"
        " splits, target, oracle, retraining and methods; measured on forget vs heldout and on test; times are each"
        " seed's median of the timed repeats; verdicts counted over the seeds)"
    )
    print(
        _table(
            [
                "model",
                "acc retain",
                "acc forget",
                "acc test",
                "FR",
                "MIA",
                "loss AUC",
                "time s",
                "speed-up",
                "verdicts",
            ],
            rows,
        )
    )


def _run_seed(seed: int, shards: int, slices: int, repeats: int, sweeps: bool) -> UnlearningReport:
    """Table 1 for one seed (and tables 2 and 3 when ``sweeps``); returns table 1's report."""
    workdir = Path(tempfile.mkdtemp(prefix="sisa-bench-"))

    dm = DigitsDataModule(seed=seed)
    dm.setup()
    recipe = TrainingRecipe(seed=seed)
    print(dm.summary())
    print(
        f"\nrecipe: {recipe.max_epochs} epochs of Adam (lr {recipe.learning_rate}), MLP 64→256→128→5; torch threads: 1;"
        f" every time is the median of {repeats} timed runs (min–max in brackets)"
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
    times: dict[str, list[float]] = {}
    retrained, times["retrained"] = _timed(lambda: RetrainBaseline(target, recipe=recipe), dm, seed, repeats)
    baselines: dict[str, Callable[[], UnlearningBaseline]] = {
        "SMU": lambda: SMUBaseline(target, recorder),
        "Finetune": lambda: FinetuneBaseline(target, seed=seed),
        "NegGrad": lambda: NegGradBaseline(target, seed=seed),
        "NegGrad 3 ep": lambda: NegGradBaseline(target, max_epochs=3, seed=seed),
        "NegGrad+": lambda: NegGradPlusBaseline(target, seed=seed),
        "Random labels": lambda: RandomLabelsBaseline(target, seed=seed),
        "SalUn": lambda: SalUnBaseline(target, seed=seed),
        "SCRUB": lambda: SCRUBBaseline(target, max_epochs=8, optimizer=SCRUB_OPTIMIZER, seed=seed),
        "SCRUB+R": lambda: SCRUBBaseline(target, max_epochs=8, rewind=True, optimizer=SCRUB_OPTIMIZER, seed=seed),
        "l1-sparse": lambda: L1SparseBaseline(target, l1_weight=L1_WEIGHT, seed=seed),
    }
    for name, build in baselines.items():
        models[name], times[name] = _timed(build, dm, seed, repeats)

    def sisa_at(folder: Path) -> SISAEnsemble:
        return SISAEnsemble(dm, recipe, num_shards=shards, num_slices=slices, checkpoint_dir=folder, progress_bar=False)

    def sisa_dp_at(folder: Path) -> SISADPEnsemble:  # DP-SGD: trained on its own
        return SISADPEnsemble(
            dm, recipe, num_shards=shards, num_slices=slices, checkpoint_dir=folder, progress_bar=False
        )

    def sisa_output_at(folder: Path) -> SISAEnsemble:  # output perturbation: publishes noised copies of SISA's
        return SISADPEnsemble(
            dm,
            recipe,
            num_shards=shards,
            num_slices=slices,
            checkpoint_dir=folder,
            dp_mechanism="output_perturbation",
            progress_bar=False,
        )

    forget_indices = dm.splits["forget"].indices
    pristine_dir = workdir / "sisa_pristine"  # the trained ensemble of the first repeat, before any unlearning
    training_seconds: list[float] = []
    times["SISA"], times["SISA-DP"], times["SISA-DP output"] = [], [], []
    dp_training_seconds: list[float] = []
    for repeat in range(repeats):  # a freshly trained ensemble every repeat (as the pipeline's SISA adapter)
        sisa = sisa_at(workdir / f"sisa_{shards}_{repeat}")
        training_seconds.append(sisa.fit().seconds)
        if repeat == 0:
            shutil.copytree(sisa.checkpoint_dir, pristine_dir)
            sisa_before = sisa.as_module()
        # Same data and settings: output perturbation publishes noised copies of the same trained checkpoints.
        sisa_output = _copy_ensemble(sisa.checkpoint_dir, workdir / f"sisa_out_{shards}_{repeat}", sisa_output_at)
        sisa_dp = sisa_dp_at(workdir / f"sisa_dp_{shards}_{repeat}")
        dp_training_seconds.append(sisa_dp.fit().seconds)
        sisa_report = sisa.unlearn(forget_indices)
        dp_report = sisa_dp.unlearn(forget_indices)
        output_report = sisa_output.unlearn(forget_indices)
        times["SISA"].append(sisa_report.seconds)
        times["SISA-DP"].append(dp_report.seconds)
        times["SISA-DP output"].append(output_report.seconds)
        if repeat == 0:
            models["SISA"], models["SISA-DP"] = sisa.as_module(), sisa_dp.as_module()
            models["SISA-DP output"] = sisa_output.as_module()
            first_sisa_report, first_dp, first_output = sisa_report, sisa_dp, sisa_output

    # The Forsaken paper's own method, with its module's defaults.
    forsaken_runs = [forsaken_unlearn(target.backbone, dm, seed=seed) for _ in range(repeats)]
    models["Forsaken"], times["Forsaken"] = forsaken_runs[0].model, [run.seconds for run in forsaken_runs]
    # FNN through the pipeline's adapter (its MIA early stopping on the validation pair is inside its timer).
    context = ExperimentContext(
        datamodule=dm,
        recipe=recipe,
        target=target.backbone,
        recorder=recorder,
        retrained=retrained,
        oracle=oracle,
        work_dir=workdir / "pipeline",
        progress_bar=False,
        seed=seed,
    )
    fnn_runs = [METHODS["fnn"](context) for _ in range(repeats)]
    models["FNN"], times["FNN"] = fnn_runs[0].model, [run.seconds for run in fnn_runs]

    order = [
        "SMU",
        "SISA",
        "SISA-DP",
        "SISA-DP output",
        "Finetune",
        "NegGrad",
        "NegGrad 3 ep",
        "NegGrad+",
        "Random labels",
        "SalUn",
        "SCRUB",
        "SCRUB+R",
        "l1-sparse",
        "Forsaken",
        "FNN",
    ]
    report = UnlearningReport.evaluate(
        dm,
        oracle,
        original=target,
        retrained=retrained,
        unlearned={name: models[name] for name in order},
        times=times,
        mia_seed=seed,
    )
    print(
        f"\n1. Digits OOD scenario: forgetting the {len(forget_indices)} OOD members (speed-up = retraining time /"
        f" method time, medians of {repeats} runs each)"
    )
    print(report)
    print(
        "times, median (min–max) of "
        + f"{repeats} runs: "
        + "; ".join(f"{name} {_seconds(values, 3)} s" for name, values in times.items())
    )
    print(
        f"SISA: S={shards} × R={slices}, {sisa.epochs_per_slice} epochs per slice;"
        f" trained in {_seconds(training_seconds)} s;"
        f" unlearning the forget set touched shards {first_sisa_report.affected_shards} from slices"
        f" {sorted(set(first_sisa_report.first_affected_slice.values()))}, retraining"
        f" {first_sisa_report.total_slices} of {shards * slices} steps. SISA before unlearning: test accuracy"
        f" {_accuracy(sisa_before, dm, 'test'):.3f}, forget accuracy {_accuracy(sisa_before, dm, 'forget'):.3f}."
    )
    num_parameters = sum(p.numel() for p in sisa_before.constituents[0].parameters())
    sigmas = [round(v, 2) for v in first_dp.dp_step_noise_multipliers[0]]
    dp_gap = report.model("SISA").test_accuracy - report.model("SISA-DP").test_accuracy
    dp_verdict = "PASS" if dp_gap <= 0.05 else "FAIL"
    print(
        f"SISA-DP (DP-SGD, Opacus): target ε = {first_dp.dp_epsilon:g}, δ = {first_dp.dp_delta:g} per constituent;"
        f" spent ε by the RDP accountant, per shard: {[round(v, 3) for v in first_dp.dp_spent_epsilon.values()]};"
        f" noise multiplier of shard 0's steps {sigmas} ({first_dp.dp_noise_schedule}), per-sample clip"
        f" {first_dp.dp_clip_norm:g}, expected batch"
        f" {first_dp.dp_batch_size}, Adam lr {first_dp.dp_learning_rate or recipe.learning_rate:g};"
        f" ensemble trained in {_seconds(dp_training_seconds)} s. Test accuracy"
        f" {report.model('SISA-DP').test_accuracy:.3f} vs plain SISA's {report.model('SISA').test_accuracy:.3f}"
        f" (target: within 0.05) → {dp_verdict}."
    )
    print(
        f"SISA-DP output (output perturbation): ε = {first_output.dp_epsilon:g}, δ = {first_output.dp_delta:g}, clip"
        f" C = {first_output.dp_clip_norm:g}: Gaussian noise σ = {first_output.dp_sigma:.3f} on each of the"
        f" {num_parameters:,} parameters of every constituent."
    )
    sisa_verdict = report.model("SISA").verdict_label
    print(
        "check on held-back splits (forget vs heldout, test; read by no method and no choice here): SISA is exact"
        f" unlearning, so its verdict should be 'matches retraining' → {sisa_verdict} →"
        f" {'PASS' if sisa_verdict == 'matches retraining' else 'FAIL'}"
    )

    if not sweeps:
        shutil.rmtree(workdir, ignore_errors=True)
        return report

    # ------------------------------------------------------------------ 2. shards sweep
    forget_loader = dm.dataloader("forget")
    rows = []
    for count in (1, 2, 4, 8):

        def sweep_at(folder: Path, count: int = count) -> SISAEnsemble:
            return SISAEnsemble(
                dm, recipe, num_shards=count, num_slices=slices, checkpoint_dir=folder, progress_bar=False
            )

        trained_dir = workdir / f"sweep_{count}"
        ensemble = sweep_at(trained_dir)
        trained = ensemble.fit()
        before = ensemble.as_module()
        before_forget = oracle.predict_membership(before, forget_loader)
        unlearn_seconds = []
        for repeat in range(repeats):  # each repeat unlearns from a fresh copy of the trained ensemble
            copy = _copy_ensemble(trained_dir, workdir / f"sweep_{count}_{repeat}", sweep_at)
            unlearning = copy.unlearn(forget_indices)
            unlearn_seconds.append(unlearning.seconds)
            if repeat == 0:
                after, steps = copy.as_module(), unlearning.total_slices
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
                f"{steps}/{count * slices}",
                _seconds(unlearn_seconds),
                f"{statistics.median(times['retrained']) / statistics.median(unlearn_seconds):.2f}×",
            ]
        )
    print(
        f"\n2. SISA against the number of shards (R = {slices} slices; unlearning the whole forget set;"
        f" 'train s' timed once, 'unlearn s' the median (min–max) of {repeats} runs on fresh copies of the trained"
        " ensemble; speed-up = median retraining / median unlearning)"
    )
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
    layout = sisa_at(pristine_dir)
    rng = np.random.default_rng(seed)
    chosen = [
        ("last slice", int(layout.slices[0][slices - 1][0])),
        ("middle slice", int(layout.slices[1 % shards][slices // 2][0])),
        ("first slice", int(layout.slices[2 % shards][0][0])),
        ("random", int(rng.choice(forget_indices))),
    ]
    training_median = statistics.median(training_seconds)
    retraining_median = statistics.median(times["retrained"])
    rows = []
    for label, index in chosen:
        seconds = []
        for repeat in range(repeats):  # each repeat forgets the sample from a fresh copy of the trained ensemble
            single = _copy_ensemble(pristine_dir, workdir / f"single_{label.replace(' ', '_')}_{repeat}", sisa_at)
            unlearning = single.unlearn([index])
            seconds.append(unlearning.seconds)
        shard = single.shard_of(index)
        median = statistics.median(seconds)
        rows.append(
            [
                label,
                str(index),
                str(shard),
                str(unlearning.first_affected_slice[shard]),
                f"{unlearning.total_slices}/{shards * slices}",
                _seconds(seconds, 3),
                _seconds(training_seconds),
                f"{training_median / median:.1f}×",
                f"{retraining_median / median:.1f}×",
            ]
        )
    print(
        f"\n3. SISA (S={shards} × R={slices}) unlearning one sample vs training the whole ensemble (every time the"
        f" median (min–max) of {repeats} runs; each sample forgotten from a fresh copy of the trained ensemble)"
    )
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
    return report


if __name__ == "__main__":
    main()
