"""No method reads `test` or `heldout`: replacing them leaves every method's model bit-identical.

Those two splits are the final report's alone; every decision made while unlearning (stopping,
acceptance, the accuracy floor's reference) reads the validation pair. The proof: build the same
experiment twice, the second time with `test` and `heldout` swapped for other samples, run every
method of the pipeline on both, and compare the unlearned weights bit for bit.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from lightning_unlearn import DigitsDataModule, TrainingRecipe
from lightning_unlearn.pipeline import METHODS, ExperimentContext, _train_target

#: Every method, with settings small enough for a few seconds each.
SETTINGS: dict[str, dict[str, object]] = {
    "forsaken[paper]": {"iterations": 8},
    # the shadow model's P, a retained sample, and the stopping rule on the validation pair (never test or heldout)
    "forsaken[recommended]": {"iterations": 8},
    "fnn": {"turns": 2, "early_stopping": {"tolerance": 0.2}},
    "sisa": {"num_shards": 2, "num_slices": 2},
    "sisa_dp": {"num_shards": 2, "num_slices": 2},
    "smu": {},
    "finetune": {"max_epochs": 1},
    "neggrad": {"max_epochs": 1},
    "neggrad_plus": {"max_epochs": 1},
    "random_labels": {"max_epochs": 1},
    "salun": {"max_epochs": 1},
    "scrub": {"max_epochs": 2, "rewind": True},  # rewinding reads the validation pair
    "l1_sparse": {"max_epochs": 1},
}


def _with_other_test_and_heldout(manifest: Path, out: Path) -> Path:
    """The same manifest with `test` and `heldout` replaced by other non-members (shadow-side samples)."""
    content = json.loads(manifest.read_text())
    splits = content["splits"]
    pool = np.asarray(splits["shadow_test"]["indices"])
    labels = np.asarray(splits["shadow_test"]["labels"])
    order = np.random.default_rng(7).permutation(len(pool))
    for name, chosen in (("test", order[:60]), ("heldout", order[60:150])):
        assert not set(pool[chosen].tolist()) & set(splits[name]["indices"])
        splits[name] = {"indices": pool[chosen].tolist(), "labels": labels[chosen].tolist()}
    out.write_text(json.dumps(content))
    return out


def _unlearn_all(datamodule: DigitsDataModule, work_dir: Path) -> dict[str, dict[str, torch.Tensor]]:
    datamodule.setup("fit")
    recipe = TrainingRecipe(max_epochs=15)
    quiet = {"enable_progress_bar": False}
    target, recorder, _ = _train_target(recipe, datamodule, quiet)
    context = ExperimentContext(
        datamodule=datamodule,
        recipe=recipe,
        target=target,
        recorder=recorder,
        retrained=target,  # no method reads it
        oracle=None,  # type: ignore[arg-type]  # no method reads it
        work_dir=work_dir,
        progress_bar=False,
        seed=0,
    )
    return {name: METHODS[name](context, **dict(settings)).model.state_dict() for name, settings in SETTINGS.items()}


def test_replacing_test_and_heldout_leaves_every_method_bit_identical(tmp_path: Path) -> None:
    assert set(SETTINGS) == set(METHODS), "every method of the pipeline is checked"
    original = DigitsDataModule(seed=0)
    original.setup()
    manifest = original.save_manifest(tmp_path / "manifest.json")
    swapped = DigitsDataModule(manifest=_with_other_test_and_heldout(manifest, tmp_path / "swapped.json"))
    swapped.setup()
    assert not np.array_equal(original.splits["heldout"].indices, swapped.splits["heldout"].indices)
    assert not np.array_equal(original.splits["test"].indices, swapped.splits["test"].indices)

    first = _unlearn_all(original, tmp_path / "first")
    second = _unlearn_all(swapped, tmp_path / "second")
    for name in SETTINGS:
        assert first[name].keys() == second[name].keys()
        for key, value in first[name].items():
            assert torch.equal(value, second[name][key]), f"{name}: {key} depends on test or heldout"
