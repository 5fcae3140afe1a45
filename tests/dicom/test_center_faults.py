"""Faults a hospital's export holds that must each be listed with their reason while the rest of the center
goes on: a header that claims more frames than its pixel data holds, file names that are not UTF-8, symbolic
links, and the same image stored twice; and a script that forgot its main guard is told what to do."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pydicom
import pytest
from pydicom.uid import RLELossless

from brainfm.dicom.quarantine import read_quarantine
from brainfm.ingest import ingest_center, scan_center
from brainfm.pseudonym import Pseudonymizer

from .conftest import write_series

KEY = Pseudonymizer(b"brainfm-test-secret-0123456789abcdef")


def _ingest(raw: Path, out: Path):
    return ingest_center(raw, out / "deid", out / "slices", out / "q.jsonl", "center_f", KEY)


def _reasons(out: Path) -> dict[str, str]:
    return {e.path: str(e.reason) for e in read_quarantine(out / "q.jsonl")}


@pytest.mark.timeout(120)
def test_a_header_claiming_two_billion_frames_is_refused_at_once(tmp_path: Path) -> None:
    write_series(tmp_path / "raw" / "good", n_slices=4)
    ds = write_series(tmp_path / "tmp", patient_id="F-2", name="Fu^Er", n_slices=1, seed=1)[0]
    ds.NumberOfFrames = 2**31 - 1  # and one frame of pixel data
    (tmp_path / "raw" / "bad").mkdir()
    ds.save_as(tmp_path / "raw" / "bad" / "frames.dcm", enforce_file_format=True)
    start = time.perf_counter()
    summary = _ingest(tmp_path / "raw", tmp_path / "out")
    assert time.perf_counter() - start < 60  # generous: a per-frame loop over 2³¹ frames takes hours
    assert _reasons(tmp_path / "out") == {"bad/frames.dcm": "corrupt"}
    assert summary.deid.exported == 4 and summary.normalize.series == 1


def test_file_names_that_are_not_utf8_are_ingested_and_listed_by_their_bytes(tmp_path: Path) -> None:
    folder = tmp_path / "raw" / os.fsdecode(b"\xd5\xc5\xce\xb0")  # 张伟 in GB18030: not valid UTF-8
    write_series(folder, n_slices=3)
    first = min(folder.iterdir())
    first.rename(folder / os.fsdecode(b"img\xff01.dcm"))
    (folder / os.fsdecode(b"notes\xfe.txt")).write_text("not an image")
    summary = _ingest(tmp_path / "raw", tmp_path / "out")
    assert summary.deid.exported == 3
    (entry,) = read_quarantine(tmp_path / "out" / "q.jsonl")
    assert os.fsencode(entry.path) == b"\xd5\xc5\xce\xb0/notes\xfe.txt" and entry.reason == "not_dicom"
    assert summary.manifest.height == 4 and summary.manifest["file"].n_unique() == 4


def test_symbolic_links_are_listed_never_followed(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    write_series(raw / "good", n_slices=3)
    outside = write_series(tmp_path / "elsewhere", patient_id="O-1", name="Out^Side", n_slices=1, seed=1)
    (raw / "links").mkdir()
    (raw / "links" / "to_outside.dcm").symlink_to(tmp_path / "elsewhere" / next((tmp_path / "elsewhere").iterdir()).name)
    (raw / "links" / "to_inside.dcm").symlink_to(min((raw / "good").iterdir()))
    (raw / "links" / "loop").symlink_to(raw, target_is_directory=True)
    assert outside
    summary = _ingest(raw, tmp_path / "out")
    assert _reasons(tmp_path / "out") == dict.fromkeys(("links/loop", "links/to_inside.dcm", "links/to_outside.dcm"), "symlink")
    assert summary.deid.exported == 3 and summary.manifest.filter(status="symlink").height == 3


def test_an_image_stored_twice_is_kept_once_and_the_manifest_names_each_instance_once(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    write_series(raw / "a", n_slices=3)
    copy = pydicom.dcmread(min((raw / "a").iterdir()))
    copy.compress(RLELossless, generate_instance_uid=False)  # the same image, stored again in another transfer syntax
    (raw / "b").mkdir()
    copy.save_as(raw / "b" / "again.dcm", enforce_file_format=True)
    manifest = scan_center(raw, "center_f", KEY)
    ok = manifest.filter(status="ok")
    assert ok.height == 3 and ok["instance"].n_unique() == 3
    assert manifest.filter(status="duplicate_instance").height == 1
    summary = _ingest(raw, tmp_path / "out")
    assert summary.deid.exported == 3 and _reasons(tmp_path / "out") == {"b/again.dcm": "duplicate_instance"}
    assert summary.manifest.filter(status="ok").drop("file").sort("instance").equals(ok.drop("file").sort("instance"))
    assert pl.read_parquet(tmp_path / "out" / "slices" / "index.parquet")["series"].n_unique() == 1


UNGUARDED = """
from pathlib import Path
from brainfm.ingest import ingest_center
from brainfm.pseudonym import Pseudonymizer
root = Path({root!r})
ingest_center(root / "raw", root / "deid", root / "slices", root / "q.jsonl", "c", Pseudonymizer(b"k" * 20), workers=2)
"""


def test_an_unguarded_script_with_workers_gets_an_error_that_says_what_to_do(tmp_path: Path) -> None:
    for i in range(3):  # three folders: the pool gets work
        write_series(tmp_path / "raw" / f"s{i}", patient_id=f"U-{i}", n_slices=2, seed=i)
    script = tmp_path / "ingest_script.py"
    script.write_text(UNGUARDED.format(root=str(tmp_path)))
    run = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300, check=False)
    assert run.returncode != 0 and 'if __name__ == "__main__":' in run.stderr.splitlines()[-1]


def test_progress_is_reported_after_every_folder(tmp_path: Path) -> None:
    """The ingest asset turns these calls into its heartbeat: a long ingest keeps writing events."""
    for i in range(3):
        write_series(tmp_path / "raw" / f"s{i}", patient_id=f"H-{i}", n_slices=2, seed=i)
    calls: list[tuple[int, int]] = []
    out = tmp_path / "out"
    ingest_center(tmp_path / "raw", out / "deid", out / "slices", out / "q.jsonl", "center_f", KEY,
                  progress=lambda done, total: calls.append((done, total)))  # fmt: skip
    assert calls == [(1, 3), (2, 3), (3, 3)]
