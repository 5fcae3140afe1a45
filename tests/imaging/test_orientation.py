"""Left, right, anterior and superior pinned from every input path to the normalised slices, and the
cohort's lesion masks to their images (docs/DATA_CONTRACT.md, "Display convention").

A head phantom defined in patient space (RAS mm) carries two bright markers of different sizes: a large one
at the patient's left, anterior and superior, a small one at the right, posterior and inferior. Each input
(classic DICOM in three file orders, a mirrored, coronal, sagittal and oblique acquisition, enhanced
multi-frame DICOM, a Siemens mosaic, NIfTI under five affines) samples it through its own geometry, is
ingested (``ingest_center``) and normalised again from the de-identified tree (``normalize_center``, the
assets' path), and the markers must land in the written shards where the contract says.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import EnhancedMRImageStorage, ExplicitVRLittleEndian, MRImageStorage, generate_uid
from scipy import ndimage
from scipy.spatial.transform import Rotation

from brainfm.imaging.shards import open_slices
from brainfm.ingest import ingest_center, normalize_center
from brainfm.pseudonym import Pseudonymizer
from brainfm.synth.cohort import PatientTask, build_patient
from brainfm.synth.profiles import CENTERS

KEY = Pseudonymizer(b"brainfm-test-secret-0123456789abcdef")
LPS_FROM_RAS = np.diag([-1.0, -1.0, 1.0])  # its own inverse
R, A, S = np.eye(3)  # RAS unit vectors: the patient's right, anterior, superior
SHAPE = (32, 32, 16)  # voxels along the row, column and slice index
SPACING_MM = (7.0, 7.0, 9.0)
HEAD_RADII_MM = np.array([65.0, 80.0, 60.0])
# RAS centre and radius (mm) of each marker, off the in-plane diagonals so that a transposed slice fails too.
MARKERS = {"left": (np.array([-45.0, 20.0, 25.0]), 18.0), "right": (np.array([30.0, -50.0, -20.0]), 11.0)}
# The contract: per plane, the RAS axis (0 R, 1 A, 2 S) that increases along the columns (left → right), up
# the rows (bottom → top) and with slice_index.
DISPLAY = {"axial": (0, 1, 2), "coronal": (0, 2, 1), "sagittal": (1, 2, 0)}
PIXELS = 256  # side of a normalised slice
MM_PER_PIXEL = SHAPE[0] * SPACING_MM[0] / PIXELS  # both in-plane sides are 224 mm: each spans the 256 pixels
ASCENDING = range(SHAPE[2])
DESCENDING = ASCENDING[::-1]
SHUFFLED = [int(k) for k in np.random.default_rng(1).permutation(SHAPE[2])]


@dataclass(frozen=True)
class Grid:
    """A voxel grid centred on the patient origin: ``axes`` columns are the RAS unit vectors along which the
    row, column and slice index increase."""

    axes: np.ndarray

    @property
    def affine(self) -> np.ndarray:
        """Voxel (row, column, slice) → RAS mm."""
        affine = np.eye(4)
        affine[:3, :3] = self.axes * np.array(SPACING_MM)
        affine[:3, 3] = -affine[:3, :3] @ ((np.array(SHAPE) - 1) / 2)
        return affine

    def volume(self) -> np.ndarray:
        """The phantom sampled at the voxel centres, ``[row, column, slice]`` float32 in [0, 4095]."""
        ijk = np.indices(SHAPE).reshape(3, -1)
        x = self.affine[:3, :3] @ ijk + self.affine[:3, 3:]
        head = ((x / HEAD_RADII_MM[:, None]) ** 2).sum(axis=0) < 1
        value = np.where(head, 500 + 80 * np.cos(x[0] / 9) * np.cos(x[1] / 11), 0.0)  # symmetric in x
        for centre, radius in MARKERS.values():
            value[np.linalg.norm(x - centre[:, None], axis=0) < radius] = 1500
        value += np.random.default_rng(0).normal(10, 4, value.shape)
        return np.clip(value, 0, 4095).reshape(SHAPE).astype(np.float32)


def dicom_grid(rows_toward: np.ndarray, columns_toward: np.ndarray) -> Grid:
    """A DICOM acquisition: the slice index runs along row cosine × column cosine (where volumes sort
    frames); in RAS that is ``columns_toward × rows_toward`` (LPS from RAS is a rotation: cross products
    carry over)."""
    return Grid(np.column_stack([rows_toward, columns_toward, np.cross(columns_toward, rows_toward)]))


def rotated(grid: Grid, about: np.ndarray, degrees: float) -> Grid:
    """``grid`` turned about a RAS axis through the origin: an oblique acquisition."""
    return Grid(Rotation.from_rotvec(np.radians(degrees) * about).as_matrix() @ grid.axes)


# ImageOrientationPatient [1, 0, 0, 0, 1, 0]: rows run toward posterior, columns toward the patient's left.
AXIAL = dicom_grid(-A, -R)
MIRRORED = dicom_grid(-A, R)  # [-1, 0, 0, 0, 1, 0]: columns toward the right, so slices run inferior
CORONAL = dicom_grid(-S, -R)  # [1, 0, 0, 0, 0, -1]
SAGITTAL = dicom_grid(-S, -A)  # [0, 1, 0, 0, 0, -1]


def _header(sop_class: str) -> Dataset:
    """What every test file shares: UIDs, patient, MR image and pixel modules (16-bit, 12 stored)."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID = sop_class
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.FrameOfReferenceUID = generate_uid()
    ds.PatientID, ds.PatientName, ds.Modality = "ORIENT-1", "Phantom^Orientation", "MR"
    ds.SeriesDescription = ds.ProtocolName = "t1_se_tra"
    ds.Rows, ds.Columns = SHAPE[:2]
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    return ds


