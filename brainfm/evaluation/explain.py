"""Localisation scores of a saliency map (e.g. Grad-CAM) against a lesion mask, numpy only.

Both take a saliency map and a boolean mask of the same shape (a slice or a volume) and return NaN for an
empty mask (nothing to point at), so ``np.nanmean`` over studies averages the scorable ones.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt


def _validated(saliency: npt.ArrayLike, mask: npt.ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    values, inside = np.asarray(saliency, dtype=float), np.asarray(mask, dtype=bool)
    if values.shape != inside.shape:
        raise ValueError(
            f"saliency {values.shape} and mask {inside.shape} must have the same shape: resize first"
        )
    if not np.isfinite(values).all():
        raise ValueError("saliency has NaN or inf values: check the Grad-CAM target layer")
    return values, inside


def pointing_game(saliency: npt.ArrayLike, mask: npt.ArrayLike) -> float:
    """1.0 when the saliency maximum lies inside the mask, else 0.0; NaN for an empty mask.

    A maximum shared by several pixels (a flat map) is a hit only if all of them lie inside: ties earn
    nothing by luck.
    """
    values, inside = _validated(saliency, mask)
    if not inside.any():
        return float("nan")
    return float(inside[values == values.max()].all())


def energy_inside_mask(saliency: npt.ArrayLike, mask: npt.ArrayLike) -> float:
    """Share of the positive saliency that falls inside the mask, in [0, 1].

    NaN for an empty mask, or for a map without positive saliency (nothing to share out).
    """
    values, inside = _validated(saliency, mask)
    positive = np.clip(values, 0.0, None)
    total = positive.sum()
    if not inside.any() or total == 0.0:
        return float("nan")
    return float(positive[inside].sum() / total)
