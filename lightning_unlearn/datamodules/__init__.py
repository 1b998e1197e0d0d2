"""Datamodules that build the retain / forget / reference / heldout / shadow splits."""

from lightning_unlearn.datamodules.base import IndexedBatch, SplitDataset, UnlearningDataModule
from lightning_unlearn.datamodules.digits import DigitsDataModule
from lightning_unlearn.datamodules.sources import DataSource, DigitsSource, SourceData
from lightning_unlearn.datamodules.splits import (
    REPORT_ONLY_SPLITS,
    SPLIT_NAMES,
    ForgetKind,
    Split,
    UnlearningSplits,
    build_splits,
)
from lightning_unlearn.datamodules.text import (
    CustomerReviewSource,
    IMDBCustomerReviewDataModule,
    IMDBSource,
    NewsgroupsDataModule,
    NewsgroupsSource,
    ReutersDataModule,
    ReutersSource,
    TextSource,
    Vocabulary,
    tokenize,
)

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
