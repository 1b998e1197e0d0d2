"""The Forsaken paper's text classifiers (Appendix E).

* :class:`TextCNN` — IMDB: embedding 100, convolutions of width 3, 4 and 5 with 100 channels
  each, max-pooling over time, a fully connected layer to 2 classes (Kim's sentence CNN).
* :class:`ReutersMLP` — Reuters: a 10,000-dimensional bag of words → 512 → 256 → classes,
  ReLU and dropout 0.5 after each hidden layer.
* :class:`NewsCNN` — 20 Newsgroups (the paper's Fig. 15). The figure is not reproduced in the
  text we work from, so this is our reading, after the widely used Keras 20 Newsgroups CNN the
  figure's layer list resembles: embedding 100 → three blocks of Conv1d(128, width 5) + ReLU,
  the first two followed by max-pooling of 5, the last by max-pooling over time → FC 128 →
  ReLU → FC to the classes.

Each model takes the ``int64`` token ids (or the ``float32`` bag of words) that
:mod:`lightning_unlearn.datamodules.sources.text` produces, has ``num_classes`` and
``default_loss = "cross_entropy"``, and works with every method of the library (the sizes are
constructor arguments, so a YAML config says exactly what is built).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from lightning_unlearn.checks import check_in_range, check_integer
from lightning_unlearn.datamodules.sources.vocabulary import PAD_ID
from lightning_unlearn.models import LossName

__all__ = ["NewsCNN", "ReutersMLP", "TextCNN"]


class _TokenClassifier(nn.Module):
    """What the two text CNNs share: checked sizes, the embedding table, and reading token ids."""

    default_loss: LossName = "cross_entropy"

    def __init__(self, vocab_size: int, num_classes: int, embedding_dim: int, channels: int) -> None:
        super().__init__()
        self.vocab_size = check_integer("vocab_size", vocab_size)
        self.num_classes = check_integer("num_classes", num_classes)
        check_integer("embedding_dim", embedding_dim)
        check_integer("channels", channels)
        self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=PAD_ID)

    def embed(self, tokens: torch.Tensor, min_length: int, why: str = "") -> torch.Tensor:
        """Embeddings ``(batch, embedding_dim, seq_len)`` of token ids ``(batch, seq_len)``, checked first.

        Raises:
            ValueError: inputs that are not 2-D integer ids, or sequences shorter than ``min_length``.
        """
        name = type(self).__name__
        if tokens.dim() != 2 or tokens.dtype not in (torch.int64, torch.int32):
            raise ValueError(
                f"Expected {name} inputs to be token ids of shape (batch, seq_len) and an integer dtype, but got"
                f" {tuple(tokens.shape)} {tokens.dtype}."
            )
        if tokens.shape[1] < min_length:
            raise ValueError(
                f"Expected {name} sequences of at least {min_length} tokens{why}, but got {tokens.shape[1]}."
            )
        return self.embedding(tokens.long()).transpose(1, 2)


class TextCNN(_TokenClassifier):
    """The IMDB text CNN: parallel convolutions over word embeddings, max-pooled over time.

    ``Embedding(vocab_size, 100) → [Conv1d(100 → 100, width w) → ReLU → max over time] for w in
    (3, 4, 5) → concatenate (300) → Dropout → Linear(300 → num_classes)``.

    Args:
        vocab_size: rows of the embedding table (the vocabulary size, special ids included).
        num_classes: number of output logits (2 for IMDB).
        embedding_dim: width of the word embeddings.
        kernel_sizes: widths of the parallel convolutions.
        channels: output channels of each convolution.
        dropout: dropout before the output layer.

    Raises:
        TypeError, ValueError: a size that is not a positive integer, or a dropout outside [0, 1).

    Example:
        >>> TextCNN(vocab_size=50, num_classes=2)(torch.randint(0, 50, (4, 20))).shape
        torch.Size([4, 2])
    """

    def __init__(
        self,
        vocab_size: int = 10_000,
        num_classes: int = 2,
        embedding_dim: int = 100,
        kernel_sizes: Sequence[int] = (3, 4, 5),
        channels: int = 100,
        dropout: float = 0.5,
    ) -> None:
        super().__init__(vocab_size, num_classes, embedding_dim, channels)
        if not kernel_sizes:
            raise ValueError("Expected `kernel_sizes` to hold at least one width, but got ().")
        self.kernel_sizes = tuple(check_integer("kernel_sizes", k) for k in kernel_sizes)
        self.convolutions = nn.ModuleList(nn.Conv1d(embedding_dim, channels, k) for k in self.kernel_sizes)
        self.dropout = nn.Dropout(check_in_range("dropout", dropout, 0.0, 1.0, include_high=False))
        self.classifier = nn.Linear(channels * len(self.kernel_sizes), num_classes)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """Logits ``(batch, num_classes)`` for token ids ``(batch, seq_len)``.

        Raises:
            ValueError: inputs that are not 2-D integer ids, or sequences shorter than the widest convolution.
        """
        x = self.embed(tokens, max(self.kernel_sizes), " (the widest convolution)")  # (batch, embedding, time)
        pooled = [F.relu(conv(x)).amax(dim=2) for conv in self.convolutions]
        return self.classifier(self.dropout(torch.cat(pooled, dim=1)))


class ReutersMLP(nn.Module):
    """The Reuters MLP: ``bag of words → 512 → 256 → classes``, ReLU and dropout after each hidden layer.

    Args:
        in_features: bag-of-words width (10,000).
        num_classes: number of output logits (35 for Reuters 35-11).
        hidden: widths of the hidden layers.
        dropout: dropout after each hidden layer.

    Raises:
        TypeError, ValueError: a size that is not a positive integer, or a dropout outside [0, 1).

    Example:
        >>> ReutersMLP(in_features=100, num_classes=35)(torch.zeros(3, 100)).shape
        torch.Size([3, 35])
    """

    default_loss: LossName = "cross_entropy"

    def __init__(
        self, in_features: int = 10_000, num_classes: int = 35, hidden: Sequence[int] = (512, 256), dropout: float = 0.5
    ) -> None:
        super().__init__()
        self.in_features = check_integer("in_features", in_features)
        self.num_classes = check_integer("num_classes", num_classes)
        rate = check_in_range("dropout", dropout, 0.0, 1.0, include_high=False)
        layers: list[nn.Module] = []
        width = in_features
        for size in hidden:
            layers += [nn.Linear(width, check_integer("hidden", size)), nn.ReLU(), nn.Dropout(rate)]
            width = size
        layers.append(nn.Linear(width, num_classes))
        self.layers = nn.Sequential(*layers)

    def forward(self, bags: torch.Tensor) -> torch.Tensor:
        """Logits ``(batch, num_classes)`` for bags of words ``(batch, in_features)``.

        Raises:
            ValueError: inputs of another width.
        """
        if bags.dim() != 2 or bags.shape[1] != self.in_features:
            raise ValueError(
                f"Expected ReutersMLP inputs of shape (batch, {self.in_features}), but got {tuple(bags.shape)}."
            )
        return self.layers(bags.float())


class NewsCNN(_TokenClassifier):
    """The 20 Newsgroups CNN (our reading of the paper's Fig. 15; see the module docstring).

    ``Embedding(vocab_size, 100) → [Conv1d(→128, width 5) → ReLU → MaxPool(5)] × 2 →
    Conv1d(→128, width 5) → ReLU → max over time → Linear(128 → 128) → ReLU → Linear(→ classes)``.
    Sequences need at least :attr:`min_length` tokens (149 with the defaults; the paper uses 1,000).

    Args:
        vocab_size: rows of the embedding table.
        num_classes: number of output logits (15 for News 15-5).
        embedding_dim: width of the word embeddings.
        channels: channels of every convolution.
        kernel_size: width of every convolution.
        pool_size: width of the two intermediate max-poolings.
        hidden: width of the fully connected layer.

    Raises:
        TypeError, ValueError: a size that is not a positive integer.

    Example:
        >>> NewsCNN(vocab_size=50, num_classes=15)(torch.randint(0, 50, (2, 200))).shape
        torch.Size([2, 15])
    """

    def __init__(
        self,
        vocab_size: int = 10_000,
        num_classes: int = 15,
        embedding_dim: int = 100,
        channels: int = 128,
        kernel_size: int = 5,
        pool_size: int = 5,
        hidden: int = 128,
    ) -> None:
        super().__init__(vocab_size, num_classes, embedding_dim, channels)
        self.kernel_size = check_integer("kernel_size", kernel_size)
        self.pool_size = check_integer("pool_size", pool_size)
        self.features = nn.Sequential(
            nn.Conv1d(embedding_dim, channels, kernel_size),
            nn.ReLU(),
            nn.MaxPool1d(pool_size),
            nn.Conv1d(channels, channels, kernel_size),
            nn.ReLU(),
            nn.MaxPool1d(pool_size),
            nn.Conv1d(channels, channels, kernel_size),
            nn.ReLU(),
        )
        self.classifier = nn.Sequential(
            nn.Linear(channels, check_integer("hidden", hidden)), nn.ReLU(), nn.Linear(hidden, num_classes)
        )

    @property
    def min_length(self) -> int:
        """The shortest sequence the three convolutions and two poolings accept."""
        length = self.kernel_size  # the last convolution needs kernel_size steps
        for _ in range(2):
            length = length * self.pool_size + self.kernel_size - 1
        return length

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """Logits ``(batch, num_classes)`` for token ids ``(batch, seq_len)``.

        Raises:
            ValueError: inputs that are not 2-D integer ids, or sequences shorter than :attr:`min_length`.
        """
        x = self.embed(tokens, self.min_length)
        return self.classifier(self.features(x).amax(dim=2))
