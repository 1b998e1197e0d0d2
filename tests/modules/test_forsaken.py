"""ForsakenModule: frozen target, Algorithm 1's loss, forgetting on digits, MacForget, backbones, errors."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any, ClassVar

import lightning as L
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from lightning.pytorch.loggers import CSVLogger
from torch import nn

from lightning_unlearn import DigitsDataModule, TrainingRecipe, predict, train_classifier
from lightning_unlearn.datamodules import DataSource, SourceData, SplitDataset, UnlearningDataModule
from lightning_unlearn.metrics import ShadowModelOracle, forgetting_rate_from_membership, mia_score_from_logits
from lightning_unlearn.models import MLP, VGG16, LinearSVM, LogisticRegression, SmallCNN
from lightning_unlearn.modules.forsaken import (
    FORSAKEN_CONFIGURATIONS,
    PAPER_CONFIGURATION,
    RECOMMENDED_CONFIGURATION,
    ForsakenModule,
    NeuronMaskGenerator,
    dynamic_penalty_weights,
    forsaken_configuration,
    forsaken_unlearn,
    gain_schedule,
    loss_auc,
    nearest_reference_posterior,
    non_member_posterior,
    paper_departures,
    relative_step_scales,
    retained_input_subspaces,
)

# The frozen target is in eval mode on purpose, and the datamodule's validation loader goes unused.
pytestmark = [
    pytest.mark.filterwarnings("ignore:.*module\\(s\\) in eval mode.*"),
    pytest.mark.filterwarnings("ignore:.*no `validation_step`.*"),
]

QUIET: dict[str, Any] = dict(
    accelerator="cpu",
    logger=False,
    enable_checkpointing=False,
    enable_model_summary=False,
    enable_progress_bar=False,
    limit_val_batches=0,
    num_sanity_val_steps=0,
)


@pytest.fixture(scope="module", autouse=True)
def _one_thread() -> Iterator[None]:
    """One intra-op thread: these tensors are tiny, and a shared 2-core machine thrashes with two."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def digits() -> DigitsDataModule:
    """The digits OOD scenario: digits 0–4 the task, 179 OOD digits 5–9 to forget."""
    datamodule = DigitsDataModule()
    datamodule.setup("fit")
    return datamodule


@pytest.fixture(scope="module")
def recipe() -> TrainingRecipe:
    return TrainingRecipe(trainer_kwargs=dict(enable_progress_bar=False))


@pytest.fixture(scope="module")
def target(digits: DigitsDataModule, recipe: TrainingRecipe) -> nn.Module:
    return train_classifier(recipe, digits).module.backbone.eval()


@pytest.fixture(scope="module")
def retrained(digits: DigitsDataModule, recipe: TrainingRecipe) -> nn.Module:
    return train_classifier(recipe, digits, "retain").module.backbone.eval()


@pytest.fixture(scope="module")
def oracle(digits: DigitsDataModule, recipe: TrainingRecipe) -> ShadowModelOracle:
    """The shadow-model membership oracle, fitted with the target's recipe."""
    return ShadowModelOracle().fit(recipe, digits, trainer_overrides=dict(enable_progress_bar=False))


def _snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in model.named_parameters()}


def _fit(module: ForsakenModule, datamodule: UnlearningDataModule, **trainer: Any) -> L.Trainer:
    settings = {**QUIET, "max_steps": module.iterations, **trainer}
    fitter = L.Trainer(**settings)
    fitter.fit(module, datamodule=datamodule)
    return fitter


def _mia(model: nn.Module, datamodule: UnlearningDataModule) -> float:
    """The MIA score of the forget set (members) against ``heldout`` (non-members of its distribution)."""
    forget = predict(model, datamodule.dataloader("forget"))
    heldout = predict(model, datamodule.dataloader("heldout"))
    return mia_score_from_logits(forget.logits, forget.targets, heldout.logits, heldout.targets).score


def _max_confidence_gap(model: nn.Module, datamodule: UnlearningDataModule) -> float:
    """Mean top posterior on forget minus on heldout: the membership signal a confidence attack reads."""
    forget = predict(model, datamodule.dataloader("forget")).posteriors.max(dim=1).values.mean()
    heldout = predict(model, datamodule.dataloader("heldout")).posteriors.max(dim=1).values.mean()
    return float(forget - heldout)


# ---------------------------------------------------------------------------- the frozen target
class _FrozenTargetProbe(L.Callback):
    """Checks the target at every iteration: nothing requires or holds a gradient, nothing moves."""

    def __init__(self, theta0: dict[str, torch.Tensor]) -> None:
        self.theta0 = theta0
        self.checks: list[tuple[bool, bool, bool, bool]] = []

    def _check(self, module: ForsakenModule) -> None:
        params = list(module.target.named_parameters())
        self.checks.append(
            (
                all(not p.requires_grad for _, p in params),
                all(p.grad is None for _, p in params),
                all(torch.equal(p, self.theta0[name]) for name, p in params),
                not module.target.training,
            )
        )

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, idx: int) -> None:
        assert isinstance(pl_module, ForsakenModule)
        self._check(pl_module)

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, idx: int
    ) -> None:
        assert isinstance(pl_module, ForsakenModule)
        self._check(pl_module)


def test_target_parameters_never_require_grad_and_never_change(target: nn.Module, digits: DigitsDataModule) -> None:
    theta0 = _snapshot(target)
    requires_grad_before = [p.requires_grad for p in target.parameters()]
    module = ForsakenModule(target, iterations=5)
    probe = _FrozenTargetProbe(theta0)
    _fit(module, digits, callbacks=[probe])

    assert len(probe.checks) == 10
    assert all(all(check) for check in probe.checks), probe.checks
    # the caller's model is untouched too
    assert all(torch.equal(p, theta0[name]) for name, p in target.named_parameters())
    assert [p.requires_grad for p in target.parameters()] == requires_grad_before
    # ... while the unlearned parameters did move, and only the generator is trainable
    moved = module.unlearned_parameters()
    assert any(not torch.equal(moved[name], theta0[name]) for name in theta0)
    trainable = {name for name, p in module.named_parameters() if p.requires_grad}
    assert trainable and all(name.startswith("generator.") for name in trainable)


def test_loss_decreases_and_is_logged(target: nn.Module, digits: DigitsDataModule, tmp_path: Path) -> None:
    module = ForsakenModule(target, iterations=20)
    trainer = _fit(module, digits, logger=CSVLogger(tmp_path), log_every_n_steps=1)

    losses = [entry["loss"] for entry in module.history]
    assert len(losses) == 20 == module.iteration
    assert losses[-1] < 0.5 * losses[0], losses
    assert min(losses[-5:]) < min(losses[:5])
    for key in ("forsaken/kl", "forsaken/penalty", "forsaken/loss", "forsaken/forget_acc"):
        assert key in trainer.callback_metrics
    last = module.history[-1]
    assert last["loss"] == pytest.approx(last["kl"] + last["penalty"], rel=1e-5)
    assert trainer.global_step == 20
    logged = (Path(trainer.logger.log_dir) / "metrics.csv").read_text().splitlines()
    assert "forsaken/kl" in logged[0] and len(logged) == 21, "one logged row per iteration"


