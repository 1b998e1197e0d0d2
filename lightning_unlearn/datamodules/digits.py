"""The embedded default: scikit-learn's handwritten digits, no download needed."""

from __future__ import annotations

from typing import Any

from lightning_unlearn.datamodules.base import UnlearningDataModule
from lightning_unlearn.datamodules.sources import DataSource, DigitsSource
from lightning_unlearn.datamodules.splits import ForgetKind

__all__ = ["DigitsDataModule"]


class DigitsDataModule(UnlearningDataModule):
    """Unlearning splits over scikit-learn's bundled digits (1,797 images of 8×8 pixels).

    The default scenario is OOD forgetting by label split: digits 0–4 are the task, and
    digits 5–9 form the OOD pool, inserted into the target's training data under random
    labels from 0–4 (a fifth of the pool, 179 samples, is the forget set). Any other kind
    of :class:`~lightning_unlearn.datamodules.UnlearningDataModule` works too; ``ood_foreign``
    and ``ood_mislabeled`` need an ``ood_source``, whose images are converted to 8×8
    grayscale features.

    Args:
        kind: the forget set (see :class:`~lightning_unlearn.datamodules.UnlearningDataModule`).
        forget_size: samples to forget.
        seed: seeds every split.
        split_class: the first OOD class for ``ood_label_split`` (default 5).
        ood_source: the other dataset for ``ood_foreign`` / ``ood_mislabeled``.
        **kwargs: every other argument of ``UnlearningDataModule``.

    Example:
        >>> dm = DigitsDataModule(seed=0)
        >>> dm.setup()
        >>> dm.num_classes, len(dm.splits["forget"])
        (5, 179)
    """

    def __init__(
        self,
        kind: ForgetKind = "ood_label_split",
        forget_size: int | None = None,
        seed: int = 0,
        split_class: int | None = 5,
        ood_source: DataSource | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            source=DigitsSource(),
            kind=kind,
            forget_size=forget_size,
            seed=seed,
            ood_source=ood_source,
            split_class=split_class if kind == "ood_label_split" else None,
            **kwargs,
        )
