"""The synthetic glyphs: written in MNIST's idx format, read back by the MNIST reader, deterministic, balanced."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from lightning_unlearn import UnlearningDataModule
from lightning_unlearn.datamodules.sources.glyphs import (
    GLYPH_NAMES,
    SyntheticGlyphsSource,
    make_synthetic_glyphs,
    render_glyphs,
    write_idx_ubyte,
)
from lightning_unlearn.datamodules.sources.vision import MNISTSource

RAW_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def _bytes(folder: Path) -> dict[str, bytes]:
    return {name: (folder / name).read_bytes() for name in RAW_FILES}


def test_files_round_trip_through_the_mnist_reader(tmp_path: Path) -> None:
    files = make_synthetic_glyphs(tmp_path, train_size=200, test_size=50, seed=3)
    assert files.written and files.folder == tmp_path / "SyntheticGlyphs" / "raw"
    data = SyntheticGlyphsSource(tmp_path).load()
    assert data.name == "synthetic_glyphs" and data.classes == GLYPH_NAMES and data.num_classes == 10
    assert data.inputs.shape == (250, 1, 28, 28) and data.inputs.dtype == torch.uint8
    assert torch.equal(data.targets, torch.cat([files.train_labels, files.test_labels]))
    # The same bytes under MNIST's folder name are read identically by MNISTSource itself.
    mnist_raw = tmp_path / "MNIST" / "raw"
    mnist_raw.mkdir(parents=True)
    for name in RAW_FILES:
        (mnist_raw / name).write_bytes((files.folder / name).read_bytes())
    mnist = MNISTSource(tmp_path).load()
    assert torch.equal(mnist.inputs, data.inputs) and torch.equal(mnist.targets, data.targets)
    test_only = SyntheticGlyphsSource(tmp_path, subsets=("test",)).load()
    assert torch.equal(test_only.inputs, data.inputs[200:])


def test_images_are_deterministic_from_the_seed(tmp_path: Path) -> None:
    first = make_synthetic_glyphs(tmp_path / "a", train_size=120, test_size=30, seed=1)
    second = make_synthetic_glyphs(tmp_path / "b", train_size=120, test_size=30, seed=1)
    other = make_synthetic_glyphs(tmp_path / "c", train_size=120, test_size=30, seed=2)
    assert _bytes(first.folder) == _bytes(second.folder)
    assert _bytes(first.folder)["train-images-idx3-ubyte"] != _bytes(other.folder)["train-images-idx3-ubyte"]
    # The test file does not depend on the training file's size.
    bigger = make_synthetic_glyphs(tmp_path / "d", train_size=150, test_size=30, seed=1)
    assert _bytes(bigger.folder)["t10k-images-idx3-ubyte"] == _bytes(first.folder)["t10k-images-idx3-ubyte"]


def test_existing_files_are_kept_and_other_settings_rewrite_them(tmp_path: Path) -> None:
    make_synthetic_glyphs(tmp_path, train_size=100, test_size=20, seed=0)
    assert not make_synthetic_glyphs(tmp_path, train_size=100, test_size=20, seed=0).written
    rewritten = make_synthetic_glyphs(tmp_path, train_size=100, test_size=20, seed=5)
    assert rewritten.written
    settings = json.loads((rewritten.folder / "generation.json").read_text())
    assert settings["seed"] == 5 and settings["train_size"] == 100


def test_labels_are_balanced(tmp_path: Path) -> None:
    files = make_synthetic_glyphs(tmp_path, train_size=1_000, test_size=105, seed=0)
    assert torch.bincount(files.train_labels, minlength=10).tolist() == [100] * 10
    test_counts = torch.bincount(files.test_labels, minlength=10)
    assert int(test_counts.max() - test_counts.min()) <= 1 and int(test_counts.sum()) == 105
    assert not torch.equal(files.train_labels[:10], torch.arange(10))  # shuffled, not in class order


def test_classes_differ_and_are_not_trivially_separable() -> None:
    """Nearest class mean on raw pixels beats chance (0.1) by far but stays far from perfect: a CNN has work to do."""
    labels = np.arange(3_000) % 10
    images = render_glyphs(labels, np.random.default_rng(0)).reshape(len(labels), -1) / 255.0
    means = np.stack([images[:2_000][labels[:2_000] == k].mean(axis=0) for k in range(10)])
    predicted = ((images[2_000:, None, :] - means[None]) ** 2).sum(axis=-1).argmin(axis=1)
    accuracy = float((predicted == labels[2_000:]).mean())
    assert 0.4 < accuracy < 0.8


def test_an_unlearning_datamodule_reads_the_glyphs(tmp_path: Path) -> None:
    make_synthetic_glyphs(tmp_path, train_size=600, test_size=100, seed=0)
    dm = UnlearningDataModule(SyntheticGlyphsSource(tmp_path), kind="ood_label_split", split_class=8, forget_size=20)
    dm.setup()
    assert dm.num_classes == 8 and dm.input_shape == (1, 28, 28) and len(dm.splits["forget"]) == 20
    inputs, _, _ = next(iter(dm.dataloader("forget")))
    assert inputs.dtype == torch.float32 and float(inputs.max()) <= 1.0


def test_write_idx_ubyte_writes_the_header(tmp_path: Path) -> None:
    path = write_idx_ubyte(tmp_path / "x-idx3-ubyte", np.arange(24).reshape(2, 3, 4))
    raw = path.read_bytes()
    assert raw[:4] == bytes([0, 0, 8, 3]) and raw[4:16] == b"\x00\x00\x00\x02\x00\x00\x00\x03\x00\x00\x00\x04"
    assert raw[16:] == bytes(range(24))


def test_errors_name_the_expectation(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"Expected `train_size` to be at least 10, but got 5"):
        make_synthetic_glyphs(tmp_path, train_size=5)
    with pytest.raises(TypeError, match=r"Expected `seed` to be an integer, but got float"):
        make_synthetic_glyphs(tmp_path, seed=1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"Expected `ambiguous_fraction` to be in \[0, 1\], but got 2"):
        make_synthetic_glyphs(tmp_path, ambiguous_fraction=2)
    with pytest.raises(ValueError, match=r"Expected `labels` to be a 1-D array of classes 0–9"):
        render_glyphs(np.array([3, 10]), np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"Expected values in 0–255 to write as unsigned bytes, but got 0–256"):
        write_idx_ubyte(tmp_path / "bad", np.array([0, 256]))
    with pytest.raises(FileNotFoundError, match=r"make_synthetic_glyphs\(root\) first"):
        SyntheticGlyphsSource(tmp_path / "empty").load()