def test_without_a_logger_the_history_still_records_every_iteration(
    target: nn.Module, digits: DigitsDataModule
) -> None:
    module = ForsakenModule(target, iterations=5)
    trainer = _fit(module, digits)
    assert len(module.history) == 5 and "forsaken/kl" not in trainer.callback_metrics


def test_every_fit_restarts_from_theta0_with_a_fresh_generator(target: nn.Module, digits: DigitsDataModule) -> None:
    module = ForsakenModule(target, iterations=4)
    _fit(module, digits)
    first = module.unlearned_parameters()
    _fit(module, digits)
    second = module.unlearned_parameters()
    for name in first:
        torch.testing.assert_close(first[name], second[name])


# ---------------------------------------------------------------------------- forgetting on digits
def test_forgetting_on_the_digits_ood_scenario(
    target: nn.Module, retrained: nn.Module, digits: DigitsDataModule
) -> None:
    """Seeded run: the memorised OOD samples lose their inserted labels and their over-confidence."""
    result = forsaken_unlearn(target, digits, iterations=20, posterior="nearest")
    unlearned = result.model

    before = predict(target, digits.dataloader("forget")).accuracy()
    after = predict(unlearned, digits.dataloader("forget")).accuracy()
    ideal = predict(retrained, digits.dataloader("forget")).accuracy()
    assert before >= 0.9  # the target memorised the forget set under its random labels
    assert ideal <= 0.4  # a model that never saw it labels it near chance (5 classes)
    assert after <= 0.75, (before, after, ideal)  # most inserted labels are gone

    # the membership signal: forget samples were much more confident than unseen look-alikes
    gap_before, gap_after = _max_confidence_gap(target, digits), _max_confidence_gap(unlearned, digits)
    assert gap_before >= 0.1
    assert abs(gap_after) <= 0.06, (gap_before, gap_after)

    # a fresh attack on forget vs heldout loses most of its edge (about 0.94 before, 0.71 after)
    mia_before, mia_after = _mia(target, digits), _mia(unlearned, digits)
    assert mia_before >= 0.85
    assert mia_after <= mia_before - 0.1, (mia_before, mia_after)

    # the KL to the non-member posterior fell by a wide margin
    kls = [entry["kl"] for entry in result.module.history]
    assert kls[-1] < 0.2 * kls[0]

    # test accuracy is kept within a few points
    test_before = predict(target, digits.dataloader("test")).accuracy()
    test_after = predict(unlearned, digits.dataloader("test")).accuracy()
    assert test_after >= test_before - 0.05, (test_before, test_after)


def test_per_class_posterior_keeps_the_arg_max(target: nn.Module, digits: DigitsDataModule) -> None:
    """The paper's default P keeps each forgotten sample's predicted label (see the class docstring)."""
    result = forsaken_unlearn(target, digits, iterations=20)
    assert predict(result.model, digits.dataloader("forget")).accuracy() >= 0.9
    confidence_before = predict(target, digits.dataloader("forget")).posteriors.max(dim=1).values.mean()
    confidence_after = predict(result.model, digits.dataloader("forget")).posteriors.max(dim=1).values.mean()
    assert confidence_after < confidence_before - 0.1  # over-confidence on members is gone
    posterior = result.module.forget_posterior
    assert posterior.shape == (len(digits.splits["forget"]), digits.num_classes)
    predicted = predict(target, digits.dataloader("forget")).logits.argmax(dim=1)
    assert torch.equal(posterior.argmax(dim=1), predicted)


def test_forgetting_rate_with_the_shadow_oracle(
    target: nn.Module, oracle: ShadowModelOracle, digits: DigitsDataModule
) -> None:
    unlearned = forsaken_unlearn(target, digits, iterations=20, posterior="nearest").model
    result = oracle.forgetting_rate(target, unlearned, digits)
    assert result.oracle_reliable
    assert result.value >= 0.9, result


def test_per_class_posterior_lowers_the_oracles_membership_calls(
    target: nn.Module, oracle: ShadowModelOracle, digits: DigitsDataModule
) -> None:
    """The paper's P at the module's defaults (T = 20): FR well above the 0 of a method that does nothing."""
    unlearned = forsaken_unlearn(target, digits).model
    forget = digits.dataloader("forget")
    before = oracle.predict_membership(target, forget)
    after = oracle.predict_membership(unlearned, forget)
    assert before.float().mean() >= 0.8  # the oracle sees the memorised forget set as members
    forgetting_rate = forgetting_rate_from_membership(before, after)
    assert forgetting_rate >= 0.15, forgetting_rate  # 0.31 on this seed; the retrained model scores 0.87
    assert after.float().mean() <= before.float().mean() - 0.1


@pytest.mark.xfail(
    strict=True,
    reason="the paper configuration's per-class P keeps each forget sample's arg-max, its inserted label, so the"
    " loss on that label stays low and a fresh attack still tells forget from heldout: 0.937 before, 0.925 after"
    " T = 20 (±0.024), and at least 0.92 at every fifth iteration up to T = 60; the recommended configuration"
    " lowers it most of the way to the retrained model's"
    " (test_the_recommended_configuration_forgets_by_the_attack_and_keeps_accuracy)",
)
def test_per_class_posterior_lowers_the_mia_score(target: nn.Module, digits: DigitsDataModule) -> None:
    unlearned = forsaken_unlearn(target, digits).model
    before, after = _mia(target, digits), _mia(unlearned, digits)
    assert before >= 0.85
    assert after <= before - 0.1, (before, after)


# ---------------------------------------------------------------------------- configurations, options of ours
def test_the_paper_configuration_is_the_modules_defaults(target: nn.Module) -> None:
    assert forsaken_configuration("paper") == dict(PAPER_CONFIGURATION)
    module = ForsakenModule(target, **forsaken_configuration("paper"))
    defaults = ForsakenModule(target)
    assert module.paper_departures == [] and defaults.paper_departures == []
    assert dict(module.hparams) == dict(defaults.hparams)
    assert set(FORSAKEN_CONFIGURATIONS) == {"paper", "recommended"}


def test_the_recommended_configuration_departs_from_the_paper_and_says_where(target: nn.Module) -> None:
    module = ForsakenModule(target, **forsaken_configuration("recommended", shadow_model=target))
    assert {departure.split("=")[0] for departure in module.paper_departures} == {
        "posterior", "warmup", "preservation_weight", "stopping", "shadow_model", "step_scale"
    }  # fmt: skip
    assert forsaken_configuration("recommended", iterations=7)["iterations"] == 7
    assert RECOMMENDED_CONFIGURATION["posterior"] == "shadow"


def test_the_paper_configuration_refuses_a_setting_outside_the_papers_algorithm() -> None:
    with pytest.raises(
        ValueError,
        match=r"Expected the settings of Forsaken's paper configuration to keep the paper's algorithm, but"
        r" posterior='shadow', preservation_weight=1\.0 leave it",
    ):
        forsaken_configuration("paper", posterior="shadow", preservation_weight=1.0)
    with pytest.raises(ValueError, match=r"Expected a Forsaken configuration from \['paper', 'recommended'\], but got"):
        forsaken_configuration("fast")


