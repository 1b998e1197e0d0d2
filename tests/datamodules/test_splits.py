"""The splits (docs/evaluation.md, Splits): disjoint, complete, deterministic, and never leaking a forget
sample to the shadow side."""

from __future__ import annotations

import numpy as np
import pytest

from lightning_unlearn.datamodules import SPLIT_NAMES, UnlearningSplits, build_splits

NUM_CLASSES = 10
LABELS = np.repeat(np.arange(NUM_CLASSES), 60)  # 600 task samples, 60 per class
OOD_LABELS = np.repeat(np.arange(NUM_CLASSES), 40)  # 400 samples of another dataset

SCENARIOS = {
    "id": dict(kind="id", forget_size=40),
    "ood_label_split": dict(kind="ood_label_split", split_class=6),
    "ood_foreign": dict(kind="ood_foreign", ood_labels=OOD_LABELS, ood_num_classes=NUM_CLASSES),
    "ood_mislabeled": dict(kind="ood_mislabeled", ood_labels=OOD_LABELS, ood_num_classes=NUM_CLASSES),
    "poison": dict(kind="poison", flip_source=5, flip_target=3, flip_rate=0.2),
}


def build(scenario: str, seed: int = 0) -> UnlearningSplits:
    return build_splits(LABELS, NUM_CLASSES, seed=seed, **SCENARIOS[scenario])  # type: ignore[arg-type]


def ids(splits: UnlearningSplits, name: str) -> set[int]:
    return set(splits[name].indices.tolist())


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_splits_are_disjoint_and_consistent(scenario: str) -> None:
    splits = build(scenario)
    for name in SPLIT_NAMES:
        split = splits[name]
        assert len(np.unique(split.indices)) == len(split), f"{name} repeats a sample"
        assert len(split) > 0, f"{name} is empty"
    target_train, retain, forget = ids(splits, "target_train"), ids(splits, "retain"), ids(splits, "forget")
    assert retain | forget == target_train
    assert not retain & forget
    assert ids(splits, "probe") <= retain
    assert len(splits["probe"]) <= max(1, int(0.01 * len(retain)))
    non_members = ids(splits, "test") | ids(splits, "reference") | ids(splits, "heldout")
    assert not non_members & target_train
    assert not ids(splits, "reference") & ids(splits, "heldout")
    shadow = ids(splits, "shadow_train") | ids(splits, "shadow_test")
    assert not shadow & (target_train | non_members), "target and shadow halves overlap"
    assert not shadow & forget, "a forget sample reached the shadow side"
    assert not ids(splits, "shadow_train") & ids(splits, "shadow_test")


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_the_validation_pair_is_apart_from_every_reported_and_training_split(scenario: str) -> None:
    splits = build(scenario)
    validation, validation_heldout = ids(splits, "validation"), ids(splits, "validation_heldout")
    assert validation and validation_heldout
    assert not validation & validation_heldout
    for name in ("target_train", "test", "heldout", "reference", "shadow_train", "shadow_test"):
        assert not validation & ids(splits, name), f"validation overlaps {name}"
        assert not validation_heldout & ids(splits, name), f"validation_heldout overlaps {name}"
    # In-distribution non-members for accuracy; forget-like non-members, labelled like the forget set.
    true_class = np.concatenate([LABELS, OOD_LABELS])
    np.testing.assert_array_equal(splits["validation"].labels, true_class[splits["validation"].indices])
    if scenario == "poison":
        assert set(splits["validation_heldout"].labels.tolist()) == {3}
        assert set(true_class[splits["validation_heldout"].indices].tolist()) == {5}
    if scenario in ("ood_label_split",):
        assert (true_class[splits["validation_heldout"].indices] >= 6).all()
        assert (splits["validation_heldout"].labels < 6).all()


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_the_validation_pair_leaves_the_forget_set_and_the_shadow_side_as_they_were(scenario: str) -> None:
    small = build_splits(LABELS, NUM_CLASSES, validation_fraction=0.1, **SCENARIOS[scenario])  # type: ignore[arg-type]
    large = build_splits(
        LABELS, NUM_CLASSES, validation_fraction=0.4, validation_heldout_fraction=0.3, **SCENARIOS[scenario]
    )  # type: ignore[arg-type]
    for name in ("forget", "retain", "target_train", "shadow_train", "shadow_test"):
        np.testing.assert_array_equal(small[name].indices, large[name].indices)
    assert len(large["validation"]) > len(small["validation"])
    assert len(large["test"]) < len(small["test"])


