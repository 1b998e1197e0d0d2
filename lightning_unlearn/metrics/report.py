"""``UnlearningReport``: the original, the unlearned and the retrained model, side by side (docs/evaluation.md).

The ideal of every number is the *retrained* model's value, not a constant, so the report
always shows the retrained model beside each method, on the same splits, in the same run.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from torch import nn

from lightning_unlearn.datamodules.base import UnlearningDataModule
from lightning_unlearn.inference import Predictions, predict
from lightning_unlearn.metrics.functional import (
    MIAScoreResult,
    binomial_half_width,
    catastrophic_forgetting_rate,
    forgetting_rate,
    membership_counts,
    mia_score_from_logits,
)
from lightning_unlearn.metrics.lira import (
    LiRAReferenceStatistics,
    LiRAResult,
    LiRAVariant,
    lira_attack_from_logits,
)
from lightning_unlearn.metrics.oracle import (
    OracleQualityReport,
    ShadowModelOracle,
    near_chance_message,
    warn_near_chance,
)
from lightning_unlearn.metrics.verdict import VERDICT_RULE, MembershipVerdict, membership_verdict

__all__ = ["COLUMN_DEFINITIONS", "LIRA_COLUMN_DEFINITIONS", "ModelEvaluation", "UnlearningReport"]

Role = Literal["original", "unlearned", "retrained"]
RESERVED_NAMES = ("original", "retrained")
_SPLITS = ("retain", "forget", "test", "heldout")


@dataclass(frozen=True)
class ModelEvaluation:
    """Every number the report holds about one model.

    Attributes:
        name: ``"original"``, ``"retrained"`` or the unlearning method's name.
        role: ``"original"``, ``"unlearned"`` or ``"retrained"``.
        retain_accuracy: accuracy on ``retain``.
        forget_accuracy: accuracy on ``forget`` (with the labels the forget samples carry).
        test_accuracy: accuracy on ``test``.
        retain_accuracy_drop: original's retain accuracy minus this model's.
        test_accuracy_drop: original's test accuracy minus this model's.
        forgetting_rate: FR (Forsaken Eq. 2) over the forget set, relative to the original.
        bt: forget samples the oracle calls members of the original (BT).
        bf: forget samples it calls non-members of the original (BF).
        af: forget samples it calls non-members of this model (AF).
        catastrophic_forgetting_rate: CFR (Forsaken Eq. 10) over ``retain``, relative to the original.
        mia: the MIA score, forget (members) vs ``heldout`` (non-members).
        seconds: time of the unlearning (or training) step, when given.
        speedup: the retrained model's time divided by this model's, when both are given.
        verdict: how this model compares with the retrained model (``None`` for the retrained
            model itself, the reference); see :mod:`lightning_unlearn.metrics.verdict`.
        seconds_min: the fastest of the timed repeats, when several were timed.
        seconds_max: the slowest of them.
        lira: the per-example attack LiRA, forget vs ``heldout``, when reference statistics were given.
    """

    name: str
    role: Role
    retain_accuracy: float
    forget_accuracy: float
    test_accuracy: float
    retain_accuracy_drop: float
    test_accuracy_drop: float
    forgetting_rate: float
    bt: int
    bf: int
    af: int
    catastrophic_forgetting_rate: float
    mia: MIAScoreResult
    seconds: float | None = None
    speedup: float | None = None
    verdict: MembershipVerdict | None = None
    seconds_min: float | None = None
    seconds_max: float | None = None
    lira: LiRAResult | None = None

    @property
    def verdict_label(self) -> str:
        """The verdict's label; ``"reference"`` for the retrained model."""
        return "reference" if self.verdict is None else self.verdict.label

    def to_dict(self) -> dict[str, Any]:
        """Every field, JSON-ready (NaN becomes ``None``)."""
        values: dict[str, Any] = {
            name: getattr(self, name) for name in self.__dataclass_fields__ if name not in ("mia", "verdict", "lira")
        }
        values["mia"] = self.mia.to_dict()
        if self.lira is not None:
            values["lira"] = self.lira.to_dict()
        values["verdict"] = self.verdict_label
        values["verdict_evidence"] = None if self.verdict is None else self.verdict.to_dict()
        return _json_ready(values)


