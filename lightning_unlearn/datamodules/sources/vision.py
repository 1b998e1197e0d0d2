"""Image data sources read from the files torchvision downloads, and a converter between image shapes.

Every source here reads one dataset in exactly the layout that torchvision's dataset class
downloads and extracts, so a ``root`` folder a user already has works as it is:

=========================  ==============================================================
:class:`MNISTSource`       ``root/MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]``
:class:`FashionMNISTSource`  the same under ``root/FashionMNIST/raw/``
:class:`CIFAR10Source`     ``root/cifar-10-batches-py/`` (``data_batch_1`` … ``test_batch``)
:class:`CIFAR100Source`    ``root/cifar-100-python/`` (``train``, ``test``, ``meta``)
:class:`STL10Source`       ``root/stl10_binary/`` (``{train,test}_{X,y}.bin``)
:class:`SVHNSource`        ``root/{train,test,extra}_32x32.mat``
:class:`TinyImageNetSource`  ``root/tiny-imagenet-200/`` (local only, never downloaded)
=========================  ==============================================================

Every source but Tiny ImageNet takes the same arguments: ``root`` (the folder torchvision's
class takes as ``root``), ``download`` (let :meth:`DataSource.prepare` fetch missing files
through torchvision; ``False`` by default) and ``subsets`` (which official splits to load, by
default train and test; they are concatenated training split first, whatever their order). A
path that is not a ``str`` or ``os.PathLike``, a ``download`` that is not a bool, or ``subsets``
given as a string raise ``TypeError``; ``subsets`` that is empty, repeats a split, or names an
unknown split or one without labels raises ``ValueError``.

The files are parsed here with numpy, whole arrays at a time, rather than through
torchvision's classes: those verify md5 sums, which files written by tests cannot match. The
results follow torchvision's conventions (upright images, SVHN's label 10 read as digit 0,
STL-10's labels shifted to start at 0). With ``download=True``, :meth:`DataSource.prepare`
hands the download to the matching torchvision class, then :meth:`DataSource.load` reads the
files it left.

:func:`conform_inputs` makes the samples of one source look like another's (channels, size,
dtype), so that out-of-distribution samples can be inserted into a task dataset, such as
STL-10 into CIFAR-10 or Tiny ImageNet into CIFAR-100.
"""

from __future__ import annotations

import copy
import gzip
import math
import os
import zlib
from abc import abstractmethod
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from lightning_unlearn.checks import check_bool, check_path
from lightning_unlearn.datamodules.sources.base import DataSource, SourceData
from lightning_unlearn.datamodules.sources.pickles import NumpyOnlyUnpickler

__all__ = [
    "STL10_TO_CIFAR10",
    "CIFAR10Source",
    "CIFAR100Source",
    "FashionMNISTSource",
    "MNISTSource",
    "STL10Source",
    "SVHNSource",
    "TinyImageNetSource",
    "conform_inputs",
]

#: STL-10 class → CIFAR-10 class, for ``kind="ood_mislabeled"`` (STL-10 into CIFAR-10, as in
#: the Forsaken paper's Table II). STL-10's "monkey" has no CIFAR-10 counterpart and is left
#: out, so monkeys get any CIFAR-10 label.
STL10_TO_CIFAR10: dict[int, int] = {0: 0, 1: 2, 2: 1, 3: 3, 4: 4, 5: 5, 6: 7, 8: 8, 9: 9}

_DIGIT_CLASSES = tuple(str(digit) for digit in range(10))
_FASHION_MNIST_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
#: Reading more image files than this shows a progress bar.
_PROGRESS_MIN_FILES = 2_000
#: How many float32 values :func:`conform_inputs` holds per chunk (64 MiB).
_CONFORM_CHUNK_VALUES = 2**24
#: ITU-R BT.601 luma weights for red, green and blue (the weights PIL uses for mode "L").
_LUMA_WEIGHTS = (0.299, 0.587, 0.114)


# --------------------------------------------------------------------------------------------
# Argument checks shared by every source
# --------------------------------------------------------------------------------------------


def _check_subsets(
    subsets: Sequence[str], title: str, splits: tuple[str, ...], unlabeled: tuple[str, ...] = ()
) -> tuple[str, ...]:
    """Validate ``subsets`` and return them in the dataset's own order (train first)."""
    if isinstance(subsets, str) or not isinstance(subsets, Sequence):
        raise TypeError(f"Expected `subsets` to be a tuple of split names such as {splits}, but got {subsets!r}.")
    if len(subsets) == 0:
        raise ValueError(f"Expected `subsets` to name at least one split of {title} out of {splits}, but got ().")
    for subset in subsets:
        if subset in unlabeled:
            raise ValueError(
                f"Expected `subsets` to name labelled splits of {title} out of {splits}, but got {subset!r},"
                " which has no labels."
            )
        if subset not in splits:
            raise ValueError(f"Expected `subsets` to be splits of {title} out of {splits}, but got {subset!r}.")
    if len(set(subsets)) != len(subsets):
        raise ValueError(f"Expected `subsets` to name each split of {title} once, but got {tuple(subsets)}.")
    return tuple(split for split in splits if split in subsets)


def _check_labels(labels: np.ndarray, low: int, high: int, path: Path) -> None:
    """Raise if a label read from ``path`` lies outside ``[low, high]`` (as stored on disk)."""
    if labels.size and (labels.min() < low or labels.max() > high):
        bad = labels[(labels < low) | (labels > high)][0]
        raise ValueError(f"Expected the labels in '{path}' to lie in {low}..{high}, but found {bad}.")