def test_shadow_posterior_is_the_shadow_models_posterior(
    target: nn.Module, oracle: ShadowModelOracle, digits: DigitsDataModule
) -> None:
    shadow = oracle.shadow_model
    assert shadow is not None
    module = ForsakenModule(target, posterior="shadow", shadow_model=shadow, iterations=1)
    _fit(module, digits)
    forget = next(iter(digits.dataloader("forget", batch_size=len(digits.splits["forget"]))))[0]
    with torch.no_grad():
        expected = shadow(forget).softmax(dim=1)
    torch.testing.assert_close(module.forget_posterior, expected)
    assert not any(p.requires_grad for p in module.shadow.parameters())  # type: ignore[union-attr]


def test_shadow_model_from_a_path_and_errors(target: nn.Module, tmp_path: Path) -> None:
    path = tmp_path / "shadow.pt"
    torch.save(target.state_dict(), path)
    module = ForsakenModule(target, posterior="shadow", shadow_model=path)
    assert module.shadow is not None and module.shadow is not module.target
    with pytest.raises(
        ValueError, match=r"Expected `shadow_model` \(a classifier of the target's classes that never saw"
    ):
        ForsakenModule(target, posterior="shadow")
    with pytest.raises(
        TypeError, match=r"Expected `shadow_model` to be an nn\.Module or the path of its weights, but got"
    ):
        ForsakenModule(target, posterior="shadow", shadow_model=3)  # type: ignore[arg-type]
    with pytest.raises(FileNotFoundError, match=r"Expected `shadow_model` to be a saved state_dict"):
        ForsakenModule(target, posterior="shadow", shadow_model=tmp_path / "missing.pt")


def test_shadow_model_of_other_classes_fails_at_setup(target: nn.Module, digits: DigitsDataModule) -> None:
    module = ForsakenModule(target, posterior="shadow", shadow_model=MLP(64, 10))
    with pytest.raises(
        RuntimeError, match=r"Expected `shadow_model` to produce 5 logits, but its forward pass gives 10"
    ):
        _fit(module, digits)


def test_the_warm_up_scales_the_first_mask_gradient(target: nn.Module, digits: DigitsDataModule) -> None:
    plain = ForsakenModule(target, iterations=1)
    warmed = ForsakenModule(target, iterations=1, warmup=4)
    _fit(plain, digits)
    _fit(warmed, digits)
    for name, moved in plain.mask_gradient.items():
        torch.testing.assert_close(warmed.mask_gradient[name], moved / 4)
    assert [round(gain_schedule(t, 4, "cosine"), 3) for t in (1, 3)] == [1.0, 0.5]


def test_the_accumulated_penalty_reads_the_total_move(target: nn.Module, digits: DigitsDataModule) -> None:
    seen: list[dict[str, torch.Tensor]] = []

    class Recorded(ForsakenModule):
        def penalty(self, mask_gradient: Any) -> torch.Tensor:
            seen.append({name: m.detach().clone() for name, m in mask_gradient.items()})
            return super().penalty(mask_gradient)

    module = Recorded(target, iterations=3, penalised="accumulated")
    _fit(module, digits)
    total = module.mask_gradient  # μ = Σ ξ·μ_t after the third (last) iteration
    for name, value in seen[-1].items():
        torch.testing.assert_close(value, total[name])
    step = Recorded(target, iterations=3)
    seen.clear()
    _fit(step, digits)
    assert any(not torch.allclose(seen[-1][name], step.mask_gradient[name]) for name in seen[-1])


def test_the_preservation_term_keeps_the_retained_posteriors(target: nn.Module, digits: DigitsDataModule) -> None:
    loose = ForsakenModule(target, iterations=15, initial_gain=3e-2)
    kept = ForsakenModule(target, iterations=15, initial_gain=3e-2, preservation_weight=1.0)
    _fit(loose, digits)
    _fit(kept, digits)
    assert kept._preserved_total == min(len(digits.splits["retain"]), max(len(digits.splits["forget"]), 256))
    assert "preservation" in kept.history[-1] and "preservation" not in loose.history[-1]
    retain = next(iter(digits.dataloader("retain", batch_size=len(digits.splits["retain"]))))[0]

    def drift(module: ForsakenModule) -> float:
        with torch.no_grad():
            before = target(retain).log_softmax(dim=1)
            after = module.unlearned_model()(retain).log_softmax(dim=1)
        return float(F.kl_div(after, before, log_target=True, reduction="batchmean"))

    assert drift(kept) < 0.5 * drift(loose), (drift(kept), drift(loose))


def test_the_preserved_sample_is_seeded_and_sized(target: nn.Module, digits: DigitsDataModule) -> None:
    first = ForsakenModule(target, iterations=1, preservation_weight=1.0, preservation_size=40)
    second = ForsakenModule(target, iterations=1, preservation_weight=1.0, preservation_size=40)
    _fit(first, digits)
    _fit(second, digits)
    assert first._preserved is not None and second._preserved is not None
    assert first._preserved.indices.numel() == 40
    assert torch.equal(first._preserved.indices, second._preserved.indices)
    assert set(first._preserved.indices.tolist()) <= set(digits.splits["retain"].indices.tolist())


def test_the_relative_step_moves_each_tensor_by_a_fraction_of_its_own_scale(
    target: nn.Module, digits: DigitsDataModule
) -> None:
    absolute = ForsakenModule(target, iterations=1)
    relative = ForsakenModule(target, iterations=1, step_scale="relative")
    _fit(absolute, digits)
    _fit(relative, digits)
    units = relative_step_scales(target)
    assert absolute.generator.scales == dict.fromkeys(units, 1.0) and relative.generator.scales == units
    for name, parameter in target.named_parameters():
        rms = float(parameter.detach().double().pow(2).mean().sqrt())
        assert units[name] == pytest.approx(rms) and rms > 0
        # the same direction at θ0, the step in units of the tensor's own root mean square
        torch.testing.assert_close(relative.mask_gradient[name], absolute.mask_gradient[name] * rms)
    zero_bias = nn.Linear(3, 2)
    with torch.no_grad():
        zero_bias.bias.zero_()
    assert relative_step_scales(zero_bias)["bias"] == relative_step_scales(zero_bias)["weight"]
    with pytest.raises(TypeError, match=r"Expected `model` to be an nn.Module, but got dict\."):
        relative_step_scales({"weight": torch.ones(2)})  # type: ignore[arg-type]


