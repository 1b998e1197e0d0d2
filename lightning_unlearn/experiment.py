"""The main job: build the splits, train the target and the shadow, report what they learnt.

This is the first stage of every unlearning experiment (DESIGN §5): the target is what a
method will unlearn from, and the shadow is what the membership oracle learns from. Both are
trained with one :class:`~lightning_unlearn.training.TrainingRecipe`.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from lightning_unlearn.datamodules.base import UnlearningDataModule
from lightning_unlearn.datamodules.digits import DigitsDataModule
from lightning_unlearn.inference import predict
from lightning_unlearn.training import TrainedModel, TrainingRecipe, train_classifier

__all__ = ["ModelSummary", "TrainingReport", "train_target_and_shadow"]

_EVALUATED = {
    "target": ("target_train", "retain", "forget", "test", "heldout"),
    "shadow": ("shadow_train", "shadow_test"),
}


@dataclass
class ModelSummary:
    """Accuracy of one trained model on the splits that matter for it, and its training time."""

    name: str
    train_split: str
    seconds: float
    accuracy: dict[str, float] = field(default_factory=dict)


@dataclass
class TrainingReport:
    """What the first stage produced: the split summary and one :class:`ModelSummary` a model."""

    split_summary: str
    models: list[ModelSummary]
    output_dir: str | None = None

    def table(self) -> str:
        """The accuracies as a fixed-width table."""
        splits = [s for model in self.models for s in model.accuracy]
        columns = list(dict.fromkeys(splits))
        header = f"{'model':<8} {'trained on':<13} {'time':>7}  " + "  ".join(f"{c:>12}" for c in columns)
        rows = [header, "-" * len(header)]
        for model in self.models:
            cells = "  ".join(f"{model.accuracy[c]:>12.3f}" if c in model.accuracy else f"{'':>12}" for c in columns)
            rows.append(f"{model.name:<8} {model.train_split:<13} {model.seconds:>6.1f}s  {cells}")
        return "\n".join(rows)

    def __str__(self) -> str:
        return f"{self.split_summary}\n\nAccuracy (share of samples predicted as their split's label):\n{self.table()}"

    def to_dict(self) -> dict[str, object]:
        return {"split_summary": self.split_summary, "models": [asdict(m) for m in self.models]}


def _summarise(name: str, trained: TrainedModel, datamodule: UnlearningDataModule) -> ModelSummary:
    accuracy = {split: predict(trained.module, datamodule.dataloader(split)).accuracy() for split in _EVALUATED[name]}
    return ModelSummary(name=name, train_split=trained.train_split, seconds=trained.seconds, accuracy=accuracy)


def train_target_and_shadow(
    datamodule: UnlearningDataModule | None = None,
    recipe: TrainingRecipe | None = None,
    output_dir: str | os.PathLike[str] | None = "outputs/digits",
    progress_bar: bool = True,
) -> TrainingReport:
    """Build the splits, then train the target and the shadow with the same recipe.

    Prints the split summary and an accuracy table. With ``output_dir``, writes there the
    split manifest (``manifest.json``), both models' weights as plain ``state_dict`` files
    (``target.pt``, ``shadow.pt``) and the report (``training.json``).

    Args:
        datamodule: the splits (default: the digits OOD scenario, no download needed).
        recipe: how both models are trained (default: an MLP, 60 epochs of Adam).
        output_dir: where to write the outputs; ``None`` writes nothing.
        progress_bar: show Lightning's progress bars while training.

    Returns:
        The split summary and each model's accuracies and training time.
    """
    datamodule = datamodule if datamodule is not None else DigitsDataModule()
    recipe = recipe if recipe is not None else TrainingRecipe()
    datamodule.prepare_data()
    already_built = datamodule.has_splits
    datamodule.setup("fit")  # logs the split summary when it builds the splits
    if already_built:
        print(datamodule.summary(), flush=True)
    trained = {
        "target": train_classifier(recipe, datamodule, "target_train", enable_progress_bar=progress_bar),
        "shadow": train_classifier(recipe, datamodule, "shadow_train", enable_progress_bar=progress_bar),
    }
    report = TrainingReport(
        split_summary=datamodule.summary(),
        models=[_summarise(name, model, datamodule) for name, model in trained.items()],
    )
    if output_dir is not None:
        directory = Path(output_dir)
        directory.mkdir(parents=True, exist_ok=True)
        datamodule.save_manifest(directory / "manifest.json")
        for name, model in trained.items():
            torch.save(model.module.backbone.state_dict(), directory / f"{name}.pt")
        (directory / "training.json").write_text(json.dumps(report.to_dict(), indent=2))
        report.output_dir = str(directory)
    print("\nAccuracy (share of samples predicted as their split's label):")
    print(report.table(), flush=True)
    if report.output_dir:
        print(f"\nWrote manifest.json, target.pt, shadow.pt and training.json to {report.output_dir}/")
    return report
