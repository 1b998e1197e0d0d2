"""The experiment pipeline: caching, reports, plots, and W&B offline logging."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import torch
from lightning.pytorch.loggers import WandbLogger

from lightning_unlearn import DigitsDataModule, TrainingRecipe
from lightning_unlearn.cache import ArtifactCache, config_key
from lightning_unlearn.pipeline import run_experiment

FAST_METHODS = {"forsaken": {"iterations": 5}, "smu": {}, "finetune": {"max_epochs": 1}}


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cache")


def test_repeats_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"Expected `repeats` to be a positive integer, but got 0\."):
        run_experiment(output_dir=tmp_path, cache_dir=None, repeats=0)


def test_second_run_reuses_target_and_oracle(
    tmp_path: Path, cache_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    recipe = TrainingRecipe(max_epochs=20)
    first = run_experiment(
        DigitsDataModule(),
        recipe,
        FAST_METHODS,
        tmp_path / "one",
        cache_dir,
        progress_bar=False,
        plots=False,
        repeats=1,
    )
    assert first.reused == {"target": False, "oracle": False}
    second = run_experiment(
        DigitsDataModule(),
        recipe,
        FAST_METHODS,
        tmp_path / "two",
        cache_dir,
        progress_bar=False,
        plots=False,
        repeats=1,
    )
    assert second.reused == {"target": True, "oracle": True}
    assert "target: reused from" in capsys.readouterr().out
    assert second.stage_seconds["target"] < first.stage_seconds["target"]
    # The cached target is the same model: identical evaluations of the original.
    assert first.report.model("original").to_dict() == second.report.model("original").to_dict()
    # Retraining always runs, so every speed-up is measured in the same run.
    assert second.report.model("retrained").seconds == pytest.approx(second.stage_seconds["retrain"])


def test_a_changed_recipe_trains_a_new_target(tmp_path: Path, cache_dir: Path) -> None:
    result = run_experiment(
        DigitsDataModule(),
        TrainingRecipe(max_epochs=21),
        {"smu": {}},
        tmp_path,
        cache_dir,
        progress_bar=False,
        repeats=1,
        plots=False,
    )
    assert result.reused["target"] is False


def test_a_changed_batch_size_trains_a_new_target(tmp_path: Path) -> None:
    # The data order depends on the batch size, so a target trained with another one is not reused.
    settings = dict(output_dir=tmp_path, cache_dir=tmp_path / "cache", progress_bar=False, repeats=1, plots=False)
    run_experiment(DigitsDataModule(), TrainingRecipe(max_epochs=3), {"smu": {}}, **settings)  # type: ignore[arg-type]
    again = run_experiment(DigitsDataModule(batch_size=32), TrainingRecipe(max_epochs=3), {"smu": {}}, **settings)  # type: ignore[arg-type]
    assert again.reused["target"] is False


def test_report_files_and_plots(tmp_path: Path, cache_dir: Path) -> None:
    result = run_experiment(
        DigitsDataModule(),
        TrainingRecipe(max_epochs=20),
        {"forsaken": {"iterations": 5}},
        tmp_path,
        cache_dir,
        progress_bar=False,
        repeats=2,
    )
    names = {p.name for p in result.files}
    assert {"report.md", "report.json", "manifest.json", "forsaken_fr_accuracy.png", "tsne_forsaken_paper.png"} <= names
    for png in (tmp_path / "forsaken_fr_accuracy.png", tmp_path / "tsne_forsaken_paper.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    payload = json.loads((tmp_path / "report.json").read_text())
    rows = {row["name"]: row for row in payload["report"]["models"]}
    assert set(rows) == {"original", "forsaken[paper]", "retrained"}, "a bare `forsaken` is the paper's, and says so"
    forsaken = rows["forsaken[paper]"]
    assert forsaken["speedup"] == pytest.approx(rows["retrained"]["seconds"] / forsaken["seconds"])
    # Methods and retraining are timed the same number of times: the median, with min and max.
    for name in ("forsaken[paper]", "retrained"):
        assert rows[name]["seconds_min"] <= rows[name]["seconds"] <= rows[name]["seconds_max"]
    assert forsaken["verdict"] in (
        "under-forgotten",
        "matches retraining",
        "over-forgotten",
        "oracle and attack disagree",
    )
    assert rows["retrained"]["verdict"] == "reference"
    markdown = (tmp_path / "report.md").read_text()
    assert "| forsaken[paper] |" in markdown and "Time per stage" in markdown
    record = json.loads((tmp_path / "run.json").read_text())
    assert record["settings"]["methods"]["forsaken[paper]"]["iterations"] == 5
    assert record["settings"]["methods"]["forsaken[paper]"]["xi"] == 1.0, "defaults filled in"
    assert record["settings"]["recipe"]["max_epochs"] == 20


def test_default_settings_warn_nothing_and_draw_no_bars_off_a_terminal(
    tmp_path: Path, cache_dir: Path, recwarn: pytest.WarningsRecorder, capsys: pytest.CaptureFixture[str]
) -> None:
    result = run_experiment(DigitsDataModule(), TrainingRecipe(max_epochs=20), {"smu": {}}, tmp_path, cache_dir)
    assert [str(w.message) for w in recwarn if "SMU" in str(w.message)] == []
    expected = "heuristic (exact only for plain SGD; the target trained with Adam)"
    assert result.outcomes["smu"].details == {"update": expected}
    assert f"- **smu**: update = {expected}" in (tmp_path / "report.md").read_text()
    captured = capsys.readouterr()
    assert "Epoch" not in captured.out + captured.err, "stderr is not a terminal here: no progress bars"


def test_wandb_offline_run_receives_curves_table_and_plots(
    tmp_path: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    import wandb

    wandb.finish()  # a run left open elsewhere in this process would be reused by the logger
    logger = WandbLogger(project="lightning-unlearn-tests", save_dir=str(tmp_path), offline=True)
    run_experiment(
        DigitsDataModule(),
        TrainingRecipe(max_epochs=20),
        {"forsaken": {"iterations": 5}},
        tmp_path / "out",
        cache_dir,
        logger=logger,
        progress_bar=False,
        repeats=1,
    )
    logger.experiment.finish()
    runs = list((tmp_path / "wandb").glob("offline-run-*"))
    assert len(runs) == 1
    media = runs[0] / "files" / "media"
    tables = list((media / "table").glob("comparison_*.table.json"))
    assert len(tables) == 1
    table = json.loads(tables[0].read_text())
    assert table["columns"][:3] == ["method", "FR", "CFR"]
    assert [row[0] for row in table["data"]] == ["original", "forsaken[paper]", "retrained"]
    images = {p.name.split("_")[0] for p in (media / "images").glob("*.png")}
    assert {"forsaken", "tsne"} <= images
    record_file = next(runs[0].glob("run-*.wandb"))
    deadline = time.monotonic() + 30  # W&B's service may still be flushing the run's records
    while b"forsaken[paper]/kl" not in record_file.read_bytes() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert b"forsaken[paper]/kl" in record_file.read_bytes(), "the per-iteration curve must reach the run"


def test_unknown_method_is_refused_before_any_training(tmp_path: Path) -> None:
    refusal = r"Expected method names from \[.*\] \(or any name with a `class_path`.*\), but got"
    refusal += r" \[.retrain_everything.\]"
    with pytest.raises(ValueError, match=refusal):
        run_experiment(methods={"retrain_everything": {}}, output_dir=tmp_path, cache_dir=None)
    assert list(tmp_path.iterdir()) == []


def test_cache_keys_ignore_order_and_refuse_objects(tmp_path: Path) -> None:
    assert config_key({"a": 1, "b": [1, 2]}) == config_key({"b": [1, 2], "a": 1})
    assert config_key({"a": 1}) != config_key({"a": 2})
    with pytest.raises(TypeError, match=r"Expected a cache config of JSON values .* but got object"):
        config_key({"a": object()})


def test_cache_leaves_no_entry_when_saving_fails(tmp_path: Path) -> None:
    cache = ArtifactCache(tmp_path)

    def broken_save(value: int, folder: Path) -> None:
        (folder / "half.txt").write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        cache.get_or_build("thing", {"x": 1}, build=lambda: 1, save=broken_save, load=lambda folder: 0)
    assert list(tmp_path.iterdir()) == [], "a failed save must leave nothing behind"
    entry = cache.get_or_build(
        "thing",
        {"x": 1},
        build=lambda: 1,
        save=lambda v, f: (f / "v").write_text(str(v)),
        load=lambda f: int((f / "v").read_text()),
    )
    again = cache.get_or_build("thing", {"x": 1}, build=lambda: 2, save=lambda v, f: None, load=lambda f: 7)
    assert (entry.value, entry.from_cache, again.value, again.from_cache) == (1, False, 7, True)


def test_an_interrupted_run_leaves_a_consistent_cache_and_reruns(
    tmp_path: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from lightning_unlearn import pipeline

    def interrupted(context: object, **settings: object) -> None:
        raise KeyboardInterrupt

    recipe = TrainingRecipe(max_epochs=22)
    monkeypatch.setitem(pipeline.METHODS, "finetune", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_experiment(
            DigitsDataModule(), recipe, {"finetune": {}}, tmp_path / "out", cache_dir, progress_bar=False, repeats=1
        )
    assert "Interrupted while unlearning with finetune" in capsys.readouterr().out
    assert not (tmp_path / "out").exists(), "no half-written report"
    monkeypatch.undo()
    again = run_experiment(
        DigitsDataModule(),
        recipe,
        {"finetune": {}},
        tmp_path / "out",
        cache_dir,
        progress_bar=False,
        plots=False,
        repeats=1,
    )
    assert again.reused == {"target": True, "oracle": True}
    assert (tmp_path / "out" / "report.json").is_file()


def test_a_cache_entry_from_another_configuration_is_refused(tmp_path: Path) -> None:
    cache = ArtifactCache(tmp_path)
    entry = cache.get_or_build("thing", {"x": 1}, build=lambda: 1, save=lambda v, f: None, load=lambda f: 1)
    assert entry.folder is not None
    (entry.folder / "config.json").write_text(json.dumps({"x": 2}))
    with pytest.raises(RuntimeError, match=r"Expected the cached thing in .* to have been built from this config"):
        cache.get_or_build("thing", {"x": 1}, build=lambda: 1, save=lambda v, f: None, load=lambda f: 1)


def test_a_baselines_optimizer_comes_from_a_config_mapping() -> None:
    import re

    from lightning_unlearn.pipeline import _optimizer

    build = _optimizer("scrub", {"class_path": "torch.optim.SGD", "init_args": {"lr": 0.01, "momentum": 0.9}})
    optimizer = build([torch.nn.Parameter(torch.zeros(2))])
    assert isinstance(optimizer, torch.optim.SGD) and optimizer.defaults["lr"] == 0.01
    from jsonargparse import Namespace

    read = Namespace(class_path="torch.optim.SGD", init_args=Namespace(params=None, lr=0.2))  # as the CLI reads it
    assert _optimizer("scrub", read)([torch.nn.Parameter(torch.zeros(1))]).defaults["lr"] == 0.2
    assert isinstance(
        _optimizer("scrub", {"class_path": "Adam"})([torch.nn.Parameter(torch.zeros(1))]), torch.optim.Adam
    )
    with pytest.raises(
        ValueError,
        match=re.escape(
            "Expected `optimizer.class_path` of `scrub` to name a torch optimiser, but got 'torch.nn.Linear'."
        ),
    ):
        _optimizer("scrub", {"class_path": "torch.nn.Linear"})
    with pytest.raises(
        TypeError, match=re.escape("Expected `optimizer` of `salun` to be a callable or a mapping with")
    ):
        _optimizer("salun", {"init_args": {"lr": 0.1}})
