"""``UnlearningDataModule``: every split an unlearning experiment needs, from one seed."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Literal, NamedTuple

import lightning as L
import numpy as np
import torch
from lightning.pytorch.utilities import rank_zero_info
from torch.utils.data import DataLoader, Dataset

from lightning_unlearn.datamodules.sources import DataSource, SourceData
from lightning_unlearn.datamodules.splits import (
    FORGET_KINDS,
    SPLIT_NAMES,
    ForgetKind,
    Split,
    UnlearningSplits,
    build_splits,
)
from lightning_unlearn.storage import atomic_write_text

__all__ = ["IndexedBatch", "SplitDataset", "SplitReader", "UnlearningDataModule"]

MANIFEST_FORMAT = "lightning-unlearn/split-manifest"
MANIFEST_VERSION = 2

_SPLIT_NOTES = {
    "target_train": "members: retain ∪ forget",
    "retain": "target_train minus forget",
    "forget": "the samples to remove",
    "probe": "≤ 1 % of retain",
    "test": "ID non-members (accuracy)",
    "reference": "non-members for P",
    "heldout": "MIA negatives, forget's distribution",
    "validation": "ID non-members for decisions",
    "validation_heldout": "MIA negatives for decisions",
    "shadow_train": "shadow members",
    "shadow_test": "shadow non-members",
}


def _describe_dataset(entry: Any) -> str:
    if not isinstance(entry, dict):
        return "no dataset"
    return f"{entry.get('name')!r} ({entry.get('num_samples', 0):,} samples, fingerprint {entry.get('fingerprint')})"


class IndexedBatch(NamedTuple):
    """One batch: inputs, the label each sample carries in its split, and global indices.

    The global index identifies a sample across splits and processes, so evaluation can drop
    the duplicates a distributed sampler adds.
    """

    inputs: torch.Tensor
    targets: torch.Tensor
    indices: torch.Tensor


class SplitDataset(Dataset):
    """The samples of one split, yielding ``(input, label, global_index)``.

    ``uint8`` images are scaled to ``[0, 1]`` float32 on the fly, so a whole image dataset
    stays in memory at a quarter of the float size.
    """

    def __init__(self, inputs: torch.Tensor, split: Split) -> None:
        self.inputs = inputs
        self.indices = torch.from_numpy(split.indices)
        self.labels = torch.from_numpy(split.labels)

    def __len__(self) -> int:
        return int(self.indices.shape[0])

    @staticmethod
    def _as_float(x: torch.Tensor) -> torch.Tensor:
        return x.float().div_(255.0) if x.dtype == torch.uint8 else x

    def __getitem__(self, position: int) -> IndexedBatch:
        index = self.indices[position]
        return IndexedBatch(self._as_float(self.inputs[index]), self.labels[position], index)

    def __getitems__(self, positions: list[int]) -> list[IndexedBatch]:
        # One gather for the whole batch instead of one per sample.
        chosen = torch.as_tensor(positions, dtype=torch.long)
        indices = self.indices[chosen]
        inputs = self._as_float(self.inputs[indices])
        labels = self.labels[chosen]
        return [IndexedBatch(x, y, i) for x, y, i in zip(inputs, labels, indices)]


class SplitReader:
    """A module that chooses which splits it trains and validates on.

    While a Trainer fits (or validates) a ``SplitReader`` with an :class:`UnlearningDataModule`,
    the datamodule's ``train_dataloader`` and ``val_dataloader`` return the module's own. Every
    :class:`~lightning_unlearn.modules.UnlearningMethod` is one: this is how
    ``trainer.fit(method, datamodule=dm)`` gives a method ``retain`` (or ``forget``) rather than
    ``target_train``.
    """

    def train_dataloader(self) -> Any:
        raise NotImplementedError

    def val_dataloader(self) -> Any:
        raise NotImplementedError


class UnlearningDataModule(L.LightningDataModule):
    """Builds, deterministically from ``seed``, every split of an unlearning experiment.

    The splits (see docs/evaluation.md, Splits): ``target_train`` (members, ``retain ∪ forget``), ``retain``,
    ``forget``, ``probe`` (≤ 1 % of retain), ``test`` (ID non-members), ``reference``
    (non-members for a method's reference posterior), ``heldout`` (non-members from the
    forget set's own distribution: the negatives of every MIA score in the report), the
    validation pair ``validation`` (ID non-members) and ``validation_heldout`` (non-members
    like the forget set) that every decision made while unlearning reads instead of ``test``
    and ``heldout``, and ``shadow_train`` and ``shadow_test`` (the disjoint other half, with
    its own OOD insertions, for the shadow model and the membership oracle). See
    :func:`~lightning_unlearn.datamodules.build_splits` for how each kind of forget set is drawn.

    The splits depend on the data and the settings alone, so every DDP rank builds the same
    ones. A manifest (JSON of every split's indices and labels) can be saved with
    :meth:`save_manifest` and passed back as ``manifest`` to reproduce or audit a forget set.

    ``side`` chooses what Lightning's loops see: ``"target"`` trains on ``target_train``,
    validates on ``validation`` and tests on ``test``; ``"shadow"`` uses ``shadow_train`` and ``shadow_test``. Any
    split is available with :meth:`dataloader`.

    Args:
        source: where the task's samples come from.
        kind: the forget set: ``id``, ``ood_label_split``, ``ood_foreign``, ``ood_mislabeled``
            or ``poison``.
        forget_size: samples to forget (defaults: 10 % of training data for ``id``, a fifth of
            the OOD pool for OOD kinds; ``poison`` takes it from ``flip_rate``).
        seed: seeds every split.
        ood_source: the other dataset for ``ood_foreign`` and ``ood_mislabeled``.
        split_class: for ``ood_label_split``, the first class that becomes OOD.
        ood_label_map: for ``ood_mislabeled``, OOD class → task class.
        flip_source: for ``poison``, the class ``a`` of the flip ``a → b``.
        flip_target: for ``poison``, the class ``b``.
        flip_rate: for ``poison``, the fraction of class ``a``'s training samples flipped.
        target_fraction: share of ID data on the target side (the rest is the shadow's).
        test_fraction: share of each side's ID data held out as test data.
        probe_fraction: size of ``probe`` relative to ``retain``, at most 0.01.
        validation_fraction: share of the target's ID test samples that form ``validation``.
        validation_heldout_fraction: share of the forget-like non-members (otherwise
            ``reference``) that form ``validation_heldout``.
        side: ``"target"`` or ``"shadow"``: which model Lightning's loops train and evaluate.
        batch_size: training batch size.
        eval_batch_size: evaluation batch size (default: ``4 * batch_size``).
        num_workers: DataLoader workers.
        manifest: a saved manifest to load the splits from instead of drawing them.

    Raises:
        ValueError: a setting outside its range, a kind the dataset cannot provide, or a
            manifest built for other data.
        TypeError: a setting of the wrong type.

    Example:
        >>> from lightning_unlearn.datamodules import DigitsDataModule
        >>> dm = DigitsDataModule(kind="id", forget_size=50, seed=1)
        >>> dm.setup()
        >>> len(dm.splits["forget"])
        50
    """

    def __init__(
        self,
        source: DataSource,
        kind: ForgetKind = "id",
        forget_size: int | None = None,
        seed: int = 0,
        ood_source: DataSource | None = None,
        split_class: int | None = None,
        ood_label_map: dict[int, int] | None = None,
        flip_source: int | None = None,
        flip_target: int | None = None,
        flip_rate: float | None = None,
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
        super().__init__()
        if not isinstance(source, DataSource):
            raise TypeError(f"Expected `source` to be a DataSource, but got {type(source).__name__}.")
        if ood_source is not None and not isinstance(ood_source, DataSource):
            raise TypeError(f"Expected `ood_source` to be a DataSource or None, but got {type(ood_source).__name__}.")
        if kind not in FORGET_KINDS:
            raise ValueError(f"Expected `kind` to be one of {list(FORGET_KINDS)}, but got {kind!r}.")
        if kind in ("ood_foreign", "ood_mislabeled") and ood_source is None:
            raise ValueError(f"Expected `ood_source` (the other dataset) for kind={kind!r}, but got None.")
        if side not in ("target", "shadow"):
            raise ValueError(f"Expected `side` to be 'target' or 'shadow', but got {side!r}.")
        for name, value in (("batch_size", batch_size), ("eval_batch_size", eval_batch_size)):
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
                raise ValueError(f"Expected `{name}` to be a positive integer, but got {value!r}.")
        if not isinstance(num_workers, int) or num_workers < 0:
            raise ValueError(f"Expected `num_workers` to be a non-negative integer, but got {num_workers!r}.")
        if flip_rate is not None and not 0.0 < flip_rate <= 1.0:
            raise ValueError(f"Expected `flip_rate` to be in (0, 1], but got {flip_rate}.")
        self.save_hyperparameters(ignore=["source", "ood_source"])
        self.source = source
        self.ood_source = ood_source
        self.kind = kind
        self.seed = seed
        self.side = side
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size or 4 * batch_size
        self.num_workers = num_workers
        self.manifest = None if manifest is None else Path(manifest)
        self._split_settings: dict[str, Any] = dict(
            kind=kind,
            seed=seed,
            forget_size=forget_size,
            split_class=split_class,
            ood_label_map=ood_label_map,
            flip_source=flip_source,
            flip_target=flip_target,
            flip_rate=flip_rate,
            target_fraction=target_fraction,
            test_fraction=test_fraction,
            probe_fraction=probe_fraction,
            validation_fraction=validation_fraction,
            validation_heldout_fraction=validation_heldout_fraction,
        )
        self._data: SourceData | None = None
        self._ood_data: SourceData | None = None
        self._inputs: torch.Tensor | None = None
        self._splits: UnlearningSplits | None = None

    # ------------------------------------------------------------------ set-up
    def prepare_data(self) -> None:
        """Let the sources download (called by Lightning on one process only)."""
        self.source.prepare()
        if self.ood_source is not None:
            self.ood_source.prepare()

    def setup(self, stage: str | None = None) -> None:
        """Load the data and build (or load) the splits; idempotent."""
        if self._splits is not None:
            return
        data = self.source.load()
        ood_data = None
        inputs = data.inputs
        if self.ood_source is not None and self.kind in ("ood_foreign", "ood_mislabeled"):
            ood_data = self._conform(self.ood_source.load(), data)
            inputs = torch.cat([data.inputs, ood_data.inputs])
        if self.manifest is not None:
            splits = self._read_manifest(self.manifest, data, ood_data)
        else:
            splits = build_splits(
                data.targets.numpy(),
                data.num_classes,
                ood_labels=None if ood_data is None else ood_data.targets.numpy(),
                ood_num_classes=None if ood_data is None else ood_data.num_classes,
                **self._split_settings,
            )
        self._data, self._ood_data, self._inputs, self._splits = data, ood_data, inputs, splits
        rank_zero_info(self.summary())

    @staticmethod
    def _conform(ood: SourceData, task: SourceData) -> SourceData:
        """Make OOD samples the task's shape and dtype so they can be inserted."""
        if ood.sample_shape == task.sample_shape and ood.inputs.dtype == task.inputs.dtype:
            return ood
        from lightning_unlearn.datamodules.sources.vision import conform_inputs

        return conform_inputs(ood, task.sample_shape, task.inputs.dtype)

    # ------------------------------------------------------------------ properties
    def _require_setup(self) -> UnlearningSplits:
        if self._splits is None:
            raise RuntimeError("The splits are not built yet: call `setup()` (or let a Trainer do it) first.")
        return self._splits

    @property
    def has_splits(self) -> bool:
        """Whether :meth:`setup` has built (or loaded) the splits."""
        return self._splits is not None

    @property
    def splits(self) -> UnlearningSplits:
        """Every split, after :meth:`setup`."""
        return self._require_setup()

    @property
    def num_classes(self) -> int:
        """Classes of the target's task (``split_class`` of them for ``ood_label_split``)."""
        return self._require_setup().num_classes

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one input sample."""
        self._require_setup()
        assert self._inputs is not None
        return tuple(self._inputs.shape[1:])

    @property
    def dataset_name(self) -> str:
        self._require_setup()
        assert self._data is not None
        return self._data.name if self._ood_data is None else f"{self._data.name}+{self._ood_data.name}"

    def dataset(self, split: str) -> SplitDataset:
        """The samples of ``split`` as a dataset yielding :class:`IndexedBatch` items."""
        splits = self._require_setup()
        if split not in SPLIT_NAMES:
            raise ValueError(f"Expected `split` to be one of {list(SPLIT_NAMES)}, but got {split!r}.")
        assert self._inputs is not None
        return SplitDataset(self._inputs, splits[split])

    def dataloader(self, split: str, shuffle: bool = False, batch_size: int | None = None) -> DataLoader:
        """A DataLoader over any split (Lightning adds a distributed sampler under DDP)."""
        dataset = self.dataset(split)
        generator = torch.Generator().manual_seed(self.seed) if shuffle else None
        return DataLoader(
            dataset,
            batch_size=batch_size or (self.batch_size if shuffle else self.eval_batch_size),
            shuffle=shuffle,
            generator=generator,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )

    def __getstate__(self) -> dict[str, Any]:
        # A datamodule sent to other processes (``ddp_spawn``) travels without the Trainer it was
        # last attached to: the new Trainer attaches itself, and the old one may hold a whole fit.
        state = self.__dict__.copy()
        state["trainer"] = None
        return state

    def _reader(self) -> SplitReader | None:
        """The module the attached Trainer runs, when it chooses its own splits."""
        trainer = getattr(self, "trainer", None)
        module = getattr(trainer, "lightning_module", None) if trainer is not None else None
        return module if isinstance(module, SplitReader) else None

    def train_dataloader(self) -> Any:
        """``target_train`` (``shadow_train`` on the shadow side); an unlearning method's own choice while it fits."""
        reader = self._reader()
        if reader is not None:
            return reader.train_dataloader()
        return self.dataloader("target_train" if self.side == "target" else "shadow_train", shuffle=True)

    def val_dataloader(self) -> Any:
        """``validation`` (``shadow_test`` on the shadow side); an unlearning method's own choice while it fits."""
        reader = self._reader()
        if reader is not None:
            return reader.val_dataloader()
        return self.dataloader("validation" if self.side == "target" else "shadow_test")

    def test_dataloader(self) -> DataLoader:
        return self.dataloader("test" if self.side == "target" else "shadow_test")

    # ------------------------------------------------------------------ summary
    def summary(self) -> str:
        """A table of every split: size, label histogram, and what it is for."""
        splits = self._require_setup()
        k = splits.num_classes
        width = max(len(name) for name in SPLIT_NAMES)
        hist_header = " ".join(f"{c:>4d}" for c in range(min(k, 10))) + (" …" if k > 10 else "")
        lines = [
            f"Unlearning splits: dataset={self.dataset_name} kind={splits.kind} seed={splits.settings['seed']}"
            f" classes={k}",
            f"{'split':<{width}}  {'size':>6}  labels: {hist_header}   note",
        ]
        for name in SPLIT_NAMES:
            split = splits[name]
            counts = np.bincount(split.labels, minlength=k)
            hist = " ".join(f"{c:>4d}" for c in counts[:10]) + (" …" if k > 10 else "")
            lines.append(f"{name:<{width}}  {len(split):>6,}          {hist}   {_SPLIT_NOTES[name]}")
        return "\n".join(lines)

    # ------------------------------------------------------------------ manifest
    def _fingerprints(self, data: SourceData, ood: SourceData | None) -> dict[str, Any]:
        entry = {"name": data.name, "num_samples": len(data), "fingerprint": data.fingerprint()}
        ood_entry = (
            None if ood is None else {"name": ood.name, "num_samples": len(ood), "fingerprint": ood.fingerprint()}
        )
        return {"dataset": entry, "ood_dataset": ood_entry}

    def manifest_dict(self) -> dict[str, Any]:
        """The splits as a JSON-ready dictionary (see :meth:`save_manifest`)."""
        splits = self._require_setup()
        assert self._data is not None
        return {
            "format": MANIFEST_FORMAT,
            "version": MANIFEST_VERSION,
            **self._fingerprints(self._data, self._ood_data),
            "kind": splits.kind,
            "num_classes": splits.num_classes,
            "settings": splits.settings,
            "splits": {
                name: {"indices": split.indices.tolist(), "labels": split.labels.tolist()}
                for name, split in splits.splits.items()
            },
        }

    def splits_digest(self) -> str:
        """A short stable hash of the data and every split: the cache key of whatever was trained on them."""
        from lightning_unlearn.cache import config_key

        manifest = self.manifest_dict()
        return config_key(
            {"dataset": manifest["dataset"], "ood": manifest["ood_dataset"], "splits": manifest["splits"]}
        )

    def save_manifest(self, path: str | os.PathLike[str]) -> Path:
        """Write the index manifest as JSON, atomically (no partial file on failure)."""
        return atomic_write_text(path, json.dumps(self.manifest_dict()))

    def _read_manifest(self, path: Path, data: SourceData, ood: SourceData | None) -> UnlearningSplits:
        if not path.is_file():
            raise FileNotFoundError(
                f"Expected `manifest` to be a saved split manifest, but {str(path)!r} does not exist."
            )
        try:
            content = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise ValueError(
                f"Expected `manifest` {str(path)!r} to be a JSON split manifest, but it cannot be parsed: {error}."
            ) from None
        if not isinstance(content, dict) or content.get("format") != MANIFEST_FORMAT:
            raise ValueError(f"Expected `manifest` {str(path)!r} to be a {MANIFEST_FORMAT!r} file, but it is not.")
        if content.get("version") == 1:
            raise ValueError(
                f"Expected `manifest` {str(path)!r} to have version {MANIFEST_VERSION}, but it has version 1, which"
                " predates the validation pair (`validation`, `validation_heldout`); build the splits again from the"
                " settings it records (its 'settings' entry) and save a new manifest."
            )
        if content.get("version") != MANIFEST_VERSION:
            raise ValueError(
                f"Expected `manifest` {str(path)!r} to have version {MANIFEST_VERSION},"
                f" but got {content.get('version')!r}."
            )
        expected = self._fingerprints(data, ood)
        for key in ("dataset", "ood_dataset"):
            if content.get(key) != expected[key]:
                raise ValueError(
                    f"Expected `manifest` {str(path)!r} to describe the {key.replace('_', ' ')}"
                    f" {_describe_dataset(expected[key])}, but it was built for {_describe_dataset(content.get(key))}."
                )
        if content.get("kind") != self.kind:
            raise ValueError(
                f"Expected `manifest` {str(path)!r} to hold a kind={self.kind!r} forget set, but it holds"
                f" kind={content.get('kind')!r}."
            )
        pool_size = len(data) + (0 if ood is None else len(ood))
        num_classes = int(content["num_classes"])
        splits: dict[str, Split] = {}
        for name in SPLIT_NAMES:
            if name not in content["splits"]:
                raise ValueError(f"Expected `manifest` {str(path)!r} to hold the split {name!r}, but it is missing.")
            indices = np.asarray(content["splits"][name]["indices"], dtype=np.int64)
            labels = np.asarray(content["splits"][name]["labels"], dtype=np.int64)
            if indices.size and (indices.min() < 0 or indices.max() >= pool_size):
                raise ValueError(
                    f"Expected the indices of split {name!r} in `manifest` {str(path)!r} to be below {pool_size:,},"
                    f" but got {int(indices.max()):,}."
                )
            if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
                raise ValueError(
                    f"Expected the labels of split {name!r} in `manifest` {str(path)!r} to be in 0–{num_classes - 1},"
                    f" but got {int(labels.max())}."
                )
            splits[name] = Split(indices, labels)
        return UnlearningSplits(
            kind=content["kind"], num_classes=num_classes, splits=splits, settings=content["settings"]
        )
