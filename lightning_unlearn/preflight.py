"""Checks an experiment runs before it trains anything: its methods' settings and its data files.

A mistake in a method's settings or a missing data file should cost seconds, not the hours of
training the target, the shadow and the retrained model that come first.
:func:`check_experiment` runs at the start of
:func:`~lightning_unlearn.pipeline.run_experiment`.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping
from pathlib import Path
from typing import Any

from lightning_unlearn.datamodules.base import UnlearningDataModule
from lightning_unlearn.datamodules.sources import DataSource, TextSource, TinyImageNetSource
from lightning_unlearn.method_settings import check_methods

__all__ = ["check_data_files", "check_experiment"]


def check_experiment(
    datamodule: UnlearningDataModule,
    methods: Mapping[str, Mapping[str, Any] | None],
    available: Collection[str],
) -> dict[str, dict[str, Any]]:
    """Check the methods' names and settings, then the data files; nothing is trained or read.

    Args:
        datamodule: the experiment's splits (not yet set up).
        methods: method name → settings, as ``run_experiment`` takes them.
        available: the method names the pipeline can run.

    Returns:
        ``methods`` as plain dictionaries (``None`` settings become ``{}``).

    Raises:
        ValueError, TypeError: see :func:`~lightning_unlearn.method_settings.check_methods`.
        FileNotFoundError, NotADirectoryError: see :func:`check_data_files`.
    """
    checked = check_methods(methods, available)
    check_data_files(datamodule)
    return checked


def check_data_files(datamodule: UnlearningDataModule) -> None:
    """Check that the files the datamodule's sources will read exist, where a source can tell cheaply.

    Vision sources (MNIST, CIFAR …) name every file of their chosen ``subsets``; Tiny ImageNet
    its folders; text sources their ``root`` folder. A source that will download its files
    (``download=True``), the bundled digits, and a datamodule whose splits are already built are
    not checked.

    Args:
        datamodule: the experiment's splits.

    Raises:
        FileNotFoundError: a folder or file is missing; for a split of a vision source, the
            message names the ``subsets`` that would load only the splits present.
        NotADirectoryError: a source's ``root`` is a file.
    """
    if datamodule.has_splits:
        return
    for role, source in _sources(datamodule):
        _check_source(role, source)


def _sources(datamodule: UnlearningDataModule) -> Iterator[tuple[str, DataSource]]:
    source = getattr(datamodule, "source", None)
    if isinstance(source, DataSource):
        yield "source", source
    ood_source = getattr(datamodule, "ood_source", None)
    if isinstance(ood_source, DataSource) and datamodule.kind in ("ood_foreign", "ood_mislabeled"):
        yield "ood_source", ood_source


def _check_source(role: str, source: DataSource) -> None:
    if isinstance(source, TextSource):
        if not source.root.exists():
            raise FileNotFoundError(
                f"Expected `root` of the {role} to be a folder holding {source.layout}, but '{source.root}' does not"
                " exist. This source reads local files only; see lightning_unlearn.datamodules.sources.text for where"
                " to get them."
            )
        if not source.root.is_dir():
            raise NotADirectoryError(
                f"Expected `root` of the {role} to be a folder holding {source.layout}, but '{source.root}' is not a"
                " folder."
            )
        return
    if getattr(source, "download", False):
        return  # prepare() fetches what is missing
    if isinstance(source, TinyImageNetSource):
        fetch = "Unzip tiny-imagenet-200.zip into `root`"
    else:
        fetch = "Pass download=True to fetch them"
    _raise_for_missing(role, source, source.missing_files(), fetch)


def _raise_for_missing(role: str, source: Any, missing: Mapping[str, list[Path]], fetch: str) -> None:
    if not missing:
        return
    split, paths = next(iter(missing.items()))
    present = [name for name in source.subsets if name not in missing]
    if present:
        listed = ", ".join(present)
        advice = (
            f"{fetch}, or load only the splits that are there with `subsets: [{listed}]`"
            f" (--data.{role}.subsets '[{listed}]')."
        )
    else:
        advice = f"{fetch}; `subsets` chooses which of {list(source.splits)} are loaded."
    raise FileNotFoundError(
        f"Expected `root` of the {role} to hold {source.layout}, but '{paths[0]}' (the {split!r} split) is missing."
        f" {advice}"
    )
