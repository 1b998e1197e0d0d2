"""The ``lightning-unlearn`` command.

* ``lightning-unlearn fit|validate|test|predict --config FILE`` — Lightning's own CLI, for any
  LightningModule and any :class:`~lightning_unlearn.datamodules.UnlearningDataModule`
  given by ``class_path`` (see ``configs/``).
* ``lightning-unlearn experiment [--config FILE]`` — the main job on the embedded digits
  data: build the splits, train the target and the shadow, print what they learnt.

A mistake in the input is one line on stderr and exit status 2 (``--debug`` shows the traceback).
"""

from __future__ import annotations

import copy
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lightning.pytorch.cli import LightningCLI

from lightning_unlearn.datamodules.base import UnlearningDataModule

__all__ = ["UnlearnCLI", "main"]

LIGHTNING_COMMANDS = ("fit", "validate", "test", "predict")

USAGE = """\
usage: lightning-unlearn {experiment,fit,validate,test,predict} [options]

Machine unlearning for classifiers, with the evaluation that proves the forgetting happened.

commands:
  experiment   the main job: target, shadow and oracle, unlearning with each method,
               retraining, and the comparison table, on the embedded digits data
               (lightning-unlearn experiment --help for its options)
  fit          train a module with Lightning's CLI (e.g. --config configs/digits/target.yaml)
  validate     validate a module
  test         test a module
  predict      predict with a module

A mistake in the input is one line on stderr and exit status 2; --debug (anywhere) or
LIGHTNING_UNLEARN_DEBUG=1 shows the traceback.
"""


class UnlearnCLI(LightningCLI):
    """Lightning's CLI over any LightningModule and any ``UnlearningDataModule``.

    The options are the ``__init__`` arguments of the classes named by ``class_path`` in the
    config, so ``--print_config`` shows every setting a run used.
    """

    def __init__(self, args: Sequence[str] | None = None, **kwargs: object) -> None:
        kwargs.setdefault("datamodule_class", UnlearningDataModule)
        kwargs.setdefault("subclass_mode_data", True)
        kwargs.setdefault("save_config_kwargs", {"overwrite": True})
        super().__init__(args=args, **kwargs)  # type: ignore[arg-type]


def _wandb_offline_without_credentials() -> None:
    """W&B runs offline unless an API key is configured (no account needed to try the library)."""
    if os.environ.get("WANDB_API_KEY") or os.environ.get("WANDB_MODE"):
        return
    netrc = Path(os.environ.get("NETRC", Path.home() / ".netrc"))
    if netrc.is_file() and "api.wandb.ai" in netrc.read_text(errors="ignore"):
        return
    os.environ["WANDB_MODE"] = "offline"


#: The exit status of a run stopped by a mistake in its input (argparse's and jsonargparse's too).
ERROR_EXIT_CODE = 2
#: Errors that mean "bad input" (``OSError`` covers a missing file): one line, no traceback, unless debugging.
INPUT_ERRORS = (ValueError, TypeError, KeyError, RuntimeError, OSError)
DEBUG_FLAG = "--debug"
DEBUG_ENV = "LIGHTNING_UNLEARN_DEBUG"
#: The datamodule of the main job, which ``--data.KEY VALUE`` alone configures.
DEFAULT_DATA = "lightning_unlearn.DigitsDataModule"


