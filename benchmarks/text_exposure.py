"""Text scenarios and canary exposure, on generated corpora of realistic shape.

Run: ``python benchmarks/text_exposure.py [--part classification exposure] [--seeds 0 1 2] [--seed 0]``.
Prints, in one run:

1. **Reuters 35-11** on a generated newswire corpus written in the Keras ``reuters.npz`` /
   ``reuters_word_index.json`` format and read back by :class:`ReutersDataModule` (46 topics of
   Zipf-like sizes, stories of 40–250 words over a 15,000-word Zipf vocabulary with topical
   words; topics 35–45 are the OOD pool inserted under random labels). The paper's MLP on
   10,000-word bags. FR (shadow-model oracle), MIA score, test accuracy and its drop (Δacc),
   forget accuracy and time, for the original, full retraining and Forsaken's two named
   configurations, ``forsaken[paper]`` and ``forsaken[recommended]`` (P from the oracle's shadow
   model), and the configuration recommended before the relative step, for comparison; each row
   also read on the validation pair (what selection reads). Each of ``--seeds`` generates its own
   corpus and splits; then the means over the seeds. Target (issue 13): test accuracy within 2
   points of the retrained model's (mean over the seeds), printed PASS/FAIL.
2. **Canary exposure** in a two-layer LSTM language model trained on the package's synthetic
   corpus with canaries ``my secret number is d d d d d`` (|R| = 10⁵) inserted k times. Half of
   them are forgotten with Forsaken (the LM read as a next-token classifier, see
   :mod:`lightning_unlearn.language`); exposure (exact, Eq. 8, and the skew-normal estimate,
   Eq. 9) before, across iterations (Fig. 12) and after, the LM's test perplexity before and
   after, and the same figures for a language model retrained without the forgotten canaries.
   Target: mean exposure of the forgotten canaries below 10 bits, test perplexity up
   by at most 10 %.

Times are wall-clock on CPU with one intra-op thread; training and unlearning times exclude
every evaluation. Not a timed test: numbers vary run to run.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import math
import tempfile
import time
import warnings
import zipfile
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from forsaken_digits import PREVIOUS, validation_pair  # this folder's digits benchmark
from torch import nn

from lightning_unlearn import TrainingRecipe, predict, train_classifier
from lightning_unlearn.datamodules import ReutersDataModule
from lightning_unlearn.language import (
    build_lm_vocabulary,
    insert_canaries,
    make_canaries,
    measure_exposure,
    perplexity,
    read_penn_treebank,
    synthetic_corpus,
    train_language_model,
    unlearn_canaries,
)
from lightning_unlearn.metrics import ShadowModelOracle, mia_score_from_logits
from lightning_unlearn.modules.forsaken import forsaken_configuration, forsaken_unlearn
from lightning_unlearn.text_models import ReutersMLP

warnings.filterwarnings("ignore")
for _name in ("lightning.pytorch", "lightning.fabric", "lightning_unlearn"):
    logging.getLogger(_name).setLevel(logging.ERROR)

QUIET: dict[str, Any] = dict(enable_progress_bar=False, enable_model_summary=False)


class Stopwatch:
    """Prints how long each stage took."""

    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.stages: list[tuple[str, float]] = []

    def stage(self, name: str, began: float) -> None:
        seconds = time.perf_counter() - began
        self.stages.append((name, seconds))
        print(f"  [stage] {name}: {seconds:.1f} s", flush=True)

    def summary(self) -> None:
        print("\nStage times")
        for name, seconds in self.stages:
            print(f"  {name:<66} {seconds:8.1f} s")
        print(f"  {'total':<66} {time.perf_counter() - self.start:8.1f} s")


# ---------------------------------------------------------------------------------------------
# 1. Reuters 35-11 on a generated corpus in the Keras format
# ---------------------------------------------------------------------------------------------


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=True)
    return buffer.getvalue()


def write_newswire(root: Path, seed: int, largest_topic: int = 1_200, words: int = 15_000) -> int:
    """Write a Reuters-shaped corpus as ``reuters.npz`` + ``reuters_word_index.json``; return its size."""
    rng = np.random.default_rng(seed)
    ranks = np.arange(1, 47)
    sizes = np.maximum(25, np.round(largest_topic / ranks)).astype(int)  # Zipf-like topic sizes, 25 at least
    background = 1.0 / np.arange(1, words + 1) ** 1.05
    background /= background.sum()
    # Topics share their characteristic words (drawn from one pool of 1,500 mid-frequency words),
    # so neighbouring topics overlap and the task is not trivially separable.
    pool = np.arange(100, 1_600)
    topical = [rng.choice(pool, size=60, replace=False) for _ in range(46)]
    stories, topics = [], []
    for topic, size in enumerate(sizes):
        for _ in range(size):
            length = int(np.clip(rng.lognormal(4.6, 0.5), 40, 250))
            n_topical = rng.binomial(length, 0.09)
            drawn = np.concatenate(
                [rng.choice(words, size=length - n_topical, p=background), rng.choice(topical[topic], n_topical)]
            )
            stories.append([int(w) + 1 for w in rng.permutation(drawn)])
            topics.append(topic)
    x = np.empty(len(stories), dtype=object)
    x[:] = stories
    root.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(root / "reuters.npz", "w") as archive:
        archive.writestr("x.npy", _npy(x))
        archive.writestr("y.npy", _npy(np.asarray(topics, dtype=np.int64)))
    (root / "reuters_word_index.json").write_text(json.dumps({f"w{r}": r for r in range(1, words + 1)}))
    return len(stories)


def classification(seed: int, epochs: int, watch: Stopwatch) -> dict[str, dict[str, float]]:
    """One seed of the Reuters scenario; returns, per row, its test accuracy, MIA and time."""
    print(f"\n=== 1. Reuters 35-11 (generated newswire in the Keras reuters.npz format), ReutersMLP, seed {seed} ===")
    with tempfile.TemporaryDirectory() as folder:
        began = time.perf_counter()
        count = write_newswire(Path(folder), seed)
        dm = ReutersDataModule(folder, seed=seed, batch_size=64)
        dm.setup("fit")
        watch.stage(f"generate + read + tokenise + bag 10,000 words (seed {seed})", began)
    sizes = {name: len(dm.splits[name]) for name in ("target_train", "retain", "forget", "test", "heldout")}
    print(f"corpus: {count:,} stories, 46 topics; splits {sizes}; bag width {dm.input_shape[0]:,}", flush=True)
    recipe = TrainingRecipe(
        backbone=ReutersMLP(in_features=dm.input_shape[0], num_classes=dm.num_classes),
        max_epochs=epochs,
        learning_rate=1e-3,
        seed=seed,
    )
    began = time.perf_counter()
    original = train_classifier(recipe, dm, **QUIET)
    watch.stage(f"train original MLP ({epochs} epochs, seed {seed})", began)
    began = time.perf_counter()
    retrained = train_classifier(recipe, dm, "retain", **QUIET)
    watch.stage(f"retrain on retain ({epochs} epochs, seed {seed})", began)
    began = time.perf_counter()
    oracle = ShadowModelOracle().fit(recipe, dm, trainer_overrides=QUIET)
    original_model = original.module.backbone.eval()
    quality = oracle.quality(original_model, dm)
    watch.stage(f"shadow model + XGBoost oracle (seed {seed})", began)
    print(
        f"oracle on the original: forget vs heldout balanced acc {quality.forget_vs_heldout.balanced_accuracy:.3f}"
        f" (reliable={quality.reliable}); retain vs test {quality.retain_vs_test.balanced_accuracy:.3f}"
    )
    runs: list[tuple[str, nn.Module, float, int | None]] = [
        ("original", original_model, original.seconds, None),
        ("retrain (gold standard)", retrained.module.backbone.eval(), retrained.seconds, None),
    ]
    shadow = oracle.shadow_model  # the recommended configuration's P: the oracle's shadow model, trained anyway
    for name, settings in (
        ("forsaken[paper]", forsaken_configuration("paper")),
        ("forsaken[recommended]", forsaken_configuration("recommended", shadow_model=shadow)),
        # weight steps kept off the retained inputs (docs/forsaken.md): what it does to a bag of words
        (
            "recommended + projection 0.95",
            forsaken_configuration("recommended", shadow_model=shadow, projection_energy=0.95),
        ),
        ("previous recommended (absolute step)", {**PREVIOUS, "shadow_model": shadow}),
    ):
        began = time.perf_counter()
        result = forsaken_unlearn(original_model, dm, seed=seed, **settings)
        watch.stage(f"{name} (seed {seed})", began)
        runs.append((name, result.model.eval(), result.seconds, result.module.iteration))
    test_original = predict(original_model, dm.dataloader("test")).accuracy()
    test_retrained = predict(runs[1][1], dm.dataloader("test")).accuracy()
    print(
        "(validation pair: MIA of forget vs validation_heldout and accuracy on validation, what selection reads;"
        " then, measured on heldout/test: Δacc = test accuracy minus the original's, in points; vs retrain ="
        " minus the retrained model's (target: within 2 points); forget = accuracy under inserted labels;"
        " T = iterations run)"
    )
    print(
        f"{'model':<37} {'val MIA':>7} {'val acc':>7} | {'FR':>6} {'MIA':>6} {'test':>6} {'Δacc':>7}"
        f" {'vs retrain':>10} {'forget':>7} {'T':>3} {'time s':>8} {'speed-up':>9}  target"
    )
    began = time.perf_counter()
    rows: dict[str, dict[str, float]] = {}
    for name, model, seconds, iterations in runs:
        forget = predict(model, dm.dataloader("forget"))
        test = predict(model, dm.dataloader("test")).accuracy()
        heldout = predict(model, dm.dataloader("heldout"))
        fr = float("nan") if name == "original" else oracle.forgetting_rate(original_model, model, dm, quality).value
        mia = mia_score_from_logits(forget.logits, forget.targets, heldout.logits, heldout.targets).score
        validation_mia, validation = validation_pair(model, dm)
        speed = "—" if name.startswith(("original", "retrain")) else f"{retrained.seconds / seconds:8.1f}×"
        target = (
            ("PASS" if abs(test - test_retrained) <= 0.02 + 1e-9 else "FAIL") if name.startswith("forsaken") else "—"
        )
        print(
            f"{name:<37} {validation_mia:7.3f} {validation:7.3f} | {fr:6.3f} {mia:6.3f} {test:6.3f}"
            f" {100 * (test - test_original):+6.1f}p {100 * (test - test_retrained):+9.1f}p {forget.accuracy():7.3f}"
            f" {iterations or '—':>3} {seconds:8.2f} {speed:>9}  {target}"
        )
        rows[name] = dict(test=test, vs_retrain=test - test_retrained, mia=mia, seconds=seconds)
    watch.stage(f"evaluation (FR, MIA, accuracies; seed {seed})", began)
    return rows


def classification_summary(results: Sequence[dict[str, dict[str, float]]]) -> None:
    """Means over the seeds, and issue 13's text target on them (test accuracy within 2 points of retraining)."""
    print(f"\nReuters 35-11, mean over {len(results)} seed(s) [each seed]:")
    print(f"{'model':<37} {'test':<26} {'vs retrain (p)':<32} {'MIA':<26}")
    for name in results[0]:
        test = [r[name]["test"] for r in results]
        drop = [100 * r[name]["vs_retrain"] for r in results]
        mia = [r[name]["mia"] for r in results]

        def cell(values: list[float], fmt: str) -> str:
            return f"{format(sum(values) / len(values), fmt)} [{' '.join(format(v, fmt) for v in values)}]"

        print(f"{name:<37} {cell(test, '.3f'):<26} {cell(drop, '+.1f'):<32} {cell(mia, '.3f'):<26}")
    for name in ("forsaken[paper]", "forsaken[recommended]"):
        mean_gap = sum(r[name]["vs_retrain"] for r in results) / len(results)
        verdict = "PASS" if abs(mean_gap) <= 0.02 + 1e-9 else "FAIL"
        print(f"[{verdict}] {name}: test accuracy {100 * mean_gap:+.1f} points from the retrained model's (target ±2)")


