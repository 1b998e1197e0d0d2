"""Memorisation in a language model, and unlearning it: canaries, exposure and Forsaken (Forsaken §V-G).

A canary sentence with a random secret is inserted into a language model's training corpus;
its *exposure* (Carlini et al.) says how readily the model gives the secret away. Forsaken,
a method for classifiers, then unlearns the canaries from the model read as a next-token
classifier, and exposure is measured before, after and across its iterations (Fig. 12).

One module per part of the experiment:

=================================================  =============================================
:mod:`~lightning_unlearn.language.corpus`          a seeded synthetic corpus (shipped as code),
                                                   Penn Treebank from local files, the vocabulary
:mod:`~lightning_unlearn.language.canaries`        canaries and their insertion into a corpus
:mod:`~lightning_unlearn.language.model`           the two-layer LSTM language model, its
                                                   training and perplexity, and its reading as a
                                                   next-token classifier
:mod:`~lightning_unlearn.language.exposure`        log-perplexity and exposure, exact (Eq. 8) and
                                                   skew-normal (Eq. 9)
:mod:`~lightning_unlearn.language.datamodule`      the splits Forsaken needs, as next-token windows
:mod:`~lightning_unlearn.language.unlearning`      :func:`unlearn_canaries`, the whole experiment
=================================================  =============================================

Example:
    >>> from lightning_unlearn.language import make_canaries, insert_canaries, synthetic_corpus
    >>> canaries = make_canaries(2, secret_length=3, seed=0)
    >>> corpus = insert_canaries(synthetic_corpus(100), canaries, repetitions=5)
    >>> len(corpus)
    110
"""

from lightning_unlearn.language.canaries import DEFAULT_PREFIX, DIGITS, Canary, insert_canaries, make_canaries
from lightning_unlearn.language.corpus import BOS, EOS, build_lm_vocabulary, read_penn_treebank, synthetic_corpus
from lightning_unlearn.language.datamodule import CanaryUnlearningDataModule
from lightning_unlearn.language.exposure import (
    ExposureMethod,
    ExposureResult,
    candidate_log_perplexities,
    exposure_exact,
    exposure_skew_normal,
    log_perplexity,
    measure_exposure,
)
from lightning_unlearn.language.model import (
    LSTMLanguageModel,
    NextTokenClassifier,
    TrainedLanguageModel,
    perplexity,
    sentence_tensors,
    train_language_model,
)
from lightning_unlearn.language.unlearning import CanaryUnlearningResult, unlearn_canaries

__all__ = [
    "BOS",
    "DEFAULT_PREFIX",
    "DIGITS",
    "EOS",
    "Canary",
    "CanaryUnlearningDataModule",
    "CanaryUnlearningResult",
    "ExposureMethod",
    "ExposureResult",
    "LSTMLanguageModel",
    "NextTokenClassifier",
    "TrainedLanguageModel",
    "build_lm_vocabulary",
    "candidate_log_perplexities",
    "exposure_exact",
    "exposure_skew_normal",
    "insert_canaries",
    "log_perplexity",
    "make_canaries",
    "measure_exposure",
    "perplexity",
    "read_penn_treebank",
    "sentence_tensors",
    "synthetic_corpus",
    "train_language_model",
    "unlearn_canaries",
]