def _json_ready(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _json_ready(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(item) for item in value]
    return value


def _format(value: float | None, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value:.{digits}f}"


#: What each column measures, which direction is good, and its reference.
COLUMN_DEFINITIONS: dict[str, str] = {
    "model": "original (before unlearning), each method, and retrained (on retain alone: every column's reference)",
    "acc retain": "accuracy on retain; higher is better, the retrained model's is the reference",
    "acc forget": "accuracy on the forget set with the labels it carries; the retrained model's is the target"
    " (lower than the original's, not necessarily 0)",
    "acc test": "accuracy on test (unseen in-distribution samples); higher is better",
    "Δ acc test": "the original's test accuracy minus this model's: positive = accuracy lost",
    "FR": "forgetting rate (Forsaken Eq. 2): share of the forget samples the oracle called members of the original"
    " that it calls non-members now; the retrained model's FR is the target, not 1",
    "CFR": "catastrophic forgetting rate (Forsaken Eq. 10) on retain: share of retained samples called members"
    " before and non-members now; near 0 is good, negative means more were called members than before",
    "MIA": "population membership attack (logistic regression on loss and confidence, 5-fold), forget vs heldout,"
    " mean ± std over folds; 0.5 = indistinguishable; the retrained model's score is the target",
    "MIA AUC": "the same attack's ROC AUC; 0.5 = chance",
    "TPR@1%FPR": "the attack's true-positive rate at a false-positive rate of at most 1 %, read once over the"
    " out-of-fold scores of all 5 folds pooled (every sample scored by a fold's attack that did not train on it; one"
    " threshold over every non-member of the balanced groups, a tie never split); the FPR it achieves is given below"
    " the table; about 0.01 = chance",
    "loss AUC": "AUC of the loss alone, nothing fitted (lower loss = member): above 0.5 forget samples still look"
    " like members, below 0.5 they look less like members than unseen data (the direction of the evidence)",
    "time s": "seconds to produce the model (median of the timed repeats; see the timing policy)",
    "speed-up": "retraining's time divided by this model's, both measured in this run",
    "verdict": "under-forgotten / matches retraining / over-forgotten / oracle and attack disagree, against the"
    " retrained model and the noise of the group sizes (the lines below the table say why)",
}

#: The LiRA columns, shown (before ``time s``) only when the report was given LiRA reference statistics.
LIRA_COLUMN_DEFINITIONS: dict[str, str] = {
    "LiRA AUC": "the per-example likelihood-ratio attack (LiRA, Carlini et al. 2022), forget vs heldout, each sample"
    " against its own IN/OUT Gaussians from the reference models; 0.5 = chance, the retrained model's is the target",
    "LiRA TPR@1%FPR": "LiRA's true-positive rate at 1 % false positives over every heldout sample; about 0.01 = chance",
}


@dataclass(frozen=True)
class UnlearningReport:
    """The original, each unlearned and the retrained model compared on the same splits.

    Build it with :meth:`evaluate`. Per model: accuracy on ``retain`` / ``forget`` / ``test``
    and its drop from the original; FR and CFR (Forsaken Eqs. 2 and 10) from the membership
    oracle's decisions before (original) and after (this model); the MIA score with AUC and
    TPR at 1 % FPR, forget vs ``heldout``; the time and the speed-up over retraining when
    given. Beside them: the oracle's own quality on the original target.

    Every model but the retrained one gets a verdict (:func:`~lightning_unlearn.metrics.verdict.membership_verdict`):
    ``under-forgotten``, ``matches retraining``, ``over-forgotten``, or ``oracle and attack
    disagree`` — judged against the retrained model and the sampling noise of the group sizes,
    with the attack's direction (the loss AUC) as part of the evidence. A fitted attack learns
    either direction, so an MIA score below 0.5 is noise, never over-forgetting; the rule is in
    docs/evaluation.md ("Verdicts") and in :data:`~lightning_unlearn.metrics.verdict.VERDICT_RULE`.

    When the oracle is near chance on forget vs heldout (:attr:`fr_reliable` is ``False``), every
    FR in the report is meaningless: :meth:`evaluate` warns
    (:class:`~lightning_unlearn.metrics.oracle.OracleNearChanceWarning`) and the report says so.

    Attributes:
        models: one :class:`ModelEvaluation` per model: original, the unlearned ones, retrained.
        oracle_quality: the oracle's quality on the original target.
        forget_size: forget samples.
        heldout_size: ``heldout`` samples.
        fr_half_width: 95 % half-width of one FR under chance, ``1.96·sqrt(0.25/BT)`` (NaN when BT = 0).
        mia_half_width: 95 % half-width of one MIA score under chance, ``1.4·1.96·sqrt(0.25/(2g))``.
        notes: anything a reader must know before trusting the numbers.

    Example (not run: it needs a trained target, a fitted oracle and a retrained model; the
    README's "In your own code" runs these steps, and its test runs the README):
        >>> report = UnlearningReport.evaluate(  # doctest: +SKIP
        ...     dm, oracle, original=target, unlearned={"finetune": model}, retrained=retrained,
        ...     times={"finetune": 0.4, "retrained": 1.5},
        ... )
        >>> print(report)  # doctest: +SKIP
        >>> report.to_markdown(), report.to_json()  # doctest: +SKIP
    """

    models: tuple[ModelEvaluation, ...]
    oracle_quality: OracleQualityReport
    forget_size: int
    heldout_size: int
    fr_half_width: float
    mia_half_width: float
    notes: tuple[str, ...] = field(default=())

    @property
    def fr_reliable(self) -> bool:
        """Whether the oracle behind every FR is clearly better than chance on forget vs heldout."""
        return self.oracle_quality.reliable

    def model(self, name: str) -> ModelEvaluation:
        """The evaluation of the model called ``name``.

        Raises:
            KeyError: no model of that name.
        """
        for evaluation in self.models:
            if evaluation.name == name:
                return evaluation
        raise KeyError(f"Expected a model name from {[m.name for m in self.models]}, but got {name!r}.")

    # ------------------------------------------------------------------ building
    @classmethod
    def evaluate(
        cls,
        datamodule: UnlearningDataModule,
        oracle: ShadowModelOracle,
        *,
        original: nn.Module,
        retrained: nn.Module,
        unlearned: Mapping[str, nn.Module] | None = None,
        times: Mapping[str, float | Sequence[float]] | None = None,
        mia_seed: int = 0,
        mia_splits: int = 5,
        lira: LiRAReferenceStatistics | None = None,
        lira_variant: LiRAVariant = "online",
    ) -> UnlearningReport:
        """Evaluate every model on the datamodule's splits with a fitted oracle.

        Args:
            datamodule: the target's datamodule (``retain``, ``forget``, ``test``, ``heldout``).
            oracle: a fitted :class:`~lightning_unlearn.metrics.oracle.ShadowModelOracle`.
            original: the target before unlearning.
            retrained: the model retrained on ``retain`` with the target's recipe.
            unlearned: method name → unlearned model.
            times: model name → seconds of its unlearning (or training) step, or the seconds of
                each timed repeat (the median is reported, with min and max); ``"retrained"``
                gives the denominator of every speed-up.
            mia_seed: seed of every MIA score.
            mia_splits: cross-validation folds of every MIA score.
            lira: LiRA reference statistics
                (:func:`~lightning_unlearn.metrics.lira_references.lira_references`) whose candidates
                include ``forget`` and ``heldout``: adds LiRA (forget vs ``heldout``) for every model.
                ``None`` leaves the table as it is without LiRA.
            lira_variant: ``"online"`` or ``"offline"`` LiRA.

        Returns:
            The report.

        Raises:
            TypeError: ``oracle`` is not a ShadowModelOracle, a model not an ``nn.Module``, a time
                not a number, or ``lira`` not LiRA reference statistics.
            ValueError: an unlearned model named ``"original"`` or ``"retrained"``, a time for a
                model the report does not hold, or a negative time.
            RuntimeError: the oracle is not fitted.
        """
        unlearned = dict(unlearned or {})
        times = dict(times or {})
        if not isinstance(oracle, ShadowModelOracle):
            raise TypeError(f"Expected `oracle` to be a ShadowModelOracle, but got {type(oracle).__name__}.")
        if lira is not None and not isinstance(lira, LiRAReferenceStatistics):
            raise TypeError(f"Expected `lira` to be LiRAReferenceStatistics or None, but got {type(lira).__name__}.")
        for name in RESERVED_NAMES:
            if name in unlearned:
                raise ValueError(
                    f"Expected `unlearned` names other than {list(RESERVED_NAMES)} (the report's own rows),"
                    f" but got {name!r}."
                )
        models: dict[str, tuple[Role, nn.Module]] = {"original": ("original", original)}
        models.update({name: ("unlearned", model) for name, model in unlearned.items()})
        models["retrained"] = ("retrained", retrained)
        for name, (_, model) in models.items():
            if not isinstance(model, nn.Module):
                raise TypeError(f"Expected model {name!r} to be an nn.Module, but got {type(model).__name__}.")
        repeats: dict[str, list[float]] = {}
        for name, given in times.items():
            if name not in models:
                raise ValueError(f"Expected `times` keys from {list(models)}, but got {name!r}.")
            values = list(given) if isinstance(given, Sequence) and not isinstance(given, str) else [given]
            if not values:
                raise ValueError(f"Expected `times[{name!r}]` to hold at least one time, but it is empty.")
            for seconds in values:
                if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
                    raise TypeError(
                        f"Expected `times[{name!r}]` to be a number of seconds (or a list of them), but got"
                        f" {type(seconds).__name__}."
                    )
                if not seconds >= 0:
                    raise ValueError(
                        f"Expected `times[{name!r}]` to be a non-negative number of seconds, but got {seconds}."
                    )
            repeats[name] = [float(v) for v in values]

        datamodule.setup("fit")
        predictions: dict[str, dict[str, Predictions]] = {
            name: {split: predict(model, datamodule.dataloader(split)) for split in _SPLITS}
            for name, (_, model) in models.items()
        }
        original_predictions = predictions["original"]
        quality = oracle.quality_from_predictions(original_predictions)
        notes: list[str] = []
        if not quality.reliable:
            warn_near_chance(quality)
            notes.append(near_chance_message(quality))

        def decisions(name: str, split: str) -> Any:
            return oracle.predict_membership_from_logits(
                predictions[name][split].logits, predictions[name][split].targets
            )

        forget_before = decisions("original", "forget")
        retain_before = decisions("original", "retain")
        medians = {name: statistics.median(values) for name, values in repeats.items()}
        retrained_time = medians.get("retrained")
        evaluations: dict[str, ModelEvaluation] = {}
        for name, (role, _) in models.items():
            own = predictions[name]
            bt, bf, _, af = membership_counts(forget_before, decisions(name, "forget"))
            bt_train, _, at_train, _ = membership_counts(retain_before, decisions(name, "retain"))
            mia = mia_score_from_logits(
                own["forget"].logits,
                own["forget"].targets,
                own["heldout"].logits,
                own["heldout"].targets,
                n_splits=mia_splits,
                seed=mia_seed,
            )
            elapsed = medians.get(name)
            speedup = (
                retrained_time / elapsed if elapsed is not None and retrained_time is not None and elapsed > 0 else None
            )
            evaluations[name] = ModelEvaluation(
                name=name,
                role=role,
                retain_accuracy=own["retain"].accuracy(),
                forget_accuracy=own["forget"].accuracy(),
                test_accuracy=own["test"].accuracy(),
                retain_accuracy_drop=original_predictions["retain"].accuracy() - own["retain"].accuracy(),
                test_accuracy_drop=original_predictions["test"].accuracy() - own["test"].accuracy(),
                forgetting_rate=forgetting_rate(bt, bf, af),
                bt=bt,
                bf=bf,
                af=af,
                catastrophic_forgetting_rate=catastrophic_forgetting_rate(bt_train, at_train),
                mia=mia,
                seconds=elapsed,
                speedup=speedup,
                seconds_min=min(repeats[name]) if name in repeats else None,
                seconds_max=max(repeats[name]) if name in repeats else None,
                lira=None if lira is None else _lira(lira, own["forget"], own["heldout"], lira_variant),
            )

        bt = evaluations["original"].bt
        fr_half_width = binomial_half_width(bt) if bt > 0 else float("nan")
        mia_half_width = evaluations["original"].mia.half_width
        reference = evaluations["retrained"]
        judged = [
            e
            if e.role == "retrained"
            else replace(
                e,
                verdict=membership_verdict(
                    e.mia,
                    reference.mia,
                    forgetting_rate=e.forgetting_rate,
                    retrained_forgetting_rate=reference.forgetting_rate,
                    bt=bt,
                    oracle_reliable=quality.reliable,
                ),
            )
            for e in evaluations.values()
        ]
        forget_size = len(original_predictions["forget"])
        heldout_size = len(original_predictions["heldout"])
        return cls(
            models=tuple(judged),
            oracle_quality=quality,
            forget_size=forget_size,
            heldout_size=heldout_size,
            fr_half_width=fr_half_width,
            mia_half_width=mia_half_width,
            notes=tuple(notes),
        )

    # ------------------------------------------------------------------ output
    _HEADER = (
        "model",
        "acc retain",
        "acc forget",
        "acc test",
        "Δ acc test",
        "FR",
        "CFR",
        "MIA",
        "MIA AUC",
        "TPR@1%FPR",
        "loss AUC",
        "time s",
        "speed-up",
        "verdict",
    )

    @property
    def has_lira(self) -> bool:
        """Whether the report holds LiRA figures (it was given LiRA reference statistics)."""
        return any(m.lira is not None for m in self.models)

    def _header(self) -> tuple[str, ...]:
        if not self.has_lira:
            return self._HEADER
        at = self._HEADER.index("time s")
        return (*self._HEADER[:at], *LIRA_COLUMN_DEFINITIONS, *self._HEADER[at:])

    def _columns(self) -> dict[str, str]:
        return {**COLUMN_DEFINITIONS, **(LIRA_COLUMN_DEFINITIONS if self.has_lira else {})}

    def _cells(self) -> list[list[str]]:
        rows = []
        for m in self.models:
            row = [
                m.name,
                _format(m.retain_accuracy),
                _format(m.forget_accuracy),
                _format(m.test_accuracy),
                _format(m.test_accuracy_drop),
                _format(m.forgetting_rate),
                _format(m.catastrophic_forgetting_rate),
                f"{_format(m.mia.score)}±{_format(m.mia.score_std)}",
                _format(m.mia.auc),
                _format(m.mia.tpr_at_low_fpr),
                _format(m.mia.loss_auc),
                _format(m.seconds, 2),
                "—" if m.speedup is None else f"{m.speedup:.1f}×",
                m.verdict_label,
            ]
            if self.has_lira:
                at = self._HEADER.index("time s")
                figures = (None, None) if m.lira is None else (m.lira.auc, m.lira.tpr_at_1pct_fpr)
                row[at:at] = [_format(value) for value in figures]
            rows.append(row)
        return rows

    def _mia_lines(self) -> list[str]:
        """How the population attack's TPR@1%FPR was read, and the FPR each model's threshold achieved."""
        first = self.models[0].mia
        achieved = ", ".join(f"{m.name} {100 * m.mia.achieved_fpr:.2f} %" for m in self.models)
        sizes = {m.mia.group_size for m in self.models}
        size = f"{first.group_size:,}" if len(sizes) == 1 else "/".join(f"{m.mia.group_size:,}" for m in self.models)
        allowed = {m.mia.false_positives_allowed for m in self.models}
        allows = f"{first.false_positives_allowed}" if len(allowed) == 1 else "/".join(map(str, sorted(allowed)))
        notes = dict.fromkeys(note for m in self.models for note in m.mia.notes)  # once each, in order
        return [
            f"MIA TPR@{100 * first.low_fpr:g}%FPR: the {first.n_splits} folds' out-of-fold scores pooled, one threshold"
            f" over the {size} non-members of the balanced groups ({allows} false positive(s) allowed, a tie never"
            f" split); FPR achieved: {achieved}.",
            *notes,
        ]

    def _lira_lines(self) -> list[str]:
        results = [m.lira for m in self.models if m.lira is not None]
        if not results:
            return []
        first = results[0]
        lines = [
            f"LiRA ({first.variant}, {'global' if first.global_variance else 'per-candidate'} variance,"
            f" {first.num_models} reference models): forget vs heldout,"
            f" {first.num_members} members and {first.num_nonmembers} non-members; TPR@1%FPR allows"
            f" {first.false_positives_allowed(0.01)} false positive(s), TPR@0.1%FPR"
            f" {first.false_positives_allowed(0.001)}; the AUC's 95 % half-width under chance is"
            f" ±{first.auc_half_width:.3f}. Verdicts rest on the population MIA and the oracle; LiRA is shown"
            " beside them.",
            *first.notes,
        ]
        try:
            reference = self.model("retrained").lira
        except KeyError:
            reference = None
        if reference is not None:
            lines.append(
                f"retrained model (the reference): LiRA AUC {reference.auc:.3f}, TPR@1%FPR"
                f" {reference.tpr_at_1pct_fpr:.3f}, TPR@0.1%FPR {reference.tpr_at_0_1pct_fpr:.3f}."
            )
        return lines

    def _oracle_lines(self) -> list[str]:
        lines = []
        for label, figure in (
            ("forget vs heldout", self.oracle_quality.forget_vs_heldout),
            ("retain vs test", self.oracle_quality.retain_vs_test),
        ):
            lines.append(
                f"oracle on the original, {label}: accuracy {figure.accuracy:.3f}, balanced accuracy"
                f" {figure.balanced_accuracy:.3f} (chance ±{figure.chance_margin:.3f}), AUC {figure.auc:.3f},"
                f" TPR {figure.true_positive_rate:.3f}, FPR {figure.false_positive_rate:.3f}"
                f" ({figure.num_members} members, {figure.num_nonmembers} non-members)"
            )
        lines.append("FR is " + ("reliable." if self.fr_reliable else "MEANINGLESS: the oracle is near chance."))
        return lines

    def _verdict_lines(self) -> list[str]:
        return [f"{m.name}: {m.verdict.label} — {m.verdict.explanation}" for m in self.models if m.verdict is not None]

    def __str__(self) -> str:
        header = self._header()
        cells = [list(header), *self._cells()]
        widths = [max(len(row[column]) for row in cells) for column in range(len(header))]
        lines = [
            f"Unlearning report: {self.forget_size} forget samples, {self.heldout_size} heldout samples",
            *(
                "  ".join(
                    cell.rjust(width) if i else cell.ljust(width) for i, (cell, width) in enumerate(zip(row, widths))
                )
                for row in cells
            ),
            *self._mia_lines(),
            *self._oracle_lines(),
            *self._verdict_lines(),
            *self._lira_lines(),
            *self.notes,
        ]
        return "\n".join(lines)

    def to_markdown(self) -> str:
        """The comparison as a Markdown table, then the verdicts, the oracle's quality, the notes,
        and what every column means."""
        header = self._header()
        lines = [
            "| " + " | ".join(header) + " |",
            "|" + "|".join(" --- " if i == 0 else " ---: " for i in range(len(header))) + "|",
            *("| " + " | ".join(row) + " |" for row in self._cells()),
            "",
            *(
                f"- {line}"
                for line in self._verdict_lines()
                + self._mia_lines()
                + self._oracle_lines()
                + self._lira_lines()
                + list(self.notes)
            ),
            "",
            "### Columns",
            "",
            *(f"- **{name}**: {meaning}." for name, meaning in self._columns().items()),
            f"- **Verdict rule**: {VERDICT_RULE}",
        ]
        return "\n".join(lines) + "\n"

    def to_dict(self) -> dict[str, Any]:
        """Everything in the report, JSON-ready (NaN becomes ``None``)."""
        return _json_ready(
            {
                "forget_size": self.forget_size,
                "heldout_size": self.heldout_size,
                "fr_reliable": self.fr_reliable,
                "fr_half_width": self.fr_half_width,
                "mia_half_width": self.mia_half_width,
                "verdict_rule": VERDICT_RULE,
                "columns": self._columns(),
                "oracle_quality": self.oracle_quality.to_dict(),
                "models": [m.to_dict() for m in self.models],
                "notes": list(self.notes),
                "mia": self._mia_lines(),
                **({"lira": self._lira_lines()} if self.has_lira else {}),
            }
        )

    def to_json(self, indent: int | None = 2) -> str:
        """:meth:`to_dict` as a JSON string."""
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)


def _lira(
    statistics: LiRAReferenceStatistics, forget: Predictions, heldout: Predictions, variant: LiRAVariant
) -> LiRAResult:
    """LiRA on one model: forget (members) vs ``heldout`` (non-members), as the report reads every attack."""
    return lira_attack_from_logits(
        statistics,
        forget.logits,
        forget.targets,
        forget.indices,
        heldout.logits,
        heldout.targets,
        heldout.indices,
        variant=variant,
    )
