"""The ``lightning-unlearn`` command.

* ``lightning-unlearn fit|validate|test|predict --config FILE`` — Lightning's own CLI, for any
  LightningModule and any :class:`~lightning_unlearn.datamodules.UnlearningDataModule`
  given by ``class_path`` (see ``configs/``).
* ``lightning-unlearn experiment [--config FILE]`` — the main job on the embedded digits
  data: build the splits, train the target and the shadow, print what they learnt.
"""

from __future__ import annotations

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


def _experiment(args: Sequence[str]) -> None:
    from jsonargparse import ActionConfigFile, ArgumentParser
    from lightning.pytorch.loggers import Logger

    from lightning_unlearn.pipeline import DEFAULT_METHODS, METHODS, run_experiment
    from lightning_unlearn.training import TrainingRecipe

    parser = ArgumentParser(
        prog="lightning-unlearn experiment",
        description=(
            "Train the target and the shadow, fit the membership oracle, unlearn with each method, retrain, and"
            " compare: prints the table and writes report.md, report.json and the plots."
        ),
    )
    parser.add_argument("--config", action=ActionConfigFile, help="A YAML file with any of the options below.")
    parser.add_subclass_arguments(UnlearningDataModule, "data", required=False, help="The datamodule (default digits).")
    parser.add_class_arguments(TrainingRecipe, "recipe", help="How the target, shadow and retrained model are trained.")
    parser.add_argument(
        "--methods",
        type=dict[str, dict[str, Any] | None] | None,
        default=None,
        help=f"Method name → settings, from {sorted(METHODS)} (default: {sorted(DEFAULT_METHODS)}).",
    )
    parser.add_argument("--output_dir", type=str | None, default="outputs/digits", help="Where outputs go.")
    parser.add_argument(
        "--cache_dir", type=str | None, default=".cache/lightning-unlearn", help="Cache of targets and oracles."
    )
    parser.add_subclass_arguments(Logger, "logger", required=False, help="A Lightning logger, e.g. WandbLogger.")
    parser.add_argument("--progress_bar", type=bool, default=True, help="Show progress bars while training.")
    parser.add_argument("--plots", type=bool, default=True, help="Draw the PNG pictures.")
    parser.add_argument("--seed", type=int, default=0, help="Seeds every method.")
    config = parser.parse_args(list(args))
    objects = parser.instantiate_classes(config)
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
        )
    finally:
        from lightning.pytorch.loggers import WandbLogger

        if isinstance(logger, WandbLogger):  # close the run, so it is complete on disk (and synced online)
            logger.experiment.finish()


def main(args: Sequence[str] | None = None) -> None:
    """Entry point of the ``lightning-unlearn`` console script."""
    argv = list(sys.argv[1:] if args is None else args)
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
