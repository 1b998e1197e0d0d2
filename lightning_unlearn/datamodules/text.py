"""Text data: a plain-Python tokeniser, vocabularies, and sources for the Forsaken paper's text scenarios.

Tokenisation is a regular expression over lower-cased text (no torchtext, no new dependency):
words are runs of letters and digits, with an optional apostrophe suffix (``don't``), and
HTML line breaks (IMDB's ``<br />``) are spaces. A :class:`Vocabulary` keeps the most frequent
tokens of a corpus; id 0 is padding and id 1 the unknown token. Documents become either
fixed-length sequences of token ids (``int64``, for the CNNs) or bag-of-words vectors
(``float32``, for the Reuters MLP).

Each source reads one dataset from local files, in the format it is commonly distributed in:

============================  ===============================================================
:class:`IMDBSource`           ``root/aclImdb/{train,test}/{neg,pos}/*.txt`` (the Stanford
                              Large Movie Review archive, unpacked; ``root`` may also be the
                              ``aclImdb`` folder itself). Labels: neg 0, pos 1.
:class:`CustomerReviewSource` ``root/custrev.pos`` and ``root/custrev.neg``: the Hu & Liu
                              customer reviews as preprocessed for sentence classification
                              (one sentence per line, as shipped by SentEval and Kim's CNN
                              code). Labels: neg 0, pos 1. The raw annotated product files
                              (``feature[+2]##sentence``) are recognised and refused.
:class:`ReutersSource`        ``root/reuters.npz`` (arrays ``x``: word-rank sequences, ``y``:
                              topics 0–45) and ``root/reuters_word_index.json`` (word → rank),
                              the files Keras's ``reuters.load_data`` uses. 46 topics.
:class:`NewsgroupsSource`     ``root/20news-bydate-{train,test}/<group>/<message id>`` (the
                              "bydate" release, unpacked) or ``root/20news-bydate.tar.gz``
                              (read in place, never extracted). Groups sorted by name are
                              classes 0–19; message headers are removed by default.
============================  ===============================================================

None of them downloads: :meth:`DataSource.prepare` does nothing, and a missing file raises a
``FileNotFoundError`` that names the layout expected (the files are on the datasets' home
pages: ai.stanford.edu/~amaas/data/sentiment, www.cs.uic.edu/~liub/FBS/sentiment-analysis.html,
storage.googleapis.com/tensorflow/tf-keras-datasets, qwone.com/~jason/20Newsgroups).

The vocabulary is built on the task's own corpus (all of its documents, as the paper's Keras
tokeniser did) and shared with an out-of-distribution source by passing the task source as
the OOD source's ``vocabulary``, so OOD samples get the task's shape, dtype and ids and can be
inserted into its training data. Sizes follow the paper's Table XII: IMDB sequences of 200
tokens, Reuters bags of 10,000 words, 20 Newsgroups sequences of 1,000 tokens; where the table
gives no vocabulary size (IMDB, News) we use 10,000.

The datamodules :class:`IMDBCustomerReviewDataModule` (I.C.), :class:`ReutersDataModule`
(35-11) and :class:`NewsgroupsDataModule` (15-5) wire these sources into
:class:`~lightning_unlearn.datamodules.UnlearningDataModule`.
"""

from __future__ import annotations

import json
import os
import re
import tarfile
import zipfile
from abc import abstractmethod
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Literal

import numpy as np
import torch

from lightning_unlearn.checks import check_bool, check_integer, check_path
from lightning_unlearn.datamodules.base import UnlearningDataModule
from lightning_unlearn.datamodules.sources import DataSource, SourceData

__all__ = [
    "PAD_ID",
    "UNKNOWN_ID",
    "CustomerReviewSource",
    "IMDBCustomerReviewDataModule",
    "IMDBSource",
    "NewsgroupsDataModule",
    "NewsgroupsSource",
    "ReutersDataModule",
    "ReutersSource",
    "TextCorpus",
    "TextEncoding",
    "TextSource",
    "Vocabulary",
    "tokenize",
]

#: Id of the padding token: sequences are padded with it, and it never counts in a bag of words.
PAD_ID = 0
#: Id of every token outside the vocabulary.
UNKNOWN_ID = 1
_SPECIALS = ("<pad>", "<unk>")

TextEncoding = Literal["sequence", "bag_of_words"]
UnknownOnly = Literal["raise", "drop"]

_TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
_HTML_BREAK = re.compile(r"<br\s*/?>", re.IGNORECASE)
#: Reading more files than this shows a progress bar.
_PROGRESS_MIN_FILES = 2_000


def tokenize(text: str) -> list[str]:
    """Split ``text`` into lower-case word tokens.

    A token is a run of ASCII letters and digits with an optional apostrophe suffix; HTML line
    breaks and all punctuation separate tokens and are dropped.

    Args:
        text: any string.

    Returns:
        The tokens in order (an empty list for text without a word).

    Raises:
        TypeError: ``text`` is not a string.

    Example:
        >>> tokenize("Don't stop!<br />It's GREAT, 10/10.")
        ["don't", 'stop', "it's", 'great', '10', '10']
    """
    if not isinstance(text, str):
        raise TypeError(f"Expected `text` to be a str, but got {type(text).__name__}.")
    return _TOKEN.findall(_HTML_BREAK.sub(" ", text).lower())


