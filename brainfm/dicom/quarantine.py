"""Quarantine: files that cannot be de-identified or read safely, each with a reason; the run goes on.

The quarantine list names original paths (which may hold identifiers), so it is written outside the
de-identified tree, e.g. ``quarantine/<center>.jsonl`` (docs/DATA_CONTRACT.md section 2).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from enum import StrEnum
from pathlib import Path

from brainfm.jsonl import atomic_text


class Reason(StrEnum):
    """Why a file was quarantined (the vocabulary of ``bad_files`` in the cohort manifest)."""

    EMPTY_FILE = "empty_file"  # 0 bytes
    NOT_DICOM = "not_dicom"  # no DICOM structure at all
    CORRUPT = "corrupt"  # a DICOM file whose data elements cannot be parsed or hold invalid values
    TRUNCATED = "truncated"  # the file ends inside a data element
    MISSING_PIXEL_DATA = "missing_pixel_data"  # a complete dataset without Pixel Data
    UNDECODABLE_PIXELS = "undecodable_pixels"  # Pixel Data present but no installed decoder can decode it
    MISSING_UID = "missing_uid"  # no Study/Series/SOP Instance UID to name the output by
    DUPLICATE_INSTANCE = "duplicate_instance"  # a second, different file with an already exported SOP Instance UID
    BURNED_IN_ANNOTATION = "burned_in_annotation"  # BurnedInAnnotation=YES and no pixel cleaning
    SECONDARY_CAPTURE = "secondary_capture"  # screenshots and scanned documents may carry burned-in text
    BAD_MOSAIC = "bad_mosaic"  # a Siemens mosaic without its slice count, or not a grid of whole tiles
    SYMLINK = "symlink"  # a symbolic link: never followed (it may loop or lead out of the center folder)


@dataclass(frozen=True)
class QuarantineEntry:
    """One quarantined file: its path relative to the center folder, the reason and a short detail."""

    path: str
    reason: Reason
    detail: str = ""


class BadInput(Exception):
    """Raised by the readers for a file that must be quarantined; carries the reason."""

    def __init__(self, reason: Reason, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else str(reason))
        self.reason = reason
        self.detail = detail


def write_quarantine(path: Path, entries: Iterable[QuarantineEntry]) -> None:
    """Write entries as JSON lines sorted by path, atomically (`brainfm.jsonl.atomic_text`). A path that is not
    valid UTF-8 (a file name's bytes, decoded with surrogates by ``os.fsdecode``) is written with JSON escapes,
    from which :func:`read_quarantine` gives it back exactly."""
    rows = sorted(entries, key=lambda e: (e.path, e.reason))
    with atomic_text(path) as f:
        for entry in rows:
            f.write(json.dumps(asdict(entry), ensure_ascii=not _is_text(entry.path), sort_keys=True) + "\n")


def _is_text(path: str) -> bool:
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def read_quarantine(path: Path) -> list[QuarantineEntry]:
    """Read a quarantine list written by :func:`write_quarantine`."""
    with path.open(encoding="utf-8") as f:
        return [QuarantineEntry(r["path"], Reason(r["reason"]), r["detail"]) for r in map(json.loads, f)]
