"""Unintended memorisation of sequence models: Carlini et al.'s *exposure* (Forsaken §V-G, Eqs. 8–9).

A *canary* — a sentence such as ``my secret number is 3 1 4 1 5`` — is inserted ``k`` times
into a language model's training corpus. Its *log-perplexity* under the model is
``Px(s) = −log2 Pr(s | <s>)`` (in bits). Among the candidate space ``R`` of every canary of the
same format (every 5-digit secret: |R| = 10⁵), the exposure of the inserted secret is

* Eq. 8 (exact): ``exposure = log2 |R| − log2 rank``, where ``rank`` is the canary's position
  when all candidates are sorted by log-perplexity (1 = the most likely);
* Eq. 9 (approximation): ``exposure ≈ −log2 F(Px(s))``, with ``F`` the cumulative distribution
  of a skew-normal fitted to the log-perplexities of a random sample of candidates.

Exposure near ``log2 |R|`` means the model would give the secret away first; Carlini et al. call
exposure below about 10 bits negligible for extraction.

This module holds the whole experiment: a corpus (a seeded synthetic one that ships as code, or
Penn Treebank from local files), canaries and their insertion, a two-layer LSTM language model
(a LightningModule), exact and skew-normal exposure (the exact one enumerates the candidate
space as a tree, one LSTM step per prefix, so 10⁵–10⁶ candidates take seconds), and unlearning
of the canaries with Forsaken, with exposure measured before, after and across iterations
(Fig. 12).

How Forsaken, a method for classifiers, is applied to a language model (our adaptation): the
LSTM is read as a *next-token classifier* (:class:`NextTokenClassifier`: a window of tokens in,
the logits of the next token out, one class per vocabulary id). Each secret token of an inserted
canary, with the tokens before it as its window, is one forget sample; ``P`` (the non-member
posterior) is the model's next-token posterior at the same positions of canaries that were
*never* inserted (the ``reference`` split), averaged (``posterior="global_mean"``): for a secret
digit, what the model predicts when it has not memorised anything. The generator then moves the
LSTM's own parameters, so the result is the same language model with ``θ_T`` loaded.
"""

from __future__ import annotations

import copy
import math
import os
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_unlearn.checks import check_in_range, check_integer, check_path, check_positive
from lightning_unlearn.datamodules.base import UnlearningDataModule
from lightning_unlearn.datamodules.sources import DataSource, SourceData
from lightning_unlearn.datamodules.splits import SPLIT_NAMES, Split, UnlearningSplits
from lightning_unlearn.datamodules.text import PAD_ID, Vocabulary

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
    "synthetic_corpus",
    "train_language_model",
    "unlearn_canaries",
]

#: Start-of-sentence token: every sentence is read after it.
BOS = "<s>"
#: End-of-sentence token: the model learns where sentences stop.
EOS = "</s>"
#: The alphabet of the canaries' secrets.
DIGITS: tuple[str, ...] = tuple("0123456789")
#: The canary format of Carlini et al.: ``my secret number is d d d d d``.
DEFAULT_PREFIX: tuple[str, ...] = ("my", "secret", "number", "is")

ExposureMethod = Literal["auto", "exact", "skew_normal"]
_LN2 = math.log(2.0)


# --------------------------------------------------------------------------------------------
# Corpora
# --------------------------------------------------------------------------------------------

_DETERMINERS = ("the", "a", "my", "his", "her", "our", "this", "that", "every", "one")
_ADJECTIVES = (
    "old", "new", "small", "big", "red", "quiet", "busy", "young", "strange", "happy", "cold", "bright",
    "local", "early", "late", "long", "short", "free", "open", "dark",
)  # fmt: skip
_NOUNS = (
    "man", "woman", "dog", "cat", "city", "house", "car", "teacher", "student", "market", "company", "river",
    "train", "doctor", "child", "friend", "letter", "book", "street", "garden", "office", "phone", "door",
    "bank", "report", "window", "table", "road", "school", "store", "room", "bus", "price", "team", "game",
)  # fmt: skip
_TRANSITIVE = (
    "sees", "finds", "buys", "sells", "likes", "opens", "closes", "writes", "reads", "calls", "visits",
    "paints", "builds", "watches", "needs", "wants", "moves", "cleans", "checks", "carries",
)  # fmt: skip
_INTRANSITIVE = ("sleeps", "waits", "runs", "laughs", "works", "arrives", "leaves", "sings", "falls", "stops")
_ADVERBS = ("quickly", "slowly", "today", "again", "often", "rarely", "early", "late", "quietly", "there")
_PREPOSITIONS = ("near", "behind", "under", "beside", "across", "inside", "past", "around")
_COUNTED = ("number", "code", "address", "price", "score", "room")


def _zipf_choice(rng: np.random.Generator, words: Sequence[str]) -> str:
    weights = 1.0 / np.arange(1, len(words) + 1)
    return words[int(rng.choice(len(words), p=weights / weights.sum()))]


