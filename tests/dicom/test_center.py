"""One center end to end on synthetic series with planted identifiers and one file of each bad kind."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl
import pydicom
import pytest

from brainfm.cli import main
from brainfm.dicom import find_identifiers_in_tree
from brainfm.dicom.quarantine import read_quarantine
from brainfm.imaging.shards import open_slices
from brainfm.ingest import ingest_center, scan_center
from brainfm.pseudonym import Pseudonymizer
from brainfm.splits import PRETRAIN_TRAIN_FRACTION, assign_split

from .conftest import BAD_REASONS, IDENTIFIERS, make_center


def _tree_digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def center(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_center(tmp_path_factory.mktemp("raw") / "center_a")


def _ingest(center: Path, out: Path, workers: int = 1):
    key = Pseudonymizer(b"brainfm-test-secret-0123456789abcdef")
    return ingest_center(center, out / "deid", out / "slices", out / "quarantine.jsonl", "center_a", key, workers)


@pytest.fixture(scope="module")
def ingested(center: Path, tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("out")
    return out, _ingest(center, out)


def test_no_planted_identifier_in_any_output_byte_or_name(ingested) -> None:
    out, summary = ingested
    summary.manifest.write_parquet(out / "slices" / "manifest.parquet")
    for tree in ("deid", "slices"):
        assert find_identifiers_in_tree(out / tree, IDENTIFIERS) == []
    (out / "slices" / "manifest.parquet").unlink()


def test_planted_identifiers_are_found_in_the_raw_input(center: Path) -> None:
    hits = find_identifiers_in_tree(center, IDENTIFIERS)
    assert {h.identifier for h in hits} == set(IDENTIFIERS) and {h.where for h in hits} == {"name", "content"}


def test_every_bad_file_is_quarantined_with_its_reason_and_no_good_file_is_lost(ingested, center: Path) -> None:
    out, summary = ingested
    entries = {e.path: str(e.reason) for e in read_quarantine(out / "quarantine.jsonl")}
    assert entries == BAD_REASONS
    n_good = sum(1 for p in center.rglob("*") if p.is_file()) - len(BAD_REASONS)
    assert summary.deid.exported == n_good == len(list((out / "deid").rglob("*.dcm")))
    assert summary.manifest.height == n_good + len(BAD_REASONS)
    assert summary.manifest["file"].is_unique().all()
    assert summary.manifest.filter(status="ok")["instance"].is_unique().all()


def test_uids_are_remapped_consistently_and_dates_shifted_per_patient(ingested) -> None:
    out, _ = ingested
    datasets = [pydicom.dcmread(p) for p in sorted((out / "deid").rglob("*.dcm"))]
    sops = {str(ds.SOPInstanceUID) for ds in datasets}
    by_patient: dict[str, set[str]] = {}
    for ds in datasets:
        assert str(ds.ReferencedImageSequence[0].ReferencedSOPInstanceUID) in sops  # references follow targets
        assert "RequestAttributesSequence" not in ds and "InstitutionName" not in ds
        assert not [e for e in ds if e.tag.group == 0x6000]
        assert "PatientBirthDate" not in ds and ds.PatientSex == "M" and ds.PatientAge == "054Y"
        by_patient.setdefault(str(ds.PatientID), set()).add(str(ds.StudyInstanceUID))
        assert ds.StudyDate != "20240110" and ds.StudyDate == ds.SeriesDate  # shifted, interval kept
        assert ds.AcquisitionDateTime.startswith(ds.StudyDate) and "+0800" not in ds.AcquisitionDateTime
        assert ds[0x00190010].value == "SIEMENS MR HEADER" and (0x0019, 0x100C) in ds  # safe private b-value
        assert (0x0019, 0x1050) not in ds  # any other private element is removed
    assert sorted(len(studies) for studies in by_patient.values()) == [1, 1]
    assert all(p.startswith("P") for p in by_patient)


def test_slices_index_split_and_reader(ingested) -> None:
    out, summary = ingested
    store = open_slices(out / "slices")
    index = store.index
    assert len(store) == summary.normalize.slices == index.height > 0
    assert index["slice_id"].is_unique().all()
    assert set(index["sequence"]) == {"T1", "T2", "FLAIR"}
    assert index.group_by("patient").n_unique()["split"].max() == 1  # no patient on both sides
    # Each patient on its hash side (seed 0), as the report assets assign it over all centers.
    sides = dict(index.select("patient", "split").unique().iter_rows())
    assert sides == {p: assign_split(p, PRETRAIN_TRAIN_FRACTION) for p in sides}
    first = store[0]
    assert first.shape == (256, 256) and first.dtype == np.uint8 and first.max() == 255
    assert index["patient"].n_unique() == 2


def test_rerun_and_parallel_run_give_identical_bytes(center: Path, ingested, tmp_path: Path) -> None:
    out, _ = ingested
    _ingest(center, tmp_path, workers=2)
    for tree in ("deid", "slices"):
        assert _tree_digest(tmp_path / tree) == _tree_digest(out / tree)


def test_kill_9_mid_run_leaves_no_partial_output_and_rerun_finishes(center: Path, ingested, tmp_path: Path) -> None:
    out, _ = ingested
    paused = tmp_path / "paused"
    # The run waits after its first staged file, so the kill lands mid-run every time (no race with its end).
    code = (
        "import signal, sys; from pathlib import Path; import brainfm.ingest as i, brainfm.ingest.work as w; "
        "from brainfm.pseudonym import Pseudonymizer; o = Path(sys.argv[2]); write = w.write_deidentified\n"
        "def write_then_wait(ds, path):\n    write(ds, path); Path(sys.argv[3]).touch(); signal.pause()\n"
        "w.write_deidentified = write_then_wait\n"
        "i.ingest_center(Path(sys.argv[1]), o / 'deid', o / 'slices', o / 'quarantine.jsonl', 'center_a', "
        "Pseudonymizer(b'brainfm-test-secret-0123456789abcdef'))"
    )
    proc = subprocess.Popen([sys.executable, "-c", code, str(center), str(tmp_path), str(paused)])
    deadline = time.monotonic() + 120
    while not paused.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert paused.exists() and list(tmp_path.glob(".deid.staging-*/*")), "the run never staged a file"
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL
    assert not (tmp_path / "deid").exists() and not (tmp_path / "slices").exists()
    _ingest(center, tmp_path)
    assert not list(tmp_path.glob(".*"))
    for tree in ("deid", "slices"):
        assert _tree_digest(tmp_path / tree) == _tree_digest(out / tree)


def test_a_clean_export_has_no_identifier_hits(ingested) -> None:
    _, summary = ingested
    assert summary.deid.identifier_hits == 0 and "identifier hits 0" in summary.deid.line()


def test_scan_center_matches_the_ingest_manifest(center: Path, ingested) -> None:
    """The header-only scan agrees with the ingest, except that it cannot see undecodable pixels."""
    _, summary = ingested
    manifest = scan_center(center, "center_a", Pseudonymizer(b"brainfm-test-secret-0123456789abcdef"))
    ingest = summary.manifest
    ok = manifest.filter(status="ok")
    assert set(ok["file"]) == set(ingest.filter(ingest["status"].is_in(["ok", "undecodable_pixels"]))["file"])
    good = ingest.filter(status="ok")
    assert ok.filter(ok["file"].is_in(good["file"])).equals(good)


def test_ingest_cli_writes_what_the_ingest_assets_write(center: Path, ingested, tmp_path: Path, capsys) -> None:
    out, summary = ingested
    assert main(["ingest", str(center), str(tmp_path / "site"), "--center", "center_a"]) == 0
    for tree, reference in (("deidentified_studies", "deid"), ("normalized_slices", "slices")):
        assert _tree_digest(tmp_path / "site" / tree) == _tree_digest(out / reference)
    assert pl.read_parquet(tmp_path / "site" / "dicom_manifest" / "manifest.parquet").equals(summary.manifest)
    quarantine = tmp_path / "site.quarantine" / "quarantine.jsonl"
    assert quarantine.read_bytes() == (out / "quarantine.jsonl").read_bytes()
    assert f"normalised {summary.normalize.slices} slices" in capsys.readouterr().out


def test_deid_cli_exits_0_and_keeps_the_quarantine_list_outside_the_output(center: Path, tmp_path: Path, capsys) -> None:
    assert main(["deid", str(center), str(tmp_path / "out"), "--quarantine-dir", str(tmp_path / "q")]) == 0
    assert f"quarantined {len(BAD_REASONS)}" in capsys.readouterr().out
    assert (tmp_path / "q" / "quarantine.jsonl").is_file()
    assert {p.suffix for p in (tmp_path / "out").rglob("*") if p.is_file()} == {".dcm"}
