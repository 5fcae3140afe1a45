"""The DICOM manifest: one row per input file, keyed only by pseudonymous values (never original UIDs,
names or paths), so it can be stored and shown as Dagster metadata."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import polars as pl
from pydicom.dataset import Dataset

from brainfm.dicom.codec import Header
from brainfm.dicom.deid import patient_key
from brainfm.dicom.quarantine import Reason
from brainfm.dicom.reading import FrameGeometry, SequenceLabel, frame_geometries, infer_sequence
from brainfm.pseudonym import Pseudonymizer

MANIFEST_SCHEMA: Mapping[str, pl.DataType] = {
    "center": pl.String(),
    "file": pl.String(),  # keyed token of the relative input path
    "status": pl.String(),  # "ok" or the quarantine reason
    "patient": pl.String(),
    "study": pl.String(),
    "series": pl.String(),
    "instance": pl.String(),
    "sop_class": pl.String(),
    "modality": pl.String(),
    "sequence": pl.String(),  # T1 | T2 | FLAIR | DWI | other | unknown (SEQUENCE_TYPES)
    "sequence_source": pl.String(),  # header | name | content | none (SequenceSource)
    "transfer_syntax": pl.String(),
    "rows": pl.Int32(),
    "columns": pl.Int32(),
    "frames": pl.Int32(),
    "row_spacing_mm": pl.Float64(),
    "column_spacing_mm": pl.Float64(),
    "slice_thickness_mm": pl.Float64(),
    "plane": pl.String(),  # axial | coronal | sagittal | oblique | unknown
    "manufacturer": pl.String(),
}
_PLANE_BY_NORMAL_AXIS = {0: "sagittal", 1: "coronal", 2: "axial"}
_OBLIQUE_COSINE = 0.8  # |normal · axis| below this: oblique


def file_token(pseudonymizer: Pseudonymizer, relpath: str) -> str:
    """The manifest's stand-in for an input path (which may hold identifiers)."""
    return pseudonymizer.token("file", relpath, 16)


def plane_name(orientation: tuple[float, ...] | None) -> str:
    """The plane of a slice from its row and column direction cosines (6 values, either LPS or RAS)."""
    if orientation is None:
        return "unknown"
    (r0, r1, r2), (c0, c1, c2) = orientation[:3], orientation[3:]
    normal = (abs(r1 * c2 - r2 * c1), abs(r2 * c0 - r0 * c2), abs(r0 * c1 - r1 * c0))  # |row × column|
    axis = max(range(3), key=normal.__getitem__)
    return _PLANE_BY_NORMAL_AXIS[axis] if normal[axis] >= _OBLIQUE_COSINE else "oblique"


def instance_row(
    ds: Header | Dataset, relpath: str, center: str, pseudonymizer: Pseudonymizer, *,
    geometry: FrameGeometry | None = None, sequence: SequenceLabel | None = None,
) -> dict[str, Any]:  # fmt: skip
    """The manifest row of a readable file, from its *original* header (keys are pseudonymised here).

    ``geometry`` (of the first frame) and ``sequence`` are derived from ``ds`` unless the caller has them.
    """
    geometry = geometry or frame_geometries(ds)[0]
    sequence = sequence or infer_sequence(ds)
    measured = geometry.spacing_source == "measured"
    thickness = ds.get("SliceThickness")

    def uid(keyword: str) -> str | None:
        value = ds.get(keyword)
        return pseudonymizer.uid(str(value)) if value else None

    return {
        "center": center,
        "file": file_token(pseudonymizer, relpath),
        "status": "ok",
        "patient": pseudonymizer.patient_id(patient_key(ds, center)),
        "study": uid("StudyInstanceUID"),
        "series": uid("SeriesInstanceUID"),
        "instance": uid("SOPInstanceUID"),
        "sop_class": str(ds.get("SOPClassUID", "")) or None,
        "modality": str(ds.get("Modality", "")) or None,
        "sequence": sequence.sequence,
        "sequence_source": sequence.source,
        "transfer_syntax": str(ds.file_meta.get("TransferSyntaxUID", "")) or None,
        "rows": int(ds.get("Rows") or 0),
        "columns": int(ds.get("Columns") or 0),
        "frames": int(ds.get("NumberOfFrames") or 1),
        "row_spacing_mm": geometry.spacing_mm[0] if measured else None,  # null: PixelSpacing absent, invalid
        "column_spacing_mm": geometry.spacing_mm[1] if measured else None,
        "slice_thickness_mm": float(thickness) if thickness not in (None, "") else None,
        "plane": plane_name(geometry.orientation),
        "manufacturer": str(ds.get("Manufacturer", "")) or None,
    }


def bad_row(relpath: str, center: str, reason: str, pseudonymizer: Pseudonymizer) -> dict[str, Any]:
    """The manifest row of a quarantined file: its token and reason, everything else null."""
    return {"center": center, "file": file_token(pseudonymizer, relpath), "status": reason}


def first_instances(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``rows`` (in input order) with every readable row after the first of its SOP Instance UID turned into a
    ``duplicate_instance`` row: the copy de-identification keeps is the first, the rest are quarantined, so
    the manifest names each instance once."""
    seen: set[str] = set()
    out = []
    for row in rows:
        instance = row.get("instance")
        if row["status"] == "ok" and instance in seen:
            row = {"center": row["center"], "file": row["file"], "status": str(Reason.DUPLICATE_INSTANCE)}
        elif instance is not None:
            seen.add(instance)
        out.append(row)
    return out


def series_sequences(manifest: pl.DataFrame) -> dict[str, str]:
    """Series UID → the sequence most of its readable files were given from their original headers: what
    :func:`~brainfm.ingest.normalize_center` labels its slices with (ties: first in file order). It
    labels an ``unknown`` series from its voxels (:mod:`brainfm.imaging.sequence_content`)."""
    ok = manifest.filter(pl.col("status") == "ok", pl.col("series").is_not_null())
    counts = ok.group_by("series", "sequence", maintain_order=True).len()
    best = counts.sort("len", descending=True, maintain_order=True).unique("series", keep="first")
    return dict(zip(best["series"].to_list(), best["sequence"].to_list(), strict=True))


def manifest_frame(rows: list[dict[str, Any]]) -> pl.DataFrame:
    """Rows → DataFrame with :data:`MANIFEST_SCHEMA`, sorted by file token (deterministic)."""
    frame = pl.DataFrame(rows, schema=MANIFEST_SCHEMA) if rows else pl.DataFrame(schema=MANIFEST_SCHEMA)
    return frame.sort("file")
