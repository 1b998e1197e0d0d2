"""Image datasets as the task and as an OOD source of an UnlearningDataModule."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from lightning_unlearn.datamodules import UnlearningDataModule
from lightning_unlearn.datamodules.sources import STL10_TO_CIFAR10, CIFAR10Source, MNISTSource, STL10Source


def write_cifar10(root: Path, per_batch: int = 60, test: int = 100, seed: int = 0) -> None:
    """CIFAR-10's python batches with random images, labels cycling through the classes."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for name in names:
        count = test if name == "test_batch" else per_batch
        content = {
            "data": rng.integers(0, 256, size=(count, 3072), dtype=np.uint8),
            "labels": (np.arange(count) % 10).tolist(),
        }
        (folder / name).write_bytes(pickle.dumps(content, protocol=2))
    meta = {"label_names": ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))


def write_stl10(root: Path, count: int = 150, seed: int = 1) -> None:
    rng = np.random.default_rng(seed)
    folder = root / "stl10_binary"
    folder.mkdir(parents=True)
    for split in ("train", "test"):
        (folder / f"{split}_X.bin").write_bytes(
            rng.integers(0, 256, size=count * 3 * 96 * 96, dtype=np.uint8).tobytes()
        )
        (folder / f"{split}_y.bin").write_bytes(((np.arange(count) % 10) + 1).astype(np.uint8).tobytes())


@pytest.fixture
def image_root(tmp_path: Path) -> Path:
    write_cifar10(tmp_path)
    write_stl10(tmp_path)
    return tmp_path


def test_stl10_inserted_into_cifar10(image_root: Path) -> None:
    dm = UnlearningDataModule(
        CIFAR10Source(image_root), kind="ood_foreign", ood_source=STL10Source(image_root), forget_size=40, seed=0
    )
    dm.setup()
    assert dm.input_shape == (3, 32, 32) and dm.num_classes == 10
    forget = dm.splits["forget"]
    assert len(forget) == 40 and forget.indices.min() >= 400, "forget must come from the OOD source"
    batch = next(iter(dm.dataloader("forget")))
    assert batch.inputs.shape == (40, 3, 32, 32) and batch.inputs.dtype == torch.float32
    assert batch.inputs.min() >= 0.0 and batch.inputs.max() <= 1.0
    assert dm.dataset_name == "cifar10+stl10"


def test_stl10_mislabeled_into_cifar10_never_keeps_the_true_class(image_root: Path) -> None:
    dm = UnlearningDataModule(
        CIFAR10Source(image_root),
        kind="ood_mislabeled",
        ood_source=STL10Source(image_root),
        ood_label_map=STL10_TO_CIFAR10,
        forget_size=40,
    )
    dm.setup()
    forget = dm.splits["forget"]
    stl_labels = np.concatenate([np.arange(150) % 10, np.arange(150) % 10])
    true_classes = stl_labels[forget.indices - 400]
    mapped = np.array([STL10_TO_CIFAR10.get(int(c), -1) for c in true_classes])
    assert np.all(forget.labels != mapped)


def test_manifest_refuses_another_ood_source(image_root: Path, tmp_path: Path) -> None:
    dm = UnlearningDataModule(CIFAR10Source(image_root), kind="ood_foreign", ood_source=STL10Source(image_root))
    dm.setup()
    path = dm.save_manifest(tmp_path / "manifest.json")
    other_root = tmp_path / "other"
    write_stl10(other_root, count=120)
    other = UnlearningDataModule(
        CIFAR10Source(image_root), kind="ood_foreign", ood_source=STL10Source(other_root), manifest=path
    )
    with pytest.raises(
        ValueError,
        match=r"to describe the ood dataset 'stl10' \(240 samples.*but it was built for "
        r"'stl10' \(300 samples",
    ):
        other.setup()


def test_missing_dataset_folder_fails_in_setup_without_writing(tmp_path: Path) -> None:
    dm = UnlearningDataModule(MNISTSource(tmp_path / "nowhere"), kind="id")
    with pytest.raises(FileNotFoundError, match=r"`root`"):
        dm.setup()
    assert not dm.has_splits
    assert not (tmp_path / "nowhere").exists()
