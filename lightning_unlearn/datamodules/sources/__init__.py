"""Where samples come from: one module per family of datasets, each reading its own on-disk format.

A :class:`DataSource` loads a whole labelled dataset as a :class:`SourceData` and knows nothing
about unlearning; the datamodules of :mod:`lightning_unlearn.datamodules` draw every split from
what a source returns.

* :mod:`~lightning_unlearn.datamodules.sources.base` — :class:`DataSource` and :class:`SourceData`;
* :mod:`~lightning_unlearn.datamodules.sources.digits` — scikit-learn's bundled digits (no download);
* :mod:`~lightning_unlearn.datamodules.sources.vision` — MNIST, Fashion-MNIST, CIFAR-10/100, STL-10,
  SVHN and Tiny ImageNet in the layout torchvision downloads, and :func:`conform_inputs`;
* :mod:`~lightning_unlearn.datamodules.sources.text` — IMDB, Customer Review, Reuters and
  20 Newsgroups from local files;
* :mod:`~lightning_unlearn.datamodules.sources.vocabulary` — the tokeniser and :class:`Vocabulary`;
* :mod:`~lightning_unlearn.datamodules.sources.pickles` — reading pickled numpy arrays safely.
"""

from lightning_unlearn.datamodules.sources.base import DataSource, SourceData
from lightning_unlearn.datamodules.sources.digits import DigitsSource
from lightning_unlearn.datamodules.sources.text import (
    CustomerReviewSource,
    IMDBSource,
    NewsgroupsSource,
    ReutersSource,
    TextCorpus,
    TextEncoding,
    TextSource,
)
from lightning_unlearn.datamodules.sources.vision import (
    STL10_TO_CIFAR10,
    CIFAR10Source,
    CIFAR100Source,
    FashionMNISTSource,
    MNISTSource,
    STL10Source,
    SVHNSource,
    TinyImageNetSource,
    conform_inputs,
)
from lightning_unlearn.datamodules.sources.vocabulary import PAD_ID, UNKNOWN_ID, Vocabulary, tokenize

__all__ = [
    "PAD_ID",
    "STL10_TO_CIFAR10",
    "UNKNOWN_ID",
    "CIFAR10Source",
    "CIFAR100Source",
    "CustomerReviewSource",
    "DataSource",
    "DigitsSource",
    "FashionMNISTSource",
    "IMDBSource",
    "MNISTSource",
    "NewsgroupsSource",
    "ReutersSource",
    "STL10Source",
    "SVHNSource",
    "SourceData",
    "TextCorpus",
    "TextEncoding",
    "TextSource",
    "TinyImageNetSource",
    "Vocabulary",
    "conform_inputs",
    "tokenize",
]
