"""The splits Forsaken needs to unlearn canaries from a language model read as a next-token classifier.

Samples are next-token windows, the input of
:class:`~lightning_unlearn.language.model.NextTokenClassifier`: each secret token of a canary,
with the tokens before it as its window, is one sample; so is each random window of the
training corpus and of held-out sentences.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from lightning_unlearn.checks import check_integer
from lightning_unlearn.datamodules.base import UnlearningDataModule
from lightning_unlearn.datamodules.sources.base import DataSource, SourceData
from lightning_unlearn.datamodules.sources.vocabulary import PAD_ID, Vocabulary
from lightning_unlearn.datamodules.splits import SPLIT_NAMES, Split, UnlearningSplits
from lightning_unlearn.language.canaries import Canary
from lightning_unlearn.language.corpus import BOS
from lightning_unlearn.language.model import sentence_tensors

__all__ = ["CanaryUnlearningDataModule"]


def _secret_windows(
    canaries: Sequence[Canary], vocabulary: Vocabulary, context_length: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """One window per secret symbol: ``<s> + prefix + secret[:j]`` → ``secret[j]``."""
    windows, labels = [], []
    bos = vocabulary.id_of(BOS)
    for canary in canaries:
        ids = vocabulary.ids(canary.tokens)
        for j in range(len(canary.prefix), len(ids)):
            window = [bos, *ids[:j]]
            windows.append(window + [PAD_ID] * (context_length - len(window)))
            labels.append(ids[j])
    return torch.as_tensor(windows, dtype=torch.int64), torch.as_tensor(labels, dtype=torch.int64)


def _corpus_windows(
    sentences: Sequence[Sequence[str]], vocabulary: Vocabulary, context_length: int, count: int, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """``count`` random next-token windows from ``sentences``."""
    inputs, targets = sentence_tensors(sentences, vocabulary, context_length)
    lengths = (targets != PAD_ID).sum(dim=1)
    rng = np.random.default_rng(seed)
    rows = rng.integers(0, len(inputs), size=count)
    windows, labels = [], []
    for row in rows:
        position = int(rng.integers(0, int(lengths[row])))
        window = inputs[row].clone()
        window[position + 1 :] = PAD_ID
        windows.append(window)
        labels.append(targets[row, position])
    return torch.stack(windows), torch.stack(labels)


class _TensorSource(DataSource):
    def __init__(self, data: SourceData) -> None:
        self.data = data
        self.name = data.name

    def load(self) -> SourceData:
        return self.data


class CanaryUnlearningDataModule(UnlearningDataModule):
    """The splits Forsaken needs to unlearn canaries from a language model read as a next-token classifier.

    Samples are next-token windows (``int64``, ``(context_length,)``, right-padded) labelled
    with the next token's id. The splits are fixed by the experiment rather than drawn:

    * ``forget`` — one window per secret symbol of every inserted canary;
    * ``reference`` / ``heldout`` — the same windows of canaries never inserted (two disjoint
      halves): the non-members ``P`` is built from, and the MIA negatives;
    * ``retain`` and ``probe`` — random windows of the training corpus (``probe`` is ``D0`` for ω);
      ``target_train`` is ``retain ∪ forget``;
    * ``test`` — random windows of held-out sentences (a quarter of them form ``validation``);
    * ``validation_heldout`` — with 3 or more unseen canaries, the secret windows of a quarter of
      them (whole canaries, taken from the ``reference`` side); empty otherwise;
    * ``shadow_train`` / ``shadow_test`` — empty: exposure needs no membership oracle.

    Args:
        vocabulary: the language model's vocabulary.
        context_length: the language model's context.
        forget_canaries: the inserted canaries to forget.
        unseen_canaries: canaries of the same format that were never inserted (at least 2).
        train_sentences: the training corpus (for ``retain`` and ``probe`` windows).
        test_sentences: held-out sentences (for ``test`` windows).
        retain_windows: how many training windows form ``retain``.
        probe_windows: how many of them form ``probe``.
        seed: seeds the windows drawn.
        batch_size: see :class:`~lightning_unlearn.datamodules.UnlearningDataModule`.

    Raises:
        ValueError: no canary to forget, fewer than 2 unseen canaries, or window counts below 1.
    """

    def __init__(
        self,
        vocabulary: Vocabulary,
        context_length: int,
        forget_canaries: Sequence[Canary],
        unseen_canaries: Sequence[Canary],
        train_sentences: Sequence[Sequence[str]],
        test_sentences: Sequence[Sequence[str]],
        retain_windows: int = 512,
        probe_windows: int = 64,
        seed: int = 0,
        batch_size: int = 64,
    ) -> None:
        if not forget_canaries:
            raise ValueError("Expected at least one canary in `forget_canaries`, but got none.")
        if len(unseen_canaries) < 2:
            raise ValueError(f"Expected at least 2 `unseen_canaries`, but got {len(unseen_canaries)}.")
        check_integer("retain_windows", retain_windows)
        check_integer("probe_windows", probe_windows)
        forget_x, forget_y = _secret_windows(forget_canaries, vocabulary, context_length)
        unseen_x, unseen_y = _secret_windows(unseen_canaries, vocabulary, context_length)
        retain_x, retain_y = _corpus_windows(train_sentences, vocabulary, context_length, retain_windows, seed)
        test_x, test_y = _corpus_windows(test_sentences, vocabulary, context_length, retain_windows, seed + 1)
        parts = [(forget_x, forget_y), (unseen_x, unseen_y), (retain_x, retain_y), (test_x, test_y)]
        data = SourceData(
            name="canary-windows",
            inputs=torch.cat([x for x, _ in parts]),
            targets=torch.cat([y for _, y in parts]),
            num_classes=len(vocabulary),
        )
        offsets = np.cumsum([0] + [len(y) for _, y in parts])
        ranges = [np.arange(offsets[i], offsets[i + 1], dtype=np.int64) for i in range(len(parts))]
        forget, unseen, retain, test = ranges
        per_canary = len(unseen_canaries[0].secret)
        cut = (len(unseen_canaries) // 2) * per_canary  # whole canaries on each side
        # The validation pair: a quarter of the test windows, and (with 3 or more unseen canaries)
        # whole canaries taken from the `reference` side, so `heldout` keeps its size.
        validation_cut = (len(unseen_canaries) // 4 if len(unseen_canaries) >= 3 else 0) * per_canary
        test_cut = len(test) - max(1, len(test) // 4)
        probe = np.random.default_rng(seed).choice(retain, size=min(probe_windows, len(retain)), replace=False)
        labels = data.targets.numpy()
        chosen = {
            "target_train": np.concatenate([retain, forget]),
            "retain": retain,
            "forget": forget,
            "probe": probe,
            "test": test[:test_cut],
            "reference": unseen[validation_cut:cut],
            "heldout": unseen[cut:],
            "validation": test[test_cut:],
            "validation_heldout": unseen[:validation_cut],
            "shadow_train": np.empty(0, dtype=np.int64),
            "shadow_test": np.empty(0, dtype=np.int64),
        }
        self._fixed_splits = UnlearningSplits(
            kind="id",
            num_classes=len(vocabulary),
            splits={name: Split.of(chosen[name], labels[chosen[name]]) for name in SPLIT_NAMES},
            settings={"kind": "canaries", "seed": seed},
        )
        self._fixed_data = data
        super().__init__(source=_TensorSource(data), kind="id", seed=seed, batch_size=batch_size)
        # Lightning collects every __init__ argument as a hyperparameter; the corpora and canaries are data.
        for bulky in ("vocabulary", "forget_canaries", "unseen_canaries", "train_sentences", "test_sentences"):
            self._hparams.pop(bulky, None)
            initial = getattr(self, "_hparams_initial", None)
            if initial is not None:
                initial.pop(bulky, None)

    def setup(self, stage: str | None = None) -> None:
        """Install the fixed splits (idempotent)."""
        if self._splits is None:
            self._data, self._inputs, self._splits = self._fixed_data, self._fixed_data.inputs, self._fixed_splits
