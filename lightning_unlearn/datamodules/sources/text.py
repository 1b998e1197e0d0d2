"""Sources for the Forsaken paper's text scenarios, read from local files and encoded as tensors.

Each source reads one dataset in the format it is commonly distributed in, tokenises it
(:func:`~lightning_unlearn.datamodules.sources.vocabulary.tokenize`) and encodes it with a
:class:`~lightning_unlearn.datamodules.sources.vocabulary.Vocabulary`:

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
"""

from __future__ import annotations

import json
import os
import re
import tarfile
import zipfile
from abc import abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Literal

import numpy as np
import torch

from lightning_unlearn.checks import check_bool, check_integer, check_path
from lightning_unlearn.datamodules.sources.base import DataSource, SourceData
from lightning_unlearn.datamodules.sources.pickles import NumpyOnlyUnpickler
from lightning_unlearn.datamodules.sources.vocabulary import Vocabulary, tokenize

__all__ = [
    "CustomerReviewSource",
    "IMDBSource",
    "NewsgroupsSource",
    "ReutersSource",
    "TextCorpus",
    "TextEncoding",
    "TextSource",
]

TextEncoding = Literal["sequence", "bag_of_words"]
UnknownOnly = Literal["raise", "drop"]

#: Reading more files than this shows a progress bar.
_PROGRESS_MIN_FILES = 2_000


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


def _decode(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")  # older corpora (20 Newsgroups, CR) are Latin-1


def _read_text(path: Path) -> str:
    return _decode(path.read_bytes())


def _train_test_subsets(subsets: tuple[str, ...]) -> tuple[str, ...]:
    """The chosen official splits, train before test; raises unless a non-empty selection of the two."""
    if isinstance(subsets, str) or not subsets or any(s not in ("train", "test") for s in subsets):
        raise ValueError(f"Expected `subsets` to be a non-empty tuple of 'train'/'test', but got {subsets!r}.")
    return tuple(s for s in ("train", "test") if s in subsets)


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
        self.subsets = _train_test_subsets(subsets)

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
            array = NumpyOnlyUnpickler(handle).load()  # lists of ints inside a numpy object array
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
        self.subsets = _train_test_subsets(subsets)
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
                        text = _decode(b"" if handle is None else handle.read())
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
