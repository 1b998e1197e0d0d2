"""The unlearning experiment, end to end.

train target and shadow → fit the membership oracle → unlearn with each method → retrain →
evaluate → compare. The target (with the per-epoch forget gradients SMU needs) and the oracle
are cached on disk keyed by their configuration, so comparing methods trains them once and a
second run reuses them. Retraining always runs: its time is the denominator of every speed-up
and must be measured in the same run as the methods'.

Every method is run through a small adapter, :data:`METHODS`, which returns the unlearned
model and its time. One timing policy (docs/evaluation.md, "Timing policy"): a method's time
is everything it needs to produce its model, including the evaluations its own stopping rule
reads (on the validation pair), and never the final report; retraining's time is its training
alone, with the target's recipe; each is timed ``repeats`` times and the median reported.
"""

from __future__ import annotations

import copy
import functools
import json
import logging
import os
import re
import shutil
import statistics
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.loggers import Logger
from torch import nn

from lightning_unlearn.cache import ArtifactCache
from lightning_unlearn.datamodules.base import UnlearningDataModule
from lightning_unlearn.datamodules.digits import DigitsDataModule
from lightning_unlearn.inference import predict
from lightning_unlearn.method_settings import split_method_name
from lightning_unlearn.metrics.oracle import ShadowModelOracle
from lightning_unlearn.metrics.report import UnlearningReport
from lightning_unlearn.modules.base import fit_method
from lightning_unlearn.preflight import check_experiment
from lightning_unlearn.progress import show_progress
from lightning_unlearn.storage import atomic_write_text
from lightning_unlearn.trainers import DeviceSettings, quiet_lightning
from lightning_unlearn.training import TrainingRecipe, train_classifier

__all__ = ["DEFAULT_METHODS", "METHODS", "ExperimentContext", "ExperimentResult", "MethodOutcome", "run_experiment"]

log = logging.getLogger(__name__)


@dataclass
class MethodOutcome:
    """What a method adapter returns.

    Attributes:
        model: the unlearned classifier, a plain ``nn.Module``.
        seconds: wall-clock time of everything the method needs to produce its model, the
            evaluations its own stopping rule reads included (never the final report).
        history: per-iteration or per-epoch records for the curves (optional).
        details: anything else worth reporting (e.g. shards retrained).
    """

    model: nn.Module
    seconds: float
    history: list[dict[str, Any]] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class ExperimentContext:
    """Everything a method adapter may use: the splits, the recipe, the trained target (with the
    forget gradients SMU recorded while it trained), the retrained model, the fitted oracle (and its
    shadow model), a scratch folder, and the run's settings. No method may use the retrained model."""

    datamodule: UnlearningDataModule
    recipe: TrainingRecipe
    target: nn.Module
    recorder: Any
    retrained: nn.Module
    oracle: ShadowModelOracle
    work_dir: Path
    progress_bar: bool
    seed: int
    _shadow: tuple[nn.Module, float] | None = field(default=None, repr=False)

    @property
    def device_settings(self) -> DeviceSettings:
        """Where every method runs: the recipe's accelerator, devices, strategy and precision."""
        return self.recipe.device_settings()

    def shadow_model(self) -> tuple[nn.Module, float]:
        """The membership oracle's shadow model and the seconds its training took.

        The target's recipe trained on ``shadow_train``, the half of the data the target never
        saw, so it never saw the forget set. The oracle's own when it kept it; otherwise (an oracle
        cached by an older run, or none) the same model trained again here with the oracle's
        recipe, once per run.
        """
        if self._shadow is None:
            oracle_shadow = getattr(self.oracle, "shadow_model", None)
            if isinstance(oracle_shadow, nn.Module):
                self._shadow = (oracle_shadow, float(self.oracle.shadow_seconds))
            else:
                trained = train_classifier(
                    self.recipe, self.datamodule, "shadow_train", enable_progress_bar=self.progress_bar
                )
                self._shadow = (trained.module.backbone.eval(), trained.seconds)
        return self._shadow


def _configured_forsaken(configuration: str | None, settings: Mapping[str, Any]) -> dict[str, Any]:
    """The named configuration's settings with ``settings`` on top; for a label of the user's own, ``settings``
    on the module's defaults."""
    from lightning_unlearn.modules.forsaken import FORSAKEN_CONFIGURATIONS, forsaken_configuration

    if configuration is not None and configuration in FORSAKEN_CONFIGURATIONS:
        return forsaken_configuration(configuration, **settings)
    return dict(settings)


