"""Plant the broken files a real export contains, so ingestion has something to quarantine.

One of each, in the first patient of successive centers: an empty file, a truncated DICOM, non-DICOM
files (a README.txt and a JPEG preview), and a DICOM whose PixelData is missing. Each is listed in
manifest.json ``bad_files`` (path relative to the cohort root -> the reason ingestion should give).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
from PIL import Image


def _series(record: dict, sequence: str) -> dict:
    return next(s for s in record["series"] if s["sequence"] == sequence)


def _take_last(out_dir: Path, series: dict) -> Path:
    """Remove the series' last file from its list of valid files and return its path."""
    name = series["files"].pop()
    return out_dir / series["dir"] / name


def plant_bad_files(out_dir: Path, records: list[dict]) -> dict[str, str]:
    """Break files in place (updating the records' valid file lists); returns {relative path: reason}."""
    first = {}
    for r in records:
        first.setdefault(r["center"], r)
    patients = list(first.values())
    bad: dict[str, str] = {}

    t1 = _series(patients[0], "T1")
    empty = out_dir / t1["dir"] / "IMG99999.dcm"
    empty.write_bytes(b"")
    bad[empty.relative_to(out_dir).as_posix()] = "empty_file"

    truncated = _take_last(out_dir, _series(patients[1], "T2"))
    data = truncated.read_bytes()
    truncated.write_bytes(data[: len(data) * 2 // 5])
    bad[truncated.relative_to(out_dir).as_posix()] = "truncated"

    study_dir = out_dir / patients[2]["study_dir"]
    readme = study_dir.parent / "README.txt"
    readme.write_text("DICOM export - open with the enclosed viewer.\n", encoding="utf-8")
    preview = study_dir / "preview.jpg"
    first_file = out_dir / _series(patients[2], "T2")["dir"] / _series(patients[2], "T2")["files"][0]
    pixels = pydicom.dcmread(first_file).pixel_array.astype(np.float32)
    Image.fromarray((pixels / max(pixels.max(), 1) * 255).astype(np.uint8)).save(preview, quality=85)
    for path in (readme, preview):
        bad[path.relative_to(out_dir).as_posix()] = "not_dicom"

    no_pixels = _take_last(out_dir, _series(patients[3 % len(patients)], "FLAIR"))
    ds = pydicom.dcmread(no_pixels)
    del ds.PixelData
    ds.save_as(no_pixels, enforce_file_format=True)
    bad[no_pixels.relative_to(out_dir).as_posix()] = "missing_pixel_data"
    return dict(sorted(bad.items()))
