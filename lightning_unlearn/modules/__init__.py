"""LightningModules: the training recipe and the unlearning methods."""

from lightning_unlearn.classifier import ClassifierModule, classification_loss
from lightning_unlearn.modules.base import MethodRun, UnlearningMethod, fit_method, target_network
from lightning_unlearn.modules.baselines import (
    FinetuneBaseline,
    ForgetGradientRecorder,
    NegGradBaseline,
    NegGradPlusBaseline,
    RetrainBaseline,
    SMUBaseline,
    UnlearningBaseline,
    run_baseline,
)
from lightning_unlearn.modules.fnn import FNNModule, ForgettingLayer, insert_forgetting_layers
from lightning_unlearn.modules.forsaken import (
    FORSAKEN_CONFIGURATIONS,
    ForsakenModule,
    ForsakenResult,
    fit_forsaken,
    forsaken_configuration,
    forsaken_unlearn,
)
from lightning_unlearn.modules.l1_sparse import L1SparseBaseline
from lightning_unlearn.modules.random_labels import RandomLabelsBaseline
from lightning_unlearn.modules.salun import SalUnBaseline
from lightning_unlearn.modules.scrub import SCRUBBaseline
from lightning_unlearn.modules.sisa import SISADPEnsemble, SISAEnsemble, SISAVoteModel

__all__ = [
    "FORSAKEN_CONFIGURATIONS",
    "ClassifierModule",
    "FNNModule",
    "FinetuneBaseline",
    "ForgetGradientRecorder",
    "ForgettingLayer",
    "ForsakenModule",
    "ForsakenResult",
    "L1SparseBaseline",
    "MethodRun",
    "NegGradBaseline",
    "NegGradPlusBaseline",
    "RandomLabelsBaseline",
    "RetrainBaseline",
    "SCRUBBaseline",
    "SISADPEnsemble",
    "SISAEnsemble",
    "SISAVoteModel",
    "SMUBaseline",
    "SalUnBaseline",
    "UnlearningBaseline",
    "UnlearningMethod",
    "classification_loss",
    "fit_forsaken",
    "fit_method",
    "forsaken_configuration",
    "forsaken_unlearn",
    "insert_forgetting_layers",
    "run_baseline",
    "target_network",
]
