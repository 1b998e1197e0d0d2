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

In one process the references train one after another, on the recipe's accelerator with one device
each. Under a distributed run (an initialised ``torch.distributed`` process group with several
ranks, e.g. a ``torchrun`` script that called ``init_process_group``), every rank calls the same
function with the same splits, and the ``K`` models are spread over the ranks: rank ``r`` trains
the models ``k`` with ``k mod world_size = r`` (:func:`models_of_rank`), each on one device (on
GPUs the rank's own, ``torch.cuda.current_device()``) with its own seed exactly as in one process,
so a model is the same model whichever rank trains it (bit for bit on CPU with the same number of
threads: tests/metrics/test_lira_references.py compares two gloo processes with one). The ranks
then exchange their rows of confidences and training times (``all_gather``, tensors only), so
*every rank returns all* ``K`` *models' statistics*. With a cache (:func:`lira_references`), rank 0
alone reads and writes it: on a hit it loads the entry and broadcasts it; on a miss every rank trains
its share, and rank 0 writes the entry before any rank returns. The cache may therefore live on
rank 0's disk alone; every rank must pass the same ``cache_dir`` and the same settings.
"""

from __future__ import annotations

import os
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
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
    "models_of_rank",
    "reference_seeds",
    "train_lira_references",
]

#: Called with ``(k, module)`` on the rank that trained reference model ``k``, right after it was scored.
ModelHook = Callable[[int, L.LightningModule], object]

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


def models_of_rank(num_models: int, rank: int, world_size: int) -> tuple[int, ...]:
    """The reference models rank ``rank`` trains: ``k`` with ``k mod world_size = rank``.

    Example:
        >>> models_of_rank(5, 0, 2), models_of_rank(5, 1, 2), models_of_rank(5, 0, 1)
        ((0, 2, 4), (1, 3), (0, 1, 2, 3, 4))
    """
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"Expected `rank` in [0, {world_size}) for `world_size` {world_size}, but got {rank}.")
    return tuple(range(rank, num_models, world_size))


def _distributed() -> tuple[int, int]:
    """``(rank, world_size)`` of the default process group; ``(0, 1)`` without one."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def _collective_device() -> torch.device:
    """Where tensors must be for the process group's collectives: the rank's GPU under NCCL, else the CPU."""
    if torch.distributed.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def _require_same_settings_on_every_rank(num_models: int, seed: int, candidates: Split, recipe_seed: int) -> None:
    """Fail on every rank, before any collective that depends on shapes, when the ranks disagree."""
    fingerprint = [num_models, seed, recipe_seed, len(candidates), int(candidates.indices.astype(np.int64).sum())]
    local = torch.tensor(fingerprint, dtype=torch.int64, device=_collective_device())
    gathered = [torch.empty_like(local) for _ in range(torch.distributed.get_world_size())]
    torch.distributed.all_gather(gathered, local)
    differing = [rank for rank, value in enumerate(gathered) if not torch.equal(value, gathered[0])]
    if differing:
        raise RuntimeError(
            "Expected every rank to train the LiRA reference models with the same `num_models`, `seed`, recipe seed"
            f" and candidates, but rank(s) {differing} differ from rank 0 ((K, seed, recipe seed, candidates, sum of"
            f" their indices): {gathered[0].tolist()} on rank 0, {gathered[differing[0]].tolist()} on rank"
            f" {differing[0]})."
        )


def _gather_rows(local: torch.Tensor, world_size: int) -> torch.Tensor:
    """Every rank holds the rows of its own models; return, on every rank, row ``k`` from rank ``k mod world_size``."""
    device = _collective_device()
    sent = local.to(device)
    gathered = [torch.empty_like(sent) for _ in range(world_size)]
    torch.distributed.all_gather(gathered, sent)
    rows = torch.empty_like(local)
    for k in range(local.shape[0]):
        rows[k] = gathered[k % world_size][k].cpu()
    return rows


def _trainer_devices(recipe: TrainingRecipe, trainer_overrides: dict[str, Any], world_size: int) -> Any:
    """One device per model; under DDP on GPUs, the rank's own GPU (``devices=1`` would put every rank on GPU 0)."""
    if "devices" in trainer_overrides:
        return trainer_overrides["devices"]
    accelerator = trainer_overrides.get("accelerator", recipe.accelerator)
    if world_size > 1 and accelerator in ("gpu", "cuda", "auto") and torch.cuda.is_available():
        return [torch.cuda.current_device()]
    return 1


def train_lira_references(
    recipe: TrainingRecipe,
    datamodule: UnlearningDataModule,
    num_models: int = DEFAULT_REFERENCE_MODELS,
    seed: int = 0,
    progress_bar: bool | None = None,
    on_model_trained: ModelHook | None = None,
    **trainer_overrides: Any,
) -> LiRAReferenceStatistics:
    """Train the ``K`` reference models and record their confidences on every candidate.

    Each model is built, seeded and trained like :func:`~lightning_unlearn.training.train_classifier`
    trains the target (the recipe's architecture, optimiser, epochs and accelerator; one device, no
    validation), on ``retain`` plus its IN candidates, with batches of ``datamodule.batch_size`` in
    an order seeded by its own seed.

    Under a ``torch.distributed`` process group with several ranks, call it on every rank: rank ``r``
    trains the models of :func:`models_of_rank`, and every rank returns the statistics of all ``K``
    (see the module docstring). Model ``k`` gets the same seed and data whichever rank trains it.

    Args:
        recipe: the target's recipe.
        datamodule: the splits; the candidates are :data:`CANDIDATE_SPLITS`.
        num_models: ``K``, at least 4.
        seed: seeds which candidates each model trains on (and offsets the models' seeds).
        progress_bar: a progress bar over the models (under DDP, rank 0's share), on stderr;
            ``None``: when stderr is a terminal.
        on_model_trained: called as ``on_model_trained(k, module)`` on the rank that trained model ``k``,
            right after it was scored, to keep or inspect the models (they are not kept otherwise).
        **trainer_overrides: passed to the recipe's Trainer.

    Returns:
        The reference statistics; ``seconds`` holds each model's ``Trainer.fit`` time, wherever it ran.

    Raises:
        TypeError: ``num_models`` or ``seed`` not an integer.
        ValueError: ``num_models`` below 4 or a negative ``seed``.
        RuntimeError: overlapping candidate splits, or ranks whose settings or candidates differ.
    """
    from tqdm.auto import tqdm

    from lightning_unlearn.progress import show_progress

    _check_settings(num_models, seed)
    datamodule.setup("fit")
    candidates = candidate_split(datamodule)
    rank, world_size = _distributed()
    if world_size > 1:
        _require_same_settings_on_every_rank(num_models, seed, candidates, recipe.seed)
    retain = datamodule.splits["retain"]
    inputs = datamodule.dataset("retain").inputs
    is_in = inclusion_matrix(num_models, len(candidates), seed)
    seeds = reference_seeds(recipe.seed, num_models, seed)
    candidate_loader = DataLoader(SplitDataset(inputs, candidates), batch_size=datamodule.eval_batch_size)
    settings: dict[str, Any] = {"enable_progress_bar": False, "enable_model_summary": False}
    settings.update(trainer_overrides)
    settings["devices"] = _trainer_devices(recipe, trainer_overrides, world_size)
    # Row k: model k's confidence on every candidate, then its training time (rows of other ranks stay 0).
    rows = torch.zeros(num_models, len(candidates) + 1, dtype=torch.float64)
    shown = show_progress(progress_bar) and rank == 0
    description = "LiRA reference models" + (f" (rank 0 of {world_size})" if world_size > 1 else "")
    for k in tqdm(models_of_rank(num_models, rank, world_size), desc=description, file=sys.stderr, disable=not shown):
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
        rows[k, -1] = time.perf_counter() - start
        scored = predict(module.backbone, candidate_loader)
        _, rows[k, :-1] = membership_features(scored.logits, scored.targets)
        if on_model_trained is not None:
            on_model_trained(k, module)
    if world_size > 1:
        rows = _gather_rows(rows, world_size)
    return LiRAReferenceStatistics(
        indices=torch.from_numpy(candidates.indices),
        labels=torch.from_numpy(candidates.labels),
        confidences=rows[:, :-1].contiguous(),
        is_in=is_in,
        model_seeds=seeds,
        seconds=tuple(rows[:, -1].tolist()),
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
    on_model_trained: ModelHook | None = None,
    **trainer_overrides: Any,
) -> CachedValue[LiRAReferenceStatistics]:
    """:func:`train_lira_references`, cached on disk like the target (trained once, then loaded).

    The cache entry is keyed by the splits (a digest of the manifest), the recipe, ``num_models`` and
    ``seed``; it holds tensors and JSON only, read back with ``weights_only=True``. Under a process
    group with several ranks, call it on every rank: rank 0 alone reads and writes the cache, every
    rank returns the same statistics and the same ``from_cache`` (see the module docstring).

    Args:
        recipe: the target's recipe.
        datamodule: the splits.
        num_models: ``K``.
        seed: seeds the inclusion matrix.
        cache_dir: the cache folder; ``None`` trains afresh every time.
        progress_bar: a progress bar over the models, on stderr; ``None``: when stderr is a terminal.
        on_model_trained: as in :func:`train_lira_references`; not called when the entry comes from the cache.
        **trainer_overrides: passed to the recipe's Trainer (not part of the cache key).

    Returns:
        The statistics, whether they came from the cache, and the cache folder.

    Raises:
        TypeError, ValueError, RuntimeError: as :func:`train_lira_references`; under DDP, a
            :class:`RuntimeError` on every rank when rank 0 could not read or write the cache.

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
    cache = ArtifactCache(cache_dir)
    config = _cache_config(recipe, datamodule, num_models, seed)

    def train() -> LiRAReferenceStatistics:
        return train_lira_references(
            recipe, datamodule, num_models, seed, progress_bar, on_model_trained, **trainer_overrides
        )

    def save(statistics: LiRAReferenceStatistics, folder: Path) -> None:
        statistics.save(folder)

    rank, world_size = _distributed()
    if world_size == 1:
        return cache.get_or_build(_CACHE_KIND, config, build=train, save=save, load=LiRAReferenceStatistics.load)

    # Several ranks: rank 0 decides from its own disk, and tells the others.
    folder = cache.folder(_CACHE_KIND, config)
    cached = rank == 0 and folder is not None and (folder / "config.json").is_file()
    if _broadcast_flag(cached):
        loaded: LiRAReferenceStatistics | None = None
        failure: BaseException | None = None
        if rank == 0:
            try:
                loaded = cache.get_or_build(
                    _CACHE_KIND, config, build=_never, save=save, load=LiRAReferenceStatistics.load
                ).value
            except Exception as error:  # every rank must learn of it, or the others wait forever
                failure = error
        _agree_or_raise(failure, f"read the cached LiRA reference statistics in {str(folder)!r}")
        candidates = candidate_split(datamodule)
        return CachedValue(_broadcast_statistics(loaded, num_models, len(candidates)), True, folder)

    statistics = train()  # every rank trains its share and ends with all K models' statistics
    failure = None
    if rank == 0 and folder is not None:
        try:
            cache.get_or_build(
                _CACHE_KIND, config, build=lambda: statistics, save=save, load=LiRAReferenceStatistics.load
            )
        except Exception as error:
            failure = error
    _agree_or_raise(failure, f"write the LiRA reference statistics to the cache in {str(folder)!r}")  # also a barrier
    return CachedValue(statistics, False, folder)


_CACHE_KIND = "lira-references"


def _never() -> LiRAReferenceStatistics:
    raise RuntimeError("Expected the cached LiRA reference statistics to exist, but the cache entry vanished.")


def _broadcast_flag(value: bool) -> bool:
    """Rank 0's ``value``, on every rank."""
    flag = torch.tensor([int(value)], dtype=torch.int64, device=_collective_device())
    torch.distributed.broadcast(flag, src=0)
    return bool(flag.item())


def _agree_or_raise(failure: BaseException | None, action: str) -> None:
    """Tell every rank whether rank 0 managed to ``action``; raise on every rank when it did not."""
    if _broadcast_flag(failure is None):
        return
    if failure is not None:
        raise failure
    raise RuntimeError(f"Expected rank 0 to {action}, but it failed there (its own error says why).")


def _broadcast_statistics(
    statistics: LiRAReferenceStatistics | None, num_models: int, num_candidates: int
) -> LiRAReferenceStatistics:
    """Rank 0's statistics on every rank, sent as two tensors (integers, reals); shapes are known everywhere."""
    device = _collective_device()
    integers = torch.empty(2 * num_candidates + num_models * (num_candidates + 1), dtype=torch.int64, device=device)
    reals = torch.empty(num_models * (num_candidates + 1), dtype=torch.float64, device=device)
    if statistics is not None:  # rank 0
        if statistics.confidences.shape != (num_models, num_candidates):
            raise RuntimeError(
                f"Expected cached LiRA reference statistics of shape ({num_models}, {num_candidates}), but got"
                f" {tuple(statistics.confidences.shape)}."
            )
        integers.copy_(
            torch.cat(
                [
                    statistics.indices.to(torch.int64),
                    statistics.labels.to(torch.int64),
                    statistics.is_in.to(torch.int64).reshape(-1),
                    torch.tensor(statistics.model_seeds, dtype=torch.int64),
                ]
            )
        )
        reals.copy_(
            torch.cat([statistics.confidences.reshape(-1), torch.tensor(statistics.seconds, dtype=torch.float64)])
        )
    torch.distributed.broadcast(integers, src=0)
    torch.distributed.broadcast(reals, src=0)
    integers, reals = integers.cpu(), reals.cpu()
    n, k = num_candidates, num_models
    return LiRAReferenceStatistics(
        indices=integers[:n].clone(),
        labels=integers[n : 2 * n].clone(),
        confidences=reals[: k * n].reshape(k, n).clone(),
        is_in=integers[2 * n : 2 * n + k * n].reshape(k, n).bool(),
        model_seeds=tuple(integers[2 * n + k * n :].tolist()),
        seconds=tuple(reals[k * n :].tolist()),
    )
