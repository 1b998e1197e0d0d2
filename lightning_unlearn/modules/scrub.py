"""SCRUB: a student that moves away from its teacher on the forget set and stays with it on retain.

Kurmanji et al., "Towards Unbounded Machine Unlearning", NeurIPS 2023. The teacher ``w_o`` is
the frozen original; the student ``w_u`` starts as a copy of it. With the temperature-scaled
divergence

    d(x; w_u) = T² · KL( softmax(f(x; w_o)/T) ‖ softmax(f(x; w_u)/T) )

SCRUB alternates, epoch by epoch, two kinds of step on the same optimiser:

* **max-steps** (the first ``max_steps`` epochs only), one pass over the forget set ``D_f``:
  minimise ``−(1/N_f) Σ_{x_f} d(x_f; w_u)`` — push the student away from the teacher there;
* **min-steps** (every epoch), one pass over ``D_r``: minimise
  ``(α/N_r) Σ d(x_r; w_u) + (γ/N_r) Σ ℓ_CE(f(x_r; w_u), y_r)`` — stay close to the teacher and
  keep the task.

Together they optimise the paper's objective ``min_{w_u} α·d_r + γ·ℓ_r − d_f``. Within an epoch
the max pass runs before the min pass (as in the authors' code).

**Rewinding** (SCRUB+R): SCRUB can push the forget samples further than a model that never saw
them, which a membership attacker notices. With ``rewind``, a copy of the student is kept after
every epoch; at the end the student is rewound to the copy whose error on the forget set is
closest to the *reference error* — the error on ``validation_heldout``, samples of the forget
set's distribution that were never trained on (the validation pair, never ``heldout``).

Defaults are the authors' small-scale CIFAR-10 setting: ``α = 0.001``, ``γ = 0.99``,
``T = 4``, 2 max-step epochs of 3, SGD (lr 0.0005, momentum 0.9, weight decay 5e-4), forget
batches of 32 (retain batches use the datamodule's batch size: our choice).
"""

from __future__ import annotations

import copy
from functools import partial
from typing import Any

import torch
import torch.nn.functional as F
from lightning.pytorch.cli import OptimizerCallable
from torch import nn

from lightning_unlearn.checks import check_bool, check_integer, check_non_negative, check_positive
from lightning_unlearn.classifier import classification_loss
from lightning_unlearn.datamodules.base import IndexedBatch
from lightning_unlearn.modules.baselines import UnlearningBaseline

__all__ = ["SCRUBBaseline", "default_scrub_optimizer", "distillation_divergence"]

default_scrub_optimizer: OptimizerCallable = partial(torch.optim.SGD, lr=5e-4, momentum=0.9, weight_decay=5e-4)
"""SGD, lr 0.0005, momentum 0.9, weight decay 5e-4: the authors' SCRUB optimiser."""


def distillation_divergence(student: torch.Tensor, teacher: torch.Tensor, temperature: float) -> torch.Tensor:
    """``d = T²·KL(softmax(teacher/T) ‖ softmax(student/T))``, averaged over the batch.

    Example:
        >>> logits = torch.tensor([[2.0, 0.0, -1.0]])
        >>> float(distillation_divergence(logits, logits, 4.0))
        0.0
    """
    log_student = F.log_softmax(student / temperature, dim=-1)
    teacher_probabilities = F.softmax(teacher / temperature, dim=-1)
    return F.kl_div(log_student, teacher_probabilities, reduction="batchmean") * temperature**2


