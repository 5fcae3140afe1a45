"""Figures for people: slice grids and curves, written as PNG (matplotlib, Agg backend, no display)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np


def slice_grid(images: Sequence[np.ndarray], titles: Sequence[str], out_png: Path, columns: int = 4) -> Path:
    """Grey-level images (any range, shown as stored) in a grid with a title each; returns ``out_png``."""
    n = max(len(images), 1)
    rows = (n + columns - 1) // columns
    fig, axes = plt.subplots(rows, columns, figsize=(2.4 * columns, 2.6 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, image, title in zip(axes.flat, images, titles):
        ax.imshow(image, cmap="gray", vmin=0, vmax=255 if image.dtype == np.uint8 else None)
        ax.set_title(title, fontsize=8)
    if not images:
        axes.flat[0].text(0.5, 0.5, "no slices", ha="center", va="center")
    out_png.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(out_png, dpi=80)
    plt.close(fig)
    return out_png


def forest_figure(
    labels: Sequence[str],
    values: Sequence[float],
    lows: Sequence[float],
    highs: Sequence[float],
    xlabel: str,
    reference: float | None = 0.0,
) -> plt.Figure:
    """A forest plot: one row per label (top to bottom), the estimate as a dot and its interval as a bar, a
    dashed line at ``reference`` (no effect). The caller embeds and closes the figure."""
    n = len(labels)
    fig, ax = plt.subplots(figsize=(6.0, 0.45 * n + 1.0))
    y = np.arange(n)[::-1]
    ax.errorbar(values, y, xerr=[np.subtract(values, lows), np.subtract(highs, values)], fmt="o", color="#1f4e79",
                ecolor="#1f4e79", capsize=3)
    if reference is not None:
        ax.axvline(reference, color="grey", linestyle="--", linewidth=1)
    ax.set_yticks(y, labels)
    ax.set_xlabel(xlabel)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return fig
