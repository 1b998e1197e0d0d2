"""LiRA's reference models: ``K`` models with the target's recipe, each on ``retain`` plus half the candidates.

The candidates are every sample a LiRA figure is ever read on: ``forget`` (the members of the
original target), ``heldout`` (the final report's non-members) and ``validation_heldout`` (the
non-members of every decision taken while unlearning). Reference model ``k`` trains on ``retain``
plus the candidates drawn IN for it; each candidate is IN for exactly ``⌊K/2⌋`` models, chosen at
random per candidate from ``seed`` (the inclusion matrix of Carlini et al.'s code). All LiRA then
needs is each model's logit-scaled confidence on every candidate,
:class:`~lightning_unlearn.metrics.lira.LiRAReferenceStatistics`; the models are not kept.

Model ``k`` is trained with the target's recipe and the recipe seed ``recipe.seed + 1 + seed·K + k``
(initialisation and data order), so the target and the retrained model (``recipe.seed``) are never
among the references: a retrained model is an unseen model to the attack, as it must be.

Limitations. The references train one after another in the calling process, on the recipe's
accelerator with one device each. Under DDP, train (or load from the cache) the statistics before
the distributed run starts and hand them to every rank; they are a few small tensors. Spreading the
``K`` models over the ranks, one model per rank, is not implemented.
"""

from __future__ import annotations

import os
import sys
import time
import warnings
from dataclasses import replace
from typing import Any

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader

from lightning_unlearn.cache import ArtifactCache, CachedValue
from lightning_unlearn.checks import check_integer
from lightning_unlearn.datamodules.base import SplitDataset, UnlearningDataModule
from lightning_unlearn.datamodules.splits import Split
from lightning_unlearn.inference import predict
from lightning_unlearn.metrics.functional import membership_features
from lightning_unlearn.metrics.lira import LiRAReferenceStatistics
from lightning_unlearn.training import TrainingRecipe

__all__ = [
    "CANDIDATE_SPLITS",
    "DEFAULT_REFERENCE_MODELS",
    "candidate_split",
    "inclusion_matrix",
    "lira_references",
    "reference_seeds",
    "train_lira_references",
]

#: The splits whose samples LiRA scores: members (forget) and both kinds of non-members.
CANDIDATE_SPLITS = ("forget", "heldout", "validation_heldout")
#: Reference models by default: small enough for digits on 2 cores, as the issue asks.
DEFAULT_REFERENCE_MODELS = 16
#: The smallest ``K``: two IN and two OUT models per candidate, to estimate a variance.
MIN_REFERENCE_MODELS = 4


def _check_settings(num_models: object, seed: object) -> None:
    check_integer("num_models", num_models, MIN_REFERENCE_MODELS, reason="two IN and two OUT models per candidate")
    check_integer("seed", seed, minimum=0)


