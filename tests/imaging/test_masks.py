"""Lesion masks put through the geometry of their image series (brainfm.imaging.masks, docs/DATA_CONTRACT.md
§3b): a phantom with a label cube at a known RAS position under LPS, oblique and sagittal grids, and the tiny
cohort's center_a ingested and its masks mapped, checked against the cohort's own NIfTI masks."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
import polars as pl
import pytest
from scipy import ndimage
from scipy.spatial.transform import Rotation

from brainfm.imaging.masks import (
    MaskSummary,
    map_masks,
    mask_centroid_distances,
    mask_slices,
    mask_slices_without_image,
    slice_to_ras,
)
from brainfm.imaging.normalize import normalize_volume, slice_geometry
from brainfm.imaging.shards import INDEX_FILE, VOLUMES_FILE, open_slices
from brainfm.imaging.volumes import Volume
from brainfm.ingest import ingest_center
from brainfm.pseudonym import Pseudonymizer

KEY = Pseudonymizer(b"brainfm-test-secret-0123456789abcdef")
R, A, S = np.eye(3)  # RAS unit vectors
SHAPE = (40, 36, 12)  # voxels along the row, column and slice index
SPACING_MM = (4.0, 5.0, 7.0)  # rows span 160 mm, columns 180 mm: the columns' side spans the 256 pixels
MM_PER_PIXEL = 180 / 256
CUBE_RAS, CUBE_HALF_MM = np.array([-30.0, 25.0, 14.0]), 12.0  # label 1; its inner half is label 3
# Per plane, the RAS axis along the columns (left → right), up the rows and along slice_index (the contract).
DISPLAY = {"axial": (0, 1, 2), "coronal": (0, 2, 1), "sagittal": (1, 2, 0)}
GRIDS = {  # columns: RAS directions of the row, column and slice index
    "lps-axial": np.column_stack([-A, -R, S]),  # DICOM's usual axial: rows toward posterior, columns toward left
    "oblique-20deg-about-R": Rotation.from_rotvec(np.radians(20) * R).as_matrix() @ np.column_stack([-A, -R, S]),
    "sagittal-PSR": np.column_stack([-A, -S, R]),
}
# sha256 of normalize_volume's slices for each grid's phantom, computed with the code before the geometry was
# factored out for label maps (commit fb193bb). A change here changes every normalised image: if it is meant,
# say so in docs/BENCHMARKS.md and update the digests.
IMAGE_SHA256 = {
    "lps-axial": "488731eed3a786bd63312cdc84fc8b75301c7e5b4ce039d31cee89be069adfe8",
    "oblique-20deg-about-R": "321e6eca9931b36e12d40e5e585148103d92887b2855de49df6ebb0a123356b1",
    "sagittal-PSR": "8729acfd88447bdf29cdd93f5dfe80d8e274a4c8057536a031bab96aced8602f",
}


def grid_affine(axes: np.ndarray) -> np.ndarray:
    """Voxel (row, column, slice) → RAS mm of a grid centred on the patient origin."""
    affine = np.eye(4)
    affine[:3, :3] = axes * np.array(SPACING_MM)
    affine[:3, 3] = -affine[:3, :3] @ ((np.array(SHAPE) - 1) / 2)
    return affine


def in_cube(points: np.ndarray, half_mm: float = CUBE_HALF_MM) -> np.ndarray:
    """Whether (3, N) RAS points lie in the cube of half side ``half_mm`` around ``CUBE_RAS``."""
    return (np.abs(points - CUBE_RAS[:, None]) <= half_mm).all(axis=0)


def phantom_image(affine: np.ndarray) -> np.ndarray:
    """A textured head with the cube bright, sampled at the voxel centres: ``[row, column, slice]`` float32."""
    ijk = np.indices(SHAPE).reshape(3, -1)
    x = affine[:3, :3] @ ijk + affine[:3, 3:]
    head = ((x / np.array([[70.0], [75.0], [60.0]])) ** 2).sum(axis=0) < 1
    value = np.where(head, 500 + 80 * np.cos(x[0] / 9) * np.cos(x[1] / 11), 0.0)
    value[in_cube(x)] = 1500
    value += np.random.default_rng(0).normal(10, 4, value.shape)
    return value.reshape(SHAPE).astype(np.float32)


def phantom_mask() -> nib.Nifti1Image:
    """The cube as a label map on its own grid: 2 mm voxels, LPS-oriented, covering ±100 mm, its voxel centres
    a quarter millimetre off the image grids' (no image voxel centre is equally near two mask voxels)."""
    affine = np.diag([-2.0, -2.0, 2.0, 1.0])
    affine[:3, 3] = [99.25, 99.25, -99.25]
    ijk = np.indices((100, 100, 100)).reshape(3, -1)
    x = affine[:3, :3] @ ijk + affine[:3, 3:]
    labels = np.where(in_cube(x, CUBE_HALF_MM / 2), 3, np.where(in_cube(x), 1, 0)).astype(np.uint8)
    return nib.Nifti1Image(labels.reshape(100, 100, 100), affine)