def _experiment(args: Sequence[str]) -> None:
    from jsonargparse import ActionConfigFile, ArgumentParser
    from lightning.pytorch.loggers import Logger

    import lightning_unlearn.datamodules.sources  # noqa: F401  (its sources by short name: --data.source MNISTSource)
    from lightning_unlearn.pipeline import DEFAULT_METHODS, METHODS, run_experiment
    from lightning_unlearn.run_record import write_config
    from lightning_unlearn.training import TrainingRecipe

    parser = ArgumentParser(
        prog="lightning-unlearn experiment",
        description=(
            "Train the target and the shadow, fit the membership oracle, unlearn with each method, retrain, and\n"
            "compare: prints the table and writes report.md, report.json, run.json, config.yaml and the plots."
        ),
        epilog=_experiment_epilog(METHODS, DEFAULT_METHODS),
        formatter_class=_help_formatter(),
    )
    parser.add_argument("--config", action=ActionConfigFile, help="A YAML file with any of the options below.")
    parser.add_subclass_arguments(
        UnlearningDataModule, "data", required=False, help=f"The datamodule (default {DEFAULT_DATA})."
    )
    parser.add_class_arguments(TrainingRecipe, "recipe", help="How the target, shadow and retrained model are trained.")
    parser.add_argument(
        "--methods",
        type=dict[str, dict[str, Any] | None] | None,
        default=None,
        help="Method name → settings; the methods are listed below (* marks the default ones).",
    )
    parser.add_argument("--output_dir", type=str | None, default="outputs/digits", help="Where outputs go.")
    parser.add_argument(
        "--cache_dir", type=str | None, default=".cache/lightning-unlearn", help="Cache of targets and oracles."
    )
    parser.add_subclass_arguments(Logger, "logger", required=False, help="A Lightning logger, e.g. WandbLogger.")
    parser.add_argument(
        "--progress_bar",
        type=bool | None,
        default=None,
        help="Progress bars (on stderr) while training; null: only when stderr is a terminal.",
    )
    parser.add_argument("--plots", type=bool, default=True, help="Draw the PNG pictures.")
    parser.add_argument("--seed", type=int, default=0, help="Seeds every method.")
    parser.add_argument(
        "--repeats",
        type=int,
        default=3,
        help="Timed runs of each method and of retraining (median reported).",
    )
    parser.add_argument(
        "--lira", type=int, default=16, help="LiRA reference models (trained once, then cached; 0: off)."
    )
    config = parser.parse_args(_with_default_data(list(args)))
    objects = parser.instantiate(config)
    logger = objects.get("logger")
    try:
        run_experiment(
            datamodule=objects.get("data"),
            recipe=objects.recipe,
            methods=objects.methods,
            output_dir=objects.output_dir,
            cache_dir=objects.cache_dir,
            logger=logger,
            progress_bar=objects.progress_bar,
            plots=objects.plots,
            seed=objects.seed,
            repeats=objects.repeats,
            lira=objects.lira,
        )
    finally:
        from lightning.pytorch.loggers import WandbLogger

        if isinstance(logger, WandbLogger):  # close the run, so it is complete on disk (and synced online)
            logger.experiment.finish()
    if objects.output_dir is not None:
        if config.methods is None:  # the methods that ran, so the file reruns the same comparison
            config.methods = copy.deepcopy(DEFAULT_METHODS)
        header = "# The resolved configuration of this run; run.json adds every method's defaults and the machine.\n"
        written = write_config(objects.output_dir, header + parser.dump(config, skip_unset=False))
        print(f"wrote {written}")


def _with_default_data(args: list[str]) -> list[str]:
    """Select the default datamodule before the first ``--data.KEY`` option when nothing else chose one.

    ``--data.forget_size 500`` on its own would otherwise leave jsonargparse without a class
    for ``data``. The default is chosen only for a setting the digits datamodule has, and only
    when neither ``--data CLASS`` nor an earlier ``--config`` with a ``data`` entry chose a class.
    """
    import inspect

    import yaml

    from lightning_unlearn.datamodules.digits import DigitsDataModule

    # DigitsDataModule forwards every other setting of UnlearningDataModule (its `source` is fixed).
    forwarded = set(inspect.signature(UnlearningDataModule.__init__).parameters) - {"source"}
    digits_settings = (set(inspect.signature(DigitsDataModule.__init__).parameters) | forwarded) - {"self", "kwargs"}
    chosen = False
    for position, argument in enumerate(args):
        option = argument.partition("=")[0]
        if option == "--data":
            return args
        if (option == "--config" and position + 1 < len(args)) or argument.startswith("--config="):
            path = argument.partition("=")[2] or args[position + 1]
            try:
                content = yaml.safe_load(Path(path).read_text())
            except (OSError, yaml.YAMLError):
                continue  # jsonargparse reports the file's problem itself
            chosen = chosen or (isinstance(content, dict) and content.get("data") is not None)
        elif option.startswith("--data.") and not option.startswith("--data.help"):
            key = option.removeprefix("--data.").removeprefix("init_args.").partition(".")[0]
            if chosen or key not in digits_settings:
                return args
            return [*args[:position], f"--data={DEFAULT_DATA}", *args[position:]]
    return args


def _experiment_epilog(methods: Any, defaults: Any) -> str:
    """The methods and the data sources, one line each, for ``experiment --help``."""
    from lightning_unlearn.method_settings import method_settings, split_method_name

    lines = [
        "methods (--methods '{NAME: {SETTING: VALUE}}', a setting being an argument of the class named, or your own"
        " '{NAME: {class_path: PACKAGE.CLASS, init_args: {...}}}'; * by default):"
    ]
    shown: dict[str, list[str]] = {}  # a method run in named configurations is one line: forsaken[paper|recommended]
    for name in methods:
        base, label = split_method_name(name)
        shown.setdefault(base if label is not None else name, []).extend([label] if label is not None else [])
    for name, labels in shown.items():
        spec = method_settings(name)
        summary = f"{spec.summary()} [{spec.receiver_name}]" if spec is not None else ""
        listed = f"{name}[{'|'.join(labels)}]" if labels else name
        starred = any(f"{name}[{label}]" in defaults for label in labels) if labels else name in defaults
        listed += " *" if starred else ""
        lines.append(f"  {listed:<15}{summary}" if len(listed) < 15 else f"  {listed} {summary}")
    lines += [
        "",
        f"data sources (default: {DEFAULT_DATA}, bundled, no download; for another dataset:"
        " --data lightning_unlearn.UnlearningDataModule --data.source CLASS --data.source.root DIR):",
    ]
    lines += [f"  {source.__name__:<22}{summary}" for source, summary in _data_sources()]
    lines += [
        "",
        "--data.help CLASS, --recipe.backbone.help CLASS and --logger.help CLASS show one class's options;"
        " --print_config prints every setting; --debug shows the traceback of an error.",
    ]
    return "\n".join(lines)


