"""Slice quality control: which native slices to exclude, each with a reason.

Reasons, checked in this order: ``non_finite`` (mostly NaN/inf voxels; set by ``normalize_volume``, which
replaces them before any statistic), ``empty`` (constant slice), ``near_constant`` (intensity spread below a
fraction of the series' robust range), ``out_of_brain`` (tiny foreground fraction: slices above the vertex
or below the skull base), ``tile_grid`` (the foreground falls apart into a grid of separate tiles: a mosaic of
thumbnails, e.g. a Siemens mosaic that was not recognised, or a screen capture of a series), ``noise``
(robust noise estimate too high relative to the foreground signal) and ``ghosting`` (signal outside the head
along the phase-encoding direction).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Immerkær (1996) "Fast noise variance estimation": the kernel [[1,-2,1],[-2,4,-2],[1,-2,1]] cancels smooth
# image structure; the mean absolute response scaled by sqrt(pi/2)/6 estimates Gaussian noise sigma. The
# kernel is the outer product of [1,-2,1] with itself, so it is applied as two second differences (fast).
_GHOST_MARGIN = 7  # pixels: square dilation of the foreground before measuring background signal
_SPREAD_STRIDE = 4  # every 4th pixel is enough for a slice's p1–p99 spread (the near-constant check)


@dataclass(frozen=True)
class QCThresholds:
    """Exclusion thresholds; the defaults suit clinical brain MR magnitude images."""

    near_constant_fraction: float = 0.02  # slice p1–p99 spread / series robust range
    min_foreground_fraction: float = 0.05  # foreground pixels / slice pixels
    max_noise_ratio: float = 0.25  # noise sigma / mean foreground intensity
    max_ghost_ratio: float = 0.15  # (mean background in the phase band − elsewhere) / mean foreground
    max_non_finite_fraction: float = 0.5  # NaN/inf voxels / slice voxels
    min_grid_tiles: int = 3  # separate foreground bands along both in-plane axes that make a tile grid


DEFAULT_THRESHOLDS = QCThresholds()


def otsu_threshold(values: np.ndarray, bins: int = 256) -> float:
    """Otsu's threshold of a 1-D sample (written here because the core may not depend on scikit-image)."""
    hist, edges = np.histogram(values, bins=bins)
    centers = (edges[:-1] + edges[1:]) / 2
    w0 = np.cumsum(hist)
    w1 = w0[-1] - w0
    m0 = np.cumsum(hist * centers)
    mean0 = m0 / np.maximum(w0, 1)
    mean1 = (m0[-1] - m0) / np.maximum(w1, 1)
    between = w0 * w1 * (mean0 - mean1) ** 2
    return float(centers[int(np.argmax(between))])


def _row_percentiles(rows: np.ndarray, q: tuple[float, ...]) -> list[np.ndarray]:
    """``np.percentile(rows, q, axis=1)`` (linear method) from one sort per row: numpy's per-row partition
    costs about six times a sort at a few thousand values per row."""
    ordered = np.sort(rows, axis=1)
    last = ordered.shape[1] - 1
    out = []
    for p in q:
        position = p / 100 * last
        below = int(np.floor(position))
        weight = np.float32(position - below)
        out.append(ordered[:, below] * (1 - weight) + ordered[:, min(below + 1, last)] * weight)
    return out


def noise_sigma(stack: np.ndarray) -> np.ndarray:
    """Immerkær's estimate of the Gaussian noise standard deviation of each slice of ``stack[slice, row, col]``."""
    rows, cols = stack.shape[1:]
    if rows < 3 or cols < 3:
        return np.zeros(len(stack))
    response = np.diff(np.diff(stack, n=2, axis=1), n=2, axis=2)
    return np.sqrt(np.pi / 2) * np.abs(response).sum(axis=(1, 2)) / (6 * (rows - 2) * (cols - 2))