def _orientation(grid: Grid) -> list[float]:
    """ImageOrientationPatient: LPS direction along a row (column index), then down a column (row index)."""
    return [float(v) for axis in (1, 0) for v in LPS_FROM_RAS @ grid.axes[:, axis]]


def _position(grid: Grid, voxel: Sequence[float]) -> list[float]:
    """ImagePositionPatient: LPS mm of a (row, column, slice) voxel of ``grid``."""
    return [round(float(v), 4) for v in LPS_FROM_RAS @ (grid.affine @ [*voxel, 1])[:3]]


def write_classic(folder: Path, grid: Grid, order: Sequence[int] = ASCENDING) -> None:
    """One MR Image Storage file per slice: file ``IM<n>`` (InstanceNumber n) holds slice ``order[n - 1]``."""
    folder.mkdir(parents=True)
    volume, base = grid.volume(), _header(MRImageStorage)
    base.ImageOrientationPatient = _orientation(grid)
    base.PixelSpacing, base.SliceThickness = list(SPACING_MM[:2]), SPACING_MM[2]
    for n, k in enumerate(order, start=1):
        ds = Dataset(dict(base.items()))
        ds.file_meta = FileMetaDataset(base.file_meta)
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.InstanceNumber, ds.ImagePositionPatient = n, _position(grid, (0, 0, k))
        ds.PixelData = volume[:, :, k].astype("<u2").tobytes()
        ds.save_as(folder / f"IM{n:04d}", enforce_file_format=True)


def write_enhanced(folder: Path, grid: Grid, order: Sequence[int] = ASCENDING) -> None:
    """One Enhanced MR Image Storage file, frame n holding slice ``order[n]``: orientation and spacing in the
    shared functional groups, each frame's position in its own (as brainfm.synth.dicom_writer writes them)."""
    folder.mkdir(parents=True)
    volume, ds = grid.volume(), _header(EnhancedMRImageStorage)
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.InstanceNumber, ds.NumberOfFrames = 1, len(order)
    measures, orientation, shared = Dataset(), Dataset(), Dataset()
    measures.PixelSpacing, measures.SliceThickness = list(SPACING_MM[:2]), SPACING_MM[2]
    orientation.ImageOrientationPatient = _orientation(grid)
    shared.PixelMeasuresSequence = DicomSequence([measures])
    shared.PlaneOrientationSequence = DicomSequence([orientation])
    ds.SharedFunctionalGroupsSequence = DicomSequence([shared])
    frames = []
    for k in order:
        position, frame = Dataset(), Dataset()
        position.ImagePositionPatient = _position(grid, (0, 0, k))
        frame.PlanePositionSequence = DicomSequence([position])
        frames.append(frame)
    ds.PerFrameFunctionalGroupsSequence = DicomSequence(frames)
    ds.PixelData = np.stack([volume[:, :, k] for k in order]).astype("<u2").tobytes()
    ds.save_as(folder / "IM0001", enforce_file_format=True)


