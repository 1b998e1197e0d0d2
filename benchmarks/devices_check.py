"""Where each stage of a run trains, and how long it takes: the main job and the MNIST FNN config.

Run on a GPU machine to check that ``recipe.accelerator: auto`` puts every stage on the GPU::

    python benchmarks/devices_check.py --mnist-root /tmp/mnist --output /tmp/devices

Every ``Trainer.fit`` of the run (target, shadow, retraining, LiRA references, each method) is
listed with the device Lightning put the module on and the seconds it took, grouped by the
module's class; the evaluation's device is the one the run prints. The MNIST config needs the
four MNIST idx files under ``--mnist-root``/MNIST/raw; with ``--generate`` the script writes
synthetic ones there first (class-dependent strokes with noise, 60,000 + 10,000 images: the
format and the size of MNIST, not its content).
"""

from __future__ import annotations

import argparse
import collections
import gzip
import struct
import time
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch

from lightning_unlearn.cli import main

FITS: list[tuple[str, str, float]] = []


def _record_fits() -> None:
    """Wrap ``Trainer.fit`` so that every fit reports its module, device and seconds."""
    original = L.Trainer.fit

    def fit(self: L.Trainer, model: L.LightningModule, *args: Any, **kwargs: Any) -> None:
        start = time.perf_counter()
        original(self, model, *args, **kwargs)
        FITS.append((type(model).__name__, str(self.strategy.root_device), time.perf_counter() - start))

    L.Trainer.fit = fit  # type: ignore[method-assign]


def write_synthetic_mnist(root: Path, train: int = 60_000, test: int = 10_000, seed: int = 0) -> None:
    """Write MNIST-format idx files (gzip) of class-dependent strokes with noise under ``root``/MNIST/raw."""
    rng = np.random.default_rng(seed)
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    grid = np.mgrid[0:28, 0:28].astype(np.float32)
    angles = np.linspace(0, np.pi, 10, endpoint=False)

    def images(count: int) -> tuple[np.ndarray, np.ndarray]:
        labels = rng.integers(0, 10, count)
        out = np.empty((count, 28, 28), dtype=np.uint8)
        for start in range(0, count, 5_000):
            chunk = labels[start : start + 5_000]
            angle = angles[chunk][:, None, None] + rng.normal(0, 0.25, (len(chunk), 1, 1))
            shift = rng.normal(0, 2.0, (len(chunk), 2, 1, 1))
            y, x = grid[0] - 13.5 - shift[:, 0], grid[1] - 13.5 - shift[:, 1]
            distance = np.abs(np.cos(angle) * y - np.sin(angle) * x)
            ring = np.abs(np.hypot(x, y) - (4 + chunk[:, None, None] % 5 * 2))
            picture = np.exp(-(distance**2) / 3) * (np.hypot(x, y) < 11) + np.exp(-(ring**2) / 2) * (chunk >= 5)[
                :, None, None
            ]
            picture += 0.25 * rng.standard_normal(picture.shape, dtype=np.float32)
            out[start : start + len(chunk)] = np.clip(picture * 200, 0, 255).astype(np.uint8)
        return out, labels.astype(np.uint8)

    for prefix, count in (("train", train), ("t10k", test)):
        pictures, labels = images(count)
        with gzip.open(raw / f"{prefix}-images-idx3-ubyte.gz", "wb") as file:
            file.write(struct.pack(">IIII", 2051, count, 28, 28) + pictures.tobytes())
        with gzip.open(raw / f"{prefix}-labels-idx1-ubyte.gz", "wb") as file:
            file.write(struct.pack(">II", 2049, count) + labels.tobytes())


def _run(title: str, arguments: list[str]) -> None:
    FITS.clear()
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    main(arguments)
    seconds = time.perf_counter() - start
    print(f"\n### {title}: {seconds:.1f} s in all", flush=True)
    grouped: dict[tuple[str, str], list[float]] = collections.defaultdict(list)
    for module, device, fit_seconds in FITS:
        grouped[(module, device)].append(fit_seconds)
    print(f"{'module fitted':<24} {'device':<8} {'fits':>5} {'seconds':>9}")
    for (module, device), times in grouped.items():
        print(f"{module:<24} {device:<8} {len(times):>5} {sum(times):>9.2f}")
    if torch.cuda.is_available():
        print(f"peak GPU memory: {torch.cuda.max_memory_allocated() / 2**20:.0f} MiB", flush=True)


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mnist-root", type=Path, required=True, help="folder holding MNIST/raw")
    parser.add_argument("--generate", action="store_true", help="write synthetic MNIST-format files there first")
    parser.add_argument("--output", type=Path, default=Path("outputs/devices"))
    parser.add_argument("--cache", type=Path, default=Path(".cache/devices"))
    args = parser.parse_args()
    if args.generate:
        start = time.perf_counter()
        write_synthetic_mnist(args.mnist_root)
        print(f"wrote synthetic MNIST-format files in {time.perf_counter() - start:.1f} s", flush=True)
    print(f"torch {torch.__version__}; CUDA available: {torch.cuda.is_available()}", flush=True)
    if torch.cuda.is_available():
        print(f"GPU: {torch.cuda.get_device_name(0)}", flush=True)
    _record_fits()
    common = ["--recipe.accelerator=auto", "--progress_bar=false", "--plots=false"]
    _run(
        "main job (digits, default methods, LiRA 16)",
        ["experiment", *common, f"--output_dir={args.output / 'main'}", f"--cache_dir={args.cache}"],
    )
    config = Path(__file__).parents[1] / "configs" / "experiments" / "papers" / "mnist_fnn.yaml"
    _run(
        "configs/experiments/papers/mnist_fnn.yaml (one repeat, no LiRA)",
        [
            "experiment",
            "--config",
            str(config),
            *common,
            f"--data.source.root={args.mnist_root}",
            "--repeats=1",
            "--lira=0",
            f"--output_dir={args.output / 'mnist_fnn'}",
            f"--cache_dir={args.cache}",
        ],
    )


if __name__ == "__main__":
    cli()
