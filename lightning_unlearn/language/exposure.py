"""Unintended memorisation of sequence models: Carlini et al.'s *exposure* (Forsaken §V-G, Eqs. 8–9).

A canary (:mod:`lightning_unlearn.language.canaries`) is inserted ``k`` times into a language
model's training corpus. Its *log-perplexity* under the model is ``Px(s) = −log2 Pr(s | <s>)``
(in bits). Among the candidate space ``R`` of every canary of the same format (every 5-digit
secret: |R| = 10⁵), the exposure of the inserted secret is

* Eq. 8 (exact): ``exposure = log2 |R| − log2 rank``, where ``rank`` is the canary's position
  when all candidates are sorted by log-perplexity (1 = the most likely);
* Eq. 9 (approximation): ``exposure ≈ −log2 F(Px(s))``, with ``F`` the cumulative distribution
  of a skew-normal fitted to the log-perplexities of a random sample of candidates.

Exposure near ``log2 |R|`` means the model would give the secret away first; Carlini et al. call
exposure below about 10 bits negligible for extraction. The exact exposure enumerates the
candidate space as a tree, one LSTM step per prefix, so 10⁵–10⁶ candidates take seconds.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from lightning_unlearn.checks import check_integer
from lightning_unlearn.datamodules.sources.vocabulary import PAD_ID, Vocabulary
from lightning_unlearn.language.canaries import DIGITS, Canary
from lightning_unlearn.language.corpus import BOS
from lightning_unlearn.language.model import LSTMLanguageModel

__all__ = [
    "ExposureMethod",
    "ExposureResult",
    "candidate_log_perplexities",
    "exposure_exact",
    "exposure_skew_normal",
    "log_perplexity",
    "measure_exposure",
]

ExposureMethod = Literal["auto", "exact", "skew_normal"]
_LN2 = math.log(2.0)


def _check_fits(model: LSTMLanguageModel, tokens: Sequence[str], what: str) -> None:
    # The model reads <s> and every token but the last: len(tokens) positions of its context.
    if len(tokens) > model.context_length:
        raise ValueError(
            f"Expected {what} to fit the model's context of {model.context_length} tokens (read after <s>), but"
            f" {' '.join(tokens)!r} has {len(tokens)} tokens."
        )


@torch.no_grad()
def log_perplexity(
    model: LSTMLanguageModel, vocabulary: Vocabulary, sequences: Sequence[Sequence[str]], batch_size: int = 1024
) -> torch.Tensor:
    """``Px(s) = −log2 Pr(s | <s>)`` in bits for each sequence: the sum over its tokens.

    Args:
        model: the language model.
        vocabulary: its vocabulary.
        sequences: tokenised sequences (canaries), each at most ``model.context_length`` tokens.
        batch_size: sequences per forward pass.

    Returns:
        ``(N,)`` ``float64`` log-perplexities.

    Raises:
        ValueError: an empty sequence, or one longer than the model's context.

    Example:
        >>> from lightning_unlearn.language import build_lm_vocabulary, make_canaries, synthetic_corpus
        >>> vocabulary = build_lm_vocabulary(synthetic_corpus(100))
        >>> model = LSTMLanguageModel(len(vocabulary), context_length=8)
        >>> canary = make_canaries(1, secret_length=3)[0]
        >>> bits = log_perplexity(model, vocabulary, [canary.tokens])
        >>> bits.shape, bits.dtype
        (torch.Size([1]), torch.float64)
    """
    lengths = []
    for sequence in sequences:
        if len(sequence) == 0:
            raise ValueError("Expected every sequence to hold at least one token, but got an empty one.")
        _check_fits(model, sequence, "every sequence")
        lengths.append(len(sequence))
    width = max(lengths, default=1)
    bos = vocabulary.id_of(BOS)
    inputs = torch.zeros((len(sequences), width), dtype=torch.int64)
    targets = torch.zeros((len(sequences), width), dtype=torch.int64)
    for row, sequence in enumerate(sequences):
        ids = vocabulary.ids(sequence)
        inputs[row, 0] = bos
        inputs[row, 1 : len(ids)] = torch.as_tensor(ids[:-1])
        targets[row, : len(ids)] = torch.as_tensor(ids)
    was_training = model.training
    model.eval()
    out = []
    try:
        for start in range(0, len(sequences), batch_size):
            logits = model(inputs[start : start + batch_size]).double()
            chunk = targets[start : start + batch_size]
            picked = logits.log_softmax(dim=-1).gather(2, chunk.unsqueeze(2)).squeeze(2)
            out.append(-(picked * (chunk != PAD_ID)).sum(dim=1) / _LN2)
    finally:
        model.train(was_training)
    return torch.cat(out) if out else torch.empty(0, dtype=torch.float64)


@torch.no_grad()
def candidate_log_perplexities(
    model: LSTMLanguageModel,
    vocabulary: Vocabulary,
    prefix: Sequence[str],
    secret_length: int,
    alphabet: Sequence[str] = DIGITS,
    batch_size: int = 65_536,
) -> torch.Tensor:
    """The log-perplexity (bits) of every candidate ``prefix + secret`` of the space ``R``, exactly.

    The space is enumerated as a tree: the LSTM reads ``<s> + prefix`` once, then each level
    extends every partial secret by every symbol with one LSTM step, so the cost is
    ``Σ_j |A|^j`` single steps rather than ``|A|^k`` whole sequences.

    Args:
        model: the language model.
        vocabulary: its vocabulary; every symbol of ``alphabet`` must be in it.
        prefix: the canary format's fixed tokens.
        secret_length: ``k``, symbols per secret.
        alphabet: the secret's symbols ``A``.
        batch_size: partial secrets stepped at once.

    Returns:
        ``(|A|^k,)`` ``float64``; entry ``i`` is the secret whose lexicographic index is ``i``.

    Raises:
        ValueError: a canary longer than the model's context, or a symbol outside the vocabulary.
    """
    check_integer("secret_length", secret_length)
    alphabet = tuple(alphabet)
    _check_fits(model, tuple(prefix) + alphabet[:1] * secret_length, "the canary")
    missing = [s for s in alphabet if s not in vocabulary]
    if missing:
        raise ValueError(f"Expected every secret symbol in the vocabulary, but {missing[:5]} are not.")
    was_training = model.training
    model.eval()
    network = model.network
    try:
        start = torch.as_tensor([[vocabulary.id_of(BOS), *vocabulary.ids(prefix)]])
        logits, state = network(start)
        log_probs = logits[:, -1].double().log_softmax(dim=-1)
        prefix_bits = 0.0
        if len(prefix):
            prefix_logits = logits[0, :-1].double().log_softmax(dim=-1)
            prefix_ids = torch.as_tensor(vocabulary.ids(prefix))
            prefix_bits = float(-prefix_logits.gather(1, prefix_ids.unsqueeze(1)).sum() / _LN2)
        symbol_ids = torch.as_tensor(vocabulary.ids(alphabet))
        totals = torch.full((1,), prefix_bits, dtype=torch.float64)
        for level in range(secret_length):
            # every partial secret × every next symbol, in lexicographic order
            totals = (totals.unsqueeze(1) - log_probs[:, symbol_ids] / _LN2).reshape(-1)
            if level == secret_length - 1:
                break
            h, c = (s.repeat_interleave(len(alphabet), dim=1) for s in state)  # (layers, partial × |A|, hidden)
            tokens = symbol_ids.repeat(h.shape[1] // len(alphabet)).unsqueeze(1)
            outs, hs, cs = [], [], []
            for begin in range(0, tokens.shape[0], batch_size):
                end = begin + batch_size
                step_logits, (h_next, c_next) = network(
                    tokens[begin:end], (h[:, begin:end].contiguous(), c[:, begin:end].contiguous())
                )
                outs.append(step_logits[:, -1].double().log_softmax(dim=-1))
                hs.append(h_next)
                cs.append(c_next)
            log_probs = torch.cat(outs)
            state = (torch.cat(hs, dim=1), torch.cat(cs, dim=1))
    finally:
        model.train(was_training)
    return totals


def exposure_exact(canary_log_perplexity: torch.Tensor, space_log_perplexities: torch.Tensor) -> torch.Tensor:
    """Eq. 8: ``log2 |R| − log2 rank`` with the rank of each canary among all candidates ``R``.

    ``rank = 1 + #{r ∈ R : Px(r) < Px(canary)}``: ties are resolved in the canary's favour.

    Args:
        canary_log_perplexity: ``(N,)`` log-perplexities of the canaries (their secrets ∈ ``R``).
        space_log_perplexities: ``(|R|,)`` log-perplexities of every candidate.

    Returns:
        ``(N,)`` exposures in bits, in ``[0, log2 |R|]``.

    Raises:
        ValueError: an empty candidate space.

    Example:
        >>> exposure_exact(torch.tensor([1.0]), torch.tensor([1.0, 2.0, 3.0, 4.0])).tolist()
        [2.0]
    """
    space = torch.as_tensor(space_log_perplexities, dtype=torch.float64).flatten()
    if space.numel() == 0:
        raise ValueError("Expected a non-empty candidate space `space_log_perplexities`, but got none.")
    canaries = torch.as_tensor(canary_log_perplexity, dtype=torch.float64).flatten()
    ranks = 1 + torch.searchsorted(space.sort().values, canaries, side="left")
    return math.log2(space.numel()) - torch.log2(ranks.double())


def exposure_skew_normal(
    canary_log_perplexity: torch.Tensor, reference_log_perplexities: torch.Tensor, space_size: int | None = None
) -> torch.Tensor:
    """Eq. 9: ``−log2 F(Px(canary))`` with ``F`` a skew-normal fitted to reference log-perplexities.

    The fraction of candidates more likely than the canary, ``rank / |R|``, is estimated by the
    fitted distribution's cumulative probability, so no enumeration of ``R`` is needed.

    Args:
        canary_log_perplexity: ``(N,)`` log-perplexities of the canaries.
        reference_log_perplexities: log-perplexities of candidates drawn uniformly from ``R``
            (at least 3; a few thousand give a stable fit).
        space_size: ``|R|``, when known: exposures are then capped at ``log2 |R|``, the most
            an exact computation can give.

    Returns:
        ``(N,)`` exposures in bits.

    Raises:
        ValueError: fewer than 3 reference values, or reference values that are all equal.
    """
    from scipy.stats import skewnorm

    reference = torch.as_tensor(reference_log_perplexities, dtype=torch.float64).flatten().numpy()
    if reference.size < 3:
        raise ValueError(f"Expected at least 3 reference log-perplexities for the fit, but got {reference.size}.")
    if np.ptp(reference) == 0:
        raise ValueError("Expected reference log-perplexities that vary, but they are all equal.")
    shape, location, scale = skewnorm.fit(reference)
    canaries = torch.as_tensor(canary_log_perplexity, dtype=torch.float64).flatten().numpy()
    exposures = torch.from_numpy(-skewnorm.logcdf(canaries, shape, loc=location, scale=scale) / _LN2)
    if space_size is not None:
        exposures = exposures.clamp(max=math.log2(space_size))
    return exposures.clamp(min=0.0)


@dataclass
class ExposureResult:
    """Exposure of a set of canaries under one model.

    Attributes:
        exposures: ``(N,)`` exposure of each canary, in bits.
        log_perplexities: ``(N,)`` log-perplexity of each canary, in bits.
        method: ``"exact"`` (Eq. 8) or ``"skew_normal"`` (Eq. 9).
        space_size: ``|R|``, the number of candidates.
    """

    exposures: torch.Tensor
    log_perplexities: torch.Tensor
    method: str
    space_size: int

    @property
    def mean(self) -> float:
        """Mean exposure over the canaries, in bits."""
        return float(self.exposures.mean())

    @property
    def max_exposure(self) -> float:
        """``log2 |R|``: the exposure of a canary the model ranks first."""
        return math.log2(self.space_size)


def measure_exposure(
    model: LSTMLanguageModel,
    vocabulary: Vocabulary,
    canaries: Sequence[Canary],
    method: ExposureMethod = "auto",
    alphabet: Sequence[str] = DIGITS,
    exact_limit: int = 1_000_000,
    num_references: int = 5_000,
    seed: int = 0,
) -> ExposureResult:
    """The exposure of each canary (all of one format: same prefix and secret length).

    Args:
        model: the language model.
        vocabulary: its vocabulary.
        canaries: the canaries to measure.
        method: ``"exact"`` (enumerate ``R``, Eq. 8), ``"skew_normal"`` (fit ``num_references``
            random candidates, Eq. 9) or ``"auto"`` (exact when ``|R| ≤ exact_limit``).
        alphabet: the secrets' symbols.
        exact_limit: the largest space ``"auto"`` enumerates.
        num_references: candidates sampled for the skew-normal fit.
        seed: seeds the sample of candidates.

    Returns:
        An :class:`ExposureResult`.

    Raises:
        ValueError: no canary, canaries of different formats, a secret symbol outside
            ``alphabet``, a canary longer than the model's context, or an unknown ``method``.

    Example:
        >>> from lightning_unlearn.language import (
        ...     build_lm_vocabulary, insert_canaries, make_canaries, synthetic_corpus, train_language_model
        ... )
        >>> canaries = make_canaries(2, secret_length=2)  # |R| = 100 candidate secrets
        >>> sentences = insert_canaries(synthetic_corpus(300), canaries, repetitions=20)
        >>> vocabulary = build_lm_vocabulary(sentences)
        >>> model = train_language_model(sentences, vocabulary, context_length=8, epochs=3, hidden_size=32).model
        >>> result = measure_exposure(model, vocabulary, canaries)
        >>> result.method, round(result.max_exposure, 2)  # log2 |R|: a canary ranked first of all candidates
        ('exact', 6.64)
        >>> 0 <= result.mean <= result.max_exposure
        True
    """
    if method not in ("auto", "exact", "skew_normal"):
        raise ValueError(f"Expected `method` to be 'auto', 'exact' or 'skew_normal', but got {method!r}.")
    if not canaries:
        raise ValueError("Expected at least one canary, but got none.")
    alphabet = tuple(alphabet)
    prefix, length = canaries[0].prefix, len(canaries[0].secret)
    for canary in canaries:
        if canary.prefix != prefix or len(canary.secret) != length:
            raise ValueError(
                f"Expected canaries of one format ({' '.join(prefix)!r} + {length} symbols), but got {str(canary)!r}."
            )
        if any(symbol not in alphabet for symbol in canary.secret):
            raise ValueError(f"Expected secrets made of {alphabet}, but got {str(canary)!r}.")
        _check_fits(model, canary.tokens, "the canary")
    space_size = len(alphabet) ** length
    canary_lp = log_perplexity(model, vocabulary, [c.tokens for c in canaries])
    if method == "exact" or (method == "auto" and space_size <= exact_limit):
        space = candidate_log_perplexities(model, vocabulary, prefix, length, alphabet)
        return ExposureResult(exposure_exact(canary_lp, space), canary_lp, "exact", space_size)
    check_integer("num_references", num_references, 3)
    # Candidates drawn uniformly from R (symbol by symbol, so any size of R works).
    draws = np.random.default_rng(seed).integers(0, len(alphabet), size=(num_references, length))
    references = [prefix + tuple(alphabet[i] for i in row) for row in draws]
    reference_lp = log_perplexity(model, vocabulary, references)
    return ExposureResult(
        exposure_skew_normal(canary_lp, reference_lp, space_size), canary_lp, "skew_normal", space_size
    )