def _forsaken_settings(
    context: ExperimentContext, configuration: str | None, settings: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The module's settings (the named configuration's, ``settings`` on top, the shadow model filled in),
    and what the report says about the shadow model."""
    resolved = _configured_forsaken(configuration, settings)
    shadow: dict[str, Any] = {}
    if resolved.get("posterior") == "shadow" and resolved.get("shadow_model") is None:
        model, seconds = context.shadow_model()
        resolved["shadow_model"] = model
        shadow = {
            "shadow_model": "the membership oracle's shadow model (the target's recipe on shadow_train), trained once"
            f" in {seconds:.2f} s before any deletion request and not counted in this method's time (docs/forsaken.md)",
            "shadow_model_seconds": seconds,
        }
    return resolved, shadow


def _check_forsaken_rows(
    chosen: Mapping[str, Mapping[str, Any]], recipe: TrainingRecipe, datamodule: UnlearningDataModule
) -> None:
    """Build every Forsaken row's module on an untrained backbone of the recipe, so that a setting the architecture
    cannot take (a ``head`` it lacks, a value out of range) fails before anything trains."""
    from lightning_unlearn.modules.forsaken import ForsakenModule

    rows = [
        (split_method_name(name)[1], settings)
        for name, settings in chosen.items()
        if split_method_name(name)[0] == "forsaken" and "class_path" not in settings
    ]
    if not rows:
        return
    backbone = recipe.build_backbone(datamodule)
    for configuration, settings in rows:
        resolved = _configured_forsaken(configuration, settings)
        if resolved.get("posterior") == "shadow" and resolved.get("shadow_model") is None:
            resolved["shadow_model"] = backbone  # a stand-in: the oracle's shadow model has this architecture
        ForsakenModule(backbone, **resolved)


def _forsaken(
    context: ExperimentContext, receiver: type | None = None, configuration: str | None = None, **settings: Any
) -> MethodOutcome:
    from lightning_unlearn.modules.forsaken import ForsakenModule, fit_forsaken

    resolved, shadow = _forsaken_settings(context, configuration, settings)
    module = (receiver or ForsakenModule)(context.target, **resolved)
    seconds = fit_forsaken(
        module,
        context.datamodule,
        seed=context.seed,
        device_settings=context.device_settings,
        progress_bar=context.progress_bar,
    )
    details = {
        "configuration": configuration,
        "settings": settings,
        "iterations": module.iterations,
        "iterations_run": module.iteration,
        "generator_parameters": module.generator_parameter_count,
        **shadow,
    }
    if module.stopped_at is not None:
        details["stopped_at"] = module.stopped_at
    return MethodOutcome(module.unlearned_model(), seconds, history=list(module.history), details=details)


def _fnn(context: ExperimentContext, receiver: type | None = None, **settings: Any) -> MethodOutcome:
    from lightning_unlearn.callbacks import MIAEarlyStopping
    from lightning_unlearn.modules.fnn import FNNModule

    stopping = dict(settings.pop("early_stopping", {}) or {})
    start = time.perf_counter()
    if "accuracy_floor" not in stopping:  # the original's accuracy on the validation split, read inside the timer
        original = predict(context.target, context.datamodule.dataloader("validation")).accuracy()
        stopping["accuracy_floor"] = max(0.0, original - 0.02)
    stopper = MIAEarlyStopping(**stopping)
    module = (receiver or FNNModule)(context.target, seed=context.seed, **settings)
    # the per-epoch MIA on the validation pair is part of the method: inside the timer
    fit_method(
        module,
        context.datamodule,
        context.device_settings,
        seed=context.seed,
        progress_bar=context.progress_bar,
        callbacks=[stopper],
    )
    seconds = time.perf_counter() - start
    if stopper.best_state is not None:
        module.load_state_dict(stopper.best_state)
    details = {
        "accepted_epoch": stopper.accepted_epoch,
        "epochs_run": len(module.history),
        "accuracy_floor": stopper.accuracy_floor,
        "mia_reference": stopper.reference,
    }
    return MethodOutcome(module.unlearned_model(), seconds, history=list(module.history), details=details)


def _sisa(context: ExperimentContext, dp: bool = False, **settings: Any) -> MethodOutcome:
    from lightning_unlearn.modules.sisa import SISADPEnsemble, SISAEnsemble

    settings.setdefault("num_shards", 5)
    settings.setdefault("num_slices", 5)
    settings.setdefault("progress_bar", context.progress_bar)
    folder = context.work_dir / ("sisa_dp" if dp else "sisa")
    # A fresh ensemble every run: a folder left by an earlier run has already forgotten these
    # samples (requests are idempotent), which would time a no-op.
    shutil.rmtree(folder, ignore_errors=True)
    ensemble_class = SISADPEnsemble if dp else SISAEnsemble
    ensemble = ensemble_class(context.datamodule, context.recipe, checkpoint_dir=folder, seed=context.seed, **settings)
    training = ensemble.fit()
    report = ensemble.unlearn(context.datamodule.splits["forget"].indices)
    if dp:
        print(_privacy_line(ensemble), flush=True)
    details = {
        "shards": settings["num_shards"],
        "slices": settings["num_slices"],
        "shards_retrained": report.shards_retrained,
        "slices_retrained": report.slices_retrained,
        "ensemble_training_seconds": training.seconds,
    }
    if dp:
        details["privacy"] = _privacy_line(ensemble)
    return MethodOutcome(ensemble.as_module(), report.seconds, details=details)


def _privacy_line(ensemble: Any) -> str:
    """What SISA-DP's privacy is: the mechanism and, for DP-SGD, the ε its accountant spent per constituent."""
    if ensemble.dp_mechanism == "dp_sgd":
        spent = max(ensemble.dp_spent_epsilon.values())
        steps = [value for values in ensemble.dp_step_noise_multipliers.values() for value in values]
        return (
            f"SISA-DP: DP-SGD, each constituent ({spent:.2f}, {ensemble.dp_delta:g})-DP by the RDP accountant (target"
            f" ε = {ensemble.dp_epsilon:g}); noise multiplier per step from {max(steps):.3g} (first slice) down to"
            f" {min(steps):.3g} (whole shard), per-sample clip {ensemble.dp_clip_norm:g}"
        )
    return (
        f"SISA-DP: output perturbation, each constituent ({ensemble.dp_epsilon:g}, {ensemble.dp_delta:g})-DP;"
        f" Gaussian noise σ = {ensemble.dp_sigma:.3f} on every parameter"
    )