# ---------------------------------------------------------------------------- projection
def _layer_inputs(model: nn.Module, inputs: torch.Tensor) -> dict[str, torch.Tensor]:
    """Each Linear/Conv2d layer's inputs on ``inputs`` at the model's weights, as rows (patches for a convolution)."""
    rows: dict[str, torch.Tensor] = {}

    def keep(name: str, layer: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
        x = args[0]
        if isinstance(layer, nn.Conv2d):
            x = F.unfold(x, layer.kernel_size, layer.dilation, layer.padding, layer.stride).transpose(1, 2)
        rows[name] = x.reshape(-1, x.shape[-1])

    hooks = [
        layer.register_forward_hook(lambda mod, args, out, name=name: keep(name, mod, args))
        for name, layer in model.named_modules()
        if isinstance(layer, (nn.Linear, nn.Conv2d))
    ]
    with torch.no_grad():
        model(inputs)
    for hook in hooks:
        hook.remove()
    return rows


def _weight_output_moves(module: ForsakenModule, inputs: torch.Tensor) -> dict[str, tuple[float, float]]:
    """Per layer, ``‖ΔW·a‖ / ‖a‖`` (how much the whole weight move θ0 → θ_T changes the layer's outputs on
    ``inputs``, at θ0's activations) and ``‖ΔW‖`` (how far the weights moved at all)."""
    moved = module.mask_gradient
    readings = {}
    for layer, rows in _layer_inputs(module.target, inputs).items():
        weight = moved[f"{layer}.weight"]
        step = weight.reshape(weight.shape[0], -1)
        readings[layer] = (float((rows @ step.T).norm() / rows.norm()), float(step.norm()))
    return readings


def test_the_projection_keeps_every_weight_step_off_the_retained_inputs(
    target: nn.Module, digits: DigitsDataModule
) -> None:
    settings = dict(iterations=4, initial_gain=0.25, step_scale="relative", preservation_size=200)
    free = ForsakenModule(target, **settings)
    projected = ForsakenModule(target, projection_energy=1.0, **settings)
    _fit(free, digits)
    _fit(projected, digits)
    assert projected._preserved is None and "preservation" not in projected.history[-1]  # γ = 0: no term
    retain = digits.dataset("retain")
    chosen = torch.randperm(len(retain), generator=torch.Generator().manual_seed(0))[:200].sort().values
    inputs = torch.stack([retain[int(i)][0] for i in chosen])  # the preserved sample the subspaces come from
    assert set(projected.projection_bases) == set(_layer_inputs(target, inputs))
    free_moves, projected_moves = _weight_output_moves(free, inputs), _weight_output_moves(projected, inputs)
    for layer, (output_move, _) in projected_moves.items():
        # the whole subspace kept: the weights' move leaves the retained samples' layer outputs where they were
        free_output_move, free_weight_move = free_moves[layer]
        assert output_move < 1e-4 * free_weight_move, (layer, output_move, free_weight_move)
        assert free_output_move > 1e-2 * free_weight_move, (layer, free_output_move, free_weight_move)
    # it still moves: the first layers' weights off the subspace, every bias freely
    assert projected_moves["1"][1] > 0.1 * free_moves["1"][1]
    assert all(float(projected.mask_gradient[f"{layer}.bias"].abs().max()) > 0 for layer in projected_moves)


def test_the_projection_covers_convolutions(digits: DigitsDataModule) -> None:
    model = SmallCNN(1, 5, image_size=8, hidden=16).eval()
    settings = dict(iterations=3, preservation_weight=1.0, preservation_size=64)
    free = ForsakenModule(model, **settings)
    module = ForsakenModule(model, projection_energy=0.9, **settings)
    _fit(free, digits)
    _fit(module, digits)
    assert set(module.projection_bases) == {"features.0", "features.3", "classifier.1", "classifier.3"}
    for layer, basis in module.projection_bases.items():
        weight = module.mask_gradient[f"{layer}.weight"]
        step = weight.reshape(weight.shape[0], -1)
        free_step = free.mask_gradient[f"{layer}.weight"].reshape(step.shape)
        assert basis.shape[0] == step.shape[1] and 1 <= basis.shape[1] <= step.shape[1]
        torch.testing.assert_close(basis.T @ basis, torch.eye(basis.shape[1]), atol=1e-4, rtol=0)
        assert float((step @ basis).norm()) <= 1e-4 * float(free_step.norm()), layer
        assert float((free_step @ basis).norm()) > 1e-2 * float(free_step.norm()), layer
    conv = retained_input_subspaces(nn.Conv2d(2, 3, 3, padding=1), torch.randn(4, 2, 5, 5), energy=1.0)[""]
    assert conv.shape == (2 * 3 * 3, 2 * 3 * 3)  # patches of 2 channels × 3 × 3
    assert retained_input_subspaces(nn.Linear(3, 2), torch.zeros(5, 3), energy=1.0) == {}  # nothing passes


def test_the_projection_leaves_the_papers_algorithm() -> None:
    assert paper_departures({"projection_energy": 0.95}) == ["projection_energy=0.95"]
    assert paper_departures({"projection_energy": None}) == []
    with pytest.raises(ValueError, match=r"projection_energy=0\.9 leave it"):
        forsaken_configuration("paper", projection_energy=0.9)


class _HeldStill(ForsakenModule):
    """The whole network runs at every iteration, but only the parameters under ``classifier.`` may move."""

    def _project(self, direction: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {
            name: value if name.startswith("classifier.") else torch.zeros_like(value)
            for name, value in super()._project(direction).items()
        }


def _small_cnn() -> nn.Module:
    torch.manual_seed(0)
    return SmallCNN(1, 5, image_size=8, hidden=16).eval()


def test_head_moves_the_head_alone_and_computes_what_the_whole_network_would(digits: DigitsDataModule) -> None:
    model = _small_cnn()
    settings: dict[str, Any] = dict(
        iterations=4, initial_gain=0.1, dynamic_penalty=False, preservation_weight=1.0, preservation_size=64,
        stopping="validation", stopping_margin=0.0,
    )  # fmt: skip
    cached = ForsakenModule(model, head="classifier", **settings)
    whole = _HeldStill(model, **settings)
    _fit(cached, digits)
    _fit(whole, digits)
    # only the head's parameters are the generator's and the accumulated mask gradient's
    assert cached.parameter_names == ["classifier.1.weight", "classifier.1.bias", "classifier.3.weight",
                                      "classifier.3.bias"]  # fmt: skip
    assert cached.generator_parameter_count == 2 * (16 + 5)  # a gain per output neuron, for its weights and bias
    moved, reference = cached.unlearned_parameters(), whole.unlearned_parameters()
    assert set(moved) == {name for name, _ in model.named_parameters()}
    for name, p in model.named_parameters():
        torch.testing.assert_close(moved[name], reference[name], atol=1e-5, rtol=1e-4)
        if name.startswith("features."):
            assert torch.equal(moved[name], p.detach()) and not cached.mask_gradient[name].any()
        else:
            assert float((moved[name] - p.detach()).abs().max()) > 1e-4, name
    assert len(cached.history) == len(whole.history) == 4
    assert all("stop_auc" in record for record in cached.history)  # the stopping rule read the cached pair
    for mine, theirs in zip(cached.history, whole.history):
        assert mine.keys() == theirs.keys()
        for key in mine:
            assert mine[key] == pytest.approx(theirs[key], rel=1e-4, abs=1e-6), key
    unlearned = cached.unlearned_model()
    assert type(unlearned) is SmallCNN
    torch.testing.assert_close(dict(unlearned.named_parameters())["classifier.3.weight"], moved["classifier.3.weight"])


def test_head_reads_the_layers_before_it_once_per_fit(digits: DigitsDataModule) -> None:
    model = _small_cnn()
    counts = []
    for iterations in (2, 6):
        module = ForsakenModule(
            model, head="classifier", iterations=iterations, preservation_weight=1.0, stopping="validation"
        )
        before = len(counts)
        counts.append(0)

        def count(*_: Any, slot: int = before) -> None:
            counts[slot] += 1

        hook = module.target.features.register_forward_hook(count)
        _fit(module, digits)
        hook.remove()
        assert module.iteration == iterations and "stop_auc" in module.history[-1]
    assert counts[0] == counts[1]  # the iterations and the stopping checks run the head alone


def test_head_with_the_projection_keys_the_heads_layers(digits: DigitsDataModule) -> None:
    module = ForsakenModule(_small_cnn(), head="classifier", iterations=2, projection_energy=0.9)
    _fit(module, digits)
    assert set(module.projection_bases) == {"classifier.1", "classifier.3"}
    for layer, basis in module.projection_bases.items():
        step = module.mask_gradient[f"{layer}.weight"]
        assert float((step.reshape(step.shape[0], -1) @ basis).norm()) <= 1e-4 * float(step.norm()) + 1e-12
    last = ForsakenModule(_small_cnn(), head="classifier.3", iterations=2, projection_energy=0.9)
    _fit(last, digits)
    assert set(last.projection_bases) == {"classifier.3"}
    assert last.parameter_names == ["classifier.3.weight", "classifier.3.bias"]


def test_head_by_index_names_a_child_of_a_sequential_target(target: nn.Module) -> None:
    assert ForsakenModule(target, head=5).parameter_names == ["5.weight", "5.bias"]  # the MLP's last layer
    assert ForsakenModule(target, head="5").parameter_names == ["5.weight", "5.bias"]


def test_head_leaves_the_papers_algorithm() -> None:
    assert paper_departures({"head": "classifier"}) == ["head='classifier'"]
    assert paper_departures({"head": None}) == []
    with pytest.raises(ValueError, match=r"head='classifier' leave it"):
        forsaken_configuration("paper", head="classifier")


def test_head_refuses_what_is_not_a_last_stage_with_parameters(digits: DigitsDataModule) -> None:
    with pytest.raises(TypeError, match=r"Expected `head` to be the name of a submodule of the target, but got float"):
        ForsakenModule(_small_cnn(), head=3.0)  # type: ignore[arg-type]
    names = r"\(one of 'features', 'features.0', .*\), but got 'fc'"
    with pytest.raises(ValueError, match=r"Expected `head` to name a submodule of the target \(SmallCNN\) that has"
                       r" parameters " + names):  # fmt: skip
        ForsakenModule(_small_cnn(), head="fc")
    with pytest.raises(ValueError, match=r"but got 'features.1'"):  # a ReLU: nothing to move
        ForsakenModule(_small_cnn(), head="features.1")
    with pytest.raises(ValueError, match=r"but got ''"):  # the whole target is what head=None means
        ForsakenModule(_small_cnn(), head="")
    module = ForsakenModule(_small_cnn(), head="features", iterations=2)
    with pytest.raises(RuntimeError, match=r"Expected `head` \('features'\) to be the last stage of the target's"):
        _fit(module, digits)

    class Twice(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body, self.fc = nn.Linear(64, 5), nn.Linear(5, 5)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(self.fc(self.body(x)))

    with pytest.raises(RuntimeError, match=r"Expected `head` \('fc'\) to be called once per forward pass of the"
                                           r" target, on one tensor, but it was called 2 times\."):  # fmt: skip
        _fit(ForsakenModule(Twice().eval(), head="fc", iterations=2), digits)


def test_the_stopping_rule_reads_a_seeded_sample_of_stopping_size(target: nn.Module, digits: DigitsDataModule) -> None:
    sized = ForsakenModule(target, iterations=2, stopping="validation", stopping_size=20)
    again = ForsakenModule(target, iterations=2, stopping="validation", stopping_size=20)
    whole = ForsakenModule(target, iterations=2, stopping="validation", stopping_size=10_000)
    for module in (sized, again, whole):
        _fit(module, digits)
    assert sized._validation is not None and sized._validation_heldout is not None and again._validation is not None
    assert sized._validation.indices.numel() == sized._validation_heldout.indices.numel() == 20
    assert torch.equal(sized._validation.indices, again._validation.indices)
    assert set(sized._validation.indices.tolist()) <= set(digits.splits["validation"].indices.tolist())
    assert whole._validation is not None and whole._validation.indices.numel() == len(digits.splits["validation"])


class _ReadsRecorded(ForsakenModule):
    """Records every split the module asks the datamodule for."""

    asked: ClassVar[list[str]] = []

    def _declared(self, split: str) -> None:
        type(self).asked.append(split)
        super()._declared(split)


def test_the_stopping_rule_reads_only_the_validation_pair(target: nn.Module, digits: DigitsDataModule) -> None:
    _ReadsRecorded.asked = []
    module = _ReadsRecorded(target, iterations=6, stopping="validation", preservation_weight=1.0)
    _fit(module, digits)
    assert set(_ReadsRecorded.asked) == {"forget", "reference", "probe", "retain", "validation", "validation_heldout"}
    assert "test" not in _ReadsRecorded.asked and "heldout" not in _ReadsRecorded.asked
    assert "stop_auc" in module.history[-1]


def test_the_stopping_rule_stops_at_the_first_check_that_accepts(target: nn.Module, digits: DigitsDataModule) -> None:
    # an AUC margin that accepts any model and no accuracy floor: the first check stops the fit
    eager = ForsakenModule(
        target, iterations=10, warmup=3, stopping="validation", stopping_margin=0.49, accuracy_tolerance=1.0
    )
    trainer = _fit(eager, digits)
    assert eager.stopped_at == 3 == eager.iteration == len(eager.history) == trainer.global_step
    assert "stop_auc" not in eager.history[1] and "validation_acc" in eager.history[2]

    class Unreachable(ForsakenModule):  # an accuracy floor no model can meet: T iterations run
        def on_fit_start(self) -> None:
            super().on_fit_start()
            self._original_validation_accuracy = 2.0

    strict = Unreachable(target, iterations=5, stopping="validation", stopping_margin=0.49, accuracy_tolerance=0.0)
    _fit(strict, digits)
    assert strict.stopped_at is None and strict.iteration == 5


def test_loss_auc_counts_pairs() -> None:
    forget, unseen = torch.tensor([0.1, 0.5, 2.0]), torch.tensor([0.5, 1.0])
    pairs = loss_auc(forget, unseen)  # 0.1 < both (2), 0.5 ties 0.5 (½) and < 1.0 (1), 2.0 above both (0)
    assert float(pairs) == 3.5
    assert float(loss_auc(forget[:1], unseen) + loss_auc(forget[1:], unseen)) == 3.5  # shards sum to the whole


def test_the_recommended_configuration_forgets_by_the_attack_and_keeps_accuracy(
    target: nn.Module, retrained: nn.Module, oracle: ShadowModelOracle, digits: DigitsDataModule
) -> None:
    """Seeded digits run: the attack's MIA falls most of the way from the original's to the retrained model's,
    test accuracy stays, the oracle calls the forget set forgotten."""
    result = forsaken_unlearn(target, digits, **forsaken_configuration("recommended", shadow_model=oracle.shadow_model))
    mia_before, mia_after, mia_retrained = _mia(target, digits), _mia(result.model, digits), _mia(retrained, digits)
    test_before = predict(target, digits.dataloader("test")).accuracy()
    test_after = predict(result.model, digits.dataloader("test")).accuracy()
    fr = oracle.forgetting_rate(target, result.model, digits).value
    # 0.937 → 0.557 against the retrained model's 0.434: three quarters of the way (the digits benchmark's
    # three-seed mean is the figure issue 13 judges); no test sample lost; FR 0.895.
    assert mia_after - mia_retrained <= 0.35 * (mia_before - mia_retrained), (mia_before, mia_after, mia_retrained)
    assert test_after >= test_before - 0.01, (test_before, test_after)
    assert fr >= 0.8, fr
    assert result.module.iteration <= RECOMMENDED_CONFIGURATION["iterations"]


# ---------------------------------------------------------------------------- MacForget
@pytest.mark.parametrize(("server_lr", "batch_size"), [(0.1, 32), (1.0, 1), (0.003, 128)])
def test_macforget_gradient_brings_a_plain_sgd_server_to_theta_t(
    target: nn.Module, digits: DigitsDataModule, server_lr: float, batch_size: int
) -> None:
    module = ForsakenModule(target, iterations=8)
    _fit(module, digits)
    gradient = module.macforget_gradient(server_lr=server_lr, batch_size=batch_size)

    server = copy.deepcopy(target).train()
    server.requires_grad_(True)
    optimizer = torch.optim.SGD(server.parameters(), lr=server_lr)
    optimizer.zero_grad()
    for name, p in server.named_parameters():
        p.grad = gradient[name] / batch_size  # the server averages over its batch of n0
    optimizer.step()

    theta_t = module.unlearned_parameters()
    for name, p in server.named_parameters():
        torch.testing.assert_close(p.detach(), theta_t[name], rtol=0, atol=1e-6)
    accumulated = module.mask_gradient
    for name, p in target.named_parameters():  # θ_T = θ0 − μ, μ = Σ ξ·μ_t
        torch.testing.assert_close(p.detach() - accumulated[name], theta_t[name], rtol=0, atol=0)


def test_unlearned_parameters_match_a_replay_of_every_mask_gradient(
    target: nn.Module, digits: DigitsDataModule
) -> None:
    """θ_T = θ0 − Σ_t ξ·μ_t, with each μ_t rebuilt by hand from what the generator was given at step t."""
    xi, initial_gain, iterations = 0.5, 1e-2, 6
    module = ForsakenModule(target, iterations=iterations, xi=xi, initial_gain=initial_gain)
    calls: list[tuple[dict[str, torch.Tensor], list[torch.Tensor]]] = []

    def record(generator: nn.Module, inputs: tuple[Any, ...]) -> None:
        directions = {name: d.detach().clone() for name, d in inputs[0].items()}
        calls.append((directions, [g.detach().clone() for g in module.generator.gain]))

    module.generator.register_forward_pre_hook(record)
    _fit(module, digits)
    assert len(calls) == iterations  # Adam evaluates the loss once per iteration

    theta0 = _snapshot(target)
    expected = {name: p.clone() for name, p in theta0.items()}
    for directions, gains in calls:  # μ_t = initial_gain · ρ_t ⊙ d_t, ρ_t one gain per neuron (first dimension)
        for index, name in enumerate(module.parameter_names):
            direction = directions[name]
            gain = gains[index].reshape((-1,) + (1,) * (direction.dim() - 1)) if direction.dim() else gains[index]
            expected[name] -= xi * initial_gain * gain * direction
    theta_t = module.unlearned_parameters()
    for name in theta0:
        assert not torch.allclose(expected[name], theta0[name])  # the replay moved every tensor
        torch.testing.assert_close(theta_t[name], expected[name], rtol=0, atol=1e-6)
    state = module.unlearned_model().state_dict()
    for name in theta0:
        torch.testing.assert_close(state[name], expected[name], rtol=0, atol=1e-6)

    # The last KL the module logged was taken at θ_T: the returned model, run as a plain network, gives it back.
    inputs = next(iter(digits.dataloader("forget", batch_size=len(digits.splits["forget"])))).inputs
    with torch.no_grad():
        logits = module.unlearned_model()(inputs)
    kl = F.kl_div(logits.log_softmax(dim=1), module.forget_posterior, reduction="batchmean")
    assert kl.item() == pytest.approx(module.history[-1]["kl"], rel=1e-4)


# ---------------------------------------------------------------------------- results
def test_unlearned_model_is_a_plain_backbone_and_saves_as_a_state_dict(
    target: nn.Module, digits: DigitsDataModule, tmp_path: Path
) -> None:
    module = ForsakenModule(target, iterations=3)
    _fit(module, digits)
    model = module.unlearned_model()
    assert type(model) is MLP
    assert set(model.state_dict()) == set(target.state_dict())
    assert all(p.requires_grad for p in model.parameters())

    path = module.save_unlearned(tmp_path / "out" / "unlearned.pt")
    fresh = MLP(64, 5)
    fresh.load_state_dict(torch.load(path))
    inputs = next(iter(digits.dataloader("test"))).inputs
    torch.testing.assert_close(fresh.eval()(inputs), model(inputs))
    assert not torch.allclose(target(inputs), model(inputs))


def test_checkpoint_loads_the_target_weights(target: nn.Module, digits: DigitsDataModule, tmp_path: Path) -> None:
    path = tmp_path / "target.pt"
    torch.save(target.state_dict(), path)
    module = ForsakenModule(MLP(64, 5), checkpoint=path)
    for name, p in module.target.named_parameters():
        torch.testing.assert_close(p, dict(target.named_parameters())[name])


@pytest.mark.parametrize("backbone", ["mlp", "small_cnn", "logistic_regression", "linear_svm"])
def test_every_digits_backbone_runs(backbone: str, digits: DigitsDataModule) -> None:
    models: dict[str, nn.Module] = {
        "mlp": MLP(64, 5, hidden=(32,)),
        "small_cnn": SmallCNN(1, 5, image_size=8, hidden=16),
        "logistic_regression": LogisticRegression(64, 5),
        "linear_svm": LinearSVM(64, 5),
    }
    model = train_classifier(
        TrainingRecipe(backbone=models[backbone], max_epochs=3, trainer_kwargs=dict(enable_progress_bar=False)),
        digits,
    ).module.backbone
    result = forsaken_unlearn(model, digits, iterations=3)
    assert type(result.model) is type(model)
    assert len(result.module.history) == 3
    assert all(np.isfinite(entry["loss"]) for entry in result.module.history)
    assert result.module.generator_parameter_count == sum(p.shape[0] if p.dim() else 1 for p in model.parameters())
    assert result.seconds > 0


class _TinyImages(DataSource):
    """Random 3×32×32 images in four classes, enough for VGG-16's five poolings."""

    name = "tiny-images"

    def load(self) -> SourceData:
        generator = torch.Generator().manual_seed(0)
        images = torch.randint(0, 256, (80, 3, 32, 32), dtype=torch.uint8, generator=generator)
        return SourceData(self.name, images, torch.arange(80) % 4, num_classes=4)


def test_vgg16_smoke_on_tiny_inputs() -> None:
    datamodule = UnlearningDataModule(_TinyImages(), kind="id", forget_size=4, seed=0)
    datamodule.setup("fit")
    torch.manual_seed(0)
    model = VGG16(num_classes=4).eval()
    result = forsaken_unlearn(model, datamodule, iterations=2)
    assert type(result.model) is VGG16
    assert len(result.module.history) == 2
    assert result.model(torch.zeros(1, 3, 32, 32)).shape == (1, 4)


# ---------------------------------------------------------------------------- optimisers
@pytest.mark.parametrize(
    "optimizer",
    [
        partial(torch.optim.Adam, lr=0.01),
        partial(torch.optim.SGD, lr=0.1),
        partial(torch.optim.LBFGS, lr=0.1, max_iter=4, line_search_fn="strong_wolfe"),
    ],
    ids=["adam", "sgd", "lbfgs"],
)
def test_generator_optimisers_run(target: nn.Module, digits: DigitsDataModule, optimizer: Any) -> None:
    module = ForsakenModule(target, iterations=4, optimizer=optimizer)
    _fit(module, digits)
    assert module.iteration == 4
    losses = [entry["loss"] for entry in module.history]
    assert all(np.isfinite(losses))
    assert losses[-1] < losses[0]


def test_lbfgs_evaluates_the_loss_several_times_per_iteration(target: nn.Module, digits: DigitsDataModule) -> None:
    calls: list[int] = []

    class Counting(ForsakenModule):
        def _objective(self, theta_previous: Any) -> Any:
            calls.append(self.iteration)
            return super()._objective(theta_previous)

    module = Counting(target, iterations=2, optimizer=partial(torch.optim.LBFGS, lr=0.1, max_iter=5))
    _fit(module, digits)
    assert module.iteration == 2
    assert len(calls) > 2  # L-BFGS re-evaluates the closure; one θ update per iteration regardless


# ---------------------------------------------------------------------------- the maths
def test_non_member_posterior_tables() -> None:
    posteriors = torch.tensor([[0.7, 0.2, 0.1], [0.5, 0.4, 0.1], [0.1, 0.8, 0.1]])
    per_class = non_member_posterior(posteriors, 3, "per_class")
    torch.testing.assert_close(per_class[0], torch.tensor([0.6, 0.3, 0.1]))
    torch.testing.assert_close(per_class[1], torch.tensor([0.1, 0.8, 0.1]))
    torch.testing.assert_close(per_class[2], posteriors.mean(dim=0))  # no reference predicted 2: global mean
    torch.testing.assert_close(non_member_posterior(posteriors, 3, "global_mean"), posteriors.mean(0).expand(3, 3))
    torch.testing.assert_close(non_member_posterior(torch.empty(0, 3), 3, "uniform"), torch.full((3, 3), 1 / 3))
    torch.testing.assert_close(per_class.sum(dim=1), torch.ones(3))


def test_nearest_reference_posterior_averages_the_closest_samples() -> None:
    reference = torch.tensor([[0.0], [1.0], [10.0]])
    posteriors = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]])
    result = nearest_reference_posterior(torch.tensor([[0.2], [9.0]]), reference, posteriors, neighbours=2)
    torch.testing.assert_close(result, torch.tensor([[0.5, 0.5], [0.25, 0.75]]))


