"""LightningModules: the training recipe and the unlearning methods."""

from lightning_unlearn.modules.classifier import ClassifierModule, classification_loss
from lightning_unlearn.modules.forsaken import ForsakenModule, ForsakenResult, forsaken_unlearn

__all__ = ["ClassifierModule", "ForsakenModule", "ForsakenResult", "classification_loss", "forsaken_unlearn"]
