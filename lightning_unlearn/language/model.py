"""The two-layer LSTM language model of Forsaken §V-G: the network, its training, its perplexity.

:class:`NextTokenClassifier` reads the same network as a classifier (a window of tokens in, the
logits of the next token out), which is how a method for classifiers such as Forsaken unlearns
from it (:mod:`lightning_unlearn.language.unlearning`).
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_unlearn.checks import check_in_range, check_integer, check_positive
from lightning_unlearn.datamodules.sources.vocabulary import PAD_ID, Vocabulary
from lightning_unlearn.language.corpus import BOS, EOS
from lightning_unlearn.trainers import DeviceSettings, build_trainer

__all__ = [
    "LSTMLanguageModel",
    "NextTokenClassifier",
    "TrainedLanguageModel",
    "perplexity",
    "sentence_tensors",
    "train_language_model",
]


class _LSTMNetwork(nn.Module):
    """Embedding → two-layer LSTM → linear head over the vocabulary."""

    def __init__(self, vocab_size: int, embedding_dim: int, hidden_size: int, num_layers: int, dropout: float):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=PAD_ID)
        self.lstm = nn.LSTM(
            embedding_dim, hidden_size, num_layers, batch_first=True, dropout=dropout if num_layers > 1 else 0.0
        )
        self.head = nn.Linear(hidden_size, vocab_size)

    def forward(
        self, tokens: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None = None
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        outputs, state = self.lstm(self.embedding(tokens), state)
        return self.head(outputs), state


class LSTMLanguageModel(L.LightningModule):
    """A two-layer LSTM language model (Forsaken §V-G), trained with next-token cross-entropy.

    Batches are ``(inputs, targets)`` of shape ``(batch, context_length)``: a sentence read
    after ``<s>`` and the same sentence shifted by one, ending in ``</s>`` (see
    :func:`sentence_tensors`); padding (id 0) is ignored by the loss.

    Args:
        vocab_size: the vocabulary size.
        context_length: the most tokens the model reads in one sequence (``<s>`` included).
        embedding_dim: width of the token embeddings.
        hidden_size: width of each LSTM layer.
        num_layers: LSTM layers (2 in the paper).
        dropout: dropout between the LSTM layers.
        learning_rate: Adam's learning rate.

    Raises:
        TypeError, ValueError: a size that is not a positive integer; dropout outside [0, 1);
            a learning rate that is not positive.

    Example:
        >>> model = LSTMLanguageModel(vocab_size=30, context_length=8)
        >>> model(torch.zeros(2, 8, dtype=torch.long)).shape
        torch.Size([2, 8, 30])
    """

    def __init__(
        self,
        vocab_size: int,
        context_length: int = 32,
        embedding_dim: int = 64,
        hidden_size: int = 128,
        num_layers: int = 2,
        dropout: float = 0.0,
        learning_rate: float = 3e-3,
    ) -> None:
        super().__init__()
        check_integer("vocab_size", vocab_size, 3)
        self.context_length = check_integer("context_length", context_length, 2)
        check_integer("embedding_dim", embedding_dim)
        check_integer("hidden_size", hidden_size)
        check_integer("num_layers", num_layers)
        check_in_range("dropout", dropout, 0.0, 1.0, include_high=False)
        check_positive("learning_rate", learning_rate)
        self.save_hyperparameters()
        self.vocab_size = vocab_size
        self.learning_rate = learning_rate
        self.network = _LSTMNetwork(vocab_size, embedding_dim, hidden_size, num_layers, dropout)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """Next-token logits ``(batch, time, vocab_size)`` for token ids ``(batch, time)``."""
        return self.network(tokens)[0]

    def _loss(self, batch: Sequence[torch.Tensor]) -> torch.Tensor:
        inputs, targets = batch[0], batch[1]
        logits = self(inputs)
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=PAD_ID)

    def training_step(self, batch: Sequence[torch.Tensor], batch_idx: int) -> torch.Tensor:
        loss = self._loss(batch)
        self.log("train/loss", loss, prog_bar=True)
        return loss

    def validation_step(self, batch: Sequence[torch.Tensor], batch_idx: int) -> None:
        self.log("val/loss", self._loss(batch), prog_bar=True)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=self.learning_rate)


def sentence_tensors(
    sentences: Sequence[Sequence[str]], vocabulary: Vocabulary, context_length: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Language-model inputs and targets, ``(N, context_length)`` ``int64`` each.

    Sentence ``w1 … wn`` becomes inputs ``<s> w1 … wn`` and targets ``w1 … wn </s>``, padded with
    0 at the end; a sentence longer than the context is cut to its first ``context_length``
    tokens (``<s>`` included), and its ``</s>`` is then not seen.

    Raises:
        ValueError: an empty sentence, or no sentence at all.
    """
    check_integer("context_length", context_length, 2)
    if len(sentences) == 0:
        raise ValueError("Expected at least one sentence, but got none.")
    inputs = np.zeros((len(sentences), context_length), dtype=np.int64)
    targets = np.zeros((len(sentences), context_length), dtype=np.int64)
    bos, eos = vocabulary.id_of(BOS), vocabulary.id_of(EOS)
    for row, sentence in enumerate(sentences):
        if len(sentence) == 0:
            raise ValueError(f"Expected every sentence to hold at least one token, but sentence {row} is empty.")
        ids = [bos, *vocabulary.ids(sentence), eos]
        read, predicted = ids[:-1][:context_length], ids[1:][:context_length]
        inputs[row, : len(read)] = read
        targets[row, : len(predicted)] = predicted
    return torch.from_numpy(inputs), torch.from_numpy(targets)