def test_dynamic_penalty_is_the_mean_absolute_per_sample_gradient() -> None:
    torch.manual_seed(0)
    model = LogisticRegression(6, 3).eval()
    inputs, targets = torch.randn(7, 6), torch.tensor([0, 1, 2, 0, 1, 2, 0])
    omega = dynamic_penalty_weights(model, inputs, targets, normalize=False)
    expected = {name: torch.zeros_like(p) for name, p in model.named_parameters()}
    for x, y in zip(inputs, targets):  # Eq. 6, one sample at a time
        model.zero_grad()
        F.cross_entropy(model(x.unsqueeze(0)), y.unsqueeze(0)).backward()
        for name, p in model.named_parameters():
            assert p.grad is not None
            expected[name] += p.grad.abs() / len(inputs)
    for name in expected:
        torch.testing.assert_close(omega[name], expected[name])
    normalized = dynamic_penalty_weights(model, inputs, targets)
    mean = torch.cat([w.flatten() for w in normalized.values()]).mean()
    torch.testing.assert_close(mean, torch.tensor(1.0))


def test_generator_masks_per_neuron() -> None:
    generator = NeuronMaskGenerator({"w": torch.Size([2, 3]), "b": torch.Size([2]), "s": torch.Size([])}, 0.5)
    assert generator.num_parameters == 5
    with torch.no_grad():
        generator.gain[0].copy_(torch.tensor([0.0, 2.0]))
    out = generator({"w": torch.ones(2, 3), "b": torch.ones(2), "s": torch.tensor(4.0)})
    torch.testing.assert_close(out["w"], torch.tensor([[0.0, 0.0, 0.0], [1.0, 1.0, 1.0]]))
    torch.testing.assert_close(out["s"], torch.tensor(2.0))


