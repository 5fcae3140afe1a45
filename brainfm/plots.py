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
