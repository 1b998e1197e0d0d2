"""UnlearningDataModule: batches with global indices, summaries, manifests, DDP ranks."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch

from lightning_unlearn.callbacks import ReleaseSpawnedProcessGroup
from lightning_unlearn.datamodules import (
    SPLIT_NAMES,
    DataSource,
    DigitsDataModule,
    DigitsSource,
    IndexedBatch,
    SourceData,
    UnlearningDataModule,
)
from lightning_unlearn.models import MLP
from lightning_unlearn.modules import ClassifierModule


class ShuffledDigits(DataSource):
    """Digits with labels permuted: same size and shape, other data."""

    name = "digits"

    def load(self) -> SourceData:
        data = DigitsSource().load()
        return SourceData("digits", data.inputs, data.targets.flip(0), 10)


def built(**kwargs: object) -> DigitsDataModule:
    dm = DigitsDataModule(**kwargs)  # type: ignore[arg-type]
    dm.setup()
    return dm


def test_batches_carry_inputs_labels_and_global_indices() -> None:
    dm = built(seed=0, batch_size=32)
    batch = next(iter(dm.train_dataloader()))
    assert isinstance(batch, IndexedBatch)
    assert batch.inputs.shape == (32, 64) and batch.inputs.dtype == torch.float32
    split = dm.splits["target_train"]
    label_of = dict(zip(split.indices.tolist(), split.labels.tolist()))
    assert all(label_of[int(i)] == int(y) for i, y in zip(batch.indices, batch.targets))
    raw = DigitsSource().load()
    torch.testing.assert_close(batch.inputs, raw.inputs[batch.indices])


def test_uint8_images_are_scaled_to_unit_range() -> None:
    class TinyImages(DataSource):
        name = "tiny"

        def load(self) -> SourceData:
            inputs = torch.full((200, 1, 4, 4), 255, dtype=torch.uint8)
            return SourceData("tiny", inputs, torch.arange(200) % 4, 4)

    dm = UnlearningDataModule(TinyImages(), kind="id", forget_size=5)
    dm.setup()
    batch = next(iter(dm.dataloader("forget")))
    assert batch.inputs.dtype == torch.float32 and torch.all(batch.inputs == 1.0)
    assert dm.input_shape == (1, 4, 4)


def test_side_selects_the_shadow_splits() -> None:
    dm = built(side="shadow")
    train_indices = torch.cat([b.indices for b in dm.train_dataloader()])
    assert set(train_indices.tolist()) == set(dm.splits["shadow_train"].indices.tolist())
    val_indices = torch.cat([b.indices for b in dm.val_dataloader()])
    assert set(val_indices.tolist()) == set(dm.splits["shadow_test"].indices.tolist())


def test_summary_lists_every_split_with_sizes() -> None:
    dm = built()
    text = dm.summary()
    assert "kind=ood_label_split" in text and "dataset=digits" in text
    for name in SPLIT_NAMES:
        line = next(line for line in text.splitlines() if line.startswith(name + " "))
        assert f"{len(dm.splits[name]):,}" in line


def test_manifest_round_trip(tmp_path: Path) -> None:
    dm = built(seed=7, forget_size=120)
    path = dm.save_manifest(tmp_path / "splits" / "manifest.json")
    content = json.loads(path.read_text())
    assert content["dataset"]["name"] == "digits" and content["kind"] == "ood_label_split"
    again = built(manifest=path)
    for name in SPLIT_NAMES:
        np.testing.assert_array_equal(dm.splits[name].indices, again.splits[name].indices)
        np.testing.assert_array_equal(dm.splits[name].labels, again.splits[name].labels)
    assert again.num_classes == dm.num_classes == 5
    assert again.splits.settings["seed"] == 7


def test_manifest_from_other_data_is_refused(tmp_path: Path) -> None:
    path = built().save_manifest(tmp_path / "manifest.json")
    other = UnlearningDataModule(ShuffledDigits(), kind="ood_label_split", split_class=5, manifest=path)
    with pytest.raises(
        ValueError,
        match=r"Expected `manifest` .* to describe the dataset 'digits' \(1,797 samples, "
        r"fingerprint [0-9a-f]+\), but it was built for 'digits' \(1,797 samples, fingerprint",
    ):
        other.setup()


def test_manifest_of_another_kind_is_refused(tmp_path: Path) -> None:
    path = built().save_manifest(tmp_path / "manifest.json")
    with pytest.raises(ValueError, match=r"to hold a kind='id' forget set, but it holds kind='ood_label_split'"):
        built(kind="id", manifest=path)


def test_missing_or_corrupt_manifest_is_refused(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"Expected `manifest` to be a saved split manifest, but .* does not"):
        built(manifest=tmp_path / "nowhere.json")
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(
        ValueError, match=r"Expected `manifest` .* to be a JSON split manifest, but it cannot be parsed"
    ):
        built(manifest=broken)
    foreign = tmp_path / "foreign.json"
    foreign.write_text(json.dumps({"hello": "world"}))
    with pytest.raises(ValueError, match=r"to be a 'lightning-unlearn/split-manifest' file, but it is not"):
        built(manifest=foreign)


def test_tampered_manifest_indices_are_refused(tmp_path: Path) -> None:
    path = built().save_manifest(tmp_path / "manifest.json")
    content = json.loads(path.read_text())
    content["splits"]["forget"]["indices"][0] = 10_000
    path.write_text(json.dumps(content))
    with pytest.raises(
        ValueError, match=r"Expected the indices of split 'forget' .* to be below 1,797, but got 10,000"
    ):
        built(manifest=path)


def test_failed_manifest_write_leaves_nothing_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dm = built()
    path = tmp_path / "manifest.json"
    path.write_text("previous manifest")

    def failing_replace(source: str, destination: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk full"):
        dm.save_manifest(path)
    assert path.read_text() == "previous manifest", "the earlier manifest must stay valid"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["manifest.json"], "no temporary file may remain"


def test_failed_setup_writes_nothing(tmp_path: Path) -> None:
    dm = DigitsDataModule(kind="id", forget_size=100_000, manifest=None)
    with pytest.raises(ValueError, match="Expected `forget_size` to be at most"):
        dm.setup()
    with pytest.raises(RuntimeError, match=r"The splits are not built yet: call `setup\(\)`"):
        dm.save_manifest(tmp_path / "manifest.json")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        (dict(kind="ood_foreign"), ValueError, r"Expected `ood_source` \(the other dataset\) for kind='ood_foreign'"),
        (dict(side="both"), ValueError, r"Expected `side` to be 'target' or 'shadow', but got 'both'"),
        (dict(batch_size=0), ValueError, r"Expected `batch_size` to be a positive integer, but got 0"),
        (dict(kind="poison", flip_rate=2.0), ValueError, r"Expected `flip_rate` to be in \(0, 1\], but got 2.0"),
        (dict(kind="forget_all"), ValueError, r"Expected `kind` to be one of"),
    ],
)
def test_bad_datamodule_settings_fail_in_init(kwargs: dict, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        DigitsDataModule(**kwargs)


def test_source_must_be_a_data_source() -> None:
    with pytest.raises(TypeError, match="Expected `source` to be a DataSource, but got str"):
        UnlearningDataModule("digits")  # type: ignore[arg-type]


def test_unknown_split_name_is_refused() -> None:
    with pytest.raises(ValueError, match=r"Expected `split` to be one of \['target_train'.*but got 'train'"):
        built().dataloader("train")


def test_splits_before_setup_raise() -> None:
    with pytest.raises(RuntimeError, match="The splits are not built yet"):
        _ = DigitsDataModule().splits


# ---------------------------------------------------------------- DDP: same splits on every rank
class _RecordSplits(L.Callback):
    """Gathers each rank's split digest and the indices it trains on."""

    def __init__(self, out: str) -> None:
        self.out = out

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        datamodule = trainer.datamodule
        digest = hashlib.sha256(json.dumps(datamodule.manifest_dict()["splits"]).encode()).digest()
        local = torch.tensor(list(digest[:16]), dtype=torch.int64)
        gathered = trainer.strategy.all_gather(local)
        if trainer.is_global_zero:
            Path(self.out).write_text(json.dumps({"digests": gathered.tolist(), "world": trainer.world_size}))


@pytest.mark.ddp
def test_every_ddp_rank_builds_the_same_splits(tmp_path: Path) -> None:
    out = tmp_path / "ranks.json"
    dm = DigitsDataModule(seed=11)
    trainer = L.Trainer(
        accelerator="cpu",
        devices=2,
        strategy="ddp_spawn",
        max_steps=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        limit_val_batches=0,
        callbacks=[_RecordSplits(str(out)), ReleaseSpawnedProcessGroup()],
    )
    trainer.fit(ClassifierModule(MLP(64, 5, hidden=(8,))), datamodule=dm)
    result = json.loads(out.read_text())
    assert result["world"] == 2
    first, second = result["digests"]
    assert first == second, "DDP ranks built different splits"
    local = built(seed=11)
    expected = hashlib.sha256(json.dumps(local.manifest_dict()["splits"]).encode()).digest()
    assert first == list(expected[:16]), "DDP splits differ from the single-process splits"