class Vocabulary:
    """Token ↔ id mapping: ``<pad>`` = 0, ``<unk>`` = 1, then tokens by decreasing frequency.

    ``len(vocabulary)`` counts the two special ids, so an embedding table or a bag of words of
    ``len(vocabulary)`` columns covers every id.

    Args:
        tokens: the ordinary tokens, in id order from 2; each once, none of them a special token.

    Raises:
        ValueError: a repeated token, an empty token, or a special token among ``tokens``.

    Example:
        >>> vocabulary = Vocabulary.build([["a", "b", "a"], ["c", "a", "b"]], vocab_size=4)
        >>> vocabulary.tokens
        ('<pad>', '<unk>', 'a', 'b')
        >>> vocabulary.encode(["b", "z", "a"], seq_len=5)
        [3, 1, 2, 0, 0]
    """

    def __init__(self, tokens: Sequence[str]) -> None:
        tokens = tuple(tokens)
        seen: set[str] = set()
        for token in tokens:
            if not isinstance(token, str) or not token:
                raise ValueError(f"Expected every vocabulary token to be a non-empty string, but got {token!r}.")
            if token in _SPECIALS:
                raise ValueError(f"Expected no special token {_SPECIALS} among `tokens`, but got {token!r}.")
            if token in seen:
                raise ValueError(f"Expected each vocabulary token once, but {token!r} repeats.")
            seen.add(token)
        self.tokens: tuple[str, ...] = _SPECIALS + tokens
        self._ids = {token: index for index, token in enumerate(self.tokens)}

    @classmethod
    def build(cls, documents: Iterable[Sequence[str]], vocab_size: int, reserved: Sequence[str] = ()) -> Vocabulary:
        """The ``vocab_size - 2`` most frequent tokens of ``documents`` (ties broken alphabetically).

        Args:
            documents: tokenised documents (see :func:`tokenize`).
            vocab_size: the size of the vocabulary, the two special ids included (at least 3).
            reserved: tokens that get the first ordinary ids whatever their frequency (such as
                the digits of canaries, or sentence markers).

        Returns:
            The vocabulary.

        Raises:
            ValueError: ``vocab_size`` below 3 or not above the number of reserved tokens, or a
                corpus without any token.
        """
        check_integer("vocab_size", vocab_size, 3, reason="<pad>, <unk> and at least one token")
        reserved = tuple(reserved)
        if vocab_size - 2 < len(reserved):
            raise ValueError(
                f"Expected `vocab_size` to leave room for the {len(reserved)} reserved tokens and the two special"
                f" ids, but got {vocab_size}."
            )
        counts: Counter[str] = Counter()
        for document in documents:
            counts.update(document)
        if not counts and not reserved:
            raise ValueError("Expected `documents` to hold at least one token, but every document is empty.")
        chosen = list(reserved)
        kept = set(chosen)
        for token, _ in sorted(counts.items(), key=lambda item: (-item[1], item[0])):
            if len(chosen) >= vocab_size - 2:
                break
            if token not in kept and token not in _SPECIALS:
                chosen.append(token)
                kept.add(token)
        return cls(chosen)

    def __len__(self) -> int:
        return len(self.tokens)

    def __contains__(self, token: object) -> bool:
        return token in self._ids

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocabulary) and other.tokens == self.tokens

    def __hash__(self) -> int:
        return hash(self.tokens)

    def __repr__(self) -> str:
        return f"Vocabulary(size={len(self):,})"

    def id_of(self, token: str) -> int:
        """The id of ``token``, :data:`UNKNOWN_ID` when it is not in the vocabulary."""
        return self._ids.get(token, UNKNOWN_ID)

    def ids(self, tokens: Sequence[str]) -> list[int]:
        """The id of every token, without padding or truncation."""
        return [self._ids.get(token, UNKNOWN_ID) for token in tokens]

    def decode(self, ids: Iterable[int]) -> list[str]:
        """The tokens of ``ids``, padding dropped.

        Raises:
            ValueError: an id outside ``0 … len(self) - 1``.
        """
        tokens = []
        for index in ids:
            index = int(index)
            if not 0 <= index < len(self.tokens):
                raise ValueError(f"Expected token ids in 0–{len(self.tokens) - 1}, but got {index}.")
            if index != PAD_ID:
                tokens.append(self.tokens[index])
        return tokens

    def _checked_ids(self, tokens: Sequence[str], where: str) -> list[int]:
        if len(tokens) == 0:
            raise ValueError(f"Expected {where} to hold at least one token, but it is empty.")
        ids = self.ids(tokens)
        if all(index == UNKNOWN_ID for index in ids):
            raise ValueError(
                f"Expected {where} to hold at least one token of the vocabulary, but all its {len(ids):,} tokens"
                f" are unknown (first: {tokens[0]!r})."
            )
        return ids

    def encode(self, tokens: Sequence[str], seq_len: int, where: str = "the document") -> list[int]:
        """Ids of ``tokens``, truncated to the first ``seq_len`` or padded at the end with 0.

        Args:
            tokens: one tokenised document.
            seq_len: the length of the result.
            where: how error messages name the document.

        Returns:
            ``seq_len`` ids.

        Raises:
            ValueError: ``seq_len`` below 1, an empty document, or one whose tokens are all unknown.
        """
        check_integer("seq_len", seq_len)
        ids = self._checked_ids(tokens, where)[:seq_len]
        return ids + [PAD_ID] * (seq_len - len(ids))

    def encode_batch(self, documents: Sequence[Sequence[str]], seq_len: int) -> torch.Tensor:
        """Every document as :meth:`encode` does, ``(N, seq_len)`` ``int64``.

        Raises:
            ValueError: as :meth:`encode`, naming the document's position.
        """
        check_integer("seq_len", seq_len)
        out = np.zeros((len(documents), seq_len), dtype=np.int64)
        for row, tokens in enumerate(documents):
            out[row] = self.encode(tokens, seq_len, where=f"document {row}")
        return torch.from_numpy(out)

    def bag_of_words(self, documents: Sequence[Sequence[str]], binary: bool = True) -> torch.Tensor:
        """Bag-of-words vectors, ``(N, len(self))`` ``float32``; the padding column stays 0.

        Args:
            documents: tokenised documents.
            binary: 1 for a token present (the paper's Keras ``binary`` mode), else the count.

        Returns:
            One row per document; column ``i`` is token id ``i`` (unknown tokens in column 1).

        Raises:
            ValueError: an empty document, or one whose tokens are all unknown.
        """
        out = torch.zeros((len(documents), len(self)), dtype=torch.float32)
        for row, tokens in enumerate(documents):
            ids = torch.as_tensor(self._checked_ids(tokens, f"document {row}"), dtype=torch.int64)
            if binary:
                out[row, ids] = 1.0
            else:
                out[row].index_add_(0, ids, torch.ones(len(ids)))
        return out

    def to_json(self) -> str:
        """The ordinary tokens as a JSON list (load back with :meth:`from_json`)."""
        return json.dumps(list(self.tokens[len(_SPECIALS) :]))

    @classmethod
    def from_json(cls, text: str) -> Vocabulary:
        """A vocabulary saved with :meth:`to_json`.

        Raises:
            ValueError: text that is not a JSON list of strings.
        """
        try:
            tokens = json.loads(text)
        except json.JSONDecodeError as error:
            raise ValueError(f"Expected a JSON list of tokens, but parsing failed: {error}.") from None
        if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens):
            raise ValueError("Expected a JSON list of tokens (strings), but got something else.")
        return cls(tokens)


