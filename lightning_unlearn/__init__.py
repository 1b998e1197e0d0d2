"""lightning-unlearn: machine-unlearning methods for classifiers, and the evaluation that
proves the forgetting happened, as PyTorch Lightning modules."""

from lightning_unlearn.callbacks import MembershipInferenceCallback, MIAEarlyStopping
from lightning_unlearn.datamodules import DigitsDataModule, UnlearningDataModule
from lightning_unlearn.inference import Predictions, predict
from lightning_unlearn.modules import (
    ClassifierModule,
    FNNModule,
    ForsakenModule,
    ForsakenResult,
    RetrainBaseline,
    SISADPEnsemble,
    SISAEnsemble,
    UnlearningMethod,
    fit_forsaken,
    fit_method,
    forsaken_configuration,
    forsaken_unlearn,
    run_baseline,
)
from lightning_unlearn.trainers import DeviceSettings, build_trainer
from lightning_unlearn.training import TrainedModel, TrainingRecipe, train_classifier

__version__ = "0.1.0"

__all__ = [
    "ClassifierModule",
    "DeviceSettings",
    "DigitsDataModule",
    "FNNModule",
    "ForsakenModule",
    "ForsakenResult",
    "MIAEarlyStopping",
    "MembershipInferenceCallback",
    "Predictions",
    "RetrainBaseline",
    "SISADPEnsemble",
    "SISAEnsemble",
    "TrainedModel",
    "TrainingRecipe",
    "UnlearningDataModule",
    "UnlearningMethod",
    "__version__",
    "build_trainer",
    "fit_forsaken",
    "fit_method",
    "forsaken_configuration",
    "forsaken_unlearn",
    "predict",
    "run_baseline",
    "train_classifier",
]
