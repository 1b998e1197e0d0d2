"""UnlearningReport: original vs unlearned vs retrained on the digits OOD scenario."""

from __future__ import annotations

import copy
import json
import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lightning_unlearn.inference import Predictions
from lightning_unlearn.metrics import COLUMN_DEFINITIONS, OracleNearChanceWarning, ShadowModelOracle, UnlearningReport


def _relabel_forget(model: nn.Module, datamodule, steps: int = 60) -> nn.Module:
    """A deliberate over-unlearner: teach the forget samples *another* label while rehearsing retain.

    Afterwards the model is confidently wrong on forget samples, far more than on unseen ones,
    which the retrained model never is.
    """
    model = copy.deepcopy(model).train()
    forget_inputs, forget_targets, _ = next(iter(datamodule.dataloader("forget", batch_size=1000)))
    retain_inputs, retain_targets, _ = next(iter(datamodule.dataloader("retain", batch_size=1000)))
    wrong_targets = (forget_targets + 1) % datamodule.num_classes
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(steps):
        optimizer.zero_grad()
        loss = F.cross_entropy(model(forget_inputs), wrong_targets) + F.cross_entropy(
            model(retain_inputs), retain_targets
        )
        loss.backward()
        optimizer.step()
    return model.eval()


@pytest.fixture(scope="module")
def report(digits_scenario) -> UnlearningReport:
    with warnings.catch_warnings():
        warnings.simplefilter("error", OracleNearChanceWarning)  # a good oracle must not warn
        return UnlearningReport.evaluate(
            digits_scenario.datamodule,
            digits_scenario.oracle,
            original=digits_scenario.target,
            unlearned={
                "unchanged": copy.deepcopy(digits_scenario.target),
                "relabel": _relabel_forget(digits_scenario.target, digits_scenario.datamodule),
            },
            retrained=digits_scenario.retrained,
            times={"unchanged": [0.3, 0.25, 0.2], "relabel": 0.5, "retrained": [2.0, 2.2, 1.9]},
        )


def test_rows_and_reference_values(report: UnlearningReport) -> None:
    assert [m.name for m in report.models] == ["original", "unchanged", "relabel", "retrained"]
    assert [m.role for m in report.models] == ["original", "unlearned", "unlearned", "retrained"]
    original = report.model("original")
    assert original.forgetting_rate == 0.0 and original.catastrophic_forgetting_rate == 0.0
    assert original.test_accuracy_drop == 0.0 and original.forget_accuracy == 1.0
    assert original.bt + original.bf == report.forget_size == 179 and report.heldout_size == 179
    unchanged = report.model("unchanged")
    assert unchanged.forgetting_rate == 0.0 and unchanged.mia == original.mia
    # Repeats: the median is reported, with min and max.
    assert unchanged.seconds == pytest.approx(0.25) and (unchanged.seconds_min, unchanged.seconds_max) == (0.2, 0.3)
    assert unchanged.speedup == pytest.approx(8.0) and original.speedup is None and original.seconds is None


def test_retrained_model_is_the_reference(report: UnlearningReport) -> None:
    original, retrained = report.model("original"), report.model("retrained")
    assert retrained.forgetting_rate > 0.7
    assert original.mia.score - retrained.mia.score > 0.3  # the direction is right
    assert retrained.forget_accuracy < 0.4 and retrained.test_accuracy > 0.9
    assert retrained.verdict is None and retrained.verdict_label == "reference"


def test_verdicts_follow_the_evidence(report: UnlearningReport) -> None:
    relabel, unchanged = report.model("relabel"), report.model("unchanged")
    # Nothing forgotten: the attack separates with forget losses below heldout's, FR stays 0.
    assert unchanged.verdict is not None and unchanged.verdict.label == "under-forgotten"
    assert report.model("original").verdict_label == "under-forgotten"
    # Taught another label: confidently wrong on forget samples, unlike on unseen ones. The attack
    # separates them from heldout without a clear loss direction; the oracle's FR, clearly above
    # retraining's, gives the direction.
    assert relabel.forget_accuracy < 0.15 and relabel.test_accuracy > 0.9
    assert relabel.verdict is not None
    assert (relabel.verdict.attack, relabel.verdict.oracle) == ("separates", "above")
    assert relabel.verdict.label == "over-forgotten"
    assert report.fr_half_width == pytest.approx(0.98 / report.model("original").bt ** 0.5)