@dataclass(frozen=True)
class TextCorpus:
    """Raw labelled documents as read from disk.

    Args:
        texts: one string per document.
        labels: the class of each document.
        classes: class names, in label order.
        origins: where each document comes from (a path, or a file and line), for messages.
    """

    texts: list[str]
    labels: list[int]
    classes: tuple[str, ...]
    origins: list[str]


# --------------------------------------------------------------------------------------------
# Sources
# --------------------------------------------------------------------------------------------


def _read_text(path: Path) -> str:
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")  # older corpora (20 Newsgroups, CR) are Latin-1


class TextSource(DataSource):
    """A labelled text dataset read from local files, tokenised and encoded as tensors.

    Subclasses read the raw documents (:meth:`read_corpus`); this class tokenises them, builds
    (or borrows) the vocabulary and encodes every document. The result is cached, so a task
    source that lends its vocabulary to an OOD source is read once.

    Args:
        root: the folder holding the dataset's files.
        seq_len: tokens per sequence (``encoding="sequence"``).
        vocab_size: vocabulary size, the two special ids included, when this source builds it.
        vocabulary: ``None`` to build the vocabulary on this corpus; a :class:`Vocabulary` to
            use; or another :class:`TextSource` to share the vocabulary it builds on its corpus
            (how an OOD source gets the task's ids).
        encoding: ``"sequence"`` (``int64`` ids, ``(N, seq_len)``) or ``"bag_of_words"``
            (``float32``, ``(N, len(vocabulary))``).
        unknown_only: what to do with a document whose tokens are all outside a borrowed
            vocabulary: ``"raise"`` (default) or ``"drop"`` it (counted in :attr:`dropped`).

    Raises:
        TypeError: a setting of the wrong type.
        ValueError: ``seq_len`` or ``vocab_size`` out of range, an unknown ``encoding``.
    """

    #: The dataset's name as people write it, used in messages.
    title: ClassVar[str] = "text"
    #: What ``root`` must hold, for messages.
    layout: ClassVar[str] = ""

    def __init__(
        self,
        root: str | os.PathLike[str],
        seq_len: int = 200,
        vocab_size: int = 10_000,
        vocabulary: Vocabulary | TextSource | None = None,
        encoding: TextEncoding = "sequence",
        unknown_only: UnknownOnly = "raise",
    ) -> None:
        self.root = check_path("root", root)
        self.seq_len = check_integer("seq_len", seq_len)
        self.vocab_size = check_integer("vocab_size", vocab_size, 3, reason="<pad>, <unk> and at least one token")
        if vocabulary is not None and not isinstance(vocabulary, (Vocabulary, TextSource)):
            raise TypeError(
                f"Expected `vocabulary` to be a Vocabulary, a TextSource or None, but got {type(vocabulary).__name__}."
            )
        if encoding not in ("sequence", "bag_of_words"):
            raise ValueError(f"Expected `encoding` to be 'sequence' or 'bag_of_words', but got {encoding!r}.")
        if unknown_only not in ("raise", "drop"):
            raise ValueError(f"Expected `unknown_only` to be 'raise' or 'drop', but got {unknown_only!r}.")
        self._vocabulary_setting = vocabulary
        self.encoding: TextEncoding = encoding
        self.unknown_only: UnknownOnly = unknown_only
        self.dropped = 0
        self._vocabulary: Vocabulary | None = vocabulary if isinstance(vocabulary, Vocabulary) else None
        self._loaded: SourceData | None = None
        self._tokens: list[list[str]] | None = None
        self._corpus: TextCorpus | None = None

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(root={str(self.root)!r}, seq_len={self.seq_len}, vocab_size={self.vocab_size},"
            f" encoding={self.encoding!r})"
        )

    @abstractmethod
    def read_corpus(self) -> TextCorpus:
        """Read every raw document and its label from ``root``."""

    def _tokenised(self) -> tuple[TextCorpus, list[list[str]]]:
        if self._corpus is None or self._tokens is None:
            if not self.root.exists():
                raise FileNotFoundError(
                    f"Expected `root` to be a folder holding {self.layout}, but '{self.root}' does not exist."
                    " This source reads local files only; see the module docstring for where to get them."
                )
            if not self.root.is_dir():
                raise NotADirectoryError(
                    f"Expected `root` to be a folder holding {self.layout}, but '{self.root}' is not a folder."
                )
            corpus = self.read_corpus()
            if not corpus.texts:
                raise ValueError(f"Expected `root` '{self.root}' to hold {self.title} documents, but it holds none.")
            tokens = [tokenize(text) for text in corpus.texts]
            for document, origin in zip(tokens, corpus.origins):
                if not document:
                    raise ValueError(
                        f"Expected every {self.title} document to hold at least one word, but {origin} is empty."
                    )
            self._corpus, self._tokens = corpus, tokens
        return self._corpus, self._tokens

    @property
    def vocabulary(self) -> Vocabulary:
        """The vocabulary this source encodes with (built on its corpus, given, or borrowed)."""
        if self._vocabulary is None:
            if isinstance(self._vocabulary_setting, TextSource):
                self._vocabulary = self._vocabulary_setting.vocabulary
            else:
                _, tokens = self._tokenised()
                self._vocabulary = Vocabulary.build(tokens, self.vocab_size)
        return self._vocabulary

    def load(self) -> SourceData:
        """Read, tokenise and encode every document (cached after the first call).

        Returns:
            ``int64`` sequences ``(N, seq_len)`` or ``float32`` bags ``(N, len(vocabulary))``, and labels.

        Raises:
            FileNotFoundError: ``root`` or a required file is missing.
            NotADirectoryError: ``root`` is not a folder.
            ValueError: a file in the wrong format, an empty document, or (with
                ``unknown_only="raise"``) a document whose tokens are all unknown.
        """
        if self._loaded is not None:
            return self._loaded
        corpus, tokens = self._tokenised()
        vocabulary = self.vocabulary
        labels = corpus.labels
        if self.unknown_only == "drop":
            keep = [any(t in vocabulary for t in document) for document in tokens]
            self.dropped = keep.count(False)
            tokens = [document for document, k in zip(tokens, keep) if k]
            labels = [label for label, k in zip(labels, keep) if k]
            if not tokens:
                raise ValueError(
                    f"Expected some {self.title} document to hold a token of the vocabulary, but none does."
                )
        else:
            for document, origin in zip(tokens, corpus.origins):
                if not any(t in vocabulary for t in document):
                    raise ValueError(
                        f"Expected every {self.title} document to hold a token of the vocabulary, but all tokens of"
                        f" {origin} are unknown (pass unknown_only='drop' to skip such documents)."
                    )
        if self.encoding == "sequence":
            inputs = vocabulary.encode_batch(tokens, self.seq_len)
        else:
            inputs = vocabulary.bag_of_words(tokens)
        self._loaded = SourceData(
            name=self.name,
            inputs=inputs,
            targets=torch.as_tensor(labels, dtype=torch.int64),
            num_classes=len(corpus.classes),
            classes=corpus.classes,
        )
        return self._loaded