def _method(context: ExperimentContext, receiver: Any, **settings: Any) -> MethodOutcome:
    """Any other :class:`~lightning_unlearn.modules.base.UnlearningMethod`: the baselines and users' own methods."""
    from lightning_unlearn.modules.baselines import SMUBaseline, UnlearningBaseline

    if "optimizer" in settings:
        settings["optimizer"] = _optimizer(receiver.__name__, settings["optimizer"])
    if issubclass(receiver, SMUBaseline):
        method = receiver(context.target, context.recorder, **settings)
    else:
        method = receiver(context.target, **settings)
    trainer_kwargs: dict[str, Any] = {"limit_val_batches": 0} if isinstance(method, UnlearningBaseline) else {}
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="SMU's subtraction is exact only")  # in the details instead
        run = fit_method(
            method,
            context.datamodule,
            context.device_settings,
            seed=context.seed,
            progress_bar=context.progress_bar,
            **trainer_kwargs,
        )
    details = _smu_details(context) if isinstance(method, SMUBaseline) else {}
    return MethodOutcome(run.model, run.seconds, history=list(method.history), details=details)


def method_adapter(receiver: type) -> Callable[..., MethodOutcome]:
    """How the pipeline runs an :class:`~lightning_unlearn.modules.base.UnlearningMethod` subclass.

    A subclass of :class:`~lightning_unlearn.modules.ForsakenModule` runs like ``forsaken``, one
    of :class:`~lightning_unlearn.modules.FNNModule` like ``fnn`` (with its early stopping), and
    any other (the baselines, a user's own method) is built from the target and its settings and
    fitted once.

    Raises:
        TypeError: ``receiver`` is not an UnlearningMethod subclass.
    """
    from lightning_unlearn.modules.base import UnlearningMethod
    from lightning_unlearn.modules.fnn import FNNModule
    from lightning_unlearn.modules.forsaken import ForsakenModule

    if not (isinstance(receiver, type) and issubclass(receiver, UnlearningMethod)):
        raise TypeError(f"Expected a subclass of UnlearningMethod, but got {receiver!r}.")
    if issubclass(receiver, ForsakenModule):
        return functools.partial(_forsaken, receiver=receiver)
    if issubclass(receiver, FNNModule):
        return functools.partial(_fnn, receiver=receiver)
    return functools.partial(_method, receiver=receiver)


def _named(name: str) -> Callable[..., MethodOutcome]:
    """The adapter of a short method name, resolved when it runs (the modules load on first use)."""

    def run(context: ExperimentContext, **settings: Any) -> MethodOutcome:
        from lightning_unlearn.method_settings import METHOD_SETTINGS, resolve_receiver

        return method_adapter(resolve_receiver(METHOD_SETTINGS[name].receiver))(context, **settings)

    run.__name__ = f"run_{name}"
    return run


def _adapter(name: str, settings: Mapping[str, Any]) -> tuple[Callable[..., MethodOutcome], dict[str, Any]]:
    """The adapter and settings of one entry of ``methods``: a short name (``forsaken[label]`` for a Forsaken
    configuration of any label), or any name with a ``class_path``."""
    if "class_path" in settings:
        from lightning_unlearn.method_settings import resolve_receiver

        return method_adapter(resolve_receiver(settings["class_path"])), dict(settings.get("init_args") or {})
    if name in METHODS:
        return METHODS[name], dict(settings)
    from lightning_unlearn.method_settings import split_method_name

    base, label = split_method_name(name)
    if base != "forsaken":
        raise ValueError(f"Expected a method name from {sorted(METHODS)}, but got {name!r}.")
    return functools.partial(_named("forsaken"), configuration=label), dict(settings)


