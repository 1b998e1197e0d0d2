"""Argument checks shared by the whole package, with the project's form of error message.

Every check names the argument, says what was expected and shows what was given:
"Expected `batch_size` to be a positive integer, but got 0." A ``TypeError`` means the wrong
kind of value, a ``ValueError`` a value of the right kind outside its range. Each check
returns the value it accepted (as ``int``, ``float``, ``bool`` or ``Path``), so a setting can be
checked and stored in one line::

    self.iterations = check_integer("iterations", iterations, meaning="T, the number of iterations")

``meaning`` says what the argument is, in the words of the paper or the docs; it follows the
argument's name in the message. ``reason`` says why a bound holds and follows the bound.
Booleans are not numbers here: ``True`` is refused where an integer or a number is expected.
numpy scalars are numbers like Python's (``np.int64`` is an integer, ``np.float32`` a number).

Example:
    >>> check_integer("epochs", 3)
    3
    >>> check_integer("epochs", 0)
    Traceback (most recent call last):
    ...
    ValueError: Expected `epochs` to be a positive integer, but got 0.
    >>> check_in_range("dropout", 1.0, 0.0, 1.0, include_high=False)
    Traceback (most recent call last):
    ...
    ValueError: Expected `dropout` to be in [0, 1), but got 1.0.
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Collection
from pathlib import Path
from typing import TypeVar

__all__ = [
    "check_bool",
    "check_choice",
    "check_in_range",
    "check_integer",
    "check_non_negative",
    "check_number",
    "check_path",
    "check_positive",
]

Choice = TypeVar("Choice")


def _subject(name: str, meaning: str | None) -> str:
    return f"`{name}` ({meaning})" if meaning else f"`{name}`"


def _because(reason: str | None) -> str:
    return f" ({reason})" if reason else ""


def check_integer(
    name: str, value: object, minimum: int | None = 1, *, meaning: str | None = None, reason: str | None = None
) -> int:
    """Check that ``value`` is an integer (not a bool) of at least ``minimum``.

    Args:
        name: the argument's name, as the user writes it.
        value: the value given.
        minimum: the smallest value allowed; ``None`` for no bound. The message says "a positive
            integer" for 1, "a non-negative integer" for 0 and "at least ``minimum``" otherwise.
        meaning: what the argument is, shown after its name.
        reason: why the bound holds, shown after the bound.

    Returns:
        ``value`` as an ``int``.

    Raises:
        TypeError: ``value`` is not an integer (or is a bool).
        ValueError: ``value`` is below ``minimum``.

    Example:
        >>> check_integer("vocab_size", 2, 3, reason="<pad>, <unk> and at least one token")
        Traceback (most recent call last):
        ...
        ValueError: Expected `vocab_size` to be at least 3 (<pad>, <unk> and at least one token), but got 2.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"Expected `{name}` to be an integer, but got {type(value).__name__}.")
    value = int(value)
    if minimum is not None and value < minimum:
        if minimum == 1:
            bound = "a positive integer"
        elif minimum == 0:
            bound = "a non-negative integer"
        else:
            bound = f"at least {minimum}"
        raise ValueError(f"Expected {_subject(name, meaning)} to be {bound}{_because(reason)}, but got {value}.")
    return value


