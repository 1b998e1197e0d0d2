"""Synthetic glyphs: a procedurally drawn 28×28 grayscale image data set in MNIST's idx files.

No real image data set can be downloaded on every machine this project runs on, yet an
unlearning benchmark at a realistic scale needs tens of thousands of images that a CNN has to
work to classify. :func:`make_synthetic_glyphs` draws them, deterministically from a seed, and
writes them in exactly the on-disk layout torchvision gives MNIST (four idx files of unsigned
bytes), so they are read by the same code as MNIST: :class:`SyntheticGlyphsSource` is
:class:`~lightning_unlearn.datamodules.sources.vision.MNISTSource` pointed at another folder, under
another name.

How an image is made (every random draw comes from ``numpy.random.default_rng`` seeded by
``seed``; the training and test files use independent streams):

1. **Class prototype.** Each of the ten classes is a glyph of two pen strokes, each stroke a
   polyline of 7 control points in a ``[-1, 1]²`` box (:data:`GLYPH_NAMES`: ring, bar, zed,
   bumps, plus, cross, triangle, seven, eights, loop).
2. **Label-ambiguous samples.** With probability ``ambiguous_fraction`` (default 6 %) the
   control points are moved a fraction α ~ U(0.3, 0.6) of the way towards another random
   class's control points; the sample keeps its own label, so some samples look more like
   another class than their own and no model can classify every sample.
3. **Handwriting jitter.** Every control point moves by N(0, 0.07²) and every stroke by
   N(0, 0.05²) (box units; one unit is about 8.5 pixels).
4. **Random affine.** Rotation N(0, 12°) clipped to ±30°, scale U(0.75, 1.1) with a horizontal
   stretch U(0.85, 1.15), shear U(−0.25, 0.25), translation N(0, 1.5²) pixels clipped to ±3.5,
   about the image centre.
5. **Pen.** Stroke width U(1.2, 3.0) pixels and ink U(0.6, 1.0); a pixel's ink is
   ``clip(width/2 + 0.5 − distance to the nearest segment, 0, 1)`` (one-pixel antialiasing).
6. **Distractors.** With probability 0.35 a stray segment of 3–10 pixels anywhere in the
   image (width U(1, 2), ink U(0.3, 0.8)); a second one with probability 0.15.
7. **Eraser.** With probability 0.1 a random rectangle of 3–7 pixels a side is wiped to 0.
8. **Noise.** Gaussian pixel noise with σ ~ U(0.02, 0.12) per image, then clipping to
   ``[0, 1]`` and rounding to bytes.

Labels are balanced: class ``i % 10`` for sample ``i`` before a seeded shuffle, so every class
has ``size // 10`` or one more samples. 70,000 images take a few seconds on one core.

Example:
    >>> import tempfile
    >>> root = tempfile.mkdtemp()
    >>> files = make_synthetic_glyphs(root, train_size=40, test_size=20, seed=0)
    >>> data = SyntheticGlyphsSource(root).load()
    >>> data.inputs.shape, data.inputs.dtype, data.classes[:3]
    (torch.Size([60, 1, 28, 28]), torch.uint8, ('ring', 'bar', 'zed'))
    >>> bool((data.targets[:40] == files.train_labels).all())
    True
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from lightning_unlearn.checks import check_integer
from lightning_unlearn.datamodules.sources.vision import MNISTSource
from lightning_unlearn.storage import atomic_write

__all__ = [
    "GLYPH_NAMES",
    "GlyphFiles",
    "SyntheticGlyphsSource",
    "make_synthetic_glyphs",
    "render_glyphs",
    "write_idx_ubyte",
]

#: The ten classes, in label order.
GLYPH_NAMES: tuple[str, ...] = ("ring", "bar", "zed", "bumps", "plus", "cross", "triangle", "seven", "eights", "loop")

#: What the files written by :func:`make_synthetic_glyphs` depend on; a change rewrites them.
GENERATOR_VERSION = 1
IMAGE_SIZE = 28
_POINTS = 7  # control points per stroke
_SEGMENTS_PER_STROKE = _POINTS - 1
_HALF_SIZE = 8.5  # pixels per box unit: a glyph spans about 17 of the 28 pixels
_CHUNK = 64  # images rendered at a time (their temporaries stay in the CPU's cache)
_SETTINGS_FILE = "generation.json"


# ---------------------------------------------------------------------------- the prototypes
def _resample(vertices: list[tuple[float, float]]) -> np.ndarray:
    """A polyline through ``vertices`` as ``_POINTS`` points evenly spaced along its length."""
    points = np.asarray(vertices, dtype=np.float64)
    lengths = np.linalg.norm(np.diff(points, axis=0), axis=1)
    position = np.concatenate([[0.0], np.cumsum(lengths)])
    wanted = np.linspace(0.0, position[-1], _POINTS)
    return np.stack([np.interp(wanted, position, points[:, axis]) for axis in range(2)], axis=1)


def _arc(cx: float, cy: float, rx: float, ry: float, start: float, stop: float) -> list[tuple[float, float]]:
    """Vertices of an elliptic arc from ``start`` to ``stop`` degrees (y grows downwards)."""
    angles = np.radians(np.linspace(start, stop, 25))
    return [(cx + rx * float(np.cos(a)), cy + ry * float(np.sin(a))) for a in angles]


def _prototypes() -> np.ndarray:
    """The ten glyphs' control points, ``(10, 2 strokes, _POINTS, 2)`` in box units, y downwards."""
    strokes = [
        (_arc(0, 0, 0.6, 0.9, 180, 360), _arc(0, 0, 0.6, 0.9, 0, 180)),  # ring
        ([(0.1, -0.95), (0.0, 0.95)], [(-0.45, -0.5), (0.1, -0.95)]),  # bar with a flag
        ([(-0.7, -0.85), (0.7, -0.85), (-0.7, 0.85)], [(-0.7, 0.85), (0.75, 0.85)]),  # zed
        (_arc(0, -0.45, 0.55, 0.45, -160, 90), _arc(0, 0.45, 0.55, 0.45, -90, 160)),  # bumps
        ([(-0.85, 0.0), (0.85, 0.0)], [(0.0, -0.9), (0.0, 0.9)]),  # plus
        ([(-0.75, -0.9), (0.75, 0.9)], [(0.75, -0.9), (-0.75, 0.9)]),  # cross
        ([(0.0, -0.9), (-0.85, 0.8), (0.85, 0.8)], [(0.85, 0.8), (0.0, -0.9)]),  # triangle
        ([(-0.7, -0.85), (0.7, -0.85), (-0.15, 0.95)], [(-0.35, 0.05), (0.45, 0.05)]),  # seven
        (_arc(0, -0.5, 0.4, 0.4, -90, 270), _arc(0, 0.45, 0.5, 0.45, -90, 270)),  # eights
        (_arc(0, -0.4, 0.45, 0.45, 0, 360), [(0.45, -0.4), (0.3, 0.95)]),  # loop with a tail
    ]
    return np.stack([np.stack([_resample(list(stroke)) for stroke in glyph]) for glyph in strokes])