def displayed_ras(axes: np.ndarray, point: np.ndarray) -> np.ndarray:
    """Where the contract shows a RAS point acquired on a grid (tests/imaging/test_orientation.py): along each
    RAS axis, the point's coordinate along the grid axis nearest to it (an oblique grid is not resampled)."""
    along = axes.T @ point
    nearest = np.abs(axes).argmax(axis=1)
    return np.sign(axes[np.arange(3), nearest]) * along[nearest]


@pytest.mark.parametrize("name", list(GRIDS))
def test_a_label_cube_lands_where_the_contract_puts_its_ras_position(name: str) -> None:
    """The mask (LPS grid, 2 mm) is resampled onto the image grid and displayed: its centroid is where the
    display convention puts the cube's RAS centre, on the image's own bright cube, and ``slice_to_ras`` takes
    it back to the cube's RAS centre; only the labels drawn (0, 1, 3) occur."""
    axes = GRIDS[name]
    affine = grid_affine(axes)
    image = normalize_volume(Volume(phantom_image(affine), affine, phase_axis=None))
    assert image.slice_index == list(range(SHAPE[2]))
    labels = mask_slices(phantom_mask(), image.geometry, image.slice_index)
    assert labels.shape == image.slices.shape and labels.dtype == np.uint8
    assert set(np.unique(labels)) == {0, 1, 3}
    found = np.array(ndimage.center_of_mass(labels > 0))
    columns_axis, up_axis, slice_axis = DISPLAY[image.plane]
    shown = displayed_ras(axes, CUBE_RAS)
    expected = [
        shown[slice_axis] / SPACING_MM[2] + (SHAPE[2] - 1) / 2,
        127.5 - shown[up_axis] / MM_PER_PIXEL,
        127.5 + shown[columns_axis] / MM_PER_PIXEL,
    ]
    assert (abs(found - expected) <= [0.5, 4, 4]).all(), (found, expected)
    bright = np.array(ndimage.center_of_mass(image.slices > 191))  # the image's cube (the head is < 100)
    assert (abs(found - bright) <= [0.1, 1, 1]).all(), (found, bright)
    volume = {"affine": affine.ravel().tolist(), "shape": list(SHAPE)}
    back = slice_to_ras(volume, *found)
    assert np.linalg.norm(back - CUBE_RAS) <= max(SPACING_MM) / 2, back  # the cube is point-sampled
    assert image.geometry.pixel_mm == pytest.approx(MM_PER_PIXEL) and image.geometry.slice_mm == SPACING_MM[2]


@pytest.mark.parametrize("name", list(GRIDS))
def test_slice_to_ras_takes_a_displayed_voxel_back_to_its_centre(name: str) -> None:
    """One labelled voxel of the image's own grid, displayed (a block of about 6 × 7 pixels), comes back to
    its voxel centre: ``slice_to_ras`` inverts the reorientation, flip, resize and padding exactly."""
    affine = grid_affine(GRIDS[name])
    labels = np.zeros(SHAPE, np.uint8)
    labels[13, 22, 4] = 2
    shown = mask_slices(nib.Nifti1Image(labels, affine), slice_geometry(affine, SHAPE), range(SHAPE[2]))
    found = ndimage.center_of_mass(shown == 2)
    back = slice_to_ras({"affine": affine.ravel().tolist(), "shape": list(SHAPE)}, *found)
    assert np.linalg.norm(back - (affine @ [13, 22, 4, 1])[:3]) < MM_PER_PIXEL, back