def write_mosaic(folder: Path, grid: Grid) -> None:
    """One Siemens mosaic image: the slices as a 4 × 4 grid of tiles (row-major), the slice count in
    SIEMENS MR HEADER NumberOfImagesInMosaic, no CSA header (so slices run along row × column cosine), and
    ImagePositionPatient naming the top-left corner of the whole grid as if it were one image."""
    folder.mkdir(parents=True)
    volume, ds = grid.volume(), _header(MRImageStorage)
    tiles = math.isqrt(SHAPE[2])
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.ImageType = ["ORIGINAL", "PRIMARY", "M", "ND", "MOSAIC"]
    ds.Rows, ds.Columns = SHAPE[0] * tiles, SHAPE[1] * tiles
    ds.ImageOrientationPatient = _orientation(grid)
    ds.ImagePositionPatient = _position(grid, ((1 - tiles) * SHAPE[0] / 2, (1 - tiles) * SHAPE[1] / 2, 0))
    ds.PixelSpacing, ds.SliceThickness = list(SPACING_MM[:2]), SPACING_MM[2]
    ds.SpacingBetweenSlices = SPACING_MM[2]
    ds.private_block(0x0019, "SIEMENS MR HEADER", create=True).add_new(0x0A, "US", SHAPE[2])
    mosaic = np.moveaxis(volume, 2, 0).reshape(tiles, tiles, *SHAPE[:2]).swapaxes(1, 2).reshape(ds.Rows, -1)
    ds.PixelData = mosaic.astype("<u2").tobytes()
    ds.save_as(folder / "IM0001", enforce_file_format=True)


def write_nifti(folder: Path, grid: Grid) -> None:
    """``folder/t1.nii.gz``: the phantom under ``grid.affine`` (voxel axes in array order)."""
    folder.mkdir(parents=True)
    nib.save(nib.Nifti1Image(grid.volume(), grid.affine), folder / "t1.nii.gz")


@dataclass(frozen=True)
class Case:
    """One input: how it is written, its grid (slices along the grid's third axis) and the plane the contract
    names for it."""

    write: Callable[[Path, Grid], None]
    grid: Grid
    plane: str


CASES = {
    "dicom-axial-position-ascending": Case(write_classic, AXIAL, "axial"),
    "dicom-axial-position-descending": Case(partial(write_classic, order=DESCENDING), AXIAL, "axial"),
    "dicom-axial-files-shuffled": Case(partial(write_classic, order=SHUFFLED), AXIAL, "axial"),
    "dicom-axial-columns-toward-right": Case(write_classic, MIRRORED, "axial"),
    "dicom-coronal": Case(partial(write_classic, order=DESCENDING), CORONAL, "coronal"),
    "dicom-sagittal": Case(partial(write_classic, order=SHUFFLED), SAGITTAL, "sagittal"),
    "dicom-oblique-axial-20deg-about-R": Case(write_classic, rotated(AXIAL, R, 20), "axial"),
    "enhanced-axial-frames-shuffled": Case(partial(write_enhanced, order=SHUFFLED), AXIAL, "axial"),
    "enhanced-axial-frames-descending": Case(partial(write_enhanced, order=DESCENDING), AXIAL, "axial"),
    "siemens-mosaic-axial": Case(write_mosaic, AXIAL, "axial"),
    "nifti-RAS": Case(write_nifti, Grid(np.column_stack([R, A, S])), "axial"),
    "nifti-LAS": Case(write_nifti, Grid(np.column_stack([-R, A, S])), "axial"),
    "nifti-LPS": Case(write_nifti, Grid(np.column_stack([-R, -A, S])), "axial"),
    "nifti-oblique-18deg-about-A": Case(write_nifti, rotated(Grid(np.eye(3)), A, 18), "axial"),
    "nifti-sagittal-PSR": Case(write_nifti, Grid(np.column_stack([-A, S, R])), "sagittal"),
}