def check_number(name: str, value: object, *, meaning: str | None = None) -> float:
    """Check that ``value`` is a finite real number (not a bool).

    Args:
        name: the argument's name.
        value: the value given.
        meaning: what the argument is, shown after its name.

    Returns:
        ``value`` as a float.

    Raises:
        TypeError: ``value`` is not a number.
        ValueError: ``value`` is infinite or NaN.

    Example:
        >>> check_number("xi", 2)
        2.0
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"Expected `{name}` to be a number, but got {type(value).__name__}.")
    if not math.isfinite(value):
        raise ValueError(f"Expected {_subject(name, meaning)} to be finite, but got {value}.")
    return float(value)


def check_positive(name: str, value: object, *, meaning: str | None = None) -> float:
    """Check that ``value`` is a finite number above 0.

    Raises:
        TypeError: ``value`` is not a number.
        ValueError: ``value`` is infinite, NaN, zero or negative.

    Example:
        >>> check_positive("temperature", 0, meaning="T")
        Traceback (most recent call last):
        ...
        ValueError: Expected `temperature` (T) to be positive, but got 0.
    """
    number = check_number(name, value, meaning=meaning)
    if not number > 0:
        raise ValueError(f"Expected {_subject(name, meaning)} to be positive, but got {value}.")
    return number


def check_non_negative(name: str, value: object, *, meaning: str | None = None) -> float:
    """Check that ``value`` is a finite number of at least 0.

    Raises:
        TypeError: ``value`` is not a number.
        ValueError: ``value`` is infinite, NaN or negative.

    Example:
        >>> check_non_negative("l1_weight", -0.1, meaning="γ")
        Traceback (most recent call last):
        ...
        ValueError: Expected `l1_weight` (γ) to be non-negative, but got -0.1.
    """
    number = check_number(name, value, meaning=meaning)
    if not number >= 0:
        raise ValueError(f"Expected {_subject(name, meaning)} to be non-negative, but got {value}.")
    return number


def check_in_range(
    name: str,
    value: object,
    low: float,
    high: float,
    *,
    include_low: bool = True,
    include_high: bool = True,
    meaning: str | None = None,
    reason: str | None = None,
) -> float:
    """Check that ``value`` is a number between ``low`` and ``high``, ends included or not.

    Args:
        name: the argument's name.
        value: the value given.
        low: the lower end.
        high: the upper end.
        include_low: whether ``low`` itself is allowed.
        include_high: whether ``high`` itself is allowed.
        meaning: what the argument is, shown after its name.
        reason: why the interval holds, shown after it.

    Returns:
        ``value`` as a float.

    Raises:
        TypeError: ``value`` is not a number.
        ValueError: ``value`` is outside the interval (NaN always is).

    Example:
        >>> check_in_range("saliency_ratio", 0.5, 0.0, 1.0, include_low=False)
        0.5
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"Expected `{name}` to be a number, but got {type(value).__name__}.")
    number = float(value)
    above = number >= low if include_low else number > low
    below = number <= high if include_high else number < high
    if not (above and below):
        interval = f"{'[' if include_low else '('}{low:g}, {high:g}{']' if include_high else ')'}"
        raise ValueError(f"Expected {_subject(name, meaning)} to be in {interval}{_because(reason)}, but got {value}.")
    return number


def check_bool(name: str, value: object) -> bool:
    """Check that ``value`` is ``True`` or ``False`` (not 0 or 1).

    Raises:
        TypeError: ``value`` is not a bool.

    Example:
        >>> check_bool("download", "yes")
        Traceback (most recent call last):
        ...
        TypeError: Expected `download` to be a boolean, but got str.
    """
    if not isinstance(value, bool):
        raise TypeError(f"Expected `{name}` to be a boolean, but got {type(value).__name__}.")
    return value


def check_choice(name: str, value: Choice, choices: Collection[object]) -> Choice:
    """Check that ``value`` is one of ``choices``.

    Raises:
        ValueError: ``value`` is not among ``choices``.

    Example:
        >>> check_choice("variance", "global", ("global", "per_example"))
        'global'
    """
    if value not in choices:
        raise ValueError(f"Expected `{name}` to be one of {list(choices)}, but got {value!r}.")
    return value


def check_path(name: str, value: object) -> Path:
    """Check that ``value`` is a path (a ``str`` or an ``os.PathLike``) and return it as a ``Path``.

    Nothing is read: whether the path exists is the caller's question.

    Raises:
        TypeError: ``value`` is neither a ``str`` nor an ``os.PathLike``.

    Example:
        >>> check_path("root", "data").name
        'data'
    """
    if not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"Expected `{name}` to be a path (str or os.PathLike), but got {type(value).__name__}.")
    return Path(value)
