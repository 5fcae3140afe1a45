"""The per-center ingestion gates pass a real ingested center and fail it broken one way at a time: the manifest
(unreadable files, duplicate instances, short series, impossible spacing), the de-identified export (no or a
mismatching leak-gate report, stray or misnamed files, profile flags, planted identifiers) and the normalised
slices (noise, blank or saturated slices, wrong dtype or shape, split, QC rate)."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from pydicom import dcmread

from assets.ingest_checks import (
    MAX_QC_EXCLUSION_RATE,
    LeakGateReport,
    deid_gate,
    manifest_gate,
    qc_gate,
    slice_format_gate,
    split_gate,
)
from brainfm.imaging.shards import INDEX_FILE, QC_FILE
from brainfm.raw_layout import RawLayout

from .conftest import IngestedCenter, failures

# -- dicom_manifest ----------------------------------------------------------------------------------------


def test_the_ingested_manifest_passes(ingested: IngestedCenter) -> None:
    assert failures(manifest_gate(ingested.manifest)) == set()


def test_a_manifest_with_many_unreadable_files_fails(ingested: IngestedCenter) -> None:
    every_seventh = pl.int_range(pl.len()) % 7 == 0  # 14 %, spread over every series
    bad = ingested.manifest.with_columns(
        status=pl.when(every_seventh).then(pl.lit("truncated")).otherwise("status")
    )
    assert failures(manifest_gate(bad)) == {"expect_column_values_to_be_in_set(status)"}


def test_a_duplicate_instance_fails(ingested: IngestedCenter) -> None:
    first = ingested.manifest["instance"][0]
    bad = ingested.manifest.with_columns(
        instance=pl.when(pl.int_range(pl.len()) == 1).then(pl.lit(first)).otherwise("instance")
    )
    assert failures(manifest_gate(bad)) == {"expect_column_values_to_be_unique(instance)"}


def test_a_series_of_a_few_slices_fails_unless_it_is_no_brain_sequence(ingested: IngestedCenter) -> None:
    manifest = ingested.manifest
    t1 = manifest.filter(pl.col("sequence") == "T1")["series"][0]
    short = manifest.filter((pl.col("series") != t1) | (pl.int_range(pl.len()).over("series") < 3))
    assert failures(manifest_gate(short)) == {"expect_column_values_to_be_between(series_slices)"}
    for label in ("other", "unknown"):  # a localizer, or a series not even its voxels could label
        exempt = short.with_columns(
            sequence=pl.when(pl.col("series") == t1).then(pl.lit(label)).otherwise("sequence")
        )
        assert failures(manifest_gate(exempt)) == set()


def test_an_impossible_pixel_spacing_fails(ingested: IngestedCenter) -> None:
    bad = ingested.manifest.with_columns(
        column_spacing_mm=pl.when(pl.int_range(pl.len()) == 0).then(0.02).otherwise("column_spacing_mm")
    )
    assert failures(manifest_gate(bad)) == {"expect_column_values_to_be_between(column_spacing_mm)"}


# -- deidentified_studies ----------------------------------------------------------------------------------


@pytest.fixture
def export(ingested: IngestedCenter, tmp_path: Path) -> Path:
    return Path(shutil.copytree(ingested.deid, tmp_path / "deid"))


@pytest.fixture(scope="module")
def planted(raw: Path) -> list[str]:
    return RawLayout(raw).planted_identifiers()


def _cleared(ingested: IngestedCenter) -> LeakGateReport:
    return LeakGateReport(exported=ingested.exported, identifier_hits=ingested.identifier_hits)


def _first_dicom(export: Path) -> Path:
    return min(export.rglob("*.dcm"))


def test_the_ingested_export_passes(ingested: IngestedCenter, export: Path, planted: list[str]) -> None:
    assert ingested.identifier_hits == 0
    assert failures(deid_gate(export, planted, _cleared(ingested))) == set()


def test_an_export_without_a_leak_gate_report_or_with_hits_fails(
    ingested: IngestedCenter, export: Path, planted: list[str]
) -> None:
    assert failures(deid_gate(export, planted, None)) == {
        "expect_table_row_count_to_equal",
        "expect_column_values_to_not_be_null(leak_gate_hits)",
    }
    leaking = LeakGateReport(exported=ingested.exported, identifier_hits=2)
    assert failures(deid_gate(export, planted, leaking)) == {
        "expect_column_values_to_be_between(leak_gate_hits)"
    }


def test_a_file_the_leak_gate_never_searched_fails(
    ingested: IngestedCenter, export: Path, planted: list[str]
) -> None:
    """On a hospital's data nothing is planted: a stray file fails for its count, format and name alone."""
    (export / "notes.txt").write_text("follow-up booked", encoding="utf-8")
    assert failures(deid_gate(export, [], _cleared(ingested))) == {
        "expect_table_row_count_to_equal",
        "expect_column_values_to_be_in_set(format)",
        "expect_column_values_to_be_in_set(named_by_uids)",
    }


