"""UnlearningReport with LiRA: columns beside the population MIA, per-sample scores, and nothing when off."""

from __future__ import annotations

import copy
import json

import pytest

from lightning_unlearn.metrics import COLUMN_DEFINITIONS, UnlearningReport
from lightning_unlearn.metrics.lira import LiRAReferenceStatistics
from lightning_unlearn.metrics.lira_references import train_lira_references
from lightning_unlearn.metrics.report import LIRA_COLUMN_DEFINITIONS


@pytest.fixture(scope="module")
def statistics(digits_scenario) -> LiRAReferenceStatistics:
    """Four reference models with the target's recipe: the smallest K, enough to check the wiring."""
    return train_lira_references(
        digits_scenario.recipe, digits_scenario.datamodule, num_models=4, progress_bar=False, enable_progress_bar=False
    )


def _evaluate(digits_scenario, **settings: object) -> UnlearningReport:
    return UnlearningReport.evaluate(
        digits_scenario.datamodule,
        digits_scenario.oracle,
        original=digits_scenario.target,
        unlearned={"unchanged": copy.deepcopy(digits_scenario.target)},
        retrained=digits_scenario.retrained,
        **settings,  # type: ignore[arg-type]
    )


def test_lira_columns_for_every_model_beside_the_population_mia(digits_scenario, statistics) -> None:
    report = _evaluate(digits_scenario, lira=statistics)
    assert report.has_lira
    header = report._header()
    assert header[header.index("loss AUC") + 1 : header.index("time s")] == ("LiRA AUC", "LiRA TPR@1%FPR")
    for model in report.models:
        assert model.lira is not None and model.lira.num_members == 179 and model.lira.num_nonmembers == 179
        assert set(model.lira.nonmember_indices) == set(digits_scenario.datamodule.splits["heldout"].indices.tolist())
    original, retrained = report.model("original").lira, report.model("retrained").lira
    assert original is not None and retrained is not None and original.auc > retrained.auc
    text = str(report)
    assert "LiRA (online, global variance, 4 reference models)" in text
    assert "TPR@1%FPR allows 1 false positive(s), TPR@0.1%FPR 0" in text
    assert "non-members cannot measure an FPR below 1/179 = 0.56 %" in text
    assert "retrained model (the reference): LiRA AUC" in text
    markdown = report.to_markdown()
    assert "| LiRA AUC | LiRA TPR@1%FPR | time s |" in markdown and "- **LiRA AUC**:" in markdown
    payload = json.loads(report.to_json())
    assert set(payload["columns"]) == set(COLUMN_DEFINITIONS) | set(LIRA_COLUMN_DEFINITIONS)
    lira = payload["models"][0]["lira"]
    assert len(lira["member_scores"]) == 179 and len(lira["nonmember_scores"]) == 179
    assert lira["false_positives_at_1pct_fpr"] == 1 and lira["num_models"] == 4 and payload["lira"]


def test_without_lira_the_table_is_unchanged(digits_scenario) -> None:
    report = _evaluate(digits_scenario)
    assert not report.has_lira and report._header() == UnlearningReport._HEADER
    assert "LiRA" not in str(report) and "LiRA" not in report.to_markdown()
    payload = report.to_dict()
    assert "lira" not in payload and "lira" not in payload["models"][0]
    assert set(payload["columns"]) == set(COLUMN_DEFINITIONS)


def test_offline_variant_and_bad_statistics(digits_scenario, statistics) -> None:
    report = _evaluate(digits_scenario, lira=statistics, lira_variant="offline")
    assert {m.lira.variant for m in report.models if m.lira is not None} == {"offline"}
    with pytest.raises(TypeError, match=r"Expected `lira` to be LiRAReferenceStatistics or None, but got dict"):
        _evaluate(digits_scenario, lira={})
