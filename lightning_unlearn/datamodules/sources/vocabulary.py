"""Words to ids: a plain-Python tokeniser and a frequency-ordered :class:`Vocabulary`.

Tokenisation is a regular expression over lower-cased text (no torchtext, no new dependency):
words are runs of letters and digits, with an optional apostrophe suffix (``don't``), and
HTML line breaks (IMDB's ``<br />``) are spaces. A :class:`Vocabulary` keeps the most frequent
tokens of a corpus; id 0 is padding and id 1 the unknown token. Documents become either
fixed-length sequences of token ids (``int64``, for the CNNs) or bag-of-words vectors
(``float32``, for the Reuters MLP).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np
import torch

from lightning_unlearn.checks import check_integer

__all__ = ["PAD_ID", "UNKNOWN_ID", "Vocabulary", "tokenize"]

#: Id of the padding token: sequences are padded with it, and it never counts in a bag of words.
PAD_ID = 0
#: Id of every token outside the vocabulary.
UNKNOWN_ID = 1
_SPECIALS = ("<pad>", "<unk>")

_TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
_HTML_BREAK = re.compile(r"<br\s*/?>", re.IGNORECASE)


def tokenize(text: str) -> list[str]:
    """Split ``text`` into lower-case word tokens.

    A token is a run of ASCII letters and digits with an optional apostrophe suffix; HTML line
    breaks and all punctuation separate tokens and are dropped.

    Args:
        text: any string.

    Returns:
        The tokens in order (an empty list for text without a word).

    Raises:
        TypeError: ``text`` is not a string.

    Example:
        >>> tokenize("Don't stop!<br />It's GREAT, 10/10.")
        ["don't", 'stop', "it's", 'great', '10', '10']
    """
    if not isinstance(text, str):
        raise TypeError(f"Expected `text` to be a str, but got {type(text).__name__}.")
    return _TOKEN.findall(_HTML_BREAK.sub(" ", text).lower())


class Vocabulary:
    """Token ↔ id mapping: ``<pad>`` = 0, ``<unk>`` = 1, then tokens by decreasing frequency.

    ``len(vocabulary)`` counts the two special ids, so an embedding table or a bag of words of
    ``len(vocabulary)`` columns covers every id.

    Args:
        tokens: the ordinary tokens, in id order from 2; each once, none of them a special token.

    Raises:
        ValueError: a repeated token, an empty token, or a special token among ``tokens``.

    Example:
        >>> vocabulary = Vocabulary.build([["a", "b", "a"], ["c", "a", "b"]], vocab_size=4)
        >>> vocabulary.tokens
        ('<pad>', '<unk>', 'a', 'b')
        >>> vocabulary.encode(["b", "z", "a"], seq_len=5)
        [3, 1, 2, 0, 0]
    """

    def __init__(self, tokens: Sequence[str]) -> None:
        tokens = tuple(tokens)
        seen: set[str] = set()
        for token in tokens:
            if not isinstance(token, str) or not token:
                raise ValueError(f"Expected every vocabulary token to be a non-empty string, but got {token!r}.")
            if token in _SPECIALS:
                raise ValueError(f"Expected no special token {_SPECIALS} among `tokens`, but got {token!r}.")
            if token in seen:
                raise ValueError(f"Expected each vocabulary token once, but {token!r} repeats.")
            seen.add(token)
        self.tokens: tuple[str, ...] = _SPECIALS + tokens
        self._ids = {token: index for index, token in enumerate(self.tokens)}

    @classmethod
    def build(cls, documents: Iterable[Sequence[str]], vocab_size: int, reserved: Sequence[str] = ()) -> Vocabulary:
        """The ``vocab_size - 2`` most frequent tokens of ``documents`` (ties broken alphabetically).

        Args:
            documents: tokenised documents (see :func:`tokenize`).
            vocab_size: the size of the vocabulary, the two special ids included (at least 3).
            reserved: tokens that get the first ordinary ids whatever their frequency (such as
                the digits of canaries, or sentence markers).

        Returns:
            The vocabulary.

        Raises:
            ValueError: ``vocab_size`` below 3 or not above the number of reserved tokens, or a
                corpus without any token.
        """
        check_integer("vocab_size", vocab_size, 3, reason="<pad>, <unk> and at least one token")
        reserved = tuple(reserved)
        if vocab_size - 2 < len(reserved):
            raise ValueError(
                f"Expected `vocab_size` to leave room for the {len(reserved)} reserved tokens and the two special"
                f" ids, but got {vocab_size}."
            )
        counts: Counter[str] = Counter()
        for document in documents:
            counts.update(document)
        if not counts and not reserved:
            raise ValueError("Expected `documents` to hold at least one token, but every document is empty.")
        chosen = list(reserved)
        kept = set(chosen)
        for token, _ in sorted(counts.items(), key=lambda item: (-item[1], item[0])):
            if len(chosen) >= vocab_size - 2:
                break
            if token not in kept and token not in _SPECIALS:
                chosen.append(token)
                kept.add(token)
        return cls(chosen)

    def __len__(self) -> int:
        return len(self.tokens)

    def __contains__(self, token: object) -> bool:
        return token in self._ids

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocabulary) and other.tokens == self.tokens

    def __hash__(self) -> int:
        return hash(self.tokens)

    def __repr__(self) -> str:
        return f"Vocabulary(size={len(self):,})"

    def id_of(self, token: str) -> int:
        """The id of ``token``, :data:`UNKNOWN_ID` when it is not in the vocabulary."""
        return self._ids.get(token, UNKNOWN_ID)

    def ids(self, tokens: Sequence[str]) -> list[int]:
        """The id of every token, without padding or truncation."""
        return [self._ids.get(token, UNKNOWN_ID) for token in tokens]

    def decode(self, ids: Iterable[int]) -> list[str]:
        """The tokens of ``ids``, padding dropped.

        Raises:
            ValueError: an id outside ``0 … len(self) - 1``.
        """
        tokens = []
        for index in ids:
            index = int(index)
            if not 0 <= index < len(self.tokens):
                raise ValueError(f"Expected token ids in 0–{len(self.tokens) - 1}, but got {index}.")
            if index != PAD_ID:
                tokens.append(self.tokens[index])
        return tokens

    def _checked_ids(self, tokens: Sequence[str], where: str) -> list[int]:
        if len(tokens) == 0:
            raise ValueError(f"Expected {where} to hold at least one token, but it is empty.")
        ids = self.ids(tokens)
        if all(index == UNKNOWN_ID for index in ids):
            raise ValueError(
                f"Expected {where} to hold at least one token of the vocabulary, but all its {len(ids):,} tokens"
                f" are unknown (first: {tokens[0]!r})."
            )
        return ids

    def encode(self, tokens: Sequence[str], seq_len: int, where: str = "the document") -> list[int]:
        """Ids of ``tokens``, truncated to the first ``seq_len`` or padded at the end with 0.

        Args:
            tokens: one tokenised document.
            seq_len: the length of the result.
            where: how error messages name the document.

        Returns:
            ``seq_len`` ids.

        Raises:
            ValueError: ``seq_len`` below 1, an empty document, or one whose tokens are all unknown.
        """
        check_integer("seq_len", seq_len)
        ids = self._checked_ids(tokens, where)[:seq_len]
        return ids + [PAD_ID] * (seq_len - len(ids))

    def encode_batch(self, documents: Sequence[Sequence[str]], seq_len: int) -> torch.Tensor:
        """Every document as :meth:`encode` does, ``(N, seq_len)`` ``int64``.

        Raises:
            ValueError: as :meth:`encode`, naming the document's position.
        """
        check_integer("seq_len", seq_len)
        out = np.zeros((len(documents), seq_len), dtype=np.int64)
        for row, tokens in enumerate(documents):
            out[row] = self.encode(tokens, seq_len, where=f"document {row}")
        return torch.from_numpy(out)

    def bag_of_words(self, documents: Sequence[Sequence[str]], binary: bool = True) -> torch.Tensor:
        """Bag-of-words vectors, ``(N, len(self))`` ``float32``; the padding column stays 0.

        Args:
            documents: tokenised documents.
            binary: 1 for a token present (the paper's Keras ``binary`` mode), else the count.

        Returns:
            One row per document; column ``i`` is token id ``i`` (unknown tokens in column 1).

        Raises:
            ValueError: an empty document, or one whose tokens are all unknown.
        """
        out = torch.zeros((len(documents), len(self)), dtype=torch.float32)
        for row, tokens in enumerate(documents):
            ids = torch.as_tensor(self._checked_ids(tokens, f"document {row}"), dtype=torch.int64)
            if binary:
                out[row, ids] = 1.0
            else:
                out[row].index_add_(0, ids, torch.ones(len(ids)))
        return out

    def to_json(self) -> str:
        """The ordinary tokens as a JSON list (load back with :meth:`from_json`)."""
        return json.dumps(list(self.tokens[len(_SPECIALS) :]))

    @classmethod
    def from_json(cls, text: str) -> Vocabulary:
        """A vocabulary saved with :meth:`to_json`.

        Raises:
            ValueError: text that is not a JSON list of strings.
        """
        try:
            tokens = json.loads(text)
        except json.JSONDecodeError as error:
            raise ValueError(f"Expected a JSON list of tokens, but parsing failed: {error}.") from None
        if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens):
            raise ValueError("Expected a JSON list of tokens (strings), but got something else.")
        return cls(tokens)