def inclusion_matrix(num_models: int, num_candidates: int, seed: int) -> torch.Tensor:
    """``(K, N)`` booleans: candidate ``n`` is IN for model ``k``; exactly ``⌊K/2⌋`` models per candidate.

    Example:
        >>> inclusion_matrix(4, 6, seed=0).sum(dim=0).tolist()
        [2, 2, 2, 2, 2, 2]
    """
    _check_settings(num_models, seed)
    rng = np.random.default_rng(seed)
    ranks = rng.random((num_models, num_candidates)).argsort(axis=0)  # a random order of the models, per candidate
    return torch.from_numpy(ranks < num_models // 2)


def reference_seeds(recipe_seed: int, num_models: int, seed: int) -> tuple[int, ...]:
    """The recipe seeds of the reference models: ``recipe_seed + 1 + seed·K + k``, never ``recipe_seed`` itself.

    Example:
        >>> reference_seeds(0, 4, seed=0), reference_seeds(0, 4, seed=1)
        ((1, 2, 3, 4), (5, 6, 7, 8))
    """
    _check_settings(num_models, seed)
    return tuple(recipe_seed + 1 + seed * num_models + k for k in range(num_models))


def candidate_split(datamodule: UnlearningDataModule) -> Split:
    """The candidates (:data:`CANDIDATE_SPLITS`) with the labels they carry, sorted by global index.

    Raises:
        RuntimeError: the candidate splits overlap each other or ``retain`` (they never do for splits
            built by :func:`~lightning_unlearn.datamodules.build_splits`).
    """
    splits = datamodule.splits
    parts = [splits[name] for name in CANDIDATE_SPLITS]
    candidates = Split.of(np.concatenate([p.indices for p in parts]), np.concatenate([p.labels for p in parts]))
    if np.unique(candidates.indices).size != len(candidates):
        raise RuntimeError(f"Expected the splits {list(CANDIDATE_SPLITS)} to be disjoint, but they share samples.")
    if np.intersect1d(candidates.indices, splits["retain"].indices).size:
        raise RuntimeError("Expected the LiRA candidates to be disjoint from `retain`, but they share samples.")
    return candidates


def train_lira_references(
    recipe: TrainingRecipe,
    datamodule: UnlearningDataModule,
    num_models: int = DEFAULT_REFERENCE_MODELS,
    seed: int = 0,
    progress_bar: bool | None = None,
    **trainer_overrides: Any,
) -> LiRAReferenceStatistics:
    """Train the ``K`` reference models and record their confidences on every candidate.

    Each model is built, seeded and trained like :func:`~lightning_unlearn.training.train_classifier`
    trains the target (the recipe's architecture, optimiser, epochs and accelerator; one device, no
    validation), on ``retain`` plus its IN candidates, with batches of ``datamodule.batch_size`` in
    an order seeded by its own seed.

    Args:
        recipe: the target's recipe.
        datamodule: the splits; the candidates are :data:`CANDIDATE_SPLITS`.
        num_models: ``K``, at least 4.
        seed: seeds which candidates each model trains on (and offsets the models' seeds).
        progress_bar: a progress bar over the models, on stderr; ``None``: when stderr is a terminal.
        **trainer_overrides: passed to the recipe's Trainer.

    Returns:
        The reference statistics.

    Raises:
        TypeError: ``num_models`` or ``seed`` not an integer.
        ValueError: ``num_models`` below 4 or a negative ``seed``.
        RuntimeError: overlapping candidate splits.
    """
    from tqdm.auto import tqdm

    from lightning_unlearn.progress import show_progress

    _check_settings(num_models, seed)
    datamodule.setup("fit")
    candidates = candidate_split(datamodule)
    retain = datamodule.splits["retain"]
    inputs = datamodule.dataset("retain").inputs
    is_in = inclusion_matrix(num_models, len(candidates), seed)
    seeds = reference_seeds(recipe.seed, num_models, seed)
    candidate_loader = DataLoader(SplitDataset(inputs, candidates), batch_size=datamodule.eval_batch_size)
    settings: dict[str, Any] = {"enable_progress_bar": False, "enable_model_summary": False, "devices": 1}
    settings.update(trainer_overrides)
    confidences = torch.empty(num_models, len(candidates), dtype=torch.float64)
    seconds: list[float] = []
    shown = show_progress(progress_bar)
    for k in tqdm(range(num_models), desc="LiRA reference models", file=sys.stderr, disable=not shown):
        chosen = is_in[k].numpy()
        train_split = Split.of(
            np.concatenate([retain.indices, candidates.indices[chosen]]),
            np.concatenate([retain.labels, candidates.labels[chosen]]),
        )
        loader = DataLoader(
            SplitDataset(inputs, train_split),
            batch_size=datamodule.batch_size,
            shuffle=True,
            generator=torch.Generator().manual_seed(seeds[k]),
            num_workers=datamodule.num_workers,
        )
        reference_recipe = replace(recipe, seed=seeds[k])
        L.seed_everything(seeds[k], verbose=False)
        module = reference_recipe.build_module(datamodule)
        trainer = reference_recipe.build_trainer(**settings)
        start = time.perf_counter()
        with warnings.catch_warnings():  # no validation on purpose, as for the target
            warnings.filterwarnings("ignore", message=r".*`validation_step` but have no `val_dataloader`.*")
            trainer.fit(module, train_dataloaders=loader)
        seconds.append(time.perf_counter() - start)
        scored = predict(module.backbone, candidate_loader)
        _, confidences[k] = membership_features(scored.logits, scored.targets)
    return LiRAReferenceStatistics(
        indices=torch.from_numpy(candidates.indices),
        labels=torch.from_numpy(candidates.labels),
        confidences=confidences,
        is_in=is_in,
        model_seeds=seeds,
        seconds=tuple(seconds),
    )


def _cache_config(
    recipe: TrainingRecipe, datamodule: UnlearningDataModule, num_models: int, seed: int
) -> dict[str, Any]:
    return {
        "splits": datamodule.splits_digest(),  # the digest the pipeline keys the target with
        "recipe": recipe.describe(datamodule),
        "lira": {"num_models": num_models, "seed": seed, "candidates": list(CANDIDATE_SPLITS)},
    }


def lira_references(
    recipe: TrainingRecipe,
    datamodule: UnlearningDataModule,
    num_models: int = DEFAULT_REFERENCE_MODELS,
    seed: int = 0,
    cache_dir: str | os.PathLike[str] | None = None,
    progress_bar: bool | None = None,
    **trainer_overrides: Any,
) -> CachedValue[LiRAReferenceStatistics]:
    """:func:`train_lira_references`, cached on disk like the target (trained once, then loaded).

    The cache entry is keyed by the splits (a digest of the manifest), the recipe, ``num_models`` and
    ``seed``; it holds tensors and JSON only, read back with ``weights_only=True``.

    Args:
        recipe: the target's recipe.
        datamodule: the splits.
        num_models: ``K``.
        seed: seeds the inclusion matrix.
        cache_dir: the cache folder; ``None`` trains afresh every time.
        progress_bar: a progress bar over the models, on stderr; ``None``: when stderr is a terminal.
        **trainer_overrides: passed to the recipe's Trainer (not part of the cache key).

    Returns:
        The statistics, whether they came from the cache, and the cache folder.

    Raises:
        TypeError, ValueError, RuntimeError: as :func:`train_lira_references`.

    Example:
        >>> import tempfile
        >>> from lightning_unlearn import DigitsDataModule
        >>> dm, recipe = DigitsDataModule(), TrainingRecipe(max_epochs=2)
        >>> folder = tempfile.mkdtemp()
        >>> first = lira_references(recipe, dm, num_models=4, cache_dir=folder, progress_bar=False)
        >>> again = lira_references(recipe, dm, num_models=4, cache_dir=folder, progress_bar=False)
        >>> first.from_cache, again.from_cache, tuple(again.value.confidences.shape)
        (False, True, (4, 448))
    """
    _check_settings(num_models, seed)
    datamodule.setup("fit")
    return ArtifactCache(cache_dir).get_or_build(
        "lira-references",
        _cache_config(recipe, datamodule, num_models, seed),
        build=lambda: train_lira_references(recipe, datamodule, num_models, seed, progress_bar, **trainer_overrides),
        save=lambda statistics, folder: statistics.save(folder),
        load=LiRAReferenceStatistics.load,
    )
