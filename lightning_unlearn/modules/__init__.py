"""LightningModules: the training recipe and the unlearning methods."""

from lightning_unlearn.modules.classifier import ClassifierModule, classification_loss

__all__ = ["ClassifierModule", "classification_loss"]