_PROTOTYPES = _prototypes()


# ---------------------------------------------------------------------------- drawing
def _segment_ink(starts: np.ndarray, ends: np.ndarray, width: np.ndarray, ink: np.ndarray) -> torch.Tensor:
    """Ink of every pixel, the brightest over all segments: ``(B, 28, 28)`` float32.

    ``starts``/``ends`` are ``(B, S, 2)`` segment ends in pixel coordinates (x, y); ``width`` and
    ``ink`` are ``(B, S)``. A pixel's ink from one segment is
    ``ink · clip(width/2 + 0.5 − distance from the pixel's centre to the segment, 0, 1)``.
    """
    centres = torch.arange(IMAGE_SIZE, dtype=torch.float32) + 0.5
    grid_y, grid_x = torch.meshgrid(centres, centres, indexing="ij")
    pixel_x, pixel_y = grid_x.reshape(-1), grid_y.reshape(-1)  # (P,)
    a = torch.from_numpy(starts.astype(np.float32))
    d = torch.from_numpy((ends - starts).astype(np.float32))
    dx, dy = d[..., 0, None], d[..., 1, None]  # (B, S, 1)
    offset_x = pixel_x - a[..., 0, None]  # (B, S, P)
    offset_y = pixel_y - a[..., 1, None]
    along = ((offset_x * dx + offset_y * dy) / (dx * dx + dy * dy).clamp_min(1e-6)).clamp_(0.0, 1.0)
    offset_x.sub_(along * dx)
    offset_y.sub_(along * dy)
    distance = offset_x.square_().add_(offset_y.square_()).sqrt_()
    reach = torch.from_numpy((width / 2 + 0.5).astype(np.float32))[..., None]
    coverage = (reach - distance).clamp_(0.0, 1.0).mul_(torch.from_numpy(ink.astype(np.float32))[..., None])
    return coverage.amax(dim=1).reshape(-1, IMAGE_SIZE, IMAGE_SIZE)


