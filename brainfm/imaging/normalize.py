"""Normalise a series volume: reorient to RAS, slice along the acquired axis, resize to 256×256 keeping the
physical aspect ratio (zero padding), and map intensities to [0, 255] uint8 by robust percentiles.

Slices are taken along the acquisition's through-plane axis after reorientation (no resampling across thick
slices). Every slice is displayed the same way: rows run from superior/anterior (top) to inferior/posterior,
columns along the remaining RAS axis in increasing order (R for axial and coronal, A for sagittal). A series
whose header gives no orientation is never put into a guessed one: its frames are shown as stored, in input
order, with plane ``unknown``.

The geometric part (:class:`SliceGeometry`) is shared with label maps on the same voxel grid (lesion masks,
:mod:`brainfm.imaging.masks`), which it resamples by nearest neighbour instead of linearly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from nibabel.orientations import apply_orientation, axcodes2ornt, inv_ornt_aff, io_orientation, ornt_transform
from scipy import ndimage

from brainfm.imaging.qc import DEFAULT_THRESHOLDS, QCThresholds, otsu_threshold, slice_reasons
from brainfm.imaging.volumes import Volume, check_grid

SIZE = 256  # pixels per side of a normalised slice
PERCENTILES = (0.5, 99.5)  # robust intensity window over the foreground, per series
_PLANES = {0: "sagittal", 1: "coronal", 2: "axial"}  # RAS axis normal to the slice → plane
_PERCENTILE_SAMPLE = 65_536  # voxels: a deterministic stride sample is enough for Otsu and percentiles
# QC statistics use every ``step``-th row and column so that about this many pixels per slice remain: the
# exclusion decisions are robust to it (the noise estimate stays valid on a strided grid, which keeps
# neighbouring samples independent), and it keeps QC a small share of the ingest time.
_QC_PIXELS = 128 * 128


@dataclass(frozen=True)
class NormalizedVolume:
    """Kept slices (uint8, (n, 256, 256)) with their RAS slice indices, and the excluded ones with reasons."""

    slices: np.ndarray
    slice_index: list[int]
    excluded: list[tuple[int, str]]
    plane: str
    geometry: SliceGeometry  # how the volume's voxels map onto the slices (also for its label maps)


def normalize_volume(volume: Volume, thresholds: QCThresholds = DEFAULT_THRESHOLDS) -> NormalizedVolume:
    """QC on native slices (a strided grid for large matrices), then reorient, window and resize kept ones.

    Non-finite voxels (NaN, ±inf: NIfTI maps, a bad rescale) are replaced by the series' finite minimum before
    any statistic; a slice with more than ``thresholds.max_non_finite_fraction`` of them is excluded as
    ``non_finite``. Raises GeometryError for an unusable voxel grid.
    """
    geometry = slice_geometry(volume.affine, volume.data.shape)
    data, non_finite = _finite(volume.data)
    slices = np.moveaxis(data, 2, 0)  # (slice, row, column): contiguous for DICOM volumes
    flat = (slices if slices.flags.c_contiguous else data).reshape(-1)  # a view either way (NIfTI: data)
    threshold, lo, hi = intensity_window(flat[:: max(1, flat.size // _PERCENTILE_SAMPLE)])
    step = max(1, int(np.sqrt(data.shape[0] * data.shape[1] / _QC_PIXELS)))
    qc_grid = data[::step, ::step]
    reasons = slice_reasons(qc_grid, qc_grid > threshold, hi - lo, volume.phase_axis, thresholds)
    for k in np.flatnonzero(non_finite > thresholds.max_non_finite_fraction):
        reasons[k] = "non_finite"

    kept = sorted(geometry.slice_index[k] for k, r in enumerate(reasons) if r is None)  # inferior→superior etc.
    stack = geometry.stack(data, kept)  # a float32 copy: windowed in place
    # Window to [0, 255] plus 0.5, so that the final float → uint8 cast (which truncates) rounds half up:
    # linear resampling carries the offset through, and no rounding pass over the output is needed.
    scale = 255.0 / max(hi - lo, 1e-6)
    stack -= lo - 0.5 / scale
    stack *= scale
    np.clip(stack, 0.5, 255.5, out=stack)
    return NormalizedVolume(
        slices=geometry.display(stack, labels=False),
        slice_index=kept,
        excluded=sorted((geometry.slice_index[k], r) for k, r in enumerate(reasons) if r is not None),
        plane=_PLANES[geometry.axis] if volume.oriented else "unknown",
        geometry=geometry,
    )


@dataclass(frozen=True)
class SliceGeometry:
    """Where the voxels of a volume go on its normalised slices (docs/DATA_CONTRACT.md §3, "Display
    convention"): reorientation to RAS, slicing along the acquired axis, the display transpose and flip, and
    the in-plane resize to the 256 grid (the longer physical side spans 256 pixels, centred, zero padded).
    Images and label maps of one voxel grid go through the same geometry (:meth:`display`)."""

    affine: np.ndarray  # 4×4: voxel (row, column, slice) → RAS mm
    shape: tuple[int, int, int]  # voxels (rows, columns, slices)
    transform: np.ndarray  # nibabel orientation transform of the array to RAS (axis swaps and flips only)
    axis: int  # RAS axis normal to the slices: 0 R (sagittal), 1 A (coronal), 2 S (axial)
    slice_index: tuple[int, ...]  # per stored slice k: its index along that RAS axis
    in_plane: tuple[int, int]  # the other two RAS axes a < b: display columns run along a, rows along b
    ras_shape: tuple[int, int, int]  # voxels along R, A and S after reorientation
    voxel_mm: tuple[float, float, float]  # voxel size along R, A and S after reorientation
    # mm per normalised pixel: exact along the longer in-plane side (256 pixels); the other side's pixel count
    # is rounded, so its pixels differ from this by at most half a pixel over its span.
    pixel_mm: float
    resized: tuple[int, int]  # pixels the volume spans along a and b on the 256 grid

    @property
    def slice_mm(self) -> float:
        """mm between adjacent ``slice_index`` values (the voxel size along the slice normal)."""
        return self.voxel_mm[self.axis]

    def stack(self, data: np.ndarray, slice_index: Sequence[int]) -> np.ndarray:
        """(n, a, b) copy of the slices of ``data[row, column, slice]`` (this grid) at RAS ``slice_index``."""
        return np.moveaxis(apply_orientation(data, self.transform), self.axis, 0)[list(slice_index)]

    def display(self, stack: np.ndarray, labels: bool) -> np.ndarray:
        """(n, a, b) from :meth:`stack` → (n, 256, 256) uint8 in display order (rows = b descending, columns = a),
        resampled linearly (images: float32 in [0.5, 255.5], truncated) or, for ``labels`` (integer label
        maps), by nearest neighbour. Resampled in memory order, before the display transpose (both
        resamplings commute with it)."""
        n, size_a, size_b = stack.shape
        out = np.zeros((n, SIZE, SIZE), dtype=np.uint8)
        if n == 0:
            return out
        new_a, new_b = self.resized
        if (new_a, new_b) == (size_a, size_b):
            resized = stack
        elif labels:
            # ndimage's zoom with grid_mode samples the source coordinate resample_linear interpolates at.
            zoom = (1.0, new_a / size_a, new_b / size_b)
            resized = ndimage.zoom(stack, zoom, order=0, grid_mode=True, mode="nearest")
        else:
            resized = resample_linear(stack, new_a, new_b)
        display = np.flip(np.swapaxes(resized, 1, 2), axis=1)  # (n, new_b, new_a)
        r0, c0 = (SIZE - new_b) // 2, (SIZE - new_a) // 2
        out[:, r0 : r0 + new_b, c0 : c0 + new_a] = display
        return out

    def to_ras(self) -> np.ndarray:
        """4×4 affine: (slice_index, row, column) of a normalised slice → RAS mm (pixel centres; the inverse
        of the display mapping, padding included, so a pixel outside the field of view maps outside it)."""
        a, b = self.in_plane
        new_a, new_b = self.resized
        shape = self.ras_shape
        r0, c0 = (SIZE - new_b) // 2, (SIZE - new_a) // 2
        scale_a, scale_b = shape[a] / new_a, shape[b] / new_b  # source voxels per resized pixel
        display = np.zeros((4, 4))  # (slice_index, row, column, 1) → reoriented voxel index
        display[self.axis, 0] = 1.0
        display[a, 2], display[a, 3] = scale_a, (0.5 - c0) * scale_a - 0.5  # column c → (c - c0 + 0.5)·s − 0.5
        display[b, 1], display[b, 3] = -scale_b, (new_b - 0.5 + r0) * scale_b - 0.5  # row r: b runs upward
        display[3, 3] = 1.0
        return self.affine @ inv_ornt_aff(self.transform, self.shape) @ display


def slice_geometry(affine: np.ndarray, shape: Sequence[int]) -> SliceGeometry:
    """The :class:`SliceGeometry` of a voxel grid: ``affine`` voxel (row, column, slice) → RAS mm, ``shape``
    its three sizes. Raises GeometryError for an unusable grid."""
    check_grid(affine)
    rows, columns, n = (int(v) for v in shape)
    transform = ornt_transform(io_orientation(affine), axcodes2ornt("RAS"))
    axis, flipped = int(transform[2, 0]), bool(transform[2, 1] < 0)
    a, b = (i for i in range(3) if i != axis)
    source = transform[:, 0].argsort()  # per RAS axis, the array axis it comes from
    spacing = np.sqrt((affine[:3, :3] ** 2).sum(axis=0))[source]
    sizes = [(rows, columns, n)[i] for i in source]
    mm_per_pixel = max(sizes[a] * spacing[a], sizes[b] * spacing[b]) / SIZE
    return SliceGeometry(
        affine=np.asarray(affine, dtype=np.float64),
        shape=(rows, columns, n),
        transform=transform,
        axis=axis,
        slice_index=tuple(n - 1 - k if flipped else k for k in range(n)),
        in_plane=(a, b),
        ras_shape=(sizes[0], sizes[1], sizes[2]),
        voxel_mm=(float(spacing[0]), float(spacing[1]), float(spacing[2])),
        pixel_mm=float(mm_per_pixel),
        resized=(
            min(SIZE, max(1, round(sizes[a] * spacing[a] / mm_per_pixel))),
            min(SIZE, max(1, round(sizes[b] * spacing[b] / mm_per_pixel))),
        ),
    )


def intensity_window(sample: np.ndarray) -> tuple[float, float, float]:
    """(foreground threshold, window low, window high) of a series from a sample of its voxels.

    The foreground is what lies above Otsu's threshold of the sample clipped at its ``PERCENTILES[1]``
    percentile: Otsu's histogram spans the value range, so a few very bright voxels (EPI spikes, vessels,
    the eyes on a b=0 image) would squeeze all tissue into its lowest bins and move the threshold between
    tissue and CSF, putting the window's low end above most of the brain. The window is the foreground's
    ``PERCENTILES``; a constant sample gives its value three times.
    """
    clipped = np.minimum(sample, np.percentile(sample, PERCENTILES[1]))
    threshold = otsu_threshold(clipped) if clipped.max() > clipped.min() else float(sample.max())
    foreground = sample[sample > threshold]
    lo, hi = np.percentile(foreground if foreground.size else sample, PERCENTILES)
    return threshold, float(lo), float(hi)


def _finite(data: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``data[row, column, slice]`` with non-finite voxels set to the finite minimum (0 when there is none),
    in the same memory layout (a copy only when needed), and each slice's fraction of non-finite voxels."""
    finite = np.isfinite(data)
    if finite.all():
        return data, np.zeros(data.shape[2])
    fraction = 1.0 - finite.mean(axis=(0, 1))
    out = data.copy(order="K")
    out[~finite] = data[finite].min() if finite.any() else 0.0
    return out, fraction


def resample_linear(stack: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """Linear resampling of the last two axes of (n, r, c) float32 to (n, rows, cols): the values of
    ``scipy.ndimage.zoom(order=1, grid_mode=True, mode="nearest")`` (checked in tests), computed separably, each
    axis as a gather of whole rows and a blend (columns through a transposed copy). ndimage's 3-D zoom costs
    ≈ 7 ms a 256×256 slice here, this ≈ 0.6 ms. The result is a transposed view of a contiguous array."""
    by_rows = _resample_axis1(stack, rows)
    return _resample_axis1(np.ascontiguousarray(by_rows.transpose(0, 2, 1)), cols).transpose(0, 2, 1)


def _resample_axis1(stack: np.ndarray, new: int) -> np.ndarray:
    size = stack.shape[1]
    if size == new:
        return stack
    x = np.clip((np.arange(new) + 0.5) * (size / new) - 0.5, 0, size - 1)  # pixel-edge aligned, edges held
    i0 = np.floor(x).astype(np.intp)
    i1, weight = np.minimum(i0 + 1, size - 1), (x - i0).astype(np.float32)[:, None]
    low, high = stack[:, i0], stack[:, i1]  # gathered copies, blended in place
    high -= low
    high *= weight
    high += low
    return high