# ---------------------------------------------------------------------------------------------
# 2. Canary exposure in an LSTM language model
# ---------------------------------------------------------------------------------------------


def exposure(seed: int, args: argparse.Namespace, watch: Stopwatch) -> bool:
    print("\n=== 2. Canary exposure in a two-layer LSTM language model (synthetic corpus) ===", flush=True)
    began = time.perf_counter()
    if args.ptb is not None:  # Penn Treebank from local files (ptb.{train,valid,test}.txt)
        ptb = read_penn_treebank(args.ptb)
        corpus, test_sentences = ptb["train"], ptb["test"]
    else:
        corpus = synthetic_corpus(args.sentences, seed=seed)
        test_sentences = synthetic_corpus(2_000, seed=seed + 1_000)
    canaries = make_canaries(args.canaries * 2 + 20, secret_length=5, seed=seed)
    forgotten, kept = canaries[: args.canaries], canaries[args.canaries : 2 * args.canaries]
    unseen = canaries[2 * args.canaries :]
    train = insert_canaries(corpus, forgotten + kept, repetitions=args.repetitions, seed=seed)
    retain = insert_canaries(corpus, kept, repetitions=args.repetitions, seed=seed)
    vocabulary = build_lm_vocabulary(train, vocab_size=10_000)
    watch.stage("corpus + canaries + vocabulary", began)
    print(
        f"corpus: {'Penn Treebank' if args.ptb else 'synthetic'}, {len(corpus):,} sentences"
        f" ({sum(map(len, corpus)):,} tokens, vocabulary {len(vocabulary)});"
        f" {2 * args.canaries} canaries × {args.repetitions} insertions ({args.canaries} to forget,"
        f" {args.canaries} kept); secret space |R| = 10^5 (max exposure {math.log2(1e5):.2f} bits)"
    )
    settings: dict[str, Any] = dict(context_length=16, epochs=args.lm_epochs, batch_size=64, hidden_size=128, seed=seed)
    began = time.perf_counter()
    original = train_language_model(train, vocabulary, **settings)
    watch.stage(f"train LSTM LM with canaries ({args.lm_epochs} epochs)", began)
    began = time.perf_counter()
    retrained = train_language_model(retain, vocabulary, **settings)
    watch.stage(f"retrain LSTM LM without the forgotten canaries ({args.lm_epochs} epochs)", began)

    began = time.perf_counter()
    forsaken = dict(
        iterations=args.iterations,
        initial_gain=args.gain,
        penalty_weight=args.penalty,
        optimizer=partial(torch.optim.Adam, lr=args.generator_lr),
    )
    result = unlearn_canaries(
        original.model,
        vocabulary,
        forgotten,
        unseen,
        train,
        test_sentences,
        track_every=max(1, args.iterations // 5),
        seed=seed,
        **forsaken,
    )
    watch.stage(f"Forsaken on the canaries ({args.iterations} iterations, with exposure tracking)", began)

    began = time.perf_counter()
    rows = []
    for name, model, seconds in (
        ("original", original.model, original.seconds),
        ("retrain without forgotten", retrained.model, retrained.seconds),
        ("Forsaken", result.model, result.seconds),
    ):
        forgot = measure_exposure(model, vocabulary, forgotten)
        still = measure_exposure(model, vocabulary, kept)
        estimate = measure_exposure(model, vocabulary, forgotten, method="skew_normal", num_references=5_000, seed=seed)
        # The heldout half of the unseen canaries: the reference half feeds Forsaken's P.
        control = measure_exposure(model, vocabulary, unseen[len(unseen) // 2 :][:10])
        rows.append(
            (
                name,
                forgot.mean,
                estimate.mean,
                still.mean,
                control.mean,
                perplexity(model, test_sentences, vocabulary),
                seconds,
            )
        )
    watch.stage("exposure (exact + skew-normal) and perplexity of three models", began)

    print(f"\nForsaken settings: posterior=global_mean (unseen canaries' secret positions), {forsaken}")
    print(
        f"exposure in bits (exact, Eq. 8, unless marked); perplexity per token on {len(test_sentences):,} held-out"
        " sentences; 'unseen' = 10 canaries never inserted, from the heldout half (not those P is built from)"
    )
    print(
        f"{'model':<28} {'forgotten':>9} {'(Eq. 9)':>8} {'kept':>7} {'unseen':>7} {'test ppl':>9} {'Δppl':>7}"
        f" {'time s':>8} {'speed-up':>9}"
    )
    base_ppl = rows[0][5]
    for name, forgot_mean, estimate_mean, kept_mean, unseen_mean, ppl, seconds in rows:
        speed = f"{retrained.seconds / seconds:8.1f}×" if name == "Forsaken" else "—"
        print(
            f"{name:<28} {forgot_mean:9.2f} {estimate_mean:8.2f} {kept_mean:7.2f} {unseen_mean:7.2f} {ppl:9.3f}"
            f" {100 * (ppl / base_ppl - 1):+6.1f}% {seconds:8.2f} {speed:>9}"
        )
    print("\nFig. 12 — mean exposure of the forgotten canaries across Forsaken iterations:")
    print("  " + "  ".join(f"t={t}: {value:.2f}" for t, value in result.curve))
    after, ppl_rise = rows[2][1], rows[2][5] / base_ppl - 1
    met = after < 10.0 and ppl_rise <= 0.10
    print(
        f"\nTarget: forgotten canaries' mean exposure < 10 bits and test perplexity up ≤ 10 % →"
        f" {after:.2f} bits, {100 * ppl_rise:+.1f} % → {'MET' if met else 'NOT MET'}"
    )
    return met


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--part", nargs="+", default=["classification", "exposure"], choices=["classification", "exposure"]
    )
    parser.add_argument("--seed", type=int, default=0, help="the exposure part's seed")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="the classification part's seeds")
    parser.add_argument("--epochs", type=int, default=15, help="MLP training epochs")
    parser.add_argument("--sentences", type=int, default=10_000, help="LM corpus size")
    parser.add_argument("--ptb", default=None, help="folder with ptb.{train,valid,test}.txt to use instead")
    parser.add_argument("--lm-epochs", type=int, default=10)
    parser.add_argument("--canaries", type=int, default=5, help="canaries forgotten (and as many kept)")
    parser.add_argument("--repetitions", type=int, default=20, help="insertions of each canary")
    parser.add_argument("--iterations", type=int, default=30, help="Forsaken iterations on the LM")
    parser.add_argument("--gain", type=float, default=1e-3, help="Forsaken initial_gain on the LM")
    parser.add_argument("--penalty", type=float, default=1e-3, help="Forsaken penalty_weight (λ) on the LM")
    parser.add_argument("--generator-lr", type=float, default=0.01, help="Adam learning rate of the generator")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    watch = Stopwatch()
    if "classification" in args.part:
        classification_summary([classification(seed, args.epochs, watch) for seed in args.seeds])
    if "exposure" in args.part:
        exposure(args.seed, args, watch)
    watch.summary()


if __name__ == "__main__":
    main()
