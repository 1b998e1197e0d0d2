"""Forgetting layers, τ policies, insertion, consolidation, the phase schedule and FNNModule."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from torch import nn

from lightning_unlearn import TrainingRecipe, predict, train_classifier
from lightning_unlearn.datamodules import DigitsDataModule
from lightning_unlearn.metrics import mia_score_from_logits
from lightning_unlearn.models import MLP, SmallCNN
from lightning_unlearn.modules.fnn import (
    FNNModule,
    ForgettingBlock,
    ForgettingLayer,
    PhaseStep,
    forgetting_rates,
    fully_connected_layers,
    insert_forgetting_layers,
    last_fully_connected_layers,
    mean_activations,
    phase_schedule,
    remove_forgetting_layers,
)
from lightning_unlearn.plots import plot_learning_unlearning_curve


def _mlp(seed: int = 0) -> MLP:
    torch.manual_seed(seed)
    return MLP(64, 5, hidden=(32, 16))


@pytest.fixture(scope="module")
def digits() -> DigitsDataModule:
    dm = DigitsDataModule(seed=0)
    dm.setup()
    return dm


@pytest.fixture(scope="module")
def target(digits: DigitsDataModule) -> nn.Module:
    """The digits MLP trained on ``target_train``: it memorised the OOD forget set under its random labels."""
    return train_classifier(TrainingRecipe(trainer_kwargs=dict(enable_progress_bar=False)), digits).module.backbone


def _trainer(**kwargs: Any) -> L.Trainer:
    settings: dict[str, Any] = dict(
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        max_epochs=100,  # FNNModule stops with its schedule
    )
    settings.update(kwargs)
    return L.Trainer(**settings)


# ---------------------------------------------------------------------------- the layer
def test_retention_is_exactly_the_ebbinghaus_curve() -> None:
    tau = [0.5, 1.0, 4.0, 30.0]
    layer = ForgettingLayer(tau)
    assert torch.equal(layer.retention(), torch.ones(4))  # t = 0
    for t in (1.0, 2.5, 7.0):
        layer.set_clock(t)
        expected = torch.tensor([math.exp(-t / value) for value in tau])
        torch.testing.assert_close(layer.retention(), expected, rtol=1e-6, atol=0.0)
        inputs = torch.randn(3, 4)
        torch.testing.assert_close(layer(inputs), inputs * expected, rtol=1e-6, atol=1e-7)
    layer.reset_clock()
    layer.advance()
    layer.advance(2.0)
    assert layer.time == 3.0
    assert list(layer.parameters()) == []  # nothing trainable
    assert set(layer.state_dict()) == {"tau", "clock"}


def test_forgetting_layer_scales_channels_of_feature_maps() -> None:
    layer = ForgettingLayer([1.0, 2.0])
    layer.set_clock(1.0)
    maps = torch.ones(1, 2, 3, 3)
    out = layer(maps)
    torch.testing.assert_close(out[0, 1], torch.full((3, 3), math.exp(-0.5)))


# ---------------------------------------------------------------------------- placement
def test_fully_connected_layer_helpers() -> None:
    model = _mlp()
    assert fully_connected_layers(model) == ["1", "3"]
    assert last_fully_connected_layers(model, 1) == ["3"]  # 1-L
    assert last_fully_connected_layers(model, 2) == ["1", "3"]  # 2-L
    cnn = SmallCNN(1, 5, image_size=8)
    assert last_fully_connected_layers(cnn, 1) == ["classifier.1"]
    with pytest.raises(ValueError, match=r"at least 3 hidden fully connected layers, but it has 2"):
        last_fully_connected_layers(model, 3)


@pytest.mark.parametrize("after", [["3"], ["1", "3"]])
def test_insertion_keeps_outputs_identical_at_t0(after: list[str]) -> None:
    model = _mlp()
    inputs = torch.randn(16, 64)
    before = model(inputs)
    layers = insert_forgetting_layers(model, after, tau=3.0)
    assert list(layers) == after
    assert torch.equal(model(inputs), before)
    assert isinstance(model.get_submodule(after[-1]), ForgettingBlock)


def test_insertion_into_named_submodules_of_a_cnn() -> None:
    torch.manual_seed(0)
    cnn = SmallCNN(1, 5, image_size=8)
    inputs = torch.randn(4, 64)
    before = cnn(inputs)
    insert_forgetting_layers(cnn, ["features.0", "classifier.1"], tau=2.0)
    assert torch.equal(cnn(inputs), before)


def test_remove_restores_the_architecture() -> None:
    model = _mlp()
    keys = list(model.state_dict())
    insert_forgetting_layers(model, ["1", "3"])
    assert "3.forgetting.tau" in model.state_dict()
    remove_forgetting_layers(model)
    assert list(model.state_dict()) == keys


def test_unknown_layer_lists_the_available_names() -> None:
    with pytest.raises(ValueError, match=r"but got 'fc9'; available: \['0', '1', '2', '3', '4', '5'\]"):
        insert_forgetting_layers(_mlp(), ["fc9"])


def test_layer_without_per_neuron_weight_is_rejected() -> None:
    with pytest.raises(TypeError, match=r"Expected layer '2' to have a weight with one row per neuron"):
        insert_forgetting_layers(_mlp(), ["2"])  # a ReLU


# ---------------------------------------------------------------------------- consolidation
@pytest.mark.parametrize("after", [["3"], ["1", "3"], ["features.3", "classifier.1"]])
def test_consolidation_equivalence(after: list[str]) -> None:
    torch.manual_seed(1)
    model: nn.Module = SmallCNN(1, 5, image_size=8) if after[0].startswith("features") else _mlp(1)
    inputs = torch.randn(8, 64)
    rates = {}
    for name in after:
        neurons = int(model.get_parameter(f"{name}.weight").shape[0])
        rates[name] = forgetting_rates("random", neurons, tau_min=1.0, tau_max=6.0, seed=3)
    layers = insert_forgetting_layers(model, after, tau=rates)
    for layer in layers.values():
        layer.set_clock(3.0)
    blocks: dict[str, ForgettingBlock] = {}
    for name in after:
        block = model.get_submodule(name)
        assert isinstance(block, ForgettingBlock)
        blocks[name] = block
    decayed_activations = {name: block(_block_input(model, name, inputs)) for name, block in blocks.items()}
    decayed = model(inputs)
    for block in blocks.values():
        block.consolidate()
        assert block.forgetting.time == 0.0
    torch.testing.assert_close(model(inputs), decayed, rtol=1e-5, atol=1e-6)
    for name, block in blocks.items():
        # At t = 0 the block is its layer alone: the consolidated weights give the decayed activations.
        consolidated_activations = block.layer(_block_input(model, name, inputs))
        torch.testing.assert_close(consolidated_activations, decayed_activations[name], rtol=1e-5, atol=1e-6)


def _block_input(model: nn.Module, name: str, inputs: torch.Tensor) -> torch.Tensor:
    captured: list[torch.Tensor] = []
    handle = model.get_submodule(name).register_forward_pre_hook(lambda _, args: captured.append(args[0]))
    with torch.no_grad():
        model(inputs)
    handle.remove()
    return captured[0]


# ---------------------------------------------------------------------------- τ policies
def test_fixed_policy() -> None:
    assert torch.equal(forgetting_rates("fixed", 5, tau=7.0), torch.full((5,), 7.0))


def test_rank_policy_gives_the_most_active_neuron_the_largest_tau() -> None:
    activations = torch.tensor([0.3, 2.0, 0.0, 1.1])
    rates = forgetting_rates("rank", 4, tau_min=1.0, tau_max=4.0, activations=activations)
    assert torch.equal(rates, torch.tensor([2.0, 4.0, 1.0, 3.0]))
    order = torch.argsort(activations, descending=True)
    assert torch.all(rates[order][:-1] > rates[order][1:])


def test_ordered_policy_follows_position() -> None:
    rates = forgetting_rates("ordered", 5, tau_min=1.0, tau_max=5.0)
    assert torch.equal(rates, torch.tensor([5.0, 4.0, 3.0, 2.0, 1.0]))


def test_top_k_policy_grades_only_the_k_most_active() -> None:
    activations = torch.tensor([0.1, 0.9, 0.5, 0.7, 0.0, 0.2])
    rates = forgetting_rates("top_k", 6, tau=3.0, tau_min=1.0, tau_max=9.0, k=3, activations=activations)
    assert torch.equal(rates, torch.tensor([3.0, 9.0, 3.0, 6.0, 3.0, 3.0]))  # 0.9 > 0.7 > 0.5 graded 9 → 3, rest 3
    with pytest.raises(ValueError, match=r"Expected `tau` \(the τ of the neurons outside the top k\) to be at most"):
        forgetting_rates("top_k", 6, tau=12.0, tau_max=9.0, k=3, activations=activations)


def test_random_policy_is_a_seeded_permutation() -> None:
    graded = forgetting_rates("ordered", 10, tau_min=1.0, tau_max=10.0)
    first = forgetting_rates("random", 10, tau_min=1.0, tau_max=10.0, seed=4)
    assert torch.equal(first, forgetting_rates("random", 10, tau_min=1.0, tau_max=10.0, seed=4))
    assert not torch.equal(first, forgetting_rates("random", 10, tau_min=1.0, tau_max=10.0, seed=5))
    assert torch.equal(torch.sort(first).values, torch.sort(graded).values)


def test_mean_activations_are_the_positive_part_of_the_layer_output() -> None:
    linear = nn.Linear(2, 2)
    model = nn.Sequential(linear)
    with torch.no_grad():
        linear.weight.copy_(torch.tensor([[1.0, 0.0], [-1.0, 0.0]]))
        linear.bias.zero_()
    loader = [(torch.tensor([[1.0, 0.0], [3.0, 0.0], [-2.0, 0.0]]),)]
    means = mean_activations(model, ["0"], loader)  # type: ignore[arg-type]
    torch.testing.assert_close(means["0"], torch.tensor([4.0 / 3.0, 2.0 / 3.0]))


# ---------------------------------------------------------------------------- schedule
def test_phase_schedule_order() -> None:
    steps = phase_schedule(turns=2, learn_epochs=2, unlearn_epochs=3)
    assert [(s.turn, s.phase, s.clock, s.ends_phase) for s in steps] == [
        (0, "learn", 0, False),
        (0, "learn", 0, True),
        (0, "unlearn", 1, False),
        (0, "unlearn", 2, False),
        (0, "unlearn", 3, True),
        (1, "learn", 0, False),
        (1, "learn", 0, True),
        (1, "unlearn", 1, False),
        (1, "unlearn", 2, False),
        (1, "unlearn", 3, True),
    ]
    assert [s.epoch for s in steps] == list(range(10))
    assert len(phase_schedule()) == 30  # default 5 × (2, 4)


# ---------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("build", "error", "match"),
    [
        (lambda: ForgettingLayer([1.0, 0.0]), ValueError, r"Expected `tau` to be positive, but got 0.0."),
        (lambda: ForgettingLayer([-2.0]), ValueError, r"Expected `tau` to be positive, but got -2.0."),
        (lambda: forgetting_rates("fixed", 3, tau=0.0), ValueError, r"Expected `tau` to be positive, but got 0.0."),
        (lambda: insert_forgetting_layers(_mlp(), ["3"], tau=-1.0), ValueError, r"`tau` to be positive, but got -1.0"),
        (lambda: FNNModule(_mlp(), tau_min=0.0), ValueError, r"Expected `tau_min` to be positive, but got 0.0."),
        (lambda: FNNModule(_mlp(), tau_min=5.0, tau_max=4.0), ValueError, r"`tau_min` to be at most `tau_max`"),
        (
            lambda: forgetting_rates("decay", 3),  # type: ignore[arg-type]
            ValueError,
            r"Expected `policy` to be one of \['fixed', 'rank', 'ordered', 'top_k', 'random'\], but got 'decay'.",
        ),
        (lambda: FNNModule(_mlp(), policy="decay"), ValueError, r"Expected `policy` to be one of"),  # type: ignore[arg-type]
        (
            lambda: forgetting_rates("top_k", 16, k=30, activations=torch.zeros(16)),
            ValueError,
            r"Expected `k` to be at most the layer's 16 neurons, but got 30.",
        ),
        (
            lambda: FNNModule(_mlp(), policy="top_k", placement="1-L"),
            ValueError,
            r"Expected `k` to be at most the 16 neurons of layer '3', but got 30.",
        ),
        (lambda: phase_schedule(turns=0), ValueError, r"Expected `turns` to be a positive integer, but got 0."),
        (
            lambda: FNNModule(_mlp(), learn_epochs=0),
            ValueError,
            r"Expected `learn_epochs` to be a positive integer, but got 0.",
        ),
        (
            lambda: FNNModule(_mlp(), unlearn_epochs=0),
            ValueError,
            r"`unlearn_epochs` to be a positive integer, but got 0.",
        ),
        (lambda: FNNModule(_mlp(), turns=0), ValueError, r"Expected `turns` to be a positive integer, but got 0."),
        (lambda: FNNModule(_mlp(), placement="3-L"), ValueError, r"Expected `placement` to be one of"),  # type: ignore[arg-type]
        (lambda: FNNModule(_mlp(), layers=["9"]), ValueError, r"but got '9'; available:"),
        (lambda: FNNModule(_mlp(), activation_split="train"), ValueError, r"`activation_split` to be one of"),
        (
            lambda: FNNModule(_mlp(), activation_split="test"),
            ValueError,
            r"`test` and `heldout` are the final report's\), but got 'test'",
        ),
        (lambda: ForgettingLayer([1.0]).set_clock(-1.0), ValueError, r"clock `t` to be a non-negative number"),
    ],
)
def test_bad_input(build: Any, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        build()


# ---------------------------------------------------------------------------- FNNModule
def test_rank_policy_reads_the_probe_split(digits: DigitsDataModule, attach: Any) -> None:
    fnn = FNNModule(_mlp(), policy="rank", placement="1-L")
    attach(fnn, digits)  # setup() assigns the rates from the attached datamodule's probe split
    rates = fnn.assign_forgetting_rates()
    activations = mean_activations(fnn.model, ["3"], digits.dataloader("probe"))["3"]
    most_active = int(torch.argmax(activations))
    assert rates["3"][most_active] == fnn.tau_max
    assert torch.equal(fnn.forgetting_layers["3"].tau, rates["3"])


def test_a_short_max_epochs_is_reported(digits: DigitsDataModule) -> None:
    fnn = FNNModule(_mlp(), policy="ordered", turns=1, learn_epochs=1, unlearn_epochs=1)
    with pytest.warns(UserWarning, match=r"`max_epochs`=1 ends the run before the schedule's 2 epochs"):
        _trainer(max_epochs=1, limit_train_batches=1, limit_val_batches=0).fit(fnn, datamodule=digits)


def test_a_target_with_other_classes_is_refused(digits: DigitsDataModule) -> None:
    fnn = FNNModule(MLP(64, 7, hidden=(32, 16)), policy="ordered", turns=1, learn_epochs=1,
                    unlearn_epochs=1)  # fmt: skip
    with pytest.raises(RuntimeError, match=r"Expected `target` to produce 5 logits .* but it produces 7."):
        _trainer().fit(fnn, datamodule=digits)


def test_fit_without_a_datamodule_is_refused(digits: DigitsDataModule) -> None:
    fnn = FNNModule(_mlp(), policy="ordered", turns=1, learn_epochs=1, unlearn_epochs=1)
    with pytest.raises(RuntimeError, match=r"Expected `trainer.fit\(fnnmodule, datamodule=dm\)`"):
        _trainer().fit(fnn, train_dataloaders=digits.dataloader("retain"))


def _mia(model: nn.Module, datamodule: DigitsDataModule) -> float:
    """The MIA score of the forget set (members) against ``heldout`` (non-members of its distribution)."""
    forget = predict(model, datamodule.dataloader("forget"))
    heldout = predict(model, datamodule.dataloader("heldout"))
    return mia_score_from_logits(forget.logits, forget.targets, heldout.logits, heldout.targets).score


def test_one_turn_lowers_the_mia_score(target: nn.Module, digits: DigitsDataModule) -> None:
    """One learn/unlearn turn, no early stopping: the attack loses much of its edge (about 0.94 → 0.72)."""
    fnn = FNNModule(target, policy="rank", placement="2-L", turns=1)
    _trainer(max_epochs=fnn.total_epochs).fit(fnn, datamodule=digits)
    before, after = _mia(target, digits), _mia(fnn.unlearned_model(), digits)
    assert before >= 0.85  # the target's forget set stands out
    # A method that did nothing would score `before`; the same epochs on retain without the decay reach 0.85.
    assert after <= before - 0.15, (before, after)


def _schedule_of(history: list[dict[str, Any]]) -> list[tuple[int, int, int, int]]:
    return [(row["epoch"], row["turn"], row["phase"], row["clock"]) for row in history]


def test_schedule_runs_and_resumes_mid_schedule(digits: DigitsDataModule, tmp_path: Path) -> None:
    settings: dict[str, Any] = dict(policy="rank", turns=2, learn_epochs=1, unlearn_epochs=2)
    expected = [(s.epoch, s.turn, 0 if s.phase == "learn" else 1, s.clock) for s in phase_schedule(2, 1, 2)]

    full = FNNModule(_mlp(), **settings)
    checkpoints = ModelCheckpoint(dirpath=tmp_path, filename="{epoch}", save_top_k=-1, every_n_epochs=1)
    trainer = _trainer(enable_checkpointing=True, callbacks=[checkpoints])
    trainer.fit(full, datamodule=digits)
    assert trainer.current_epoch == full.total_epochs == 6  # stops with the schedule, not max_epochs
    assert _schedule_of(full.history) == expected
    assert full.consolidations == 2
    assert all(layer.time == 0.0 for layer in full.forgetting_layers.values())
    assert all(0.0 <= row["mia"] <= 1.0 and 0.0 <= row["acc"] <= 1.0 for row in full.history)
    assert set(trainer.callback_metrics) >= {"val/acc", "mia/score", "fnn/phase", "fnn/turn", "fnn/clock"}
    plain = full.unlearned_model()
    assert list(plain.state_dict()) == list(_mlp().state_dict())
    tau = full.forgetting_layers["3"].tau.clone()
    _trainer().validate(full, datamodule=digits, verbose=False)  # a later stage keeps the rates ranked on the target
    assert torch.equal(full.forgetting_layers["3"].tau, tau)

    # Resume from the end of epoch 4 (turn 1, first unlearn epoch, clock 1; turn 0 already consolidated).
    saved = torch.load(tmp_path / "epoch=4.ckpt", weights_only=False)
    assert saved["fnn_schedule"]["phase"] == "unlearn"
    assert saved["fnn_schedule"]["turn"] == 1
    assert saved["fnn_schedule"]["clock"] == 1
    assert saved["fnn_schedule"]["consolidations"] == 1
    resumed = FNNModule(_mlp(), **settings)
    _trainer().fit(resumed, datamodule=digits, ckpt_path=tmp_path / "epoch=4.ckpt")
    assert _schedule_of(resumed.history) == expected  # history 0–4 restored, 5 continued
    assert resumed.consolidations == 2

    # The checkpoint at the end of an unlearn phase already holds the consolidated weights (clock back to 0).
    phase_end = torch.load(tmp_path / "epoch=2.ckpt", weights_only=False)
    assert (phase_end["fnn_schedule"]["clock"], phase_end["fnn_schedule"]["consolidations"]) == (2, 1)
    assert phase_end["state_dict"]["model.3.forgetting.clock"] == 0.0
    caught_up = FNNModule(_mlp(), **settings)
    _trainer().fit(caught_up, datamodule=digits, ckpt_path=tmp_path / "epoch=2.ckpt")
    assert _schedule_of(caught_up.history) == expected
    assert caught_up.consolidations == 2

    mismatched = FNNModule(_mlp(), **{**settings, "unlearn_epochs": 3})
    with pytest.raises(RuntimeError, match=r"checkpoint's `unlearn_epochs` to match the module's \(3\)"):
        _trainer().fit(mismatched, datamodule=digits, ckpt_path=tmp_path / "epoch=4.ckpt")


def test_unlearn_epochs_without_steps_only_decay(digits: DigitsDataModule) -> None:
    fnn = FNNModule(
        _mlp(), policy="fixed", tau=2.0, turns=1, learn_epochs=1, unlearn_epochs=2,
        unlearn_training="none",
    )  # fmt: skip
    snapshots = WeightSnapshots()
    _trainer(callbacks=[snapshots]).fit(fnn, datamodule=digits)
    # Callbacks see each epoch's end before the module consolidates: no step in unlearn epochs 1–2,
    # then the fold of φ(2) = e^-1 into the weights.
    assert torch.equal(snapshots.weights[1], snapshots.weights[2])
    torch.testing.assert_close(fnn.model.get_submodule("3.layer").weight, snapshots.weights[2] * math.exp(-1.0))
    assert fnn.consolidations == 1
    assert [row["clock"] for row in fnn.history] == [0, 1, 2]


class WeightSnapshots(L.Callback):
    """The weight of the 1-L layer at every epoch's end (before the module's own epoch-end hook)."""

    def __init__(self) -> None:
        self.weights: list[torch.Tensor] = []

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.weights.append(pl_module.get_parameter("model.3.layer.weight").detach().clone())


def test_learning_unlearning_curve(tmp_path: Path) -> None:
    baseline = [{"epoch": 0, "acc": 0.9, "mia": 0.85}, {"epoch": 1, "acc": 0.9, "mia": 0.84}]
    history = [
        {"epoch": 0, "phase": 0, "acc": 0.9, "mia": 0.8},
        {"epoch": 1, "phase": 1, "acc": 0.88, "mia": 0.6},
        {"epoch": 2, "phase": 1, "acc": 0.9, "mia": 0.52},
    ]

    class ImageLogger:
        def __init__(self) -> None:
            self.calls: list[tuple[str, list[Any]]] = []

        def log_image(self, key: str, images: list[Any]) -> None:
            self.calls.append((key, images))

    logger = ImageLogger()
    path = plot_learning_unlearning_curve(
        history, tmp_path / "curve.png", accepted_epoch=2, baseline=baseline, logger=logger
    )
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert logger.calls == [("unlearning/curve", [str(path)])]
    with pytest.raises(ValueError, match=r"record 0 lacks \['mia'\]"):
        plot_learning_unlearning_curve([{"epoch": 0, "acc": 0.9}], tmp_path / "bad.png")


def test_phase_step_is_frozen() -> None:
    step = PhaseStep(0, 0, "learn", 0, True)
    with pytest.raises(AttributeError):
        step.clock = 3  # type: ignore[misc]