@pytest.fixture(scope="module", params=list(CASES))
def normalised(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[Case, Path]:
    """One case ingested into ``ingest_center/``, then its de-identified tree normalised again into
    ``normalize_center/``."""
    case = CASES[request.param]
    root = tmp_path_factory.mktemp(request.param)
    center = root / "center_o"
    case.write(center / "Phantom" / "study1" / "t1", case.grid)
    ingest_center(center, root / "deid", root / "ingest_center", root / "quarantine.jsonl", "center_o", KEY)
    normalize_center(root / "deid", root / "normalize_center", "center_o")
    return case, root


def markers(slices_dir: Path) -> tuple[str, dict[str, np.ndarray]]:
    """The plane of the one series in ``slices_dir`` (shards + index) and the (slice_index, row, column)
    centroid of its large (patient-left) and small (patient-right) bright marker."""
    store = open_slices(slices_dir)
    index = store.index.with_row_index("i").sort("slice_index")
    assert index.select("series", "volume", "plane").n_unique() == 1, index
    slice_index = index["slice_index"].to_numpy()
    assert (np.diff(slice_index) == 1).all(), f"kept slices are not contiguous: {slice_index}"
    bright = np.stack([store[i] for i in index["i"]]) > 191  # markers top the window, the head is < 100
    labels, n = ndimage.label(bright)
    assert n == 2, f"expected the two markers, found {n} bright regions"
    big, small = np.argsort(ndimage.sum_labels(bright, labels, [1, 2]))[::-1] + 1
    found = {}
    for side, label in (("left", big), ("right", small)):
        k, row, column = ndimage.center_of_mass(bright, labels, label)
        found[side] = np.array([np.interp(k, np.arange(len(slice_index)), slice_index), row, column])
    return index["plane"][0], found


def displayed_ras(grid: Grid, point: np.ndarray) -> np.ndarray:
    """Where the contract shows a RAS point acquired on ``grid``: along each RAS axis, the point's coordinate
    (mm) along the grid axis nearest to it; the point itself unless the grid is oblique (shown in its nearest
    RAS orientation, not resampled)."""
    along = grid.axes.T @ point
    nearest = np.abs(grid.axes).argmax(axis=1)
    return np.sign(grid.axes[np.arange(3), nearest]) * along[nearest]


@pytest.mark.parametrize("entry", ["ingest_center", "normalize_center"])
def test_the_patients_left_anterior_and_superior_land_where_the_contract_says(normalised, entry: str) -> None:
    """Each marker's slice_index, row and column in the shards are where DISPLAY puts its RAS centre."""
    case, root = normalised
    plane, found = markers(root / entry)
    assert plane == case.plane
    columns_axis, up_axis, slice_axis = DISPLAY[plane]
    centre = (PIXELS - 1) / 2  # row and column of the patient origin: each grid is centred on it
    tolerance = [0.5, 4, 4]  # slices, pixels: well under one voxel (the markers are point-sampled)
    for side, (point, _) in MARKERS.items():
        ras = displayed_ras(case.grid, point)
        expected = np.array([
            ras[slice_axis] / SPACING_MM[2] + (SHAPE[2] - 1) / 2,
            centre - ras[up_axis] / MM_PER_PIXEL,
            centre + ras[columns_axis] / MM_PER_PIXEL,
        ])  # fmt: skip
        assert (abs(found[side] - expected) <= tolerance).all(), (side, found[side], expected)


@dataclass(frozen=True)
class DicomSeries:
    """A classic DICOM series read with pydicom alone: real values (slice, row, column) sorted along the
    slice normal, and the geometry placing them in the patient (an oracle independent of brainfm.imaging)."""

    values: np.ndarray
    positions_lps: np.ndarray  # (slices, 3) ImagePositionPatient, same order
    row_cosine: np.ndarray  # LPS direction along a row (column index)
    column_cosine: np.ndarray  # LPS direction down a column (row index)
    spacing_mm: tuple[float, float]  # between rows, between columns

    @classmethod
    def read(cls, files: list[Path]) -> DicomSeries:
        """The series of ``files`` (one frame each, one orientation)."""
        datasets = [pydicom.dcmread(f) for f in files]
        orientation = np.array(datasets[0].ImageOrientationPatient, float)
        normal = np.cross(orientation[:3], orientation[3:])
        datasets.sort(key=lambda ds: float(np.dot(np.array(ds.ImagePositionPatient, float), normal)))
        values = np.stack([ds.pixel_array * float(ds.get("RescaleSlope", 1) or 1) for ds in datasets])
        positions = np.array([ds.ImagePositionPatient for ds in datasets], float)
        row_mm, column_mm = (float(v) for v in datasets[0].PixelSpacing)
        return cls(values, positions, orientation[:3], orientation[3:], (row_mm, column_mm))

    def points_ras(self, voxels: np.ndarray) -> np.ndarray:
        """(3, N) RAS mm of (slice, row, column) voxel indices (N, 3)."""
        k, row, column = voxels.T
        lps = (
            self.positions_lps[k].T
            + np.outer(self.column_cosine, row * self.spacing_mm[0])
            + np.outer(self.row_cosine, column * self.spacing_mm[1])
        )
        return LPS_FROM_RAS @ lps

    def at(self, points_ras: np.ndarray) -> np.ndarray:
        """Values of the voxels nearest to (3, N) RAS points (those inside the series)."""
        lps = LPS_FROM_RAS @ points_ras
        normal = np.cross(self.row_cosine, self.column_cosine)
        k = np.abs((normal @ lps)[:, None] - (self.positions_lps @ normal)[None]).argmin(axis=1)
        offset = lps - self.positions_lps[k].T
        row = np.rint(self.column_cosine @ offset / self.spacing_mm[0]).astype(int)
        column = np.rint(self.row_cosine @ offset / self.spacing_mm[1]).astype(int)
        rows, columns = self.values.shape[1:]
        inside = (row >= 0) & (row < rows) & (column >= 0) & (column < columns)
        return self.values[k[inside], row[inside], column[inside]]


@pytest.fixture(scope="module")
def lateralised_gliomas(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, dict]]:
    """The first left and the first right glioma the generator draws (seed 0, center_b: classic DICOM
    stored superior first), written as the cohort writes them: the raw root and each patient's record."""
    raw = tmp_path_factory.mktemp("cohort")
    (raw / "masks").mkdir()
    records: dict[str, dict] = {}
    for index in range(20):
        record = build_patient(PatientTask(0, index, "glioma", CENTERS[1], raw, burned_in=False))
        records.setdefault(str(record["laterality"]), record)
        if {"left", "right"} <= records.keys():
            return raw, records
    raise AssertionError(f"no left and right glioma in 20 draws: {sorted(records)}")


