"""The unlearning splits, built deterministically from a seed (see docs/evaluation.md, Splits).

Everything here is plain numpy on label arrays, so the splits can be built, checked and
saved without touching a single image. Sample indices are *global*: ``0 … N-1`` address the
task dataset and ``N … N+M-1`` the out-of-distribution (OOD) source, when there is one;
for ``ood_label_split`` the OOD pool is part of the task dataset itself.

Each split is a pair of arrays: the global indices and the label each sample carries in
that split. A sample's label can differ from its true class: OOD samples are inserted under
labels drawn from the target's classes, and poisoned samples carry the flipped label.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np

from lightning_unlearn.checks import check_choice, check_in_range, check_integer

__all__ = ["REPORT_ONLY_SPLITS", "SPLIT_NAMES", "ForgetKind", "Split", "UnlearningSplits", "build_splits"]

ForgetKind = Literal["id", "ood_label_split", "ood_foreign", "ood_mislabeled", "poison"]
FORGET_KINDS: tuple[str, ...] = get_args(ForgetKind)

#: Every split an unlearning experiment uses, in the order summaries print them.
SPLIT_NAMES: tuple[str, ...] = (
    "target_train",
    "retain",
    "forget",
    "probe",
    "test",
    "reference",
    "heldout",
    "validation",
    "validation_heldout",
    "shadow_train",
    "shadow_test",
)


#: The splits only the final report reads: no method, callback or tuning step may (see docs/evaluation.md).
REPORT_ONLY_SPLITS: tuple[str, ...] = ("test", "heldout")


@dataclass(frozen=True)
class Split:
    """Global sample indices and the label each sample carries in this split."""

    indices: np.ndarray
    labels: np.ndarray

    def __post_init__(self) -> None:
        if self.indices.shape != self.labels.shape:
            raise ValueError(
                f"Expected as many labels as indices, but got {self.labels.shape[0]:,} labels"
                f" for {self.indices.shape[0]:,} indices."
            )

    def __len__(self) -> int:
        return int(self.indices.shape[0])

    @classmethod
    def of(cls, indices: np.ndarray, labels: np.ndarray) -> Split:
        """A split sorted by global index, so manifests read in a stable order."""
        order = np.argsort(indices, kind="stable")
        return cls(np.asarray(indices, dtype=np.int64)[order], np.asarray(labels, dtype=np.int64)[order])

    def histogram(self, num_classes: int) -> np.ndarray:
        """How many samples carry each label."""
        return np.bincount(self.labels, minlength=num_classes)


@dataclass(frozen=True)
class UnlearningSplits:
    """The splits of one experiment, with the settings that produced them."""

    kind: str
    num_classes: int
    splits: dict[str, Split]
    settings: dict[str, object]

    def __getitem__(self, name: str) -> Split:
        if name not in self.splits:
            raise KeyError(f"Expected a split name from {list(self.splits)}, but got {name!r}.")
        return self.splits[name]


def _stratified_partition(
    indices: np.ndarray, labels: np.ndarray, fraction: float, rng: np.random.Generator, minimum: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Split ``indices`` class by class: ``fraction`` of each class goes to the first part.

    With ``minimum``, a first part that rounding left smaller (a few samples per class) takes
    random samples of the second until it holds ``minimum``, as long as the second keeps one.
    """
    first, second = [], []
    for label in np.unique(labels):
        members = rng.permutation(indices[labels == label])
        cut = round(fraction * len(members))
        first.append(members[:cut])
        second.append(members[cut:])
    empty = np.empty(0, dtype=np.int64)
    head, tail = (np.concatenate(first) if first else empty, np.concatenate(second) if second else empty)
    missing = min(minimum - len(head), len(tail) - 1)
    if missing > 0:
        moved = rng.choice(len(tail), size=missing, replace=False)
        head = np.concatenate([head, tail[moved]])
        tail = np.delete(tail, moved)
    return head, tail