def _progress(items: list[Path], description: str) -> Iterable[Path]:
    from tqdm.auto import tqdm

    return tqdm(items, desc=description, unit="file", disable=len(items) <= _PROGRESS_MIN_FILES)


class IMDBSource(TextSource):
    """The Large Movie Review Dataset (IMDB): 50,000 reviews, negative (0) or positive (1).

    Reads ``root/aclImdb/{train,test}/{neg,pos}/*.txt`` (or the same under ``root`` when it is
    the ``aclImdb`` folder). Files are read in sorted order, ``train`` before ``test``; the
    unlabelled ``train/unsup`` reviews are ignored.

    Args:
        root: the folder holding ``aclImdb`` (or the ``aclImdb`` folder).
        seq_len: tokens per review (200, Table XII).
        vocab_size: vocabulary size (10,000).
        vocabulary: see :class:`TextSource`.
        encoding: see :class:`TextSource`.
        unknown_only: see :class:`TextSource`.
        subsets: which official splits to read.

    Raises:
        ValueError: ``subsets`` not a non-empty selection of ``("train", "test")``.

    Example (not run: it needs the IMDB reviews in ``data/``):
        >>> source = IMDBSource("data", seq_len=200)  # doctest: +SKIP
        >>> source.load().inputs.shape  # doctest: +SKIP
        torch.Size([50000, 200])
    """

    name = "imdb"
    title = "IMDB"
    layout = "aclImdb/{train,test}/{neg,pos}/*.txt"
    classes: ClassVar[tuple[str, ...]] = ("neg", "pos")

    def __init__(
        self,
        root: str | os.PathLike[str],
        seq_len: int = 200,
        vocab_size: int = 10_000,
        vocabulary: Vocabulary | TextSource | None = None,
        encoding: TextEncoding = "sequence",
        unknown_only: UnknownOnly = "raise",
        subsets: tuple[str, ...] = ("train", "test"),
    ) -> None:
        super().__init__(root, seq_len, vocab_size, vocabulary, encoding, unknown_only)
        if isinstance(subsets, str) or not subsets or any(s not in ("train", "test") for s in subsets):
            raise ValueError(f"Expected `subsets` to be a non-empty tuple of 'train'/'test', but got {subsets!r}.")
        self.subsets: tuple[str, ...] = tuple(s for s in ("train", "test") if s in subsets)

    def read_corpus(self) -> TextCorpus:
        base = self.root / "aclImdb" if (self.root / "aclImdb").is_dir() else self.root
        texts: list[str] = []
        labels: list[int] = []
        origins: list[str] = []
        for subset in self.subsets:
            for label, polarity in enumerate(self.classes):
                folder = base / subset / polarity
                if not folder.is_dir():
                    raise FileNotFoundError(f"Expected `root` to hold {self.layout}, but '{folder}' is missing.")
                files = sorted(folder.glob("*.txt"))
                if not files:
                    raise ValueError(
                        f"Expected '{folder}' to hold reviews as *.txt files, but it holds none"
                        f" ({len(list(folder.iterdir()))} other entries)."
                    )
                for path in _progress(files, f"IMDB {subset}/{polarity}"):
                    texts.append(_read_text(path))
                    labels.append(label)
                    origins.append(f"'{path}'")
        return TextCorpus(texts, labels, self.classes, origins)


