"""Progress bars on stderr, shown when a person is watching.

Lightning's :class:`~lightning.pytorch.callbacks.TQDMProgressBar` writes to stdout, so a run
whose output is redirected to a file fills it with bar redraws. Here bars go to stderr, and
by default appear only when stderr is a terminal: stdout holds the results alone.
"""

from __future__ import annotations

import contextlib
import functools
import sys
from collections.abc import Callable

from lightning.pytorch.callbacks import Callback, TQDMProgressBar
from lightning.pytorch.callbacks.progress.tqdm_progress import Tqdm

__all__ = ["StderrProgressBar", "progress_callbacks", "show_progress"]


def _on_stderr(create: Callable[[TQDMProgressBar], Tqdm]) -> Callable[[TQDMProgressBar], Tqdm]:
    """Wrap one of Lightning's ``init_*_tqdm`` methods so that the bar it creates draws on stderr."""

    # Lightning's bars read ``sys.stdout`` when each is created; pointing it at stderr for
    # that moment moves the bar and nothing else.
    @functools.wraps(create)
    def create_on_stderr(bar: TQDMProgressBar) -> Tqdm:
        with contextlib.redirect_stdout(sys.stderr):
            return create(bar)

    return create_on_stderr


class StderrProgressBar(TQDMProgressBar):
    """Lightning's tqdm progress bar, drawn on stderr instead of stdout.

    Example:
        >>> import lightning as L
        >>> trainer = L.Trainer(callbacks=[StderrProgressBar()], logger=False)  # doctest: +SKIP
    """

    init_sanity_tqdm = _on_stderr(TQDMProgressBar.init_sanity_tqdm)
    init_train_tqdm = _on_stderr(TQDMProgressBar.init_train_tqdm)
    init_predict_tqdm = _on_stderr(TQDMProgressBar.init_predict_tqdm)
    init_validation_tqdm = _on_stderr(TQDMProgressBar.init_validation_tqdm)
    init_test_tqdm = _on_stderr(TQDMProgressBar.init_test_tqdm)


def show_progress(setting: bool | None) -> bool:
    """Whether to draw progress bars: ``setting``, or for ``None`` whether stderr is a terminal.

    Args:
        setting: ``True`` or ``False`` to decide; ``None`` for automatic.

    Returns:
        The decision.

    Raises:
        TypeError: ``setting`` is neither a boolean nor ``None``.

    Example:
        >>> show_progress(False)
        False
    """
    if setting is None:
        isatty = getattr(sys.stderr, "isatty", None)
        return bool(isatty()) if callable(isatty) else False
    if not isinstance(setting, bool):
        raise TypeError(f"Expected `progress_bar` to be a boolean or None, but got {type(setting).__name__}.")
    return setting


def progress_callbacks(enabled: bool) -> list[Callback]:
    """The callbacks for a Trainer built with ``enable_progress_bar=enabled``: a :class:`StderrProgressBar`, or none."""
    return [StderrProgressBar()] if enabled else []