@pytest.mark.parametrize(
    ("setting", "value", "message"),
    [
        ("validation_fraction", 0.0, r"`validation_fraction` to be in \(0, 1\)"),
        ("validation_heldout_fraction", 1.0, r"`validation_heldout_fraction` to be in \(0, 1\)"),
    ],
)
def test_validation_settings_are_checked(setting: str, value: float, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build_splits(LABELS, NUM_CLASSES, kind="ood_label_split", split_class=6, **{setting: value})


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_splits_use_every_sample(scenario: str) -> None:
    splits = build(scenario)
    used = set().union(*(ids(splits, name) for name in SPLIT_NAMES))
    total = len(LABELS) + (len(OOD_LABELS) if scenario in ("ood_foreign", "ood_mislabeled") else 0)
    assert used == set(range(total))


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_splits_are_deterministic_for_a_seed_and_differ_across_seeds(scenario: str) -> None:
    first, again, other = build(scenario, seed=3), build(scenario, seed=3), build(scenario, seed=4)
    for name in SPLIT_NAMES:
        np.testing.assert_array_equal(first[name].indices, again[name].indices)
        np.testing.assert_array_equal(first[name].labels, again[name].labels)
    assert not np.array_equal(first["forget"].indices, other["forget"].indices)


def test_id_forget_keeps_true_labels_and_reference_heldout_come_from_test() -> None:
    splits = build("id")
    np.testing.assert_array_equal(splits["forget"].labels, LABELS[splits["forget"].indices])
    assert ids(splits, "reference") | ids(splits, "heldout") == ids(splits, "test")
    assert len(splits["forget"]) == 40


def test_label_split_moves_high_classes_to_the_ood_pool_under_task_labels() -> None:
    splits = build("ood_label_split")
    assert splits.num_classes == 6
    forget = splits["forget"]
    assert np.all(LABELS[forget.indices] >= 6), "forget must hold OOD classes only"
    assert forget.labels.max() < 6 and forget.labels.min() >= 0
    assert np.all(LABELS[splits["retain"].indices] < 6)
    assert np.all(LABELS[splits["test"].indices] < 6)
    # heldout and reference come from the same OOD pool, labelled the same way (uniform over the task's classes).
    for name in ("heldout", "reference"):
        assert np.all(LABELS[splits[name].indices] >= 6)
        assert len(np.unique(splits[name].labels)) == 6
    # the shadow gets its own OOD insertions, as many as the target
    shadow_ood = [i for i in splits["shadow_train"].indices if LABELS[i] >= 6]
    assert len(shadow_ood) == len(forget)
    assert any(LABELS[i] >= 6 for i in splits["shadow_test"].indices)


def test_mislabeled_ood_samples_never_carry_their_own_class() -> None:
    splits = build("ood_mislabeled")
    forget = splits["forget"]
    assert np.all(forget.indices >= len(LABELS))
    true_classes = OOD_LABELS[forget.indices - len(LABELS)]
    assert np.all(forget.labels != true_classes)


def test_mislabeled_uses_the_label_map() -> None:
    label_map = {c: (c + 1) % NUM_CLASSES for c in range(NUM_CLASSES)}
    splits = build_splits(
        LABELS,
        NUM_CLASSES,
        kind="ood_mislabeled",
        ood_labels=OOD_LABELS,
        ood_num_classes=NUM_CLASSES,
        ood_label_map=label_map,
    )
    heldout = splits["heldout"]
    mapped = (OOD_LABELS[heldout.indices - len(LABELS)] + 1) % NUM_CLASSES
    assert np.all(heldout.labels != mapped)


def test_poison_flips_a_share_of_the_source_class() -> None:
    splits = build("poison")
    forget = splits["forget"]
    assert np.all(LABELS[forget.indices] == 5) and np.all(forget.labels == 3)
    train = splits["target_train"]
    source_in_train = np.sum(LABELS[train.indices] == 5)
    assert len(forget) == round(0.2 * source_in_train)
    flipped = train.labels[np.isin(train.indices, forget.indices)]
    assert np.all(flipped == 3)
    heldout = splits["heldout"]
    assert np.all(LABELS[heldout.indices] == 5) and np.all(heldout.labels == 3)
    assert ids(splits, "heldout") <= ids(splits, "test")
    # retain and reference keep clean labels
    np.testing.assert_array_equal(splits["retain"].labels, LABELS[splits["retain"].indices])
    np.testing.assert_array_equal(splits["reference"].labels, LABELS[splits["reference"].indices])


@pytest.mark.parametrize(
    ("settings", "error", "message"),
    [
        (
            dict(kind="id", forget_size=5000),
            ValueError,
            r"Expected `forget_size` to be at most 209 \(the target has 210 training samples.* but got 5,000",
        ),
        (
            dict(kind="ood_label_split", split_class=6, forget_size=200),
            ValueError,
            r"Expected `forget_size` to be at most 118 \(the OOD pool of 240 samples",
        ),
        (dict(kind="id", forget_size=0), ValueError, r"Expected `forget_size` to be a positive integer, but got 0"),
        (dict(kind="id", forget_size=2.5), TypeError, r"Expected `forget_size` to be an integer, but got float"),
        (
            dict(kind="ood_label_split", split_class=12),
            ValueError,
            r"Expected `split_class` to be between 1 and 9 \(the dataset's labels are 0–9\), but got 12",
        ),
        (dict(kind="ood_label_split"), ValueError, r"Expected `split_class` for kind='ood_label_split'"),
        (dict(kind="ood_foreign"), ValueError, r"Expected an OOD source \(`ood_source`\) for kind='ood_foreign'"),
        (
            dict(kind="poison", flip_source=5, flip_target=3, flip_rate=0.0),
            ValueError,
            r"Expected `flip_rate` to be in \(0, 1\], but got 0.0",
        ),
        (
            dict(kind="poison", flip_source=5, flip_target=3, flip_rate=1.5),
            ValueError,
            r"Expected `flip_rate` to be in \(0, 1\], but got 1.5",
        ),
        (
            dict(kind="poison", flip_source=11, flip_target=3, flip_rate=0.1),
            ValueError,
            r"Expected `flip_source` to be a class between 0 and 9 for kind='poison', but got 11",
        ),
        (
            dict(kind="poison", flip_source=3, flip_target=3, flip_rate=0.1),
            ValueError,
            r"Expected `flip_target` to differ from `flip_source`, but both are 3",
        ),
        (
            dict(kind="poison", flip_source=5, flip_target=3, flip_rate=0.1, forget_size=3),
            ValueError,
            r"Expected `forget_size` to be None for kind='poison'",
        ),
        (dict(kind="unlearn_everything"), ValueError, r"Expected `kind` to be one of \['id', 'ood_label_split'"),
        (dict(kind="id", test_fraction=1.0), ValueError, r"Expected `test_fraction` to be in \(0, 1\), but got 1.0"),
        (
            dict(kind="id", probe_fraction=0.05),
            ValueError,
            r"Expected `probe_fraction` to be in \(0, 0.01\] \(at most 1 % of retain\), but got 0.05",
        ),
        (
            dict(kind="ood_mislabeled", ood_labels=np.arange(7), ood_num_classes=7),
            ValueError,
            r"Expected `ood_label_map` for kind='ood_mislabeled' when the OOD source has 7 classes and the task 10",
        ),
        (
            dict(kind="ood_mislabeled", ood_labels=OOD_LABELS, ood_num_classes=10, ood_label_map={0: 12}),
            ValueError,
            r"Expected `ood_label_map` to map into the task's classes 0–9, but 0 maps to 12",
        ),
    ],
)
def test_bad_settings_are_refused(settings: dict, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        build_splits(LABELS, NUM_CLASSES, **settings)


def test_label_map_keys_from_yaml_strings_work_like_integers() -> None:
    as_integers = {c: (c + 1) % NUM_CLASSES for c in range(NUM_CLASSES)}
    as_strings = {str(c): v for c, v in as_integers.items()}
    common = dict(kind="ood_mislabeled", ood_labels=OOD_LABELS, ood_num_classes=NUM_CLASSES, seed=2)
    first = build_splits(LABELS, NUM_CLASSES, ood_label_map=as_integers, **common)  # type: ignore[arg-type]
    second = build_splits(LABELS, NUM_CLASSES, ood_label_map=as_strings, **common)  # type: ignore[arg-type]
    np.testing.assert_array_equal(first["forget"].labels, second["forget"].labels)