@pytest.mark.parametrize("side", ["left", "right"])
def test_a_cohort_lesion_mask_lies_on_its_side_and_over_its_lesion(lateralised_gliomas, side: str) -> None:
    """The mask (RAS NIfTI) and the study's FLAIR series (DICOM, LPS) agree in patient space: the mask's
    centroid is on the labelled side of the head's midline in the image (RAS x below it is the patient's
    left), and FLAIR is brighter under the mask than under its mirror image across that midline. A mask
    flipped against its image fails both."""
    raw, records = lateralised_gliomas
    record = records[side]
    mask = nib.load(raw / record["mask"])
    lesion = nib.affines.apply_affine(mask.affine, np.argwhere(np.asarray(mask.dataobj) > 0)).T  # (3, N) mm
    flair_series = next(s for s in record["series"] if s["sequence"] == "FLAIR")
    flair = DicomSeries.read([raw / flair_series["dir"] / f for f in flair_series["files"]])
    head = np.argwhere(flair.values > 0.2 * np.percentile(flair.values, 99))
    midline_x = float(flair.points_ras(head)[0].mean())
    assert (lesion[0].mean() < midline_x) == (side == "left"), (lesion[0].mean(), midline_x)
    mirrored = lesion * np.array([[-1.0], [1.0], [1.0]]) + np.array([[2 * midline_x], [0.0], [0.0]])
    under_mask, under_mirror = np.median(flair.at(lesion)), np.median(flair.at(mirrored))
    assert under_mask > 1.5 * under_mirror, (under_mask, under_mirror)