def _optimizer(name: str, setting: Any) -> Any:
    """A baseline's ``optimizer``: a callable, or ``{class_path: torch.optim.SGD, init_args: {lr: 0.01}}``."""
    if callable(getattr(setting, "as_dict", None)):  # the command line's reading of a YAML mapping
        setting = setting.as_dict()
    if not isinstance(setting, Mapping):
        return setting  # a callable, checked by the receiver
    if not isinstance(setting.get("class_path"), str):
        raise TypeError(
            f"Expected `optimizer` of `{name}` to be a callable or a mapping with `class_path` (e.g. torch.optim.SGD)"
            f" and `init_args`, but got {setting!r}."
        )
    import functools
    import importlib

    path = setting["class_path"] if "." in setting["class_path"] else f"torch.optim.{setting['class_path']}"
    module, _, attribute = path.rpartition(".")
    optimizer_class = getattr(importlib.import_module(module), attribute, None)
    if not (isinstance(optimizer_class, type) and issubclass(optimizer_class, torch.optim.Optimizer)):
        raise ValueError(f"Expected `optimizer.class_path` of `{name}` to name a torch optimiser, but got {path!r}.")
    init_args = dict(setting.get("init_args") or {})
    init_args.pop("params", None)  # the command line fills it in as null; the baseline passes its parameters
    return functools.partial(optimizer_class, **init_args)


#: Method name → adapter. Settings from the config are passed on as keyword arguments.
METHODS: dict[str, Callable[..., MethodOutcome]] = {
    # Forsaken by configuration (forsaken.FORSAKEN_CONFIGURATIONS); `forsaken` alone runs the paper's, and any other
    # label, `forsaken[mine]`, runs the settings given on the module's defaults.
    "forsaken[paper]": functools.partial(_named("forsaken"), configuration="paper"),
    "forsaken[recommended]": functools.partial(_named("forsaken"), configuration="recommended"),
    "fnn": _named("fnn"),
    "sisa": _sisa,
    "sisa_dp": lambda context, **settings: _sisa(context, dp=True, **settings),
    **{
        name: _named(name)
        for name in ("smu", "finetune", "neggrad", "neggrad_plus", "random_labels", "salun", "scrub", "l1_sparse")
    },
}

#: The comparison the main job runs (retraining always runs beside them).
DEFAULT_METHODS: dict[str, dict[str, Any]] = {
    "forsaken[recommended]": {},
    "fnn": {},
    "sisa": {},
    "smu": {},
    "finetune": {},
}


@dataclass
class ExperimentResult:
    """The outcome of :func:`run_experiment`."""

    report: UnlearningReport
    outcomes: dict[str, MethodOutcome]
    stage_seconds: dict[str, float]
    files: list[Path]
    reused: dict[str, bool]


def run_experiment(
    datamodule: UnlearningDataModule | None = None,
    recipe: TrainingRecipe | None = None,
    methods: Mapping[str, Mapping[str, Any] | None] | None = None,
    output_dir: str | os.PathLike[str] | None = "outputs/digits",
    cache_dir: str | os.PathLike[str] | None = ".cache/lightning-unlearn",
    logger: Logger | None = None,
    progress_bar: bool | None = None,
    plots: bool = True,
    seed: int = 0,
    repeats: int = 3,
    lira: int = 0,
) -> ExperimentResult:
    """Run the whole comparison and write the report.

    Args:
        datamodule: the splits (default: the digits OOD scenario, no download needed).
        recipe: how the target, the shadow and the retrained model are trained.
        methods: method name → its settings; default :data:`DEFAULT_METHODS`. A name is a key of
            :data:`METHODS` with its keyword arguments, or any name (the report's row) with
            ``{"class_path": "my_package.MyMethod", "init_args": {...}}``: a subclass of
            :class:`~lightning_unlearn.modules.base.UnlearningMethod` from any importable package.
        output_dir: where ``report.md``, ``report.json``, ``manifest.json`` and the plots go.
        cache_dir: where trained targets and oracles are cached; ``None`` disables the cache.
        logger: a Lightning logger (e.g. ``WandbLogger``) that receives the table and plots.
        progress_bar: progress bars (on stderr) during training stages; ``None``: when stderr is a terminal.
        plots: draw the PNG pictures.
        seed: seeds every method.
        repeats: how many times each method and retraining are timed (the same number for all,
            every repeat from scratch); the report gives the median, report.json min and max too.
            The model of the first repeat is the one evaluated.
        lira: how many LiRA reference models to train (e.g. 16; trained once, then cached) for the
            per-example attack beside the population MIA in the report; 0 (the default here) leaves
            LiRA off. The command line's main job uses 16.

    Returns:
        The report, each method's outcome, each stage's time and the files written.

    Raises:
        ValueError, TypeError: an unknown method name, setting or setting value, raised before anything
            trains (see :func:`~lightning_unlearn.preflight.check_experiment`); ``repeats`` below 1;
            ``lira`` neither 0 nor at least 4.
        FileNotFoundError: a data file is missing, raised before anything trains.
    """
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"Expected `repeats` to be a positive integer, but got {repeats!r}.")
    if isinstance(lira, bool) or not isinstance(lira, int) or lira < 0 or 0 < lira < 4:
        raise ValueError(f"Expected `lira` to be 0 (off) or at least 4 reference models, but got {lira!r}.")
    with quiet_lightning():
        return _run(
            datamodule, recipe, methods, output_dir, cache_dir, logger, progress_bar, plots, seed, repeats, lira
        )


