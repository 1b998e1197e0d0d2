"""The comparison baselines of every unlearning table: retraining, SMU, fine-tuning, NegGrad, NegGrad+.

Each baseline is an :class:`~lightning_unlearn.modules.base.UnlearningMethod`: it takes the
trained target (a :class:`~lightning_unlearn.modules.ClassifierModule` or a plain ``nn.Module``,
copied, never modified); ``trainer.fit(baseline, datamodule=dm)`` with an
:class:`~lightning_unlearn.datamodules.UnlearningDataModule` runs the unlearning;
:meth:`UnlearningBaseline.unlearned_model` returns a plain ``nn.Module`` of the target's
architecture. Validation reads the validation
pair and the forget set (``validation``, ``forget``, ``validation_heldout``; never ``test`` or
``heldout``, which are the final report's) and logs the same figures as the other methods:
``val/acc``, ``val/forget_acc``, ``mia/score``, ``mia/auc`` and ``mia/loss_auc``.
:func:`run_baseline` runs one and times the unlearning step alone.

* :class:`RetrainBaseline` — the gold standard: a freshly initialised copy of the architecture
  trained on ``retain`` with the target's :class:`~lightning_unlearn.training.TrainingRecipe`.
  Its time is the denominator of every speed-up.
* :class:`SMUBaseline` — summation-based unlearning (after Cao & Yang, "Towards Making Systems
  Forget with Machine Unlearning"): :class:`ForgetGradientRecorder`, attached to the target's
  training, records for every epoch ``e`` the learning-rate-weighted sum of the forget samples'
  gradient contributions, ``S_e = Σ_{t ∈ e} η_t · (1/B_t) · Σ_{i ∈ F ∩ b_t} ∇ℓ_i(θ_t)``
  (``B_t`` the batch size, ``b_t`` the batch, ``θ_t`` the weights the step started from). The
  unlearning is one more pass that adds them back: ``θ* = θ_T + Σ_e S_e``. With plain SGD (no
  momentum, no weight decay) ``θ_T = θ_0 − Σ_t η_t·(1/B_t)·Σ_{i ∈ b_t} ∇ℓ_i(θ_t)``, so
  ``θ* = θ_0 − Σ_t η_t·(1/B_t)·Σ_{i ∈ R ∩ b_t} ∇ℓ_i(θ_t)``: the forget samples' recorded
  contribution is removed exactly. It equals retraining only to first order: the retained
  gradients were taken at weights the forget samples had already moved, and retraining would
  average over the retained samples of a batch, not all ``B_t``. Under Adam (the default
  recipe) the step is not linear in the gradient, and the subtraction is a heuristic.
* :class:`FinetuneBaseline` — fine-tune on ``retain`` for a few epochs (the NeurIPS 2023
  unlearning challenge's baseline).
* :class:`NegGradBaseline` — gradient ascent on ``forget``: minimise ``−CE(forget)``.
* :class:`NegGradPlusBaseline` — NegGrad+ (Kurmanji et al., SCRUB paper): minimise
  ``α·CE(retain) − (1 − α)·CE(forget)``, one forget batch (cycled) with every retain batch.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from typing import Any, ClassVar

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.cli import OptimizerCallable
from lightning.pytorch.utilities import rank_zero_warn
from torch import nn
from torch.utils.data import DataLoader
from torchmetrics.classification import MulticlassAccuracy

from lightning_unlearn.checks import check_integer
from lightning_unlearn.classifier import classification_loss
from lightning_unlearn.datamodules.base import IndexedBatch, UnlearningDataModule
from lightning_unlearn.metrics.classes import MIAScore
from lightning_unlearn.models import LossName
from lightning_unlearn.modules.base import MethodRun, UnlearningMethod, fit_method, target_network
from lightning_unlearn.trainers import DeviceSettings, build_trainer, quiet_lightning
from lightning_unlearn.training import TrainingRecipe, fresh_copy

__all__ = [
    "BaselineRun",
    "FinetuneBaseline",
    "ForgetGradientRecorder",
    "NegGradBaseline",
    "NegGradPlusBaseline",
    "RetrainBaseline",
    "SMUBaseline",
    "UnlearningBaseline",
    "run_baseline",
]

#: What validation reads, in dataloader order: accuracy, then the MIA's members and non-members.
#: ``test`` and ``heldout`` are the final report's alone.
VALIDATION_SPLITS = ("validation", "forget", "validation_heldout")


def default_unlearning_optimizer(params: Any) -> torch.optim.Optimizer:
    """SGD with momentum 0.9, lr 0.01: the usual optimiser of the fine-tuning baselines."""
    return torch.optim.SGD(params, lr=0.01, momentum=0.9)


def default_ascent_optimizer(params: Any) -> torch.optim.Optimizer:
    """Plain SGD, lr 0.01: gradient ascent with momentum overshoots on small forget sets."""
    return torch.optim.SGD(params, lr=0.01)


# ---------------------------------------------------------------------------- the shared base
class UnlearningBaseline(UnlearningMethod):
    """Shared plumbing of the baselines: a trainable copy of the target, the splits, the evaluation.

    Fit it like every method, ``trainer.fit(baseline, datamodule=dm)`` (or :func:`run_baseline`):
    training draws ``retain`` unless a baseline says otherwise. Validation runs ``validation``
    (``val/acc``), ``forget`` (``val/forget_acc``; members of the MIA score) and
    ``validation_heldout`` (non-members), and logs ``mia/score``, ``mia/auc`` and ``mia/loss_auc``
    (the direction: below 0.5 when forget samples have higher losses than unseen ones) from
    :class:`~lightning_unlearn.metrics.MIAScore`; every validation's figures are appended to
    :attr:`history`. ``test`` and ``heldout`` are never read: they are the final report's.

    A subclass sets its defaults in :attr:`default_max_epochs` and :attr:`default_optimizer` and
    forwards the shared arguments (``**kwargs``) rather than listing them again.

    Args:
        target: the trained classifier (a network or a ``ClassifierModule``); it is copied.
        max_epochs: how many epochs the unlearning runs (default: the baseline's
            :attr:`default_max_epochs`).
        optimizer: builds the optimiser from the parameters (default: the baseline's
            :attr:`default_optimizer`).
        loss: the training loss; by default the target's (its ``loss_name`` or its backbone's
            ``default_loss``), else cross-entropy.
        mia_folds: cross-validation folds of the MIA score.
        seed: seeds the MIA score and the run.

    Raises:
        TypeError: ``target`` is not a module or ``optimizer`` not callable.
        ValueError: ``max_epochs`` below 1, an unknown loss, or fewer than 2 folds.

    Example:
        >>> from lightning_unlearn.models import MLP
        >>> baseline = FinetuneBaseline(MLP(64, 5), max_epochs=2)  # any subclass; the target is copied
        >>> type(baseline.unlearned_model()).__name__, baseline.max_epochs
        ('MLP', 2)
    """

    reads: ClassVar[tuple[str, ...]] = ("retain", "forget", *VALIDATION_SPLITS)
    #: Epochs when ``max_epochs`` is not given.
    default_max_epochs: ClassVar[int] = 5
    #: The optimiser when ``optimizer`` is not given.
    default_optimizer: ClassVar[Callable[..., torch.optim.Optimizer]] = staticmethod(default_unlearning_optimizer)

    def __init__(
        self,
        target: nn.Module,
        max_epochs: int | None = None,
        optimizer: OptimizerCallable | None = None,
        loss: LossName | None = None,
        mia_folds: int = 5,
        seed: int = 0,
    ) -> None:
        super().__init__(target)
        network = target_network(target)
        optimizer = optimizer if optimizer is not None else type(self).default_optimizer
        if not callable(optimizer):
            raise TypeError(f"Expected `optimizer` to be callable, but got {type(optimizer).__name__}.")
        loss = loss if loss is not None else getattr(target, "loss_name", getattr(network, "default_loss", None))
        loss = loss if loss is not None else "cross_entropy"
        if loss not in ("cross_entropy", "hinge"):
            raise ValueError(f"Expected `loss` to be 'cross_entropy' or 'hinge', but got {loss!r}.")
        if isinstance(mia_folds, bool) or not isinstance(mia_folds, int) or mia_folds < 2:
            raise ValueError(f"Expected `mia_folds` to be an integer of at least 2, but got {mia_folds!r}.")
        self.max_epochs = check_integer("max_epochs", self.default_max_epochs if max_epochs is None else max_epochs)
        self.model = copy.deepcopy(network).train()
        self.model.requires_grad_(True)
        self.optimizer = optimizer
        self.loss_name: LossName = loss
        self.seed = seed
        self.val_acc = MulticlassAccuracy(self.num_classes, average="micro")
        self.forget_acc = MulticlassAccuracy(self.num_classes, average="micro")
        self.mia = MIAScore(n_splits=mia_folds, seed=seed)

    # ------------------------------------------------------------------ data
    def val_dataloader(self) -> list[DataLoader]:
        return [self.split_dataloader(split) for split in VALIDATION_SPLITS]

    def fit_settings(self) -> dict[str, Any]:
        return {"max_epochs": self.max_epochs}

    # ------------------------------------------------------------------ steps
    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.model(inputs)

    def loss(self, batch: IndexedBatch) -> torch.Tensor:
        """The training loss of the target's recipe on one batch."""
        return classification_loss(self(batch[0]), batch[1], self.loss_name)

    def training_step(self, batch: IndexedBatch, batch_idx: int) -> torch.Tensor | None:
        loss = self.loss(batch)
        self.log("train/loss", loss, prog_bar=True, batch_size=batch[0].shape[0])
        return loss

    def validation_step(self, batch: IndexedBatch, batch_idx: int, dataloader_idx: int = 0) -> None:
        inputs, targets, indices = batch[0], batch[1], batch[2]
        logits = self(inputs)
        if dataloader_idx == 0:
            self.val_acc(logits, targets)
            self.log("val/acc", self.val_acc, prog_bar=True, add_dataloader_idx=False)
            return
        if dataloader_idx == 1:
            self.forget_acc(logits, targets)
            self.log("val/forget_acc", self.forget_acc, add_dataloader_idx=False)
        self.mia.update(logits, targets, indices, is_member=dataloader_idx == 1)

    #: Which split each validation dataloader holds (read by
    #: :class:`~lightning_unlearn.callbacks.MembershipInferenceCallback`).
    validation_splits = VALIDATION_SPLITS

    #: The prefix of the names :meth:`epoch_figures` are logged under.
    epoch_figures_prefix = "unlearning"

    def epoch_figures(self) -> dict[str, float]:
        """Figures a subclass adds to every epoch's log and :attr:`history` (none here)."""
        return {}

    def on_validation_epoch_end(self) -> None:
        if self.trainer.sanity_checking:
            self.mia.reset()
            return
        score = float(self.mia.compute())
        result = self.mia.result
        auc = result.auc if result is not None else float("nan")
        loss_auc = result.loss_auc if result is not None else float("nan")
        self.mia.reset()
        # Every rank holds the same values (the attack is fitted once and broadcast): syncing is a no-op.
        self.log("mia/score", score, prog_bar=True, sync_dist=True)
        self.log("mia/auc", auc, sync_dist=True)
        self.log("mia/loss_auc", loss_auc, sync_dist=True)
        if result is not None:
            self.log("mia/group_size", float(result.group_size), sync_dist=True)
        figures = self.epoch_figures()
        for name, value in figures.items():
            self.log(f"{self.epoch_figures_prefix}/{name}", float(value), sync_dist=True)
        self.history.append(
            {
                "epoch": self.current_epoch,
                **figures,
                "acc": float(self.val_acc.compute()),
                "forget_acc": float(self.forget_acc.compute()),
                "mia": score,
                "mia_auc": float(auc),
                "mia_loss_auc": float(loss_auc),
            }
        )

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["unlearning_history"] = copy.deepcopy(self.history)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.history = copy.deepcopy(checkpoint.get("unlearning_history", []))

    def configure_optimizers(self) -> Any:
        return self.optimizer(self.model.parameters())

    def unlearned_model(self) -> nn.Module:
        """The unlearned classifier: a plain copy of the target's architecture (no wrapper), in eval mode."""
        return copy.deepcopy(self.model).eval()


