"""Datamodules that build the retain / forget / reference / heldout / shadow splits."""

from lightning_unlearn.datamodules.base import IndexedBatch, SplitDataset, UnlearningDataModule
from lightning_unlearn.datamodules.digits import DigitsDataModule
from lightning_unlearn.datamodules.sources import DataSource, DigitsSource, SourceData
from lightning_unlearn.datamodules.splits import SPLIT_NAMES, ForgetKind, Split, UnlearningSplits, build_splits

__all__ = [
    "SPLIT_NAMES",
    "DataSource",
    "DigitsDataModule",
    "DigitsSource",
    "ForgetKind",
    "IndexedBatch",
    "SourceData",
    "Split",
    "SplitDataset",
    "UnlearningDataModule",
    "UnlearningSplits",
    "build_splits",
]
