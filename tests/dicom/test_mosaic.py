"""Siemens mosaics (the DWI files that ship in nibabel's wheel) are un-tiled into their slices with the geometry
nibabel's MosaicWrapper gives, from the original header and from the de-identified one, and ingested as one
volume per b-value."""

from __future__ import annotations

import gzip
import io
import warnings
from pathlib import Path

import nibabel
import numpy as np
import polars as pl
import pydicom
import pytest

from brainfm.dicom.deid import Deidentifier
from brainfm.dicom.diffusion import b_values
from brainfm.dicom.export import write_deidentified
from brainfm.dicom.mosaic import mosaic_of, untile
from brainfm.dicom.quarantine import read_quarantine
from brainfm.dicom.reading import decode_frames, frame_geometries, read_header
from brainfm.imaging.volumes import build_volumes
from brainfm.ingest import ingest_center, normalize_center
from brainfm.ingest.work import _frames
from brainfm.pseudonym import Pseudonymizer

from .conftest import phantom

with warnings.catch_warnings():
    warnings.simplefilter("ignore", UserWarning)
    from nibabel.nicom import dicomwrappers

KEY = Pseudonymizer(b"brainfm-test-secret-0123456789abcdef")
DATA = Path(nibabel.__file__).parent / "nicom" / "tests" / "data"
MOSAICS = {"siemens_dwi_0.dcm.gz": 0.0, "siemens_dwi_1000.dcm.gz": 1000.0}  # one series, two volumes
_LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


def _copy(name: str, dst: Path) -> Path:
    """A wheel mosaic (real Siemens header; its pixels were zeroed for size) with a head phantom in its tiles:
    48 slices of 128×128 on a 7×7 grid, the last tile empty."""
    ds = pydicom.dcmread(io.BytesIO(gzip.decompress((DATA / name).read_bytes())))
    tiles = np.zeros((49, 128, 128), np.uint16)
    tiles[:48] = phantom(48, 128, seed=int(MOSAICS[name]))
    ds.PixelData = tiles.reshape(7, 7, 128, 128).swapaxes(1, 2).reshape(896, 896).tobytes()
    dst.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(dst)
    return dst


def _volume(path: Path):
    ds = read_header(path)
    geometries, mosaic = frame_geometries(ds), mosaic_of(ds)
    assert mosaic is not None
    pixels, geometries = untile(decode_frames(ds), geometries, mosaic)
    (volume,) = build_volumes(_frames(ds, pixels, geometries, b_values(ds)))
    return volume


@pytest.mark.parametrize("name", MOSAICS)
@pytest.mark.parametrize("deidentified", [False, True], ids=["original", "deidentified"])
def test_untiled_slices_match_nibabels_mosaic_reader(name: str, deidentified: bool, tmp_path: Path) -> None:
    path = _copy(name, tmp_path / "in.dcm")
    if deidentified:  # the CSA header is gone: slice count and normal come from the fields kept of it
        write_deidentified(Deidentifier(KEY, "c")(read_header(path)), tmp_path / "out.dcm")
        path = tmp_path / "out.dcm"
    volume = _volume(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = dicomwrappers.wrapper_from_data(pydicom.dcmread(_copy(name, tmp_path / "ref.dcm")))
        expected = reference.get_data()
    assert volume.data.shape == expected.shape == (128, 128, 48)
    np.testing.assert_array_equal(volume.data, expected)
    np.testing.assert_allclose(volume.affine, _LPS_TO_RAS @ reference.affine, atol=1e-4)
    assert volume.b_value == MOSAICS[name]


@pytest.fixture(scope="module")
def ingested(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("mosaic")
    for name in MOSAICS:
        _copy(name, out / "raw" / "patient" / "dwi" / name.removesuffix(".gz"))
    broken = pydicom.dcmread(_copy("siemens_dwi_0.dcm.gz", out / "tmp.dcm"))  # another instance of the series
    del broken[0x0019100A]  # no slice count in the Siemens header …
    del broken[0x00291010]  # … nor in the CSA image header
    broken.SOPInstanceUID = broken.file_meta.MediaStorageSOPInstanceUID = pydicom.uid.generate_uid()
    (out / "raw" / "patient" / "broken").mkdir()
    broken.save_as(out / "raw" / "patient" / "broken" / "x.dcm")
    (out / "tmp.dcm").unlink()
    ingest_center(out / "raw", out / "deid", out / "slices", out / "q.jsonl", "center_m", KEY)
    return out


def _volumes(slices: Path) -> pl.DataFrame:
    """Slices per (volume, b-value), kept and excluded together: every tile of a 48-slice mosaic."""
    index = pl.read_parquet(slices / "index.parquet").select("series", "volume", "b_value", "slice_index")
    qc = pl.read_parquet(slices / "qc.parquet").filter(pl.col("volume") >= 0)
    by_volume = dict(index.group_by("volume").agg(pl.col("b_value").first()).iter_rows())
    rows = index.select("volume", "slice_index").vstack(qc.select("volume", "slice_index"))
    counts = rows.group_by("volume").len().sort("volume")
    return counts.with_columns(pl.col("volume").replace_strict(by_volume, return_dtype=pl.Float32).alias("b"))


def test_ingest_untiles_each_mosaic_into_a_volume_with_its_b_value(ingested: Path) -> None:
    volumes = _volumes(ingested / "slices")
    assert volumes["len"].to_list() == [48, 48]
    assert sorted(volumes["b"].to_list()) == [0.0, 1000.0]
    index = pl.read_parquet(ingested / "slices" / "index.parquet")
    assert set(index["sequence"]) == {"DWI"} and set(index["plane"]) == {"axial"}


def test_the_deidentified_tree_normalises_to_the_same_volumes(ingested: Path) -> None:
    normalize_center(ingested / "deid", ingested / "again", "center_m")
    assert _volumes(ingested / "again").equals(_volumes(ingested / "slices"))


def test_a_mosaic_without_its_slice_count_is_quarantined_and_the_rest_goes_on(ingested: Path) -> None:
    entries = read_quarantine(ingested / "q.jsonl")
    assert [(e.path, e.reason) for e in entries] == [("patient/broken/x.dcm", "bad_mosaic")]


def test_a_mosaic_nobody_recognised_is_excluded_as_a_tile_grid(tmp_path: Path) -> None:
    """Without MOSAIC in ImageType the image stays one 896×896 slice of thumbnails: QC must not pass it."""
    path = _copy("siemens_dwi_1000.dcm.gz", tmp_path / "raw" / "p" / "dwi" / "x.dcm")
    ds = pydicom.dcmread(path)
    ds.ImageType = ["ORIGINAL", "PRIMARY", "DIFFUSION", "NONE", "ND"]
    ds.save_as(path)
    summary = ingest_center(tmp_path / "raw", tmp_path / "deid", tmp_path / "slices", tmp_path / "q.jsonl", "c", KEY)
    assert summary.normalize.slices == 0 and summary.normalize.exclusion_reasons == {"tile_grid": 1}