@pytest.mark.parametrize("name", list(GRIDS))
def test_images_are_unchanged_by_the_shared_geometry(name: str) -> None:
    affine = grid_affine(GRIDS[name])
    image = normalize_volume(Volume(phantom_image(affine), affine, phase_axis=None))
    assert hashlib.sha256(image.slices.tobytes()).hexdigest() == IMAGE_SHA256[name]


@dataclass(frozen=True)
class Mapped:
    slices: Path  # center_a's normalized_slices folder
    masks_dir: Path  # its lesion_masks folder
    masks: dict[str, Path]  # de-identified study UID → the cohort's mask NIfTI
    labels: pl.DataFrame  # the cohort's labels of those studies, with their de-identified ``study``
    summary: MaskSummary


@pytest.fixture(scope="module")
def mapped(raw: Path, tmp_path_factory: pytest.TempPathFactory) -> Mapped:
    """The tiny cohort's center_a ingested, and the masks of its studies mapped onto its slices."""
    out = tmp_path_factory.mktemp("masks")
    center = "center_a"
    ingest_center(raw / "dicom" / center, out / "deid", out / "slices", out / "quarantine.jsonl", center, KEY)
    labels = (
        pl.read_parquet(raw / "tables" / "labels.parquet")
        .filter(pl.col("mask").is_not_null() & (pl.col("center") == center))
        .with_columns(study=pl.col("study_uid").map_elements(KEY.uid, return_dtype=pl.String))
    )
    masks = {row["study"]: raw / row["mask"] for row in labels.iter_rows(named=True)}
    summary = map_masks(out / "slices", masks, out / "lesion_masks")
    return Mapped(out / "slices", out / "lesion_masks", masks, labels, summary)


def test_every_image_slice_of_a_masked_study_has_its_mask_slice(mapped: Mapped) -> None:
    images = pl.read_parquet(mapped.slices / INDEX_FILE)
    masks = pl.read_parquet(mapped.masks_dir / INDEX_FILE)
    assert mapped.summary.failed == {} and mapped.summary.studies == len(mapped.masks) >= 4
    assert mapped.summary.slices == masks.height and 0 < mapped.summary.lesion_slices < masks.height
    keys = ["slice_id", "patient", "study", "series", "volume", "sequence", "slice_index"]
    expected = images.filter(pl.col("study").is_in(list(mapped.masks))).select(keys)
    assert masks.select(keys).equals(expected)
    assert mask_slices_without_image(masks, images).is_empty()
    stray = masks.head(1).with_columns(slice_id=pl.lit("2.25.1-0-99"))
    assert mask_slices_without_image(pl.concat([masks, stray]), images)["slice_id"].to_list() == ["2.25.1-0-99"]
    volumes = pl.read_parquet(mapped.slices / VOLUMES_FILE)
    assert volumes.select("series", "volume").unique().height == volumes.height
    assert set(images.select("series", "volume").unique().iter_rows()) <= set(volumes.select("series", "volume").iter_rows())


def test_mask_values_stay_labels_and_their_counts_are_indexed(mapped: Mapped) -> None:
    store = open_slices(mapped.masks_dir)
    labels = np.stack([store[i] for i in range(len(store))])
    assert set(np.unique(labels)) == {0, 1, 2, 3}  # nearest neighbour: no value between two labels
    np.testing.assert_array_equal((labels > 0).sum(axis=(1, 2)), store.index["lesion_pixels"].to_numpy())


def test_dwi_series_on_their_coarser_grid_are_mapped_for_each_b_value(mapped: Mapped) -> None:
    volumes = pl.read_parquet(mapped.slices / VOLUMES_FILE)
    grids = dict(volumes.group_by("sequence").agg(pl.col("shape").first()).iter_rows())
    assert list(grids["DWI"]) != list(grids["T1"])  # the DWI matrix is coarser than the mask's T1 grid
    masks = pl.read_parquet(mapped.masks_dir / INDEX_FILE).filter(pl.col("sequence") == "DWI")
    per_study = masks.group_by("study").agg(pl.col("volume").n_unique(), pl.col("lesion_pixels").sum())
    assert per_study.height == len(mapped.masks)
    assert (per_study["volume"] == 2).all() and (per_study["lesion_pixels"] > 0).all()