def _run(
    datamodule: UnlearningDataModule | None,
    recipe: TrainingRecipe | None,
    methods: Mapping[str, Mapping[str, Any] | None] | None,
    output_dir: str | os.PathLike[str] | None,
    cache_dir: str | os.PathLike[str] | None,
    logger: Logger | None,
    progress_bar: bool | None,
    plots: bool,
    seed: int,
    repeats: int,
    lira: int = 0,
) -> ExperimentResult:
    datamodule = datamodule if datamodule is not None else DigitsDataModule()
    recipe = recipe if recipe is not None else TrainingRecipe()
    chosen = check_experiment(datamodule, methods or DEFAULT_METHODS, available=METHODS)
    progress_bar = show_progress(progress_bar)
    stage_seconds: dict[str, float] = {}
    reused: dict[str, bool] = {}
    cache = ArtifactCache(cache_dir)
    out = None if output_dir is None else Path(output_dir)
    quiet = {"enable_progress_bar": progress_bar}

    def stage(title: str) -> None:
        print(f"\n== {title}", flush=True)

    where = recipe.device_settings()
    device = where.inference_device()
    print(
        f"devices: every stage trains with accelerator={where.accelerator!r}, devices={where.devices!r},"
        f" strategy={where.strategy!r}; evaluation on {device}",
        flush=True,
    )
    stage("Splits")
    begin = time.perf_counter()
    datamodule.prepare_data()
    datamodule.setup("fit")
    print(datamodule.summary(), flush=True)
    _check_forsaken_rows(chosen, recipe, datamodule)
    stage_seconds["splits"] = time.perf_counter() - begin
    base_config = {"splits": datamodule.splits_digest(), "recipe": recipe.describe(datamodule)}

    stage("Target (with the forget gradients SMU needs)")
    begin = time.perf_counter()
    target_entry = cache.get_or_build(
        "target",
        base_config,
        build=lambda: _train_target(recipe, datamodule, quiet),
        save=_save_target,
        load=lambda folder: _load_target(folder, recipe, datamodule),
    )
    target, recorder, target_seconds = target_entry.value
    reused["target"] = target_entry.from_cache
    stage_seconds["target"] = time.perf_counter() - begin
    print(
        f"target: {'reused from ' + str(target_entry.folder) if target_entry.from_cache else 'trained'}"
        f" (training took {target_seconds:.1f} s)",
        flush=True,
    )

    stage("Shadow model and membership oracle")
    begin = time.perf_counter()
    oracle_entry = cache.get_or_build(
        "oracle",
        {**base_config, "oracle": ShadowModelOracle(seed=seed).config()},
        build=lambda: ShadowModelOracle(seed=seed).fit(recipe, datamodule, trainer_overrides=quiet),
        save=_save_oracle,
        load=lambda folder: _load_oracle(folder, recipe, datamodule),
    )
    oracle: ShadowModelOracle = oracle_entry.value
    reused["oracle"] = oracle_entry.from_cache
    stage_seconds["oracle"] = time.perf_counter() - begin
    print(f"oracle: {'reused from ' + str(oracle_entry.folder) if oracle_entry.from_cache else 'fitted'}", flush=True)

    stage("Full retraining on retain (the gold standard; its time is every speed-up's denominator)")
    retrain_runs = [train_classifier(recipe, datamodule, "retain", **quiet) for _ in range(repeats)]
    retrained = retrain_runs[0].module.backbone
    retrain_seconds = [run.seconds for run in retrain_runs]
    stage_seconds["retrain"] = statistics.median(retrain_seconds)
    print(f"retrained in {_seconds_text(retrain_seconds)}", flush=True)

    # LiRA (off unless `lira` > 0): reference models seeded apart from the retrained model, cached.
    lira_statistics = None
    if lira:
        from lightning_unlearn.metrics.lira_references import lira_references

        stage(f"LiRA reference models ({lira}, on retain plus half the candidates each; trained once, then cached)")
        begin = time.perf_counter()
        lira_entry = lira_references(
            recipe, datamodule, num_models=lira, seed=seed, cache_dir=cache_dir, progress_bar=progress_bar
        )
        lira_statistics = lira_entry.value
        reused["lira_references"] = lira_entry.from_cache
        stage_seconds["lira_references"] = time.perf_counter() - begin
        print(
            f"LiRA reference models: {'reused from ' + str(lira_entry.folder) if lira_entry.from_cache else 'trained'}"
            f" (training took {lira_statistics.training_seconds:.1f} s)",
            flush=True,
        )

    work_dir = (out if out is not None else Path(".")) / "work"
    context = ExperimentContext(
        datamodule=datamodule,
        recipe=recipe,
        target=target,
        recorder=recorder,
        retrained=retrained,
        oracle=oracle,
        work_dir=work_dir,
        progress_bar=progress_bar,
        seed=seed,
    )
    outcomes: dict[str, MethodOutcome] = {}
    method_seconds: dict[str, list[float]] = {}
    for name, settings in chosen.items():
        stage(f"Unlearning with {name}")
        try:
            adapter, init_args = _adapter(name, settings)
            runs = [adapter(context, **copy.deepcopy(init_args)) for _ in range(repeats)]
        except KeyboardInterrupt:
            print(
                f"\nInterrupted while unlearning with {name}. Nothing of this run was written to {out}; the cached"
                f" target and oracle in {cache_dir} are complete, so rerunning the same command starts at the"
                " unlearning.",
                flush=True,
            )
            raise
        outcome = runs[0]
        method_seconds[name] = [run.seconds for run in runs]
        outcome.seconds = statistics.median(method_seconds[name])
        outcomes[name] = outcome
        stage_seconds[name] = outcome.seconds
        print(f"{name}: unlearning took {_seconds_text(method_seconds[name])}", flush=True)

    stage(f"Evaluation (on {device})")
    begin = time.perf_counter()
    evaluated = [target, retrained, *(outcome.model for outcome in outcomes.values())]
    try:
        for model in evaluated:  # where the recipe's stages ran; the report's figures are read there
            model.to(device)
        report = UnlearningReport.evaluate(
            datamodule,
            oracle,
            original=target,
            retrained=retrained,
            unlearned={name: outcome.model for name, outcome in outcomes.items()},
            times={**method_seconds, "retrained": retrain_seconds},
            mia_seed=seed,
            lira=lira_statistics,
        )
    finally:
        for model in evaluated:
            model.cpu()
    stage_seconds["evaluation"] = time.perf_counter() - begin
    print(report, flush=True)

    files: list[Path] = []
    if out is not None:
        files += _write_outputs(out, datamodule, report, outcomes, stage_seconds, reused)
        files.append(_write_run_record(out, datamodule, recipe, chosen, cache_dir, progress_bar, plots, seed, repeats))
        if plots:
            files += _draw_plots(out, context, report, outcomes)
        for path in files:
            print(f"wrote {path}")
    if logger is not None:
        _log_to_logger(logger, report, outcomes, [f for f in files if f.suffix == ".png"])
    return ExperimentResult(report=report, outcomes=outcomes, stage_seconds=stage_seconds, files=files, reused=reused)