def render_glyphs(labels: np.ndarray, rng: np.random.Generator, ambiguous_fraction: float = 0.06) -> np.ndarray:
    """Draw one image per label (see the module docstring for every step).

    Args:
        labels: the class of each image, integers in ``0 … 9``.
        rng: the source of every random draw (the same generator state gives the same images).
        ambiguous_fraction: share of images whose glyph is pulled towards another class's.

    Returns:
        ``uint8`` images, ``(len(labels), 28, 28)``.

    Raises:
        ValueError: a label outside ``0 … 9`` or ``ambiguous_fraction`` outside ``[0, 1]``.

    Example:
        >>> images = render_glyphs(np.arange(10), np.random.default_rng(0))
        >>> images.shape, images.dtype, bool(images.max() > 200)
        ((10, 28, 28), dtype('uint8'), True)
    """
    labels = np.asarray(labels)
    if labels.ndim != 1 or (labels.size and (labels.min() < 0 or labels.max() >= len(GLYPH_NAMES))):
        raise ValueError(
            f"Expected `labels` to be a 1-D array of classes 0–{len(GLYPH_NAMES) - 1}, but got {labels!r}."
        )
    if not 0.0 <= ambiguous_fraction <= 1.0:
        raise ValueError(f"Expected `ambiguous_fraction` to be in [0, 1], but got {ambiguous_fraction!r}.")
    count = len(labels)
    # Every draw is made for the whole set first, so chunking the drawing changes nothing.
    points = _PROTOTYPES[labels].copy()  # (N, 2, P, 2)
    other = (labels + rng.integers(1, len(GLYPH_NAMES), size=count)) % len(GLYPH_NAMES)
    pulled = rng.random(count) < ambiguous_fraction
    alpha = np.where(pulled, rng.uniform(0.3, 0.6, size=count), 0.0)
    points += alpha[:, None, None, None] * (_PROTOTYPES[other] - points)
    points += rng.normal(0.0, 0.07, size=points.shape) + rng.normal(0.0, 0.05, size=(count, 2, 1, 2))
    angle = np.radians(np.clip(rng.normal(0.0, 12.0, size=count), -30.0, 30.0))
    scale = rng.uniform(0.75, 1.1, size=count) * _HALF_SIZE
    stretch = rng.uniform(0.85, 1.15, size=count)
    shear = rng.uniform(-0.25, 0.25, size=count)
    shift = np.clip(rng.normal(0.0, 1.5, size=(count, 2)), -3.5, 3.5) + IMAGE_SIZE / 2
    cos, sin = np.cos(angle), np.sin(angle)
    # x' = R · Shear · Scale · x + shift
    linear = np.empty((count, 2, 2))
    linear[:, 0, 0] = scale * stretch * cos
    linear[:, 0, 1] = scale * (shear * cos - sin)
    linear[:, 1, 0] = scale * stretch * sin
    linear[:, 1, 1] = scale * (shear * sin + cos)
    pixels = np.einsum("nij,nspj->nspi", linear, points) + shift[:, None, None, :]
    starts = pixels[:, :, :-1].reshape(count, -1, 2)
    ends = pixels[:, :, 1:].reshape(count, -1, 2)
    glyph_segments = starts.shape[1]
    width = np.repeat(rng.uniform(1.2, 3.0, size=(count, 1)), glyph_segments, axis=1)
    ink = np.repeat(rng.uniform(0.6, 1.0, size=(count, 1)), glyph_segments, axis=1)
    # Two stray segments per image, each present or not (absent: no ink).
    stray_start = rng.uniform(2.0, IMAGE_SIZE - 2.0, size=(count, 2, 2))
    stray_angle = rng.uniform(0.0, 2 * np.pi, size=(count, 2))
    stray_length = rng.uniform(3.0, 10.0, size=(count, 2))
    stray_end = stray_start + stray_length[..., None] * np.stack([np.cos(stray_angle), np.sin(stray_angle)], -1)
    stray_present = rng.random((count, 2)) < np.array([0.35, 0.15])
    stray_width = rng.uniform(1.0, 2.0, size=(count, 2))
    stray_ink = rng.uniform(0.3, 0.8, size=(count, 2)) * stray_present
    starts = np.concatenate([starts, stray_start], axis=1)
    ends = np.concatenate([ends, stray_end], axis=1)
    width = np.concatenate([width, stray_width], axis=1)
    ink = np.concatenate([ink, stray_ink], axis=1)
    erased = rng.random(count) < 0.1
    eraser_size = rng.integers(3, 8, size=(count, 2))
    eraser_corner = rng.integers(0, IMAGE_SIZE - 7, size=(count, 2))
    noise_level = rng.uniform(0.02, 0.12, size=count)
    noise_seed = rng.integers(0, 2**63 - 1)

    images = np.empty((count, IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8)
    noise_rng = np.random.default_rng(noise_seed)
    threads = torch.get_num_threads()
    # One thread: the chunks are small, and on a busy machine more threads only wait on each other
    # (measured on 2 shared cores: 10× slower with two).
    torch.set_num_threads(1)
    try:
        for begin in range(0, count, _CHUNK):
            chunk = slice(begin, begin + _CHUNK)
            canvas = _segment_ink(starts[chunk], ends[chunk], width[chunk], ink[chunk]).numpy()
            for row in np.flatnonzero(erased[chunk]):
                (x, y), (w, h) = eraser_corner[begin + row], eraser_size[begin + row]
                canvas[row, y : y + h, x : x + w] = 0.0
            canvas += noise_rng.standard_normal(canvas.shape, dtype=np.float32) * noise_level[chunk, None, None]
            images[chunk] = np.rint(np.clip(canvas, 0.0, 1.0) * 255.0).astype(np.uint8)
    finally:
        torch.set_num_threads(threads)
    return images


# ---------------------------------------------------------------------------- the files
def write_idx_ubyte(path: str | os.PathLike[str], array: np.ndarray) -> Path:
    """Write ``array`` as an idx file of unsigned bytes (the MNIST format), atomically.

    The file is the magic number ``0x0000080N`` (N = ``array.ndim``), the N sizes as big-endian
    32-bit integers, then the bytes in C order.

    Raises:
        ValueError: values outside ``0 … 255`` or an array of more than 255 dimensions.
    """
    array = np.asarray(array)
    if array.size and (array.min() < 0 or array.max() > 255):
        raise ValueError(f"Expected values in 0–255 to write as unsigned bytes, but got {array.min()}–{array.max()}.")
    if not 1 <= array.ndim <= 255:
        raise ValueError(f"Expected an array of 1 to 255 dimensions, but got {array.ndim}.")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    header = (0x00000800 + array.ndim).to_bytes(4, "big") + np.asarray(array.shape, dtype=">u4").tobytes()
    data = np.ascontiguousarray(array, dtype=np.uint8).tobytes()
    return atomic_write(path, lambda file: (file.write(header), file.write(data)))


@dataclass(frozen=True)
class GlyphFiles:
    """What :func:`make_synthetic_glyphs` wrote (or found already written with the same settings).

    Attributes:
        folder: the ``raw`` folder holding the four idx files.
        train_labels: the training file's labels, in file order.
        test_labels: the test file's labels, in file order.
        written: ``False`` when the files were already there and were kept.
    """

    folder: Path
    train_labels: torch.Tensor
    test_labels: torch.Tensor
    written: bool


def _balanced_labels(size: int, rng: np.random.Generator) -> np.ndarray:
    return rng.permutation(np.arange(size) % len(GLYPH_NAMES)).astype(np.uint8)


def make_synthetic_glyphs(
    root: str | os.PathLike[str],
    train_size: int = 60_000,
    test_size: int = 10_000,
    seed: int = 0,
    ambiguous_fraction: float = 0.06,
) -> GlyphFiles:
    """Draw the synthetic glyphs and write them as MNIST-style idx files under ``root``.

    Writes ``root/SyntheticGlyphs/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte`` (the
    layout of torchvision's MNIST, another folder) and ``generation.json`` with the settings.
    Files already written with the same settings are kept as they are, so calling this again
    is cheap. The images are deterministic from ``seed``; the test file's draws are
    independent of ``train_size``. See the module docstring for how an image is drawn.

    Args:
        root: the folder that will hold ``SyntheticGlyphs/`` (what :class:`SyntheticGlyphsSource` reads).
        train_size: images in the training file (MNIST has 60,000).
        test_size: images in the test file (MNIST has 10,000).
        seed: seeds every draw.
        ambiguous_fraction: share of images drawn part-way towards another class (label-ambiguous).

    Returns:
        The folder and the labels written.

    Raises:
        TypeError: a size or ``seed`` that is not an integer.
        ValueError: a size below 10 (one image per class), a negative ``seed``, or
            ``ambiguous_fraction`` outside ``[0, 1]``.
    """
    check_integer("train_size", train_size, len(GLYPH_NAMES))
    check_integer("test_size", test_size, len(GLYPH_NAMES))
    check_integer("seed", seed, 0)
    if not 0.0 <= ambiguous_fraction <= 1.0:
        raise ValueError(f"Expected `ambiguous_fraction` to be in [0, 1], but got {ambiguous_fraction!r}.")
    folder = Path(root) / SyntheticGlyphsSource.folder / "raw"
    settings = {
        "generator": "lightning_unlearn.datamodules.sources.glyphs",
        "version": GENERATOR_VERSION,
        "train_size": train_size,
        "test_size": test_size,
        "seed": seed,
        "ambiguous_fraction": ambiguous_fraction,
    }
    files = {split: (folder / f"{prefix}-images-idx3-ubyte", folder / f"{prefix}-labels-idx1-ubyte")
             for split, prefix in (("train", "train"), ("test", "t10k"))}  # fmt: skip
    written = False
    settings_path = folder / _SETTINGS_FILE
    current = settings_path.is_file() and json.loads(settings_path.read_text()) == settings
    if not (current and all(path.is_file() for pair in files.values() for path in pair)):
        settings_path.unlink(missing_ok=True)  # no stale record while the files change
        for split, size in (("train", train_size), ("test", test_size)):
            rng = np.random.default_rng([seed, 0 if split == "train" else 1])
            labels = _balanced_labels(size, rng)
            images = render_glyphs(labels, rng, ambiguous_fraction)
            write_idx_ubyte(files[split][0], images)
            write_idx_ubyte(files[split][1], labels)
        settings_path.write_text(json.dumps(settings, indent=2))
        written = True
    labels_read = [
        torch.from_numpy(np.fromfile(files[split][1], dtype=np.uint8, offset=8).astype(np.int64))
        for split in ("train", "test")
    ]
    return GlyphFiles(folder=folder, train_labels=labels_read[0], test_labels=labels_read[1], written=written)


class SyntheticGlyphsSource(MNISTSource):
    """The synthetic glyphs of :func:`make_synthetic_glyphs`, read exactly as MNIST is read.

    Reads ``root/SyntheticGlyphs/raw/`` (the four idx files, plain or gzipped) with the MNIST
    reader. Inputs are ``uint8`` of shape ``(N, 1, 28, 28)``; classes are :data:`GLYPH_NAMES`.
    Nothing is downloaded: write the files with :func:`make_synthetic_glyphs` first.

    Args:
        root: the folder that holds ``SyntheticGlyphs/``.
        subsets: which files to load, out of ``("train", "test")``; concatenated training file first.

    Raises:
        TypeError: if ``root`` is not a path or ``subsets`` a string.
        ValueError: if ``subsets`` is empty, repeats a split, or names an unknown one.
    """

    name = "synthetic_glyphs"
    title = "synthetic glyphs"
    folder = "SyntheticGlyphs"
    class_names = GLYPH_NAMES
    layout = (
        "the synthetic glyphs' idx files in 'SyntheticGlyphs/raw/' (train-images-idx3-ubyte, train-labels-idx1-ubyte,"
        " t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte)"
    )

    def __init__(self, root: str | os.PathLike[str], subsets: tuple[str, ...] = ("train", "test")) -> None:
        super().__init__(root, download=False, subsets=subsets)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(root={str(self.root)!r}, subsets={self.subsets})"

    def _hint(self) -> str:
        return "Write them with lightning_unlearn.datamodules.sources.glyphs.make_synthetic_glyphs(root) first."
