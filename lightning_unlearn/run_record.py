"""What a run records beside its report: the resolved settings and the machine it ran on.

A report means little without the settings that produced it. Every experiment writes
``run.json`` (every setting with its defaults filled in, the versions of lightning-unlearn,
torch and Lightning, and the device); the command line also writes ``config.yaml``, the
configuration jsonargparse resolved, which ``--config`` accepts back as it is.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lightning_unlearn.storage import atomic_write_text

if TYPE_CHECKING:
    from lightning_unlearn.datamodules.base import UnlearningDataModule
    from lightning_unlearn.training import TrainingRecipe

__all__ = ["environment", "experiment_settings", "write_config", "write_run_record"]

RUN_RECORD = "run.json"
CONFIG = "config.yaml"


def environment() -> dict[str, Any]:
    """The versions and the device a run used.

    Returns:
        ``lightning_unlearn``, ``torch``, ``lightning`` and ``python`` versions, the platform,
        the CPU's name and core count, and the CUDA devices' names (an empty list without CUDA).

    Example:
        >>> sorted(environment())  # doctest: +NORMALIZE_WHITESPACE
        ['cpu', 'cpu_count', 'cuda_devices', 'device', 'lightning', 'lightning_unlearn', 'platform', 'python', 'torch']
    """
    import lightning
    import torch

    import lightning_unlearn

    cuda = [torch.cuda.get_device_name(index) for index in range(torch.cuda.device_count())]
    return {
        "lightning_unlearn": lightning_unlearn.__version__,
        "torch": torch.__version__,
        "lightning": lightning.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "device": cuda[0] if cuda else "cpu",
        "cuda_devices": cuda,
        "cpu": _cpu_name(),
        "cpu_count": os.cpu_count(),
    }


def write_run_record(out: str | os.PathLike[str], settings: Mapping[str, Any]) -> Path:
    """Write ``run.json`` in ``out``: the run's settings, the command that started it, and :func:`environment`.

    Args:
        out: the run's output folder (created if missing).
        settings: every setting of the run; values that are not JSON (modules, sources,
            functions) are written as their ``repr`` or dotted name.

    Returns:
        The path of ``run.json``.
    """
    record = {"settings": _jsonable(settings), "command": sys.argv, "environment": environment()}
    return atomic_write_text(Path(out) / RUN_RECORD, json.dumps(record, indent=2) + "\n")


def write_config(out: str | os.PathLike[str], text: str) -> Path:
    """Write ``config.yaml`` in ``out``: the resolved configuration of a command-line run.

    Args:
        out: the run's output folder (created if missing).
        text: the configuration as YAML, e.g. jsonargparse's ``parser.dump(config)``.

    Returns:
        The path of ``config.yaml``.
    """
    return atomic_write_text(Path(out) / CONFIG, text)


def experiment_settings(
    datamodule: UnlearningDataModule,
    recipe: TrainingRecipe,
    methods: Mapping[str, Mapping[str, Any]],
    **others: Any,
) -> dict[str, Any]:
    """The settings of one ``run_experiment`` call, each method's defaults filled in.

    Args:
        datamodule: the experiment's :class:`~lightning_unlearn.datamodules.UnlearningDataModule`.
        recipe: its :class:`~lightning_unlearn.training.TrainingRecipe`.
        methods: method name → the settings given.
        **others: any other argument of the run (seed, cache folder …), recorded as given; a
            method's own ``progress_bar``, when not set, follows the run's.

    Returns:
        ``{"data": …, "recipe": …, "methods": …, **others}``.
    """
    from lightning_unlearn.method_settings import resolved_settings

    data = {"class": _dotted(type(datamodule)), **dict(getattr(datamodule, "hparams", {}))}
    for role in ("source", "ood_source"):
        source = getattr(datamodule, role, None)
        if source is not None:
            data[role] = repr(source) if type(source).__repr__ is not object.__repr__ else _dotted(type(source))
    recipe_settings = {field.name: getattr(recipe, field.name) for field in dataclasses.fields(recipe)}
    recipe_settings["backbone"] = None if recipe.backbone is None else repr(recipe.backbone)
    resolved = {name: resolved_settings(name, settings) for name, settings in methods.items()}
    for name, method in resolved.items():  # a method's own bars follow the run's unless set (as SISA's do)
        if "progress_bar" in method and "progress_bar" not in methods[name] and "progress_bar" in others:
            method["progress_bar"] = others["progress_bar"]
    return {"data": data, "recipe": recipe_settings, "methods": resolved, **others}


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(item) for item in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, type) or (callable(value) and hasattr(value, "__qualname__")):
        return _dotted(value)
    return repr(value)


def _dotted(value: Any) -> str:
    return f"{value.__module__}.{value.__qualname__}"


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
