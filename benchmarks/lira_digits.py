"""Population MIA vs LiRA, side by side, on the digits OOD scenario, over a few seeds.

Run: ``python benchmarks/lira_digits.py [--seeds 0 1 2] [--models 16] [--cache-dir DIR]``.

Per seed (the splits, the recipe and every method share it), with the default
:class:`~lightning_unlearn.training.TrainingRecipe`:

1. the target (on ``target_train``), the model retrained on ``retain`` (recipe seed = the seed,
   never one of the reference models' seeds), the shadow-model oracle, and the ``--models`` LiRA
   reference models (:func:`~lightning_unlearn.metrics.lira_references.lira_references`: trained
   once, then taken from the cache; the second call is timed too);
2. finetune, Forsaken with the main job's settings, FNN and SISA through the pipeline's
   :data:`~lightning_unlearn.pipeline.METHODS` adapters;
3. :meth:`~lightning_unlearn.metrics.UnlearningReport.evaluate` with ``lira=``: for every model,
   forget vs ``heldout``, the population MIA (score, AUC, and TPR at 1 % FPR as the report gives
   it: its five folds' out-of-fold scores pooled, one threshold over all the non-members of its
   class-matched groups, with the FPR that threshold achieved) and LiRA (AUC, TPR at 1 % and 0.1 %
   FPR over all 179 negatives).

Then, once (first seed): the per-epoch cost of the callback's LiRA against its population MIA —
``update`` + ``compute`` on the validation pair's logits (forget vs ``validation_heldout``, what
:class:`~lightning_unlearn.callbacks.MembershipInferenceCallback` does at every validation epoch;
the forward pass is the module's own validation and shared by both), median of 20 repeats.

Held-out discipline: no method and no choice reads ``test`` or ``heldout``; only the report does.
CPU, one intra-op thread; wall-clock times vary from run to run on a shared machine.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import torch

from lightning_unlearn import DigitsDataModule, TrainingRecipe, train_classifier
from lightning_unlearn.metrics import MIAScore, ShadowModelOracle, UnlearningReport
from lightning_unlearn.metrics.lira import LiRAReferenceStatistics
from lightning_unlearn.metrics.lira_references import lira_references
from lightning_unlearn.metrics.lira_score import LiRAScore
from lightning_unlearn.pipeline import DEFAULT_METHODS, METHODS, ExperimentContext

QUIET = {"enable_progress_bar": False, "enable_model_summary": False}
#: The methods compared, with the main job's settings.
COMPARED = ("finetune", "forsaken", "fnn", "sisa")


def evaluate_seed(seed: int, num_models: int, cache_dir: Path, work_dir: Path) -> dict[str, Any]:
    """Every figure of one seed: the rows of the table and the reference models' times."""
    datamodule = DigitsDataModule(seed=seed)
    datamodule.setup()
    recipe = TrainingRecipe(seed=seed)
    target = train_classifier(recipe, datamodule, "target_train", **QUIET).module.backbone
    retrained = train_classifier(recipe, datamodule, "retain", **QUIET).module.backbone
    oracle = ShadowModelOracle(seed=seed).fit(recipe, datamodule, trainer_overrides=QUIET)

    begin = time.perf_counter()
    entry = lira_references(recipe, datamodule, num_models, seed=seed, cache_dir=cache_dir, progress_bar=True)
    first_wall = time.perf_counter() - begin
    begin = time.perf_counter()
    again = lira_references(recipe, datamodule, num_models, seed=seed, cache_dir=cache_dir, progress_bar=False)
    cached_wall = time.perf_counter() - begin
    assert again.from_cache
    references: LiRAReferenceStatistics = entry.value
    assert recipe.seed not in references.model_seeds, "the retrained model must not be a reference model"

    context = ExperimentContext(
        datamodule=datamodule,
        recipe=recipe,
        target=target,
        recorder=None,  # SMU's gradients: not compared here
        retrained=retrained,
        oracle=oracle,
        work_dir=work_dir / f"seed{seed}",
        progress_bar=False,
        seed=seed,
    )
    unlearned = {name: METHODS[name](context, **dict(DEFAULT_METHODS[name])).model for name in COMPARED}
    report = UnlearningReport.evaluate(
        datamodule, oracle, original=target, retrained=retrained, unlearned=unlearned, mia_seed=seed, lira=references
    )
    rows = []
    for evaluation in report.models:
        assert evaluation.lira is not None
        rows.append(
            {
                "seed": seed,
                "model": evaluation.name,
                "pop MIA": evaluation.mia.score,
                "pop AUC": evaluation.mia.auc,
                "pop TPR@1%": evaluation.mia.tpr_at_low_fpr,
                "pop FPR": evaluation.mia.achieved_fpr,
                "pop negatives": evaluation.mia.group_size,
                "LiRA AUC": evaluation.lira.auc,
                "LiRA TPR@1%": evaluation.lira.tpr_at_1pct_fpr,
                "LiRA TPR@0.1%": evaluation.lira.tpr_at_0_1pct_fpr,
            }
        )
    return {
        "rows": rows,
        "datamodule": datamodule,
        "target": target,
        "references": references,
        "from_cache": entry.from_cache,
        "fit_seconds": references.training_seconds,
        "first_wall": first_wall,
        "cached_wall": cached_wall,
        "lira_lines": report.to_dict()["lira"],
    }