def synthetic_corpus(num_sentences: int = 5_000, seed: int = 0) -> list[list[str]]:
    """A seeded corpus of short English-like sentences, shipped as code (no file, no download).

    Sentences follow a few templates (subject–verb–object with optional adjectives, adverbs
    and prepositional phrases; "the room number is 4 7"-style statements with 1–4 digits), with
    words drawn from Zipf-like distributions, so the corpus has a realistic skew: a few very
    frequent words and a long tail. Its ~130-word vocabulary contains every token of the default
    canary format, and digits appear in ordinary sentences, so an unseen canary is a plausible
    sentence rather than an out-of-vocabulary one.

    Args:
        num_sentences: how many sentences to generate.
        seed: seeds the generator.

    Returns:
        Tokenised sentences (lists of lower-case words), without sentence markers.

    Raises:
        ValueError: ``num_sentences`` below 1.

    Example:
        >>> len(synthetic_corpus(10, seed=0))
        10
    """
    check_integer("num_sentences", num_sentences)
    rng = np.random.default_rng(seed)

    def noun_phrase() -> list[str]:
        words = [_zipf_choice(rng, _DETERMINERS)]
        if rng.random() < 0.4:
            words.append(_zipf_choice(rng, _ADJECTIVES))
        words.append(_zipf_choice(rng, _NOUNS))
        return words

    sentences: list[list[str]] = []
    for _ in range(num_sentences):
        draw = rng.random()
        if draw < 0.5:
            sentence = [*noun_phrase(), _zipf_choice(rng, _TRANSITIVE), *noun_phrase()]
            if rng.random() < 0.3:
                sentence += [_zipf_choice(rng, _PREPOSITIONS), *noun_phrase()]
        elif draw < 0.8:
            sentence = [*noun_phrase(), _zipf_choice(rng, _INTRANSITIVE)]
            if rng.random() < 0.5:
                sentence.append(_zipf_choice(rng, _ADVERBS))
        else:
            count = int(rng.integers(1, 5))
            digits = [str(d) for d in rng.integers(0, 10, size=count)]
            sentence = [*noun_phrase(), _zipf_choice(rng, _COUNTED), "is", *digits]
        sentences.append(sentence)
    return sentences


def read_penn_treebank(root: str | os.PathLike[str]) -> dict[str, list[list[str]]]:
    """Penn Treebank as Mikolov's language-modelling release: ``ptb.{train,valid,test}.txt`` in ``root``.

    One sentence per line, tokens separated by spaces (the files already use ``<unk>`` and
    ``N`` for numbers). Blank lines are skipped.

    Args:
        root: the folder holding the three files.

    Returns:
        ``{"train": [...], "valid": [...], "test": [...]}``, each a list of tokenised sentences.

    Raises:
        FileNotFoundError: ``root`` or one of the files is missing.
        ValueError: a file without any sentence.

    Example (not run: it needs the Penn Treebank files in ``data/ptb``):
        >>> ptb = read_penn_treebank("data/ptb")  # doctest: +SKIP
        >>> len(ptb["train"])  # doctest: +SKIP
        42068
    """
    folder = check_path("root", root)
    corpus: dict[str, list[list[str]]] = {}
    for split in ("train", "valid", "test"):
        path = folder / f"ptb.{split}.txt"
        if not path.is_file():
            raise FileNotFoundError(
                f"Expected `root` to hold ptb.train.txt, ptb.valid.txt and ptb.test.txt, but '{path}' is missing."
            )
        sentences = [line.split() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        if not sentences:
            raise ValueError(f"Expected '{path}' to hold one sentence per line, but it holds none.")
        corpus[split] = sentences
    return corpus


# --------------------------------------------------------------------------------------------
# Canaries
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Canary:
    """A canary sentence: a fixed prefix and a random secret.

    Args:
        prefix: the tokens every canary of the format shares (``my secret number is``).
        secret: the random part, one token per symbol (``3 1 4 1 5``).
    """

    prefix: tuple[str, ...]
    secret: tuple[str, ...]

    @property
    def tokens(self) -> tuple[str, ...]:
        """The whole canary, prefix then secret."""
        return self.prefix + self.secret

    def __str__(self) -> str:
        return " ".join(self.tokens)


def make_canaries(
    count: int,
    secret_length: int = 5,
    seed: int = 0,
    prefix: Sequence[str] = DEFAULT_PREFIX,
    alphabet: Sequence[str] = DIGITS,
) -> list[Canary]:
    """``count`` canaries with distinct random secrets of ``secret_length`` symbols.

    Args:
        count: how many canaries.
        secret_length: symbols per secret (the candidate space has ``len(alphabet) ** secret_length``).
        seed: seeds the secrets.
        prefix: the shared tokens before the secret.
        alphabet: the symbols of the secret.

    Returns:
        The canaries, in the order drawn.

    Raises:
        ValueError: ``count`` or ``secret_length`` below 1, more canaries than distinct secrets,
            or an empty alphabet.

    Example:
        >>> str(make_canaries(1, secret_length=3, seed=0)[0])
        'my secret number is 8 5 0'
    """
    check_integer("count", count)
    check_integer("secret_length", secret_length)
    alphabet = tuple(alphabet)
    if not alphabet:
        raise ValueError("Expected `alphabet` to hold at least one symbol, but it is empty.")
    space = len(alphabet) ** secret_length
    if count > space:
        raise ValueError(f"Expected `count` to be at most the {space:,} distinct secrets, but got {count:,}.")
    rng = np.random.default_rng(seed)
    codes = rng.choice(space, size=count, replace=False)
    return [Canary(tuple(prefix), _secret_of(int(code), secret_length, alphabet)) for code in codes]


def _secret_of(code: int, length: int, alphabet: tuple[str, ...]) -> tuple[str, ...]:
    """The secret whose index in lexicographic order of ``alphabet`` is ``code``."""
    symbols = []
    for _ in range(length):
        code, digit = divmod(code, len(alphabet))
        symbols.append(alphabet[digit])
    return tuple(reversed(symbols))


def insert_canaries(
    sentences: Sequence[Sequence[str]], canaries: Sequence[Canary], repetitions: int, seed: int = 0
) -> list[list[str]]:
    """A copy of ``sentences`` with each canary inserted ``repetitions`` times at random positions.

    Args:
        sentences: the training corpus.
        canaries: the canaries to insert.
        repetitions: ``k``, the copies of each canary.
        seed: seeds the positions.

    Returns:
        The new corpus (the input is not modified).

    Raises:
        ValueError: ``repetitions`` below 1.
    """
    check_integer("repetitions", repetitions)
    corpus = [list(s) for s in sentences]
    inserted = [list(c.tokens) for c in canaries for _ in range(repetitions)]
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(corpus) + len(inserted))
    combined = corpus + inserted
    return [combined[i] for i in order]


