"""Random labels: fine-tune on ``retain`` together with the forget set under random wrong labels.

The baseline every recent unlearning paper reports (e.g. Fan et al., "SalUn: Empowering Machine
Unlearning via Gradient-based Weight Saliency", ICLR 2024, where it is "RL"; after Golatkar et
al., 2020). Each forget sample ``(x, y)`` gets a label ``y'`` drawn uniformly from the classes
other than ``y`` (once per fit, seeded), and the model minimises the cross-entropy over
``retain ∪ {(x, y')}``, shuffled together:

    min_θ  E_{(x, y) ∈ D_f, y' ≠ y} ℓ_CE(θ; x, y')  +  E_{(x, y) ∈ D_r} ℓ_CE(θ; x, y)

(SalUn's random-labelling objective with its weight α = 1 on the retain term; as in the
authors' code, both sets are concatenated into one shuffled loader rather than weighted).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.utils.data import ConcatDataset, DataLoader, Dataset

from lightning_unlearn.datamodules.base import IndexedBatch
from lightning_unlearn.modules.baselines import UnlearningBaseline

__all__ = ["RandomLabelsBaseline", "RelabelledDataset", "random_other_labels"]


def random_other_labels(labels: torch.Tensor, num_classes: int, generator: torch.Generator) -> torch.Tensor:
    """For each label ``y``, a label drawn uniformly from the ``num_classes − 1`` classes other than ``y``.

    Example:
        >>> labels = torch.tensor([0, 1, 2, 3])
        >>> new = random_other_labels(labels, 4, torch.Generator().manual_seed(0))
        >>> bool((new != labels).all()), bool(((new >= 0) & (new < 4)).all())
        (True, True)
    """
    if num_classes < 2:
        raise ValueError(f"Expected at least 2 classes to relabel into, but got {num_classes}.")
    shift = torch.randint(1, num_classes, labels.shape, generator=generator)
    return (labels.long() + shift) % num_classes


class RelabelledDataset(Dataset):
    """A split whose labels are replaced, position by position (inputs and global indices kept)."""

    def __init__(self, dataset: Dataset, labels: torch.Tensor) -> None:
        if len(dataset) != len(labels):  # type: ignore[arg-type]
            raise ValueError(f"Expected one label per sample ({len(dataset)}), but got {len(labels)}.")  # type: ignore[arg-type]
        self.dataset = dataset
        self.labels = labels

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def __getitem__(self, position: int) -> IndexedBatch:
        item = self.dataset[position]
        return IndexedBatch(item[0], self.labels[position], item[2])


class RandomLabelsBaseline(UnlearningBaseline):
    """Random labels: fine-tune on ``retain ∪ forget``, the forget samples relabelled at random.

    See the module docstring for the objective. Hyper-parameters: 10 epochs and SGD (lr 0.01,
    momentum 0.9), SalUn's schedule for this baseline on CIFAR-10 (its lr, chosen for ResNet-18,
    is kept as the fine-tuning baselines' 0.01 here: our choice).

    Args:
        target: the trained classifier (copied).
        max_epochs: epochs over ``retain ∪ forget``.
        optimizer: builds the optimiser (default SGD, lr 0.01, momentum 0.9).
        loss: the training loss; by default the target's.
        mia_folds: cross-validation folds of the MIA score.
        seed: seeds the random labels and the MIA score.

    Raises:
        TypeError, ValueError: what :class:`~lightning_unlearn.modules.baselines.UnlearningBaseline` raises.

    Example:
        >>> from lightning_unlearn import DigitsDataModule, TrainingRecipe, train_classifier
        >>> from lightning_unlearn.modules.baselines import run_baseline
        >>> dm = DigitsDataModule()
        >>> target = train_classifier(TrainingRecipe(max_epochs=5), dm, enable_progress_bar=False).module
        >>> model, seconds = run_baseline(RandomLabelsBaseline(target, max_epochs=2), dm)
        >>> type(model).__name__
        'MLP'
    """

    default_max_epochs = 10

    def __init__(
        self,
        target: nn.Module,
        **kwargs: Any,
    ) -> None:
        super().__init__(target, **kwargs)
        self.save_hyperparameters(ignore=["target", "optimizer"])

    def forget_labels(self) -> torch.Tensor:
        """The random wrong label of every forget sample, in the order of the ``forget`` split (seeded)."""
        forget = self.unlearning_data.dataset("forget")
        generator = torch.Generator().manual_seed(self.seed)
        return random_other_labels(forget.labels, self.num_classes, generator)

    def train_dataloader(self) -> DataLoader:
        datamodule = self.unlearning_data
        relabelled = RelabelledDataset(datamodule.dataset("forget"), self.forget_labels())
        combined: Dataset[Any] = ConcatDataset([datamodule.dataset("retain"), relabelled])
        return DataLoader(
            combined,
            batch_size=datamodule.batch_size,
            shuffle=True,
            generator=torch.Generator().manual_seed(self.seed),
        )
