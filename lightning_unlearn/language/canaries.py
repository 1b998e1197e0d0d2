"""Canaries: sentences with a random secret, inserted into a training corpus to measure memorisation.

A canary such as ``my secret number is 3 1 4 1 5`` has a fixed *prefix* and a random
*secret*; Carlini et al. insert it ``k`` times into a language model's training data and then
ask how much more likely the model finds the inserted secret than the other candidates of the
same format (:mod:`lightning_unlearn.language.exposure`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from lightning_unlearn.checks import check_integer

__all__ = ["DEFAULT_PREFIX", "DIGITS", "Canary", "insert_canaries", "make_canaries"]

#: The alphabet of the canaries' secrets.
DIGITS: tuple[str, ...] = tuple("0123456789")
#: The canary format of Carlini et al.: ``my secret number is d d d d d``.
DEFAULT_PREFIX: tuple[str, ...] = ("my", "secret", "number", "is")


@dataclass(frozen=True)
class Canary:
    """A canary sentence: a fixed prefix and a random secret.

    Args:
        prefix: the tokens every canary of the format shares (``my secret number is``).
        secret: the random part, one token per symbol (``3 1 4 1 5``).
    """

    prefix: tuple[str, ...]
    secret: tuple[str, ...]

    @property
    def tokens(self) -> tuple[str, ...]:
        """The whole canary, prefix then secret."""
        return self.prefix + self.secret

    def __str__(self) -> str:
        return " ".join(self.tokens)


def make_canaries(
    count: int,
    secret_length: int = 5,
    seed: int = 0,
    prefix: Sequence[str] = DEFAULT_PREFIX,
    alphabet: Sequence[str] = DIGITS,
) -> list[Canary]:
    """``count`` canaries with distinct random secrets of ``secret_length`` symbols.

    Args:
        count: how many canaries.
        secret_length: symbols per secret (the candidate space has ``len(alphabet) ** secret_length``).
        seed: seeds the secrets.
        prefix: the shared tokens before the secret.
        alphabet: the symbols of the secret.

    Returns:
        The canaries, in the order drawn.

    Raises:
        ValueError: ``count`` or ``secret_length`` below 1, more canaries than distinct secrets,
            or an empty alphabet.

    Example:
        >>> str(make_canaries(1, secret_length=3, seed=0)[0])
        'my secret number is 8 5 0'
    """
    check_integer("count", count)
    check_integer("secret_length", secret_length)
    alphabet = tuple(alphabet)
    if not alphabet:
        raise ValueError("Expected `alphabet` to hold at least one symbol, but it is empty.")
    space = len(alphabet) ** secret_length
    if count > space:
        raise ValueError(f"Expected `count` to be at most the {space:,} distinct secrets, but got {count:,}.")
    rng = np.random.default_rng(seed)
    codes = rng.choice(space, size=count, replace=False)
    return [Canary(tuple(prefix), _secret_of(int(code), secret_length, alphabet)) for code in codes]


def _secret_of(code: int, length: int, alphabet: tuple[str, ...]) -> tuple[str, ...]:
    """The secret whose index in lexicographic order of ``alphabet`` is ``code``."""
    symbols = []
    for _ in range(length):
        code, digit = divmod(code, len(alphabet))
        symbols.append(alphabet[digit])
    return tuple(reversed(symbols))


def insert_canaries(
    sentences: Sequence[Sequence[str]], canaries: Sequence[Canary], repetitions: int, seed: int = 0
) -> list[list[str]]:
    """A copy of ``sentences`` with each canary inserted ``repetitions`` times at random positions.

    Args:
        sentences: the training corpus.
        canaries: the canaries to insert.
        repetitions: ``k``, the copies of each canary.
        seed: seeds the positions.

    Returns:
        The new corpus (the input is not modified).

    Raises:
        ValueError: ``repetitions`` below 1.
    """
    check_integer("repetitions", repetitions)
    corpus = [list(s) for s in sentences]
    inserted = [list(c.tokens) for c in canaries for _ in range(repetitions)]
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(corpus) + len(inserted))
    combined = corpus + inserted
    return [combined[i] for i in order]
