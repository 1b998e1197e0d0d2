"""``MembershipInferenceCallback``: the MIA score and FR of the model being unlearned, every epoch."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback

if TYPE_CHECKING:  # the metrics package imports the training helpers, which import the modules
    from lightning_unlearn.metrics.lira import LiRAReferenceStatistics, LiRAVariant

__all__ = ["MembershipInferenceCallback"]

_DEFAULT_SPLITS = ("validation", "forget", "validation_heldout")
#: The MIA's members and non-members. ``heldout`` is the final report's negatives, never read here.
_MEMBERS, _NONMEMBERS = "forget", "validation_heldout"


class MembershipInferenceCallback(Callback):
    """Log the MIA score and the forgetting rate (FR) after every validation epoch.

    It reads the validation batches the module already evaluates — no extra pass over data.
    A validation step that returns ``{"logits": ...}`` is used as is; otherwise the callback
    runs the module's forward on the batch it was given. Which validation dataloader holds
    which split comes from ``splits`` (by default the module's ``validation_splits``
    attribute, else ``("validation", "forget", "validation_heldout")``); batches must carry global indices
    (:class:`~lightning_unlearn.datamodules.IndexedBatch`).

    * ``<prefix>/mia``, ``<prefix>/mia_auc``, ``<prefix>/mia_loss_auc``: the MIA score (FNN paper;
      NeurIPS 2023 kit), forget (members) vs ``validation_heldout`` (non-members like the forget
      set, never the report's ``heldout``), with :class:`~lightning_unlearn.metrics.MIAScore`;
      the loss AUC gives the direction (below 0.5: forget losses above the unseen ones').
    * ``<prefix>/fr``: FR (Forsaken Eq. 2) with a fitted membership ``oracle``:
      :class:`~lightning_unlearn.metrics.ForgettingRate` over the forget set, against the
      oracle's decisions on the model as it was when fitting started (the original; this
      needs one pass over the forget set at fit start, the only extra pass).
    * ``<prefix>/lira_auc``, ``<prefix>/lira_tpr_at_1pct``: with ``lira`` reference statistics,
      the per-example attack LiRA (Carlini et al. 2022) on the same batches, forget vs
      ``validation_heldout`` only, with :class:`~lightning_unlearn.metrics.lira_score.LiRAScore`
      (no extra pass: the statistics were computed once, before fitting).

    Under DDP both metrics gather every rank's samples, drop the duplicates a distributed
    sampler adds, fit the attack once and broadcast, so every rank logs the single-process value
    — and :class:`~lightning_unlearn.callbacks.MIAEarlyStopping` (``mia_monitor="membership/mia"``)
    decides on the same number everywhere (``mia_monitor="membership/lira_auc"`` stops on LiRA).

    Args:
        oracle: a fitted :class:`~lightning_unlearn.metrics.ShadowModelOracle`; ``None`` logs no FR.
        splits: validation dataloader index → split name (``"forget"`` and ``"validation_heldout"``
            needed).
        prefix: the logged names' prefix.
        mia_folds: cross-validation folds of the MIA score.
        seed: seeds the MIA score.
        lira: LiRA reference statistics
            (:func:`~lightning_unlearn.metrics.lira_references.lira_references`) whose candidates
            include ``forget`` and ``validation_heldout``; ``None`` logs no LiRA figures.
        lira_variant: ``"online"`` or ``"offline"`` LiRA.

    Raises:
        ValueError: ``splits`` without ``forget`` or ``validation_heldout``, or an empty prefix.
        TypeError: an ``oracle`` that is not a fitted ShadowModelOracle, or ``lira`` that is not
            LiRA reference statistics.
        RuntimeError: at run time, a batch without global indices.

    Example:
        >>> from lightning_unlearn import DigitsDataModule, TrainingRecipe, train_classifier
        >>> from lightning_unlearn.metrics import ShadowModelOracle
        >>> from lightning_unlearn.modules import FinetuneBaseline
        >>> dm, recipe = DigitsDataModule(), TrainingRecipe(max_epochs=5)
        >>> oracle = ShadowModelOracle().fit(recipe, dm, trainer_overrides=dict(enable_progress_bar=False))
        >>> target = train_classifier(recipe, dm, enable_progress_bar=False).module
        >>> module = FinetuneBaseline(target, max_epochs=2)
        >>> callback = MembershipInferenceCallback(oracle=oracle)
        >>> trainer = L.Trainer(
        ...     max_epochs=2, callbacks=[callback],
        ...     logger=False, enable_checkpointing=False, enable_progress_bar=False,
        ... )
        >>> trainer.fit(module, datamodule=dm)
        >>> sorted(name[11:] for name in trainer.callback_metrics if name.startswith("membership/"))
        ['fr', 'mia', 'mia_auc', 'mia_group_size', 'mia_loss_auc']
    """

    def __init__(
        self,
        oracle: Any = None,
        splits: Sequence[str] | None = None,
        prefix: str = "membership",
        mia_folds: int = 5,
        seed: int = 0,
        lira: LiRAReferenceStatistics | None = None,
        lira_variant: LiRAVariant = "online",
    ) -> None:
        super().__init__()
        if oracle is not None:
            from lightning_unlearn.metrics.oracle import ShadowModelOracle

            if not isinstance(oracle, ShadowModelOracle):
                raise TypeError(
                    f"Expected `oracle` to be a ShadowModelOracle or None, but got {type(oracle).__name__}."
                )
            if not oracle.is_fitted:
                raise TypeError("Expected `oracle` to be a fitted ShadowModelOracle, but it is not fitted yet.")
        if splits is not None:
            self._check_splits(splits)
        if not isinstance(prefix, str) or not prefix:
            raise ValueError(f"Expected `prefix` to be a non-empty string, but got {prefix!r}.")
        from lightning_unlearn.metrics.classes import ForgettingRate, MIAScore  # the metrics import the modules

        self.oracle = oracle
        self.splits = None if splits is None else tuple(splits)
        self.prefix = prefix
        self.mia_folds = mia_folds
        self.seed = seed
        self.mia = MIAScore(n_splits=mia_folds, seed=seed)
        self.forgetting_rate = ForgettingRate()
        self._before: dict[int, bool] = {}
        self.lira: Any = None  # a LiRAScore, with reference statistics
        if lira is not None:
            from lightning_unlearn.metrics.lira import LiRAReferenceStatistics
            from lightning_unlearn.metrics.lira_score import LiRAScore

            if not isinstance(lira, LiRAReferenceStatistics):
                raise TypeError(
                    f"Expected `lira` to be LiRAReferenceStatistics or None, but got {type(lira).__name__}."
                )
            self.lira = LiRAScore(lira, variant=lira_variant)

    @staticmethod
    def _check_splits(splits: Sequence[str]) -> None:
        missing = [name for name in (_MEMBERS, _NONMEMBERS) if name not in splits]
        if missing:
            raise ValueError(
                f"Expected `splits` to name the validation dataloaders of {_MEMBERS!r} and {_NONMEMBERS!r}, but got"
                f" {list(splits)} (missing {missing})."
            )

    def _split_names(self, pl_module: L.LightningModule) -> tuple[str, ...]:
        if self.splits is not None:
            return self.splits
        declared = getattr(pl_module, "validation_splits", None)
        names = tuple(declared) if declared is not None else _DEFAULT_SPLITS
        self._check_splits(names)
        return names

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self.mia = self.mia.to(pl_module.device)
        self.forgetting_rate = self.forgetting_rate.to(pl_module.device)
        if self.lira is not None:
            self.lira = self.lira.to(pl_module.device)

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Record the oracle's verdict on the forget set for the model as it is now: the original."""
        self._before = {}
        if self.oracle is None:
            return
        from lightning_unlearn.datamodules.base import UnlearningDataModule
        from lightning_unlearn.inference import predict

        datamodule = getattr(trainer, "datamodule", None) or getattr(pl_module, "datamodule", None)
        if not isinstance(datamodule, UnlearningDataModule):
            raise RuntimeError(
                "Expected an UnlearningDataModule (on the Trainer or as the module's `datamodule`) to read the"
                " original model's forget set from, for FR, but found none."
            )
        datamodule.setup("fit")
        original = predict(pl_module, datamodule.dataloader("forget"))  # the one extra pass FR needs
        decisions = self.oracle.predict_membership_from_logits(original.logits, original.targets)
        self._before = dict(zip(original.indices.tolist(), decisions.tolist()))

    def _logits(self, pl_module: L.LightningModule, outputs: Any, batch: Any) -> torch.Tensor:
        if isinstance(outputs, Mapping) and isinstance(outputs.get("logits"), torch.Tensor):
            return outputs["logits"].detach()
        with torch.no_grad():
            return pl_module(batch[0]).detach()

    def on_validation_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        names = self._split_names(pl_module)
        split = names[dataloader_idx] if dataloader_idx < len(names) else None
        if split not in (_MEMBERS, _NONMEMBERS):
            return
        if not isinstance(batch, Sequence) or len(batch) < 3:
            raise RuntimeError(
                "Expected validation batches of (inputs, targets, global indices), as UnlearningDataModule yields,"
                f" but got {type(batch).__name__}."
            )
        logits, targets, indices = self._logits(pl_module, outputs, batch), batch[1], batch[2]
        self.mia.update(logits, targets, indices, is_member=split == _MEMBERS)
        if self.lira is not None:
            self.lira.update(logits, targets, indices, is_member=split == _MEMBERS)
        if split == _MEMBERS and self.oracle is not None:
            decisions = self.oracle.predict_membership_from_logits(logits.float().cpu(), targets.cpu())
            before = torch.tensor([self._before[int(i)] for i in indices.tolist()], dtype=torch.bool)
            self.forgetting_rate.update(before.to(indices.device), decisions.to(indices.device), indices)

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or self.mia.update_count == 0:
            self.mia.reset()
            self.forgetting_rate.reset()
            if self.lira is not None:
                self.lira.reset()
            return
        if self.oracle is not None and self.forgetting_rate.update_count > 0:
            pl_module.log(f"{self.prefix}/fr", float(self.forgetting_rate.compute()), sync_dist=True)
        self.forgetting_rate.reset()
        score = float(self.mia.compute())
        result = self.mia.result
        self.mia.reset()
        # Every rank holds the broadcast value: syncing changes nothing but keeps Lightning consistent.
        pl_module.log(f"{self.prefix}/mia", score, prog_bar=True, sync_dist=True)
        if result is not None:
            pl_module.log(f"{self.prefix}/mia_auc", float(result.auc), sync_dist=True)
            pl_module.log(f"{self.prefix}/mia_loss_auc", float(result.loss_auc), sync_dist=True)
            pl_module.log(f"{self.prefix}/mia_group_size", float(result.group_size), sync_dist=True)
        if self.lira is not None:
            lira_auc = float(self.lira.compute())
            lira_result = self.lira.result
            self.lira.reset()
            pl_module.log(f"{self.prefix}/lira_auc", lira_auc, sync_dist=True)
            if lira_result is not None:
                pl_module.log(f"{self.prefix}/lira_tpr_at_1pct", float(lira_result.tpr_at_1pct_fpr), sync_dist=True)
