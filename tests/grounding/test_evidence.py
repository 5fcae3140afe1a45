"""Evidence from the stage-3 outputs: category probabilities from a predictions row, and lesion presence, side
and diameter from segmented slices made the way the pipeline makes them (a label cube at a known RAS position
put through `brainfm.imaging.masks.mask_slices` on LPS-axial, sagittal and RAS grids)."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from brainfm.grounding import SegmentedSlice, Thresholds, evidence_from_predictions
from brainfm.imaging.masks import mask_slices
from brainfm.imaging.normalize import slice_geometry

R, A, S = np.eye(3)  # RAS unit vectors: +x is the patient's right
SHAPE = (64, 64, 36)  # voxels along the row, column and slice index
SPACING_MM = 2.5
GRIDS = {  # columns: RAS directions of the row, column and slice index
    "lps-axial": np.column_stack([-A, -R, S]),  # DICOM's usual axial
    "sagittal": np.column_stack([-A, -S, R]),
    "ras-axial": np.column_stack([R, A, S]),
}
ROW = {
    "p_category_normal": 0.1,
    "p_category_tumor": 0.7,
    "p_category_infection": 0.2,
    "p_subtype_normal": 0.1,
}


def grid_affine(axes: np.ndarray, centre_mm: tuple[float, float, float] = (0.0, 0.0, 0.0)) -> np.ndarray:
    """Voxel (row, column, slice) → RAS mm of a grid whose field of view is centred on ``centre_mm``."""
    affine = np.eye(4)
    affine[:3, :3] = axes * SPACING_MM
    affine[:3, 3] = np.asarray(centre_mm) - affine[:3, :3] @ ((np.array(SHAPE) - 1) / 2)
    return affine


def segmented(
    affine: np.ndarray, cubes: list[tuple[tuple[float, float, float], float]]
) -> list[SegmentedSlice]:
    """Every normalised slice of a label map holding cubes (RAS centre mm, half side mm) on the grid."""
    ijk = np.indices(SHAPE).reshape(3, -1)
    ras = affine[:3, :3] @ ijk + affine[:3, 3:]
    labels = np.zeros(ras.shape[1], np.uint8)
    for centre, half_mm in cubes:
        labels[(np.abs(ras - np.array(centre)[:, None]) <= half_mm).all(axis=0)] = 1
    image = nib.Nifti1Image(labels.reshape(SHAPE), affine)
    shown = mask_slices(image, slice_geometry(affine, SHAPE), range(SHAPE[2]))
    volume = {"affine": affine.ravel().tolist(), "shape": list(SHAPE)}
    return [SegmentedSlice(mask=piece > 0, volume=volume, slice_index=k) for k, piece in enumerate(shown)]


@pytest.mark.parametrize("grid", list(GRIDS))
@pytest.mark.parametrize(
    ("cubes", "side"),
    [
        ([((30.0, 0.0, 10.0), 5.0)], "right"),  # x > 0 is the patient's right in RAS
        ([((-30.0, 0.0, 10.0), 5.0)], "left"),
        ([((-30.0, 0.0, 10.0), 5.0), ((30.0, 20.0, 0.0), 8.0)], "bilateral"),
        ([((4.0, 0.0, 0.0), 6.0)], "midline"),  # within the 10 mm margin
    ],
)
def test_the_side_comes_from_the_ras_x_of_the_segmented_lesion(
    grid: str, cubes: list[tuple[tuple[float, float, float], float]], side: str
) -> None:
    evidence = evidence_from_predictions(ROW, segmented(grid_affine(GRIDS[grid]), cubes))
    assert evidence.lesion_present and evidence.lesion_side == side
    assert "side" not in evidence.unverifiable and "sites" in evidence.unverifiable


def test_the_diameter_is_the_largest_in_plane_extent_in_mm() -> None:
    """A 10 mm cube and a 16 mm one: 4 and 6 voxels of 2.5 mm along each axis, so the largest segmented
    extent is 15 mm within one normalised pixel (160 mm over 256 pixels)."""
    evidence = evidence_from_predictions(
        ROW, segmented(grid_affine(GRIDS["lps-axial"]), [((-30.0, 0.0, 10.0), 5.0), ((30.0, 20.0, 0.0), 8.0)])
    )
    assert evidence.largest_diameter_mm == pytest.approx(15.0, abs=160 / 256)
    single = evidence_from_predictions(
        ROW, segmented(grid_affine(GRIDS["lps-axial"]), [((30.0, 0.0, 10.0), 5.0)])
    )
    assert single.largest_diameter_mm == pytest.approx(10.0, abs=160 / 256)


def test_the_midline_is_the_centre_of_the_field_of_view() -> None:
    """A head placed 40 mm off the scanner's x = 0, the field of view centred on it: a lesion at the head's
    centre is on the midline, one 30 mm to the patient's left of it is left (x = 10 mm in scanner RAS)."""
    affine = grid_affine(GRIDS["lps-axial"], centre_mm=(40.0, 0.0, 0.0))
    assert (
        evidence_from_predictions(ROW, segmented(affine, [((40.0, 0.0, 0.0), 6.0)])).lesion_side == "midline"
    )
    assert evidence_from_predictions(ROW, segmented(affine, [((10.0, 0.0, 0.0), 6.0)])).lesion_side == "left"


def test_specks_below_the_pixel_threshold_are_no_lesion() -> None:
    """One 2.5 mm voxel shows as 4 × 4 pixels of 0.625 mm: noise under the 20-pixel default, a lesion at 5."""
    slices = segmented(grid_affine(GRIDS["ras-axial"]), [((28.75, 1.25, 1.25), 1.3)])
    evidence = evidence_from_predictions(ROW, slices)
    assert evidence.lesion_present is False and evidence.lesion_pixels == 0 and evidence.lesion_side is None
    assert evidence.largest_diameter_mm is None and set(evidence.unverifiable) == {"sites", "side", "size"}
    assert evidence_from_predictions(ROW, slices, Thresholds(min_lesion_pixels=5)).lesion_side == "right"


def test_without_a_segmentation_lesion_side_and_size_are_unverifiable() -> None:
    evidence = evidence_from_predictions(ROW, None)
    assert evidence.lesion_present is None and evidence.lesion_side is None
    assert set(evidence.unverifiable) == {"sites", "lesion", "side", "size"}


def test_category_probabilities_come_from_the_prediction_columns() -> None:
    evidence = evidence_from_predictions(ROW, None)
    assert dict(evidence.category_probabilities) == {"normal": 0.1, "tumor": 0.7, "infection": 0.2}
    assert evidence.abnormal_probability == pytest.approx(0.9) and evidence.predicted_category == "tumor"
    with pytest.raises(ValueError, match="p_category_<class>"):
        evidence_from_predictions({"normal": 0.1, "tumor": 0.9}, None)
    with pytest.raises(ValueError, match="sum to 1"):
        evidence_from_predictions({"p_category_normal": 0.5, "p_category_tumor": 0.9}, None)
