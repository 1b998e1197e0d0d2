"""Forsaken's per-iteration time through Lightning beside a plain PyTorch loop doing the same maths.

Run: ``python benchmarks/forsaken_overhead.py [--iterations 40] [--repeats 5] [--seed 0]``. Prints, in one run:

1. the set-up (P, ω and the first direction, computed once from θ0) on its own line, as the module
   times it inside its fit (:attr:`ForsakenModule.setup_seconds`) and as the plain loop does;
2. per configuration (paper, recommended with a fixed T): the time per iteration of
   :func:`~lightning_unlearn.modules.forsaken.fit_forsaken` (the Trainer, its hooks, the pacing
   loader, the closure and the optimiser wrappers included) and of :func:`plain_forsaken`, a
   loop in plain PyTorch with the same set-up, the same generator, objective, optimiser and
   direction, and the ratio of the two (target: at most 1.3×);
3. the retain-scaling line: the recommended configuration's fit time and time per iteration
   with ``retain`` ×1 and ×4 (target_fraction 0.2 and 0.8 of :class:`GeneratedSource`, 6,000
   generated samples: retain 420 → 1,680, the forget set 300), target: at most 1.3× at ×4.

A time per iteration is ``(t(T) − t(1)) / (T − 1)`` for both, each ``t`` the median of
``--repeats`` runs, so the Trainer's start-up and the set-up cancel out and everything that
grows with T stays in. Everything runs in one process on one CPU thread, the module and the loop
alternating, so the ratio compares like with like; it is printed for wall-clock time and for the
process's CPU time, which other processes on a busy shared machine disturb far less (its wall
clock can swing by tens of per cent between runs). Only the ratios printed in one run are meant
to be read.

:func:`plain_forsaken` is also the test that the module computes what its docstring says:
tests/modules/test_forsaken_overhead.py checks that both reach the same ``θ_T``.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import time
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from lightning_unlearn import DigitsDataModule, TrainingRecipe, train_classifier
from lightning_unlearn.datamodules.base import UnlearningDataModule
from lightning_unlearn.datamodules.sources import DataSource, SourceData
from lightning_unlearn.modules.forsaken import (
    MIN_PRESERVED,
    RECOMMENDED_CONFIGURATION,
    ForsakenModule,
    dynamic_penalty_weights,
    fit_forsaken,
    forsaken_configuration,
    gain_schedule,
    non_member_posterior,
    relative_step_scales,
)

warnings.filterwarnings("ignore")
for _name in ("lightning.pytorch", "lightning.fabric", "lightning_unlearn"):
    logging.getLogger(_name).setLevel(logging.ERROR)

QUIET: dict[str, Any] = dict(enable_progress_bar=False, enable_model_summary=False)


# ---------------------------------------------------------------------------- the plain loop
def _whole(datamodule: UnlearningDataModule, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    size = len(datamodule.dataset(split))
    inputs, targets, _ = next(iter(datamodule.dataloader(split, batch_size=max(1, size))))
    return inputs, targets


def _sample(datamodule: UnlearningDataModule, split: str, size: int) -> torch.Tensor:
    """The same seeded sample :class:`ForsakenModule` preserves: positions from ``randperm`` seeded 0, sorted."""
    dataset = datamodule.dataset(split)
    chosen = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(0))[:size].sort().values
    return torch.stack([dataset[int(position)][0] for position in chosen])


def plain_setup(
    target: nn.Module, datamodule: UnlearningDataModule, settings: Mapping[str, Any], shadow: nn.Module | None = None
) -> dict[str, Any]:
    """What the loop needs, computed once from θ0 in plain PyTorch: the forget set, P, ω and the preserved sample."""
    forget_inputs, _ = _whole(datamodule, "forget")
    with torch.no_grad():
        if settings.get("posterior", "per_class") == "shadow":
            assert shadow is not None
            posterior = shadow(forget_inputs).softmax(dim=1)
        else:  # the paper's per-class P (Defs. 4–5), keyed by the class the target predicts
            reference_inputs, _ = _whole(datamodule, "reference")
            table = non_member_posterior(target(reference_inputs).softmax(dim=1), posterior_width(target), "per_class")
            posterior = table[target(forget_inputs).argmax(dim=1)]
    probe_inputs, probe_targets = _whole(datamodule, "probe")
    omega = dynamic_penalty_weights(target, probe_inputs, probe_targets)  # Eq. 6
    setup: dict[str, Any] = dict(forget_inputs=forget_inputs, forget_posterior=posterior, omega=omega)
    if settings.get("preservation_weight", 0.0) > 0:
        default = max(len(forget_inputs), MIN_PRESERVED)
        size = min(len(datamodule.dataset("retain")), settings.get("preservation_size") or default)
        preserved = _sample(datamodule, "retain", size)
        with torch.no_grad():
            setup.update(preserved_inputs=preserved, preserved_posterior=target(preserved).softmax(dim=1))
    return setup


def posterior_width(model: nn.Module) -> int:
    last = [module for module in model.modules() if isinstance(module, nn.Linear)][-1]
    return int(last.out_features)


def _adam_direction(
    gradients: Mapping[str, torch.Tensor], moments: dict[str, list[torch.Tensor]], step: int
) -> dict[str, torch.Tensor]:
    """``m̂ / (√v̂ + ε)`` of every gradient seen so far (β1 = 0.9, β2 = 0.999)."""
    direction = {}
    for name, gradient in gradients.items():
        first, second = moments.setdefault(name, [torch.zeros_like(gradient), torch.zeros_like(gradient)])
        first.mul_(0.9).add_(gradient, alpha=0.1)
        second.mul_(0.999).addcmul_(gradient, gradient, value=0.001)
        direction[name] = (first / (1 - 0.9**step)) / ((second / (1 - 0.999**step)).sqrt() + 1e-8)
    return direction


def plain_forsaken(
    target: nn.Module,
    forget_inputs: torch.Tensor,
    forget_posterior: torch.Tensor,
    omega: Mapping[str, torch.Tensor],
    *,
    iterations: int = 20,
    xi: float = 1.0,
    penalty_weight: float = 1e-3,
    initial_gain: float = 3e-3,
    optimizer: Callable[[Iterable[torch.Tensor]], torch.optim.Optimizer] | None = None,
    penalised: str = "step",
    schedule: str = "constant",
    warmup: int = 0,
    preservation_weight: float = 0.0,
    preserved_inputs: torch.Tensor | None = None,
    preserved_posterior: torch.Tensor | None = None,
    step_scale: str = "absolute",
    **_: Any,
) -> dict[str, torch.Tensor]:
    """Algorithm 1 as :class:`ForsakenModule` reads it, in a plain loop: returns ``θ_T`` by parameter name.

    Per-neuron gains ``ρ`` (the generator), ``μ_t = initial_gain · s(t) · u_p · ρ ⊙ d`` (``u_p`` the
    tensor's unit: 1, or its root mean square in ``θ0`` with ``step_scale="relative"``),
    ``θ_t = θ_{t−1} − ξ·μ_t``, the loss ``KL(P ‖ Υ) [+ γ·KL(f_θ0 ‖ f_θt) on the preserved sample]
    + λ·Σ ω·|μ|`` minimised over ``ρ`` with the given optimiser (a closure, its first evaluation
    committed), and the next direction ``d`` the Adam-scaled gradient of the data terms at ``θ_t``.
    """
    parameters = {name: p.detach() for name, p in target.named_parameters()}
    buffers = {name: b.detach() for name, b in target.named_buffers()}
    names = list(parameters)
    units = relative_step_scales(target) if step_scale == "relative" else dict.fromkeys(names, 1.0)
    gains = [torch.ones(p.shape[0] if p.dim() else 1, requires_grad=True) for p in parameters.values()]
    make = optimizer or (lambda params: torch.optim.Adam(params, lr=1e-2))
    generator_optimizer = make(gains)
    n_forget = forget_inputs.shape[0]

    def data_terms(theta: Mapping[str, torch.Tensor]) -> torch.Tensor:
        logits = functional_call(target, (dict(theta), buffers), (forget_inputs,))
        loss = F.kl_div(logits.log_softmax(dim=1), forget_posterior, reduction="sum") / n_forget
        if preservation_weight > 0 and preserved_inputs is not None and preserved_posterior is not None:
            kept = functional_call(target, (dict(theta), buffers), (preserved_inputs,))
            loss = (
                loss
                + preservation_weight
                * F.kl_div(kept.log_softmax(dim=1), preserved_posterior, reduction="sum")
                / preserved_inputs.shape[0]
            )
        return loss

    start = {name: p.clone().requires_grad_(True) for name, p in parameters.items()}
    moments: dict[str, list[torch.Tensor]] = {}
    first_gradient = torch.autograd.grad(data_terms(start), list(start.values()))
    direction = _adam_direction(dict(zip(names, first_gradient)), moments, 1)
    theta = {name: p.clone() for name, p in parameters.items()}
    accumulated = {name: torch.zeros_like(p) for name, p in parameters.items()}
    for t in range(1, iterations + 1):
        step = _Step(
            theta, direction, accumulated, gains, initial_gain * gain_schedule(t, iterations, schedule, warmup),  # type: ignore[arg-type]
            xi, penalty_weight, omega, penalised, data_terms, generator_optimizer, units,
        )  # fmt: skip
        generator_optimizer.step(step.closure)
        with torch.no_grad():
            for name in names:
                accumulated[name] += xi * step.kept["mask"][name]
        theta = {name: tensor.detach() for name, tensor in step.kept["moved"].items()}
        gradients = {name: tensor.grad for name, tensor in step.kept["moved"].items()}
        direction = _adam_direction(gradients, moments, t + 1)  # type: ignore[arg-type]
    return theta


class _Step:
    """One iteration's closure: ``μ_t`` from the gains, ``θ_t``, the loss and its backward; the first call is kept."""

    def __init__(
        self,
        theta: Mapping[str, torch.Tensor],
        direction: Mapping[str, torch.Tensor],
        accumulated: Mapping[str, torch.Tensor],
        gains: Sequence[torch.Tensor],
        scale: float,
        xi: float,
        penalty_weight: float,
        omega: Mapping[str, torch.Tensor],
        penalised: str,
        data_terms: Callable[[Mapping[str, torch.Tensor]], torch.Tensor],
        optimizer: torch.optim.Optimizer,
        units: Mapping[str, float],
    ) -> None:
        self.units = units
        self.theta, self.direction, self.accumulated, self.gains = theta, direction, accumulated, gains
        self.scale, self.xi, self.penalty_weight, self.omega = scale, xi, penalty_weight, omega
        self.penalised, self.data_terms, self.optimizer = penalised, data_terms, optimizer
        self.kept: dict[str, dict[str, torch.Tensor]] = {}

    def closure(self) -> torch.Tensor:
        self.optimizer.zero_grad()
        names = list(self.theta)
        mask = {}
        for name, gain in zip(names, self.gains):
            direction = self.direction[name]
            shape = (-1,) + (1,) * (direction.dim() - 1) if direction.dim() else ()
            mask[name] = (self.scale * self.units[name]) * gain.reshape(shape) * direction
        moved = {name: self.theta[name] - self.xi * mask[name] for name in names}
        for tensor in moved.values():
            tensor.retain_grad()
        if self.penalised == "step":
            penalised = mask
        else:
            penalised = {name: self.accumulated[name] + self.xi * mask[name] for name in names}
        penalty = self.penalty_weight * sum((self.omega[name] * penalised[name].abs()).sum() for name in names)
        loss = self.data_terms(moved) + penalty
        loss.backward()
        if not self.kept:
            self.kept.update(mask=mask, moved=moved)
        return loss.detach()


class GeneratedSource(DataSource):
    """Generated data for the retain-scaling line: 10 classes of 64 features in [0, 1], ``size`` samples.

    Each class is a random prototype (uniform in [0, 1]^64, like an 8×8 image), each sample its
    class's prototype plus Gaussian noise (σ = 0.35), clipped to [0, 1]; seeded. Digits cannot
    grow ``retain`` ×4, or beyond the preserved sample's cap of 1,024; generated samples can.
    """

    name = "generated"

    def __init__(self, size: int = 6_000, seed: int = 0) -> None:
        self.size, self.seed = size, seed

    def load(self) -> SourceData:
        generator = torch.Generator().manual_seed(self.seed)
        prototypes = torch.rand(10, 64, generator=generator)
        targets = torch.arange(self.size) % 10
        inputs = (prototypes[targets] + 0.35 * torch.randn(self.size, 64, generator=generator)).clamp(0, 1)
        return SourceData(name=self.name, inputs=inputs, targets=targets, num_classes=10)


# ---------------------------------------------------------------------------- timing
class _Clock:
    """Wall-clock and CPU time of this process (the CPU time is what a busy shared machine disturbs least)."""

    def __enter__(self) -> _Clock:
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *_: Any) -> None:
        self.wall, self.cpu = time.perf_counter() - self.wall, time.process_time() - self.cpu


