"""Image sources read small files written here in each dataset's own on-disk format.

Nothing is downloaded: every test writes a few samples exactly as torchvision lays the
dataset out, then checks shapes, labels, class names, sample order and orientation. Where
torchvision can read the same files (its md5 checks patched out), the result is compared
with torchvision's own reading.
"""

from __future__ import annotations

import gzip
import pickle
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from lightning_unlearn.datamodules.sources import SourceData, vision
from lightning_unlearn.datamodules.sources.vision import (
    CIFAR10Source,
    CIFAR100Source,
    FashionMNISTSource,
    MNISTSource,
    STL10Source,
    SVHNSource,
    TinyImageNetSource,
    conform_inputs,
)

# --------------------------------------------------------------------------------------------
# Writers for each on-disk format
# --------------------------------------------------------------------------------------------


def pattern_images(count: int, channels: int, height: int, width: int, offset: int = 0) -> np.ndarray:
    """Images whose pixels differ along every axis, so any flip, transpose or reordering shows."""
    n, c, h, w = np.meshgrid(
        np.arange(count) + offset, np.arange(channels), np.arange(height), np.arange(width), indexing="ij"
    )
    return ((n * 37 + c * 71 + h * 5 + w * 3 + h * w) % 256).astype(np.uint8)


def write_idx(path: Path, array: np.ndarray, compress: bool = False) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    payload = header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    if compress:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(payload))
    else:
        path.write_bytes(payload)


def write_mnist(root: Path, folder: str = "MNIST", compress: bool = False) -> dict[str, Any]:
    """8 training and 5 test images; the labels count 0, 1, 2 … from the first training image."""
    train = pattern_images(8, 1, 28, 28)[:, 0]
    test = pattern_images(5, 1, 28, 28, offset=8)[:, 0]
    raw = root / folder / "raw"
    write_idx(raw / "train-images-idx3-ubyte", train, compress)
    write_idx(raw / "train-labels-idx1-ubyte", np.arange(8) % 10, compress)
    write_idx(raw / "t10k-images-idx3-ubyte", test, compress)
    write_idx(raw / "t10k-labels-idx1-ubyte", np.arange(8, 13) % 10, compress)
    return {"train": train, "test": test}


def write_pickle(path: Path, content: dict[Any, Any], python2_numpy: bool = False) -> None:
    payload = pickle.dumps(content, protocol=2)
    if python2_numpy:  # files written before NumPy 2 name numpy.core, as the real CIFAR files do
        payload = payload.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(payload)


CIFAR10_NAMES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def write_cifar10(root: Path, bytes_keys: bool = False) -> dict[str, np.ndarray]:
    """Five training batches of 2 images and a test batch of 4; labels count from 0.

    The real files come from Python 2, whose ``str`` keys read as ``str`` with latin-1 (as
    torchvision reads them) or as ``bytes``; ``bytes_keys`` writes the latter.
    """

    def key(name: str) -> str | bytes:
        return name.encode() if bytes_keys else name

    folder = root / "cifar-10-batches-py"
    images = pattern_images(14, 3, 32, 32)
    labels = np.arange(14) % 10
    for batch in range(5):
        rows = slice(2 * batch, 2 * batch + 2)
        write_pickle(
            folder / f"data_batch_{batch + 1}",
            {
                key("batch_label"): "training batch",
                key("data"): images[rows].reshape(2, -1),
                key("labels"): labels[rows].tolist(),
            },
            python2_numpy=batch % 2 == 0,
        )
    write_pickle(folder / "test_batch", {key("data"): images[10:].reshape(4, -1), key("labels"): labels[10:].tolist()})
    names = [name.encode() if bytes_keys else name for name in CIFAR10_NAMES]
    write_pickle(folder / "batches.meta", {key("label_names"): names})
    return {"images": images, "labels": labels}


def write_cifar100(root: Path) -> dict[str, np.ndarray]:
    folder = root / "cifar-100-python"
    images = pattern_images(9, 3, 32, 32)
    fine = np.array([99, 0, 42, 7, 55, 98, 1, 2, 3])
    for name, rows in (("train", slice(0, 6)), ("test", slice(6, 9))):
        write_pickle(
            folder / name,
            {
                "data": images[rows].reshape(-1, 3072),
                "fine_labels": fine[rows].tolist(),
                "coarse_labels": [0] * 3,
            },
        )
    write_pickle(folder / "meta", {"fine_label_names": [f"class{i}" for i in range(100)], "coarse_label_names": []})
    return {"images": images, "labels": fine}


def write_stl10(root: Path, class_names: bool = True) -> dict[str, np.ndarray]:
    """Upright images written as STL-10 stores them: each channel column by column."""
    folder = root / "stl10_binary"
    folder.mkdir(parents=True)
    images = pattern_images(7, 3, 96, 96)
    labels = np.array([0, 9, 3, 4, 1, 9, 0])
    for split, rows in (("train", slice(0, 4)), ("test", slice(4, 7))):
        (folder / f"{split}_X.bin").write_bytes(np.ascontiguousarray(images[rows].transpose(0, 1, 3, 2)).tobytes())
        (folder / f"{split}_y.bin").write_bytes((labels[rows] + 1).astype(np.uint8).tobytes())
    if class_names:
        names = ["airplane", "bird", "car", "cat", "deer", "dog", "horse", "monkey", "ship", "truck"]
        (folder / "class_names.txt").write_text("\n".join(names) + "\n")
    return {"images": images, "labels": labels}


