"""Atomic file writes: a reader sees the old file or the whole new one, never a half-written one.

A run that is interrupted (a crash, a full disk, Ctrl-C) while it writes a checkpoint, a split
manifest, a report or a picture must not leave a truncated file that a later run would read.
Every file the package writes for later reading goes through :func:`atomic_write`: the content
is written to a temporary file in the same folder, flushed to disk, then renamed over the
target with ``os.replace``, which is atomic on POSIX and Windows file systems. On failure the
temporary file is removed and the target is left as it was.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

__all__ = ["atomic_write", "atomic_write_text"]


def atomic_write(path: str | os.PathLike[str], write: Callable[[IO[bytes]], Any]) -> Path:
    """Write ``path`` through ``write(file)`` on a temporary binary file, then rename it into place.

    The parent folder is created if needed.

    Args:
        path: the file to write.
        write: writes the whole content to the open binary file it is given (for instance
            ``lambda file: torch.save(payload, file)``).

    Returns:
        ``path`` as a ``Path``.

    Raises:
        Whatever ``write`` or the file system raises; ``path`` is then unchanged.

    Example:
        >>> import tempfile
        >>> target = Path(tempfile.mkdtemp()) / "numbers.bin"
        >>> atomic_write(target, lambda file: file.write(bytes([1, 2, 3]))).read_bytes()
        b'\\x01\\x02\\x03'
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return target


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` to ``path`` as UTF-8, atomically (see :func:`atomic_write`).

    Example:
        >>> import tempfile
        >>> target = Path(tempfile.mkdtemp()) / "notes" / "hello.txt"
        >>> atomic_write_text(target, "héllo").read_text(encoding="utf-8")
        'héllo'
    """
    return atomic_write(path, lambda file: file.write(text.encode("utf-8")))
