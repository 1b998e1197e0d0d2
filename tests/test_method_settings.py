"""Method settings are checked against the classes that receive them, before anything runs."""

from __future__ import annotations

import functools
import importlib
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml

from lightning_unlearn import method_settings as method_settings_module
from lightning_unlearn import pipeline
from lightning_unlearn.method_settings import METHOD_SETTINGS, check_methods, resolved_settings, split_method_name

CONFIGS = sorted((Path(__file__).parents[1] / "configs" / "experiments").rglob("*.yaml"))


def test_every_method_of_the_pipeline_has_its_settings_described() -> None:
    assert set(METHOD_SETTINGS) == {split_method_name(name)[0] for name in pipeline.METHODS}


@pytest.mark.parametrize("config", CONFIGS, ids=lambda path: path.stem)
def test_every_shipped_config_has_valid_method_settings(config: Path) -> None:
    from jsonargparse import ArgumentParser

    # Values as the command line reads them (jsonargparse's YAML reading, e.g. of 1e-3).
    parser = ArgumentParser()
    parser.add_argument("--methods", type=dict[str, dict[str, Any] | None] | None)
    methods = parser.parse_object({"methods": yaml.safe_load(config.read_text())["methods"]}).methods
    check_methods(methods, available=pipeline.METHODS)


def test_a_misspelt_setting_names_the_valid_ones_and_the_closest() -> None:
    with pytest.raises(
        ValueError,
        match=r"Expected the settings of `forsaken` to be from \[.*'checkpoint', .*'iterations', .*\] \(the arguments"
        r" of ForsakenModule\), but got `iteration`\. Did you mean `iterations`\?",
    ):
        check_methods({"forsaken": {"iteration": 40}}, available=pipeline.METHODS)


def test_several_misspelt_settings_are_named_together() -> None:
    with pytest.raises(
        ValueError,
        match=r"but got `num_shard` and `num_slice`\. Did you mean `num_shards` for `num_shard`\? Did you mean"
        r" `num_slices` for `num_slice`\?",
    ):
        check_methods({"sisa": {"num_shard": 2, "num_slice": 2}}, available=pipeline.METHODS)


def test_a_setting_the_pipeline_supplies_is_refused() -> None:
    with pytest.raises(ValueError, match=r"Expected the settings of `fnn` to be from .* but got `datamodule`\.$"):
        check_methods({"fnn": {"datamodule": None}}, available=pipeline.METHODS)


def test_a_value_outside_a_literal_names_the_choices() -> None:
    with pytest.raises(
        ValueError,
        match=r"Expected `posterior` of `forsaken` to be one of \['per_class', 'global_mean', 'uniform', 'nearest',"
        r" 'shadow'\],"
        r" but got 'nearst'\. Did you mean `nearest`\?",
    ):
        check_methods({"forsaken": {"posterior": "nearst"}}, available=pipeline.METHODS)


def test_a_value_of_the_wrong_type_is_refused() -> None:
    with pytest.raises(TypeError, match=r"Expected `iterations` of `forsaken` to be an integer, but got str '40'\."):
        check_methods({"forsaken": {"iterations": "40"}}, available=pipeline.METHODS)
    with pytest.raises(TypeError, match=r"Expected `xi` of `forsaken` to be a number, but got bool True\."):
        check_methods({"forsaken": {"xi": True}}, available=pipeline.METHODS)


def test_class_path_under_a_short_name_is_explained() -> None:
    with pytest.raises(
        ValueError,
        match=r"Expected the settings of `forsaken` to be keyword arguments of ForsakenModule, such as \{forsaken:"
        r" \{iterations: \.\.\.\}\}, but got `class_path`/`init_args`: a built-in method's class is fixed",
    ):
        check_methods(
            {"forsaken": {"class_path": "lightning_unlearn.ForsakenModule", "init_args": {}}},
            available=pipeline.METHODS,
        )


def test_a_class_path_as_method_name_points_to_the_short_name() -> None:
    with pytest.raises(
        ValueError, match=r"A method is named by its short name: `lightning_unlearn.FNNModule` is `fnn`\."
    ):
        check_methods({"lightning_unlearn.FNNModule": {}}, available=pipeline.METHODS)


def test_a_misspelt_method_name_gets_the_closest() -> None:
    with pytest.raises(ValueError, match=r"but got \['forsakn'\]\. Did you mean `forsaken`\?"):
        check_methods({"forsakn": {}}, available=pipeline.METHODS)


def test_fnn_early_stopping_is_checked_against_mia_early_stopping() -> None:
    with pytest.raises(
        ValueError,
        match=r"Expected `early_stopping` of `fnn` to be from \[.*'tolerance'\] \(the arguments of MIAEarlyStopping\),"
        r" but got `tolerence`\. Did you mean `tolerance`\?",
    ):
        check_methods({"fnn": {"early_stopping": {"tolerence": 0.1}}}, available=pipeline.METHODS)
    with pytest.raises(TypeError, match=r"Expected `early_stopping` of `fnn` to be a mapping of MIAEarlyStopping"):
        check_methods({"fnn": {"early_stopping": 0.5}}, available=pipeline.METHODS)


def test_settings_that_are_not_a_mapping_are_refused() -> None:
    with pytest.raises(TypeError, match=r"Expected the settings of `smu` to be a mapping of keyword arguments"):
        check_methods({"smu": 3}, available=pipeline.METHODS)  # type: ignore[dict-item]


def test_valid_settings_come_back_as_plain_dictionaries() -> None:
    methods = {"forsaken[nearest]": {"posterior": "nearest", "iterations": 40, "initial_gain": 1e-3}, "smu": None}
    assert check_methods(methods, available=pipeline.METHODS) == {
        "forsaken[nearest]": {"posterior": "nearest", "iterations": 40, "initial_gain": 1e-3},
        "smu": {},
    }


