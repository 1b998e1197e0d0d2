"""Evaluation on the digits OOD scenario: oracle quality, MIA score, BT/BF and FR, over a few seeds.

Trains, per seed, the target (on ``target_train``), the shadow model + XGBoost oracle (on the
shadow half) and the model retrained without the forget set (on ``retain``), all with the
default :class:`~lightning_unlearn.training.TrainingRecipe`, then prints:

* the oracle's accuracy and AUC on the original target, forget vs heldout and retain vs test
  (and, for comparison, the AUC of an oracle with the paper's literal features, sorted
  posterior + one-hot label, fitted on the same shadow);
* the MIA score (forget vs heldout) of the original and the retrained model, with AUC;
* BT and BF of the original target on the forget set;
* FR of the retrained model;
* the time to fit the oracle (shadow training + attack).

Run: ``python benchmarks/evaluation_digits.py [--seeds 0 1 2]``. CPU only; about 10 s per seed.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import time
import warnings

import torch

from lightning_unlearn import DigitsDataModule, TrainingRecipe, train_classifier
from lightning_unlearn.inference import predict
from lightning_unlearn.metrics import ShadowModelOracle, forgetting_rate, membership_counts, mia_score_from_logits

QUIET = {"enable_progress_bar": False, "enable_model_summary": False}

COLUMNS = (
    ("seed", "{:d}"),
    ("oracle acc f/h", "{:.3f}"),
    ("oracle AUC f/h", "{:.3f}"),
    ("paper-feat AUC f/h", "{:.3f}"),
    ("oracle acc r/t", "{:.3f}"),
    ("oracle AUC r/t", "{:.3f}"),
    ("MIA orig", "{:.3f}"),
    ("MIA AUC orig", "{:.3f}"),
    ("MIA retr", "{:.3f}"),
    ("MIA AUC retr", "{:.3f}"),
    ("BT", "{:d}"),
    ("BF", "{:d}"),
    ("FR retr", "{:.3f}"),
    ("oracle fit s", "{:.2f}"),
    ("attack s", "{:.2f}"),
)


def evaluate_seed(seed: int) -> dict[str, float]:
    """Every figure of the benchmark for one seed (splits and training share it)."""
    datamodule = DigitsDataModule(seed=seed)
    datamodule.setup()
    recipe = TrainingRecipe(seed=seed)
    target = train_classifier(recipe, datamodule, "target_train", **QUIET).module
    retrained = train_classifier(recipe, datamodule, "retain", **QUIET).module

    start = time.perf_counter()
    oracle = ShadowModelOracle(seed=seed).fit(recipe, datamodule, trainer_overrides=QUIET)
    oracle_seconds = time.perf_counter() - start

    quality = oracle.quality(target, datamodule)
    assert oracle.shadow_model is not None
    shadow_members = predict(oracle.shadow_model, datamodule.dataloader("shadow_train"))
    shadow_nonmembers = predict(oracle.shadow_model, datamodule.dataloader("shadow_test"))
    literal = ShadowModelOracle(features="sorted_posterior_onehot", seed=seed).fit_attack(
        shadow_members, shadow_nonmembers
    )
    literal_quality = literal.quality(target, datamodule)

    mia = {}
    for name, model in (("orig", target), ("retr", retrained)):
        forget = predict(model, datamodule.dataloader("forget"))
        heldout = predict(model, datamodule.dataloader("heldout"))
        mia[name] = mia_score_from_logits(forget.logits, forget.targets, heldout.logits, heldout.targets, seed=seed)

    forget_loader = datamodule.dataloader("forget")
    bt, bf, _, af = membership_counts(
        oracle.predict_membership(target, forget_loader), oracle.predict_membership(retrained, forget_loader)
    )
    return {
        "seed": seed,
        "oracle acc f/h": quality.forget_vs_heldout.accuracy,
        "oracle AUC f/h": quality.forget_vs_heldout.auc,
        "paper-feat AUC f/h": literal_quality.forget_vs_heldout.auc,
        "oracle acc r/t": quality.retain_vs_test.accuracy,
        "oracle AUC r/t": quality.retain_vs_test.auc,
        "MIA orig": mia["orig"].score,
        "MIA AUC orig": mia["orig"].auc,
        "MIA retr": mia["retr"].score,
        "MIA AUC retr": mia["retr"].auc,
        "BT": bt,
        "BF": bf,
        "FR retr": forgetting_rate(bt, bf, af),
        "oracle fit s": oracle_seconds,
        "attack s": oracle.attack_seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest for these tiny MLPs)")
    arguments = parser.parse_args()
    torch.set_num_threads(arguments.threads)
    warnings.filterwarnings("ignore")
    for name in ("lightning.pytorch", "lightning.fabric", "lightning_unlearn"):
        logging.getLogger(name).setLevel(logging.ERROR)

    rows = [evaluate_seed(seed) for seed in arguments.seeds]
    names = [name for name, _ in COLUMNS]
    widths = [max(len(name), 7) for name in names]
    print("Digits OOD scenario (task 0–4, OOD 5–9 under random labels); forget = 179 OOD members,")
    print("heldout = unseen OOD labelled alike. f/h = forget vs heldout, r/t = retain vs test.")
    print(f"torch threads: {arguments.threads}")
    print("  ".join(name.rjust(width) for name, width in zip(names, widths)))
    for row in rows:
        cells = [fmt.format(int(row[name]) if fmt == "{:d}" else row[name]) for name, fmt in COLUMNS]
        print("  ".join(cell.rjust(width) for cell, width in zip(cells, widths)))
    if len(rows) > 1:
        cells = ["mean"]
        for name, fmt in COLUMNS[1:]:
            values = [float(row[name]) for row in rows]
            digits = 1 if fmt == "{:d}" else (2 if name.endswith(" s") else 3)
            cells.append(f"{statistics.mean(values):.{digits}f}")
        print("  ".join(cell.rjust(width) for cell, width in zip(cells, widths)))
        cells = ["std"]
        for name, fmt in COLUMNS[1:]:
            values = [float(row[name]) for row in rows]
            digits = 1 if fmt == "{:d}" else (2 if name.endswith(" s") else 3)
            cells.append(f"{statistics.stdev(values):.{digits}f}")
        print("  ".join(cell.rjust(width) for cell, width in zip(cells, widths)))


if __name__ == "__main__":
    main()
