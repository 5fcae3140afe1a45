"""Group 2D frames of a series into 3D volumes with a voxel-to-RAS affine (mm).

Frames are grouped by orientation, shape and b-value, sorted along the slice normal by ImagePositionPatient,
and frames that still share a position (e.g. several gradient directions of one b-value, or echoes) are split
into separate volumes by their rank at that position, so each volume has one frame per slice position.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # a runtime import would make brainfm.imaging depend on brainfm.dicom's package import
    from brainfm.dicom.reading import FrameGeometry

_LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
# LPS directions of the row, column and slice index for frames without ImageOrientationPatient: chosen so that
# the display convention (rows from anterior, columns towards +x, see brainfm.imaging.normalize) shows each
# frame as stored, never rotated or mirrored into a guessed orientation.
_STORED_LAYOUT = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
_POSITION_DECIMALS = 2  # mm: positions closer than 0.01 mm are the same slice position
_ORIENTATION_DECIMALS = 3


class GeometryError(ValueError):
    """Frames whose geometry gives no usable voxel grid (a pixel spacing or voxel axis that is zero, negative
    or not finite, e.g. PixelSpacing ``0\\0``): the series cannot be resampled."""


@dataclass(frozen=True)
class Frame:
    """One decoded 2D frame and where it lies."""

    pixels: np.ndarray  # (rows, columns) stored values; real value = stored × geometry.slope + intercept
    geometry: FrameGeometry
    phase_axis: int | None = None  # array axis along which phase is encoded: 0 rows (COL), 1 columns (ROW)
    b_value: float | None = None  # diffusion weighting, s/mm²; None when the header does not say


@dataclass(frozen=True)
class Volume:
    """A stack of frames: ``data[row, column, slice]`` and the voxel-to-RAS affine in mm."""

    data: np.ndarray  # (rows, columns, slices) float32; for DICOM a view of slice-major memory
    affine: np.ndarray  # 4×4, voxel indices (row, column, slice) → RAS mm
    phase_axis: int | None  # in-plane array axis (0 or 1) of phase encoding, None when unknown
    b_value: float | None = None  # diffusion weighting of every frame, s/mm²
    oriented: bool = True  # False: the header gives no orientation; the affine only keeps the stored layout


def build_volumes(frames: Sequence[Frame]) -> list[Volume]:
    """Volumes of a series, largest first, then by b-value (the order files lie in does not matter); see the
    module docstring for the grouping rule."""
    groups: dict[tuple, list[Frame]] = defaultdict(list)
    for frame in frames:
        ori = frame.geometry.orientation
        key = (frame.pixels.shape, None if ori is None else tuple(np.round(ori, _ORIENTATION_DECIMALS)), frame.b_value)
        groups[key].append(frame)
    volumes = [v for group in groups.values() for v in _stacks(group)]
    return sorted(volumes, key=lambda v: (-v.data.shape[2], -1.0 if v.b_value is None else v.b_value))


def _stacks(frames: list[Frame]) -> list[Volume]:
    geometry = frames[0].geometry
    if geometry.orientation is None:  # no orientation: input order, shown as stored
        return [_volume(frames, _STORED_LAYOUT, None, 1.0, oriented=False)]
    row_cos = np.asarray(geometry.orientation[:3])
    col_cos = np.asarray(geometry.orientation[3:])
    normal = np.cross(row_cos, col_cos)
    if any(f.geometry.position_mm is None for f in frames):  # no positions: input order along the normal
        return [_volume(frames, np.column_stack([col_cos, row_cos, normal]), None, 1.0)]
    by_position: dict[float, list[Frame]] = defaultdict(list)
    for frame in frames:  # stable: frames keep their input (instance) order within a position
        by_position[round(float(np.dot(frame.geometry.position_mm, normal)), _POSITION_DECIMALS)].append(frame)
    positions = sorted(by_position)
    n_stacks = max(len(v) for v in by_position.values())
    out = []
    for rank in range(n_stacks):
        stack = [by_position[p][rank] for p in positions if len(by_position[p]) > rank]
        depths = [float(np.dot(f.geometry.position_mm, normal)) for f in stack]
        step = float(np.median(np.diff(depths))) if len(depths) > 1 else 1.0
        directions = np.column_stack([col_cos, row_cos, normal])
        out.append(_volume(stack, directions, np.asarray(stack[0].geometry.position_mm), step or 1.0))
    return out


def _volume(
    frames: list[Frame], directions: np.ndarray, origin: np.ndarray | None, step_mm: float, oriented: bool = True
) -> Volume:
    """``directions`` columns: LPS unit vectors of the row index, column index and slice index."""
    if any(f.geometry.spacing_source == "invalid" for f in frames):
        raise GeometryError("PixelSpacing is not two finite positive numbers")
    row_mm, col_mm = frames[0].geometry.spacing_mm
    affine = np.eye(4)
    affine[:3, :3] = directions * np.array([row_mm, col_mm, step_mm])
    affine[:3, 3] = 0.0 if origin is None else origin
    stack = np.empty((len(frames), *frames[0].pixels.shape), dtype=np.float32)
    for k, frame in enumerate(frames):
        stack[k] = frame.pixels  # converted to float32 on the way in
        if frame.geometry.slope != 1.0:
            stack[k] *= np.float32(frame.geometry.slope)
        if frame.geometry.intercept != 0.0:
            stack[k] += np.float32(frame.geometry.intercept)
    # Slice-major in memory (each frame a contiguous copy, per-slice work stays contiguous), indexed as
    # data[row, column, slice] through a view.
    data, ras = np.moveaxis(stack, 0, -1), _LPS_TO_RAS @ affine
    return Volume(data, ras, frames[0].phase_axis, frames[0].b_value, oriented)


def check_grid(affine: np.ndarray) -> None:
    """Raise GeometryError unless the voxel axes of ``affine`` (its first three columns, mm) are finite,
    non-zero and span 3-D space: what reorientation and resampling need."""
    axes = affine[:3, :3]
    lengths = np.linalg.norm(axes, axis=0)
    degenerate = abs(np.linalg.det(axes)) < 1e-6 * lengths.prod()
    if not np.isfinite(axes).all() or not (lengths > 0).all() or degenerate:
        raise GeometryError("the voxel axes are zero, not finite or not independent")