class SCRUBBaseline(UnlearningBaseline):
    """SCRUB (and SCRUB+R with ``rewind``): max-steps on forget, min-steps on retain, against the original.

    See the module docstring for the equations and the rewinding rule.

    Args:
        target: the trained classifier: the teacher (frozen) and the student's start (copied).
        max_epochs: epochs; each runs a min pass over ``retain``.
        max_steps: how many first epochs also run a max pass over ``forget``; at most ``max_epochs``.
        retain_divergence_weight: ``α``, the weight of ``d`` on retain.
        retain_task_weight: ``γ``, the weight of the cross-entropy on retain.
        temperature: ``T`` of the divergence; positive.
        forget_batch_size: batch size of the max pass.
        rewind: SCRUB+R: rewind to the epoch whose forget error is closest to the error on
            ``validation_heldout``.
        optimizer: builds the optimiser (default SGD, lr 0.0005, momentum 0.9, weight decay 5e-4).
        loss: the task loss; by default the target's.
        mia_folds: cross-validation folds of the MIA score.
        seed: seeds the MIA score.

    Raises:
        ValueError: ``max_steps`` negative or above ``max_epochs``, a negative weight, a
            temperature that is not positive, or what :class:`UnlearningBaseline` raises.
        TypeError: a setting of the wrong type.

    Example:
        >>> from lightning_unlearn import DigitsDataModule, TrainingRecipe, train_classifier
        >>> from lightning_unlearn.modules.baselines import run_baseline
        >>> dm = DigitsDataModule()
        >>> target = train_classifier(TrainingRecipe(max_epochs=5), dm, enable_progress_bar=False).module
        >>> scrub = SCRUBBaseline(target, max_epochs=3, max_steps=2, rewind=True)
        >>> model, seconds = run_baseline(scrub, dm)
        >>> scrub.rewound_to in (0, 1, 2)
        True
    """

    default_max_epochs = 3
    default_optimizer = staticmethod(default_scrub_optimizer)

    def __init__(
        self,
        target: nn.Module,
        max_steps: int = 2,
        retain_divergence_weight: float = 0.001,
        retain_task_weight: float = 0.99,
        temperature: float = 4.0,
        forget_batch_size: int = 32,
        rewind: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(target, **kwargs)
        if isinstance(max_steps, bool) or not isinstance(max_steps, int):
            raise TypeError(f"Expected `max_steps` to be an integer, but got {type(max_steps).__name__}.")
        if not 0 <= max_steps <= self.max_epochs:
            raise ValueError(
                f"Expected `max_steps` (epochs with a max pass over forget) to be between 0 and `max_epochs`"
                f" ({self.max_epochs}), but got {max_steps}."
            )
        check_positive("temperature", temperature, meaning="T")
        check_bool("rewind", rewind)
        self.save_hyperparameters(ignore=["target", "optimizer"])
        self.max_steps = max_steps
        self.retain_divergence_weight = check_non_negative("retain_divergence_weight", retain_divergence_weight)
        self.retain_task_weight = check_non_negative("retain_task_weight", retain_task_weight)
        self.temperature = float(temperature)
        self.forget_batch_size = check_integer("forget_batch_size", forget_batch_size)
        self.rewind = rewind
        self.teacher = copy.deepcopy(self.model).eval().requires_grad_(False)
        self.automatic_optimization = False
        self.rewound_to: int | None = None
        self._snapshots: list[dict[str, torch.Tensor]] = []

    # ------------------------------------------------------------------ steps
    def on_fit_start(self) -> None:
        super().on_fit_start()
        self.teacher.eval()
        self._snapshots = []
        self.rewound_to = None

    def _step(self, loss: torch.Tensor) -> None:
        optimizer = self.optimizers()
        optimizer.zero_grad()  # type: ignore[union-attr]
        self.manual_backward(loss)
        optimizer.step()  # type: ignore[union-attr]

    def _divergence(self, inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        student = self(inputs)
        with torch.no_grad():
            teacher = self.teacher(inputs)
        return distillation_divergence(student, teacher, self.temperature), student

    def on_train_epoch_start(self) -> None:
        """The max pass over the forget set, in the first ``max_steps`` epochs, before the epoch's min pass."""
        if self.current_epoch >= self.max_steps:
            return
        loader = self.split_dataloader("forget", shuffle=True, batch_size=self.forget_batch_size)
        for batch in loader:
            divergence, _ = self._divergence(batch[0].to(self.device))
            self._step(-divergence)  # minimise −d(x_f; w_u)
            self.log("train/forget_divergence", divergence, prog_bar=True, batch_size=batch[0].shape[0])

    def training_step(self, batch: IndexedBatch, batch_idx: int) -> torch.Tensor | None:
        """One min-step on a retain batch: ``α·d(x_r; w_u) + γ·ℓ(f(x_r; w_u), y_r)``."""
        divergence, student = self._divergence(batch[0])
        task = classification_loss(student, batch[1], self.loss_name)
        loss = self.retain_divergence_weight * divergence + self.retain_task_weight * task
        self._step(loss)
        self.log("train/retain_loss", task, prog_bar=True, batch_size=batch[0].shape[0])
        return loss.detach()

    def on_train_epoch_end(self) -> None:
        if self.rewind:
            self._snapshots.append({name: t.detach().clone() for name, t in self.model.state_dict().items()})

    def _error(self, split: str) -> float:
        wrong, total = 0, 0
        was_training = self.model.training
        self.model.eval()
        with torch.no_grad():
            for batch in self.split_dataloader(split):
                predictions = self(batch[0].to(self.device)).argmax(dim=-1)
                wrong += int((predictions != batch[1].to(self.device)).sum())
                total += int(batch[1].shape[0])
        self.model.train(was_training)
        return wrong / max(total, 1)

    def on_train_end(self) -> None:
        if not self.rewind or not self._snapshots:
            return
        reference = self._error("validation_heldout")  # what never-seen samples of this distribution get
        gaps = []
        for snapshot in self._snapshots:
            self.model.load_state_dict(snapshot)
            gaps.append(abs(self._error("forget") - reference))
        self.rewound_to = min(range(len(gaps)), key=gaps.__getitem__)
        self.model.load_state_dict(self._snapshots[self.rewound_to])
        self.reference_error = reference
