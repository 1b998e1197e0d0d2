"""Corpora for the language model: a seeded synthetic corpus that ships as code, and Penn Treebank.

Both give tokenised sentences (lists of words) without sentence markers; the model reads each
sentence after :data:`BOS` and learns to end it with :data:`EOS`
(:func:`~lightning_unlearn.language.model.sentence_tensors`). :func:`build_lm_vocabulary` keeps
the markers and every canary token whatever their frequency.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence

import numpy as np

from lightning_unlearn.checks import check_integer, check_path
from lightning_unlearn.datamodules.sources.vocabulary import Vocabulary
from lightning_unlearn.language.canaries import DEFAULT_PREFIX, DIGITS

__all__ = ["BOS", "EOS", "build_lm_vocabulary", "read_penn_treebank", "synthetic_corpus"]

#: Start-of-sentence token: every sentence is read after it.
BOS = "<s>"
#: End-of-sentence token: the model learns where sentences stop.
EOS = "</s>"

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