def per_iteration(
    target: nn.Module,
    datamodule: UnlearningDataModule,
    settings: Mapping[str, Any],
    iterations: int,
    repeats: int,
    shadow: nn.Module | None = None,
) -> dict[str, float]:
    """Time per iteration and set-up of the module (through ``fit_forsaken``) and of the plain loop, alternating.

    Returns medians over ``repeats``: ``module`` and ``plain`` (wall seconds per iteration),
    ``module_cpu`` and ``plain_cpu`` (CPU seconds per iteration), the whole T-iteration runs and the set-ups.
    """
    extra = {"shadow_model": shadow} if settings.get("posterior") == "shadow" else {}
    runs: dict[tuple[str, int], list[_Clock]] = {}
    setups: dict[str, list[float]] = {"module": [], "plain": []}
    for _ in range(repeats):
        for count in (1, iterations):
            module = ForsakenModule(target, **{**settings, "iterations": count}, **extra)
            with _Clock() as clock:
                fit_forsaken(module, datamodule)
            runs.setdefault(("module", count), []).append(clock)
            setups["module"].append(module.setup_seconds)
            with _Clock() as clock:
                start = time.perf_counter()
                setup = plain_setup(target, datamodule, settings, shadow)
                setups["plain"].append(time.perf_counter() - start)
                plain_forsaken(target, **setup, **{**settings, "iterations": count})
            runs.setdefault(("plain", count), []).append(clock)
    median = statistics.median
    times: dict[str, float] = {}
    for who in ("module", "plain"):
        for unit, read in (("", lambda c: c.wall), ("_cpu", lambda c: c.cpu)):
            long, short = median(map(read, runs[(who, iterations)])), median(map(read, runs[(who, 1)]))
            times[who + unit] = (long - short) / (iterations - 1)
            times[f"{who}_run{unit}"] = long
        times[f"{who}_setup"] = median(setups[who])
    return times