def write_svhn(root: Path) -> dict[str, np.ndarray]:
    """X indexed (row, column, channel, sample) and y in 1…10, where 10 is the digit 0."""
    from scipy.io import savemat

    root.mkdir(parents=True, exist_ok=True)
    images = pattern_images(10, 3, 32, 32)
    digits = np.array([0, 1, 2, 9, 0, 5, 6, 0, 7, 8])
    for split, rows in (("train", slice(0, 4)), ("test", slice(4, 7)), ("extra", slice(7, 10))):
        stored_labels = np.where(digits[rows] == 0, 10, digits[rows]).astype(np.uint8)[:, None]
        savemat(root / f"{split}_32x32.mat", {"X": images[rows].transpose(2, 3, 1, 0), "y": stored_labels})
    return {"images": images, "labels": digits}


TINY_WNIDS = ("n03000000", "n01000000", "n02000000")  # unsorted in wnids.txt, as in the real file
TINY_COLOURS = {"n01000000": (200, 30, 30), "n02000000": (30, 200, 30), "n03000000": (30, 30, 200)}


def save_jpeg(path: Path, colour: tuple[int, int, int] | int, size: tuple[int, int] = (64, 64)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(colour, int):
        Image.new("L", size, colour).save(path, quality=95)
    else:
        Image.new("RGB", size, colour).save(path, quality=95)


def write_tiny_imagenet(root: Path) -> Path:
    """Three classes of 2 training images each (one of them grayscale) and 3 validation images."""
    folder = root / "tiny-imagenet-200"
    folder.mkdir(parents=True)
    (folder / "wnids.txt").write_text("\n".join(TINY_WNIDS) + "\n")
    (folder / "words.txt").write_text(
        "n00000001\tentity\nn01000000\tgoldfish, Carassius auratus\nn02000000\ttabby, tabby cat\n"
    )
    for wnid, colour in TINY_COLOURS.items():
        save_jpeg(folder / "train" / wnid / "images" / f"{wnid}_0.JPEG", colour)
        save_jpeg(folder / "train" / wnid / "images" / f"{wnid}_1.JPEG", colour)
        (folder / "train" / wnid / f"{wnid}_boxes.txt").write_text("")
    save_jpeg(folder / "train" / "n02000000" / "images" / "n02000000_1.JPEG", 90)  # grayscale
    val = [("val_0.JPEG", "n03000000"), ("val_1.JPEG", "n01000000"), ("val_2.JPEG", "n03000000")]
    for name, wnid in val:
        save_jpeg(folder / "val" / "images" / name, TINY_COLOURS[wnid])
    (folder / "val" / "val_annotations.txt").write_text(
        "".join(f"{name}\t{wnid}\t0\t0\t63\t63\n" for name, wnid in val)
    )
    save_jpeg(folder / "test" / "images" / "test_0.JPEG", 10)
    return folder


@pytest.fixture
def no_md5_checks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Let torchvision's classes read files whose md5 sums cannot match the real ones."""
    from torchvision.datasets import cifar, stl10, svhn

    for module in (cifar, stl10, svhn):
        monkeypatch.setattr(module, "check_integrity", lambda *args, **kwargs: True)


# --------------------------------------------------------------------------------------------
# MNIST and Fashion-MNIST
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gz"])
@pytest.mark.parametrize(
    ("source_class", "folder", "name", "first_class"),
    [
        (MNISTSource, "MNIST", "mnist", "0"),
        (FashionMNISTSource, "FashionMNIST", "fashion_mnist", "T-shirt/top"),
    ],
)
def test_mnist_formats_load_train_then_test(
    tmp_path: Path, source_class: type[MNISTSource], folder: str, name: str, first_class: str, compress: bool
) -> None:
    written = write_mnist(tmp_path, folder, compress)
    data = source_class(tmp_path).load()
    assert data.name == name
    assert data.inputs.shape == (13, 1, 28, 28)
    assert data.inputs.dtype == torch.uint8
    expected = np.concatenate([written["train"], written["test"]])[:, None]
    assert torch.equal(data.inputs, torch.from_numpy(expected))
    assert data.targets.tolist() == [i % 10 for i in range(13)]
    assert data.num_classes == 10
    assert data.classes is not None and data.classes[0] == first_class and len(data.classes) == 10


def test_mnist_matches_torchvision(tmp_path: Path) -> None:
    from torchvision.datasets import MNIST

    write_mnist(tmp_path)
    ours = MNISTSource(tmp_path).load()
    train, test = MNIST(str(tmp_path), train=True), MNIST(str(tmp_path), train=False)
    assert torch.equal(ours.inputs[:, 0], torch.cat([train.data, test.data]))
    assert torch.equal(ours.targets, torch.cat([train.targets, test.targets]))


def test_mnist_prefers_plain_files_over_gz(tmp_path: Path) -> None:
    write_mnist(tmp_path, compress=True)
    raw = tmp_path / "MNIST" / "raw"
    write_idx(raw / "t10k-labels-idx1-ubyte", np.full(5, 7))  # torchvision keeps both; plain wins
    assert MNISTSource(tmp_path, subsets=("test",)).load().targets.tolist() == [7] * 5


@pytest.mark.parametrize(
    ("subsets", "labels"),
    [(("train",), list(range(8))), (("test",), [8, 9, 0, 1, 2]), (("test", "train"), [*range(10), 0, 1, 2])],
)
def test_mnist_subsets_are_concatenated_train_first(
    tmp_path: Path, subsets: tuple[str, ...], labels: list[int]
) -> None:
    write_mnist(tmp_path)
    source = MNISTSource(tmp_path, subsets=subsets)
    assert source.subsets == tuple(split for split in ("train", "test") if split in subsets)
    assert source.load().targets.tolist() == labels


def test_mnist_missing_root_and_file(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(
        FileNotFoundError,
        match=rf"Expected `root` to be a folder holding the MNIST idx files in 'MNIST/raw/' .*, but"
        rf" '{re.escape(str(missing))}' does not exist. Pass download=True to fetch them.",
    ):
        MNISTSource(missing).load()
    write_mnist(tmp_path)
    (tmp_path / "MNIST" / "raw" / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(
        FileNotFoundError,
        match=r"Expected `root` to hold the MNIST idx files in 'MNIST/raw/' \(.*plain or .gz\), but"
        r" '.*MNIST/raw/t10k-labels-idx1-ubyte' is missing. Pass download=True to fetch them.",
    ):
        MNISTSource(tmp_path).load()
    MNISTSource(tmp_path, subsets=("train",)).load()  # the test files are not needed for "train"
    with pytest.raises(FileNotFoundError, match=r"is missing. Call prepare\(\) first to download them."):
        MNISTSource(tmp_path, download=True).load()


def test_mnist_root_that_is_a_file(tmp_path: Path) -> None:
    path = tmp_path / "file"
    path.write_text("")
    with pytest.raises(NotADirectoryError, match=r"Expected `root` to be a folder .*, but '.*file' is not a folder."):
        MNISTSource(path).load()


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (
            lambda raw: raw[:-10],
            r"Expected '.*train-images-idx3-ubyte' to hold 6,272 bytes of data for its shape \(8, 28, 28\),"
            r" but it holds 6,262: the file is truncated or corrupt.",
        ),
        (
            lambda raw: bytes([0, 0, 0x08, 0x01]) + raw[4:],
            r"Expected '.*train-images-idx3-ubyte' to be an idx file of unsigned bytes with 3 dimension\(s\),"
            r" which starts with the magic number 0x00000803, but found 0x00000801.",
        ),
        (lambda raw: b"\x00\x00", r"magic number 0x00000803, but the file is shorter than 4 bytes."),
        (
            lambda raw: raw[:8],
            r"Expected '.*train-images-idx3-ubyte' to hold a 16-byte idx header, but it has 8",
        ),
    ],
    ids=["truncated", "magic", "tiny", "header"],
)
def test_mnist_corrupt_images(tmp_path: Path, damage: Any, message: str) -> None:
    write_mnist(tmp_path)
    path = tmp_path / "MNIST" / "raw" / "train-images-idx3-ubyte"
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(ValueError, match=message):
        MNISTSource(tmp_path).load()


def test_mnist_corrupt_labels_and_gzip(tmp_path: Path) -> None:
    write_mnist(tmp_path)
    raw = tmp_path / "MNIST" / "raw"
    write_idx(raw / "train-labels-idx1-ubyte", np.arange(7))
    with pytest.raises(
        ValueError,
        match=r"Expected '.*train-labels-idx1-ubyte' to hold one label per image of"
        r" '.*train-images-idx3-ubyte' \(8\), but it holds 7 labels.",
    ):
        MNISTSource(tmp_path).load()
    write_idx(raw / "train-labels-idx1-ubyte", np.array([0, 1, 2, 3, 4, 5, 6, 12]))
    with pytest.raises(ValueError, match=r"Expected the labels in '.*train-labels-idx1-ubyte' to lie in 0..9"):
        MNISTSource(tmp_path).load()
    write_idx(raw / "train-images-idx3-ubyte", np.zeros((8, 32, 32)))
    with pytest.raises(ValueError, match=r"to hold 28×28 images, but they are \(32, 32\)."):
        MNISTSource(tmp_path).load()
    (raw / "train-images-idx3-ubyte").unlink()
    (raw / "train-images-idx3-ubyte.gz").write_bytes(b"not gzip at all")
    with pytest.raises(ValueError, match=r"Expected '.*train-images-idx3-ubyte.gz' to be a gzip file"):
        MNISTSource(tmp_path).load()


# --------------------------------------------------------------------------------------------
# CIFAR-10 and CIFAR-100
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("bytes_keys", [False, True], ids=["str-keys", "bytes-keys"])
def test_cifar10_loads_batches_in_order(tmp_path: Path, bytes_keys: bool) -> None:
    written = write_cifar10(tmp_path, bytes_keys)
    data = CIFAR10Source(tmp_path).load()
    assert data.name == "cifar10"
    assert data.inputs.shape == (14, 3, 32, 32) and data.inputs.dtype == torch.uint8
    assert torch.equal(data.inputs, torch.from_numpy(written["images"]))
    assert data.targets.tolist() == written["labels"].tolist()
    assert data.classes == CIFAR10_NAMES
    test_only = CIFAR10Source(tmp_path, subsets=("test",)).load()
    assert torch.equal(test_only.inputs, torch.from_numpy(written["images"][10:]))


def test_cifar_matches_torchvision(tmp_path: Path, no_md5_checks: None) -> None:
    from torchvision.datasets import CIFAR10, CIFAR100

    write_cifar10(tmp_path)
    write_cifar100(tmp_path)
    for ours, theirs in ((CIFAR10Source, CIFAR10), (CIFAR100Source, CIFAR100)):
        data = ours(tmp_path).load()
        train, test = theirs(str(tmp_path), train=True), theirs(str(tmp_path), train=False)
        expected = np.concatenate([train.data, test.data]).transpose(0, 3, 1, 2)  # torchvision holds HWC
        assert torch.equal(data.inputs, torch.from_numpy(expected))
        assert data.targets.tolist() == train.targets + test.targets
        assert data.classes == tuple(train.classes)


def test_cifar100_uses_fine_labels(tmp_path: Path) -> None:
    written = write_cifar100(tmp_path)
    data = CIFAR100Source(tmp_path).load()
    assert data.name == "cifar100"
    assert data.num_classes == 100
    assert data.inputs.shape == (9, 3, 32, 32)
    assert data.targets.tolist() == written["labels"].tolist()
    assert data.classes is not None and data.classes[99] == "class99"


def test_cifar_missing_files(tmp_path: Path) -> None:
    write_cifar10(tmp_path)
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").unlink()
    with pytest.raises(
        FileNotFoundError,
        match=r"Expected `root` to hold the CIFAR-10 batches in 'cifar-10-batches-py/' \(data_batch_1 …"
        r" data_batch_5, test_batch, batches.meta\), but '.*cifar-10-batches-py/data_batch_3' is missing."
        r" Pass download=True to fetch them.",
    ):
        CIFAR10Source(tmp_path).load()
    CIFAR10Source(tmp_path, subsets=("test",)).load()
    (tmp_path / "cifar-10-batches-py" / "batches.meta").unlink()
    with pytest.raises(FileNotFoundError, match=r"'.*cifar-10-batches-py/batches.meta' is missing"):
        CIFAR10Source(tmp_path, subsets=("test",)).load()
    with pytest.raises(
        FileNotFoundError,
        match=r"Expected `root` to hold the CIFAR-100 files in 'cifar-100-python/' \(train, test, meta\),"
        r" but '.*cifar-100-python/train' is missing.",
    ):
        CIFAR100Source(tmp_path).load()


def test_cifar_corrupt_files(tmp_path: Path) -> None:
    write_cifar10(tmp_path)
    folder = tmp_path / "cifar-10-batches-py"
    (folder / "test_batch").write_bytes(b"\x80\x02}q\x00(garbage")
    with pytest.raises(ValueError, match=r"Expected '.*test_batch' to be a readable CIFAR pickle, but unpickling"):
        CIFAR10Source(tmp_path, subsets=("test",)).load()
    (folder / "test_batch").write_bytes(pickle.dumps({"data": np.zeros((2, 3072), np.uint8), "labels": [0, 1, 2]}))
    with pytest.raises(ValueError, match=r"to hold one label per image of '.*test_batch' \(2\), but it holds 3"):
        CIFAR10Source(tmp_path, subsets=("test",)).load()
    (folder / "test_batch").write_bytes(pickle.dumps({"data": np.zeros((2, 1024), np.uint8), "labels": [0, 1]}))
    with pytest.raises(
        ValueError,
        match=r"Expected 'data' in '.*test_batch' to be a uint8 array of shape \(N, 3072\),"
        r" but got uint8 array of shape \(2, 1024\).",
    ):
        CIFAR10Source(tmp_path, subsets=("test",)).load()
    (folder / "test_batch").write_bytes(pickle.dumps({"labels": [0, 1]}))
    with pytest.raises(ValueError, match=r"Expected '.*test_batch' to hold the key 'data', but it holds \['labels'\]"):
        CIFAR10Source(tmp_path, subsets=("test",)).load()
    (folder / "test_batch").write_bytes(pickle.dumps([1, 2]))
    with pytest.raises(ValueError, match=r"Expected '.*test_batch' to hold a dict, but it holds a list."):
        CIFAR10Source(tmp_path, subsets=("test",)).load()
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": ["a", "b"]}))
    with pytest.raises(ValueError, match=r"Expected '.*batches.meta' to name 10 classes, but it names 2."):
        CIFAR10Source(tmp_path, subsets=("test",)).load()


class RunsCode:
    """A pickle payload that would call a function on loading."""

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (print, ("this must never run",))


def test_cifar_pickle_cannot_run_code(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_cifar10(tmp_path)
    write_pickle(tmp_path / "cifar-10-batches-py" / "test_batch", {"data": RunsCode(), "labels": []})
    with pytest.raises(
        ValueError,
        match=r"unpickling failed: refusing to load (__builtin__|builtins).print, which is not part of",
    ):
        CIFAR10Source(tmp_path, subsets=("test",)).load()
    assert "never run" not in capsys.readouterr().out


# --------------------------------------------------------------------------------------------
# STL-10
# --------------------------------------------------------------------------------------------


def test_stl10_images_are_upright_and_labels_start_at_zero(tmp_path: Path) -> None:
    written = write_stl10(tmp_path)
    data = STL10Source(tmp_path).load()
    assert data.name == "stl10"
    assert data.inputs.shape == (7, 3, 96, 96) and data.inputs.dtype == torch.uint8
    assert torch.equal(data.inputs, torch.from_numpy(written["images"]))
    assert data.targets.tolist() == written["labels"].tolist()
    assert data.classes is not None and data.classes[:2] == ("airplane", "bird")
    test_only = STL10Source(tmp_path, subsets=("test",)).load()
    assert test_only.targets.tolist() == [1, 9, 0]


def test_stl10_matches_torchvision(tmp_path: Path, no_md5_checks: None) -> None:
    from torchvision.datasets import STL10

    write_stl10(tmp_path)
    data = STL10Source(tmp_path).load()
    train, test = STL10(str(tmp_path), split="train"), STL10(str(tmp_path), split="test")
    assert torch.equal(data.inputs, torch.from_numpy(np.concatenate([train.data, test.data])))
    assert train.labels is not None and test.labels is not None
    assert data.targets.tolist() == [*train.labels.tolist(), *test.labels.tolist()]
    # torchvision's PIL image of the first sample is upright like ours
    assert np.array_equal(np.asarray(train[0][0]), data.inputs[0].permute(1, 2, 0).numpy())


def test_stl10_without_class_names(tmp_path: Path) -> None:
    write_stl10(tmp_path, class_names=False)
    assert STL10Source(tmp_path).load().classes is None


def test_stl10_errors(tmp_path: Path) -> None:
    with pytest.raises(
        ValueError,
        match=r"Expected `subsets` to name labelled splits of STL-10 out of \('train', 'test'\), but got"
        r" 'unlabeled', which has no labels.",
    ):
        STL10Source(tmp_path, subsets=("train", "unlabeled"))
    write_stl10(tmp_path)
    folder = tmp_path / "stl10_binary"
    (folder / "test_y.bin").unlink()
    with pytest.raises(
        FileNotFoundError,
        match=r"Expected `root` to hold the STL-10 binaries in 'stl10_binary/' \(train_X.bin, train_y.bin,"
        r" test_X.bin, test_y.bin\), but '.*stl10_binary/test_y.bin' is missing.",
    ):
        STL10Source(tmp_path).load()
    with (folder / "train_X.bin").open("ab") as stream:
        stream.write(b"\x00" * 100)
    with pytest.raises(
        ValueError,
        match=r"Expected '.*train_X.bin' to hold whole 3×96×96 images \(27,648 bytes each\), but its 110,692"
        r" bytes leave 100 over: the file is truncated or corrupt.",
    ):
        STL10Source(tmp_path, subsets=("train",)).load()
    write_stl10(tmp_path / "again")
    (tmp_path / "again" / "stl10_binary" / "train_y.bin").write_bytes(bytes([1, 0, 2, 3]))
    with pytest.raises(ValueError, match=r"Expected the labels in '.*train_y.bin' to lie in 1..10, but found 0."):
        STL10Source(tmp_path / "again").load()
    (tmp_path / "again" / "stl10_binary" / "class_names.txt").write_text("one\ntwo\n")
    (tmp_path / "again" / "stl10_binary" / "train_y.bin").write_bytes(bytes([1, 1, 2, 3]))
    with pytest.raises(ValueError, match=r"Expected '.*class_names.txt' to name 10 classes, but it names 2."):
        STL10Source(tmp_path / "again").load()


# --------------------------------------------------------------------------------------------
# SVHN
# --------------------------------------------------------------------------------------------


def test_svhn_images_are_upright_and_ten_is_zero(tmp_path: Path) -> None:
    written = write_svhn(tmp_path)
    data = SVHNSource(tmp_path).load()
    assert data.name == "svhn"
    assert data.inputs.shape == (7, 3, 32, 32) and data.inputs.dtype == torch.uint8
    assert torch.equal(data.inputs, torch.from_numpy(written["images"][:7]))
    assert data.targets.tolist() == [0, 1, 2, 9, 0, 5, 6]
    assert data.classes == tuple("0123456789")
    everything = SVHNSource(tmp_path, subsets=("extra", "test", "train")).load()
    assert torch.equal(everything.inputs, torch.from_numpy(written["images"]))
    assert everything.targets.tolist() == written["labels"].tolist()
    assert SVHNSource(tmp_path, subsets=("extra",)).load().targets.tolist() == [0, 7, 8]


def test_svhn_matches_torchvision(tmp_path: Path, no_md5_checks: None) -> None:
    from torchvision.datasets import SVHN

    write_svhn(tmp_path)
    data = SVHNSource(tmp_path, subsets=("train", "test", "extra")).load()
    splits = [SVHN(str(tmp_path), split=split) for split in ("train", "test", "extra")]
    assert torch.equal(data.inputs, torch.from_numpy(np.concatenate([split.data for split in splits])))
    assert data.targets.tolist() == np.concatenate([split.labels for split in splits]).tolist()


def test_svhn_errors(tmp_path: Path) -> None:
    from scipy.io import savemat

    with pytest.raises(
        ValueError,
        match=r"Expected `subsets` to be splits of SVHN out of \('train', 'test', 'extra'\), but got 'val'.",
    ):
        SVHNSource(tmp_path, subsets=("train", "val"))
    write_svhn(tmp_path)
    (tmp_path / "test_32x32.mat").unlink()
    with pytest.raises(
        FileNotFoundError,
        match=r"Expected `root` to hold the SVHN files train_32x32.mat, test_32x32.mat and \(for 'extra'\)"
        r" extra_32x32.mat, but '.*test_32x32.mat' is missing. Pass download=True to fetch them.",
    ):
        SVHNSource(tmp_path).load()
    (tmp_path / "train_32x32.mat").write_bytes(b"MATLAB 5.0 but then nothing")
    with pytest.raises(ValueError, match=r"Expected '.*train_32x32.mat' to be a readable MATLAB file, but reading"):
        SVHNSource(tmp_path, subsets=("train",)).load()
    savemat(tmp_path / "train_32x32.mat", {"X": np.zeros((28, 28, 1, 2), np.uint8), "y": np.ones((2, 1))})
    with pytest.raises(
        ValueError,
        match=r"Expected 'X' in '.*train_32x32.mat' to be a uint8 array of shape \(32, 32, 3, N\), but got a"
        r" uint8 array of shape \(28, 28, 1, 2\).",
    ):
        SVHNSource(tmp_path, subsets=("train",)).load()
    savemat(tmp_path / "train_32x32.mat", {"images": np.zeros(2)})
    with pytest.raises(ValueError, match=r"to hold the variables 'X' and 'y', but it holds \['images'\]."):
        SVHNSource(tmp_path, subsets=("train",)).load()
    savemat(tmp_path / "train_32x32.mat", {"X": np.zeros((32, 32, 3, 2), np.uint8), "y": np.array([[1], [11]])})
    with pytest.raises(ValueError, match=r"Expected the labels in '.*train_32x32.mat' to lie in 1..10, but found 11."):
        SVHNSource(tmp_path, subsets=("train",)).load()


# --------------------------------------------------------------------------------------------
# Tiny ImageNet
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("point_at_folder", [False, True], ids=["parent", "folder"])
def test_tiny_imagenet_loads_train_then_val(tmp_path: Path, point_at_folder: bool) -> None:
    folder = write_tiny_imagenet(tmp_path)
    data = TinyImageNetSource(folder if point_at_folder else tmp_path).load()
    assert data.name == "tiny_imagenet"
    assert data.inputs.shape == (9, 3, 64, 64) and data.inputs.dtype == torch.uint8
    assert data.num_classes == 3
    assert data.classes == ("goldfish", "tabby", "n03000000")  # sorted ids; words.txt lacks the third
    assert data.targets.tolist() == [0, 0, 1, 1, 2, 2, 2, 0, 2]
    colours = data.inputs.float().mean(dim=(2, 3))  # JPEG is lossy: compare mean colours
    expected = [TINY_COLOURS[wnid] for wnid in sorted(TINY_WNIDS) for _ in range(2)]
    expected[3] = (90, 90, 90)  # the grayscale JPEG, repeated into three channels
    expected += [TINY_COLOURS[wnid] for wnid in ("n03000000", "n01000000", "n03000000")]
    assert torch.allclose(colours, torch.tensor(expected, dtype=torch.float32), atol=3)
    gray = data.inputs[3]
    assert torch.equal(gray[0], gray[1]) and torch.equal(gray[1], gray[2])


def test_tiny_imagenet_subsets_and_progress_bar(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_tiny_imagenet(tmp_path)
    monkeypatch.setattr(vision, "_PROGRESS_MIN_FILES", 0)
    val = TinyImageNetSource(tmp_path, subsets=("val",)).load()
    assert val.targets.tolist() == [2, 0, 2]
    assert TinyImageNetSource(tmp_path, subsets=("val", "train")).load().targets.tolist()[:6] == [
        0,
        0,
        1,
        1,
        2,
        2,
    ]


def test_tiny_imagenet_refuses_download_and_test(tmp_path: Path) -> None:
    with pytest.raises(
        ValueError,
        match=r"Expected `download` to be False because Tiny ImageNet cannot be downloaded through"
        r" torchvision, but got True. Unzip tiny-imagenet-200.zip",
    ):
        TinyImageNetSource(tmp_path, download=True)
    with pytest.raises(
        ValueError,
        match=r"Expected `subsets` to name labelled splits of Tiny ImageNet out of \('train', 'val'\),"
        r" but got 'test', which has no labels.",
    ):
        TinyImageNetSource(tmp_path, subsets=("test",))


def test_tiny_imagenet_missing_files(tmp_path: Path) -> None:
    with pytest.raises(
        FileNotFoundError,
        match=r"Expected `root` to be a folder holding the Tiny ImageNet folder 'tiny-imagenet-200/'"
        r" \(wnids.txt, train/, val/\), but '.*nowhere' does not exist.",
    ):
        TinyImageNetSource(tmp_path / "nowhere").load()
    with pytest.raises(
        FileNotFoundError,
        match=r"Expected `root` to hold the Tiny ImageNet folder .* or to be that folder, but neither"
        r" '.*tiny-imagenet-200/wnids.txt' nor '.*/wnids.txt' exists.",
    ):
        TinyImageNetSource(tmp_path).load()
    folder = write_tiny_imagenet(tmp_path)
    (folder / "val" / "images" / "val_1.JPEG").unlink()
    with pytest.raises(
        FileNotFoundError,
        match=r"Expected `root` to hold every validation image listed in '.*val_annotations.txt', but"
        r" '.*val/images/val_1.JPEG' is missing.",
    ):
        TinyImageNetSource(tmp_path, subsets=("val",)).load()
    (folder / "val" / "val_annotations.txt").unlink()
    with pytest.raises(FileNotFoundError, match=r"with the validation labels, but '.*val_annotations.txt' is missing"):
        TinyImageNetSource(tmp_path, subsets=("val",)).load()
    for image in (folder / "train" / "n02000000" / "images").iterdir():
        image.unlink()
    (folder / "train" / "n02000000" / "images").rmdir()
    with pytest.raises(
        FileNotFoundError,
        match=r"with a training folder for every id in wnids.txt, but '.*train/n02000000/images' is missing.",
    ):
        TinyImageNetSource(tmp_path, subsets=("train",)).load()


def test_tiny_imagenet_malformed_files(tmp_path: Path) -> None:
    folder = write_tiny_imagenet(tmp_path)
    (folder / "val" / "val_annotations.txt").write_text("val_0.JPEG\tn03000000\nval_1.JPEG\tn09999999\n")
    with pytest.raises(
        ValueError,
        match=r"Expected line 2 of '.*val_annotations.txt' to be a file name, a tab and a WordNet id from"
        r" wnids.txt, but got 'val_1.JPEG\\tn09999999'.",
    ):
        TinyImageNetSource(tmp_path, subsets=("val",)).load()
    save_jpeg(folder / "train" / "n01000000" / "images" / "n01000000_1.JPEG", (1, 2, 3), size=(32, 48))
    with pytest.raises(ValueError, match=r"Expected '.*n01000000_1.JPEG' to be 64×64 pixels, but it is 32×48."):
        TinyImageNetSource(tmp_path, subsets=("train",)).load()
    (folder / "train" / "n01000000" / "images" / "n01000000_1.JPEG").write_bytes(b"\xff\xd8\xff not a jpeg")
    with pytest.raises(ValueError, match=r"Expected '.*n01000000_1.JPEG' to be a readable image, but reading it"):
        TinyImageNetSource(tmp_path, subsets=("train",)).load()
    (folder / "wnids.txt").write_text("n01000000\nn01000000\n")
    with pytest.raises(ValueError, match=r"Expected '.*wnids.txt' to list each WordNet id once, but 'n01000000'"):
        TinyImageNetSource(tmp_path).load()
    (folder / "wnids.txt").write_text("\n")
    with pytest.raises(ValueError, match=r"Expected '.*wnids.txt' to list one WordNet id per line, but it is empty."):
        TinyImageNetSource(tmp_path).load()


# --------------------------------------------------------------------------------------------
# Arguments and downloads
# --------------------------------------------------------------------------------------------


def test_argument_checks(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match=r"Expected `root` to be a path \(str or os.PathLike\), but got int."):
        MNISTSource(3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"Expected `download` to be a boolean, but got str."):
        CIFAR10Source(tmp_path, download="yes")  # type: ignore[arg-type]
    with pytest.raises(
        TypeError,
        match=r"Expected `subsets` to be a tuple of split names such as \('train', 'test'\),"
        r" but got 'train'.",
    ):
        CIFAR10Source(tmp_path, subsets="train")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"Expected `subsets` to name at least one split of CIFAR-100 out of"):
        CIFAR100Source(tmp_path, subsets=())
    with pytest.raises(
        ValueError,
        match=r"Expected `subsets` to name each split of MNIST once, but got \('train', 'train'\).",
    ):
        MNISTSource(tmp_path, subsets=("train", "train"))
    with pytest.raises(
        ValueError,
        match=r"Expected `subsets` to be splits of Fashion-MNIST out of \('train', 'test'\), but got 'val'.",
    ):
        FashionMNISTSource(tmp_path, subsets=["val"])  # type: ignore[arg-type]
    assert CIFAR10Source(tmp_path, subsets=["test"]).subsets == ("test",)  # type: ignore[arg-type]
    assert repr(SVHNSource("data")) == "SVHNSource(root='data', download=False, subsets=('train', 'test'))"


@pytest.mark.parametrize(
    ("source_class", "torchvision_class", "arguments"),
    [
        (MNISTSource, "MNIST", {"train": True, "download": True}),
        (FashionMNISTSource, "FashionMNIST", {"train": True, "download": True}),
        (CIFAR10Source, "CIFAR10", {"train": True, "download": True}),
        (CIFAR100Source, "CIFAR100", {"train": True, "download": True}),
        (STL10Source, "STL10", {"split": "train", "download": True}),
    ],
)
def test_prepare_delegates_download_to_torchvision(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    source_class: type[MNISTSource],
    torchvision_class: str,
    arguments: dict[str, Any],
) -> None:
    import torchvision.datasets

    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(torchvision.datasets, torchvision_class, lambda **kwargs: calls.append(kwargs))
    source_class(tmp_path).prepare()
    assert calls == []  # download=False: prepare does nothing
    source_class(tmp_path, download=True).prepare()
    assert calls == [{"root": str(tmp_path), **arguments}]


def test_prepare_downloads_only_what_is_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torchvision.datasets

    def fake_mnist(root: str, train: bool, download: bool) -> None:
        write_mnist(Path(root))

    monkeypatch.setattr(torchvision.datasets, "MNIST", fake_mnist)
    source = MNISTSource(tmp_path, download=True)
    source.prepare()
    assert len(source.load()) == 13

    def must_not_run(**kwargs: Any) -> None:
        raise AssertionError("the files are all there; nothing should be downloaded")

    monkeypatch.setattr(torchvision.datasets, "MNIST", must_not_run)
    source.prepare()

    write_svhn(tmp_path / "svhn")
    (tmp_path / "svhn" / "test_32x32.mat").unlink()
    splits: list[str] = []
    monkeypatch.setattr(torchvision.datasets, "SVHN", lambda root, split, download: splits.append(split))
    SVHNSource(tmp_path / "svhn", download=True, subsets=("train", "test", "extra")).prepare()
    assert splits == ["test"]


# --------------------------------------------------------------------------------------------
# conform_inputs
# --------------------------------------------------------------------------------------------


def make_data(inputs: torch.Tensor, name: str = "ood") -> SourceData:
    count = inputs.shape[0]
    return SourceData(
        name=name,
        inputs=inputs,
        targets=torch.arange(count, dtype=torch.int64) % 3,
        num_classes=3,
        classes=("a", "b", "c"),
    )


def constant(shape: tuple[int, ...], value: float, dtype: torch.dtype = torch.uint8) -> torch.Tensor:
    return torch.full(shape, value, dtype=dtype)


@pytest.mark.parametrize(
    ("source_shape", "target_shape"),
    [
        ((3, 96, 96), (3, 32, 32)),  # STL-10 into CIFAR-10
        ((1, 28, 28), (3, 32, 32)),  # MNIST into CIFAR-10
        ((3, 64, 64), (3, 32, 32)),  # Tiny ImageNet into CIFAR-100
        ((3, 32, 32), (1, 28, 28)),  # CIFAR into MNIST
        ((3, 32, 32), (64,)),  # CIFAR into digits
        ((1, 28, 28), (64,)),  # MNIST into digits
    ],
)
def test_conform_keeps_constant_images_constant(source_shape: tuple[int, ...], target_shape: tuple[int, ...]) -> None:
    data = make_data(constant((5, *source_shape), 173))
    dtype = torch.float32 if len(target_shape) == 1 else torch.uint8
    result = conform_inputs(data, target_shape, dtype)
    assert result.sample_shape == target_shape and result.inputs.dtype == dtype
    expected = 173 / 255 if dtype == torch.float32 else 173
    assert torch.allclose(result.inputs.double(), torch.full_like(result.inputs, expected, dtype=torch.float64))
    assert torch.equal(result.targets, data.targets)
    assert (result.name, result.num_classes, result.classes) == (data.name, data.num_classes, data.classes)


def test_conform_channel_conversions() -> None:
    red = torch.zeros(2, 3, 32, 32, dtype=torch.uint8)
    red[:, 0] = 255
    gray = conform_inputs(make_data(red), (1, 28, 28), torch.uint8).inputs
    assert gray.unique().tolist() == [76]  # 0.299 × 255, rounded
    digit = torch.arange(28 * 28, dtype=torch.float32).reshape(1, 1, 28, 28) % 256
    rgb = conform_inputs(make_data(digit.to(torch.uint8)), (3, 32, 32), torch.uint8).inputs
    assert torch.equal(rgb[:, 0], rgb[:, 1]) and torch.equal(rgb[:, 1], rgb[:, 2])
    same_size = conform_inputs(make_data(digit.to(torch.uint8)), (3, 28, 28), torch.uint8).inputs
    assert torch.equal(same_size[:, 2], digit[:, 0].to(torch.uint8))  # no resizing: values untouched


def test_conform_resizes_with_antialiasing() -> None:
    checkerboard = ((torch.arange(96)[:, None] + torch.arange(96)[None, :]) % 2 * 255).to(torch.uint8)
    data = make_data(checkerboard.expand(1, 3, 96, 96).clone())
    small = conform_inputs(data, (3, 32, 32), torch.uint8).inputs.float()
    # plain bilinear would pick single pixels (0 or 255); antialiasing averages each 3×3 block
    interior = small[..., 1:-1, 1:-1]
    assert interior.min() >= 70 and interior.max() <= 185


def test_conform_to_digit_features_and_float_images() -> None:
    images = torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8)
    features = conform_inputs(make_data(images), (64,), torch.float32).inputs
    assert features.shape == (4, 64) and features.dtype == torch.float32
    assert features.min() >= 0 and features.max() <= 1
    as_float = conform_inputs(make_data(images), (3, 32, 32), torch.float32).inputs
    assert torch.allclose(as_float * 255, images.float(), atol=1e-4)
    digits = make_data(torch.rand(6, 64))  # digits' own features, as DigitsSource gives them
    upscaled = conform_inputs(digits, (3, 32, 32), torch.uint8)
    assert upscaled.sample_shape == (3, 32, 32) and upscaled.inputs.dtype == torch.uint8
    white = conform_inputs(make_data(torch.ones(2, 64)), (1, 28, 28), torch.uint8).inputs
    assert white.unique().tolist() == [255]


def test_conform_returns_matching_data_unchanged_and_works_in_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    data = make_data(torch.randint(0, 256, (7, 3, 32, 32), dtype=torch.uint8))
    assert conform_inputs(data, (3, 32, 32), torch.uint8) is data
    whole = conform_inputs(data, (1, 20, 20), torch.uint8).inputs
    monkeypatch.setattr(vision, "_CONFORM_CHUNK_VALUES", 1000)  # one sample per chunk
    assert torch.equal(conform_inputs(data, (1, 20, 20), torch.uint8).inputs, whole)
    empty = conform_inputs(make_data(torch.zeros(0, 1, 28, 28, dtype=torch.uint8)), (3, 32, 32), torch.uint8)
    assert empty.inputs.shape == (0, 3, 32, 32)


def test_conform_errors() -> None:
    data = make_data(torch.zeros(2, 3, 32, 32, dtype=torch.uint8))
    with pytest.raises(
        ValueError,
        match=r"Expected `sample_shape` \(D,\) to be a flattened square grayscale image, so D a square"
        r" number such as 64 for 8×8, but got \(50,\).",
    ):
        conform_inputs(data, (50,), torch.float32)
    with pytest.raises(
        ValueError,
        match=r"Expected `sample_shape` to be \(C, H, W\) for images or \(D,\) for flattened square grayscale"
        r" images, but got \(1, 3, 32, 32\).",
    ):
        conform_inputs(data, (1, 3, 32, 32), torch.uint8)
    with pytest.raises(ValueError, match=r"Expected `sample_shape` \(C, H, W\) to have 1 \(gray\) or 3 \(RGB\)"):
        conform_inputs(data, (4, 32, 32), torch.uint8)
    with pytest.raises(ValueError, match=r"Expected `sample_shape` to hold positive ints, but got \(3, 0, 32\)."):
        conform_inputs(data, (3, 0, 32), torch.uint8)
    with pytest.raises(TypeError, match=r"Expected `sample_shape` to be a tuple of ints, but got '3x32x32'."):
        conform_inputs(data, "3x32x32", torch.uint8)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"Expected `dtype` to be torch.uint8 or a floating-point dtype, but got"):
        conform_inputs(data, (3, 32, 32), torch.int64)
    with pytest.raises(TypeError, match=r"Expected `dtype` to be a torch.dtype, but got str."):
        conform_inputs(data, (3, 32, 32), "uint8")  # type: ignore[arg-type]
    with pytest.raises(
        ValueError,
        match=r"Expected `data` to hold images \(N, C, H, W\) with 1 or 3 channels, or flattened square"
        r" grayscale images \(N, D\), but 'ood' holds samples of shape \(5, 7\).",
    ):
        conform_inputs(make_data(torch.zeros(2, 5, 7)), (3, 32, 32), torch.uint8)
    with pytest.raises(TypeError, match=r"Expected `data` to hold uint8 images or floating-point features, but"):
        conform_inputs(make_data(torch.zeros(2, 64, dtype=torch.int32)), (3, 32, 32), torch.uint8)