def _seconds_text(seconds: list[float]) -> str:
    if len(seconds) == 1:
        return f"{seconds[0]:.3f} s"
    return f"{statistics.median(seconds):.3f} s (median of {len(seconds)}, {min(seconds):.3f}–{max(seconds):.3f})"


# ---------------------------------------------------------------------------- stages
def _train_target(
    recipe: TrainingRecipe, datamodule: UnlearningDataModule, quiet: Mapping[str, Any]
) -> tuple[nn.Module, Any, float]:
    """The target, trained with a recorder of the forget samples' per-epoch gradients (for SMU)."""
    from lightning_unlearn.modules.baselines import ForgetGradientRecorder

    recorder = ForgetGradientRecorder(datamodule.splits["forget"].indices)
    trained = train_classifier(recipe, datamodule, "target_train", callbacks=[recorder], **quiet)
    return trained.module.backbone, recorder, trained.seconds


def _save_target(value: tuple[nn.Module, Any, float], folder: Path) -> None:
    backbone, recorder, seconds = value
    torch.save(backbone.state_dict(), folder / "target.pt")
    torch.save(recorder.state_dict(), folder / "forget_gradients.pt")  # tensors and plain values only
    (folder / "training.json").write_text(json.dumps({"seconds": seconds}))


def _load_target(
    folder: Path, recipe: TrainingRecipe, datamodule: UnlearningDataModule
) -> tuple[nn.Module, Any, float]:
    backbone = recipe.build_backbone(datamodule)
    backbone.load_state_dict(torch.load(folder / "target.pt", weights_only=True))
    from lightning_unlearn.modules.baselines import ForgetGradientRecorder

    state = torch.load(folder / "forget_gradients.pt", weights_only=True)
    recorder = ForgetGradientRecorder(state["forget_indices"])
    recorder.load_state_dict(state)
    seconds = float(json.loads((folder / "training.json").read_text())["seconds"])
    return backbone.eval(), recorder, seconds


