"""The ``lightning-unlearn`` command, and every shipped YAML config."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest
import yaml

from lightning_unlearn.cli import main

CONFIGS = sorted((Path(__file__).parents[1] / "configs").rglob("*.yaml"))
LIGHTNING_CONFIGS = [c for c in CONFIGS if "trainer" in yaml.safe_load(c.read_text())]
DIGITS_EXPERIMENTS = [c for c in CONFIGS if c not in LIGHTNING_CONFIGS and "digits" in c.parts]
PAPER_EXPERIMENTS = [c for c in CONFIGS if c not in LIGHTNING_CONFIGS and "papers" in c.parts]


def short(path: Path) -> str:
    return str(path.relative_to(path.parents[2]))


def test_every_config_is_covered() -> None:
    assert LIGHTNING_CONFIGS and DIGITS_EXPERIMENTS and PAPER_EXPERIMENTS
    assert set(LIGHTNING_CONFIGS) | set(DIGITS_EXPERIMENTS) | set(PAPER_EXPERIMENTS) == set(CONFIGS)


@pytest.mark.parametrize("config", LIGHTNING_CONFIGS, ids=short)
def test_every_lightning_config_runs(config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "argv", ["lightning-unlearn"])
    main(
        [
            "fit",
            "--config",
            str(config),
            "--trainer.fast_dev_run=true",
            f"--trainer.default_root_dir={tmp_path}",
            "--trainer.enable_progress_bar=false",
        ]
    )


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache for every digits config: the target and the oracle are trained once."""
    return tmp_path_factory.mktemp("cache")


