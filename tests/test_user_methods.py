"""A user's own methods, defined outside the package, join ``lightning-unlearn experiment`` by class_path."""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path

import pytest
import yaml

from lightning_unlearn.cli import main

#: A user's package: a Forsaken variant overriding one hook, and a method written from the base class.
USER_PACKAGE = '''
"""Methods of a user's own project."""

import copy

import torch
import torch.nn.functional as F

from lightning_unlearn.modules import ForsakenModule
from lightning_unlearn.modules.base import UnlearningMethod, target_network


class FlatForsaken(ForsakenModule):
    """Forsaken pulling every forget sample to the flat posterior (overrides one hook)."""

    def posterior_targets(self, forget, reference):
        size = (forget.inputs.shape[0], self.num_classes)
        return torch.full(size, 1.0 / self.num_classes, device=self.device)


class RetainSGD(UnlearningMethod):
    """Plain SGD on retain, written from the base class."""

    reads = ("retain",)

    def __init__(self, target: torch.nn.Module, epochs: int = 1, lr: float = 0.01) -> None:
        super().__init__(target)
        self.model = copy.deepcopy(target_network(target)).train()
        self.epochs, self.lr = epochs, lr

    def fit_settings(self):
        return {"max_epochs": self.epochs}

    def training_step(self, batch, batch_idx):
        return F.cross_entropy(self.model(batch[0]), batch[1])

    def configure_optimizers(self):
        return torch.optim.SGD(self.model.parameters(), lr=self.lr)

    def unlearned_model(self):
        return copy.deepcopy(self.model).eval()
'''


@pytest.fixture
def user_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    folder = tmp_path / "site"
    (folder / "my_unlearning").mkdir(parents=True)
    (folder / "my_unlearning" / "__init__.py").write_text("")
    (folder / "my_unlearning" / "methods.py").write_text(USER_PACKAGE)
    monkeypatch.syspath_prepend(str(folder))
    return "my_unlearning.methods"


def test_a_users_subclasses_run_from_yaml_and_get_their_rows(
    user_package: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "mine.yaml"
    config.write_text(
        textwrap.dedent(
            f"""\
            recipe:
              max_epochs: 10
            methods:
              flat_forsaken:
                class_path: {user_package}.FlatForsaken
                init_args:
                  iterations: 5
              retain_sgd:
                class_path: {user_package}.RetainSGD
                init_args:
                  epochs: 2
              finetune:
                max_epochs: 1
            """
        )
    )
    out = tmp_path / "out"
    main(
        [
            "experiment",
            "--config",
            str(config),
            f"--output_dir={out}",
            f"--cache_dir={tmp_path / 'cache'}",
            "--progress_bar=false",
            "--plots=false",
            "--repeats=1",
            "--lira=0",
        ]
    )
    report = json.loads((out / "report.json").read_text())
    rows = {model["name"]: model for model in report["report"]["models"]}
    assert list(rows) == ["original", "flat_forsaken", "retain_sgd", "finetune", "retrained"]
    assert all(0.0 <= rows[name]["test_accuracy"] <= 1.0 for name in ("flat_forsaken", "retain_sgd"))
    assert "flat_forsaken" in capsys.readouterr().out
    record = json.loads((out / "run.json").read_text())
    recorded = record["settings"]["methods"]["flat_forsaken"]
    assert recorded["class_path"] == f"{user_package}.FlatForsaken" and recorded["init_args"]["iterations"] == 5
    # The recorded configuration runs back: the same methods, the user's by class_path.
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        main(["experiment", "--config", str(out / "config.yaml"), "--print_config"])
    assert exit_info.value.code == 0
    assert list(yaml.safe_load(capsys.readouterr().out)["methods"]) == list(rows)[1:-1]


@pytest.mark.parametrize(
    ("methods", "message"),
    [
        (
            "{mine: {class_path: my_unlearning.methods.FlatForsaken, init_args: {iteration: 5}}}",
            r"Expected the settings of `mine` to be from \[.*\] \(the arguments of FlatForsaken\), but got"
            r" `iteration`\. Did you mean `iterations`\?",
        ),
        (
            "{mine: {class_path: my_unlearning.methods.Missing}}",
            r"Expected `class_path` 'my_unlearning.methods.Missing' to name a class of module"
            r" 'my_unlearning.methods', but it has none\.",
        ),
        (
            "{mine: {class_path: torch.nn.Linear}}",
            r"Expected `class_path` 'torch.nn.Linear' to name a subclass of lightning_unlearn.modules.UnlearningMethod,"
            r" but it names <class 'torch.nn.modules.linear.Linear'>\.",
        ),
        (
            "{mine: {class_path: my_unlearning.methods.RetainSGD, epochs: 2}}",
            r"Expected the settings of `mine` to hold `class_path` and `init_args` alone, but got \['epochs'\] too: put"
            r" the method's arguments under `init_args`\.",
        ),
    ],
    ids=["misspelt argument", "missing class", "not a method", "arguments beside init_args"],
)
def test_a_wrong_user_method_is_one_line_before_anything_trains(
    user_package: str, methods: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cache, out = tmp_path / "cache", tmp_path / "out"
    with pytest.raises(SystemExit) as exit_info:
        main(["experiment", f"--methods={methods}", f"--output_dir={out}", f"--cache_dir={cache}"])
    assert exit_info.value.code == 2
    errors = capsys.readouterr().err.splitlines()
    assert len(errors) == 1 and re.fullmatch("lightning-unlearn: error: " + message, errors[0]), errors
    assert not cache.exists() and not out.exists()
