"""Unlearning canaries from a language model with Forsaken, measuring their exposure (Fig. 12).

How Forsaken, a method for classifiers, is applied to a language model (our adaptation): the
LSTM is read as a *next-token classifier*
(:class:`~lightning_unlearn.language.model.NextTokenClassifier`: a window of tokens in, the
logits of the next token out, one class per vocabulary id). Each secret token of an inserted
canary, with the tokens before it as its window, is one forget sample; ``P`` (the non-member
posterior) is the model's next-token posterior at the same positions of canaries that were
*never* inserted (the ``reference`` split of
:class:`~lightning_unlearn.language.datamodule.CanaryUnlearningDataModule`), averaged
(``posterior="global_mean"``): for a secret digit, what the model predicts when it has not
memorised anything. The generator then moves the LSTM's own parameters, so the result is the
same language model with ``θ_T`` loaded. Exposure is measured before, after and across
Forsaken's iterations.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import lightning as L
from torch import nn

from lightning_unlearn.checks import check_integer
from lightning_unlearn.datamodules.sources.vocabulary import Vocabulary
from lightning_unlearn.language.canaries import Canary
from lightning_unlearn.language.datamodule import CanaryUnlearningDataModule
from lightning_unlearn.language.exposure import ExposureMethod, ExposureResult, measure_exposure
from lightning_unlearn.language.model import LSTMLanguageModel, NextTokenClassifier

__all__ = ["CanaryUnlearningResult", "unlearn_canaries"]


@dataclass
class CanaryUnlearningResult:
    """Outcome of :func:`unlearn_canaries`.

    Attributes:
        model: the unlearned language model (the original's architecture, ``θ_T`` loaded).
        seconds: wall-clock time of the unlearning alone (``Trainer.fit`` of Forsaken, no
            exposure measured inside: the curve's measurements are subtracted).
        exposure_before: exposure of the forgotten canaries under the original model.
        exposure_after: exposure of the forgotten canaries under the unlearned model.
        curve: ``(iteration, mean exposure)`` across Forsaken's iterations (Fig. 12),
            iteration 0 being the original model.
        module: the fitted ForsakenModule (history, mask gradient).
    """

    model: LSTMLanguageModel
    seconds: float
    exposure_before: ExposureResult
    exposure_after: ExposureResult
    curve: list[tuple[int, float]] = field(default_factory=list)
    module: Any = None


class _ExposureCurve(L.Callback):
    """Measures the forgotten canaries' mean exposure every ``every`` Forsaken iterations."""

    def __init__(self, every: int, measure: Callable[[nn.Module], float]) -> None:
        self.every = every
        self.measure = measure
        self.curve: list[tuple[int, float]] = []
        self.seconds = 0.0

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any) -> None:
        iteration = int(getattr(pl_module, "iteration", 0))
        done = iteration >= int(getattr(pl_module, "iterations", 0))
        if iteration and (iteration % self.every == 0 or done) and (not self.curve or self.curve[-1][0] != iteration):
            start = time.perf_counter()
            self.curve.append((iteration, self.measure(pl_module.unlearned_model())))  # type: ignore[operator]
            self.seconds += time.perf_counter() - start


def unlearn_canaries(
    model: LSTMLanguageModel,
    vocabulary: Vocabulary,
    forget_canaries: Sequence[Canary],
    unseen_canaries: Sequence[Canary],
    train_sentences: Sequence[Sequence[str]],
    test_sentences: Sequence[Sequence[str]],
    *,
    track_every: int | None = None,
    exposure_method: ExposureMethod = "auto",
    retain_windows: int = 512,
    probe_windows: int = 64,
    seed: int = 0,
    **forsaken_settings: Any,
) -> CanaryUnlearningResult:
    """Unlearn canaries from a language model with Forsaken, measuring their exposure (Fig. 12).

    See the module docstring for how the language model becomes a classifier. Defaults that
    differ from :class:`~lightning_unlearn.modules.forsaken.ForsakenModule`'s:
    ``posterior="global_mean"`` (the mean next-token posterior at unseen canaries' secret
    positions). Any other setting can be passed through ``forsaken_settings``.

    Args:
        model: the trained language model (not modified).
        vocabulary: its vocabulary.
        forget_canaries: the inserted canaries to forget.
        unseen_canaries: canaries of the same format never inserted (for ``P``).
        train_sentences: the training corpus (retained windows and ``D0``).
        test_sentences: held-out sentences.
        track_every: measure the exposure every this many iterations (None: before and after only).
        exposure_method: see :func:`measure_exposure`.
        retain_windows: see :class:`CanaryUnlearningDataModule`.
        probe_windows: see :class:`CanaryUnlearningDataModule`.
        seed: seeds the windows and the run.
        **forsaken_settings: arguments of ``ForsakenModule`` (``iterations``, ``xi``, ...).

    Returns:
        A :class:`CanaryUnlearningResult`.

    Raises:
        ValueError: see :class:`CanaryUnlearningDataModule`, :func:`measure_exposure` and ``ForsakenModule``.

    Example:
        >>> from lightning_unlearn.language import (
        ...     build_lm_vocabulary, insert_canaries, make_canaries, synthetic_corpus, train_language_model
        ... )
        >>> canaries = make_canaries(4, secret_length=2)
        >>> inserted, unseen = canaries[:2], canaries[2:]
        >>> corpus = synthetic_corpus(300)
        >>> train, test = insert_canaries(corpus[:250], inserted, repetitions=20), corpus[250:]
        >>> vocabulary = build_lm_vocabulary(train)
        >>> model = train_language_model(train, vocabulary, context_length=8, epochs=3, hidden_size=32).model
        >>> result = unlearn_canaries(model, vocabulary, inserted, unseen, train, test, iterations=30)
        >>> result.exposure_after.mean < result.exposure_before.mean
        True
    """
    from lightning_unlearn.modules.forsaken import ForsakenModule, fit_forsaken

    if track_every is not None:
        check_integer("track_every", track_every)

    def exposure_of(language_model: LSTMLanguageModel) -> ExposureResult:
        return measure_exposure(language_model, vocabulary, forget_canaries, method=exposure_method, seed=seed)

    before = exposure_of(model)
    datamodule = CanaryUnlearningDataModule(
        vocabulary,
        model.context_length,
        forget_canaries,
        unseen_canaries,
        train_sentences,
        test_sentences,
        retain_windows=retain_windows,
        probe_windows=probe_windows,
        seed=seed,
    )
    settings: dict[str, Any] = {"posterior": "global_mean", **forsaken_settings}
    module = ForsakenModule(NextTokenClassifier(model), **settings)
    callbacks: list[L.Callback] = []
    tracker = None
    if track_every is not None:
        tracker = _ExposureCurve(
            track_every,
            lambda classifier: exposure_of(classifier.to_language_model(model)).mean,  # type: ignore[operator]
        )
        callbacks.append(tracker)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*batching rule.*")  # ω's per-sample LSTM gradients
        elapsed = fit_forsaken(module, datamodule, seed=seed, callbacks=callbacks)
    seconds = elapsed - (tracker.seconds if tracker is not None else 0.0)
    classifier = module.unlearned_model()
    if not isinstance(classifier, NextTokenClassifier):  # pragma: no cover - the module keeps the class
        raise RuntimeError(f"Expected a NextTokenClassifier back, but got {type(classifier).__name__}.")
    unlearned = classifier.to_language_model(model)
    after = exposure_of(unlearned)
    curve = [(0, before.mean)] + (tracker.curve if tracker is not None else [(module.iterations, after.mean)])
    return CanaryUnlearningResult(
        model=unlearned,
        seconds=seconds,
        exposure_before=before,
        exposure_after=after,
        curve=curve,
        module=module,
    )
