"""Datamodules that build the retain / forget / reference / heldout / shadow splits.

:class:`UnlearningDataModule` (``base``) draws every split (``splits``) from a data source; the
scenario datamodules fix the source and the kind of forget set: :class:`DigitsDataModule`
(``digits``) and the text scenarios (``text``). The sources themselves, one module per family
of datasets, are in :mod:`lightning_unlearn.datamodules.sources`.
"""

from lightning_unlearn.datamodules.base import IndexedBatch, SplitDataset, UnlearningDataModule
from lightning_unlearn.datamodules.digits import DigitsDataModule
from lightning_unlearn.datamodules.sources import (
    CustomerReviewSource,
    DataSource,
    DigitsSource,
    IMDBSource,
    NewsgroupsSource,
    ReutersSource,
    SourceData,
    TextSource,
    Vocabulary,
    tokenize,
)
from lightning_unlearn.datamodules.splits import (
    REPORT_ONLY_SPLITS,
    SPLIT_NAMES,
    ForgetKind,
    Split,
    UnlearningSplits,
    build_splits,
)
from lightning_unlearn.datamodules.text import IMDBCustomerReviewDataModule, NewsgroupsDataModule, ReutersDataModule

__all__ = [
    "REPORT_ONLY_SPLITS",
    "SPLIT_NAMES",
    "CustomerReviewSource",
    "DataSource",
    "DigitsDataModule",
    "DigitsSource",
    "ForgetKind",
    "IMDBCustomerReviewDataModule",
    "IMDBSource",
    "IndexedBatch",
    "NewsgroupsDataModule",
    "NewsgroupsSource",
    "ReutersDataModule",
    "ReutersSource",
    "SourceData",
    "Split",
    "SplitDataset",
    "TextSource",
    "UnlearningDataModule",
    "UnlearningSplits",
    "Vocabulary",
    "build_splits",
    "tokenize",
]
