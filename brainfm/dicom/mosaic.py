"""Siemens mosaics: one stored image that holds a whole volume as a grid of tiles, one tile per slice.

Siemens DWI, BOLD and ASL exports store each volume as a single image whose ImageType holds ``MOSAIC``: a
ceil(√n) × ceil(√n) grid of tiles, row-major, the first n of them slices. The slice count is the private
NumberOfImagesInMosaic (SIEMENS MR HEADER (0019,xx0A), or the CSA image header's field of that name, kept by
de-identification in its own block); the slice direction and its sign come from the CSA image header's
SliceNormalVector (else row × column). ImagePositionPatient of a mosaic names the top-left corner of the
whole grid as if it were one image with the tile's pixel spacing; the first slice's first pixel lies half the
difference of grid and tile size (in pixels) further along the rows and columns (the rule nibabel's
``MosaicWrapper`` and dcm2niix apply), and slice k lies k × SpacingBetweenSlices (else SliceThickness) mm
further along the normal.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
from pydicom.dataset import Dataset

from brainfm.dicom.codec import Header
from brainfm.dicom.deid_profile import SAFE_PRIVATE
from brainfm.dicom.private import csa_value, private_value
from brainfm.dicom.quarantine import BadInput, Reason
from brainfm.dicom.reading import FrameGeometry

_SLICE_COUNT = ("SIEMENS MR HEADER", 0x0019, 0x0A)
_CSA_SLICE_COUNT, _CSA_NORMAL = 0x03, 0x04  # offsets in CSA_FIELDS


@dataclass(frozen=True)
class Mosaic:
    """How a mosaic image un-tiles: its slice count, slice normal (LPS; None: row × column) and step (mm)."""

    slices: int
    normal: tuple[float, float, float] | None
    step_mm: float


def mosaic_of(ds: Header | Dataset) -> Mosaic | None:
    """The mosaic layout of ``ds``, None for an image that is not a mosaic. Raises BadInput(bad_mosaic) for a
    mosaic whose slice count is missing."""
    image_type = ds.get("ImageType") or []
    if "MOSAIC" not in {str(v).strip().upper() for v in ([image_type] if isinstance(image_type, str) else image_type)}:
        return None
    count = private_value(ds, _SLICE_COUNT, SAFE_PRIVATE[_SLICE_COUNT]) or csa_value(ds, _CSA_SLICE_COUNT)
    if not count or not isinstance(count, list) or count[0] < 1:
        raise BadInput(Reason.BAD_MOSAIC, "a MOSAIC image without NumberOfImagesInMosaic cannot be un-tiled")
    normal = csa_value(ds, _CSA_NORMAL)
    step = ds.get("SpacingBetweenSlices") or ds.get("SliceThickness") or 1.0
    return Mosaic(int(count[0]), tuple(float(v) for v in normal) if normal else None, float(step))  # type: ignore[arg-type]


def untile(
    pixels: np.ndarray, geometries: list[FrameGeometry], mosaic: Mosaic
) -> tuple[np.ndarray, list[FrameGeometry]]:
    """The slices of a decoded mosaic (``pixels`` of shape (1, rows, columns)) and a FrameGeometry each.

    Raises BadInput(bad_mosaic) when the image is not a grid of whole tiles for that many slices.
    """
    grid = math.ceil(math.sqrt(mosaic.slices))
    frames, rows, columns = pixels.shape[:3]
    if frames != 1 or pixels.ndim != 3 or rows % grid or columns % grid:
        raise BadInput(Reason.BAD_MOSAIC, f"a {rows}×{columns} image is no grid of {grid}×{grid} tiles")
    r, c = rows // grid, columns // grid
    tiles = pixels[0].reshape(grid, r, grid, c).swapaxes(1, 2).reshape(grid * grid, r, c)[: mosaic.slices]
    geometry = geometries[0]
    if geometry.position_mm is None or geometry.orientation is None:
        return tiles.copy(), [replace(geometry, position_mm=None)] * mosaic.slices
    row_cos, col_cos = np.asarray(geometry.orientation[:3]), np.asarray(geometry.orientation[3:])
    row_mm, col_mm = geometry.spacing_mm
    first = (
        np.asarray(geometry.position_mm) + col_cos * row_mm * (rows - r) / 2 + row_cos * col_mm * (columns - c) / 2
    )
    normal = np.asarray(mosaic.normal) if mosaic.normal is not None else np.cross(row_cos, col_cos)
    positions = [tuple(float(v) for v in first + k * mosaic.step_mm * normal) for k in range(mosaic.slices)]
    return tiles.copy(), [replace(geometry, position_mm=p) for p in positions]