def _check_count(images: int, labels: int, images_path: Path, labels_path: Path) -> None:
    if images != labels:
        raise ValueError(
            f"Expected '{labels_path}' to hold one label per image of '{images_path}' ({images:,}),"
            f" but it holds {labels:,} labels."
        )


def _to_tensor(parts: list[np.ndarray]) -> torch.Tensor:
    """Concatenate per-split arrays into one tensor that owns writable, contiguous memory."""
    array = parts[0] if len(parts) == 1 else np.concatenate(parts)
    if not (array.flags.c_contiguous and array.flags.writeable):
        array = np.array(array, order="C", copy=True)
    return torch.from_numpy(array)


# --------------------------------------------------------------------------------------------
# File readers
# --------------------------------------------------------------------------------------------


def _read_bytes(path: Path) -> bytes:
    """Read a whole file, decompressing it first if its name ends in ``.gz``."""
    if path.suffix != ".gz":
        return path.read_bytes()
    try:
        with gzip.open(path, "rb") as stream:
            return stream.read()
    except (OSError, EOFError, zlib.error) as error:
        raise ValueError(f"Expected '{path}' to be a gzip file, but it cannot be decompressed: {error}") from error


def _read_idx_ubyte(path: Path, ndim: int) -> np.ndarray:
    """Read an idx file of unsigned bytes (the MNIST format): magic ``0x0000080N``, N sizes, data."""
    raw = _read_bytes(path)
    expected_magic = 0x00000800 + ndim
    magic = int.from_bytes(raw[:4], "big") if len(raw) >= 4 else None
    if magic != expected_magic:
        found = "the file is shorter than 4 bytes" if magic is None else f"found 0x{magic:08X}"
        raise ValueError(
            f"Expected '{path}' to be an idx file of unsigned bytes with {ndim} dimension(s), which starts"
            f" with the magic number 0x{expected_magic:08X}, but {found}."
        )
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"Expected '{path}' to hold a {header}-byte idx header, but it has {len(raw)} bytes.")
    shape = tuple(int(size) for size in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    expected = math.prod(shape)
    if len(raw) - header != expected:
        raise ValueError(
            f"Expected '{path}' to hold {expected:,} bytes of data for its shape {shape}, but it holds"
            f" {len(raw) - header:,}: the file is truncated or corrupt."
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def _read_pickle(path: Path) -> dict[str, Any]:
    """Read a CIFAR pickle (written by Python 2 or 3) as a dict with ``str`` keys."""
    try:
        with path.open("rb") as stream:
            content = NumpyOnlyUnpickler(stream, encoding="latin1").load()
    except Exception as error:  # a damaged pickle can fail in many ways; all mean the same here
        raise ValueError(f"Expected '{path}' to be a readable CIFAR pickle, but unpickling failed: {error}") from error
    if isinstance(content, dict):
        return {key.decode("latin1") if isinstance(key, bytes) else key: value for key, value in content.items()}
    raise ValueError(f"Expected '{path}' to hold a dict, but it holds a {type(content).__name__}.")


def _pickle_entry(content: dict[str, Any], key: str, path: Path) -> Any:
    if key not in content:
        raise ValueError(f"Expected '{path}' to hold the key {key!r}, but it holds {sorted(content)}.")
    return content[key]


def _as_names(values: Any, count: int, path: Path) -> tuple[str, ...]:
    names = tuple(value.decode() if isinstance(value, bytes) else str(value) for value in values)
    if len(names) != count:
        raise ValueError(f"Expected '{path}' to name {count} classes, but it names {len(names)}.")
    return names


# --------------------------------------------------------------------------------------------
# Sources that torchvision can download
# --------------------------------------------------------------------------------------------


class _DownloadableSource(DataSource):
    """Shared plumbing: arguments, the missing-file messages, download delegation and concatenation.

    A subclass names its files (:meth:`_required_files`), reads one split
    (:meth:`_load_split`) and asks torchvision to download (:meth:`_fetch`).

    Args:
        root: the folder torchvision's dataset class takes as ``root``.
        download: let :meth:`prepare` download missing files through torchvision.
        subsets: which official splits to load, out of ``("train", "test")``; they are
            concatenated training split first, whatever their order here.

    Raises:
        TypeError: if ``root`` is not a path, ``download`` not a bool, or ``subsets`` a string.
        ValueError: if ``subsets`` is empty, repeats a split, names an unknown one, or names one
            without labels.
    """

    #: The dataset's name as people write it, used in messages.
    title: ClassVar[str]
    #: The official splits, in the order they are concatenated.
    splits: ClassVar[tuple[str, ...]] = ("train", "test")
    #: Official splits without labels, which cannot be loaded.
    unlabeled_splits: ClassVar[tuple[str, ...]] = ()
    #: What ``root`` must hold, for messages.
    layout: ClassVar[str]
    num_classes: ClassVar[int] = 10

    def __init__(
        self,
        root: str | os.PathLike[str],
        download: bool = False,
        subsets: tuple[str, ...] = ("train", "test"),
    ) -> None:
        self.root = check_path("root", root)
        self.download = check_bool("download", download)
        self.subsets = _check_subsets(subsets, self.title, self.splits, self.unlabeled_splits)

    def prepare(self) -> None:
        """Download the dataset through torchvision if ``download=True`` and a file is missing."""
        if self.download and not all(self._find(name) is not None for name in self._required_files()):
            self._fetch()

    def load(self) -> SourceData:
        """Read the chosen subsets and concatenate them in the dataset's split order.

        Raises:
            FileNotFoundError: if ``root`` or one of the files is missing.
            NotADirectoryError: if ``root`` is not a folder.
            ValueError: if a file is truncated, corrupt, or holds labels out of range.
        """
        self._check_root_folder()
        for name in self._required_files():
            self._locate(name)
        classes = self._classes()
        inputs, targets = [], []
        for split in self.subsets:
            split_inputs, split_targets = self._load_split(split)
            inputs.append(split_inputs)
            targets.append(split_targets.astype(np.int64, copy=False))
        return SourceData(
            name=self.name,
            inputs=_to_tensor(inputs),
            targets=_to_tensor(targets),
            num_classes=self.num_classes,
            classes=classes,
        )

    def missing_files(self) -> dict[str, list[Path]]:
        """The files of each chosen subset that are absent from ``root`` (see :meth:`DataSource.missing_files`)."""
        self._check_root_folder()
        missing = {}
        for split in self.subsets:
            one_split = copy.copy(self)
            one_split.subsets = (split,)
            absent = [self.root / name for name in one_split._required_files() if self._find(name) is None]
            if absent:
                missing[split] = absent
        return missing

    def __repr__(self) -> str:
        arguments = f"root={str(self.root)!r}, download={self.download}, subsets={self.subsets}"
        return f"{type(self).__name__}({arguments})"

    @abstractmethod
    def _required_files(self) -> list[str]:
        """Paths, relative to ``root``, of every file the chosen subsets need."""

    @abstractmethod
    def _load_split(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        """Read one split as ``uint8`` images ``(N, C, H, W)`` and labels in ``[0, num_classes)``."""

    @abstractmethod
    def _fetch(self) -> None:
        """Download the files through torchvision."""

    def _classes(self) -> tuple[str, ...] | None:
        return None

    def _hint(self) -> str:
        if self.download:
            return "Call prepare() first to download them."
        return "Pass download=True to fetch them."

    def _check_root_folder(self) -> None:
        if not self.root.exists():
            raise FileNotFoundError(
                f"Expected `root` to be a folder holding {self.layout}, but '{self.root}' does not exist."
                f" {self._hint()}"
            )
        if not self.root.is_dir():
            raise NotADirectoryError(
                f"Expected `root` to be a folder holding {self.layout}, but '{self.root}' is not a folder."
            )

    def _find(self, name: str) -> Path | None:
        path = self.root / name
        return path if path.is_file() else None

    def _locate(self, name: str) -> Path:
        path = self._find(name)
        if path is None:
            raise FileNotFoundError(
                f"Expected `root` to hold {self.layout}, but '{self.root / name}' is missing. {self._hint()}"
            )
        return path


class _IdxSource(_DownloadableSource):
    """MNIST-style idx files in ``root/<folder>/raw/``, each plain or gzipped."""

    folder: ClassVar[str]
    class_names: ClassVar[tuple[str, ...]]
    _prefixes: ClassVar[dict[str, str]] = {"train": "train", "test": "t10k"}

    def _files(self, split: str) -> tuple[str, str]:
        prefix = f"{self.folder}/raw/{self._prefixes[split]}"
        return f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte"

    def _required_files(self) -> list[str]:
        return [name for split in self.subsets for name in self._files(split)]

    def _find(self, name: str) -> Path | None:
        # torchvision keeps both the download and its extracted copy; the plain file is faster.
        return super()._find(name) or super()._find(name + ".gz")

    def _load_split(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        images_path, labels_path = (self._locate(name) for name in self._files(split))
        images = _read_idx_ubyte(images_path, ndim=3)
        if images.shape[1:] != (28, 28):
            raise ValueError(f"Expected '{images_path}' to hold 28×28 images, but they are {images.shape[1:]}.")
        labels = _read_idx_ubyte(labels_path, ndim=1)
        _check_count(len(images), len(labels), images_path, labels_path)
        _check_labels(labels, 0, self.num_classes - 1, labels_path)
        return images[:, None], labels

    def _classes(self) -> tuple[str, ...]:
        return self.class_names

    def _fetch(self) -> None:
        from torchvision import datasets  # only downloads need it

        getattr(datasets, self.folder)(root=str(self.root), train=True, download=True)


class MNISTSource(_IdxSource):
    """MNIST handwritten digits: 60,000 training and 10,000 test images of 28×28 gray pixels.

    Reads ``root/MNIST/raw/`` as :class:`torchvision.datasets.MNIST` lays it out: the four
    idx files ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
    ``t10k-images-idx3-ubyte`` and ``t10k-labels-idx1-ubyte``, each plain or gzipped
    (``.gz``). Inputs are ``uint8`` of shape ``(N, 1, 28, 28)``; classes are ``"0"`` … ``"9"``.

    Args:
        root: the folder that holds ``MNIST/`` (torchvision's ``root``).
        download, subsets: as for every image source (see the module docstring).

    Example (not run: it needs the MNIST files in ``data/MNIST/raw``):
        >>> source = MNISTSource("data", subsets=("test",))
        >>> data = source.load()  # doctest: +SKIP
        >>> data.inputs.shape, data.inputs.dtype  # doctest: +SKIP
        (torch.Size([10000, 1, 28, 28]), torch.uint8)
    """

    name = "mnist"
    title = "MNIST"
    folder = "MNIST"
    class_names = _DIGIT_CLASSES
    layout = (
        "the MNIST idx files in 'MNIST/raw/' (train-images-idx3-ubyte, train-labels-idx1-ubyte,"
        " t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte; plain or .gz)"
    )


class FashionMNISTSource(_IdxSource):
    """Fashion-MNIST: 60,000 training and 10,000 test images of clothes, 28×28 gray pixels.

    The same idx files as :class:`MNISTSource`, in ``root/FashionMNIST/raw/`` as
    :class:`torchvision.datasets.FashionMNIST` lays them out. Inputs are ``uint8`` of shape
    ``(N, 1, 28, 28)``; classes are the dataset's ten names (``"T-shirt/top"`` … ``"Ankle boot"``).

    Args:
        root: the folder that holds ``FashionMNIST/`` (torchvision's ``root``).
        download, subsets: as for every image source (see the module docstring).

    Example (not run: it needs the Fashion-MNIST files in ``data/FashionMNIST/raw``):
        >>> source = FashionMNISTSource("data")
        >>> data = source.load()  # doctest: +SKIP
        >>> len(data), data.classes[0]  # doctest: +SKIP
        (70000, 'T-shirt/top')
    """

    name = "fashion_mnist"
    title = "Fashion-MNIST"
    folder = "FashionMNIST"
    class_names = _FASHION_MNIST_CLASSES
    layout = (
        "the Fashion-MNIST idx files in 'FashionMNIST/raw/' (train-images-idx3-ubyte,"
        " train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte; plain or .gz)"
    )


class _CIFARSource(_DownloadableSource):
    """The pickled CIFAR batches: each a dict with ``data`` (N×3072 bytes, CHW) and labels."""

    folder: ClassVar[str]
    batches: ClassVar[dict[str, tuple[str, ...]]]
    meta_file: ClassVar[str]
    labels_key: ClassVar[str]
    names_key: ClassVar[str]
    torchvision_class: ClassVar[str]

    def _required_files(self) -> list[str]:
        names = [batch for split in self.subsets for batch in self.batches[split]]
        return [f"{self.folder}/{name}" for name in [*names, self.meta_file]]

    def _load_split(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        images, labels = [], []
        for batch in self.batches[split]:
            path = self._locate(f"{self.folder}/{batch}")
            content = _read_pickle(path)
            data = _pickle_entry(content, "data", path)
            batch_labels = np.asarray(_pickle_entry(content, self.labels_key, path))
            if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
                described = (
                    f"{data.dtype} array of shape {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
                )
                raise ValueError(
                    f"Expected 'data' in '{path}' to be a uint8 array of shape (N, 3072), but got {described}."
                )
            _check_count(len(data), len(batch_labels), path, path)
            _check_labels(batch_labels, 0, self.num_classes - 1, path)
            images.append(data.reshape(-1, 3, 32, 32))
            labels.append(batch_labels)
        return np.concatenate(images), np.concatenate(labels)

    def _classes(self) -> tuple[str, ...]:
        path = self._locate(f"{self.folder}/{self.meta_file}")
        return _as_names(_pickle_entry(_read_pickle(path), self.names_key, path), self.num_classes, path)

    def _fetch(self) -> None:
        from torchvision import datasets  # only downloads need it

        getattr(datasets, self.torchvision_class)(root=str(self.root), train=True, download=True)


class CIFAR10Source(_CIFARSource):
    """CIFAR-10: 50,000 training and 10,000 test colour images of 32×32 pixels, 10 classes.

    Reads ``root/cifar-10-batches-py/`` as :class:`torchvision.datasets.CIFAR10` extracts it:
    the pickled ``data_batch_1`` … ``data_batch_5`` (train), ``test_batch`` (test) and
    ``batches.meta`` (class names). Inputs are ``uint8`` of shape ``(N, 3, 32, 32)``.

    Args:
        root: the folder that holds ``cifar-10-batches-py/`` (torchvision's ``root``).
        download, subsets: as for every image source (see the module docstring).

    Example (not run: it needs the CIFAR-10 files in ``data/cifar-10-batches-py``):
        >>> source = CIFAR10Source("data", subsets=("train",))
        >>> data = source.load()  # doctest: +SKIP
        >>> data.sample_shape, data.classes[:2]  # doctest: +SKIP
        ((3, 32, 32), ('airplane', 'automobile'))
    """

    name = "cifar10"
    title = "CIFAR-10"
    folder = "cifar-10-batches-py"
    batches: ClassVar[dict[str, tuple[str, ...]]] = {
        "train": tuple(f"data_batch_{index}" for index in range(1, 6)),
        "test": ("test_batch",),
    }
    meta_file = "batches.meta"
    labels_key = "labels"
    names_key = "label_names"
    torchvision_class = "CIFAR10"
    layout = "the CIFAR-10 batches in 'cifar-10-batches-py/' (data_batch_1 … data_batch_5, test_batch, batches.meta)"


class CIFAR100Source(_CIFARSource):
    """CIFAR-100: 50,000 training and 10,000 test colour images of 32×32 pixels, 100 classes.

    Reads ``root/cifar-100-python/`` as :class:`torchvision.datasets.CIFAR100` extracts it:
    the pickled ``train``, ``test`` and ``meta`` files. Targets are the 100 fine labels (not
    the 20 coarse superclasses). Inputs are ``uint8`` of shape ``(N, 3, 32, 32)``.

    Args:
        root: the folder that holds ``cifar-100-python/`` (torchvision's ``root``).
        download, subsets: as for every image source (see the module docstring).

    Example (not run: it needs the CIFAR-100 files in ``data/cifar-100-python``):
        >>> source = CIFAR100Source("data")
        >>> data = source.load()  # doctest: +SKIP
        >>> data.num_classes, data.classes[0]  # doctest: +SKIP
        (100, 'apple')
    """

    name = "cifar100"
    title = "CIFAR-100"
    num_classes = 100
    folder = "cifar-100-python"
    batches: ClassVar[dict[str, tuple[str, ...]]] = {"train": ("train",), "test": ("test",)}
    meta_file = "meta"
    labels_key = "fine_labels"
    names_key = "fine_label_names"
    torchvision_class = "CIFAR100"
    layout = "the CIFAR-100 files in 'cifar-100-python/' (train, test, meta)"


class STL10Source(_DownloadableSource):
    """STL-10's labelled images: 5,000 training and 8,000 test colour images of 96×96 pixels.

    Reads ``root/stl10_binary/`` as :class:`torchvision.datasets.STL10` extracts it:
    ``train_X.bin`` / ``train_y.bin`` and ``test_X.bin`` / ``test_y.bin``, plus
    ``class_names.txt`` for the class names (optional, as in torchvision). The binaries store
    each image column by column; they are transposed so that images are upright, and the
    labels 1…10 on disk become 0…9. Inputs are ``uint8`` of shape ``(N, 3, 96, 96)``. The
    ``"unlabeled"`` split has no labels and cannot be loaded.

    Args:
        root: the folder that holds ``stl10_binary/`` (torchvision's ``root``).
        download, subsets: as for every image source (see the module docstring); ``"unlabeled"``
            has no labels and is refused.

    Example (not run: it needs the STL-10 files in ``data/stl10_binary``):
        >>> source = STL10Source("data", subsets=("test",))
        >>> data = source.load()  # doctest: +SKIP
        >>> data.sample_shape  # doctest: +SKIP
        (3, 96, 96)
    """

    name = "stl10"
    title = "STL-10"
    splits = ("train", "test")
    unlabeled_splits = ("unlabeled",)
    folder = "stl10_binary"
    class_names_file = "class_names.txt"
    layout = "the STL-10 binaries in 'stl10_binary/' (train_X.bin, train_y.bin, test_X.bin, test_y.bin)"
    _image_bytes = 3 * 96 * 96

    def _required_files(self) -> list[str]:
        return [f"{self.folder}/{split}_{part}.bin" for split in self.subsets for part in ("X", "y")]

    def _load_split(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        images_path = self._locate(f"{self.folder}/{split}_X.bin")
        labels_path = self._locate(f"{self.folder}/{split}_y.bin")
        raw = np.fromfile(images_path, dtype=np.uint8)
        if raw.size % self._image_bytes:
            raise ValueError(
                f"Expected '{images_path}' to hold whole 3×96×96 images ({self._image_bytes:,} bytes each),"
                f" but its {raw.size:,} bytes leave {raw.size % self._image_bytes:,} over:"
                " the file is truncated or corrupt."
            )
        # Each image is stored channel by channel, and each channel column by column (W, H).
        images = raw.reshape(-1, 3, 96, 96).transpose(0, 1, 3, 2)
        labels = np.fromfile(labels_path, dtype=np.uint8)
        _check_count(len(images), len(labels), images_path, labels_path)
        _check_labels(labels, 1, 10, labels_path)
        return np.ascontiguousarray(images), labels.astype(np.int64) - 1

    def _classes(self) -> tuple[str, ...] | None:
        path = self.root / self.folder / self.class_names_file
        if not path.is_file():
            return None
        names = [line.strip() for line in path.read_text().splitlines() if line.strip()]
        return _as_names(names, self.num_classes, path)

    def _fetch(self) -> None:
        from torchvision import datasets  # only downloads need it

        datasets.STL10(root=str(self.root), split="train", download=True)


class SVHNSource(_DownloadableSource):
    """SVHN street-view house numbers, cropped digits: colour images of 32×32 pixels.

    Reads ``root/train_32x32.mat`` (73,257 images), ``root/test_32x32.mat`` (26,032) and
    ``root/extra_32x32.mat`` (531,131) as :class:`torchvision.datasets.SVHN` downloads them:
    MATLAB files with ``X`` of shape ``(32, 32, 3, N)`` and ``y`` in 1…10, where 10 stands for
    the digit 0 and is read as class 0. Inputs are ``uint8`` of shape ``(N, 3, 32, 32)``;
    classes are ``"0"`` … ``"9"``. Reading needs scipy.

    Args:
        root: the folder that holds the ``.mat`` files (torchvision's ``root``).
        subsets: which official splits to load, out of ``("train", "test", "extra")``; they
            are concatenated in that order, whatever their order here.

    Example (not run: it needs the SVHN files in ``data/``):
        >>> source = SVHNSource("data", subsets=("train", "extra"))
        >>> data = source.load()  # doctest: +SKIP
        >>> len(data)  # doctest: +SKIP
        604388
    """

    name = "svhn"
    title = "SVHN"
    splits = ("train", "test", "extra")
    layout = "the SVHN files train_32x32.mat, test_32x32.mat and (for 'extra') extra_32x32.mat"

    def _required_files(self) -> list[str]:
        return [f"{split}_32x32.mat" for split in self.subsets]

    def _load_split(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        from scipy.io import loadmat, whosmat

        path = self._locate(f"{split}_32x32.mat")
        try:
            content = loadmat(path, variable_names=["X", "y"])
        except Exception as error:  # scipy reports a damaged file with many exception types
            raise ValueError(f"Expected '{path}' to be a readable MATLAB file, but reading failed: {error}") from error
        if "X" not in content or "y" not in content:
            held = sorted(name for name, _shape, _kind in whosmat(path))
            raise ValueError(f"Expected '{path}' to hold the variables 'X' and 'y', but it holds {held}.")
        images, labels = content["X"], np.asarray(content["y"]).reshape(-1)
        if images.dtype != np.uint8 or images.ndim != 4 or images.shape[:3] != (32, 32, 3):
            raise ValueError(
                f"Expected 'X' in '{path}' to be a uint8 array of shape (32, 32, 3, N),"
                f" but got a {images.dtype} array of shape {images.shape}."
            )
        _check_count(images.shape[3], len(labels), path, path)
        _check_labels(labels, 1, 10, path)
        labels = labels.astype(np.int64) % 10  # the digit 0 is stored as 10
        # X is indexed (row, column, channel, sample).
        return np.ascontiguousarray(images.transpose(3, 2, 0, 1)), labels

    def _classes(self) -> tuple[str, ...]:
        return _DIGIT_CLASSES

    def _fetch(self) -> None:
        from torchvision import datasets  # only downloads need it

        for split in self.subsets:
            if self._find(f"{split}_32x32.mat") is None:
                datasets.SVHN(root=str(self.root), split=split, download=True)


# --------------------------------------------------------------------------------------------
# Tiny ImageNet (local only)
# --------------------------------------------------------------------------------------------


def _read_images(paths: Sequence[Path], size: tuple[int, int], description: str) -> np.ndarray:
    """Decode image files as RGB ``uint8`` ``(N, 3, H, W)`` in threads, with a progress bar for many."""
    from PIL import Image
    from tqdm.auto import tqdm

    height, width = size
    images = np.empty((len(paths), height, width, 3), dtype=np.uint8)

    def read(index: int) -> None:
        path = paths[index]
        try:
            with Image.open(path) as image:
                rgb = image.convert("RGB")  # also turns grayscale JPEGs into three equal channels
        except OSError as error:
            raise ValueError(f"Expected '{path}' to be a readable image, but reading it failed: {error}") from error
        if rgb.size != (width, height):
            raise ValueError(f"Expected '{path}' to be {width}×{height} pixels, but it is {rgb.size[0]}×{rgb.size[1]}.")
        images[index] = np.asarray(rgb)

    pool = ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1))
    try:
        with tqdm(total=len(paths), desc=description, unit="img", disable=len(paths) <= _PROGRESS_MIN_FILES) as bar:
            for _ in pool.map(read, range(len(paths))):
                bar.update()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return np.ascontiguousarray(images.transpose(0, 3, 1, 2))


class TinyImageNetSource(DataSource):
    """Tiny ImageNet: 200 classes of 64×64 colour images (500 training and 50 validation each).

    Reads the folder that ``tiny-imagenet-200.zip`` unpacks to, from ``root/tiny-imagenet-200/``
    or from ``root`` itself when it is that folder: ``wnids.txt`` (the 200 WordNet ids),
    ``train/<wnid>/images/*.JPEG``, ``val/images/*.JPEG`` with ``val/val_annotations.txt``
    (tab-separated file name, WordNet id, box), and optionally ``words.txt`` for readable
    class names (the first synonym of each id; the id itself without the file).

    Class indices follow the sorted WordNet ids, as :class:`torchvision.datasets.ImageFolder`
    would number ``train/``. Training images come class by class, sorted by file name;
    validation images in the order of ``val_annotations.txt``. Grayscale JPEGs become three
    equal channels. Inputs are ``uint8`` of shape ``(N, 3, 64, 64)``. The ``"test"`` split has
    no labels and cannot be loaded; nothing is ever downloaded.

    Args:
        root: ``tiny-imagenet-200/`` or the folder that holds it.
        download: must be ``False``; present so that every image source takes the same arguments.
        subsets: which official splits to load, out of ``("train", "val")``; they are
            concatenated training split first, whatever their order here.

    Raises:
        TypeError: if ``root`` is not a path, ``download`` not a bool, or ``subsets`` a string.
        ValueError: if ``download`` is ``True``, or ``subsets`` is empty, repeats a split,
            names an unknown one, or names ``"test"``.

    Example (not run: it needs the Tiny ImageNet files in ``data/tiny-imagenet-200``):
        >>> source = TinyImageNetSource("data", subsets=("val",))
        >>> data = source.load()  # doctest: +SKIP
        >>> data.inputs.shape, data.num_classes  # doctest: +SKIP
        (torch.Size([10000, 3, 64, 64]), 200)
    """

    name = "tiny_imagenet"
    title: ClassVar[str] = "Tiny ImageNet"
    splits: ClassVar[tuple[str, ...]] = ("train", "val")
    folder: ClassVar[str] = "tiny-imagenet-200"
    layout: ClassVar[str] = "the Tiny ImageNet folder 'tiny-imagenet-200/' (wnids.txt, train/, val/)"
    _image_suffixes: ClassVar[frozenset[str]] = frozenset({".jpeg", ".jpg"})

    def __init__(
        self,
        root: str | os.PathLike[str],
        download: bool = False,
        subsets: tuple[str, ...] = ("train", "val"),
    ) -> None:
        self.root = check_path("root", root)
        if check_bool("download", download):
            raise ValueError(
                "Expected `download` to be False because Tiny ImageNet cannot be downloaded through"
                " torchvision, but got True. Unzip tiny-imagenet-200.zip (http://cs231n.stanford.edu/tiny-imagenet-200.zip)"
                " into `root` instead."
            )
        self.download = False
        self.subsets = _check_subsets(subsets, self.title, self.splits, unlabeled=("test",))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(root={str(self.root)!r}, subsets={self.subsets})"

    def load(self) -> SourceData:
        """Read the chosen subsets and concatenate them, training split first.

        Raises:
            FileNotFoundError: if the folder, ``wnids.txt``, a class folder, the validation
                annotations or an annotated image is missing.
            ValueError: if an image cannot be decoded or is not 64×64, or an annotation is malformed.
        """
        folder = self._dataset_folder()
        wnids = self._read_wnids(folder / "wnids.txt")
        index_of = {wnid: index for index, wnid in enumerate(wnids)}
        inputs, targets = [], []
        for split in self.subsets:
            paths, labels = self._train_files(folder, wnids) if split == "train" else self._val_files(folder, index_of)
            inputs.append(_read_images(paths, (64, 64), f"Reading Tiny ImageNet {split}"))
            targets.append(np.asarray(labels, dtype=np.int64))
        return SourceData(
            name=self.name,
            inputs=_to_tensor(inputs),
            targets=_to_tensor(targets),
            num_classes=len(wnids),
            classes=self._class_names(folder / "words.txt", wnids),
        )

    def missing_files(self) -> dict[str, list[Path]]:
        """The training folder or validation labels of each chosen subset that are absent from ``root``.

        Raises:
            FileNotFoundError: neither ``root/tiny-imagenet-200/wnids.txt`` nor ``root/wnids.txt`` exists.
            NotADirectoryError: ``root`` is a file.
        """
        folder = self._dataset_folder()
        needed = {"train": folder / "train", "val": folder / "val" / "val_annotations.txt"}
        return {split: [needed[split]] for split in self.subsets if not needed[split].exists()}

    def _dataset_folder(self) -> Path:
        if not self.root.exists():
            raise FileNotFoundError(
                f"Expected `root` to be a folder holding {self.layout}, but '{self.root}' does not exist."
            )
        if not self.root.is_dir():
            raise NotADirectoryError(
                f"Expected `root` to be a folder holding {self.layout}, but '{self.root}' is not a folder."
            )
        for candidate in (self.root / self.folder, self.root):
            if (candidate / "wnids.txt").is_file():
                return candidate
        raise FileNotFoundError(
            f"Expected `root` to hold {self.layout} or to be that folder, but neither"
            f" '{self.root / self.folder / 'wnids.txt'}' nor '{self.root / 'wnids.txt'}' exists."
        )

    @staticmethod
    def _read_wnids(path: Path) -> list[str]:
        wnids = [line.strip() for line in path.read_text().splitlines() if line.strip()]
        if not wnids:
            raise ValueError(f"Expected '{path}' to list one WordNet id per line, but it is empty.")
        if len(set(wnids)) != len(wnids):
            duplicate = next(wnid for wnid in wnids if wnids.count(wnid) > 1)
            raise ValueError(f"Expected '{path}' to list each WordNet id once, but {duplicate!r} repeats.")
        return sorted(wnids)

    def _train_files(self, folder: Path, wnids: list[str]) -> tuple[list[Path], list[int]]:
        paths: list[Path] = []
        labels: list[int] = []
        for index, wnid in enumerate(wnids):
            images = folder / "train" / wnid / "images"
            if not images.is_dir():
                raise FileNotFoundError(
                    f"Expected `root` to hold {self.layout} with a training folder for every id in wnids.txt,"
                    f" but '{images}' is missing."
                )
            files = sorted(path for path in images.iterdir() if path.suffix.lower() in self._image_suffixes)
            paths.extend(files)
            labels.extend([index] * len(files))
        return paths, labels

    def _val_files(self, folder: Path, index_of: dict[str, int]) -> tuple[list[Path], list[int]]:
        annotations = folder / "val" / "val_annotations.txt"
        if not annotations.is_file():
            raise FileNotFoundError(
                f"Expected `root` to hold {self.layout} with the validation labels, but '{annotations}' is missing."
            )
        paths: list[Path] = []
        labels: list[int] = []
        for number, line in enumerate(annotations.read_text().splitlines(), start=1):
            if not line.strip():
                continue
            fields = line.split("\t")
            if len(fields) < 2 or fields[1] not in index_of:
                raise ValueError(
                    f"Expected line {number} of '{annotations}' to be a file name, a tab and a WordNet id"
                    f" from wnids.txt, but got {line!r}."
                )
            path = folder / "val" / "images" / fields[0]
            if not path.is_file():
                raise FileNotFoundError(
                    f"Expected `root` to hold every validation image listed in '{annotations}', but '{path}'"
                    " is missing."
                )
            paths.append(path)
            labels.append(index_of[fields[1]])
        return paths, labels

    @staticmethod
    def _class_names(path: Path, wnids: list[str]) -> tuple[str, ...]:
        words: dict[str, str] = {}
        if path.is_file():
            wanted = set(wnids)
            for line in path.read_text().splitlines():
                wnid, _, names = line.partition("\t")
                if wnid in wanted and names.strip():
                    words[wnid] = names.split(",")[0].strip()
        return tuple(words.get(wnid, wnid) for wnid in wnids)


# --------------------------------------------------------------------------------------------
# Making one source's samples look like another's
# --------------------------------------------------------------------------------------------


def _target_layout(sample_shape: Sequence[int]) -> tuple[int, tuple[int, int]]:
    """Return the channels and the (H, W) size of a requested sample shape."""
    if isinstance(sample_shape, (str, bytes)) or not isinstance(sample_shape, Sequence):
        raise TypeError(f"Expected `sample_shape` to be a tuple of ints, but got {sample_shape!r}.")
    shape = tuple(sample_shape)
    if not all(isinstance(size, int) and not isinstance(size, bool) and size > 0 for size in shape):
        raise ValueError(f"Expected `sample_shape` to hold positive ints, but got {shape}.")
    if len(shape) == 3:
        channels, height, width = shape
        if channels not in (1, 3):
            raise ValueError(
                f"Expected `sample_shape` (C, H, W) to have 1 (gray) or 3 (RGB) channels, but got {shape}."
            )
        return channels, (height, width)
    if len(shape) == 1:
        side = math.isqrt(shape[0])
        if side * side != shape[0]:
            raise ValueError(
                "Expected `sample_shape` (D,) to be a flattened square grayscale image, so D a square number"
                f" such as 64 for 8×8, but got {shape}."
            )
        return 1, (side, side)
    raise ValueError(
        "Expected `sample_shape` to be (C, H, W) for images or (D,) for flattened square grayscale images,"
        f" but got {shape}."
    )


def _as_images(data: SourceData) -> torch.Tensor:
    """View a source's inputs as ``(N, C, H, W)`` with C in {1, 3}."""
    inputs = data.inputs
    if inputs.dtype != torch.uint8 and not inputs.dtype.is_floating_point:
        raise TypeError(
            f"Expected `data` to hold uint8 images or floating-point features, but {data.name!r} holds {inputs.dtype}."
        )
    if inputs.ndim == 4 and inputs.shape[1] in (1, 3):
        return inputs
    if inputs.ndim == 2 and inputs.shape[1] > 0 and math.isqrt(inputs.shape[1]) ** 2 == inputs.shape[1]:
        side = math.isqrt(inputs.shape[1])
        return inputs.reshape(-1, 1, side, side)
    raise ValueError(
        "Expected `data` to hold images (N, C, H, W) with 1 or 3 channels, or flattened square grayscale"
        f" images (N, D), but {data.name!r} holds samples of shape {tuple(inputs.shape[1:])}."
    )


def conform_inputs(data: SourceData, sample_shape: tuple[int, ...], dtype: torch.dtype) -> SourceData:
    """Convert a source's samples to another dataset's sample shape and dtype.

    This lets an out-of-distribution source be inserted into a task dataset: STL-10's 96×96
    RGB images into CIFAR-10's 32×32, MNIST's 28×28 gray digits into CIFAR-10 (gray repeated
    into three channels), CIFAR into MNIST (RGB to gray with the ITU-R BT.601 luma weights
    0.299, 0.587, 0.114), or any image into scikit-learn digits' 64 features (gray, 8×8,
    flattened). Sizes change by bilinear interpolation with antialiasing, in chunks to bound
    memory. ``uint8`` values are read as 0–255 and floating-point values as 0–1; the result is
    rounded and clamped to 0–255 for ``uint8`` and clamped to ``[0, 1]`` otherwise. Targets,
    classes and the name are kept. Data that already has the requested shape and dtype is
    returned as it is.

    Args:
        data: the source to convert: ``(N, C, H, W)`` images with 1 or 3 channels, or
            ``(N, D)`` features that are flattened square grayscale images (such as digits).
        sample_shape: the shape of one converted sample: ``(C, H, W)`` with C of 1 or 3, or
            ``(D,)`` with D a square number, for a flattened grayscale image.
        dtype: ``torch.uint8`` or a floating-point dtype.

    Raises:
        TypeError: if ``sample_shape`` is not a tuple, ``dtype`` not a ``torch.dtype``, or
            ``data`` holds neither ``uint8`` nor floating-point inputs.
        ValueError: if ``sample_shape`` is neither of the two forms, ``dtype`` is another
            integer type, or ``data``'s samples are not images.

    Example:
        >>> gray = SourceData(
        ...     name="gray",
        ...     inputs=torch.full((2, 1, 28, 28), 200, dtype=torch.uint8),
        ...     targets=torch.zeros(2, dtype=torch.int64),
        ...     num_classes=1,
        ... )
        >>> rgb = conform_inputs(gray, (3, 32, 32), torch.uint8)
        >>> rgb.sample_shape, rgb.inputs.unique().tolist()
        ((3, 32, 32), [200])
        >>> conform_inputs(rgb, (64,), torch.float32).inputs.shape
        torch.Size([2, 64])
    """
    channels, size = _target_layout(sample_shape)
    if not isinstance(dtype, torch.dtype):
        raise TypeError(f"Expected `dtype` to be a torch.dtype, but got {type(dtype).__name__}.")
    if dtype != torch.uint8 and not dtype.is_floating_point:
        raise ValueError(f"Expected `dtype` to be torch.uint8 or a floating-point dtype, but got {dtype}.")
    shape = tuple(sample_shape)
    if data.sample_shape == shape and data.inputs.dtype == dtype:
        return data

    images = _as_images(data)
    scale = 255.0 if images.dtype == torch.uint8 else 1.0
    count = images.shape[0]
    inputs = torch.empty((count, *shape), dtype=dtype)
    per_sample = max(images[0].numel() if count else 1, channels * size[0] * size[1])
    chunk = max(1, _CONFORM_CHUNK_VALUES // per_sample)
    luma = torch.tensor(_LUMA_WEIGHTS).view(1, 3, 1, 1)
    for start in range(0, count, chunk):
        batch = images[start : start + chunk].to(torch.float32) / scale
        if channels == 1 and batch.shape[1] == 3:
            batch = (batch * luma).sum(dim=1, keepdim=True)  # before resizing: a third of the work
        if tuple(batch.shape[-2:]) != size:
            batch = F.interpolate(batch, size=size, mode="bilinear", align_corners=False, antialias=True)
        if channels == 3 and batch.shape[1] == 1:
            batch = batch.expand(-1, 3, -1, -1)  # after resizing, for the same reason
        batch = batch.clamp(0.0, 1.0)
        if dtype == torch.uint8:
            batch = (batch * 255.0).round()
        inputs[start : start + chunk] = batch.reshape(-1, *shape).to(dtype)
    return SourceData(
        name=data.name,
        inputs=inputs,
        targets=data.targets,
        num_classes=data.num_classes,
        classes=data.classes,
    )
