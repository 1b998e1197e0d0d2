"""The membership oracle of the Forsaken paper (§V-A): a shadow model and an XGBoost attack.

The forgetting rate (FR, Eq. 2) counts how many forget samples an *oracle* calls members before
and after unlearning, so FR is only as good as the oracle. :class:`ShadowModelOracle` builds one
the way the paper does: a shadow model with the target's architecture and training recipe is
trained on ``shadow_train`` (the half of the data the target never saw, with its own OOD
insertions); an XGBoost classifier then learns to tell the shadow's posteriors on its members
(``shadow_train``) from those on its non-members (``shadow_test``). Frozen after fitting, it is
asked about the target and every unlearned model.

Features. The paper feeds the attack the sorted posterior vector plus the one-hot label.
Sorting makes the attack independent of *which* class is predicted, but it also discards
whether the top class is the sample's label, and that is exactly what separates a memorised OOD
insertion (confident in its arbitrary label) from an unseen OOD sample (confident in some class,
rarely its arbitrary label). With the one-hot label alone XGBoost cannot recover it, because
the posterior of the label is gone after sorting. The default feature set therefore adds the
posterior of the sample's label as one more column. On the digits OOD scenario (seed 0) this
moves the oracle from 70 % / 31 % (forget / heldout called members) to 91 % / 9 %, and its
AUC from 0.77 to 0.95. The paper's literal features and Salem et al.'s top-k sorted posteriors
remain available (``features=``).

Always read the oracle's quality (:meth:`ShadowModelOracle.quality`) on the population that
matters, forget (members) vs ``heldout`` (non-members), before trusting an FR computed with it.
"""

from __future__ import annotations

import math
import os
import time
import warnings
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from lightning_unlearn.checks import check_choice, check_in_range, check_integer, check_positive
from lightning_unlearn.datamodules.base import UnlearningDataModule
from lightning_unlearn.inference import Predictions, predict
from lightning_unlearn.storage import atomic_write
from lightning_unlearn.training import TrainingRecipe, train_classifier

__all__ = [
    "ORACLE_FILE_FORMAT",
    "ForgettingRateResult",
    "MembershipQuality",
    "OracleFeatures",
    "OracleNearChanceWarning",
    "OracleQualityReport",
    "ShadowModelOracle",
    "attack_features",
    "chance_margin",
    "membership_quality",
    "near_chance_message",
    "warn_near_chance",
]

OracleFeatures = Literal["sorted_posterior_label", "sorted_posterior_onehot", "top_k"]
ORACLE_FEATURES: tuple[str, ...] = get_args(OracleFeatures)
ORACLE_FILE_FORMAT = "lightning-unlearn/membership-oracle"
ORACLE_FILE_VERSION = 1


class OracleNearChanceWarning(UserWarning):
    """The oracle cannot tell forget samples from unseen ones on the original target: FR is meaningless."""


# ---------------------------------------------------------------------------- pure helpers
def attack_features(
    posteriors: torch.Tensor, targets: torch.Tensor, features: OracleFeatures = "sorted_posterior_label", top_k: int = 3
) -> np.ndarray:
    """The attack's input for each sample, from the model's posteriors and the sample's label.

    * ``sorted_posterior_label`` (default): the posterior vector sorted in descending order,
      the posterior of the sample's label, and the one-hot label.
    * ``sorted_posterior_onehot``: the sorted posterior vector and the one-hot label (the
      Forsaken paper's description).
    * ``top_k``: the ``top_k`` largest posteriors only (Salem et al., "ML-Leaks").

    Args:
        posteriors: ``(n, num_classes)`` softmax outputs.
        targets: ``(n,)`` labels the samples carry.
        features: which feature set.
        top_k: how many sorted posteriors ``top_k`` keeps.

    Returns:
        A float32 ``(n, d)`` array.

    Raises:
        ValueError: an unknown feature set, or a ``top_k`` outside 1…num_classes.
    """
    check_choice("features", features, ORACLE_FEATURES)
    probabilities = posteriors.detach().to(torch.float64).cpu().numpy()
    labels = targets.detach().cpu().numpy().astype(np.int64)
    num_classes = probabilities.shape[1]
    ordered = -np.sort(-probabilities, axis=1)
    if features == "top_k":
        if not 1 <= top_k <= num_classes:
            raise ValueError(f"Expected `top_k` to be between 1 and {num_classes} (the classes), but got {top_k}.")
        return ordered[:, :top_k].astype(np.float32)
    one_hot = np.eye(num_classes)[labels]
    if features == "sorted_posterior_onehot":
        return np.hstack([ordered, one_hot]).astype(np.float32)
    label_posterior = probabilities[np.arange(len(labels)), labels][:, None]
    return np.hstack([ordered, label_posterior, one_hot]).astype(np.float32)