def _save_oracle(oracle: ShadowModelOracle, folder: Path) -> None:
    """The oracle, and its shadow model's weights beside it: Forsaken's recommended P reads the shadow model."""
    oracle.save(folder / "oracle.pt")
    if isinstance(oracle.shadow_model, nn.Module):
        from lightning_unlearn.modules.base import target_network

        torch.save(target_network(oracle.shadow_model).state_dict(), folder / "shadow.pt")


def _load_oracle(folder: Path, recipe: TrainingRecipe, datamodule: UnlearningDataModule) -> ShadowModelOracle:
    oracle = ShadowModelOracle.load(folder / "oracle.pt")
    weights = folder / "shadow.pt"
    if weights.is_file():  # an oracle cached before the shadow model was kept has none: it is trained again
        backbone = recipe.build_backbone(datamodule)
        backbone.load_state_dict(torch.load(weights, weights_only=True))
        oracle.shadow_model = backbone.eval()
    return oracle


def _write_outputs(
    out: Path,
    datamodule: UnlearningDataModule,
    report: UnlearningReport,
    outcomes: Mapping[str, MethodOutcome],
    stage_seconds: Mapping[str, float],
    reused: Mapping[str, bool],
) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    manifest = datamodule.save_manifest(out / "manifest.json")
    stages = "\n".join(f"| {name} | {seconds:.3f} |" for name, seconds in stage_seconds.items())
    details = "\n".join(
        f"- **{name}**: " + ", ".join(f"{key} = {value}" for key, value in outcome.details.items())
        for name, outcome in outcomes.items()
        if outcome.details
    )
    markdown = (
        f"# Unlearning report — {datamodule.dataset_name}, kind={datamodule.kind}\n\n"
        f"{report.to_markdown()}\n\n## Time per stage (seconds)\n\n| stage | seconds |\n| --- | ---: |\n{stages}\n\n"
        f"Reused from the cache: {', '.join(k for k, v in reused.items() if v) or 'nothing'}.\n\n"
        + (f"## Method details\n\n{details}\n" if details else "")
    )
    markdown_path = atomic_write_text(out / "report.md", markdown)  # a reader never sees half a report
    payload = {
        "dataset": datamodule.dataset_name,
        "kind": datamodule.kind,
        "report": report.to_dict(),
        "stage_seconds": dict(stage_seconds),
        "reused": dict(reused),
        "details": {name: outcome.details for name, outcome in outcomes.items()},
    }
    json_path = atomic_write_text(out / "report.json", json.dumps(payload, indent=2, default=str))
    return [manifest, markdown_path, json_path]


def _posterior_groups(model: nn.Module, datamodule: UnlearningDataModule) -> dict[str, torch.Tensor]:
    groups = {
        "members (retain)": "retain",
        "non-members (test)": "test",
        "forget": "forget",
        "unseen like forget": "heldout",
    }
    return {label: predict(model, datamodule.dataloader(split)).posteriors for label, split in groups.items()}


def _draw_plots(
    out: Path, context: ExperimentContext, report: UnlearningReport, outcomes: Mapping[str, MethodOutcome]
) -> list[Path]:
    from lightning_unlearn import plots

    files: list[Path] = []
    datamodule = context.datamodule
    forsaken = next((name for name in outcomes if split_method_name(name)[0] == "forsaken"), None)
    if forsaken is not None:
        details = outcomes[forsaken].details
        curve = _forsaken_curve(context, report, details.get("configuration"), details.get("settings", {}))
        files.append(
            plots.plot_forgetting_curve(
                [int(i) for i in curve["iteration"]],
                curve["fr"],
                curve["test_acc"],
                out / "forsaken_fr_accuracy.png",
                retrained_forgetting_rate=report.model("retrained").forgetting_rate,
                original_test_accuracy=report.model("original").test_accuracy,
            )
        )
    if "fnn" in outcomes and outcomes["fnn"].history:
        files.append(
            plots.plot_learning_unlearning_curve(
                outcomes["fnn"].history,
                out / "fnn_learning_unlearning.png",
                accepted_epoch=outcomes["fnn"].details.get("accepted_epoch"),
                mia_target=outcomes["fnn"].details.get("mia_reference", 0.5),
                title="FNN: accuracy and MIA score per epoch",
            )
        )
    shown = forsaken if forsaken is not None else next(iter(outcomes), None)
    if shown is not None:
        files.append(
            plots.plot_posterior_tsne(
                _posterior_groups(context.target, datamodule),
                _posterior_groups(outcomes[shown].model, datamodule),
                out / f"tsne_{re.sub(r'[^A-Za-z0-9.-]+', '_', shown).strip('_')}.png",
                method=shown,
                seed=context.seed,
            )
        )
    return files