def callback_cost(
    datamodule: DigitsDataModule, model: torch.nn.Module, references: LiRAReferenceStatistics
) -> dict[str, float]:
    """Median seconds of ``update`` over the validation pair's batches + ``compute``, per metric (20 repeats)."""
    batches = [
        (logits, targets, indices, split == "forget")
        for split in ("forget", "validation_heldout")
        for logits, targets, indices in _batches(model, datamodule, split)
    ]
    costs = {}
    metrics: dict[str, MIAScore | LiRAScore] = {"population MIA": MIAScore(), "LiRA": LiRAScore(references)}
    for name, metric in metrics.items():
        times = []
        for _ in range(20):
            begin = time.perf_counter()
            for logits, targets, indices, is_member in batches:
                metric.update(logits, targets, indices, is_member=is_member)
            metric.compute()
            times.append(time.perf_counter() - begin)
            metric.reset()
        costs[name] = statistics.median(times)
    return costs


def _batches(model: torch.nn.Module, datamodule: DigitsDataModule, split: str) -> list[tuple[torch.Tensor, ...]]:
    batches = []
    with torch.no_grad():
        for inputs, targets, indices in datamodule.dataloader(split, batch_size=64):
            batches.append((model(inputs), targets, indices))
    return batches


COLUMNS = (
    "pop MIA",
    "pop AUC",
    "pop TPR@1%",
    "pop FPR",
    "LiRA AUC",
    "LiRA TPR@1%",
    "LiRA TPR@0.1%",
)


def _print_table(rows: list[dict[str, Any]], label: str) -> None:
    """One line per row: its ``label`` cell, then :data:`COLUMNS` to three decimals."""
    keys = (label, *COLUMNS)
    widths = [max([len(key), 9, *(len(str(row[label])) for row in rows)]) for key in keys]
    print("  ".join(key.rjust(width) if i else key.ljust(width) for i, (key, width) in enumerate(zip(keys, widths))))
    for row in rows:
        cells = [str(row[label]), *(f"{row[key]:.3f}" for key in COLUMNS)]
        print("  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--models", type=int, default=16, help="LiRA reference models per seed")
    parser.add_argument("--cache-dir", type=Path, default=None, help="where the reference models are cached")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest for these tiny MLPs)")
    arguments = parser.parse_args()
    torch.set_num_threads(arguments.threads)
    warnings.filterwarnings("ignore")
    for name in ("lightning.pytorch", "lightning.fabric", "lightning_unlearn"):
        logging.getLogger(name).setLevel(logging.ERROR)

    with tempfile.TemporaryDirectory() as scratch:
        cache_dir = arguments.cache_dir or Path(scratch) / "cache"
        results = [evaluate_seed(seed, arguments.models, cache_dir, Path(scratch)) for seed in arguments.seeds]
        first = results[0]
        costs = callback_cost(first["datamodule"], first["target"], first["references"])

    print("\nDigits OOD scenario (task 0–4, OOD 5–9 under random labels): forget = 179 OOD members vs heldout =")
    print(
        f"179 unseen OOD labelled alike. LiRA: online, {arguments.models} reference models per seed, global variance."
    )
    print(f"torch threads: {arguments.threads}\n")
    print("Per seed:")
    _print_table(
        [{**row, "seed model": f"{row['seed']} {row['model']}"} for r in results for row in r["rows"]], "seed model"
    )
    print("\nMean over seeds:")
    names = [row["model"] for row in first["rows"]]
    means = []
    for name in names:
        chosen = [row for r in results for row in r["rows"] if row["model"] == name]
        means.append({"model": name, **{key: statistics.mean(row[key] for row in chosen) for key in COLUMNS}})
    _print_table(means, "model")
    negatives = sorted({row["pop negatives"] for r in results for row in r["rows"]})
    print(
        "\npop TPR@1%: the report's population TPR@1%FPR, its 5 folds' out-of-fold scores pooled, one threshold over"
        f" the {'/'.join(map(str, negatives))} non-members of its class-matched groups;\npop FPR: the FPR that"
        " threshold achieved. LiRA TPR: over all 179 negatives (1 false positive allowed at 1 %, none at 0.1 %:"
        " below 1/179 = 0.56 % FPR is not measurable)."
    )
    print("\nReference models (trained once per seed, then cached):")
    for seed, r in zip(arguments.seeds, results):
        source = "loaded from an existing cache" if r["from_cache"] else "trained"
        print(
            f"  seed {seed}: {source}; Trainer.fit of the {arguments.models} models {r['fit_seconds']:.1f} s in all,"
            f" first call {r['first_wall']:.1f} s wall, second call (cache) {r['cached_wall']:.2f} s"
        )
    print("\nThe report's LiRA lines (first seed):")
    for line in first["lira_lines"]:
        print(f"  {line}")
    print("\nPer validation epoch, update + compute on forget (179) vs validation_heldout (90), median of 20:")
    for name, seconds in costs.items():
        print(f"  {name}: {1000 * seconds:.1f} ms")


if __name__ == "__main__":
    main()