def chance_margin(num_members: int, num_nonmembers: int, z: float = 1.96) -> float:
    """How far from 0.5 a balanced accuracy can wander by chance (95 % by default).

    Under "the oracle knows nothing", its decisions on members and non-members are coin
    flips with the same rate; with the worst-case rate 0.5 the true- and true-negative rates
    have variances ``0.25 / n_members`` and ``0.25 / n_nonmembers``, so the balanced accuracy
    (their mean) has standard error ``0.25 · sqrt(1/n_members + 1/n_nonmembers)``. The margin
    is ``z`` times that: 0.052 for 179 members and 179 non-members.

    Raises:
        ValueError: a group with no sample.
    """
    if num_members < 1 or num_nonmembers < 1:
        raise ValueError(
            f"Expected at least one member and one non-member, but got {num_members} and {num_nonmembers}."
        )
    return z * 0.25 * math.sqrt(1.0 / num_members + 1.0 / num_nonmembers)


@dataclass(frozen=True)
class MembershipQuality:
    """How well membership decisions separate one group of members from one of non-members.

    Attributes:
        accuracy: share of correct decisions over both groups.
        balanced_accuracy: mean of the true-positive and true-negative rates.
        auc: area under the ROC curve of the member probability.
        true_positive_rate: members called members.
        false_positive_rate: non-members called members.
        num_members: members evaluated.
        num_nonmembers: non-members evaluated.
        chance_margin: :func:`chance_margin` for these group sizes.
    """

    accuracy: float
    balanced_accuracy: float
    auc: float
    true_positive_rate: float
    false_positive_rate: float
    num_members: int
    num_nonmembers: int
    chance_margin: float

    @property
    def near_chance(self) -> bool:
        """``True`` when the balanced accuracy is not clearly above 0.5 (within ``chance_margin``, or below)."""
        return self.balanced_accuracy - 0.5 <= self.chance_margin

    def to_dict(self) -> dict[str, Any]:
        """Every field and ``near_chance``, JSON-ready."""
        return {**asdict(self), "near_chance": self.near_chance}


def membership_quality(
    member_probabilities: np.ndarray, nonmember_probabilities: np.ndarray, threshold: float = 0.5
) -> MembershipQuality:
    """Score membership probabilities against the truth (members vs non-members).

    Args:
        member_probabilities: the oracle's member probability for each true member.
        nonmember_probabilities: the same for each true non-member.
        threshold: a sample is called a member when its probability is at least this.

    Raises:
        ValueError: an empty group.
    """
    from sklearn.metrics import roc_auc_score

    members = np.asarray(member_probabilities, dtype=np.float64).reshape(-1)
    nonmembers = np.asarray(nonmember_probabilities, dtype=np.float64).reshape(-1)
    for name, group in (("member_probabilities", members), ("nonmember_probabilities", nonmembers)):
        if group.size == 0:
            raise ValueError(f"Expected `{name}` to be non-empty, but got 0 samples.")
    tpr = float(np.mean(members >= threshold))
    fpr = float(np.mean(nonmembers >= threshold))
    correct = np.sum(members >= threshold) + np.sum(nonmembers < threshold)
    truth = np.concatenate([np.ones(members.size), np.zeros(nonmembers.size)])
    return MembershipQuality(
        accuracy=float(correct / (members.size + nonmembers.size)),
        balanced_accuracy=(tpr + 1.0 - fpr) / 2.0,
        auc=float(roc_auc_score(truth, np.concatenate([members, nonmembers]))),
        true_positive_rate=tpr,
        false_positive_rate=fpr,
        num_members=int(members.size),
        num_nonmembers=int(nonmembers.size),
        chance_margin=chance_margin(members.size, nonmembers.size),
    )