def _forsaken_curve(
    context: ExperimentContext, report: UnlearningReport, configuration: str | None, settings: Mapping[str, Any]
) -> dict[str, list[float]]:
    """FR and test accuracy after each Forsaken iteration (Fig. 5), from an untimed re-run."""
    import lightning as L

    from lightning_unlearn.metrics.functional import forgetting_rate_from_membership
    from lightning_unlearn.modules.forsaken import ForsakenModule, fit_forsaken

    datamodule = context.datamodule
    module = ForsakenModule(context.target, **_forsaken_settings(context, configuration, settings)[0])
    snapshots: list[dict[str, torch.Tensor]] = []

    class _Snapshot(L.Callback):
        def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any) -> None:
            snapshots.append({k: v.clone() for k, v in module.unlearned_parameters().items()})

    where = context.device_settings
    fit_forsaken(module, datamodule, seed=context.seed, callbacks=[_Snapshot()], device_settings=where)
    oracle_before = _membership(context, context.target)
    curve: dict[str, list[float]] = {
        "iteration": [0],
        "fr": [0.0],
        "test_acc": [report.model("original").test_accuracy],
    }
    model = copy.deepcopy(context.target)
    for iteration, parameters in enumerate(snapshots, start=1):
        model.load_state_dict({**model.state_dict(), **parameters})
        curve["iteration"].append(iteration)
        curve["fr"].append(forgetting_rate_from_membership(oracle_before, _membership(context, model)))
        curve["test_acc"].append(predict(model, datamodule.dataloader("test")).accuracy())
    return curve


def _membership(context: ExperimentContext, model: nn.Module) -> torch.Tensor:
    oracle = context.oracle
    predictions = predict(model, context.datamodule.dataloader("forget"))
    return oracle.predict_membership_from_logits(predictions.logits, predictions.targets)


def _log_to_logger(
    logger: Logger, report: UnlearningReport, outcomes: Mapping[str, MethodOutcome], images: list[Path]
) -> None:
    """Send the curves, the comparison table and the plots to a Lightning logger."""
    for name, outcome in outcomes.items():
        for step, record in enumerate(outcome.history):
            numbers = {f"{name}/{k}": float(v) for k, v in record.items() if isinstance(v, (int, float))}
            if numbers:
                logger.log_metrics(numbers, step=step)
    rows = report.to_dict()["models"]
    columns = ["method", "FR", "CFR", "MIA", "test_acc", "test_acc_drop", "forget_acc", "seconds", "speedup"]
    data = [
        [
            row["name"],
            row["forgetting_rate"],
            row["catastrophic_forgetting_rate"],
            row["mia"].get("score"),
            row["test_accuracy"],
            row["test_accuracy_drop"],
            row["forget_accuracy"],
            row["seconds"],
            row["speedup"],
        ]
        for row in rows
    ]
    for row in data:
        logger.log_metrics(
            {f"report/{row[0]}/{col}": v for col, v in zip(columns[1:], row[1:]) if isinstance(v, float)}
        )
    if hasattr(logger, "log_table"):
        logger.log_table(key="comparison", columns=columns, data=data)
    if hasattr(logger, "log_image"):
        for image in images:
            logger.log_image(key=image.stem, images=[str(image)])
    logger.save()


# ---------------------------------------------------------------------------- the run's record
def _write_run_record(
    out: Path,
    datamodule: UnlearningDataModule,
    recipe: TrainingRecipe,
    methods: Mapping[str, Mapping[str, Any]],
    cache_dir: str | os.PathLike[str] | None,
    progress_bar: bool,
    plots: bool,
    seed: int,
    repeats: int,
) -> Path:
    """``run.json`` beside the report: every setting with its defaults, the versions and the device."""
    from lightning_unlearn.run_record import experiment_settings, write_run_record

    settings = experiment_settings(
        datamodule,
        recipe,
        methods,
        output_dir=str(out),
        cache_dir=None if cache_dir is None else str(cache_dir),
        progress_bar=progress_bar,
        plots=plots,
        seed=seed,
        repeats=repeats,
    )
    return write_run_record(out, settings)


def _smu_details(context: ExperimentContext) -> dict[str, Any]:
    """Whether SMU's update was exact: the report says so instead of a warning on every default run."""
    optimizer = getattr(context.recorder, "optimizer_name", None)
    if not optimizer:
        return {}
    if optimizer == "SGD":
        return {"update": "exact (the target trained with plain SGD)"}
    return {"update": f"heuristic (exact only for plain SGD; the target trained with {optimizer})"}
