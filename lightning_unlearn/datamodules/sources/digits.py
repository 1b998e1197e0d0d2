"""The embedded default source: scikit-learn's bundled handwritten digits, no download needed."""

from __future__ import annotations

import torch

from lightning_unlearn.datamodules.sources.base import DataSource, SourceData

__all__ = ["DigitsSource"]


class DigitsSource(DataSource):
    """scikit-learn's bundled handwritten digits: 1,797 images of 8×8 pixels, 10 classes.

    The data ships inside scikit-learn, so this source never downloads. Pixels are the
    dataset's 0–16 intensities scaled to ``[0, 1]``, flattened to 64 features.

    Example:
        >>> data = DigitsSource().load()
        >>> len(data), data.sample_shape, data.num_classes
        (1797, (64,), 10)
    """

    name = "digits"

    def load(self) -> SourceData:
        from sklearn.datasets import load_digits

        bunch = load_digits()
        inputs = torch.as_tensor(bunch.data, dtype=torch.float32) / 16.0
        targets = torch.as_tensor(bunch.target, dtype=torch.int64)
        return SourceData(
            name=self.name,
            inputs=inputs,
            targets=targets,
            num_classes=10,
            classes=tuple(str(c) for c in range(10)),
        )