def test_a_bare_forsaken_is_the_paper_configuration_and_its_row_says_so() -> None:
    checked = check_methods({"forsaken": {"iterations": 40}, "forsaken[recommended]": None}, pipeline.METHODS)
    assert checked == {"forsaken[paper]": {"iterations": 40}, "forsaken[recommended]": {}}


@pytest.mark.parametrize(
    ("name", "settings", "departure"),
    [
        ("forsaken", {"posterior": "nearest"}, "posterior='nearest'"),
        ("forsaken[paper]", {"preservation_weight": 1.0}, "preservation_weight=1.0"),
        ("forsaken[paper]", {"stopping": "validation"}, "stopping='validation'"),
    ],
)
def test_a_setting_outside_the_papers_algorithm_needs_another_name(
    name: str, settings: dict[str, Any], departure: str
) -> None:
    with pytest.raises(
        ValueError,
        match=rf"`{name.replace('[', '.').replace(']', '.')}` runs `forsaken\[paper\]`: Expected the settings of"
        rf" Forsaken's paper configuration to keep the paper's algorithm, but {departure} leave it: name the"
        r" configuration otherwise \(e\.g\. `forsaken\[recommended\]` or a label of your own\)\.",
    ):
        check_methods({name: settings}, available=pipeline.METHODS)


def test_one_configuration_named_twice_is_refused() -> None:
    with pytest.raises(
        ValueError, match=r"Expected each method once, but `forsaken` names `forsaken\[paper\]` again\."
    ):
        check_methods({"forsaken[paper]": {}, "forsaken": {}}, available=pipeline.METHODS)


def test_brackets_on_a_method_without_configurations_are_an_unknown_name() -> None:
    with pytest.raises(ValueError, match=r"but got \['fnn\[fast\]'\]"):
        check_methods({"fnn[fast]": {}}, available=pipeline.METHODS)


def test_resolved_settings_of_a_configuration_hold_its_values() -> None:
    recommended = resolved_settings("forsaken[recommended]", {"iterations": 50})
    assert recommended["posterior"] == "shadow" and recommended["iterations"] == 50
    assert recommended["stopping"] == "validation" and recommended["preservation_weight"] == 10.0
    assert recommended["step_scale"] == "relative"
    paper = resolved_settings("forsaken[paper]", {})
    assert paper["posterior"] == "per_class" and paper["iterations"] == 20 and paper["preservation_weight"] == 0.0


def test_resolved_settings_fill_every_default() -> None:
    resolved = resolved_settings("sisa", {"num_shards": 3})
    assert resolved["num_shards"] == 3 and resolved["num_slices"] == 5  # the pipeline's default, not the class's
    assert resolved["dp_epsilon"] is None
    fnn = resolved_settings("fnn", {"early_stopping": {"tolerance": 0.1}})
    assert fnn["policy"] == "rank" and fnn["early_stopping"]["tolerance"] == 0.1
    assert fnn["early_stopping"]["reference"] == 0.5
    assert fnn["early_stopping"]["accuracy_floor"] == "the original model's test accuracy − 0.02"


# ---------------------------------------------------------------------------- the adapters agree
class _ReceivedError(Exception):
    def __init__(self, kwargs: dict[str, Any]) -> None:
        super().__init__("received")
        self.kwargs = kwargs


def _receiver_of(original: Any) -> Any:
    """A stand-in for ``original`` that reports the keyword arguments it is built with (a subclass, for methods)."""

    def received(*args: Any, **kwargs: Any) -> Any:
        raise _ReceivedError(kwargs)

    if isinstance(original, type):
        return type(original.__name__, (original,), {"__init__": received})
    return received


@pytest.mark.parametrize("name", sorted(METHOD_SETTINGS))
def test_each_setting_reaches_the_class_the_check_names(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pipeline's adapter passes every setting the check accepts to the receiver the check reads."""
    spec = METHOD_SETTINGS[name]
    module_name, _, class_name = spec.receiver.partition(":")
    module = importlib.import_module(module_name)
    monkeypatch.setattr(module, class_name, _receiver_of(getattr(module, class_name)))
    method_settings_module._resolve.cache_clear()  # the receiver is looked up again, as the stand-in
    fresh = functools.cache(method_settings_module._resolve.__wrapped__)
    monkeypatch.setattr(method_settings_module, "_resolve", fresh)
    monkeypatch.setattr(pipeline, "predict", lambda *args: SimpleNamespace(accuracy=lambda: 0.9))
    context = SimpleNamespace(
        datamodule=SimpleNamespace(dataloader=lambda split: None),
        recipe=None,
        target=None,
        recorder=None,
        work_dir=tmp_path,
        progress_bar=False,
        seed=0,
    )
    settings = {key: object() for key in spec.parameters() if key not in spec.extra and key not in spec.nested}
    # a method run in named configurations, under a label of one's own: the settings alone, as given
    run, _ = pipeline._adapter(f"{name}[mine]" if spec.configure else name, {})
    with pytest.raises(_ReceivedError) as received:
        run(context, **settings)
    for key, value in settings.items():
        assert received.value.kwargs.get(key) is value, f"{name}: `{key}` does not reach {spec.receiver_name}"
    for key, value in spec.pipeline_defaults.items():
        if key in spec.nested:
            continue  # computed during the run (FNN's accuracy floor), described in words
        with pytest.raises(_ReceivedError) as defaults:
            run(context)
        assert defaults.value.kwargs[key] == value, f"{name}: the pipeline's default of `{key}` changed"


def test_the_module_example_runs() -> None:
    import doctest

    module = sys.modules["lightning_unlearn.method_settings"]
    failures, _ = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert failures == 0
