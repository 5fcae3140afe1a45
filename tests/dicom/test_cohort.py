"""Every center of the synthetic cohort through ``ingest_center``, checked against the cohort's manifest.json
(the oracle: planted identifiers, original UIDs and file lists, bad files, the burned-in series)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pydicom
import pytest

from brainfm.dicom import find_identifiers_in_tree
from brainfm.dicom.quarantine import read_quarantine
from brainfm.imaging.shards import open_slices
from brainfm.ingest import IngestSummary, ingest_center
from brainfm.pseudonym import Pseudonymizer, center_patient_key

KEY = Pseudonymizer(b"brainfm-test-secret-0123456789abcdef")
RERUN_CENTER = "center_c"  # the smallest center (it holds the non-DICOM files and enhanced multi-frame series)
_PIXEL_MODULE = ("Rows", "Columns", "BitsAllocated", "BitsStored", "PixelRepresentation", "NumberOfFrames")


@dataclass(frozen=True)
class Ingested:
    raw: Path  # the cohort root (RAW/)
    manifest: dict[str, Any]  # RAW/manifest.json
    data: Path  # data/{deid,slices,manifests}/<center>: everything that must be free of identifiers
    logs: Path  # captured log records and stdout/stderr of the whole run
    quarantine: Path  # quarantine/<center>.jsonl (names original paths, so kept outside data/)
    summaries: dict[str, IngestSummary]


@contextlib.contextmanager
def _capture_everything(folder: Path) -> Iterator[None]:
    """Write every log record (any logger, DEBUG and up) and all stdout/stderr output, at the file-descriptor
    level too, into ``folder`` for the duration of the block."""
    folder.mkdir(parents=True)
    handler = logging.FileHandler(folder / "records.log", encoding="utf-8")
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with (folder / "output.txt").open("a", encoding="utf-8") as sink:
        os.dup2(sink.fileno(), 1)
        os.dup2(sink.fileno(), 2)
        try:
            with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
                yield
        finally:
            sink.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
            root.removeHandler(handler)
            root.setLevel(level)
            handler.close()


def _ingest(raw: Path, out: Path, center: str, workers: int) -> IngestSummary:
    summary = ingest_center(
        raw / "dicom" / center, out / "data" / "deid" / center, out / "data" / "slices" / center,
        out / "quarantine" / f"{center}.jsonl", center, KEY, workers=workers,
    )  # fmt: skip
    (out / "data" / "manifests").mkdir(parents=True, exist_ok=True)
    summary.manifest.write_parquet(out / "data" / "manifests" / f"{center}.parquet")
    return summary


@pytest.fixture(scope="module")
def ingested(cohort: Path, tmp_path_factory: pytest.TempPathFactory) -> Ingested:
    """Every center ingested once, in-process (workers=1) so that all its output is captured."""
    out = tmp_path_factory.mktemp("ingest")
    manifest = json.loads((cohort / "manifest.json").read_text(encoding="utf-8"))
    with _capture_everything(out / "logs"):
        logging.getLogger("brainfm").debug("capture check")  # proves records reach the capture file
        summaries = {center: _ingest(cohort, out, center, workers=1) for center in manifest["centers"]}
    return Ingested(cohort, manifest, out / "data", out / "logs", out / "quarantine", summaries)


def _good_series(manifest: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(accession, study, series) of every series that must be exported (all but the burned-in ones)."""
    for accession, study in manifest["studies"].items():
        for series in study["series"]:
            if series["dir"] not in manifest["burned_in"]:
                yield accession, study, series


def _deid_series_dir(ingested: Ingested, study: dict[str, Any], series: dict[str, Any]) -> Path:
    return ingested.data / "deid" / study["center"] / KEY.uid(study["study_uid"]) / KEY.uid(series["series_uid"])


def _digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*") if p.is_file()}


def test_the_cohort_holds_every_center_bad_file_and_burned_in_series(ingested: Ingested) -> None:
    manifest = ingested.manifest
    assert len(manifest["centers"]) == 4 and manifest["burned_in"]
    assert set(manifest["bad_files"].values()) == {"empty_file", "truncated", "not_dicom", "missing_pixel_data"}
    assert {path.split("/")[1] for path in manifest["bad_files"]} == set(manifest["centers"])


def test_no_planted_identifier_in_any_output_byte_file_name_or_log(ingested: Ingested) -> None:
    identifiers = [value for values in ingested.manifest["identifiers"].values() for value in values]
    assert "capture check" in (ingested.logs / "records.log").read_text(encoding="utf-8")
    assert {p.name for p in ingested.data.iterdir()} == {"deid", "slices", "manifests"}
    assert find_identifiers_in_tree(ingested.data, identifiers) == []
    assert find_identifiers_in_tree(ingested.logs, identifiers) == []
    # The check is not vacuous: the raw export of one center is full of them, in names and in contents.
    raw_hits = find_identifiers_in_tree(ingested.raw / "dicom" / RERUN_CENTER, identifiers)
    assert {h.where for h in raw_hits} == {"name", "content"} and len({h.identifier for h in raw_hits}) >= 10


