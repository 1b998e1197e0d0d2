"""Datamodules of the Forsaken paper's text scenarios (Table II): I.C., Reuters 35-11 and News 15-5.

:class:`IMDBCustomerReviewDataModule` (I.C.), :class:`ReutersDataModule` (35-11) and
:class:`NewsgroupsDataModule` (15-5) wire the text sources of
:mod:`lightning_unlearn.datamodules.sources.text` into
:class:`~lightning_unlearn.datamodules.UnlearningDataModule`.
"""

from __future__ import annotations

import os
from typing import Any, Literal

from lightning_unlearn.datamodules.base import UnlearningDataModule
from lightning_unlearn.datamodules.sources.text import (
    CustomerReviewSource,
    IMDBSource,
    NewsgroupsSource,
    ReutersSource,
    TextEncoding,
    TextSource,
)
from lightning_unlearn.datamodules.sources.vocabulary import Vocabulary

__all__ = ["IMDBCustomerReviewDataModule", "NewsgroupsDataModule", "ReutersDataModule"]


class _TextDataModule(UnlearningDataModule):
    """A scenario over a text source: exposes the vocabulary the source encodes with."""

    @property
    def vocabulary(self) -> Vocabulary:
        """The vocabulary built on the task's corpus (shared by an OOD corpus)."""
        if not isinstance(self.source, TextSource):  # pragma: no cover - set in __init__
            raise RuntimeError("Expected a text source.")
        return self.source.vocabulary


class IMDBCustomerReviewDataModule(_TextDataModule):
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
        **kwargs: how the splits are drawn and loaded, as for
            :class:`~lightning_unlearn.datamodules.UnlearningDataModule`: ``forget_size``, ``seed``,
            ``target_fraction``, ``test_fraction``, ``probe_fraction``, ``validation_fraction``,
            ``validation_heldout_fraction``, ``side``, ``batch_size``, ``eval_batch_size``,
            ``num_workers``, ``manifest``.

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
        **kwargs: Any,
    ) -> None:
        if kind not in ("ood_foreign", "ood_mislabeled"):
            raise ValueError(f"Expected `kind` to be 'ood_foreign' or 'ood_mislabeled' for I.C., but got {kind!r}.")
        imdb = IMDBSource(imdb_root, seq_len=seq_len, vocab_size=vocab_size)
        reviews = CustomerReviewSource(customer_review_root, seq_len=seq_len, vocabulary=imdb, unknown_only="drop")
        super().__init__(
            source=imdb,
            kind=kind,
            ood_source=reviews,
            # Settings of other kinds of forget set, fixed here so that they are not options of I.C.
            split_class=None,
            ood_label_map=None,
            flip_source=None,
            flip_target=None,
            flip_rate=None,
            **kwargs,
        )


class _LabelSplitTextDataModule(_TextDataModule):
    """A text scenario of kind ``ood_label_split``: the classes from ``split_class`` on are the OOD pool."""

    def __init__(self, source: TextSource, split_class: int, **kwargs: Any) -> None:
        super().__init__(
            source=source,
            kind="ood_label_split",
            split_class=split_class,
            # Settings of other kinds of forget set, fixed here so that they are not options of the scenario.
            ood_source=None,
            ood_label_map=None,
            flip_source=None,
            flip_target=None,
            flip_rate=None,
            **kwargs,
        )


class ReutersDataModule(_LabelSplitTextDataModule):
    """Reuters (35-11): topics 0–34 are the task, topics 35–45 the OOD pool (``ood_label_split``).

    Stories are 10,000-word bags of words for :class:`~lightning_unlearn.text_models.ReutersMLP`.

    Args:
        root: folder holding ``reuters.npz`` and ``reuters_word_index.json``.
        split_class: the first OOD topic (35).
        vocab_size: vocabulary size, i.e. the bag-of-words width.
        encoding: ``"bag_of_words"`` (default) or ``"sequence"``.
        seq_len: tokens per story for ``encoding="sequence"``.
        **kwargs: how the splits are drawn and loaded, as for
            :class:`~lightning_unlearn.datamodules.UnlearningDataModule`: ``forget_size``, ``seed``,
            ``target_fraction``, ``test_fraction``, ``probe_fraction``, ``validation_fraction``,
            ``validation_heldout_fraction``, ``side``, ``batch_size``, ``eval_batch_size``,
            ``num_workers``, ``manifest``.

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
        **kwargs: Any,
    ) -> None:
        source = ReutersSource(root, seq_len=seq_len, vocab_size=vocab_size, encoding=encoding)
        super().__init__(source, split_class, **kwargs)


class NewsgroupsDataModule(_LabelSplitTextDataModule):
    """20 Newsgroups (15-5): groups 0–14 are the task, groups 15–19 the OOD pool (``ood_label_split``).

    Posts are sequences of 1,000 token ids for :class:`~lightning_unlearn.text_models.NewsCNN`.

    Args:
        root: folder holding ``20news-bydate-{train,test}`` or ``20news-bydate.tar.gz``.
        split_class: the first OOD group (15).
        seq_len: tokens per post.
        vocab_size: vocabulary size.
        remove_headers: drop each post's headers.
        **kwargs: how the splits are drawn and loaded, as for
            :class:`~lightning_unlearn.datamodules.UnlearningDataModule`: ``forget_size``, ``seed``,
            ``target_fraction``, ``test_fraction``, ``probe_fraction``, ``validation_fraction``,
            ``validation_heldout_fraction``, ``side``, ``batch_size``, ``eval_batch_size``,
            ``num_workers``, ``manifest``.

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
        **kwargs: Any,
    ) -> None:
        source = NewsgroupsSource(root, seq_len=seq_len, vocab_size=vocab_size, remove_headers=remove_headers)
        super().__init__(source, split_class, **kwargs)