def build_lm_vocabulary(
    sentences: Iterable[Sequence[str]],
    vocab_size: int = 10_000,
    prefix: Sequence[str] = DEFAULT_PREFIX,
    alphabet: Sequence[str] = DIGITS,
) -> Vocabulary:
    """A language-model vocabulary: sentence markers, canary tokens, then frequent words.

    Args:
        sentences: the training corpus.
        vocab_size: the vocabulary size (pad and unknown included).
        prefix: canary prefix tokens, always kept.
        alphabet: canary secret symbols, always kept.

    Returns:
        The vocabulary.

    Raises:
        ValueError: see :meth:`Vocabulary.build`.
    """
    reserved = list(dict.fromkeys([BOS, EOS, *alphabet, *prefix]))
    return Vocabulary.build(sentences, vocab_size, reserved=reserved)


# --------------------------------------------------------------------------------------------
# The language model
# --------------------------------------------------------------------------------------------


class _LSTMNetwork(nn.Module):
    """Embedding → two-layer LSTM → linear head over the vocabulary."""

    def __init__(self, vocab_size: int, embedding_dim: int, hidden_size: int, num_layers: int, dropout: float):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=PAD_ID)
        self.lstm = nn.LSTM(
            embedding_dim, hidden_size, num_layers, batch_first=True, dropout=dropout if num_layers > 1 else 0.0
        )
        self.head = nn.Linear(hidden_size, vocab_size)

    def forward(
        self, tokens: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None = None
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        outputs, state = self.lstm(self.embedding(tokens), state)
        return self.head(outputs), state


class LSTMLanguageModel(L.LightningModule):
    """A two-layer LSTM language model (Forsaken §V-G), trained with next-token cross-entropy.

    Batches are ``(inputs, targets)`` of shape ``(batch, context_length)``: a sentence read
    after ``<s>`` and the same sentence shifted by one, ending in ``</s>`` (see
    :func:`sentence_tensors`); padding (id 0) is ignored by the loss.

    Args:
        vocab_size: the vocabulary size.
        context_length: the most tokens the model reads in one sequence (``<s>`` included).
        embedding_dim: width of the token embeddings.
        hidden_size: width of each LSTM layer.
        num_layers: LSTM layers (2 in the paper).
        dropout: dropout between the LSTM layers.
        learning_rate: Adam's learning rate.

    Raises:
        TypeError, ValueError: a size that is not a positive integer; dropout outside [0, 1);
            a learning rate that is not positive.

    Example:
        >>> model = LSTMLanguageModel(vocab_size=30, context_length=8)
        >>> model(torch.zeros(2, 8, dtype=torch.long)).shape
        torch.Size([2, 8, 30])
    """

    def __init__(
        self,
        vocab_size: int,
        context_length: int = 32,
        embedding_dim: int = 64,
        hidden_size: int = 128,
        num_layers: int = 2,
        dropout: float = 0.0,
        learning_rate: float = 3e-3,
    ) -> None:
        super().__init__()
        check_integer("vocab_size", vocab_size, 3)
        self.context_length = check_integer("context_length", context_length, 2)
        check_integer("embedding_dim", embedding_dim)
        check_integer("hidden_size", hidden_size)
        check_integer("num_layers", num_layers)
        check_in_range("dropout", dropout, 0.0, 1.0, include_high=False)
        check_positive("learning_rate", learning_rate)
        self.save_hyperparameters()
        self.vocab_size = vocab_size
        self.learning_rate = learning_rate
        self.network = _LSTMNetwork(vocab_size, embedding_dim, hidden_size, num_layers, dropout)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """Next-token logits ``(batch, time, vocab_size)`` for token ids ``(batch, time)``."""
        return self.network(tokens)[0]

    def _loss(self, batch: Sequence[torch.Tensor]) -> torch.Tensor:
        inputs, targets = batch[0], batch[1]
        logits = self(inputs)
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=PAD_ID)

    def training_step(self, batch: Sequence[torch.Tensor], batch_idx: int) -> torch.Tensor:
        loss = self._loss(batch)
        self.log("train/loss", loss, prog_bar=True)
        return loss

    def validation_step(self, batch: Sequence[torch.Tensor], batch_idx: int) -> None:
        self.log("val/loss", self._loss(batch), prog_bar=True)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=self.learning_rate)