def test_the_lesion_lies_where_the_cohort_planted_it(mapped: Mapped) -> None:
    """Centroid (labels 1 and 3) of every mapped series, back in RAS, within one slice spacing plus one pixel
    of the NIfTI mask's own centroid."""
    distances = mask_centroid_distances(mapped.masks_dir, mapped.slices, mapped.masks)
    assert set(distances["study"]) == set(mapped.masks)
    measured = distances.filter(pl.col("distance_mm").is_not_nan())
    assert set(measured.filter(pl.col("sequence") == "T1")["study"]) == set(mapped.masks)
    over = measured.filter(pl.col("distance_mm") > pl.col("slice_mm") + pl.col("pixel_mm"))
    assert over.is_empty(), over
    assert measured.filter(pl.col("sequence") == "T1")["distance_mm"].max() < 1.0  # the mask's own grid


def _contrast(image: np.ndarray, core: np.ndarray, lesion: np.ndarray) -> float:
    """Mean grey level inside ``core`` minus that of the brain in a 4-pixel ring around ``lesion``."""
    ring = ndimage.binary_dilation(lesion, np.ones((1, 9, 9), bool)) & ~lesion & (image > 0)
    return float(image[core].mean() - image[ring].mean())


def test_on_t1_the_mask_lies_over_the_lesion(mapped: Mapped) -> None:
    """On T1 the lesion core differs from the surrounding brain by at least 25 of 255 grey levels (an infarct,
    iso-intense on T1 as in real scans, on FLAIR instead), and by more than under the same mask moved 20
    pixels (18 mm) sideways."""
    images, masks = open_slices(mapped.slices), open_slices(mapped.masks_dir)
    row_of = {s: i for i, s in enumerate(images.index["slice_id"])}
    subtype = dict(mapped.labels.select("study", "subtype").iter_rows())
    for study in mapped.masks:
        sequence = "FLAIR" if subtype[study] == "infarct" else "T1"
        rows = masks.index.with_row_index("i").filter((pl.col("study") == study) & (pl.col("sequence") == sequence))
        labels = np.stack([masks[i] for i in rows["i"]])
        image = np.stack([images[row_of[s]] for s in rows["slice_id"]]).astype(float)
        core, lesion = np.isin(labels, (1, 3)), labels > 0
        here = _contrast(image, core, lesion)
        moved = _contrast(image, np.roll(core, 20, axis=2), np.roll(lesion, 20, axis=2))
        assert abs(here) >= 25 and abs(here) > abs(moved), (study, sequence, here, moved)


def test_a_mask_that_cannot_be_used_is_listed_and_the_other_studies_still_map(mapped: Mapped, tmp_path: Path) -> None:
    """Missing, damaged and out-of-range masks fail with a reason that never names the file (its name holds
    an accession number); the remaining studies map as before."""
    missing, damaged, bad_labels, *good = sorted(mapped.masks)
    (tmp_path / "ACC-damaged.nii.gz").write_bytes(b"\x1f\x8b not a NIfTI file")
    seven = nib.load(mapped.masks[bad_labels])
    nib.save(nib.Nifti1Image(np.asarray(seven.dataobj) * 7, seven.affine), tmp_path / "ACC-seven.nii.gz")
    masks = {
        **mapped.masks, missing: tmp_path / "ACC-missing.nii.gz", damaged: tmp_path / "ACC-damaged.nii.gz",
        bad_labels: tmp_path / "ACC-seven.nii.gz",
    }  # fmt: skip
    summary = map_masks(mapped.slices, masks, tmp_path / "lesion_masks")
    assert {k: v.split(":")[0] for k, v in summary.failed.items()} == {
        missing: "missing", damaged: "unreadable", bad_labels: "bad_labels"
    }
    assert not any("ACC" in reason for reason in summary.failed.values())
    assert summary.studies == len(good)
    written = pl.read_parquet(tmp_path / "lesion_masks" / INDEX_FILE)
    before = pl.read_parquet(mapped.masks_dir / INDEX_FILE).filter(pl.col("study").is_in(good))
    assert written.drop("shard", "row").equals(before.drop("shard", "row"))