# ---------------------------------------------------------------------------- retraining
class RetrainBaseline(UnlearningBaseline):
    """Full retraining on ``retain`` with the target's recipe: the gold standard of unlearning.

    The target's architecture is re-initialised from the recipe's seed (the target's weights
    are not used) and trained for the recipe's ``max_epochs`` with its optimiser (Adam, its
    learning rate and weight decay) on ``retain``, shuffled as the target's data was. The
    forget set is never seen; its time is the denominator of every speed-up.

    Args:
        target: the trained classifier; only its architecture is used.
        recipe: the target's training recipe (default: :class:`~lightning_unlearn.training.TrainingRecipe`).
        loss: the training loss; by default the target's.
        mia_folds: cross-validation folds of the MIA score.

    Raises:
        TypeError: ``recipe`` is not a TrainingRecipe, or what :class:`UnlearningBaseline` raises.

    Example:
        >>> from lightning_unlearn import DigitsDataModule, TrainingRecipe, train_classifier
        >>> dm, recipe = DigitsDataModule(), TrainingRecipe(max_epochs=5)
        >>> target = train_classifier(recipe, dm, enable_progress_bar=False).module
        >>> model, seconds = run_baseline(RetrainBaseline(target, recipe=recipe), dm)
        >>> type(model).__name__, seconds > 0
        ('MLP', True)
    """

    def __init__(
        self,
        target: nn.Module,
        recipe: TrainingRecipe | None = None,
        loss: LossName | None = None,
        mia_folds: int = 5,
    ) -> None:
        recipe = recipe if recipe is not None else TrainingRecipe()
        if not isinstance(recipe, TrainingRecipe):
            raise TypeError(f"Expected `recipe` to be a TrainingRecipe, but got {type(recipe).__name__}.")
        optimizer = partial(torch.optim.Adam, lr=recipe.learning_rate, weight_decay=recipe.weight_decay)
        super().__init__(target, recipe.max_epochs, optimizer, loss, mia_folds, recipe.seed)
        self.save_hyperparameters(ignore=["target", "recipe"])
        self.recipe = recipe
        self.model = fresh_copy(self.model, recipe.seed).train()