def sentence_tensors(
    sentences: Sequence[Sequence[str]], vocabulary: Vocabulary, context_length: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Language-model inputs and targets, ``(N, context_length)`` ``int64`` each.

    Sentence ``w1 … wn`` becomes inputs ``<s> w1 … wn`` and targets ``w1 … wn </s>``, padded with
    0 at the end; a sentence longer than the context is cut to its first ``context_length``
    tokens (``<s>`` included), and its ``</s>`` is then not seen.

    Raises:
        ValueError: an empty sentence, or no sentence at all.
    """
    check_integer("context_length", context_length, 2)
    if len(sentences) == 0:
        raise ValueError("Expected at least one sentence, but got none.")
    inputs = np.zeros((len(sentences), context_length), dtype=np.int64)
    targets = np.zeros((len(sentences), context_length), dtype=np.int64)
    bos, eos = vocabulary.id_of(BOS), vocabulary.id_of(EOS)
    for row, sentence in enumerate(sentences):
        if len(sentence) == 0:
            raise ValueError(f"Expected every sentence to hold at least one token, but sentence {row} is empty.")
        ids = [bos, *vocabulary.ids(sentence), eos]
        read, predicted = ids[:-1][:context_length], ids[1:][:context_length]
        inputs[row, : len(read)] = read
        targets[row, : len(predicted)] = predicted
    return torch.from_numpy(inputs), torch.from_numpy(targets)


@dataclass
class TrainedLanguageModel:
    """A trained language model and the wall-clock time of ``Trainer.fit``."""

    model: LSTMLanguageModel
    seconds: float


def train_language_model(
    sentences: Sequence[Sequence[str]],
    vocabulary: Vocabulary,
    *,
    context_length: int = 32,
    epochs: int = 10,
    batch_size: int = 64,
    learning_rate: float = 3e-3,
    embedding_dim: int = 64,
    hidden_size: int = 128,
    seed: int = 0,
    progress: bool = False,
    **trainer_kwargs: Any,
) -> TrainedLanguageModel:
    """Train a fresh :class:`LSTMLanguageModel` on ``sentences`` (on CPU unless told otherwise).

    Args:
        sentences: the training corpus (canaries inserted, or not).
        vocabulary: ids of the tokens (see :func:`build_lm_vocabulary`).
        context_length: the model's context.
        epochs: training epochs.
        batch_size: sentences per batch.
        learning_rate: Adam's learning rate.
        embedding_dim: width of the token embeddings.
        hidden_size: width of each LSTM layer.
        seed: seeds initialisation and the order of batches.
        progress: show Lightning's progress bar.
        **trainer_kwargs: anything else for :class:`lightning.Trainer`.

    Returns:
        The model (in eval mode) and the training time.

    Raises:
        ValueError: see :func:`sentence_tensors` and :class:`LSTMLanguageModel`.
    """
    check_integer("epochs", epochs)
    check_integer("batch_size", batch_size)
    inputs, targets = sentence_tensors(sentences, vocabulary, context_length)
    L.seed_everything(seed, verbose=False)
    model = LSTMLanguageModel(
        len(vocabulary),
        context_length=context_length,
        embedding_dim=embedding_dim,
        hidden_size=hidden_size,
        learning_rate=learning_rate,
    )
    loader = DataLoader(
        TensorDataset(inputs, targets),
        batch_size=batch_size,
        shuffle=True,
        generator=torch.Generator().manual_seed(seed),
    )
    settings: dict[str, Any] = dict(
        max_epochs=epochs,
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        enable_progress_bar=progress,
    )
    settings.update(trainer_kwargs)
    trainer = L.Trainer(**settings)
    start = time.perf_counter()
    trainer.fit(model, train_dataloaders=loader)
    seconds = time.perf_counter() - start
    return TrainedLanguageModel(model=model.eval(), seconds=seconds)


@torch.no_grad()
def perplexity(
    model: LSTMLanguageModel, sentences: Sequence[Sequence[str]], vocabulary: Vocabulary, batch_size: int = 512
) -> float:
    """Per-token perplexity ``exp(mean NLL)`` of ``model`` on ``sentences`` (``</s>`` counted).

    Raises:
        ValueError: see :func:`sentence_tensors`.
    """
    inputs, targets = sentence_tensors(sentences, vocabulary, model.context_length)
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    try:
        for start in range(0, len(inputs), batch_size):
            logits = model(inputs[start : start + batch_size])
            chunk = targets[start : start + batch_size]
            total += F.cross_entropy(
                logits.reshape(-1, logits.shape[-1]), chunk.reshape(-1), ignore_index=PAD_ID, reduction="sum"
            ).item()
            count += int((chunk != PAD_ID).sum())
    finally:
        model.train(was_training)
    return math.exp(total / count)


# --------------------------------------------------------------------------------------------
# Log-perplexity and exposure
# --------------------------------------------------------------------------------------------


def _check_fits(model: LSTMLanguageModel, tokens: Sequence[str], what: str) -> None:
    # The model reads <s> and every token but the last: len(tokens) positions of its context.
    if len(tokens) > model.context_length:
        raise ValueError(
            f"Expected {what} to fit the model's context of {model.context_length} tokens (read after <s>), but"
            f" {' '.join(tokens)!r} has {len(tokens)} tokens."
        )


@torch.no_grad()
def log_perplexity(
    model: LSTMLanguageModel, vocabulary: Vocabulary, sequences: Sequence[Sequence[str]], batch_size: int = 1024
) -> torch.Tensor:
    """``Px(s) = −log2 Pr(s | <s>)`` in bits for each sequence: the sum over its tokens.

    Args:
        model: the language model.
        vocabulary: its vocabulary.
        sequences: tokenised sequences (canaries), each at most ``model.context_length`` tokens.
        batch_size: sequences per forward pass.

    Returns:
        ``(N,)`` ``float64`` log-perplexities.

    Raises:
        ValueError: an empty sequence, or one longer than the model's context.

    Example:
        >>> vocabulary = build_lm_vocabulary(synthetic_corpus(100))
        >>> model = LSTMLanguageModel(len(vocabulary), context_length=8)
        >>> canary = make_canaries(1, secret_length=3)[0]
        >>> bits = log_perplexity(model, vocabulary, [canary.tokens])
        >>> bits.shape, bits.dtype
        (torch.Size([1]), torch.float64)
    """
    lengths = []
    for sequence in sequences:
        if len(sequence) == 0:
            raise ValueError("Expected every sequence to hold at least one token, but got an empty one.")
        _check_fits(model, sequence, "every sequence")
        lengths.append(len(sequence))
    width = max(lengths, default=1)
    bos = vocabulary.id_of(BOS)
    inputs = torch.zeros((len(sequences), width), dtype=torch.int64)
    targets = torch.zeros((len(sequences), width), dtype=torch.int64)
    for row, sequence in enumerate(sequences):
        ids = vocabulary.ids(sequence)
        inputs[row, 0] = bos
        inputs[row, 1 : len(ids)] = torch.as_tensor(ids[:-1])
        targets[row, : len(ids)] = torch.as_tensor(ids)
    was_training = model.training
    model.eval()
    out = []
    try:
        for start in range(0, len(sequences), batch_size):
            logits = model(inputs[start : start + batch_size]).double()
            chunk = targets[start : start + batch_size]
            picked = logits.log_softmax(dim=-1).gather(2, chunk.unsqueeze(2)).squeeze(2)
            out.append(-(picked * (chunk != PAD_ID)).sum(dim=1) / _LN2)
    finally:
        model.train(was_training)
    return torch.cat(out) if out else torch.empty(0, dtype=torch.float64)


@torch.no_grad()
def candidate_log_perplexities(
    model: LSTMLanguageModel,
    vocabulary: Vocabulary,
    prefix: Sequence[str],
    secret_length: int,
    alphabet: Sequence[str] = DIGITS,
    batch_size: int = 65_536,
) -> torch.Tensor:
    """The log-perplexity (bits) of every candidate ``prefix + secret`` of the space ``R``, exactly.

    The space is enumerated as a tree: the LSTM reads ``<s> + prefix`` once, then each level
    extends every partial secret by every symbol with one LSTM step, so the cost is
    ``Σ_j |A|^j`` single steps rather than ``|A|^k`` whole sequences.

    Args:
        model: the language model.
        vocabulary: its vocabulary; every symbol of ``alphabet`` must be in it.
        prefix: the canary format's fixed tokens.
        secret_length: ``k``, symbols per secret.
        alphabet: the secret's symbols ``A``.
        batch_size: partial secrets stepped at once.

    Returns:
        ``(|A|^k,)`` ``float64``; entry ``i`` is the secret whose lexicographic index is ``i``.

    Raises:
        ValueError: a canary longer than the model's context, or a symbol outside the vocabulary.
    """
    check_integer("secret_length", secret_length)
    alphabet = tuple(alphabet)
    _check_fits(model, tuple(prefix) + alphabet[:1] * secret_length, "the canary")
    missing = [s for s in alphabet if s not in vocabulary]
    if missing:
        raise ValueError(f"Expected every secret symbol in the vocabulary, but {missing[:5]} are not.")
    was_training = model.training
    model.eval()
    network: _LSTMNetwork = model.network
    try:
        start = torch.as_tensor([[vocabulary.id_of(BOS), *vocabulary.ids(prefix)]])
        logits, state = network(start)
        log_probs = logits[:, -1].double().log_softmax(dim=-1)
        prefix_bits = 0.0
        if len(prefix):
            prefix_logits = logits[0, :-1].double().log_softmax(dim=-1)
            prefix_ids = torch.as_tensor(vocabulary.ids(prefix))
            prefix_bits = float(-prefix_logits.gather(1, prefix_ids.unsqueeze(1)).sum() / _LN2)
        symbol_ids = torch.as_tensor(vocabulary.ids(alphabet))
        totals = torch.full((1,), prefix_bits, dtype=torch.float64)
        for level in range(secret_length):
            # every partial secret × every next symbol, in lexicographic order
            totals = (totals.unsqueeze(1) - log_probs[:, symbol_ids] / _LN2).reshape(-1)
            if level == secret_length - 1:
                break
            h, c = (s.repeat_interleave(len(alphabet), dim=1) for s in state)  # (layers, partial × |A|, hidden)
            tokens = symbol_ids.repeat(h.shape[1] // len(alphabet)).unsqueeze(1)
            outs, hs, cs = [], [], []
            for begin in range(0, tokens.shape[0], batch_size):
                end = begin + batch_size
                step_logits, (h_next, c_next) = network(
                    tokens[begin:end], (h[:, begin:end].contiguous(), c[:, begin:end].contiguous())
                )
                outs.append(step_logits[:, -1].double().log_softmax(dim=-1))
                hs.append(h_next)
                cs.append(c_next)
            log_probs = torch.cat(outs)
            state = (torch.cat(hs, dim=1), torch.cat(cs, dim=1))
    finally:
        model.train(was_training)
    return totals


def exposure_exact(canary_log_perplexity: torch.Tensor, space_log_perplexities: torch.Tensor) -> torch.Tensor:
    """Eq. 8: ``log2 |R| − log2 rank`` with the rank of each canary among all candidates ``R``.

    ``rank = 1 + #{r ∈ R : Px(r) < Px(canary)}``: ties are resolved in the canary's favour.

    Args:
        canary_log_perplexity: ``(N,)`` log-perplexities of the canaries (their secrets ∈ ``R``).
        space_log_perplexities: ``(|R|,)`` log-perplexities of every candidate.

    Returns:
        ``(N,)`` exposures in bits, in ``[0, log2 |R|]``.

    Raises:
        ValueError: an empty candidate space.

    Example:
        >>> exposure_exact(torch.tensor([1.0]), torch.tensor([1.0, 2.0, 3.0, 4.0])).tolist()
        [2.0]
    """
    space = torch.as_tensor(space_log_perplexities, dtype=torch.float64).flatten()
    if space.numel() == 0:
        raise ValueError("Expected a non-empty candidate space `space_log_perplexities`, but got none.")
    canaries = torch.as_tensor(canary_log_perplexity, dtype=torch.float64).flatten()
    ranks = 1 + torch.searchsorted(space.sort().values, canaries, side="left")
    return math.log2(space.numel()) - torch.log2(ranks.double())


def exposure_skew_normal(
    canary_log_perplexity: torch.Tensor, reference_log_perplexities: torch.Tensor, space_size: int | None = None
) -> torch.Tensor:
    """Eq. 9: ``−log2 F(Px(canary))`` with ``F`` a skew-normal fitted to reference log-perplexities.

    The fraction of candidates more likely than the canary, ``rank / |R|``, is estimated by the
    fitted distribution's cumulative probability, so no enumeration of ``R`` is needed.

    Args:
        canary_log_perplexity: ``(N,)`` log-perplexities of the canaries.
        reference_log_perplexities: log-perplexities of candidates drawn uniformly from ``R``
            (at least 3; a few thousand give a stable fit).
        space_size: ``|R|``, when known: exposures are then capped at ``log2 |R|``, the most
            an exact computation can give.

    Returns:
        ``(N,)`` exposures in bits.

    Raises:
        ValueError: fewer than 3 reference values, or reference values that are all equal.
    """
    from scipy.stats import skewnorm

    reference = torch.as_tensor(reference_log_perplexities, dtype=torch.float64).flatten().numpy()
    if reference.size < 3:
        raise ValueError(f"Expected at least 3 reference log-perplexities for the fit, but got {reference.size}.")
    if np.ptp(reference) == 0:
        raise ValueError("Expected reference log-perplexities that vary, but they are all equal.")
    shape, location, scale = skewnorm.fit(reference)
    canaries = torch.as_tensor(canary_log_perplexity, dtype=torch.float64).flatten().numpy()
    exposures = torch.from_numpy(-skewnorm.logcdf(canaries, shape, loc=location, scale=scale) / _LN2)
    if space_size is not None:
        exposures = exposures.clamp(max=math.log2(space_size))
    return exposures.clamp(min=0.0)


@dataclass
class ExposureResult:
    """Exposure of a set of canaries under one model.

    Attributes:
        exposures: ``(N,)`` exposure of each canary, in bits.
        log_perplexities: ``(N,)`` log-perplexity of each canary, in bits.
        method: ``"exact"`` (Eq. 8) or ``"skew_normal"`` (Eq. 9).
        space_size: ``|R|``, the number of candidates.
    """

    exposures: torch.Tensor
    log_perplexities: torch.Tensor
    method: str
    space_size: int

    @property
    def mean(self) -> float:
        """Mean exposure over the canaries, in bits."""
        return float(self.exposures.mean())

    @property
    def max_exposure(self) -> float:
        """``log2 |R|``: the exposure of a canary the model ranks first."""
        return math.log2(self.space_size)


def measure_exposure(
    model: LSTMLanguageModel,
    vocabulary: Vocabulary,
    canaries: Sequence[Canary],
    method: ExposureMethod = "auto",
    alphabet: Sequence[str] = DIGITS,
    exact_limit: int = 1_000_000,
    num_references: int = 5_000,
    seed: int = 0,
) -> ExposureResult:
    """The exposure of each canary (all of one format: same prefix and secret length).

    Args:
        model: the language model.
        vocabulary: its vocabulary.
        canaries: the canaries to measure.
        method: ``"exact"`` (enumerate ``R``, Eq. 8), ``"skew_normal"`` (fit ``num_references``
            random candidates, Eq. 9) or ``"auto"`` (exact when ``|R| ≤ exact_limit``).
        alphabet: the secrets' symbols.
        exact_limit: the largest space ``"auto"`` enumerates.
        num_references: candidates sampled for the skew-normal fit.
        seed: seeds the sample of candidates.

    Returns:
        An :class:`ExposureResult`.

    Raises:
        ValueError: no canary, canaries of different formats, a secret symbol outside
            ``alphabet``, a canary longer than the model's context, or an unknown ``method``.

    Example:
        >>> canaries = make_canaries(2, secret_length=2)  # |R| = 100 candidate secrets
        >>> sentences = insert_canaries(synthetic_corpus(300), canaries, repetitions=20)
        >>> vocabulary = build_lm_vocabulary(sentences)
        >>> model = train_language_model(sentences, vocabulary, context_length=8, epochs=3, hidden_size=32).model
        >>> result = measure_exposure(model, vocabulary, canaries)
        >>> result.method, round(result.max_exposure, 2)  # log2 |R|: a canary ranked first of all candidates
        ('exact', 6.64)
        >>> 0 <= result.mean <= result.max_exposure
        True
    """
    if method not in ("auto", "exact", "skew_normal"):
        raise ValueError(f"Expected `method` to be 'auto', 'exact' or 'skew_normal', but got {method!r}.")
    if not canaries:
        raise ValueError("Expected at least one canary, but got none.")
    alphabet = tuple(alphabet)
    prefix, length = canaries[0].prefix, len(canaries[0].secret)
    for canary in canaries:
        if canary.prefix != prefix or len(canary.secret) != length:
            raise ValueError(
                f"Expected canaries of one format ({' '.join(prefix)!r} + {length} symbols), but got {str(canary)!r}."
            )
        if any(symbol not in alphabet for symbol in canary.secret):
            raise ValueError(f"Expected secrets made of {alphabet}, but got {str(canary)!r}.")
        _check_fits(model, canary.tokens, "the canary")
    space_size = len(alphabet) ** length
    canary_lp = log_perplexity(model, vocabulary, [c.tokens for c in canaries])
    if method == "exact" or (method == "auto" and space_size <= exact_limit):
        space = candidate_log_perplexities(model, vocabulary, prefix, length, alphabet)
        return ExposureResult(exposure_exact(canary_lp, space), canary_lp, "exact", space_size)
    check_integer("num_references", num_references, 3)
    # Candidates drawn uniformly from R (symbol by symbol, so any size of R works).
    draws = np.random.default_rng(seed).integers(0, len(alphabet), size=(num_references, length))
    references = [prefix + tuple(alphabet[i] for i in row) for row in draws]
    reference_lp = log_perplexity(model, vocabulary, references)
    return ExposureResult(
        exposure_skew_normal(canary_lp, reference_lp, space_size), canary_lp, "skew_normal", space_size
    )


# --------------------------------------------------------------------------------------------
# Unlearning canaries with Forsaken
# --------------------------------------------------------------------------------------------


class NextTokenClassifier(nn.Module):
    """A language model read as a classifier: a right-padded window of ids → logits of the next token.

    The prediction is made after the window's last non-padding token, exactly as the language
    model predicts it inside a sentence (the LSTM is causal, so padding after it changes
    nothing). It shares nothing with the model it is built from (a deep copy).

    Args:
        model: the language model.

    Example:
        >>> classifier = NextTokenClassifier(LSTMLanguageModel(vocab_size=30, context_length=8))
        >>> classifier(torch.tensor([[2, 5, 0, 0, 0, 0, 0, 0]])).shape
        torch.Size([1, 30])
    """

    default_loss = "cross_entropy"

    def __init__(self, model: LSTMLanguageModel) -> None:
        super().__init__()
        self.network = copy.deepcopy(model.network)
        self.num_classes = model.vocab_size
        self.context_length = model.context_length

    def forward(self, windows: torch.Tensor) -> torch.Tensor:
        logits, _ = self.network(windows.long())
        last = ((windows != PAD_ID).sum(dim=1) - 1).clamp(min=0)
        return logits[torch.arange(windows.shape[0], device=windows.device), last]

    def to_language_model(self, template: LSTMLanguageModel) -> LSTMLanguageModel:
        """A copy of ``template`` carrying this classifier's weights."""
        model = copy.deepcopy(template)
        model.network.load_state_dict(self.network.state_dict())
        return model.eval()


def _secret_windows(
    canaries: Sequence[Canary], vocabulary: Vocabulary, context_length: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """One window per secret symbol: ``<s> + prefix + secret[:j]`` → ``secret[j]``."""
    windows, labels = [], []
    bos = vocabulary.id_of(BOS)
    for canary in canaries:
        ids = vocabulary.ids(canary.tokens)
        for j in range(len(canary.prefix), len(ids)):
            window = [bos, *ids[:j]]
            windows.append(window + [PAD_ID] * (context_length - len(window)))
            labels.append(ids[j])
    return torch.as_tensor(windows, dtype=torch.int64), torch.as_tensor(labels, dtype=torch.int64)


def _corpus_windows(
    sentences: Sequence[Sequence[str]], vocabulary: Vocabulary, context_length: int, count: int, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """``count`` random next-token windows from ``sentences``."""
    inputs, targets = sentence_tensors(sentences, vocabulary, context_length)
    lengths = (targets != PAD_ID).sum(dim=1)
    rng = np.random.default_rng(seed)
    rows = rng.integers(0, len(inputs), size=count)
    windows, labels = [], []
    for row in rows:
        position = int(rng.integers(0, int(lengths[row])))
        window = inputs[row].clone()
        window[position + 1 :] = PAD_ID
        windows.append(window)
        labels.append(targets[row, position])
    return torch.stack(windows), torch.stack(labels)


class _TensorSource(DataSource):
    def __init__(self, data: SourceData) -> None:
        self.data = data
        self.name = data.name

    def load(self) -> SourceData:
        return self.data


class CanaryUnlearningDataModule(UnlearningDataModule):
    """The splits Forsaken needs to unlearn canaries from a language model read as a next-token classifier.

    Samples are next-token windows (``int64``, ``(context_length,)``, right-padded) labelled
    with the next token's id. The splits are fixed by the experiment rather than drawn:

    * ``forget`` — one window per secret symbol of every inserted canary;
    * ``reference`` / ``heldout`` — the same windows of canaries never inserted (two disjoint
      halves): the non-members ``P`` is built from, and the MIA negatives;
    * ``retain`` and ``probe`` — random windows of the training corpus (``probe`` is ``D0`` for ω);
      ``target_train`` is ``retain ∪ forget``;
    * ``test`` — random windows of held-out sentences (a quarter of them form ``validation``);
    * ``validation_heldout`` — with 3 or more unseen canaries, the secret windows of a quarter of
      them (whole canaries, taken from the ``reference`` side); empty otherwise;
    * ``shadow_train`` / ``shadow_test`` — empty: exposure needs no membership oracle.

    Args:
        vocabulary: the language model's vocabulary.
        context_length: the language model's context.
        forget_canaries: the inserted canaries to forget.
        unseen_canaries: canaries of the same format that were never inserted (at least 2).
        train_sentences: the training corpus (for ``retain`` and ``probe`` windows).
        test_sentences: held-out sentences (for ``test`` windows).
        retain_windows: how many training windows form ``retain``.
        probe_windows: how many of them form ``probe``.
        seed: seeds the windows drawn.
        batch_size: see :class:`~lightning_unlearn.datamodules.UnlearningDataModule`.

    Raises:
        ValueError: no canary to forget, fewer than 2 unseen canaries, or window counts below 1.
    """

    def __init__(
        self,
        vocabulary: Vocabulary,
        context_length: int,
        forget_canaries: Sequence[Canary],
        unseen_canaries: Sequence[Canary],
        train_sentences: Sequence[Sequence[str]],
        test_sentences: Sequence[Sequence[str]],
        retain_windows: int = 512,
        probe_windows: int = 64,
        seed: int = 0,
        batch_size: int = 64,
    ) -> None:
        if not forget_canaries:
            raise ValueError("Expected at least one canary in `forget_canaries`, but got none.")
        if len(unseen_canaries) < 2:
            raise ValueError(f"Expected at least 2 `unseen_canaries`, but got {len(unseen_canaries)}.")
        check_integer("retain_windows", retain_windows)
        check_integer("probe_windows", probe_windows)
        forget_x, forget_y = _secret_windows(forget_canaries, vocabulary, context_length)
        unseen_x, unseen_y = _secret_windows(unseen_canaries, vocabulary, context_length)
        retain_x, retain_y = _corpus_windows(train_sentences, vocabulary, context_length, retain_windows, seed)
        test_x, test_y = _corpus_windows(test_sentences, vocabulary, context_length, retain_windows, seed + 1)
        parts = [(forget_x, forget_y), (unseen_x, unseen_y), (retain_x, retain_y), (test_x, test_y)]
        data = SourceData(
            name="canary-windows",
            inputs=torch.cat([x for x, _ in parts]),
            targets=torch.cat([y for _, y in parts]),
            num_classes=len(vocabulary),
        )
        offsets = np.cumsum([0] + [len(y) for _, y in parts])
        ranges = [np.arange(offsets[i], offsets[i + 1], dtype=np.int64) for i in range(len(parts))]
        forget, unseen, retain, test = ranges
        per_canary = len(unseen_canaries[0].secret)
        cut = (len(unseen_canaries) // 2) * per_canary  # whole canaries on each side
        # The validation pair: a quarter of the test windows, and (with 3 or more unseen canaries)
        # whole canaries taken from the `reference` side, so `heldout` keeps its size.
        validation_cut = (len(unseen_canaries) // 4 if len(unseen_canaries) >= 3 else 0) * per_canary
        test_cut = len(test) - max(1, len(test) // 4)
        probe = np.random.default_rng(seed).choice(retain, size=min(probe_windows, len(retain)), replace=False)
        labels = data.targets.numpy()
        chosen = {
            "target_train": np.concatenate([retain, forget]),
            "retain": retain,
            "forget": forget,
            "probe": probe,
            "test": test[:test_cut],
            "reference": unseen[validation_cut:cut],
            "heldout": unseen[cut:],
            "validation": test[test_cut:],
            "validation_heldout": unseen[:validation_cut],
            "shadow_train": np.empty(0, dtype=np.int64),
            "shadow_test": np.empty(0, dtype=np.int64),
        }
        self._fixed_splits = UnlearningSplits(
            kind="id",
            num_classes=len(vocabulary),
            splits={name: Split.of(chosen[name], labels[chosen[name]]) for name in SPLIT_NAMES},
            settings={"kind": "canaries", "seed": seed},
        )
        self._fixed_data = data
        super().__init__(source=_TensorSource(data), kind="id", seed=seed, batch_size=batch_size)
        # Lightning collects every __init__ argument as a hyperparameter; the corpora and canaries are data.
        for bulky in ("vocabulary", "forget_canaries", "unseen_canaries", "train_sentences", "test_sentences"):
            self._hparams.pop(bulky, None)
            initial = getattr(self, "_hparams_initial", None)
            if initial is not None:
                initial.pop(bulky, None)

    def setup(self, stage: str | None = None) -> None:
        """Install the fixed splits (idempotent)."""
        if self._splits is None:
            self._data, self._inputs, self._splits = self._fixed_data, self._fixed_data.inputs, self._fixed_splits


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