def test_every_bad_file_is_quarantined_with_its_expected_reason_and_nothing_else(ingested: Ingested) -> None:
    expected: dict[str, dict[str, str]] = {center: {} for center in ingested.manifest["centers"]}
    for path, reason in ingested.manifest["bad_files"].items():
        _, center, rel = path.split("/", 2)
        expected[center][rel] = reason
    for series_dir in ingested.manifest["burned_in"]:
        _, center, rel = series_dir.split("/", 2)
        for file in (ingested.raw / series_dir).iterdir():
            expected[center][f"{rel}/{file.name}"] = "burned_in_annotation"
    for center, summary in ingested.summaries.items():
        entries = {e.path: str(e.reason) for e in read_quarantine(ingested.quarantine / f"{center}.jsonl")}
        assert entries == expected[center]
        assert summary.deid.quarantined == len(expected[center])
        assert summary.deid.identifier_hits == 0  # the gate on each file's own patient values: no false alarm
        assert dict(summary.manifest.filter(pl.col("status") != "ok")["status"].value_counts().iter_rows()) == {
            reason: list(expected[center].values()).count(reason) for reason in set(expected[center].values())
        }


def test_uids_are_remapped_consistently_and_series_grouping_is_kept(ingested: Ingested) -> None:
    exported = Counter[str]()
    for accession, study, series in _good_series(ingested.manifest):
        folder = _deid_series_dir(ingested, study, series)  # every series of a study under one new study UID
        files = sorted(folder.iterdir())
        assert len(files) == len(series["files"]), series["dir"]  # same grouping, same counts as the input
        exported[study["center"]] += len(files)
        header = pydicom.dcmread(files[0], stop_before_pixels=True)
        assert header.StudyInstanceUID == folder.parent.name and header.SeriesInstanceUID == folder.name
        patient = KEY.patient_id(center_patient_key(study["center"], study["patient_id"]))
        assert header.PatientID == header.PatientName == patient
        assert header.AccessionNumber == KEY.token("accession", accession, 16)  # reports still link
    for center, summary in ingested.summaries.items():
        assert summary.deid.exported == exported[center] == len(list((ingested.data / "deid" / center).rglob("*.dcm")))
        studies = {s["study_uid"] for s in ingested.manifest["studies"].values() if s["center"] == center}
        assert {p.name for p in (ingested.data / "deid" / center).iterdir()} == {KEY.uid(u) for u in studies}


def test_every_exported_file_has_the_pixels_of_its_input(ingested: Ingested) -> None:
    for _, study, series in _good_series(ingested.manifest):
        folder = _deid_series_dir(ingested, study, series)
        for i, name in enumerate(series["files"]):
            original = pydicom.dcmread(ingested.raw / series["dir"] / name)
            copy = pydicom.dcmread(folder / f"{KEY.uid(original.SOPInstanceUID)}.dcm")
            assert copy.file_meta.TransferSyntaxUID == original.file_meta.TransferSyntaxUID
            assert copy.PixelData == original.PixelData, name  # the stored (possibly compressed) bytes
            assert [copy.get(k) for k in _PIXEL_MODULE] == [original.get(k) for k in _PIXEL_MODULE]
            if i == 0:  # and the decoded pixels, once per series (the bytes above decide the rest)
                np.testing.assert_array_equal(copy.pixel_array, original.pixel_array)


def test_every_exported_series_is_normalised_or_listed_in_qc(ingested: Ingested) -> None:
    for center in ingested.manifest["centers"]:
        store = open_slices(ingested.data / "slices" / center)
        qc = pl.read_parquet(ingested.data / "slices" / center / "qc.parquet")
        series = {p.name for p in (ingested.data / "deid" / center).glob("*/*")}
        assert set(store.index["series"]) | set(qc["series"]) == series
        assert len(store) > 0 and store[len(store) - 1].shape == (256, 256)
        assert store.index.group_by("patient").n_unique()["split"].max() == 1


def test_a_rerun_gives_byte_identical_outputs(ingested: Ingested, tmp_path: Path) -> None:
    summary = _ingest(ingested.raw, tmp_path, RERUN_CENTER, workers=2)  # and a worker pool changes nothing
    for tree in ("deid", "slices"):
        assert _digest(tmp_path / "data" / tree / RERUN_CENTER) == _digest(ingested.data / tree / RERUN_CENTER)
    assert summary.manifest.equals(ingested.summaries[RERUN_CENTER].manifest)
    name = f"{RERUN_CENTER}.jsonl"
    assert (tmp_path / "quarantine" / name).read_bytes() == (ingested.quarantine / name).read_bytes()


def test_every_diffusion_volume_carries_its_b_value_and_no_other_volume_has_one(ingested: Ingested) -> None:
    expected = {
        KEY.uid(s["series_uid"]): {float(b) for b in s["b_values"]} for _, _, s in _good_series(ingested.manifest)
    }
    complete = 0  # DWI series with every b-value among the kept slices (QC may drop a noisy b=1000 volume)
    for center in ingested.manifest["centers"]:
        index = open_slices(ingested.data / "slices" / center).index
        for (series, sequence), rows in index.group_by("series", "sequence"):
            found = set(rows["b_value"].drop_nulls().to_list())
            if sequence == "DWI":
                assert 0.0 in found and found <= expected[series] and rows["b_value"].null_count() == 0
                assert rows.group_by("volume").n_unique()["b_value"].max() == 1  # one b-value a volume
                complete += found == expected[series]
            else:
                assert rows["b_value"].null_count() == rows.height
    assert complete >= 4