# ---------------------------------------------------------------------------- SMU
class ForgetGradientRecorder(Callback):
    """Records, while the target trains, the forget samples' gradient contributions epoch by epoch (for SMU).

    Attach it to the Trainer that trains the target
    (``train_classifier(recipe, dm, callbacks=[recorder])``). Before every optimiser step it
    takes, at the weights ``θ_t`` the step starts from, the gradient of the forget samples'
    share of the batch's mean loss, ``g_t = (1/B_t)·Σ_{i ∈ F ∩ b_t} ∇ℓ_i(θ_t)``, and adds
    ``g_t`` to :attr:`gradient_sums` and ``η_t·g_t`` (``η_t`` the step's learning rate) to
    :attr:`contributions`, one dictionary per epoch keyed by the network's parameter names. The
    extra forward pass runs under a forked RNG with the network's buffers restored afterwards,
    so the target's training is unchanged. Assumes one optimiser and one step per batch (no
    gradient accumulation), in one process.

    Args:
        forget_indices: global indices of the samples that will be forgotten.

    Raises:
        ValueError: no forget index.
        RuntimeError: at fit start, gradient accumulation or more than one optimiser.

    Example:
        >>> from lightning_unlearn import DigitsDataModule, TrainingRecipe, train_classifier
        >>> dm = DigitsDataModule()
        >>> dm.setup()
        >>> recorder = ForgetGradientRecorder(dm.splits["forget"].indices)
        >>> recipe = TrainingRecipe(max_epochs=5)
        >>> target = train_classifier(recipe, dm, callbacks=[recorder], enable_progress_bar=False).module
        >>> len(recorder.contributions)  # one sum per epoch
        5
    """

    def __init__(self, forget_indices: Sequence[int] | np.ndarray | torch.Tensor) -> None:
        super().__init__()
        indices = torch.as_tensor(np.asarray(forget_indices), dtype=torch.long).flatten()
        if indices.numel() == 0:
            raise ValueError("Expected `forget_indices` to hold at least one global index, but got none.")
        self.forget_indices = torch.unique(indices)
        self.gradient_sums: list[dict[str, torch.Tensor]] = []
        self.contributions: list[dict[str, torch.Tensor]] = []
        self.learning_rates: list[list[float]] = []
        self.optimizer_name = ""
        self.steps_recorded = 0

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.accumulate_grad_batches != 1:
            raise RuntimeError(
                "Expected one optimiser step per batch for ForgetGradientRecorder, but the Trainer accumulates"
                f" gradients over {trainer.accumulate_grad_batches} batches."
            )
        if len(trainer.optimizers) != 1:
            raise RuntimeError(
                f"Expected one optimiser for ForgetGradientRecorder, but the module has {len(trainer.optimizers)}."
            )
        self.optimizer_name = type(trainer.optimizers[0]).__name__

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        network = target_network(pl_module)
        zeros = {name: torch.zeros_like(p) for name, p in network.named_parameters() if p.requires_grad}
        self.gradient_sums.append({name: z.clone() for name, z in zeros.items()})
        self.contributions.append(zeros)
        self.learning_rates.append([])

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        inputs, targets, indices = batch[0], batch[1], batch[2]
        batch_size = inputs.shape[0]
        learning_rate = float(trainer.optimizers[0].param_groups[0]["lr"])
        self.learning_rates[-1].append(learning_rate)
        mask = torch.isin(indices, self.forget_indices.to(indices.device))
        count = int(mask.sum())
        if count == 0:
            return
        network = target_network(pl_module)
        named = [(name, p) for name, p in network.named_parameters() if p.requires_grad]
        buffers = {name: b.detach().clone() for name, b in network.named_buffers()}
        loss_name: LossName = getattr(pl_module, "loss_name", "cross_entropy")
        with torch.random.fork_rng(devices=[]), torch.enable_grad():
            logits = network(inputs[mask])
            share = classification_loss(logits, targets[mask], loss_name) * count / batch_size
            gradients = torch.autograd.grad(share, [p for _, p in named], allow_unused=True)
        with torch.no_grad():
            for name, b in network.named_buffers():
                b.copy_(buffers[name])
        for (name, _), gradient in zip(named, gradients):
            if gradient is None:
                continue
            self.gradient_sums[-1][name].add_(gradient.detach())
            self.contributions[-1][name].add_(gradient.detach(), alpha=learning_rate)
        self.steps_recorded += 1

    def total_contribution(self) -> dict[str, torch.Tensor]:
        """``Σ_e S_e``: what SMU adds to the target's parameters, by parameter name.

        Raises:
            RuntimeError: nothing was recorded (the recorder was not attached to a training run).
        """
        if not self.contributions:
            raise RuntimeError(
                "Expected ForgetGradientRecorder to have recorded the target's training, but it holds no epoch:"
                " pass it in the Trainer's `callbacks` while the target trains."
            )
        total = {name: torch.zeros_like(t) for name, t in self.contributions[0].items()}
        for epoch in self.contributions:
            for name, t in epoch.items():
                total[name] += t
        return total

    def state_dict(self) -> dict[str, Any]:
        return {
            "forget_indices": self.forget_indices,
            "gradient_sums": self.gradient_sums,
            "contributions": self.contributions,
            "learning_rates": self.learning_rates,
            "optimizer_name": self.optimizer_name,
            "steps_recorded": self.steps_recorded,
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        for key, value in state_dict.items():
            setattr(self, key, value)


class SMUBaseline(UnlearningBaseline):
    """Summation-based unlearning: add back the forget samples' recorded gradient contributions.

    One pass (a single step) computes ``θ* = θ_T + Σ_e S_e`` from a
    :class:`ForgetGradientRecorder` that watched the target train; see the module docstring for
    the update and when it is exact (plain SGD: the recorded contribution is removed exactly;
    retraining is matched only to first order). Under another optimiser it warns that the
    subtraction is a heuristic.

    Args:
        target: the trained classifier the recorder watched (copied).
        recorder: the recorder attached to the target's training.
        loss: the loss used for evaluation logging; by default the target's.
        mia_folds: cross-validation folds of the MIA score.

    Raises:
        TypeError: ``recorder`` is not a ForgetGradientRecorder.
        ValueError: the recorder's parameter names or shapes differ from the target's.
        RuntimeError: the recorder recorded nothing.

    Example:
        >>> from lightning_unlearn import DigitsDataModule, TrainingRecipe, train_classifier
        >>> dm = DigitsDataModule()
        >>> dm.setup()
        >>> recorder = ForgetGradientRecorder(dm.splits["forget"].indices)
        >>> recipe = TrainingRecipe(max_epochs=5)
        >>> target = train_classifier(recipe, dm, callbacks=[recorder], enable_progress_bar=False).module
        >>> model, seconds = run_baseline(SMUBaseline(target, recorder), dm)  # warns: Adam makes it a heuristic
        >>> type(model).__name__
        'MLP'
    """

    def __init__(
        self,
        target: nn.Module,
        recorder: ForgetGradientRecorder,
        loss: LossName | None = None,
        mia_folds: int = 5,
    ) -> None:
        super().__init__(target, 1, default_unlearning_optimizer, loss, mia_folds)
        if not isinstance(recorder, ForgetGradientRecorder):
            raise TypeError(f"Expected `recorder` to be a ForgetGradientRecorder, but got {type(recorder).__name__}.")
        total = recorder.total_contribution()
        parameters = dict(self.model.named_parameters())
        if set(total) - set(parameters):
            raise ValueError(
                "Expected the recorder to have watched this target's architecture, but it recorded parameters"
                f" {sorted(set(total) - set(parameters))[:3]} the target does not have."
            )
        for name, t in total.items():
            if t.shape != parameters[name].shape:
                raise ValueError(
                    f"Expected the recorded gradient of {name!r} to have shape {tuple(parameters[name].shape)},"
                    f" but got {tuple(t.shape)}."
                )
        self.recorder = recorder
        self.automatic_optimization = False
        self._applied = False

    def on_fit_start(self) -> None:
        super().on_fit_start()
        if self.recorder.optimizer_name and self.recorder.optimizer_name != "SGD":
            rank_zero_warn(
                "SMU's subtraction is exact only for plain SGD; the target trained with"
                f" {self.recorder.optimizer_name}, so adding back the recorded contributions is a heuristic."
            )

    def train_dataloader(self) -> DataLoader:
        # The update needs no data; the loop is paced by one batch (the forget set).
        return self.split_dataloader("forget", batch_size=max(1, len(self.unlearning_data.splits["forget"])))

    def training_step(self, batch: IndexedBatch, batch_idx: int) -> torch.Tensor | None:
        if self._applied:
            return None
        total = self.recorder.total_contribution()
        with torch.no_grad():
            for name, p in self.model.named_parameters():  # θ* = θ_T + Σ_e S_e
                if name in total:
                    p.add_(total[name].to(p.device))
        self._applied = True
        return None

    def configure_optimizers(self) -> Any:
        return None


# ---------------------------------------------------------------------------- fine-tuning family
class FinetuneBaseline(UnlearningBaseline):
    """Fine-tune the target on ``retain`` (the NeurIPS 2023 unlearning challenge's baseline).

    Catastrophic forgetting is the only force acting on the forget set: a few epochs on
    ``retain`` with SGD + momentum.

    Args:
        target: the trained classifier (copied).
        max_epochs: fine-tuning epochs.
        optimizer: builds the optimiser (default SGD, lr 0.01, momentum 0.9).
        loss: the training loss; by default the target's.
        mia_folds: cross-validation folds of the MIA score.
        seed: seeds the MIA score.

    Example:
        >>> from lightning_unlearn import DigitsDataModule, TrainingRecipe, train_classifier
        >>> dm = DigitsDataModule()
        >>> target = train_classifier(TrainingRecipe(max_epochs=5), dm, enable_progress_bar=False).module
        >>> model, seconds = run_baseline(FinetuneBaseline(target, max_epochs=2), dm)
        >>> type(model).__name__
        'MLP'
    """

    default_max_epochs = 5

    def __init__(
        self,
        target: nn.Module,
        **kwargs: Any,
    ) -> None:
        super().__init__(target, **kwargs)
        self.save_hyperparameters(ignore=["target", "optimizer"])


class NegGradBaseline(UnlearningBaseline):
    """NegGrad: gradient ascent on ``forget`` (minimise ``−CE(forget)``).

    Args:
        target: the trained classifier (copied).
        max_epochs: epochs over the forget set.
        optimizer: builds the optimiser (default plain SGD, lr 0.01).
        loss: the loss ascended; by default the target's.
        mia_folds: cross-validation folds of the MIA score.
        seed: seeds the MIA score.

    Example:
        >>> from lightning_unlearn import DigitsDataModule, TrainingRecipe, train_classifier
        >>> dm = DigitsDataModule()
        >>> target = train_classifier(TrainingRecipe(max_epochs=5), dm, enable_progress_bar=False).module
        >>> model, seconds = run_baseline(NegGradBaseline(target, max_epochs=2), dm)
        >>> type(model).__name__
        'MLP'
    """

    default_max_epochs = 5
    default_optimizer = staticmethod(default_ascent_optimizer)

    def __init__(
        self,
        target: nn.Module,
        **kwargs: Any,
    ) -> None:
        super().__init__(target, **kwargs)
        self.save_hyperparameters(ignore=["target", "optimizer"])

    def train_dataloader(self) -> DataLoader:
        return self.split_dataloader("forget", shuffle=True)

    def training_step(self, batch: IndexedBatch, batch_idx: int) -> torch.Tensor | None:
        forget_loss = self.loss(batch)
        self.log("train/forget_loss", forget_loss, prog_bar=True, batch_size=batch[0].shape[0])
        return -forget_loss


class NegGradPlusBaseline(UnlearningBaseline):
    """NegGrad+: descent on ``retain`` and ascent on ``forget``, ``α·CE(retain) − (1 − α)·CE(forget)``.

    Each retain batch is paired with the next forget batch (the forget loader is cycled).

    Args:
        target: the trained classifier (copied).
        max_epochs: epochs over ``retain``.
        retain_weight: ``α`` in (0, 1); the forget term weighs ``1 − α``.
        optimizer: builds the optimiser (default SGD, lr 0.01, momentum 0.9).
        loss: the training loss; by default the target's.
        mia_folds: cross-validation folds of the MIA score.
        seed: seeds the MIA score.

    Raises:
        ValueError: ``retain_weight`` outside (0, 1), or what :class:`UnlearningBaseline` raises.

    Example:
        >>> from lightning_unlearn import DigitsDataModule, TrainingRecipe, train_classifier
        >>> dm = DigitsDataModule()
        >>> target = train_classifier(TrainingRecipe(max_epochs=5), dm, enable_progress_bar=False).module
        >>> model, seconds = run_baseline(NegGradPlusBaseline(target, max_epochs=2, retain_weight=0.9), dm)
        >>> type(model).__name__
        'MLP'
    """

    default_max_epochs = 5

    def __init__(
        self,
        target: nn.Module,
        retain_weight: float = 0.9,
        **kwargs: Any,
    ) -> None:
        super().__init__(target, **kwargs)
        if isinstance(retain_weight, bool) or not isinstance(retain_weight, (int, float)):
            raise TypeError(f"Expected `retain_weight` to be a number, but got {type(retain_weight).__name__}.")
        if not 0.0 < retain_weight < 1.0:
            raise ValueError(f"Expected `retain_weight` (α) to be in (0, 1), but got {retain_weight!r}.")
        self.save_hyperparameters(ignore=["target", "optimizer"])
        self.retain_weight = float(retain_weight)
        self._forget_batches: Iterator[IndexedBatch] | None = None

    def _next_forget_batch(self) -> IndexedBatch:
        if self._forget_batches is None:
            self._forget_batches = self._cycle(self.split_dataloader("forget", shuffle=True))
        return next(self._forget_batches)

    @staticmethod
    def _cycle(loader: DataLoader) -> Iterator[IndexedBatch]:
        while True:
            yield from loader

    def on_fit_start(self) -> None:
        super().on_fit_start()
        self._forget_batches = None

    def training_step(self, batch: IndexedBatch, batch_idx: int) -> torch.Tensor | None:
        forget = self._next_forget_batch()
        retain_loss = self.loss(batch)
        forget_loss = self.loss(IndexedBatch(*(t.to(self.device) for t in forget)))
        loss = self.retain_weight * retain_loss - (1.0 - self.retain_weight) * forget_loss
        self.log_dict(
            {"train/retain_loss": retain_loss, "train/forget_loss": forget_loss, "train/loss": loss},
            prog_bar=True,
            batch_size=batch[0].shape[0],
        )
        return loss


# ---------------------------------------------------------------------------- the entry point
#: The result of :func:`run_baseline` (the same as every method's :class:`~lightning_unlearn.modules.base.MethodRun`).
BaselineRun = MethodRun


def run_baseline(
    baseline: UnlearningBaseline,
    datamodule: UnlearningDataModule,
    device_settings: DeviceSettings | None = None,
    *,
    max_epochs: int | None = None,
    seed: int = 0,
    progress_bar: bool = False,
    evaluate: bool = False,
    **trainer_kwargs: Any,
) -> MethodRun:
    """Run one baseline's unlearning and time it, evaluation excluded.

    The timer covers ``Trainer.fit`` with validation switched off. With ``evaluate``, one
    validation pass (``val/acc``, ``val/forget_acc``, ``mia/score``, ``mia/auc``) runs after the
    timer, on the same devices, and its figures land in ``baseline.history``.

    Args:
        baseline: the baseline to run.
        datamodule: the splits.
        device_settings: where it runs (default: ``accelerator="auto"``, one device).
        max_epochs: overrides ``baseline.max_epochs``.
        seed: seeds the run.
        progress_bar: show a progress bar on stderr.
        evaluate: validate once after the unlearning.
        **trainer_kwargs: anything else for :class:`lightning.Trainer`.

    Returns:
        ``(model, seconds)``: the unlearned plain ``nn.Module`` and the unlearning time.

    Raises:
        TypeError: ``baseline`` is not an UnlearningBaseline.

    Example:
        >>> from lightning_unlearn import DigitsDataModule, TrainingRecipe, train_classifier
        >>> dm = DigitsDataModule()
        >>> target = train_classifier(TrainingRecipe(max_epochs=5), dm, enable_progress_bar=False).module
        >>> run = run_baseline(NegGradBaseline(target), dm, max_epochs=2, evaluate=True)
        >>> type(run.model).__name__, run.seconds > 0
        ('MLP', True)
    """
    if not isinstance(baseline, UnlearningBaseline):
        raise TypeError(f"Expected `baseline` to be an UnlearningBaseline, but got {type(baseline).__name__}.")
    if max_epochs is not None:
        trainer_kwargs["max_epochs"] = check_integer("max_epochs", max_epochs)
    trainer_kwargs.setdefault("limit_val_batches", 0)
    run = fit_method(baseline, datamodule, device_settings, seed=seed, progress_bar=progress_bar, **trainer_kwargs)
    if evaluate:
        with quiet_lightning():
            evaluator = build_trainer(device_settings, progress_bar=progress_bar)
            evaluator.validate(baseline, datamodule=datamodule, verbose=False)
    return run