class CustomerReviewSource(TextSource):
    """Hu & Liu's Customer Review data (CR): 3,775 review sentences, negative (0) or positive (1).

    Reads the preprocessed files ``root/custrev.pos`` and ``root/custrev.neg`` (one sentence per
    line; blank lines are skipped). The raw, annotated per-product files of the original release
    (lines such as ``picture[+2]##the pictures are great``) are a different format: they are
    recognised and refused with a message rather than read as sentences.

    Args:
        root: the folder holding ``custrev.pos`` and ``custrev.neg``.
        seq_len: tokens per sentence.
        vocab_size: vocabulary size when this source builds its own.
        vocabulary: see :class:`TextSource`; for I.C. the IMDB source.
        encoding: see :class:`TextSource`.
        unknown_only: see :class:`TextSource`.

    Example (not run: it needs the IMDB and Customer Review files in ``data/``):
        >>> imdb = IMDBSource("data")  # doctest: +SKIP
        >>> reviews = CustomerReviewSource("data/cr", vocabulary=imdb)  # IMDB's ids  # doctest: +SKIP
    """

    name = "custrev"
    title = "Customer Review"
    layout = "custrev.pos and custrev.neg (one sentence per line)"
    classes: ClassVar[tuple[str, ...]] = ("neg", "pos")
    _ANNOTATED = re.compile(r"^\s*(\[t\]|[^#]*\[[+-]\d\][^#]*##)")

    def read_corpus(self) -> TextCorpus:
        texts: list[str] = []
        labels: list[int] = []
        origins: list[str] = []
        for label, suffix in enumerate(self.classes):
            path = self.root / f"custrev.{suffix}"
            if not path.is_file():
                raise FileNotFoundError(f"Expected `root` to hold {self.layout}, but '{path}' is missing.")
            content = _read_text(path)
            for number, line in enumerate(content.splitlines(), start=1):
                if self._ANNOTATED.match(line):
                    raise ValueError(
                        f"Expected '{path}' to hold one plain sentence per line, but line {number} looks like the"
                        f" raw annotated Hu & Liu format ({line[:40]!r}); use the preprocessed custrev files."
                    )
                if line.strip():
                    texts.append(line)
                    labels.append(label)
                    origins.append(f"line {number} of '{path}'")
        return TextCorpus(texts, labels, self.classes, origins)


def _load_object_npy(archive: zipfile.ZipFile, member: str, path: Path) -> np.ndarray:
    """Read ``member`` of an ``.npz`` archive, object arrays included, without running any code."""
    from lightning_unlearn.datamodules.vision import _NumpyOnlyUnpickler

    with archive.open(member) as handle:
        try:
            version = np.lib.format.read_magic(handle)
            if version == (1, 0):
                shape, _fortran, dtype = np.lib.format.read_array_header_1_0(handle)
            elif version == (2, 0):
                shape, _fortran, dtype = np.lib.format.read_array_header_2_0(handle)
            else:
                raise ValueError(f"format version {version} is not supported (1.0 and 2.0 are)")
        except ValueError as error:
            raise ValueError(f"Expected '{path}' member {member!r} to be a .npy array, but {error}.") from None
        if not dtype.hasobject:
            count = int(np.prod(shape))
            data = np.frombuffer(handle.read(count * dtype.itemsize), dtype=dtype)
            if data.size != count:
                raise ValueError(f"Expected '{path}' member {member!r} to hold {count:,} values, but it is truncated.")
            return data.reshape(shape)
        try:
            array = _NumpyOnlyUnpickler(handle).load()  # lists of ints inside a numpy object array
        except Exception as error:
            raise ValueError(f"Expected '{path}' member {member!r} to be a pickled numpy array: {error}") from None
    if not isinstance(array, np.ndarray):
        raise ValueError(f"Expected '{path}' member {member!r} to be a numpy array, but got {type(array).__name__}.")
    return array