def test_report_outputs(report: UnlearningReport) -> None:
    text = str(report)
    assert text.splitlines()[0] == "Unlearning report: 179 forget samples, 179 heldout samples"
    for name in ("original", "unchanged", "relabel", "retrained", "FR is reliable.", "relabel: over-forgotten — "):
        assert name in text
    assert text.splitlines()[1].split()[-1] == "verdict"
    markdown = report.to_markdown()
    table = [line for line in markdown.splitlines() if line.startswith("|")]
    assert table[0].startswith("| model | acc retain | acc forget | acc test |") and len(table) == 2 + 4
    assert "- unchanged: under-forgotten — the attack still separates" in markdown
    for column in COLUMN_DEFINITIONS:
        assert f"- **{column}**: " in markdown
    assert table[0] == "| " + " | ".join(COLUMN_DEFINITIONS) + " |"  # every column is defined, in order
    loaded = json.loads(report.to_json())
    assert loaded == report.to_dict()
    assert [m["name"] for m in loaded["models"]] == ["original", "unchanged", "relabel", "retrained"]
    assert loaded["fr_reliable"] is True and loaded["oracle_quality"]["forget_vs_heldout"]["num_members"] == 179
    assert loaded["models"][0]["speedup"] is None


def test_the_mias_tpr_line_gives_the_fpr_each_threshold_achieved(report: UnlearningReport) -> None:
    original = report.model("original").mia
    assert original.group_size == 166 and original.false_positives_allowed == 1  # class-matched: 166 of 179
    assert original.achieved_fpr in (0.0, 1 / 166) and original.notes == ()
    line = next(line for line in str(report).splitlines() if line.startswith("MIA TPR@1%FPR: "))
    assert line.startswith(
        "MIA TPR@1%FPR: the 5 folds' out-of-fold scores pooled, one threshold over the 166 non-members of the"
        " balanced groups (1 false positive(s) allowed, a tie never split); FPR achieved: original"
        f" {100 * original.achieved_fpr:.2f} %, unchanged"
    )
    assert f"- {line}" in report.to_markdown() and report.to_dict()["mia"] == [line]
    assert report.to_dict()["models"][0]["mia"]["achieved_fpr"] == original.achieved_fpr


def test_report_is_reproducible(digits_scenario, report: UnlearningReport) -> None:
    again = UnlearningReport.evaluate(
        digits_scenario.datamodule,
        digits_scenario.oracle,
        original=digits_scenario.target,
        retrained=digits_scenario.retrained,
        times={"retrained": [2.0, 2.2, 1.9]},
    )
    assert again.model("retrained") == report.model("retrained")
    assert again.oracle_quality == report.oracle_quality


def test_near_chance_oracle_is_reported(digits_scenario) -> None:
    labels = torch.arange(600) % 5
    logits = torch.randn(600, 5, generator=torch.Generator().manual_seed(0))
    label_reader = ShadowModelOracle().fit_attack(
        Predictions(logits[labels == 0], labels[labels == 0], torch.arange(120)),
        Predictions(logits[labels != 0], labels[labels != 0], torch.arange(480)),
    )
    with pytest.warns(OracleNearChanceWarning, match=r"the forgetting rate computed with it is meaningless"):
        report = UnlearningReport.evaluate(
            digits_scenario.datamodule,
            label_reader,
            original=digits_scenario.target,
            retrained=digits_scenario.retrained,
        )
    assert not report.fr_reliable and report.to_dict()["fr_reliable"] is False
    assert "FR is MEANINGLESS: the oracle is near chance." in str(report)
    assert any("near chance" in note for note in report.notes)


def test_evaluate_rejects_bad_wiring(digits_scenario) -> None:
    dm, target, retrained = digits_scenario.datamodule, digits_scenario.target, digits_scenario.retrained
    oracle = digits_scenario.oracle
    with pytest.raises(ValueError, match=r"Expected `unlearned` names other than \['original', 'retrained'\]"):
        UnlearningReport.evaluate(dm, oracle, original=target, retrained=retrained, unlearned={"original": target})
    with pytest.raises(ValueError, match=r"Expected `times` keys from \['original', 'retrained'\], but got 'scrub'\."):
        UnlearningReport.evaluate(dm, oracle, original=target, retrained=retrained, times={"scrub": 1.0})
    with pytest.raises(ValueError, match=r"Expected `times\['retrained'\]` to be a non-negative number of seconds"):
        UnlearningReport.evaluate(dm, oracle, original=target, retrained=retrained, times={"retrained": -1.0})
    message = r"Expected `times\['retrained'\]` to be a number of seconds \(or a list of them\), but got str\."
    with pytest.raises(TypeError, match=message):
        UnlearningReport.evaluate(dm, oracle, original=target, retrained=retrained, times={"retrained": "2 s"})
    with pytest.raises(TypeError, match=r"Expected `oracle` to be a ShadowModelOracle, but got dict\."):
        UnlearningReport.evaluate(dm, {}, original=target, retrained=retrained)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"Expected model 'retrained' to be an nn.Module, but got str\."):
        UnlearningReport.evaluate(dm, oracle, original=target, retrained="model")  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match=r"The membership oracle is not fitted yet"):
        UnlearningReport.evaluate(dm, ShadowModelOracle(), original=target, retrained=retrained)