def _verdict(ratio: float, limit: float = 1.3) -> str:
    return "PASS" if ratio <= limit else "FAIL"


def trained(datamodule: DigitsDataModule) -> tuple[nn.Module, nn.Module]:
    """The target and a shadow model (the target's recipe on ``shadow_train``)."""
    recipe = TrainingRecipe()
    target = train_classifier(recipe, datamodule, **QUIET).module.backbone.eval()
    shadow = train_classifier(recipe, datamodule, "shadow_train", **QUIET).module.backbone.eval()
    return target, shadow


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=40, help="T of every timed run (and 1)")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs of each (median)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.iterations < 2 or args.repeats < 1:
        parser.error("Expected --iterations of at least 2 and --repeats of at least 1.")
    torch.set_num_threads(1)
    print(
        f"threads=1 T={args.iterations} repeats={args.repeats} load average at start={os.getloadavg()[0]:.2f}"
        " (a shared machine: read the ratios, which are measured side by side)"
    )
    datamodule = DigitsDataModule(seed=args.seed)
    datamodule.setup("fit")
    target, shadow = trained(datamodule)
    configurations = {
        "paper": forsaken_configuration("paper"),
        "recommended, fixed T": forsaken_configuration("recommended", stopping="fixed"),
    }
    for name, settings in configurations.items():
        times = per_iteration(target, datamodule, settings, args.iterations, args.repeats, shadow)
        wall, cpu = times["module"] / times["plain"], times["module_cpu"] / times["plain_cpu"]
        print(
            f"{name}: set-up (P, ω, first direction): module {1000 * times['module_setup']:.1f} ms,"
            f" plain {1000 * times['plain_setup']:.1f} ms"
        )
        print(
            f"{name}: per iteration: fit_forsaken {1000 * times['module']:.2f} ms wall"
            f" / {1000 * times['module_cpu']:.2f}"
            f" ms CPU, plain loop {1000 * times['plain']:.2f} ms wall / {1000 * times['plain_cpu']:.2f} ms CPU;"
            f" ratio {wall:.2f}× wall, {cpu:.2f}× CPU (target ≤ 1.3×: {_verdict(wall)} wall, {_verdict(cpu)} CPU);"
            f" whole fit of T={args.iterations} {times['module_run']:.3f} s, plain {times['plain_run']:.3f} s"
        )
    # retain ×4 with the forget set (300) fixed, twice: growing up to the preserved sample's cap (1,024 retained
    # samples: below it the preservation term reads all of retain, so its cost grows with it), and beyond the cap.
    for size, where in ((6_000, "up to the preserved sample's cap"), (24_000, "beyond the preserved sample's cap")):
        scaled = []
        for fraction in (0.2, 0.8):
            dm = UnlearningDataModule(
                GeneratedSource(size, seed=args.seed), kind="ood_label_split", split_class=5,
                target_fraction=fraction, forget_size=300, seed=args.seed,
            )  # fmt: skip
            dm.setup("fit")
            scaled_target, scaled_shadow = trained(dm)
            settings = forsaken_configuration("recommended", stopping="fixed")
            times = per_iteration(scaled_target, dm, settings, args.iterations, args.repeats, scaled_shadow)
            scaled.append((len(dm.dataset("retain")), times))
        (small, low), (large, high) = scaled
        fit_ratio = high["module_run_cpu"] / low["module_run_cpu"]
        iteration_ratio = high["module_cpu"] / low["module_cpu"]
        cap = RECOMMENDED_CONFIGURATION["preservation_size"]
        print(
            f"retain scaling {where} (recommended, fixed T={args.iterations}, generated data, forget 300):"
            f" retain {small} → {large} (×{large / small:.1f}), preserved {min(small, cap)} → {min(large, cap)};"
            f" whole fit {low['module_run']:.3f} → {high['module_run']:.3f} s wall, {low['module_run_cpu']:.3f} →"
            f" {high['module_run_cpu']:.3f} s CPU ({fit_ratio:.2f}×); per iteration {1000 * low['module_cpu']:.2f} →"
            f" {1000 * high['module_cpu']:.2f} ms CPU ({iteration_ratio:.2f}×)"
            f" (target ≤ 1.3×: {_verdict(max(fit_ratio, iteration_ratio))})"
        )
    print(f"load average at end={os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
