"""The overhead benchmark's plain PyTorch loop computes the θ_T the module computes (benchmarks/forsaken_overhead.py).

The benchmark compares the time of the two; the comparison means something only if they do the
same maths. Both start from the same set-up (P, ω, the preserved sample) and run the same
generator, objective, optimiser and direction; their ``θ_T`` must agree to float rounding.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import torch
from torch import nn

from lightning_unlearn import DigitsDataModule, TrainingRecipe, train_classifier
from lightning_unlearn.modules.forsaken import ForsakenModule, fit_forsaken, forsaken_configuration

pytestmark = [
    pytest.mark.filterwarnings("ignore:.*module\\(s\\) in eval mode.*"),
    pytest.mark.filterwarnings("ignore:.*no `validation_step`.*"),
]

BENCHMARK = Path(__file__).parents[2] / "benchmarks" / "forsaken_overhead.py"


@pytest.fixture(scope="module", autouse=True)
def _one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def overhead() -> ModuleType:
    spec = importlib.util.spec_from_file_location("forsaken_overhead", BENCHMARK)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def scenario() -> tuple[DigitsDataModule, nn.Module, nn.Module]:
    datamodule = DigitsDataModule()
    datamodule.setup("fit")
    recipe = TrainingRecipe(max_epochs=10, trainer_kwargs=dict(enable_progress_bar=False))
    target = train_classifier(recipe, datamodule).module.backbone.eval()
    shadow = train_classifier(recipe, datamodule, "shadow_train").module.backbone.eval()
    return datamodule, target, shadow


@pytest.mark.parametrize(
    "settings",
    [
        forsaken_configuration("paper", iterations=6),
        forsaken_configuration("recommended", iterations=8, stopping="fixed"),
        forsaken_configuration(
            "recommended", iterations=6, stopping="fixed", penalised="accumulated", schedule="cosine", warmup=2
        ),
    ],
    ids=["paper", "recommended", "accumulated-cosine"],
)
def test_the_plain_loop_reaches_the_modules_theta_t(
    overhead: ModuleType, scenario: tuple[DigitsDataModule, nn.Module, nn.Module], settings: dict[str, Any]
) -> None:
    datamodule, target, shadow = scenario
    extra = {"shadow_model": shadow} if settings["posterior"] == "shadow" else {}
    module = ForsakenModule(target, **settings, **extra)
    fit_forsaken(module, datamodule)
    setup = overhead.plain_setup(target, datamodule, settings, shadow)
    torch.testing.assert_close(setup["forget_posterior"], module.forget_posterior)
    theta = overhead.plain_forsaken(target, **setup, **settings)
    for name, value in module.unlearned_parameters().items():
        torch.testing.assert_close(theta[name], value, atol=1e-5, rtol=1e-4)
    moved = max(float((value - dict(target.named_parameters())[name]).abs().max()) for name, value in theta.items())
    assert moved > 1e-3, "the comparison is of a real move, not of θ0 with itself"