def test_poison_posterior_is_the_clean_source_class(recipe: TrainingRecipe) -> None:
    datamodule = DigitsDataModule(kind="poison", flip_source=5, flip_target=3, flip_rate=0.1)
    datamodule.setup("fit")
    target = train_classifier(
        TrainingRecipe(max_epochs=20, trainer_kwargs=dict(enable_progress_bar=False)), datamodule
    ).module.backbone
    module = ForsakenModule(target, iterations=1)
    _fit(module, datamodule)
    assert torch.all(module.forget_posterior.argmax(dim=1) == 5)


# ---------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("settings", "error", "match"),
    [
        (dict(xi=-1.0), ValueError, r"Expected `xi` \(ξ, the forgetting coefficient\) to be positive, but got -1.0."),
        (dict(xi=0.0), ValueError, r"Expected `xi` .* to be positive, but got 0.0."),
        (dict(xi="1"), TypeError, r"Expected `xi` to be a number, but got str."),
        (dict(penalty_weight=-0.5), ValueError, r"Expected `penalty_weight` .* non-negative, but got -0.5."),
        (dict(iterations=0), ValueError, r"Expected `iterations` \(T, the number of iterations\) to be a positive"),
        (dict(iterations=2.5), TypeError, r"Expected `iterations` to be an integer, but got float."),
        (dict(probe_size=0), ValueError, r"Expected `probe_size` .* to be a positive integer, but got 0."),
        (dict(neighbours=0), ValueError, r"Expected `neighbours` .* to be a positive integer, but got 0."),
        (dict(posterior="median"), ValueError, r"Expected `posterior` to be one of \['per_class', .*'median'."),
        (dict(initial_gain=0.0), ValueError, r"Expected `initial_gain` to be positive, but got 0.0."),
        (dict(dynamic_penalty=1), TypeError, r"Expected `dynamic_penalty` to be a boolean, but got int."),
        (
            dict(penalised="sum"),
            ValueError,
            r"Expected `penalised` to be one of \['step', 'accumulated'\], but got 'sum'.",
        ),
        (dict(schedule="step"), ValueError, r"Expected `schedule` to be one of \['constant', 'linear', 'cosine'\]"),
        (dict(warmup=-1), ValueError, r"Expected `warmup` \(iterations of the warm-up\) to be a non-negative integer"),
        (dict(preservation_weight=-1.0), ValueError, r"Expected `preservation_weight` .* non-negative, but got -1.0."),
        (dict(preservation_size=0), ValueError, r"Expected `preservation_size` .* a positive integer, but got 0."),
        (dict(stopping="early"), ValueError, r"Expected `stopping` to be one of \['fixed', 'validation'\]"),
        (dict(stopping_margin=0.5), ValueError, r"Expected `stopping_margin` to be in \[0, 0.5\), but got 0.5."),
        (dict(accuracy_tolerance=2.0), ValueError, r"Expected `accuracy_tolerance` to be in \[0, 1\], but got 2.0."),
        (dict(check_every=0), ValueError, r"Expected `check_every` .* to be a positive integer, but got 0."),
        (dict(step_scale="layer"), ValueError, r"Expected `step_scale` to be one of \['absolute', 'relative'\]"),
        (dict(stopping_size=0), ValueError, r"Expected `stopping_size` .* a positive integer, but got 0."),
        (dict(projection_energy=0.0), ValueError, r"Expected `projection_energy` .* to be in \(0, 1\], but got 0.0."),
        (dict(projection_energy=1.5), ValueError, r"Expected `projection_energy` .* to be in \(0, 1\], but got 1.5."),
        (dict(projection_energy="all"), TypeError, r"Expected `projection_energy` to be a number, but got str."),
    ],
)
def test_bad_settings_fail_in_init(settings: dict[str, Any], error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        ForsakenModule(MLP(64, 5), **settings)


def test_target_must_be_a_module() -> None:
    with pytest.raises(TypeError, match=r"Expected `target` to be an nn\.Module, but got dict\."):
        ForsakenModule({})  # type: ignore[arg-type]


def test_checkpoint_of_another_architecture_fails(tmp_path: Path) -> None:
    path = tmp_path / "other.pt"
    torch.save(MLP(64, 10).state_dict(), path)
    with pytest.raises(ValueError, match=r"Expected `checkpoint` .* to hold weights for the `target` architecture"):
        ForsakenModule(MLP(64, 5), checkpoint=path)
    with pytest.raises(FileNotFoundError, match="Expected `checkpoint` to be a saved state_dict"):
        ForsakenModule(MLP(64, 5), checkpoint=tmp_path / "missing.pt")


def test_class_count_must_match_the_datamodule(digits: DigitsDataModule) -> None:
    module = ForsakenModule(MLP(64, 10))
    with pytest.raises(
        RuntimeError, match=r"Expected `target` to produce 5 logits \(the datamodule's classes\), but it"
    ):
        _fit(module, digits, max_steps=20)


def test_architecture_must_accept_the_datamodule_inputs(digits: DigitsDataModule) -> None:
    module = ForsakenModule(MLP(32, 5))
    with pytest.raises(RuntimeError, match=r"Expected `target` \(MLP\) to accept the datamodule's inputs of shape"):
        _fit(module, digits)


def test_empty_reference_split_fails(digits: DigitsDataModule, tmp_path: Path) -> None:
    manifest = json.loads(json.dumps(digits.manifest_dict()))
    manifest["splits"]["reference"] = {"indices": [], "labels": []}
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(manifest))
    datamodule = DigitsDataModule(manifest=path)
    with pytest.raises(ValueError, match=r"Expected a non-empty `reference` split \(the non-members P is built from\)"):
        _fit(ForsakenModule(MLP(64, 5)), datamodule)
    with pytest.raises(ValueError, match=r"Expected a non-empty `reference` split"):
        non_member_posterior(torch.empty(0, 5), 5, "per_class")
    # P = uniform needs no reference sample
    module = ForsakenModule(MLP(64, 5), posterior="uniform", iterations=1)
    _fit(module, datamodule)
    torch.testing.assert_close(module.forget_posterior[0], torch.full((5,), 0.2))