class ReutersSource(TextSource):
    """Reuters newswire topics, the Keras release: 11,228 stories, 46 topics (0–45).

    Reads ``root/reuters.npz`` (``x``: each story as a list of word ranks, 1 = the most frequent
    word; ``y``: its topic) and ``root/reuters_word_index.json`` (word → rank). Stories are
    decoded back to words through the word index and then tokenised and encoded like any other
    source, so the vocabulary is ours (the same frequency order the ranks encode). The default
    encoding is a 10,000-word bag of words (the paper's MLP, Table XII).

    Args:
        root: the folder holding the two files.
        seq_len: tokens per story (``encoding="sequence"``).
        vocab_size: vocabulary size (10,000).
        vocabulary: see :class:`TextSource`.
        encoding: ``"bag_of_words"`` (default) or ``"sequence"``.
        unknown_only: see :class:`TextSource`.

    Example (not run: it needs the Reuters-21578 files in ``data/``):
        >>> ReutersSource("data").load().inputs.shape  # doctest: +SKIP
        torch.Size([11228, 10000])
    """

    name = "reuters"
    title = "Reuters"
    layout = "reuters.npz (arrays x, y) and reuters_word_index.json"
    num_topics: ClassVar[int] = 46

    def __init__(
        self,
        root: str | os.PathLike[str],
        seq_len: int = 200,
        vocab_size: int = 10_000,
        vocabulary: Vocabulary | TextSource | None = None,
        encoding: TextEncoding = "bag_of_words",
        unknown_only: UnknownOnly = "raise",
    ) -> None:
        super().__init__(root, seq_len, vocab_size, vocabulary, encoding, unknown_only)

    def read_corpus(self) -> TextCorpus:
        data_path, index_path = self.root / "reuters.npz", self.root / "reuters_word_index.json"
        for path in (data_path, index_path):
            if not path.is_file():
                raise FileNotFoundError(f"Expected `root` to hold {self.layout}, but '{path}' is missing.")
        try:
            word_index = json.loads(_read_text(index_path))
        except json.JSONDecodeError as error:
            raise ValueError(f"Expected '{index_path}' to be a JSON word index, but parsing failed: {error}.") from None
        if not isinstance(word_index, dict) or not all(isinstance(v, int) for v in word_index.values()):
            raise ValueError(f"Expected '{index_path}' to map words to integer ranks, but it does not.")
        words = {rank: word for word, rank in word_index.items()}
        try:
            with zipfile.ZipFile(data_path) as archive:
                members = set(archive.namelist())
                if not {"x.npy", "y.npy"} <= members:
                    raise ValueError(
                        f"Expected '{data_path}' to hold the arrays 'x' and 'y', but it holds {sorted(members)}."
                    )
                stories = _load_object_npy(archive, "x.npy", data_path)
                topics = _load_object_npy(archive, "y.npy", data_path)
        except zipfile.BadZipFile:
            raise ValueError(f"Expected '{data_path}' to be a numpy .npz archive, but it is not a zip file.") from None
        if len(stories) != len(topics):
            raise ValueError(
                f"Expected '{data_path}' to hold one topic per story ({len(stories):,}), but it holds {len(topics):,}."
            )
        labels = np.asarray(topics, dtype=np.int64).tolist()
        bad = [t for t in labels if not 0 <= t < self.num_topics]
        if bad:
            raise ValueError(
                f"Expected the topics in '{data_path}' to lie in 0..{self.num_topics - 1}, but found {bad[0]}."
            )
        texts = []
        for story in stories:
            texts.append(" ".join(words.get(int(rank), "") for rank in story))
        origins = [f"story {i} of '{data_path}'" for i in range(len(texts))]
        return TextCorpus(texts, labels, tuple(str(t) for t in range(self.num_topics)), origins)


def _strip_headers(message: str) -> str:
    _, separator, body = message.partition("\n\n")
    return body if separator else message


class NewsgroupsSource(TextSource):
    """20 Newsgroups, the "bydate" release: 18,846 posts in 20 groups (classes in sorted order).

    Reads ``root/20news-bydate-train/<group>/<id>`` and ``root/20news-bydate-test/<group>/<id>``,
    or, when those folders are absent, ``root/20news-bydate.tar.gz`` in place. The groups of the
    first subset read define the classes (sorted by name); another subset must have the same
    groups. Headers (everything up to the first blank line) are removed by default, so the
    ``Newsgroups:`` line does not give the label away.

    Args:
        root: the folder holding the two folders or the archive.
        seq_len: tokens per post (1,000, Table XII).
        vocab_size: vocabulary size (10,000).
        vocabulary: see :class:`TextSource`.
        encoding: see :class:`TextSource`.
        unknown_only: see :class:`TextSource`.
        subsets: which official splits to read.
        remove_headers: drop each post's headers.

    Example (not run: it needs the 20 Newsgroups files in ``data/``):
        >>> NewsgroupsSource("data", seq_len=1000).load().num_classes  # doctest: +SKIP
        20
    """

    name = "20newsgroups"
    title = "20 Newsgroups"
    layout = "20news-bydate-{train,test}/<group>/<id> or 20news-bydate.tar.gz"

    def __init__(
        self,
        root: str | os.PathLike[str],
        seq_len: int = 1_000,
        vocab_size: int = 10_000,
        vocabulary: Vocabulary | TextSource | None = None,
        encoding: TextEncoding = "sequence",
        unknown_only: UnknownOnly = "raise",
        subsets: tuple[str, ...] = ("train", "test"),
        remove_headers: bool = True,
    ) -> None:
        super().__init__(root, seq_len, vocab_size, vocabulary, encoding, unknown_only)
        if isinstance(subsets, str) or not subsets or any(s not in ("train", "test") for s in subsets):
            raise ValueError(f"Expected `subsets` to be a non-empty tuple of 'train'/'test', but got {subsets!r}.")
        self.subsets: tuple[str, ...] = tuple(s for s in ("train", "test") if s in subsets)
        self.remove_headers = check_bool("remove_headers", remove_headers)

    def _messages(self) -> dict[str, list[tuple[str, str, str]]]:
        """``subset → [(group, origin, text)]`` from the folders or the archive."""
        found: dict[str, list[tuple[str, str, str]]] = {}
        folders = {subset: self.root / f"20news-bydate-{subset}" for subset in self.subsets}
        if all(folder.is_dir() for folder in folders.values()):
            for subset, folder in folders.items():
                files = sorted(p for p in folder.glob("*/*") if p.is_file())
                found[subset] = [(p.parent.name, f"'{p}'", _read_text(p)) for p in _progress(files, subset)]
            return found
        archive_path = self.root / "20news-bydate.tar.gz"
        if not archive_path.is_file():
            missing = next(folder for folder in folders.values() if not folder.is_dir())
            raise FileNotFoundError(
                f"Expected `root` to hold {self.layout}, but neither '{missing}' nor '{archive_path}' exists."
            )
        try:
            with tarfile.open(archive_path, "r:*") as archive:
                entries: dict[str, list[tuple[str, str, str]]] = {name: [] for name in self.subsets}
                for member in archive:
                    parts = Path(member.name).parts
                    if not member.isfile() or len(parts) != 3:
                        continue
                    member_subset = parts[0].removeprefix("20news-bydate-")
                    if member_subset in entries:
                        handle = archive.extractfile(member)
                        raw = b"" if handle is None else handle.read()
                        try:
                            text = raw.decode("utf-8")
                        except UnicodeDecodeError:
                            text = raw.decode("latin-1")
                        entries[member_subset].append((parts[1], f"'{member.name}' in '{archive_path}'", text))
        except tarfile.TarError as error:
            raise ValueError(
                f"Expected '{archive_path}' to be a tar archive, but reading it failed: {error}."
            ) from None
        for subset, items in entries.items():
            if not items:
                raise ValueError(
                    f"Expected '{archive_path}' to hold 20news-bydate-{subset}/<group>/<id> files, but it holds none."
                )
            found[subset] = sorted(items, key=lambda item: item[1])
        return found

    def read_corpus(self) -> TextCorpus:
        messages = self._messages()
        first = self.subsets[0]
        classes = tuple(sorted({group for group, _, _ in messages[first]}))
        if len(classes) < 2:
            raise ValueError(
                f"Expected at least two newsgroup folders in 20news-bydate-{first}, but found {len(classes)}."
            )
        index = {group: label for label, group in enumerate(classes)}
        texts: list[str] = []
        labels: list[int] = []
        origins: list[str] = []
        for subset in self.subsets:
            groups = {group for group, _, _ in messages[subset]}
            if groups != set(classes):
                raise ValueError(
                    f"Expected 20news-bydate-{subset} to hold the groups of 20news-bydate-{first}, but they differ"
                    f" by {sorted(groups ^ set(classes))}."
                )
            for group, origin, text in messages[subset]:
                texts.append(_strip_headers(text) if self.remove_headers else text)
                labels.append(index[group])
                origins.append(origin)
        return TextCorpus(texts, labels, classes, origins)