@pytest.mark.parametrize("config", DIGITS_EXPERIMENTS, ids=short)
def test_every_digits_experiment_runs_in_full(
    config: Path, tmp_path: Path, shared_cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main(
        [
            "experiment",
            "--config",
            str(config),
            f"--output_dir={tmp_path}",
            f"--cache_dir={shared_cache}",
            "--progress_bar=false",
            "--plots=false",
            "--repeats=1",  # one timed run is enough to show the config runs
            "--lira=0",  # the per-example attack has tests of its own
        ]
    )
    printed = capsys.readouterr().out
    assert "Unlearning report:" in printed
    report = json.loads((tmp_path / "report.json").read_text())
    names = [model["name"] for model in report["report"]["models"]]
    methods = yaml.safe_load(config.read_text())["methods"]
    assert names == ["original", *methods, "retrained"]
    assert {"report.md", "report.json", "manifest.json", "run.json", "config.yaml"} <= {
        p.name for p in tmp_path.iterdir()
    }
    record = json.loads((tmp_path / "run.json").read_text())
    assert list(record["settings"]["methods"]) == list(methods)
    assert {"lightning_unlearn", "torch", "lightning", "device"} <= set(record["environment"])
    # The recorded configuration is a config the command accepts back, naming the same methods.
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        main(["experiment", "--config", str(tmp_path / "config.yaml"), "--print_config"])
    assert exit_info.value.code == 0
    assert list(yaml.safe_load(capsys.readouterr().out)["methods"]) == list(methods)


@pytest.mark.parametrize("config", PAPER_EXPERIMENTS, ids=short)
def test_every_paper_config_parses(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Their data cannot be on this machine: the config must parse and name real classes.
    with pytest.raises(SystemExit) as exit_info:
        main(["experiment", "--config", str(config), "--print_config"])
    assert exit_info.value.code == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["methods"] and printed["data"]["class_path"].startswith("lightning_unlearn.")


def test_experiment_help_is_short_and_lists_methods_and_sources(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["experiment", "--help"])
    assert exit_info.value.code == 0
    printed = capsys.readouterr().out
    assert len(printed.splitlines()) < 150
    assert "--methods" in printed and "torch.nn.Identity" not in printed
    listed = r"^  forsaken\[paper\|recommended\] \*\s+Forsaken unlearning \(Algorithm 1\)"  # one line, two names
    assert re.search(listed, printed, flags=re.MULTILINE)
    assert re.search(r"^  MNISTSource\s+MNIST handwritten digits", printed, flags=re.MULTILINE)
    assert "--recipe.backbone.help CLASS" in printed


def test_a_backbones_options_stay_reachable(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["experiment", "--recipe.backbone.help", "lightning_unlearn.models.MLP"])
    assert exit_info.value.code == 0
    assert "--recipe.backbone.in_features" in capsys.readouterr().out


def test_a_data_setting_alone_applies_to_the_default_digits(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["experiment", "--data.forget_size", "100", "--print_config"])
    data = yaml.safe_load(capsys.readouterr().out)["data"]
    assert data["class_path"] == "lightning_unlearn.DigitsDataModule"
    assert data["init_args"]["forget_size"] == 100


def test_a_data_setting_after_a_config_keeps_the_configs_datamodule(capsys: pytest.CaptureFixture[str]) -> None:
    config = next(c for c in PAPER_EXPERIMENTS if c.stem == "mnist_fnn")
    with pytest.raises(SystemExit):
        main(["experiment", "--config", str(config), "--data.forget_size", "100", "--print_config"])
    data = yaml.safe_load(capsys.readouterr().out)["data"]
    assert data["class_path"] == "lightning_unlearn.UnlearningDataModule"
    assert data["init_args"]["forget_size"] == 100 and data["init_args"]["split_class"] is None


def test_usage_without_a_command(capsys: pytest.CaptureFixture[str]) -> None:
    main([])
    assert "usage: lightning-unlearn {experiment,fit,validate,test,predict}" in capsys.readouterr().out


def test_unknown_command_is_refused() -> None:
    with pytest.raises(
        SystemExit, match=r"expected a command from experiment, fit, validate, test, predict, but got 'unlearn'"
    ):
        main(["unlearn"])


MNIST_CONFIG = str(Path(__file__).parents[1] / "configs" / "experiments" / "papers" / "mnist_fnn.yaml")

#: Each mistake of a new user's first hour, and the one line the command answers it with.
MISTAKES = {
    "misspelt setting": (
        ["--methods={forsaken: {iteration: 40}}"],
        r"Expected the settings of `forsaken` to be from \[.*\] \(the arguments of ForsakenModule\), but got"
        r" `iteration`\. Did you mean `iterations`\?",
    ),
    "unknown method": (
        ["--methods={magic: {}}"],
        r"Expected method names from \['finetune', 'fnn'.*\] \(or any name with a `class_path` to a subclass of"
        r" UnlearningMethod\), but got \['magic'\]\.",
    ),
    "unknown posterior": (
        ["--methods={forsaken: {posterior: nearst}}"],
        r"Expected `posterior` of `forsaken` to be one of \[.*\], but got 'nearst'\. Did you mean `nearest`\?",
    ),
    "class_path under a short name": (
        ["--methods={forsaken: {class_path: lightning_unlearn.ForsakenModule}}"],
        r"Expected the settings of `forsaken` to be keyword arguments of ForsakenModule, .* but got"
        r" `class_path`/`init_args`: a built-in method's class is fixed; give a class of your own a name of its own,"
        r" e\.g\. \{my_forsaken: \{class_path: \.\.\.\}\}\.",
    ),
    "wrong subsets": (
        ["--config", MNIST_CONFIG, "--data.source.subsets=[training]"],
        r"Expected `subsets` to be splits of MNIST out of \('train', 'test'\), but got 'training'\.",
    ),
    "missing data files": (
        ["--config", MNIST_CONFIG, "--data.source.root=/nonexistent/mnist"],
        r"Expected `root` to be a folder holding the MNIST idx files .* but '/nonexistent/mnist' does not exist\."
        r" Pass download=True to fetch them\.",
    ),
    "forget set too large": (
        ["--data.forget_size", "5000"],
        r"Expected `forget_size` to be at most 446 \(.*\), but got 5,000\.",
    ),
}


@pytest.mark.parametrize("mistake", list(MISTAKES))
def test_a_mistake_is_one_line_on_stderr(mistake: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    arguments, message = MISTAKES[mistake]
    cache, out = tmp_path / "cache", tmp_path / "out"
    with pytest.raises(SystemExit) as exit_info:
        main(["experiment", *arguments, f"--output_dir={out}", f"--cache_dir={cache}", "--progress_bar=false"])
    assert exit_info.value.code == 2
    errors = capsys.readouterr().err.splitlines()
    assert len(errors) == 1, errors
    assert re.fullmatch("lightning-unlearn: error: " + message, errors[0]), errors[0]
    assert not cache.exists() and not out.exists(), "nothing was trained, cached or written"


def test_debug_shows_the_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match=r"but got \['magic'\]"):
        main(["experiment", "--debug", "--methods={magic: {}}", "--cache_dir=null"])
    monkeypatch.setenv("LIGHTNING_UNLEARN_DEBUG", "1")
    with pytest.raises(ValueError, match=r"but got \['magic'\]"):
        main(["experiment", "--methods={magic: {}}", "--cache_dir=null"])


def test_a_chained_error_shows_its_root() -> None:
    from lightning_unlearn.cli import _root_message

    try:
        try:
            raise ValueError("Expected `subsets` to be splits of MNIST, but got 'training'.")
        except ValueError as error:
            raise ValueError("Does not validate against any of the Union subtypes\n  Subtypes: ...") from error
    except ValueError as chained:
        assert _root_message(chained) == "Expected `subsets` to be splits of MNIST, but got 'training'."
    assert _root_message(KeyError("'forget' is not a split")) == "'forget' is not a split"


def test_a_config_naming_a_missing_class_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "broken.yaml"
    config.write_text("data:\n  class_path: lightning_unlearn.NoSuchDataModule\n")
    with pytest.raises(SystemExit) as exit_info:
        main(["experiment", "--config", str(config), f"--output_dir={tmp_path / 'out'}"])
    assert exit_info.value.code != 0
    assert "NoSuchDataModule" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_a_wandb_logger_from_the_command_line_runs_offline(
    tmp_path: Path, shared_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    config = tmp_path / "wandb.yaml"
    config.write_text(
        "logger:\n"
        "  class_path: lightning.pytorch.loggers.WandbLogger\n"
        f"  init_args: {{project: lightning-unlearn-tests, save_dir: '{tmp_path}'}}\n"
        "methods:\n  smu: {}\n"
    )
    main(
        [
            "experiment",
            "--config",
            str(config),
            f"--output_dir={tmp_path / 'out'}",
            f"--cache_dir={shared_cache}",
            "--progress_bar=false",
            "--plots=false",
            "--repeats=1",
            "--lira=0",
        ]
    )
    import os

    assert os.environ["WANDB_MODE"] == "offline", "no API key: W&B must run offline"
    import wandb

    assert wandb.run is None, "the command closes its W&B run"
    runs = list((tmp_path / "wandb").glob("offline-run-*"))
    assert len(runs) == 1
    assert list((runs[0] / "files" / "media" / "table").glob("comparison_*.table.json"))


@pytest.mark.parametrize("method", ["SCRUBBaseline", "NegGradPlusBaseline", "FinetuneBaseline"])
def test_a_baselines_forwarded_arguments_stay_in_its_help(method: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Subclasses forward the shared arguments (``**kwargs``); the command line still lists every one."""
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--model.help", f"lightning_unlearn.modules.{method}"])
    assert exit_info.value.code == 0
    printed = capsys.readouterr().out
    for argument in ("--model.target", "--model.max_epochs", "--model.optimizer", "--model.loss", "--model.seed"):
        assert argument in printed, f"{method}: {argument} is missing from --help"


def test_experiment_help_does_not_depend_on_what_else_is_imported(capsys: pytest.CaptureFixture[str]) -> None:
    import importlib

    def help_text() -> str:
        with pytest.raises(SystemExit):
            main(["experiment", "--help"])
        return capsys.readouterr().out

    before = help_text()
    importlib.import_module("lightning_unlearn.text_models")
    importlib.import_module("lightning_unlearn.datamodules.sources.glyphs")
    assert help_text() == before