@dataclass
class TrainedLanguageModel:
    """A trained language model and the wall-clock time of ``Trainer.fit``."""

    model: LSTMLanguageModel
    seconds: float


def train_language_model(
    sentences: Sequence[Sequence[str]],
    vocabulary: Vocabulary,
    *,
    context_length: int = 32,
    epochs: int = 10,
    batch_size: int = 64,
    learning_rate: float = 3e-3,
    embedding_dim: int = 64,
    hidden_size: int = 128,
    seed: int = 0,
    progress: bool = False,
    device_settings: DeviceSettings | None = None,
    **trainer_kwargs: Any,
) -> TrainedLanguageModel:
    """Train a fresh :class:`LSTMLanguageModel` on ``sentences``.

    Args:
        sentences: the training corpus (canaries inserted, or not).
        vocabulary: ids of the tokens (see :func:`build_lm_vocabulary`).
        context_length: the model's context.
        epochs: training epochs.
        batch_size: sentences per batch.
        learning_rate: Adam's learning rate.
        embedding_dim: width of the token embeddings.
        hidden_size: width of each LSTM layer.
        seed: seeds initialisation and the order of batches.
        progress: show a progress bar on stderr.
        device_settings: where it trains (default: ``accelerator="auto"``, one device).
        **trainer_kwargs: anything else for :class:`lightning.Trainer`.

    Returns:
        The model (in eval mode) and the training time.

    Raises:
        ValueError: see :func:`sentence_tensors` and :class:`LSTMLanguageModel`.
    """
    check_integer("epochs", epochs)
    check_integer("batch_size", batch_size)
    inputs, targets = sentence_tensors(sentences, vocabulary, context_length)
    L.seed_everything(seed, verbose=False)
    model = LSTMLanguageModel(
        len(vocabulary),
        context_length=context_length,
        embedding_dim=embedding_dim,
        hidden_size=hidden_size,
        learning_rate=learning_rate,
    )
    loader = DataLoader(
        TensorDataset(inputs, targets),
        batch_size=batch_size,
        shuffle=True,
        generator=torch.Generator().manual_seed(seed),
    )
    trainer = build_trainer(device_settings, progress_bar=progress, **{"max_epochs": epochs, **trainer_kwargs})
    start = time.perf_counter()
    trainer.fit(model, train_dataloaders=loader)
    seconds = time.perf_counter() - start
    return TrainedLanguageModel(model=model.eval(), seconds=seconds)


@torch.no_grad()
def perplexity(
    model: LSTMLanguageModel, sentences: Sequence[Sequence[str]], vocabulary: Vocabulary, batch_size: int = 512
) -> float:
    """Per-token perplexity ``exp(mean NLL)`` of ``model`` on ``sentences`` (``</s>`` counted).

    Raises:
        ValueError: see :func:`sentence_tensors`.
    """
    inputs, targets = sentence_tensors(sentences, vocabulary, model.context_length)
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    try:
        for start in range(0, len(inputs), batch_size):
            logits = model(inputs[start : start + batch_size])
            chunk = targets[start : start + batch_size]
            total += F.cross_entropy(
                logits.reshape(-1, logits.shape[-1]), chunk.reshape(-1), ignore_index=PAD_ID, reduction="sum"
            ).item()
            count += int((chunk != PAD_ID).sum())
    finally:
        model.train(was_training)
    return math.exp(total / count)


class NextTokenClassifier(nn.Module):
    """A language model read as a classifier: a right-padded window of ids → logits of the next token.

    The prediction is made after the window's last non-padding token, exactly as the language
    model predicts it inside a sentence (the LSTM is causal, so padding after it changes
    nothing). It shares nothing with the model it is built from (a deep copy).

    Args:
        model: the language model.

    Example:
        >>> classifier = NextTokenClassifier(LSTMLanguageModel(vocab_size=30, context_length=8))
        >>> classifier(torch.tensor([[2, 5, 0, 0, 0, 0, 0, 0]])).shape
        torch.Size([1, 30])
    """

    default_loss = "cross_entropy"

    def __init__(self, model: LSTMLanguageModel) -> None:
        super().__init__()
        self.network = copy.deepcopy(model.network)
        self.num_classes = model.vocab_size
        self.context_length = model.context_length

    def forward(self, windows: torch.Tensor) -> torch.Tensor:
        logits, _ = self.network(windows.long())
        last = ((windows != PAD_ID).sum(dim=1) - 1).clamp(min=0)
        return logits[torch.arange(windows.shape[0], device=windows.device), last]

    def to_language_model(self, template: LSTMLanguageModel) -> LSTMLanguageModel:
        """A copy of ``template`` carrying this classifier's weights."""
        model = copy.deepcopy(template)
        model.network.load_state_dict(self.network.state_dict())
        return model.eval()