# --------------------------------------------------------------------------------------------
# Datamodules of the paper's text scenarios (Table II)
# --------------------------------------------------------------------------------------------


class IMDBCustomerReviewDataModule(UnlearningDataModule):
    """I.C.: IMDB sentiment as the task, Customer Review sentences as the OOD source.

    Both corpora are encoded with the vocabulary built on IMDB (reviews of 200 tokens, 10,000
    ids), so CR sentences are ``int64`` sequences of the task's shape. CR sentences whose words
    are all outside IMDB's vocabulary are dropped (see :attr:`CustomerReviewSource.dropped`).
    ``kind="ood_foreign"`` inserts CR sentences under random labels; ``"ood_mislabeled"`` under
    the opposite sentiment (both datasets label neg 0, pos 1).

    Args:
        imdb_root: folder holding ``aclImdb``.
        customer_review_root: folder holding ``custrev.pos`` and ``custrev.neg``.
        kind: ``"ood_foreign"`` or ``"ood_mislabeled"``.
        seq_len: tokens per document.
        vocab_size: vocabulary size.
        forget_size: see :class:`~lightning_unlearn.datamodules.UnlearningDataModule`.
        seed: seeds every split.
        target_fraction: see ``UnlearningDataModule``.
        test_fraction: see ``UnlearningDataModule``.
        probe_fraction: see ``UnlearningDataModule``.
        validation_fraction: see ``UnlearningDataModule``.
        validation_heldout_fraction: see ``UnlearningDataModule``.
        side: see ``UnlearningDataModule``.
        batch_size: see ``UnlearningDataModule``.
        eval_batch_size: see ``UnlearningDataModule``.
        num_workers: see ``UnlearningDataModule``.
        manifest: see ``UnlearningDataModule``.

    Raises:
        ValueError: ``kind`` other than the two OOD-source kinds.

    Example (not run: it needs the IMDB and Customer Review files in ``data/``):
        >>> dm = IMDBCustomerReviewDataModule("data", "data/cr", seed=0)  # doctest: +SKIP
        >>> dm.setup(); dm.input_shape  # doctest: +SKIP
        (200,)
    """

    def __init__(
        self,
        imdb_root: str | os.PathLike[str],
        customer_review_root: str | os.PathLike[str],
        kind: Literal["ood_foreign", "ood_mislabeled"] = "ood_foreign",
        seq_len: int = 200,
        vocab_size: int = 10_000,
        forget_size: int | None = None,
        seed: int = 0,
        target_fraction: float = 0.5,
        test_fraction: float = 0.3,
        probe_fraction: float = 0.01,
        validation_fraction: float = 0.25,
        validation_heldout_fraction: float = 0.5,
        side: Literal["target", "shadow"] = "target",
        batch_size: int = 64,
        eval_batch_size: int | None = None,
        num_workers: int = 0,
        manifest: str | os.PathLike[str] | None = None,
    ) -> None:
        if kind not in ("ood_foreign", "ood_mislabeled"):
            raise ValueError(f"Expected `kind` to be 'ood_foreign' or 'ood_mislabeled' for I.C., but got {kind!r}.")
        imdb = IMDBSource(imdb_root, seq_len=seq_len, vocab_size=vocab_size)
        reviews = CustomerReviewSource(customer_review_root, seq_len=seq_len, vocabulary=imdb, unknown_only="drop")
        super().__init__(
            source=imdb,
            kind=kind,
            forget_size=forget_size,
            seed=seed,
            ood_source=reviews,
            target_fraction=target_fraction,
            test_fraction=test_fraction,
            probe_fraction=probe_fraction,
            validation_fraction=validation_fraction,
            validation_heldout_fraction=validation_heldout_fraction,
            side=side,
            batch_size=batch_size,
            eval_batch_size=eval_batch_size,
            num_workers=num_workers,
            manifest=manifest,
        )

    @property
    def vocabulary(self) -> Vocabulary:
        """The vocabulary built on IMDB, shared by both corpora."""
        if not isinstance(self.source, TextSource):  # pragma: no cover - set in __init__
            raise RuntimeError("Expected a text source.")
        return self.source.vocabulary