@dataclass(frozen=True)
class OracleQualityReport:
    """The oracle's quality on the original target, on the two populations that matter.

    Attributes:
        forget_vs_heldout: forget samples (members) vs ``heldout`` (unseen samples of the forget
            set's distribution): the figure FR depends on.
        retain_vs_test: the target's retained training data vs its ID test data (second figure).
    """

    forget_vs_heldout: MembershipQuality
    retain_vs_test: MembershipQuality

    @property
    def reliable(self) -> bool:
        """``False`` when the oracle is near chance on forget vs heldout: an FR computed with it is meaningless."""
        return not self.forget_vs_heldout.near_chance

    def to_dict(self) -> dict[str, Any]:
        """Both figures and ``reliable``, JSON-ready."""
        return {
            "forget_vs_heldout": self.forget_vs_heldout.to_dict(),
            "retain_vs_test": self.retain_vs_test.to_dict(),
            "reliable": self.reliable,
        }


@dataclass(frozen=True)
class ForgettingRateResult:
    """An FR with the counts it came from and whether the oracle behind it can be trusted.

    Attributes:
        value: FR = (AF − BF) / BT (NaN when BT = 0).
        bt: forget samples called members before unlearning.
        bf: forget samples called non-members before unlearning.
        af: forget samples called non-members after unlearning.
        oracle_reliable: ``False`` when the oracle is near chance on the original target.
    """

    value: float
    bt: int
    bf: int
    af: int
    oracle_reliable: bool


def near_chance_message(quality: OracleQualityReport) -> str:
    """The warning every FR computed with a near-chance oracle carries."""
    figure = quality.forget_vs_heldout
    return (
        f"The membership oracle is near chance on the original target's forget samples vs heldout"
        f" (balanced accuracy {figure.balanced_accuracy:.3f}, within ±{figure.chance_margin:.3f} of 0.5 for"
        f" {figure.num_members} + {figure.num_nonmembers} samples, or below): the forgetting rate computed with"
        " it is meaningless."
    )


