"""What every data source is: a :class:`DataSource` loads a whole labelled dataset as a :class:`SourceData`.

A :class:`DataSource` knows one dataset's on-disk format and nothing about unlearning. The
:class:`~lightning_unlearn.datamodules.UnlearningDataModule` draws every split from the
tensors a source returns, so a new dataset needs only a new source.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

__all__ = ["DataSource", "SourceData"]


@dataclass(frozen=True)
class SourceData:
    """A whole labelled dataset held in memory.

    Args:
        name: short name of the dataset, such as ``"digits"`` or ``"cifar10"``.
        inputs: all samples, ``(N, *sample_shape)``; ``uint8`` images (0–255, channels first)
            or ``float32`` features.
        targets: the class of each sample, ``(N,)``, ``int64`` in ``[0, num_classes)``.
        num_classes: how many classes the dataset has.
        classes: optional human-readable class names, ``len(classes) == num_classes``.
    """

    name: str
    inputs: torch.Tensor
    targets: torch.Tensor
    num_classes: int
    classes: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.inputs.shape[0] != self.targets.shape[0]:
            raise ValueError(
                f"Expected `inputs` and `targets` of {self.name!r} to hold the same number of samples,"
                f" but got {self.inputs.shape[0]:,} inputs and {self.targets.shape[0]:,} targets."
            )
        if self.targets.dtype != torch.int64:
            raise TypeError(f"Expected `targets` of {self.name!r} to be int64, but got {self.targets.dtype}.")
        if self.classes is not None and len(self.classes) != self.num_classes:
            raise ValueError(f"Expected {self.num_classes} class names for {self.name!r}, but got {len(self.classes)}.")

    def __len__(self) -> int:
        return int(self.targets.shape[0])

    @property
    def sample_shape(self) -> tuple[int, ...]:
        """Shape of one sample, without the batch dimension."""
        return tuple(self.inputs.shape[1:])

    def fingerprint(self) -> str:
        """A short hash of the labels and shape: a manifest records it to refuse other data."""
        digest = hashlib.sha256()
        digest.update(self.name.encode())
        digest.update(repr((len(self), self.sample_shape, self.num_classes)).encode())
        digest.update(self.targets.numpy().astype(np.int64).tobytes())
        return digest.hexdigest()[:16]


class DataSource(ABC):
    """Loads one dataset from disk (or from a package) as a :class:`SourceData`.

    Subclasses implement :meth:`load`; those that can download implement :meth:`prepare`,
    which the datamodule calls once, on one process, before any :meth:`load`; those that
    read known files from disk implement :meth:`missing_files`, so that a missing file is
    reported before an experiment trains anything.
    """

    #: Short name used in summaries and manifests.
    name: str = "source"

    def prepare(self) -> None:
        """Download or unpack files if this source is allowed to (default: nothing to do)."""
        return None

    def missing_files(self) -> dict[str, list[Path]]:
        """The files :meth:`load` would read that are absent, by official split; nothing is read.

        Returns:
            ``split → missing paths``, for the splits with a missing file; empty when every
            file is there or when the source cannot tell cheaply (the default).

        Raises:
            FileNotFoundError: the folder the files should be in does not exist.
            NotADirectoryError: that folder is a file.
        """
        return {}

    @abstractmethod
    def load(self) -> SourceData:
        """Read every sample of the dataset into memory."""
