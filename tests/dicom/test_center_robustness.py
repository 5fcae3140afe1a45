"""A center's run goes on past one bad series or damaged file, keeps the ingest's sequence labels, and counts
exports that still hold their patient's identifying values."""

from __future__ import annotations

import shutil
from pathlib import Path

import polars as pl
import pydicom
import pytest

from brainfm.dicom.manifest import series_sequences
from brainfm.ingest import deidentify_center, ingest_center, normalize_center
from brainfm.pseudonym import Pseudonymizer

from .conftest import write_series

KEY = Pseudonymizer(b"brainfm-test-secret-0123456789abcdef")


def _edit(folder: Path, **attributes: object) -> None:
    for path in folder.iterdir():
        ds = pydicom.dcmread(path)
        for keyword, value in attributes.items():
            setattr(ds, keyword, value)
        ds.save_as(path)


def _ingest(raw: Path, out: Path):
    return ingest_center(raw, out / "deid", out / "slices", out / "q.jsonl", "center_r", KEY)


def test_a_series_with_zero_pixel_spacing_is_listed_and_the_others_are_normalised(tmp_path: Path) -> None:
    write_series(tmp_path / "raw" / "a" / "good", n_slices=6)
    write_series(tmp_path / "raw" / "b" / "bad", patient_id="LL-1", name="Li Lei", n_slices=6, seed=1)
    _edit(tmp_path / "raw" / "b" / "bad", PixelSpacing=[0, 0])
    summary = _ingest(tmp_path / "raw", tmp_path / "out")
    assert summary.deid.exported == 12 and summary.normalize.series == 2 and summary.normalize.slices > 0
    qc = pl.read_parquet(tmp_path / "out" / "slices" / "qc.parquet")
    assert qc.filter(reason="bad_geometry")["volume"].to_list() == [-1]
    bad_patient = qc.filter(reason="bad_geometry")["patient"][0]
    assert summary.manifest.filter(patient=bad_patient)["row_spacing_mm"].is_null().all()  # not "1 mm"


def test_a_file_damaged_after_deidentification_is_listed_by_normalize_center(tmp_path: Path) -> None:
    write_series(tmp_path / "raw" / "a", n_slices=6)
    deidentify_center(tmp_path / "raw", tmp_path / "deid", tmp_path / "q.jsonl", KEY)
    victim = min((tmp_path / "deid").rglob("*.dcm"))
    victim.write_bytes(victim.read_bytes()[:-500])
    summary = normalize_center(tmp_path / "deid", tmp_path / "slices", "center_r")
    qc = pl.read_parquet(tmp_path / "slices" / "qc.parquet").filter(reason="file_truncated")
    assert summary.exclusion_reasons["file_truncated"] == 1
    assert (qc["study"][0], qc["series"][0]) == victim.relative_to(tmp_path / "deid").parts[:2]


@pytest.mark.parametrize("description", ["t2star_gre_tra", "DWIBS_tra", "fieldmap_gre"])
def test_slices_keep_the_sequence_inferred_from_the_original_header(description: str, tmp_path: Path) -> None:
    """Cleaned descriptions infer differently (t2star_gre_tra keeps GRE TRA only): labels are carried over."""
    series = tmp_path / "raw" / "a"
    write_series(series / "first", n_slices=8, description=description)
    _edit(series / "first", RepetitionTime="500", EchoTime="10")  # the cleaned header infers T1 from timing
    (series / "second").mkdir()
    for path in sorted((series / "first").iterdir())[4:]:  # one series in two folders: the merged path
        shutil.move(path, series / "second" / path.name)
    summary = _ingest(tmp_path / "raw", tmp_path / "out")
    expected = series_sequences(summary.manifest)
    assert len(expected) == 1
    ingested = pl.read_parquet(tmp_path / "out" / "slices" / "index.parquet")
    assert dict(ingested.select("series", "sequence").unique().iter_rows()) == expected
    normalize_center(tmp_path / "out" / "deid", tmp_path / "again", "center_r", sequences=expected)
    again = pl.read_parquet(tmp_path / "again" / "index.parquet")
    assert dict(again.select("series", "sequence").unique().iter_rows()) == expected


def test_a_patient_name_kept_in_a_kept_text_element_is_counted(tmp_path: Path, capsys) -> None:
    write_series(tmp_path / "raw" / "clean", n_slices=2)
    write_series(tmp_path / "raw" / "csa", patient_id="LL-1", name="Li^Leilei=李^雷雷", n_slices=2, seed=1)
    write_series(tmp_path / "raw" / "text", patient_id="HM-2", name="Han^Meimei", n_slices=2, seed=2)
    for path in (tmp_path / "raw" / "csa").iterdir():  # a vendor blob is never kept: no hit
        ds = pydicom.dcmread(path)
        ds.private_block(0x0029, "SIEMENS CSA HEADER", create=True).add_new(0x10, "OB", "患者 李雷雷".encode())
        ds.save_as(path)
    _edit(tmp_path / "raw" / "text", SequenceName="*hanmeimei")
    summary = deidentify_center(tmp_path / "raw", tmp_path / "deid", tmp_path / "q.jsonl", KEY)
    assert summary.exported == 6 and summary.identifier_hits == 2
    assert "identifier hits 2" in summary.line()
    # The command line says so and exits non-zero, without naming the values.
    from brainfm.cli import main

    assert main(["deid", str(tmp_path / "raw"), str(tmp_path / "cli"), "--quarantine-dir", str(tmp_path / "q")]) == 2
    err = capsys.readouterr().err
    assert "2 exported file(s) still hold identifying values" in err and "meimei" not in err.lower()


def test_kept_text_that_merely_contains_a_name_part_or_a_short_id_is_no_hit(tmp_path: Path) -> None:
    # Every export carries "Retain Longitudinal …" method text and kept numbers such as a 2000 ms TR: a
    # patient named LONG or DATES, or a PatientID "2000", must not withhold a clean center.
    write_series(tmp_path / "raw" / "long", patient_id="2000", name="Wang^Long", n_slices=2)
    write_series(tmp_path / "raw" / "dates", patient_id="512", name="Li^Dates", n_slices=2, seed=1)
    _edit(tmp_path / "raw" / "long", RepetitionTime="2000", SequenceName="*tfl3d1_ns", ProtocolName="Encoding Map")
    summary = deidentify_center(tmp_path / "raw", tmp_path / "deid", tmp_path / "q.jsonl", KEY)
    assert summary.exported == 4 and summary.identifier_hits == 0