def test_profile_flags_and_names_are_read_from_each_file(
    ingested: IngestedCenter, export: Path, planted: list[str]
) -> None:
    path = _first_dicom(export)
    ds = dcmread(path)
    ds.PatientIdentityRemoved = "NO"
    del ds.DeidentificationMethodCodeSequence
    ds.save_as(path)
    path.rename(path.with_name("IM0001.dcm"))
    assert failures(deid_gate(export, planted, _cleared(ingested))) == {
        "expect_column_values_to_be_in_set(identity_removed)",
        "expect_column_values_to_be_in_set(method_codes)",
        "expect_column_values_to_be_in_set(named_by_uids)",
    }


def test_a_planted_identifier_in_a_file_fails(
    ingested: IngestedCenter, export: Path, planted: list[str]
) -> None:
    path = _first_dicom(export)
    ds = dcmread(path)
    ds.ImageComments = max(planted, key=len)
    ds.save_as(path)
    assert failures(deid_gate(export, planted, _cleared(ingested))) == {
        "expect_column_values_to_be_between(planted_hits)"
    }


# -- normalized_slices -------------------------------------------------------------------------------------


@pytest.fixture
def slices(ingested: IngestedCenter, tmp_path: Path) -> Path:
    return Path(shutil.copytree(ingested.slices, tmp_path / "slices"))


def _edit_shard(slices: Path, edit: Callable[[np.ndarray], np.ndarray]) -> None:
    shard = slices / "shard-00000.npy"
    arr = np.load(shard)
    np.save(shard, edit(arr))


def test_the_ingested_slices_pass(slices: Path) -> None:
    assert failures(slice_format_gate(slices)) == set()
    assert failures(split_gate(slices)) == set()
    assert failures(qc_gate(slices)) == set()


def test_uint8_noise_fails(slices: Path) -> None:
    """Noise spanning 0 to 255 in every shard, which the gate's former range test (a 0 and a value ≥ 200 per
    shard) let through."""
    rng = np.random.default_rng(0)
    _edit_shard(slices, lambda arr: rng.integers(0, 256, size=arr.shape, dtype=np.uint8))
    assert failures(slice_format_gate(slices)) == {
        "expect_column_values_to_be_between(foreground_fraction)",
        "expect_column_values_to_be_between(border_mean)",
    }


def test_a_blank_slice_fails_and_its_nan_mean_is_caught(slices: Path) -> None:
    def blank(arr: np.ndarray) -> np.ndarray:
        arr[3] = 0
        return arr

    _edit_shard(slices, blank)
    assert failures(slice_format_gate(slices)) == {
        "expect_column_values_to_be_between(foreground_fraction)",
        "expect_column_values_to_not_be_null(foreground_mean)",  # NaN: no foreground pixel
    }


def test_a_saturated_slice_fails(slices: Path) -> None:
    def saturate(arr: np.ndarray) -> np.ndarray:
        arr[3] = np.where(arr[3] >= 26, 250, 0)
        return arr

    _edit_shard(slices, saturate)
    assert failures(slice_format_gate(slices)) == {"expect_column_values_to_be_between(foreground_mean)"}


def test_wrong_dtype_or_shape_fails(slices: Path) -> None:
    _edit_shard(slices, lambda arr: arr.astype(np.uint16))
    assert failures(slice_format_gate(slices)) == {"expect_column_values_to_be_in_set(dtype)"}
    _edit_shard(slices, lambda arr: arr[:, ::2, ::2].astype(np.uint8))
    assert failures(slice_format_gate(slices)) == {"expect_column_values_to_be_in_set(shape)"}


def test_no_shard_fails(slices: Path) -> None:
    for shard in slices.glob("shard-*.npy"):
        shard.unlink()
    assert failures(slice_format_gate(slices)) == {"expect_table_row_count_to_be_between"}


def test_a_patient_on_both_sides_or_an_empty_index_fails_the_split(slices: Path) -> None:
    index = pl.read_parquet(slices / INDEX_FILE)
    one_slice = pl.int_range(pl.len()) == 0
    index.with_columns(split=pl.when(one_slice).then(pl.lit("val")).otherwise("split")).write_parquet(
        slices / INDEX_FILE
    )
    assert failures(split_gate(slices)) == {"expect_column_values_to_be_between(sides)"}
    index.clear().write_parquet(slices / INDEX_FILE)
    assert failures(split_gate(slices)) == {"expect_table_row_count_to_be_between"}


def test_a_high_qc_exclusion_rate_or_nothing_kept_fails(slices: Path) -> None:
    index, qc = pl.read_parquet(slices / INDEX_FILE), pl.read_parquet(slices / QC_FILE)
    excluded = int(index.height * MAX_QC_EXCLUSION_RATE / (1 - MAX_QC_EXCLUSION_RATE)) + 1
    pl.concat([qc] * excluded).write_parquet(slices / QC_FILE)
    assert failures(qc_gate(slices)) == {"expect_column_values_to_be_between(exclusion_rate)"}
    qc.write_parquet(slices / QC_FILE)
    index.clear().write_parquet(slices / INDEX_FILE)
    assert failures(qc_gate(slices)) == {
        "expect_column_values_to_be_between(exclusion_rate)",
        "expect_column_values_to_be_between(kept)",
    }