def _data_sources() -> list[tuple[type, str]]:
    """The library's public, concrete data sources: the bundled one, then vision, then text; with their summaries."""
    import inspect

    from lightning_unlearn.datamodules.sources import DataSource, digits, text, vision

    order = [digits.__name__, vision.__name__, text.__name__]
    found: list[type] = []

    def visit(parent: type) -> None:
        subclass: type
        for subclass in parent.__subclasses__():
            public = not subclass.__name__.startswith("_") and not inspect.isabstract(subclass)
            if public and subclass.__module__ in order:  # the library's own, whatever else has been imported
                found.append(subclass)
            visit(subclass)

    visit(DataSource)
    found.sort(key=lambda source: order.index(source.__module__))
    return [(source, (inspect.getdoc(source) or "").partition("\n")[0]) for source in found]


def _help_formatter() -> type:
    """jsonargparse's formatter, keeping the epilog's lines and listing at most a few known subclasses."""
    import argparse

    from jsonargparse import DefaultHelpFormatter

    class Formatter(DefaultHelpFormatter, argparse.RawDescriptionHelpFormatter):
        def _get_help_string(self, action: argparse.Action) -> str:
            text = super()._get_help_string(action)
            head, found, listed = text.partition(", known subclasses: ")
            if not found:
                return text
            names = listed.removesuffix(")").split(", ")
            if len(names) <= 8:
                return text
            # The library's vision backbones, whatever else has been imported; text ones are named by their module.
            ours = [name for name in names if name.startswith("lightning_unlearn.models.")]
            option = "--" + action.dest + ".help CLASS"
            return (
                f"{head}, any of the nn.Module subclasses, e.g. {', '.join(ours)}, or lightning_unlearn.text_models;"
                f" {option} shows one's options)"
            )

    return Formatter


def _split_debug(argv: list[str]) -> tuple[list[str], bool]:
    """``argv`` without ``--debug``, and whether to show tracebacks (``--debug`` or ``LIGHTNING_UNLEARN_DEBUG=1``)."""
    debug = DEBUG_FLAG in argv or os.environ.get(DEBUG_ENV, "").strip().lower() in ("1", "true", "yes")
    return [argument for argument in argv if argument != DEBUG_FLAG], debug


def _root_message(error: BaseException) -> str:
    """The message of the error at the root of a chain (the one that names the setting), on one line."""
    seen = {id(error)}
    while True:
        cause = error.__cause__ or (None if error.__suppress_context__ else error.__context__)
        if not isinstance(cause, INPUT_ERRORS) or id(cause) in seen:
            break
        seen.add(id(cause))
        error = cause
    message = error.args[0] if isinstance(error, KeyError) and error.args else error
    return " ".join(str(message).split()) or type(error).__name__


def main(args: Sequence[str] | None = None) -> None:
    """Entry point of the ``lightning-unlearn`` console script.

    A mistake in the input (a ``ValueError``, ``TypeError``, ``KeyError``, ``RuntimeError`` or
    ``OSError`` such as ``FileNotFoundError``) is printed as one line,
    ``lightning-unlearn: error: <message>``, on stderr, and the command exits with status 2, as
    jsonargparse does for its own errors; for a chain of errors the message is the root's, which
    names the setting. Ctrl-C exits with status 130. ``--debug`` anywhere in the arguments, or
    the environment variable ``LIGHTNING_UNLEARN_DEBUG=1``, shows the traceback instead.

    Args:
        args: the arguments after the program's name (default: ``sys.argv[1:]``).

    Raises:
        SystemExit: after printing an error or the help.
    """
    argv, debug = _split_debug(list(sys.argv[1:] if args is None else args))
    try:
        _main(argv)
    except INPUT_ERRORS as error:
        if debug:
            raise
        print(f"lightning-unlearn: error: {_root_message(error)}", file=sys.stderr)
        raise SystemExit(ERROR_EXIT_CODE) from None
    except KeyboardInterrupt:
        if debug:
            raise
        raise SystemExit(130) from None  # what a shell reports for Ctrl-C; the pipeline said where it stopped


def _main(argv: list[str]) -> None:
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return
    command, rest = argv[0], argv[1:]
    _wandb_offline_without_credentials()
    if command == "experiment":
        _experiment(rest)
    elif command in LIGHTNING_COMMANDS:
        UnlearnCLI(args=argv)
    else:
        print(USAGE, file=sys.stderr)
        raise SystemExit(
            f"lightning-unlearn: expected a command from experiment, {', '.join(LIGHTNING_COMMANDS)},"
            f" but got {command!r}."
        )


if __name__ == "__main__":
    main()