def _masked_mean(stack: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-slice mean of ``stack[slice, …]`` over ``mask`` (0 where the mask is empty) and the mask's count."""
    flat_mask = mask.reshape(len(mask), -1)
    count = np.count_nonzero(flat_mask, axis=1)
    # A row-wise dot product with the 0/1 mask: an order of magnitude faster than summing np.where(mask, …).
    total = np.einsum("ij,ij->i", stack.reshape(len(stack), -1), flat_mask.astype(stack.dtype), dtype=np.float64)
    return total / np.maximum(count, 1), count


def _dilate(mask: np.ndarray, size: int) -> np.ndarray:
    """Binary dilation of each slice of ``mask[slice, row, col]`` by a ``size``×``size`` square (odd size).

    Written as running ORs of shifted copies, each pass doubling the covered window: several times faster than
    ``scipy.ndimage.maximum_filter`` on boolean images, with the same result.
    """
    r = size // 2
    out = np.pad(mask, ((0, 0), (r, r), (r, r)))
    for axis in (1, 2):
        covered = 1
        while covered < size:
            step = min(covered, size - covered)
            lead, lag = [slice(None)] * 3, [slice(None)] * 3
            lead[axis], lag[axis] = slice(None, -step), slice(step, None)
            out = out[tuple(lead)] | out[tuple(lag)]
            covered += step
    return out


def ghost_ratio(
    stack: np.ndarray, foreground: np.ndarray, phase_axis: int | None, fg_mean: np.ndarray, fg_count: np.ndarray
) -> np.ndarray:
    """Per slice of ``stack[slice, row, col]``: excess background signal in the band the head spans across the
    phase axis (ghosts copy the head along the phase-encoding direction), relative to the mean foreground
    (``fg_mean``, ``fg_count``: per-slice mean and count over ``foreground``); both in-plane axes when the
    phase axis (0 rows, 1 columns) is unknown.

    The band is whole columns (phase along rows) or rows, so its sums come from the background's column or
    row sums: one masked pass over the image instead of one per region.
    """
    background = ~_dilate(foreground, _GHOST_MARGIN)
    signal = np.where(background, stack, np.float32(0))
    ratios = []
    for axis in (0, 1) if phase_axis is None else (phase_axis,):
        # Per column (axis 0: phase along rows) or per row: background signal and pixel count, head coverage.
        sums, counts = signal.sum(axis=axis + 1), np.count_nonzero(background, axis=axis + 1)
        covered = foreground.any(axis=axis + 1)
        total, n_total = sums.sum(axis=1, dtype=np.float64), counts.sum(axis=1)
        band = (sums * covered).sum(axis=1, dtype=np.float64)
        n_band = (counts * covered).sum(axis=1)
        n_rest = n_total - n_band
        usable = (n_band > 16) & (n_rest > 16)
        band_mean, rest_mean = band / np.maximum(n_band, 1), (total - band) / np.maximum(n_rest, 1)
        ratios.append(np.where(usable, (band_mean - rest_mean) / np.where(fg_mean > 0, fg_mean, 1), -np.inf))
    best = np.max(ratios, axis=0)
    return np.where(np.isfinite(best) & (fg_count > 0) & (fg_mean > 0), best, 0.0)


_BAND_FRACTION = 0.02  # a row or column belongs to a foreground band when this share of it is foreground


_PITCH_TOLERANCE = 0.1  # band centres of a tile grid lie within this share of the pitch of its multiples
_MIN_GUTTER_FRACTION = 0.02  # narrower gaps between bands (a thin dark line across one head) do not split it


def tile_grid(mask: np.ndarray, min_tiles: int) -> np.ndarray:
    """Per slice of ``mask[slice, row, col]`` (foreground): whether its foreground falls apart into at least
    ``min_tiles`` separate bands of rows and of columns whose centres repeat at one pitch (a grid of
    thumbnails: one band per row and column of tiles, an empty tile skipping a multiple of the pitch). One
    head gives one band each way; the fragments of a skull-base slice are few and irregular."""
    return np.array([all(_regular_bands(m.mean(axis=a) > _BAND_FRACTION, min_tiles) for a in (0, 1)) for m in mask])


def _regular_bands(banded: np.ndarray, min_bands: int) -> bool:
    edges = np.flatnonzero(np.diff(np.concatenate([[False], banded, [False]]).astype(np.int8)))
    starts, ends = edges[0::2], edges[1::2]
    if len(starts) < min_bands:
        return False
    opens = np.concatenate([[True], starts[1:] - ends[:-1] >= _MIN_GUTTER_FRACTION * len(banded)])
    starts, ends = starts[opens], ends[np.concatenate([opens[1:], [True]])]  # bands merged across thin gaps
    centres = (starts + ends - 1) / 2
    if len(centres) < min_bands:
        return False
    steps = np.diff(centres)
    pitch = steps.min()
    return bool(pitch > 0 and np.all(np.abs(steps / pitch - np.round(steps / pitch)) <= _PITCH_TOLERANCE))


def slice_reasons(
    volume: np.ndarray, foreground: np.ndarray, robust_range: float, phase_axis: int | None, t: QCThresholds
) -> list[str | None]:
    """One entry per slice of ``volume[row, column, slice]``: None to keep, else the exclusion reason.

    Every measure is computed for all slices at once; a slice gets the first reason that applies.
    """
    stack = np.ascontiguousarray(np.moveaxis(volume, 2, 0))  # slice-major: per-slice reductions are contiguous
    mask = np.ascontiguousarray(np.moveaxis(foreground, 2, 0))
    flat = stack.reshape(len(stack), -1)
    lo, hi = _row_percentiles(flat[:, ::_SPREAD_STRIDE], (1.0, 99.0))
    fg_mean, fg_count = _masked_mean(stack, mask)
    checks = (
        ("empty", flat.max(axis=1) == flat.min(axis=1)),
        ("near_constant", (hi - lo < t.near_constant_fraction * robust_range) | (robust_range <= 0)),
        ("out_of_brain", fg_count < t.min_foreground_fraction * flat.shape[1]),
        ("tile_grid", tile_grid(mask, t.min_grid_tiles)),
        ("noise", noise_sigma(stack) > t.max_noise_ratio * fg_mean),
        ("ghosting", ghost_ratio(stack, mask, phase_axis, fg_mean, fg_count) > t.max_ghost_ratio),
    )
    reasons: list[str | None] = [None] * len(stack)
    for reason, flagged in reversed(checks):  # the earliest check that applies wins
        for k in np.flatnonzero(flagged):
            reasons[k] = reason
    return reasons