def build_splits(
    task_labels: np.ndarray,
    num_classes: int,
    *,
    kind: ForgetKind = "id",
    seed: int = 0,
    forget_size: int | None = None,
    ood_labels: np.ndarray | None = None,
    ood_num_classes: int | None = None,
    split_class: int | None = None,
    ood_label_map: dict[int, int] | None = None,
    flip_source: int | None = None,
    flip_target: int | None = None,
    flip_rate: float | None = None,
    target_fraction: float = 0.5,
    test_fraction: float = 0.3,
    probe_fraction: float = 0.01,
    validation_fraction: float = 0.25,
    validation_heldout_fraction: float = 0.5,
) -> UnlearningSplits:
    """Build every split (docs/evaluation.md, Splits) from the labels alone.

    The in-distribution (ID) samples are split class by class into a target half and a shadow
    half (``target_fraction``), and each half into train and test (``test_fraction``). Then,
    by ``kind``:

    * ``id`` — ``forget`` is ``forget_size`` random training samples (default 10 %);
      ``reference`` and ``heldout`` are disjoint halves of ``test``.
    * ``ood_label_split`` — classes ``>= split_class`` form the OOD pool; the task keeps
      classes ``0 … split_class-1``.
    * ``ood_foreign`` — the OOD pool is another dataset (``ood_labels``).
    * ``ood_mislabeled`` — another dataset of the same task, each sample labelled with a class
      other than its own (through ``ood_label_map`` from OOD class to task class; identity when
      omitted and the class counts agree).
    * ``poison`` — ``flip_rate`` of the training samples of class ``flip_source`` are
      relabelled ``flip_target``; they form ``forget``. ``reference`` is clean test data;
      ``heldout`` is unseen test samples of ``flip_source`` labelled ``flip_target``.

    For the OOD kinds, the OOD pool is shuffled and cut into five disjoint groups: ``forget``
    (inserted into ``target_train``), the shadow's own insertions (into ``shadow_train``, same
    size), and three equal parts: ``heldout``, ``reference`` and the shadow's OOD non-members
    (into ``shadow_test``). OOD samples carry labels drawn uniformly from the task's classes
    (a different class than their own for ``ood_mislabeled``); unseen OOD samples are labelled
    the same way, so ``heldout`` shares the forget set's distribution.

    ``probe`` is ``probe_fraction`` of ``retain`` (at least one sample). No forget sample is
    ever on the shadow side, and every split is a pure function of the arguments.

    The *validation pair* is what every decision made while unlearning reads (stopping,
    acceptance, tuning), so that ``test`` and ``heldout`` stay for the final report alone:

    * ``validation`` — ``validation_fraction`` of the target side's ID test samples (class by
      class), taken out before ``test``, ``heldout`` and ``reference`` are drawn: in-distribution
      non-members for accuracy.
    * ``validation_heldout`` — ``validation_heldout_fraction`` of the forget-like non-members
      that would otherwise be ``reference`` (unseen OOD samples labelled like the forget set for
      the OOD kinds, unseen ID test samples for ``id``, unseen samples of ``flip_source``
      labelled ``flip_target`` for ``poison``): the negatives of every MIA score a method or
      callback decides on. ``heldout``, the report's negatives, keeps its full size.

    Both are disjoint from each other, from ``test``, ``heldout`` and ``reference``, and from
    every training split. They are drawn with a generator of their own, so the forget set,
    ``retain`` and the shadow side are the same as without them.

    Args:
        task_labels: true class of every task sample, global indices ``0 … N-1``.
        num_classes: the task dataset's class count.
        kind: which forget set to build.
        seed: seeds every random choice.
        forget_size: size of the forget set (not for ``poison``, where ``flip_rate`` sets it).
            Default: 10 % of the target's training samples for ``id``, a fifth of the OOD pool
            for the OOD kinds.
        ood_labels: true classes of the OOD source (``ood_foreign``, ``ood_mislabeled``),
            global indices ``N … N+M-1``.
        ood_num_classes: the OOD source's class count.
        split_class: first OOD class for ``ood_label_split``.
        ood_label_map: OOD class → task class, for ``ood_mislabeled``.
        flip_source: class ``a`` of a poisoning flip ``a → b``.
        flip_target: class ``b`` of a poisoning flip ``a → b``.
        flip_rate: fraction of the training samples of class ``a`` that are flipped, in (0, 1].
        target_fraction: share of the ID samples on the target side, in (0, 1).
        test_fraction: share of each side's ID samples held out as test data, in (0, 1).
        probe_fraction: size of ``probe`` relative to ``retain``, in (0, 0.01].
        validation_fraction: share of the target side's ID test samples moved to ``validation``,
            in (0, 1).
        validation_heldout_fraction: share of the forget-like non-members moved from
            ``reference`` to ``validation_heldout``, in (0, 1).

    Raises:
        ValueError: a setting outside its range, or one the data cannot provide.
        TypeError: a setting of the wrong type.
    """
    check_choice("kind", kind, FORGET_KINDS)
    check_integer("seed", seed, minimum=None)
    for name, value in (
        ("target_fraction", target_fraction),
        ("test_fraction", test_fraction),
        ("validation_fraction", validation_fraction),
        ("validation_heldout_fraction", validation_heldout_fraction),
    ):
        check_in_range(name, value, 0.0, 1.0, include_low=False, include_high=False)
    check_in_range("probe_fraction", probe_fraction, 0.0, 0.01, include_low=False, reason="at most 1 % of retain")
    if forget_size is not None:
        check_integer("forget_size", forget_size)

    rng = np.random.default_rng(seed)
    task_labels = np.asarray(task_labels, dtype=np.int64)
    all_task = np.arange(len(task_labels), dtype=np.int64)
    label_of = task_labels.copy()  # the true class of every global index, OOD appended below
    ood_pool = np.empty(0, dtype=np.int64)
    task_classes = num_classes

    if kind == "ood_label_split":
        if split_class is None:
            raise ValueError(
                "Expected `split_class` for kind='ood_label_split' (classes >= it form the OOD pool), but got None."
            )
        if not 1 <= split_class <= num_classes - 1:
            raise ValueError(
                f"Expected `split_class` to be between 1 and {num_classes - 1} (the dataset's labels are"
                f" 0–{num_classes - 1}), but got {split_class}."
            )
        id_pool = all_task[task_labels < split_class]
        ood_pool = all_task[task_labels >= split_class]
        task_classes = split_class
    elif kind in ("ood_foreign", "ood_mislabeled"):
        if ood_labels is None or ood_num_classes is None:
            raise ValueError(f"Expected an OOD source (`ood_source`) for kind={kind!r}, but got None.")
        ood_labels = np.asarray(ood_labels, dtype=np.int64)
        if len(ood_labels) == 0:
            raise ValueError(
                f"Expected a non-empty OOD source (`ood_source`) for kind={kind!r}, but it holds no sample."
            )
        id_pool = all_task
        ood_pool = len(task_labels) + np.arange(len(ood_labels), dtype=np.int64)
        label_of = np.concatenate([task_labels, ood_labels])
    else:
        id_pool = all_task

    if kind == "poison":
        if forget_size is not None:
            raise ValueError(
                "Expected `forget_size` to be None for kind='poison' (`flip_rate` sets the forget set),"
                f" but got {forget_size}."
            )
        for flip_name, flip_class in (("flip_source", flip_source), ("flip_target", flip_target)):
            if flip_class is None or not 0 <= flip_class < num_classes:
                raise ValueError(
                    f"Expected `{flip_name}` to be a class between 0 and {num_classes - 1} for kind='poison',"
                    f" but got {flip_class}."
                )
        if flip_source == flip_target:
            raise ValueError(f"Expected `flip_target` to differ from `flip_source`, but both are {flip_source}.")
        if flip_rate is None or not 0.0 < flip_rate <= 1.0:
            raise ValueError(f"Expected `flip_rate` to be in (0, 1], but got {flip_rate}.")

    # ID samples: target half / shadow half, then train / test inside each half.
    target_side, shadow_side = _stratified_partition(id_pool, label_of[id_pool], target_fraction, rng)
    target_test, target_id_train = _stratified_partition(target_side, label_of[target_side], test_fraction, rng)
    shadow_test, shadow_id_train = _stratified_partition(shadow_side, label_of[shadow_side], test_fraction, rng)
    if len(target_id_train) < 2 or len(target_test) < 2 or len(shadow_id_train) < 1 or len(shadow_test) < 1:
        raise ValueError(
            f"Expected enough in-distribution samples for target and shadow train/test splits, but only"
            f" {len(id_pool):,} are available (target_fraction={target_fraction}, test_fraction={test_fraction})."
        )

    # The validation pair has a generator of its own, so every other split is drawn as without it.
    validation_rng = np.random.default_rng([seed, 1])
    validation, target_test = _stratified_partition(
        target_test, label_of[target_test], validation_fraction, validation_rng, minimum=1
    )
    if len(validation) < 1 or len(target_test) < 2:
        raise ValueError(
            f"Expected `validation_fraction` ({validation_fraction}) to leave at least one `validation` sample and two"
            f" `test` samples of the target's {len(validation) + len(target_test):,} ID test samples, but it does not."
        )

    # The label each global index carries when it is trained on or evaluated as a member.
    carried = label_of.copy()
    splits: dict[str, Split] = {}

    if kind == "id":
        size = forget_size if forget_size is not None else max(1, len(target_id_train) // 10)
        if size > len(target_id_train) - 1:
            raise ValueError(
                f"Expected `forget_size` to be at most {len(target_id_train) - 1:,} (the target has"
                f" {len(target_id_train):,} training samples and retain must keep one), but got {size:,}."
            )
        forget = rng.choice(target_id_train, size=size, replace=False)
        retain = np.setdiff1d(target_id_train, forget)
        heldout, reference = _stratified_partition(target_test, label_of[target_test], 0.5, rng)
        validation_heldout, reference = _stratified_partition(
            reference, label_of[reference], validation_heldout_fraction, validation_rng, minimum=1
        )
        target_train = target_id_train
        shadow_train, shadow_nonmembers = shadow_id_train, shadow_test
    elif kind == "poison":
        assert flip_source is not None and flip_target is not None and flip_rate is not None  # checked above

        def flip(train: np.ndarray) -> np.ndarray:
            candidates = train[label_of[train] == flip_source]
            count = max(1, round(flip_rate * len(candidates)))
            return rng.choice(candidates, size=min(count, len(candidates)), replace=False)

        if not np.any(label_of[target_id_train] == flip_source):
            raise ValueError(
                f"Expected training samples of `flip_source` class {flip_source}, but the target has none."
            )
        forget = flip(target_id_train)
        shadow_flipped = flip(shadow_id_train) if np.any(label_of[shadow_id_train] == flip_source) else forget[:0]
        retain = np.setdiff1d(target_id_train, forget)
        # heldout: half of the unseen test samples of class a, labelled b like the forget set.
        test_sources = rng.permutation(target_test[label_of[target_test] == flip_source])
        heldout = test_sources[: max(1, len(test_sources) // 2)]
        unseen_sources = test_sources[len(heldout) :]
        validation_heldout = unseen_sources[: max(1, round(validation_heldout_fraction * len(unseen_sources)))]
        reference = np.setdiff1d(target_test, np.concatenate([heldout, validation_heldout]))
        shadow_sources = rng.permutation(shadow_test[label_of[shadow_test] == flip_source])
        shadow_heldout = shadow_sources[: len(shadow_sources) // 2]
        target_train = target_id_train
        shadow_train, shadow_nonmembers = shadow_id_train, shadow_test
        flipped_label = np.full(len(label_of), flip_target, dtype=np.int64)
    else:
        pool = rng.permutation(ood_pool)
        size = forget_size if forget_size is not None else max(1, len(pool) // 5)
        if 2 * size + 3 > len(pool):
            raise ValueError(
                f"Expected `forget_size` to be at most {(len(pool) - 3) // 2:,} (the OOD pool of {len(pool):,}"
                f" samples also feeds the shadow's insertions, `reference` and `heldout`), but got {size:,}."
            )
        forget, shadow_inserted, rest = pool[:size], pool[size : 2 * size], pool[2 * size :]
        third = len(rest) // 3
        heldout, reference, shadow_ood_out = rest[:third], rest[third : 2 * third], rest[2 * third :]
        cut = min(max(1, round(validation_heldout_fraction * len(reference))), len(reference) - 1)
        validation_heldout, reference = reference[:cut], reference[cut:]
        if kind == "ood_mislabeled":
            carried[ood_pool] = _mislabel(label_of[ood_pool], task_classes, ood_label_map, ood_num_classes, rng)
        else:
            carried[ood_pool] = rng.integers(0, task_classes, size=len(ood_pool))
        retain = target_id_train
        target_train = np.concatenate([target_id_train, forget])
        shadow_train = np.concatenate([shadow_id_train, shadow_inserted])
        shadow_nonmembers = np.concatenate([shadow_test, shadow_ood_out])

    probe_size = max(1, int(np.floor(probe_fraction * len(retain))))
    probe = rng.choice(retain, size=probe_size, replace=False)

    if kind == "poison":
        target_labels = carried[target_train].copy()
        target_labels[np.isin(target_train, forget)] = flip_target
        shadow_labels = carried[shadow_train].copy()
        shadow_labels[np.isin(shadow_train, shadow_flipped)] = flip_target
        shadow_test_labels = carried[shadow_nonmembers].copy()
        shadow_test_labels[np.isin(shadow_nonmembers, shadow_heldout)] = flip_target
        splits["target_train"] = Split.of(target_train, target_labels)
        splits["forget"] = Split.of(forget, flipped_label[forget])
        splits["heldout"] = Split.of(heldout, flipped_label[heldout])
        splits["validation_heldout"] = Split.of(validation_heldout, flipped_label[validation_heldout])
        splits["shadow_train"] = Split.of(shadow_train, shadow_labels)
        splits["shadow_test"] = Split.of(shadow_nonmembers, shadow_test_labels)
    else:
        splits["target_train"] = Split.of(target_train, carried[target_train])
        splits["forget"] = Split.of(forget, carried[forget])
        splits["heldout"] = Split.of(heldout, carried[heldout])
        splits["validation_heldout"] = Split.of(validation_heldout, carried[validation_heldout])
        splits["shadow_train"] = Split.of(shadow_train, carried[shadow_train])
        splits["shadow_test"] = Split.of(shadow_nonmembers, carried[shadow_nonmembers])
    splits["retain"] = Split.of(retain, carried[retain])
    splits["probe"] = Split.of(probe, carried[probe])
    # For `id` and `poison` the forget-like validation samples are ID test samples: keep them out of `test`.
    target_test = np.setdiff1d(target_test, validation_heldout)
    splits["test"] = Split.of(target_test, carried[target_test])
    splits["reference"] = Split.of(reference, carried[reference])
    splits["validation"] = Split.of(validation, carried[validation])
    if len(splits["validation_heldout"]) == 0:
        raise ValueError(
            f"Expected `validation_heldout_fraction` ({validation_heldout_fraction}) to leave at least one"
            " `validation_heldout` sample (non-members like the forget set, for every decision made while"
            " unlearning), but the pool it is drawn from is too small."
        )

    settings: dict[str, object] = {
        "kind": kind,
        "seed": seed,
        "forget_size": forget_size,
        "split_class": split_class,
        "ood_label_map": None if ood_label_map is None else {str(k): int(v) for k, v in ood_label_map.items()},
        "flip_source": flip_source,
        "flip_target": flip_target,
        "flip_rate": flip_rate,
        "target_fraction": target_fraction,
        "test_fraction": test_fraction,
        "probe_fraction": probe_fraction,
        "validation_fraction": validation_fraction,
        "validation_heldout_fraction": validation_heldout_fraction,
    }
    return UnlearningSplits(
        kind=kind,
        num_classes=task_classes,
        splits={name: splits[name] for name in SPLIT_NAMES},
        settings=settings,
    )


def _mislabel(
    true_labels: np.ndarray,
    task_classes: int,
    label_map: dict[int, int] | None,
    ood_num_classes: int | None,
    rng: np.random.Generator,
) -> np.ndarray:
    """Labels from the task's classes that differ from each OOD sample's own (mapped) class."""
    if label_map is None:
        if ood_num_classes != task_classes:
            raise ValueError(
                f"Expected `ood_label_map` for kind='ood_mislabeled' when the OOD source has {ood_num_classes}"
                f" classes and the task {task_classes}, but got None."
            )
        label_map = {c: c for c in range(task_classes)}
    label_map = {int(source_class): int(task_class) for source_class, task_class in label_map.items()}
    for source_class, task_class in label_map.items():
        if not 0 <= int(task_class) < task_classes:
            raise ValueError(
                f"Expected `ood_label_map` to map into the task's classes 0–{task_classes - 1}, but"
                f" {source_class} maps to {task_class}."
            )
    mapped = np.array([int(label_map.get(int(c), -1)) for c in true_labels], dtype=np.int64)
    random_labels = rng.integers(0, task_classes, size=len(true_labels))
    # A sample with a counterpart class gets any class but that one.
    shifted = (mapped + rng.integers(1, task_classes, size=len(true_labels))) % task_classes
    return np.where(mapped >= 0, shifted, random_labels)
