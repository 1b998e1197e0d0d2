"""Every unlearning method under DDP (two CPU processes, gloo) against one process.

Each method is fitted twice from the same target: once in one process, once with
``strategy="ddp_spawn"`` on two processes. Every rank must end with the same weights (checked in
the processes, by gathering a checksum), and the two-process model must match the one-process
model: bit for bit where the method is deterministic in its data (SMU), to floating-point
summation order where the method reads its data in full at every step (Forsaken: the KL summed
over two shards instead of one), and within a tolerance where the method draws mini-batches (the
fine-tuning family, FNN, retraining): two processes each draw a batch of the loader's size, so
an epoch takes half as many steps of twice the batch, in another order. The tolerance on those
(validation accuracy within 6 points, forget accuracy within 10) is what ``docs/methods.md``
states for DDP.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import lightning as L
import pytest
import torch
from torch import nn

from lightning_unlearn import DigitsDataModule, TrainingRecipe, predict, train_classifier
from lightning_unlearn.modules import (
    FinetuneBaseline,
    FNNModule,
    ForgetGradientRecorder,
    ForsakenModule,
    L1SparseBaseline,
    NegGradBaseline,
    NegGradPlusBaseline,
    RandomLabelsBaseline,
    RetrainBaseline,
    SalUnBaseline,
    SCRUBBaseline,
    SMUBaseline,
)
from lightning_unlearn.modules.base import UnlearningMethod, fit_method
from lightning_unlearn.modules.forsaken import forsaken_configuration
from lightning_unlearn.trainers import DeviceSettings

pytestmark = [pytest.mark.ddp, pytest.mark.slow]

ONE = DeviceSettings(accelerator="cpu", devices=1)
TWO = DeviceSettings(accelerator="cpu", devices=2, strategy="ddp_spawn")


class _RanksAgree(L.Callback):
    """Writes, from rank 0, every rank's checksum of the unlearned model's parameters."""

    def __init__(self, out: str) -> None:
        self.out = out

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        assert isinstance(pl_module, UnlearningMethod)
        model = pl_module.unlearned_model()
        flat = torch.cat([p.detach().flatten().double() for p in model.parameters()])
        checksum = torch.stack([flat.sum(), (flat * torch.arange(flat.numel(), dtype=flat.dtype)).sum()])
        gathered = trainer.strategy.all_gather(checksum)
        if trainer.is_global_zero:
            Path(self.out).write_text(json.dumps(gathered.tolist()))


@pytest.fixture(scope="module")
def scenario() -> tuple[DigitsDataModule, nn.Module, ForgetGradientRecorder, TrainingRecipe]:
    datamodule = DigitsDataModule()
    datamodule.setup("fit")
    recorder = ForgetGradientRecorder(datamodule.splits["forget"].indices)
    recipe = TrainingRecipe(max_epochs=10, accelerator="cpu")
    target = train_classifier(recipe, datamodule, callbacks=[recorder], enable_progress_bar=False).module
    shadow = train_classifier(recipe, datamodule, "shadow_train", enable_progress_bar=False).module
    return datamodule, target.backbone, recorder, recipe, shadow.backbone


def _methods(
    target: nn.Module, recorder: ForgetGradientRecorder, recipe: TrainingRecipe, shadow: nn.Module
) -> dict[str, Any]:
    return {
        "forsaken": lambda: ForsakenModule(target, iterations=10, posterior="nearest"),
        # shadow P, preservation sample sharded like the forget set, warm-up, stopping rule on the validation pair
        "forsaken_recommended": lambda: ForsakenModule(
            target, **forsaken_configuration("recommended", iterations=12, shadow_model=shadow)
        ),
        # every process builds the same subspaces from the whole preserved sample
        "forsaken_projection": lambda: ForsakenModule(
            target, **forsaken_configuration("recommended", iterations=6, shadow_model=shadow, projection_energy=0.95)
        ),
        # each process computes the head's inputs for its own shards, once
        "forsaken_head": lambda: ForsakenModule(
            target, **forsaken_configuration("recommended", iterations=6, shadow_model=shadow, head="5")
        ),
        "fnn": lambda: FNNModule(target, turns=1, learn_epochs=1, unlearn_epochs=2),
        "smu": lambda: SMUBaseline(target, recorder),
        "finetune": lambda: FinetuneBaseline(target, max_epochs=2),
        "neggrad": lambda: NegGradBaseline(target, max_epochs=2),
        "neggrad_plus": lambda: NegGradPlusBaseline(target, max_epochs=2),
        "random_labels": lambda: RandomLabelsBaseline(target, max_epochs=2),
        "salun": lambda: SalUnBaseline(target, max_epochs=2),
        "scrub": lambda: SCRUBBaseline(target, max_epochs=2, max_steps=1),
        "l1_sparse": lambda: L1SparseBaseline(target, max_epochs=2),
        "retrain": lambda: RetrainBaseline(target, recipe=TrainingRecipe(max_epochs=10)),
    }


def _accuracy(model: nn.Module, datamodule: DigitsDataModule, split: str) -> float:
    return predict(model, datamodule.dataloader(split)).accuracy()


#: method → how its two-process model must compare with its one-process model.
EXACT, SUMMATION_ORDER = "bit-identical", "to summation order"
EXPECTED = {
    "smu": EXACT,
    "forsaken": SUMMATION_ORDER,
    "forsaken_recommended": SUMMATION_ORDER,
    "forsaken_projection": SUMMATION_ORDER,
    "forsaken_head": SUMMATION_ORDER,
}


@pytest.mark.parametrize(
    "name",
    ["forsaken", "forsaken_recommended", "forsaken_projection", "forsaken_head", "fnn", "smu", "finetune", "neggrad",
     "neggrad_plus", "random_labels", "salun", "scrub", "l1_sparse", "retrain"],
)  # fmt: skip
def test_two_processes_give_the_one_process_model(name: str, scenario: tuple, tmp_path: Path) -> None:
    datamodule, target, recorder, recipe, shadow = scenario
    build = _methods(target, recorder, recipe, shadow)[name]
    single = fit_method(build(), datamodule, ONE, seed=0, limit_val_batches=0).model
    method = build()
    out = tmp_path / "ranks.json"
    fit_method(method, datamodule, TWO, seed=0, limit_val_batches=0, callbacks=[_RanksAgree(str(out))])
    ranks = json.loads(out.read_text())
    assert len(ranks) == 2 and ranks[0] == ranks[1], f"{name}: the two ranks ended with different weights {ranks}"
    distributed = copy.deepcopy(method.unlearned_model())  # ddp_spawn hands rank 0's weights back
    largest = max(
        float((a - b).abs().max()) for a, b in zip(single.state_dict().values(), distributed.state_dict().values())
    )
    figures = {
        split: (_accuracy(single, datamodule, split), _accuracy(distributed, datamodule, split))
        for split in ("validation", "forget")
    }
    print(
        f"\nDDP {name}: largest weight difference {largest:.2e}; validation acc {figures['validation'][0]:.3f} (one)"
        f" vs {figures['validation'][1]:.3f} (two); forget acc {figures['forget'][0]:.3f} vs {figures['forget'][1]:.3f}"
    )
    expected = EXPECTED.get(name)
    if expected == EXACT:
        assert largest == 0.0, f"{name}: expected bit-identical weights, largest difference {largest}"
    elif expected == SUMMATION_ORDER:
        assert largest < 1e-4, f"{name}: expected weights equal to summation order, largest difference {largest}"
    else:
        assert abs(figures["validation"][0] - figures["validation"][1]) <= 0.06, (name, figures)
        assert abs(figures["forget"][0] - figures["forget"][1]) <= 0.10, (name, figures)