# ---------------------------------------------------------------------------- the oracle
class ShadowModelOracle:
    """A frozen membership oracle: shadow model + seeded XGBoost attack (Forsaken §V-A).

    :meth:`fit` trains a shadow model with the target's ``recipe`` on ``shadow_train``, then an
    XGBoost classifier on the shadow's posteriors, members ``shadow_train`` against non-members
    ``shadow_test`` (weighted so both groups count equally). After that the oracle is frozen:
    :meth:`predict_membership` asks it about any model on any split. No forget sample ever
    reaches the shadow or the attack (the datamodule keeps the halves disjoint).

    Args:
        features: the attack's features (see :func:`attack_features`); the default adds the
            posterior of the sample's label to the paper's sorted posterior + one-hot label.
        top_k: posteriors kept by ``features="top_k"``.
        n_estimators: XGBoost trees.
        max_depth: XGBoost tree depth.
        learning_rate: XGBoost step size.
        threshold: a sample is a member when the attack's member probability is at least this.
        seed: XGBoost's ``random_state``.
        n_jobs: XGBoost threads.

    Raises:
        ValueError: a setting outside its range.
        TypeError: a setting of the wrong type.

    Example:
        >>> from lightning_unlearn import DigitsDataModule, TrainingRecipe, train_classifier
        >>> dm, recipe = DigitsDataModule(), TrainingRecipe(max_epochs=20)
        >>> oracle = ShadowModelOracle().fit(recipe, dm, trainer_overrides=dict(enable_progress_bar=False))
        >>> target = train_classifier(recipe, dm, enable_progress_bar=False).module
        >>> members = oracle.predict_membership(target, dm.dataloader("forget")).float().mean()
        >>> nonmembers = oracle.predict_membership(target, dm.dataloader("heldout")).float().mean()
        >>> bool(members > nonmembers)  # the target was trained on the forget set, never on heldout
        True
    """

    def __init__(
        self,
        features: OracleFeatures = "sorted_posterior_label",
        top_k: int = 3,
        n_estimators: int = 100,
        max_depth: int = 3,
        learning_rate: float = 0.3,
        threshold: float = 0.5,
        seed: int = 0,
        n_jobs: int = 2,
    ) -> None:
        self.features: OracleFeatures = check_choice("features", features, ORACLE_FEATURES)
        self.top_k = check_integer("top_k", top_k)
        self.n_estimators = check_integer("n_estimators", n_estimators)
        self.max_depth = check_integer("max_depth", max_depth)
        self.n_jobs = check_integer("n_jobs", n_jobs)
        self.seed = check_integer("seed", seed, minimum=None)
        self.learning_rate = check_positive("learning_rate", learning_rate)
        self.threshold = check_in_range("threshold", threshold, 0.0, 1.0, include_low=False, include_high=False)
        self.num_classes: int | None = None
        self.shadow_model: nn.Module | None = None
        self.shadow_seconds: float = float("nan")
        self.attack_seconds: float = float("nan")
        self._attack: Any = None

    # ------------------------------------------------------------------ configuration
    def config(self) -> dict[str, Any]:
        """The settings this oracle was built with (what :meth:`save` stores besides the attack)."""
        return {
            "features": self.features,
            "top_k": self.top_k,
            "n_estimators": self.n_estimators,
            "max_depth": self.max_depth,
            "learning_rate": self.learning_rate,
            "threshold": self.threshold,
            "seed": self.seed,
            "n_jobs": self.n_jobs,
        }

    @property
    def is_fitted(self) -> bool:
        """Whether :meth:`fit` (or :meth:`fit_attack`, or :meth:`load`) has run."""
        return self._attack is not None

    @property
    def fit_seconds(self) -> float:
        """Time to fit the oracle: training the shadow model plus fitting the attack."""
        return self.shadow_seconds + self.attack_seconds

    def _require_fitted(self) -> Any:
        if self._attack is None:
            raise RuntimeError(
                "The membership oracle is not fitted yet: call `fit(recipe, datamodule)` (or `load(path)`) first."
            )
        return self._attack

    # ------------------------------------------------------------------ fitting
    def fit(
        self,
        recipe: TrainingRecipe,
        datamodule: UnlearningDataModule,
        trainer_overrides: Mapping[str, Any] | None = None,
    ) -> ShadowModelOracle:
        """Train the shadow model on ``shadow_train`` with ``recipe``, then the attack on its posteriors.

        Args:
            recipe: the target's training recipe (architecture, optimiser, schedule, seed).
            datamodule: provides ``shadow_train`` (members) and ``shadow_test`` (non-members).
            trainer_overrides: Trainer settings for the shadow run only (e.g. no progress bar).

        Returns:
            ``self``, fitted and frozen.

        Raises:
            TypeError: ``recipe`` is not a :class:`~lightning_unlearn.training.TrainingRecipe`
                or ``datamodule`` not an :class:`~lightning_unlearn.datamodules.UnlearningDataModule`.
        """
        if not isinstance(recipe, TrainingRecipe):
            raise TypeError(f"Expected `recipe` to be a TrainingRecipe, but got {type(recipe).__name__}.")
        if not isinstance(datamodule, UnlearningDataModule):
            raise TypeError(
                f"Expected `datamodule` to be an UnlearningDataModule, but got {type(datamodule).__name__}."
            )
        shadow = train_classifier(recipe, datamodule, "shadow_train", **dict(trainer_overrides or {}))
        members = predict(shadow.module, datamodule.dataloader("shadow_train"))
        nonmembers = predict(shadow.module, datamodule.dataloader("shadow_test"))
        self.fit_attack(members, nonmembers)
        self.shadow_model = shadow.module
        self.shadow_seconds = shadow.seconds
        return self

    def fit_attack(self, members: Predictions, nonmembers: Predictions) -> ShadowModelOracle:
        """Fit the XGBoost attack on a shadow model's predictions on its members and non-members.

        :meth:`fit` calls this; call it directly to reuse a shadow model trained elsewhere.

        Args:
            members: the shadow's predictions on its training data.
            nonmembers: the shadow's predictions on data it never saw.

        Returns:
            ``self``, fitted.

        Raises:
            ValueError: an empty group, or groups whose logits disagree on the number of classes.
        """
        from xgboost import XGBClassifier

        for name, group in (("members", members), ("nonmembers", nonmembers)):
            if len(group) == 0:
                raise ValueError(f"Expected `{name}` to hold at least one prediction, but got 0 samples.")
        if members.logits.shape[1] != nonmembers.logits.shape[1]:
            raise ValueError(
                f"Expected `members` and `nonmembers` to have the same number of classes, but got"
                f" {members.logits.shape[1]} and {nonmembers.logits.shape[1]}."
            )
        num_classes = int(members.logits.shape[1])
        if self.features == "top_k" and self.top_k > num_classes:
            raise ValueError(f"Expected `top_k` to be at most {num_classes} (the classes), but got {self.top_k}.")
        inputs = np.vstack(
            [
                attack_features(members.posteriors, members.targets, self.features, self.top_k),
                attack_features(nonmembers.posteriors, nonmembers.targets, self.features, self.top_k),
            ]
        )
        is_member = np.concatenate([np.ones(len(members)), np.zeros(len(nonmembers))])
        # Both groups weigh the same, so the 0.5 threshold means "more likely a member".
        weights = np.where(is_member == 1, len(inputs) / (2 * len(members)), len(inputs) / (2 * len(nonmembers)))
        attack = XGBClassifier(
            n_estimators=self.n_estimators,
            max_depth=self.max_depth,
            learning_rate=self.learning_rate,
            random_state=self.seed,
            n_jobs=self.n_jobs,
            tree_method="hist",
        )
        start = time.perf_counter()
        attack.fit(inputs, is_member, sample_weight=weights)
        self.attack_seconds = time.perf_counter() - start
        self._attack = attack
        self.num_classes = num_classes
        return self

    # ------------------------------------------------------------------ asking the oracle
    def membership_probability_from_logits(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """The attack's member probability for each sample, from a model's logits and the labels.

        Raises:
            RuntimeError: the oracle is not fitted.
            ValueError: logits with another number of classes than the oracle's, or labels that
                do not match the logits in length.
        """
        attack = self._require_fitted()
        if logits.ndim != 2 or logits.shape[1] != self.num_classes:
            produced = logits.shape[1] if logits.ndim == 2 else f"logits of shape {tuple(logits.shape)}"
            raise ValueError(
                f"Expected a model with {self.num_classes} classes (the oracle's), but it produces {produced}"
                f"{' logits' if logits.ndim == 2 else ''}."
            )
        if targets.shape != (logits.shape[0],):
            raise ValueError(
                f"Expected one label per sample ({logits.shape[0]:,}), but got `targets` of shape"
                f" {tuple(targets.shape)}."
            )
        if logits.shape[0] == 0:
            return torch.empty(0, dtype=torch.float64)
        inputs = attack_features(logits.softmax(dim=1), targets, self.features, self.top_k)
        return torch.from_numpy(attack.predict_proba(inputs)[:, 1].astype(np.float64))

    def predict_membership_from_logits(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """``True`` for each sample the oracle calls a member (see :meth:`membership_probability_from_logits`)."""
        return self.membership_probability_from_logits(logits, targets) >= self.threshold

    def membership_probability(self, model: nn.Module, dataloader: DataLoader) -> tuple[torch.Tensor, torch.Tensor]:
        """The attack's member probability for every sample of ``dataloader``, with its global index.

        Returns:
            ``(probabilities, indices)``: float64 and int64 tensors of the same length.

        Raises:
            RuntimeError: the oracle is not fitted.
            ValueError: ``model`` has another number of classes than the oracle.
        """
        self._require_fitted()
        predictions = predict(model, dataloader)
        if len(predictions) == 0:
            return torch.empty(0, dtype=torch.float64), torch.empty(0, dtype=torch.long)
        return self.membership_probability_from_logits(predictions.logits, predictions.targets), predictions.indices

    def predict_membership(self, model: nn.Module, dataloader: DataLoader) -> torch.Tensor:
        """The oracle's verdict on every sample of ``dataloader``: a ``torch.bool`` tensor, ``True`` = member.

        Args:
            model: any classifier with the oracle's number of classes (the target, an unlearned
                model, the retrained model).
            dataloader: yields ``(inputs, targets, indices)`` batches, e.g. ``dm.dataloader("forget")``.

        Raises:
            RuntimeError: the oracle is not fitted.
            ValueError: ``model`` has another number of classes than the oracle.
        """
        return self.predict_membership_with_indices(model, dataloader)[0]

    def predict_membership_with_indices(
        self, model: nn.Module, dataloader: DataLoader
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`predict_membership` and the global index of each sample."""
        probabilities, indices = self.membership_probability(model, dataloader)
        return probabilities >= self.threshold, indices

    # ------------------------------------------------------------------ quality and FR
    def quality(self, target_model: nn.Module, datamodule: UnlearningDataModule) -> OracleQualityReport:
        """How well the oracle recognises the original target's members where it matters.

        First figure: forget samples (members) vs ``heldout`` (unseen samples from the forget
        set's distribution, labelled the same way); this is the figure every FR depends on.
        Second figure: ``retain`` (ID members) vs ``test`` (ID non-members).

        Args:
            target_model: the original target, trained on ``target_train``.
            datamodule: the target's datamodule.

        Returns:
            An :class:`OracleQualityReport`; ``reliable`` is ``False`` when the first figure's
            balanced accuracy is within its :func:`chance_margin` of 0.5 (or below).

        Raises:
            RuntimeError: the oracle is not fitted.
            ValueError: ``target_model`` has another number of classes than the oracle.
        """
        datamodule.setup("fit")
        self._require_fitted()
        predictions = {
            split: predict(target_model, datamodule.dataloader(split))
            for split in ("forget", "heldout", "retain", "test")
        }
        return self.quality_from_predictions(predictions)

    def quality_from_predictions(self, predictions: Mapping[str, Predictions]) -> OracleQualityReport:
        """:meth:`quality` from the original target's predictions on ``forget``, ``heldout``, ``retain`` and ``test``.

        Raises:
            RuntimeError: the oracle is not fitted.
            ValueError: a split missing from ``predictions``, or an empty one.
        """
        self._require_fitted()
        figures = []
        for member_split, nonmember_split in (("forget", "heldout"), ("retain", "test")):
            groups = []
            for split in (member_split, nonmember_split):
                if split not in predictions:
                    raise ValueError(
                        f"Expected `predictions` to hold the split {split!r}, but got {sorted(predictions)}."
                    )
                groups.append(
                    self.membership_probability_from_logits(predictions[split].logits, predictions[split].targets)
                )
            figures.append(membership_quality(groups[0].numpy(), groups[1].numpy(), self.threshold))
        return OracleQualityReport(forget_vs_heldout=figures[0], retain_vs_test=figures[1])

    def forgetting_rate(
        self,
        original: nn.Module,
        unlearned: nn.Module,
        datamodule: UnlearningDataModule,
        quality: OracleQualityReport | None = None,
    ) -> ForgettingRateResult:
        """FR (Forsaken Eq. 2) of ``unlearned`` over the forget set, judged against ``original``.

        Warns with :class:`OracleNearChanceWarning` (and sets ``oracle_reliable=False``) when
        the oracle is near chance on the original target, where FR is meaningless.

        Args:
            original: the target before unlearning.
            unlearned: the model after unlearning.
            datamodule: the target's datamodule.
            quality: the oracle's quality on ``original``, if already computed.

        Raises:
            RuntimeError: the oracle is not fitted.
            ValueError: a model with another number of classes than the oracle.
        """
        from lightning_unlearn.metrics.functional import forgetting_rate, membership_counts

        quality = quality if quality is not None else self.quality(original, datamodule)
        if not quality.reliable:
            warn_near_chance(quality)
        loader = datamodule.dataloader("forget")
        before = self.predict_membership(original, loader)
        after = self.predict_membership(unlearned, loader)
        bt, bf, _, af = membership_counts(before, after)
        return ForgettingRateResult(forgetting_rate(bt, bf, af), bt, bf, af, quality.reliable)

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | os.PathLike[str]) -> Path:
        """Save the fitted attack (XGBoost JSON) and settings with ``torch.save``; the shadow model is not kept.

        Raises:
            RuntimeError: the oracle is not fitted.
        """
        attack = self._require_fitted()
        payload = {
            "format": ORACLE_FILE_FORMAT,
            "version": ORACLE_FILE_VERSION,
            "config": self.config(),
            "num_classes": self.num_classes,
            "attack": bytes(attack.get_booster().save_raw(raw_format="json")).decode("utf-8"),
            "shadow_seconds": self.shadow_seconds,
            "attack_seconds": self.attack_seconds,
        }
        return atomic_write(path, lambda file: torch.save(payload, file))

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> ShadowModelOracle:
        """Load an oracle written by :meth:`save`, ready to predict.

        Raises:
            FileNotFoundError: no file at ``path``.
            ValueError: the file is not a saved membership oracle (or of another version).
        """
        from xgboost import XGBClassifier

        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(
                f"Expected `path` to be a saved membership oracle, but {str(path)!r} does not exist."
            )
        try:
            payload = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:  # torch raises many types for a file that is not its own
            raise ValueError(
                f"Expected `path` {str(path)!r} to be a saved membership oracle, but it cannot be read as one:"
                f" {type(error).__name__}."
            ) from None
        if not isinstance(payload, dict) or payload.get("format") != ORACLE_FILE_FORMAT:
            raise ValueError(
                f"Expected `path` {str(path)!r} to be a saved membership oracle ({ORACLE_FILE_FORMAT!r}),"
                " but it is not."
            )
        if payload.get("version") != ORACLE_FILE_VERSION:
            raise ValueError(
                f"Expected `path` {str(path)!r} to hold a membership oracle of version {ORACLE_FILE_VERSION},"
                f" but got version {payload.get('version')!r}."
            )
        oracle = cls(**payload["config"])
        attack = XGBClassifier()
        attack.load_model(bytearray(payload["attack"].encode("utf-8")))
        oracle._attack = attack
        oracle.num_classes = int(payload["num_classes"])
        oracle.shadow_seconds = float(payload["shadow_seconds"])
        oracle.attack_seconds = float(payload["attack_seconds"])
        return oracle


def warn_near_chance(quality: OracleQualityReport) -> None:
    """Warn (once per call, on rank 0 only under DDP) that FR from this oracle is meaningless."""
    if _global_rank() == 0:
        warnings.warn(near_chance_message(quality), OracleNearChanceWarning, stacklevel=3)


def _global_rank() -> int:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return int(torch.distributed.get_rank())
    return int(os.environ.get("RANK", 0))
