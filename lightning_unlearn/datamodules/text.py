"""Datamodules of the Forsaken paper's text scenarios (Table II): I.C., Reuters 35-11 and News 15-5.

:class:`IMDBCustomerReviewDataModule` (I.C.), :class:`ReutersDataModule` (35-11) and
:class:`NewsgroupsDataModule` (15-5) wire the text sources of
:mod:`lightning_unlearn.datamodules.sources.text` into
:class:`~lightning_unlearn.datamodules.UnlearningDataModule`.
"""

from __future__ import annotations

import os
from typing import Literal

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
