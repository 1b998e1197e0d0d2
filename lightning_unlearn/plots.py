"""Pictures a person wants to look at after an unlearning run, as PNG files."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lightning_unlearn.storage import atomic_write

__all__ = ["group_label", "plot_forgetting_curve", "plot_learning_unlearning_curve", "plot_posterior_tsne"]

_REQUIRED = ("epoch", "acc", "mia")


def _check_history(name: str, history: Sequence[Mapping[str, Any]]) -> None:
    if isinstance(history, (str, bytes)) or not isinstance(history, Sequence):
        raise TypeError(f"Expected `{name}` to be a list of per-epoch records, but got {type(history).__name__}.")
    for position, record in enumerate(history):
        missing = [key for key in _REQUIRED if key not in record]
        if missing:
            raise ValueError(
                f"Expected every record of `{name}` to hold {list(_REQUIRED)}, but record {position} lacks {missing}."
            )


def plot_learning_unlearning_curve(
    history: Sequence[Mapping[str, Any]],
    path: str | os.PathLike[str],
    *,
    accepted_epoch: int | None = None,
    baseline: Sequence[Mapping[str, Any]] | None = None,
    baseline_label: str = "fine-tune on retain",
    mia_target: float | None = 0.5,
    mia_target_label: str = "stopping reference",
    title: str = "Learning–unlearning curve",
    logger: Any = None,
) -> Path:
    """Accuracy and MIA score per epoch, learn/unlearn phases shaded, the accepted epoch marked.

    The FNN paper's Figs. 3–7: one panel for accuracy, one for the MIA score; unlearn epochs
    are shaded. A baseline (the NeurIPS 2023 fine-tuning) is drawn dashed on the same axes.

    Args:
        history: per-epoch records with ``epoch``, ``acc`` and ``mia``, and ``phase`` (0 learn,
            1 unlearn) for shading — e.g. :attr:`FNNModule.history`.
        path: the PNG to write (parent folders are created).
        accepted_epoch: the epoch an early-stopping callback accepted, marked with a star.
        baseline: another run's records (``epoch``, ``acc``, ``mia``) to draw dashed.
        baseline_label: the baseline's legend entry.
        mia_target: a horizontal reference line on the MIA panel: the reference the stopping rule
            used (0.5, or the retrained model's score on the validation pair).
        mia_target_label: that line's legend entry.
        title: the figure's title.
        logger: a Lightning logger; if it has ``log_image`` (W&B), the picture is sent to it.

    Returns:
        The path written.

    Raises:
        TypeError: ``history`` is not a list of records.
        ValueError: an empty history or a record missing ``epoch``, ``acc`` or ``mia``.

    Example:
        >>> rows = [{"epoch": 0, "phase": 0, "acc": 0.95, "mia": 0.8}]
        >>> rows.append({"epoch": 1, "phase": 1, "acc": 0.94, "mia": 0.6})
        >>> import tempfile
        >>> from pathlib import Path
        >>> folder = Path(tempfile.mkdtemp())
        >>> plot_learning_unlearning_curve(rows, folder / "curve.png", accepted_epoch=1) == folder / "curve.png"
        True
    """
    _check_history("history", history)
    if len(history) == 0:
        raise ValueError("Expected `history` to hold at least one epoch, but it is empty.")
    if baseline is not None:
        _check_history("baseline", baseline)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    epochs = [int(record["epoch"]) for record in history]
    figure, (acc_axis, mia_axis) = plt.subplots(2, 1, sharex=True, figsize=(8, 6))
    try:
        for axis, key, color in ((acc_axis, "acc", "tab:blue"), (mia_axis, "mia", "tab:red")):
            shaded = False
            for record in history:
                if record.get("phase") == 1:
                    epoch = int(record["epoch"])
                    axis.axvspan(
                        epoch - 0.5,
                        epoch + 0.5,
                        color="tab:orange",
                        alpha=0.15,
                        lw=0,
                        label=None if shaded else "unlearn epochs",
                    )
                    shaded = True
            axis.plot(epochs, [float(r[key]) for r in history], "o-", color=color, label="FNN")
            if baseline:
                base_epochs = [int(r["epoch"]) for r in baseline]
                axis.plot(base_epochs, [float(r[key]) for r in baseline], "s--", color="tab:gray", label=baseline_label)
            if key == "mia" and mia_target is not None:
                axis.axhline(mia_target, color="black", lw=0.8, ls=":", label=f"{mia_target_label} {mia_target:.3f}")
            for record in history:
                if accepted_epoch is not None and int(record["epoch"]) == accepted_epoch:
                    axis.plot(
                        [accepted_epoch], [float(record[key])], "*", ms=16, color="gold", mec="black", label="accepted"
                    )
            axis.legend(loc="best", fontsize=8)
        acc_axis.set_ylabel("accuracy (validation)")
        mia_axis.set_ylabel("MIA score (forget vs validation_heldout)")
        mia_axis.set_xlabel("epoch")
        acc_axis.set_title(title)
        figure.tight_layout()
        atomic_write(path, lambda file: figure.savefig(file, format=path.suffix[1:] or None, dpi=120))
    finally:
        plt.close(figure)
    log_image = getattr(logger, "log_image", None)
    if callable(log_image):
        log_image(key="unlearning/curve", images=[str(path)])
    return path


def _savefig(figure: Any, path: str | os.PathLike[str]) -> Path:
    """Write a figure as PNG atomically and close it."""
    import matplotlib.pyplot as plt

    try:
        return atomic_write(path, lambda file: figure.savefig(file, format="png", dpi=120, bbox_inches="tight"))
    finally:
        plt.close(figure)


def group_label(name: str, shown: int, size: int) -> str:
    """A legend entry giving a group's true size, and how many of its samples are drawn when not all are.

    Args:
        name: the group's name.
        shown: how many of its samples the picture draws.
        size: how many samples the group has.

    Returns:
        The legend text.

    Example:
        >>> group_label("forget", 300, 315), group_label("forget", 179, 179)
        ('forget (315, 300 drawn)', 'forget (179)')
    """
    return f"{name} ({size})" if shown >= size else f"{name} ({size:,}, {shown:,} drawn)"


def plot_posterior_tsne(
    groups_before: Mapping[str, torch.Tensor],
    groups_after: Mapping[str, torch.Tensor],
    path: str | os.PathLike[str],
    *,
    method: str = "unlearned",
    seed: int = 0,
    max_per_group: int = 300,
) -> Path:
    """t-SNE of posteriors of members, non-members and forget samples, before and after unlearning.

    The picture of the Forsaken paper's Figs. 7–8: before unlearning the forget samples sit
    with the members (confident, on the training labels); after, they should sit with the
    non-members. Each panel embeds its own posteriors (one t-SNE per panel, seeded).

    Args:
        groups_before: group name (e.g. ``"members"``, ``"non-members"``, ``"forget"``) →
            posteriors ``(n, classes)`` of the original model.
        groups_after: the same groups' posteriors under the unlearned model.
        path: where the PNG is written.
        method: the unlearned model's name, for the title.
        seed: seeds the subsampling and t-SNE.
        max_per_group: at most this many samples a group (t-SNE is quadratic); the legend gives
            each group's true size and, when subsampled, how many are drawn.

    Returns:
        The path of the PNG.

    Raises:
        ValueError: the two mappings name different groups, or a group is empty.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.manifold import TSNE

    if list(groups_before) != list(groups_after):
        raise ValueError(
            f"Expected the same groups before and after, but got {list(groups_before)} and {list(groups_after)}."
        )
    for name, posteriors in [*groups_before.items(), *groups_after.items()]:
        if len(posteriors) == 0:
            raise ValueError(f"Expected samples in group {name!r}, but it is empty.")
    rng = np.random.default_rng(seed)
    chosen = {name: rng.permutation(len(p))[:max_per_group] for name, p in groups_before.items()}
    figure, axes = plt.subplots(1, 2, figsize=(11, 5))
    colours = ["tab:blue", "tab:orange", "tab:red", "tab:green", "tab:purple"]
    for axis, (title, groups) in zip(axes, (("original", groups_before), (method, groups_after))):
        stacked = np.concatenate([groups[name].detach().cpu().numpy()[chosen[name]] for name in groups])
        perplexity = float(min(30.0, max(2.0, (len(stacked) - 1) / 3)))
        embedded = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(stacked)
        start = 0
        for colour, name in zip(colours, groups):
            count = len(chosen[name])
            points = embedded[start : start + count]
            label = group_label(name, count, len(groups[name]))
            axis.scatter(points[:, 0], points[:, 1], s=8, alpha=0.6, color=colour, label=label)
            start += count
        axis.set_title(f"Posteriors, {title} model")
        axis.set_xticks([])
        axis.set_yticks([])
        axis.legend(loc="best", fontsize=8)
    figure.suptitle("t-SNE of posteriors: members, non-members and forget samples")
    return _savefig(figure, path)


def plot_forgetting_curve(
    iterations: Sequence[int],
    forgetting_rates: Sequence[float],
    test_accuracies: Sequence[float],
    path: str | os.PathLike[str],
    *,
    retrained_forgetting_rate: float | None = None,
    original_test_accuracy: float | None = None,
    method: str = "Forsaken",
) -> Path:
    """FR and test accuracy against unlearning iterations (the Forsaken paper's Fig. 5).

    Args:
        iterations: iteration numbers (``0`` is the original model).
        forgetting_rates: FR after each iteration.
        test_accuracies: test accuracy after each iteration.
        path: where the PNG is written.
        retrained_forgetting_rate: drawn as a dashed line, the value to aim for.
        original_test_accuracy: drawn as a dotted line.
        method: the method's name, for the title.

    Returns:
        The path of the PNG.

    Raises:
        ValueError: the sequences differ in length or are empty.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not len(iterations) == len(forgetting_rates) == len(test_accuracies) or not iterations:
        raise ValueError(
            "Expected `iterations`, `forgetting_rates` and `test_accuracies` of one non-zero length, but got"
            f" {len(iterations)}, {len(forgetting_rates)} and {len(test_accuracies)}."
        )
    figure, axis = plt.subplots(figsize=(7, 4.5))
    axis.plot(iterations, forgetting_rates, marker="o", color="tab:red", label="FR")
    axis.plot(iterations, test_accuracies, marker="s", color="tab:blue", label="test accuracy")
    if retrained_forgetting_rate is not None:
        axis.axhline(retrained_forgetting_rate, color="tab:red", linestyle="--", alpha=0.6, label="FR of retraining")
    if original_test_accuracy is not None:
        axis.axhline(original_test_accuracy, color="tab:blue", linestyle=":", alpha=0.6, label="original test acc")
    axis.set_xlabel("unlearning iteration")
    axis.set_ylabel("rate")
    axis.set_ylim(-0.05, 1.05)
    axis.grid(alpha=0.3)
    axis.legend(loc="lower right")
    axis.set_title(f"{method}: forgetting rate and accuracy per iteration")
    return _savefig(figure, path)