class _SingleTextSourceDataModule(UnlearningDataModule):
    """Label-split scenarios over one text source."""

    @property
    def vocabulary(self) -> Vocabulary:
        """The vocabulary built on the corpus."""
        if not isinstance(self.source, TextSource):  # pragma: no cover - set in __init__
            raise RuntimeError("Expected a text source.")
        return self.source.vocabulary


class ReutersDataModule(_SingleTextSourceDataModule):
    """Reuters (35-11): topics 0–34 are the task, topics 35–45 the OOD pool (``ood_label_split``).

    Stories are 10,000-word bags of words for :class:`~lightning_unlearn.text_models.ReutersMLP`.

    Args:
        root: folder holding ``reuters.npz`` and ``reuters_word_index.json``.
        split_class: the first OOD topic (35).
        vocab_size: vocabulary size, i.e. the bag-of-words width.
        encoding: ``"bag_of_words"`` (default) or ``"sequence"``.
        seq_len: tokens per story for ``encoding="sequence"``.
        forget_size: see :class:`~lightning_unlearn.datamodules.UnlearningDataModule`.
        seed: seeds every split.
        target_fraction: see ``UnlearningDataModule``.
        test_fraction: see ``UnlearningDataModule``.
        probe_fraction: see ``UnlearningDataModule``.
        validation_fraction: see ``UnlearningDataModule``.
        validation_heldout_fraction: see ``UnlearningDataModule``.
        side: see ``UnlearningDataModule``.
        batch_size: see ``UnlearningDataModule``.
        eval_batch_size: see ``UnlearningDataModule``.
        num_workers: see ``UnlearningDataModule``.
        manifest: see ``UnlearningDataModule``.

    Example (not run: it needs the Reuters-21578 files in ``data/``):
        >>> dm = ReutersDataModule("data")  # doctest: +SKIP
        >>> dm.setup(); dm.num_classes  # doctest: +SKIP
        35
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        split_class: int = 35,
        vocab_size: int = 10_000,
        encoding: TextEncoding = "bag_of_words",
        seq_len: int = 200,
        forget_size: int | None = None,
        seed: int = 0,
        target_fraction: float = 0.5,
        test_fraction: float = 0.3,
        probe_fraction: float = 0.01,
        validation_fraction: float = 0.25,
        validation_heldout_fraction: float = 0.5,
        side: Literal["target", "shadow"] = "target",
        batch_size: int = 64,
        eval_batch_size: int | None = None,
        num_workers: int = 0,
        manifest: str | os.PathLike[str] | None = None,
    ) -> None:
        super().__init__(
            source=ReutersSource(root, seq_len=seq_len, vocab_size=vocab_size, encoding=encoding),
            kind="ood_label_split",
            forget_size=forget_size,
            seed=seed,
            split_class=split_class,
            target_fraction=target_fraction,
            test_fraction=test_fraction,
            probe_fraction=probe_fraction,
            validation_fraction=validation_fraction,
            validation_heldout_fraction=validation_heldout_fraction,
            side=side,
            batch_size=batch_size,
            eval_batch_size=eval_batch_size,
            num_workers=num_workers,
            manifest=manifest,
        )


class NewsgroupsDataModule(_SingleTextSourceDataModule):
    """20 Newsgroups (15-5): groups 0–14 are the task, groups 15–19 the OOD pool (``ood_label_split``).

    Posts are sequences of 1,000 token ids for :class:`~lightning_unlearn.text_models.NewsCNN`.

    Args:
        root: folder holding ``20news-bydate-{train,test}`` or ``20news-bydate.tar.gz``.
        split_class: the first OOD group (15).
        seq_len: tokens per post.
        vocab_size: vocabulary size.
        remove_headers: drop each post's headers.
        forget_size: see :class:`~lightning_unlearn.datamodules.UnlearningDataModule`.
        seed: seeds every split.
        target_fraction: see ``UnlearningDataModule``.
        test_fraction: see ``UnlearningDataModule``.
        probe_fraction: see ``UnlearningDataModule``.
        validation_fraction: see ``UnlearningDataModule``.
        validation_heldout_fraction: see ``UnlearningDataModule``.
        side: see ``UnlearningDataModule``.
        batch_size: see ``UnlearningDataModule``.
        eval_batch_size: see ``UnlearningDataModule``.
        num_workers: see ``UnlearningDataModule``.
        manifest: see ``UnlearningDataModule``.

    Example (not run: it needs the 20 Newsgroups files in ``data/``):
        >>> dm = NewsgroupsDataModule("data")  # doctest: +SKIP
        >>> dm.setup(); dm.num_classes, dm.input_shape  # doctest: +SKIP
        (15, (1000,))
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        split_class: int = 15,
        seq_len: int = 1_000,
        vocab_size: int = 10_000,
        remove_headers: bool = True,
        forget_size: int | None = None,
        seed: int = 0,
        target_fraction: float = 0.5,
        test_fraction: float = 0.3,
        probe_fraction: float = 0.01,
        validation_fraction: float = 0.25,
        validation_heldout_fraction: float = 0.5,
        side: Literal["target", "shadow"] = "target",
        batch_size: int = 64,
        eval_batch_size: int | None = None,
        num_workers: int = 0,
        manifest: str | os.PathLike[str] | None = None,
    ) -> None:
        super().__init__(
            source=NewsgroupsSource(root, seq_len=seq_len, vocab_size=vocab_size, remove_headers=remove_headers),
            kind="ood_label_split",
            forget_size=forget_size,
            seed=seed,
            split_class=split_class,
            target_fraction=target_fraction,
            test_fraction=test_fraction,
            probe_fraction=probe_fraction,
            validation_fraction=validation_fraction,
            validation_heldout_fraction=validation_heldout_fraction,
            side=side,
            batch_size=batch_size,
            eval_batch_size=eval_batch_size,
            num_workers=num_workers,
            manifest=manifest,
        )
