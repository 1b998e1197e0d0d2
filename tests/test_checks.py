"""The shared argument checks: what each accepts, returns, and says when it refuses."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from lightning_unlearn.checks import (
    check_bool,
    check_choice,
    check_in_range,
    check_integer,
    check_non_negative,
    check_number,
    check_path,
    check_positive,
)


def test_accepted_values_come_back_in_their_plain_type() -> None:
    assert check_integer("n", np.int64(3)) == 3 and type(check_integer("n", np.int64(3))) is int
    assert check_integer("seed", -5, minimum=None) == -5
    assert check_number("x", np.float32(0.5)) == 0.5
    assert check_positive("lr", 1) == 1.0
    assert check_non_negative("weight", 0) == 0.0
    assert check_in_range("p", 1, 0, 1) == 1.0
    assert check_bool("flag", False) is False
    assert check_choice("mode", "a", ("a", "b")) == "a"
    assert check_path("root", "data") == Path("data")


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: check_integer("epochs", 0), ValueError, "Expected `epochs` to be a positive integer, but got 0."),
        (lambda: check_integer("seed", -1, 0), ValueError, "Expected `seed` to be a non-negative integer, but got -1."),
        (lambda: check_integer("folds", 1, 2), ValueError, "Expected `folds` to be at least 2, but got 1."),
        (
            lambda: check_integer("k", 0, meaning="K, the models", reason="one IN and one OUT"),
            ValueError,
            "Expected `k` (K, the models) to be a positive integer (one IN and one OUT), but got 0.",
        ),
        (lambda: check_integer("epochs", 2.0), TypeError, "Expected `epochs` to be an integer, but got float."),
        (lambda: check_integer("epochs", True), TypeError, "Expected `epochs` to be an integer, but got bool."),
        (lambda: check_number("xi", "1"), TypeError, "Expected `xi` to be a number, but got str."),
        (
            lambda: check_number("xi", float("inf"), meaning="ξ"),
            ValueError,
            "Expected `xi` (ξ) to be finite, but got inf.",
        ),
        (lambda: check_positive("lr", 0.0), ValueError, "Expected `lr` to be positive, but got 0.0."),
        (lambda: check_positive("lr", float("nan")), ValueError, "Expected `lr` to be finite, but got nan."),
        (lambda: check_non_negative("w", -1), ValueError, "Expected `w` to be non-negative, but got -1."),
        (
            lambda: check_in_range("p", 0.0, 0, 1, include_low=False, include_high=False),
            ValueError,
            "Expected `p` to be in (0, 1), but got 0.0.",
        ),
        (
            lambda: check_in_range("q", 0.05, 0, 0.01, include_low=False, reason="at most 1 %"),
            ValueError,
            "Expected `q` to be in (0, 0.01] (at most 1 %), but got 0.05.",
        ),
        (lambda: check_in_range("p", float("nan"), 0, 1), ValueError, "Expected `p` to be in [0, 1], but got nan."),
        (lambda: check_in_range("p", True, 0, 1), TypeError, "Expected `p` to be a number, but got bool."),
        (lambda: check_bool("flag", 1), TypeError, "Expected `flag` to be a boolean, but got int."),
        (
            lambda: check_choice("mode", "c", ("a", "b")),
            ValueError,
            "Expected `mode` to be one of ['a', 'b'], but got 'c'.",
        ),
        (lambda: check_path("root", 3), TypeError, "Expected `root` to be a path (str or os.PathLike), but got int."),
    ],
)
def test_refusals_name_the_argument_the_expectation_and_the_value(
    call: Any, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=re.escape(message)):
        call()
