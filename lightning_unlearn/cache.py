"""An on-disk cache of trained artefacts (targets, shadows, oracles), keyed by their config.

Comparing six methods should train the target once. Each artefact is stored in a folder
named by a hash of everything that determines it (dataset, splits, recipe, seed), so a
changed setting never reuses a stale model. Entries are written to a temporary folder and
renamed into place, so an interrupted run leaves no half-written entry behind.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

__all__ = ["ArtifactCache", "CachedValue", "config_key"]

log = logging.getLogger(__name__)

T = TypeVar("T")


def _canonical(value: Any) -> Any:
    """A JSON-ready, order-independent form of a config value."""
    if isinstance(value, Mapping):
        return {str(k): _canonical(v) for k, v in sorted(value.items(), key=lambda item: str(item[0]))}
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    raise TypeError(
        f"Expected a cache config of JSON values (str, number, bool, None, lists, mappings), but got"
        f" {type(value).__name__}: describe it by its settings instead."
    )


def config_key(config: Mapping[str, Any]) -> str:
    """A short stable hash of ``config`` (key order does not matter)."""
    payload = json.dumps(_canonical(config), sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class CachedValue(Generic[T]):
    """What :meth:`ArtifactCache.get_or_build` returns: the value, and whether it came from disk."""

    value: T
    from_cache: bool
    folder: Path | None


class ArtifactCache:
    """A folder of cached artefacts, one sub-folder per (kind, config).

    Args:
        root: the cache folder; ``None`` disables caching (every request builds afresh).

    Example:
        >>> import tempfile
        >>> cache = ArtifactCache(tempfile.mkdtemp())
        >>> built = cache.get_or_build(
        ...     "answer", {"question": 6 * 7},
        ...     build=lambda: 42,
        ...     save=lambda value, folder: (folder / "value.txt").write_text(str(value)),
        ...     load=lambda folder: int((folder / "value.txt").read_text()),
        ... )
        >>> built.value, built.from_cache
        (42, False)
    """

    def __init__(self, root: str | os.PathLike[str] | None) -> None:
        self.root = None if root is None else Path(root)

    def folder(self, kind: str, config: Mapping[str, Any]) -> Path | None:
        """Where the artefact of ``kind`` built from ``config`` lives (``None`` without a root)."""
        if self.root is None:
            return None
        return self.root / f"{kind}-{config_key(config)}"

    def get_or_build(
        self,
        kind: str,
        config: Mapping[str, Any],
        build: Callable[[], T],
        save: Callable[[T, Path], object],
        load: Callable[[Path], T],
    ) -> CachedValue[T]:
        """Load the cached artefact, or build it, save it atomically and return it."""
        folder = self.folder(kind, config)
        if folder is not None and (folder / "config.json").is_file():
            stored = json.loads((folder / "config.json").read_text())
            if stored != _canonical(config):
                raise RuntimeError(
                    f"Expected the cached {kind} in {str(folder)!r} to have been built from this configuration, but"
                    " its config.json differs (edited or copied from another run). Delete that folder to rebuild it."
                )
            log.info("Reusing cached %s from %s", kind, folder)
            return CachedValue(load(folder), True, folder)
        value = build()
        if folder is None:
            return CachedValue(value, False, None)
        folder.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}."))
        try:
            save(value, staging)
            (staging / "config.json").write_text(json.dumps(_canonical(config), indent=2, sort_keys=True))
            if folder.exists():  # a concurrent run finished first: keep its entry
                shutil.rmtree(staging)
            else:
                os.replace(staging, folder)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        log.info("Cached %s in %s", kind, folder)
        return CachedValue(value, False, folder)
