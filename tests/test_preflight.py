"""Mistakes in an experiment's settings or data fail before anything trains."""

from __future__ import annotations

from pathlib import Path

import pytest

from lightning_unlearn import DigitsDataModule, UnlearningDataModule
from lightning_unlearn.datamodules import IMDBCustomerReviewDataModule
from lightning_unlearn.datamodules.sources import CIFAR10Source, MNISTSource, TinyImageNetSource
from lightning_unlearn.pipeline import METHODS, run_experiment
from lightning_unlearn.preflight import check_data_files, check_experiment


def test_a_settings_typo_fails_before_anything_is_trained_or_cached(tmp_path: Path) -> None:
    cache, out = tmp_path / "cache", tmp_path / "out"
    with pytest.raises(ValueError, match=r"but got `iteration`\. Did you mean `iterations`\?"):
        run_experiment(methods={"forsaken": {"iteration": 40}}, output_dir=out, cache_dir=cache)
    assert not cache.exists() or list(cache.iterdir()) == [], "nothing was trained or cached"
    assert not out.exists()


@pytest.mark.parametrize(
    ("methods", "error", "match"),
    [
        ({"forsaken[recommended]": {"head": "fc"}}, ValueError,
         r"Expected `head` to name a submodule of the target \(MLP\) that has parameters \(one of '1', '3', '5'\),"
         r" but got 'fc'\."),
        ({"forsaken[mine]": {"projection_energy": 2.0}}, ValueError, r"Expected `projection_energy` .* but got 2\.0"),
    ],
)  # fmt: skip
def test_a_forsaken_setting_the_architecture_cannot_take_fails_before_anything_trains(
    tmp_path: Path, methods: dict, error: type[Exception], match: str
) -> None:
    cache = tmp_path / "cache"
    with pytest.raises(error, match=match):
        run_experiment(methods=methods, output_dir=tmp_path / "out", cache_dir=cache, progress_bar=False)
    assert not cache.exists() or list(cache.iterdir()) == [], "nothing was trained or cached"


def mnist_test_split_only(root: Path) -> None:
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    (raw / "t10k-images-idx3-ubyte").write_bytes(b"")  # present is enough: nothing is read
    (raw / "t10k-labels-idx1-ubyte.gz").write_bytes(b"")


def test_a_missing_training_split_suggests_subsets(tmp_path: Path) -> None:
    mnist_test_split_only(tmp_path)
    datamodule = UnlearningDataModule(MNISTSource(tmp_path), kind="id")
    with pytest.raises(
        FileNotFoundError,
        match=r"Expected `root` of the source to hold the MNIST idx files .* but '.*train-images-idx3-ubyte' \(the"
        r" 'train' split\) is missing\. Pass download=True to fetch them, or load only the splits that are there"
        r" with `subsets: \[test\]` \(--data.source.subsets '\[test\]'\)\.",
    ):
        check_data_files(datamodule)


def test_only_the_chosen_subsets_are_checked(tmp_path: Path) -> None:
    mnist_test_split_only(tmp_path)
    check_data_files(UnlearningDataModule(MNISTSource(tmp_path, subsets=("test",)), kind="id"))


def test_no_split_present_names_the_splits_subsets_can_choose(tmp_path: Path) -> None:
    with pytest.raises(
        FileNotFoundError,
        match=r"'.*data_batch_1' \(the 'train' split\) is missing\. Pass download=True to fetch them; `subsets`"
        r" chooses which of \['train', 'test'\] are loaded\.",
    ):
        check_data_files(UnlearningDataModule(CIFAR10Source(tmp_path), kind="id"))


def test_a_missing_root_is_the_sources_own_message(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"Expected `root` to be a folder holding .* does not exist"):
        check_data_files(UnlearningDataModule(MNISTSource(tmp_path / "nowhere"), kind="id"))


def test_a_source_that_downloads_is_not_checked(tmp_path: Path) -> None:
    check_data_files(UnlearningDataModule(MNISTSource(tmp_path / "nowhere", download=True), kind="id"))


def test_an_ood_source_is_checked_when_the_kind_uses_it(tmp_path: Path) -> None:
    mnist_test_split_only(tmp_path)
    datamodule = DigitsDataModule(kind="ood_foreign", ood_source=MNISTSource(tmp_path))
    with pytest.raises(FileNotFoundError, match=r"Expected `root` of the ood_source to hold the MNIST idx files"):
        check_data_files(datamodule)


def test_tiny_imagenet_missing_validation_labels(tmp_path: Path) -> None:
    folder = tmp_path / "tiny-imagenet-200"
    (folder / "train").mkdir(parents=True)
    (folder / "wnids.txt").write_text("n01000000\n")
    with pytest.raises(
        FileNotFoundError,
        match=r"'.*val_annotations\.txt' \(the 'val' split\) is missing\. Unzip tiny-imagenet-200\.zip into `root`,"
        r" or load only the splits that are there with `subsets: \[train\]`",
    ):
        check_data_files(UnlearningDataModule(TinyImageNetSource(tmp_path), kind="id"))


def test_a_text_source_without_its_folder(tmp_path: Path) -> None:
    datamodule = IMDBCustomerReviewDataModule(tmp_path / "no-imdb", tmp_path / "no-cr")
    with pytest.raises(
        FileNotFoundError, match=r"Expected `root` of the source to be a folder holding aclImdb/.* does not exist"
    ):
        check_experiment(datamodule, {"forsaken": {}}, available=METHODS)


def test_settings_are_checked_before_the_data(tmp_path: Path) -> None:
    datamodule = UnlearningDataModule(MNISTSource(tmp_path / "nowhere"), kind="id")
    with pytest.raises(ValueError, match=r"Expected method names from"):
        check_experiment(datamodule, {"magic": {}}, available=METHODS)