def test_empty_retain_split_fails_with_a_preservation_term_or_a_projection(
    digits: DigitsDataModule, tmp_path: Path
) -> None:
    manifest = json.loads(json.dumps(digits.manifest_dict()))
    manifest["splits"]["retain"] = {"indices": [], "labels": []}
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(manifest))
    datamodule = DigitsDataModule(manifest=path)
    with pytest.raises(
        ValueError, match=r"Expected a non-empty `retain` split \(the preservation term reads a sample of it\)"
    ):
        _fit(ForsakenModule(MLP(64, 5), preservation_weight=1.0), datamodule)
    with pytest.raises(
        ValueError, match=r"Expected a non-empty `retain` split \(`projection_energy` reads a sample of it\)"
    ):
        _fit(ForsakenModule(MLP(64, 5), projection_energy=0.9), datamodule)


@pytest.mark.parametrize(
    ("settings", "error", "match"),
    [
        (dict(energy=0.0), ValueError, r"Expected `energy` \(the share of the inputs' energy kept\) to be in \(0, 1\]"),
        (dict(energy=1.5), ValueError, r"Expected `energy` .* to be in \(0, 1\], but got 1.5."),
        (dict(energy=0.9, max_rows=0), ValueError, r"Expected `max_rows` \(rows per layer\) to be a positive integer"),
        (dict(energy=0.9, chunk=0), ValueError, r"Expected `chunk` \(samples per forward pass\) to be a positive"),
    ],
)
def test_retained_input_subspaces_refuses_bad_settings(
    settings: dict[str, Any], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        retained_input_subspaces(nn.Linear(3, 2), torch.randn(5, 3), **settings)
    with pytest.raises(TypeError, match=r"Expected `model` to be an nn.Module, but got dict\."):
        retained_input_subspaces({}, torch.randn(5, 3), energy=0.9)  # type: ignore[arg-type]


def test_a_convolution_padded_by_name_is_refused_by_the_projection() -> None:
    with pytest.raises(
        ValueError,
        match=r"Expected the convolutions of a projected target to have numeric padding, but a layer has"
        r" padding='same'",
    ):
        retained_input_subspaces(nn.Conv2d(1, 2, 3, padding="same"), torch.randn(2, 1, 5, 5), energy=0.9)


class _ForeignReference(DigitsDataModule):
    """Digits whose reference split carries classes 5–9, which a 5-class target lacks."""

    def dataset(self, split: str) -> SplitDataset:
        dataset = super().dataset(split)
        if split == "reference":
            dataset.labels = dataset.labels + 5
        return dataset


def test_reference_with_classes_the_target_lacks_fails() -> None:
    with pytest.raises(
        ValueError, match=r"Expected the `reference` split's labels to be classes of the target \(0–4\)"
    ):
        _fit(ForsakenModule(MLP(64, 5)), _ForeignReference())


def test_max_steps_below_iterations_fails(digits: DigitsDataModule) -> None:
    with pytest.raises(RuntimeError, match=r"Expected the Trainer's `max_steps` to be at least `iterations` \(20\)"):
        _fit(ForsakenModule(MLP(64, 5), iterations=20), digits, max_steps=5)


def test_fitting_without_an_unlearning_datamodule_fails(digits: DigitsDataModule) -> None:
    module = ForsakenModule(MLP(64, 5))
    trainer = L.Trainer(**QUIET, max_steps=20)
    with pytest.raises(RuntimeError, match=r"Expected `trainer.fit\(forsakenmodule, datamodule=dm\)` with an"):
        trainer.fit(module, train_dataloaders=digits.dataloader("forget"))


@pytest.mark.parametrize(
    ("server_lr", "batch_size", "error", "match"),
    [
        (0.0, 8, ValueError, r"Expected `server_lr` \(η\) to be positive, but got 0.0."),
        (-1.0, 8, ValueError, r"Expected `server_lr` \(η\) to be positive, but got -1.0."),
        (0.1, 0, ValueError, r"Expected `batch_size` \(n0, the server's batch size\) to be a positive integer, but"),
        (0.1, 2.0, TypeError, r"Expected `batch_size` to be an integer, but got float."),
    ],
)
def test_macforget_bad_arguments(server_lr: float, batch_size: Any, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        ForsakenModule(MLP(64, 5)).macforget_gradient(server_lr=server_lr, batch_size=batch_size)
