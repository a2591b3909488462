"""Evaluation plots as PNG files: precision–recall curves and the confusion matrix.

matplotlib is imported inside the functions (importing this module is cheap)
and drives the Agg canvas directly: no pyplot, no global figure state, never a
window. Files are written atomically (temp file, fsync, rename) and without a
timestamp or version in their metadata, so the same input gives the same bytes.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from matplotlib.colors import Colormap
    from matplotlib.figure import Figure

    from visionloop.evaluate.metrics import EvalResult

_DPI = 150
_BACKGROUND = "background"


def plot_pr_curves(result: EvalResult, classes: Sequence[str], path: Path) -> Path:
    """Precision–recall curve per class at IoU 0.5 (area all, 100 detections),
    with each class's AP50 in the legend and the mean curve over classes in
    bold; classes without ground truth are named in a note. Returns ``path``."""
    from matplotlib.figure import Figure

    precision = result.precision_at(0.5)
    if precision.shape[1] != len(classes):
        raise ValueError(f"the result has {precision.shape[1]} classes, classes names {len(classes)}")
    recall = result.recall_thresholds
    valid = [k for k in range(len(classes)) if (precision[:, k] > -1).all()]
    absent = [classes[k] for k in range(len(classes)) if k not in valid]

    fig = Figure(figsize=(7.5, 5.6), layout="constrained")
    ax = fig.add_subplot()
    colors = _palette(len(classes))
    for k in valid:
        ap50 = float(np.mean(precision[:, k]))
        ax.plot(recall, precision[:, k], color=colors[k], linewidth=1.4, label=f"{classes[k]}  {ap50:.3f}")
    if valid:
        mean = precision[:, valid].mean(axis=1)
        ax.plot(recall, mean, color="#222222", linewidth=2.8, label=f"all classes  {float(mean.mean()):.3f}")
    ax.set(xlim=(0, 1), ylim=(0, 1.02), xlabel="recall", ylabel="precision")
    ax.set_title("Precision–recall at IoU 0.50", fontsize=13, loc="left")
    ax.grid(True, alpha=0.3, linewidth=0.6)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    if valid:
        many = len(valid) > 10
        ax.legend(
            title="class  AP50",
            loc="upper left" if many else "lower left",
            bbox_to_anchor=(1.02, 1.0) if many else None,
            fontsize=9,
            title_fontsize=9,
            frameon=True,
            framealpha=0.9,
        )
    if absent:
        ax.set_title("no ground truth: " + ", ".join(absent), loc="right", fontsize=8, color="#666666")
    return _save(fig, path)


def plot_confusion_matrix(
    matrix: npt.NDArray[np.integer] | npt.NDArray[np.floating],
    classes: Sequence[str],
    path: Path,
    *,
    normalize: bool = True,
) -> Path:
    """The (K+1, K+1) matrix of :func:`~visionloop.evaluate.confusion.confusion_matrix`
    as an annotated heat map: rows true class, columns predicted class, each
    with a "background" entry last. ``normalize`` divides each row by its sum
    (the diagonal is then recall at the matrix's score threshold; the counts
    stay in the cells while the classes are few). Returns ``path``."""
    from matplotlib.figure import Figure

    counts = np.asarray(matrix, dtype=np.float64)
    n = len(classes) + 1
    if counts.shape != (n, n):
        raise ValueError(f"matrix has shape {counts.shape}; {len(classes)} classes need ({n}, {n})")
    labels = [*classes, _BACKGROUND]
    if normalize:
        sums = counts.sum(axis=1, keepdims=True)
        values = np.divide(counts, sums, out=np.zeros_like(counts), where=sums > 0)
        vmax = 1.0
    else:
        values = counts
        vmax = max(float(counts.max()), 1.0)
    mask = np.zeros(values.shape, dtype=bool)
    mask[-1, -1] = True  # background → background is not a thing
    shown = np.ma.masked_array(values, mask=mask)

    side = min(max(5.5, 0.62 * n + 3.2), 22.0)
    fig = Figure(figsize=(side + 1.2, side), layout="constrained")
    ax = fig.add_subplot()
    cmap = _blues()
    image = ax.imshow(shown, cmap=cmap, vmin=0.0, vmax=vmax, interpolation="nearest")
    colorbar = fig.colorbar(image, ax=ax, fraction=0.046, pad=0.03)
    colorbar.set_label("fraction of the true class (row)" if normalize else "count")
    ax.set_xticks(range(n), labels, rotation=40, ha="right", rotation_mode="anchor")
    ax.set_yticks(range(n), labels)
    ax.set_xlabel("predicted", fontsize=11)
    ax.set_ylabel("true", fontsize=11)
    title = "Confusion matrix" + (" (row-normalized)" if normalize else " (counts)")
    ax.set_title(title, fontsize=13, loc="left")
    # thin white grid between cells, background row/column set apart
    ax.set_xticks(np.arange(n + 1) - 0.5, minor=True)
    ax.set_yticks(np.arange(n + 1) - 0.5, minor=True)
    ax.grid(which="minor", color="white", linewidth=1.0)
    ax.tick_params(which="minor", length=0)
    ax.axhline(n - 1.5, color="#555555", linewidth=1.2)
    ax.axvline(n - 1.5, color="#555555", linewidth=1.2)

    font = 9 if n <= 12 else 7 if n <= 20 else 0
    with_counts = normalize and n <= 12
    for r in range(n):
        for c in range(n):
            if font == 0 or (r == n - 1 and c == n - 1) or counts[r, c] == 0:
                continue
            value = values[r, c]
            text = f"{value:.2f}" if normalize else f"{value:.0f}"
            if with_counts:
                text += f"\n({counts[r, c]:.0f})"
            color = "white" if value > 0.55 * vmax else "#1a1a1a"
            ax.text(c, r, text, ha="center", va="center", fontsize=font, color=color, linespacing=1.1)
    return _save(fig, path)


def _palette(n: int) -> list[tuple[float, float, float, float]]:
    from matplotlib import colormaps

    cmap = colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]


def _blues() -> Colormap:
    from matplotlib import colormaps

    return colormaps["Blues"].with_extremes(bad="#eeeeee")  # the masked background → background cell


def _save(fig: Figure, path: Path) -> Path:
    """Write ``fig`` as PNG to ``path`` atomically (temp file, fsync, rename)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    try:
        with open(tmp, "wb") as f:
            # no "Software" key: the bytes depend on the input only
            fig.savefig(f, format="png", dpi=_DPI, facecolor="white", metadata={"Software": None})
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path
