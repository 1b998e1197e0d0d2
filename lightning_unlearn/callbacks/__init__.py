"""Lightning callbacks for unlearning runs."""

from lightning_unlearn.callbacks.membership_inference import MembershipInferenceCallback
from lightning_unlearn.callbacks.mia_early_stopping import MIAEarlyStopping
from lightning_unlearn.trainers import ReleaseSpawnedProcessGroup

__all__ = ["MIAEarlyStopping", "MembershipInferenceCallback", "ReleaseSpawnedProcessGroup"]
