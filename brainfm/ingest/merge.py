"""Merging an ingest's per-folder results: first copies of each instance named, series parts written as
shards + index.parquet + qc.parquet + volumes.parquet."""

from __future__ import annotations

import os
import re
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from brainfm.dicom.manifest import bad_row, file_token
from brainfm.dicom.quarantine import QuarantineEntry, Reason
from brainfm.dicom.reading import UNKNOWN
from brainfm.imaging.qc import QCThresholds
from brainfm.imaging.shards import INDEX_FILE, QC_FILE, VOLUMES_FILE, ShardWriter
from brainfm.ingest.work import Job, JobResult, SeriesPart, relabel, run_job
from brainfm.pseudonym import Pseudonymizer
from brainfm.splits import PRETRAIN_TRAIN_FRACTION, split_patients

_PSEUDONYMOUS = re.compile(r"2\.25\.[0-9]{1,39}|P[A-Z2-7]{16}")  # keyed UID or patient pseudonym
PARTS = ".parts"  # per-series normalised arrays inside the staging directory, removed before the swap
INDEX_SCHEMA = {
    "slice_id": pl.String(), "patient": pl.String(), "study": pl.String(), "series": pl.String(),
    "volume": pl.Int32(), "sequence": pl.String(), "plane": pl.String(), "slice_index": pl.Int32(),
    "shard": pl.Int32(), "row": pl.Int32(), "split": pl.String(), "center": pl.String(), "b_value": pl.Float32(),
}  # fmt: skip
QC_SCHEMA = {
    "patient": pl.String(), "study": pl.String(), "series": pl.String(), "volume": pl.Int32(),
    "sequence": pl.String(), "slice_index": pl.Int32(), "reason": pl.String(), "center": pl.String(),
}  # fmt: skip
VOLUMES_SCHEMA = {
    "patient": pl.String(), "study": pl.String(), "series": pl.String(), "volume": pl.Int32(),
    "sequence": pl.String(), "plane": pl.String(), "shape": pl.Array(pl.Int32(), 3),
    "affine": pl.Array(pl.Float64(), 16), "pixel_mm": pl.Float64(), "slice_mm": pl.Float64(), "center": pl.String(),
}  # fmt: skip


@dataclass(frozen=True)
class NormalizeSummary:
    """Counts of one center's normalisation (slices and series)."""

    series: int
    slices: int
    excluded: int
    exclusion_reasons: dict[str, int]
    patients: dict[str, int]  # split name → number of patients


def keep_first_copies(results: list[JobResult], stage: Path, key: bytes) -> None:
    """Give each written file its final name; later copies of an already named instance are quarantined."""
    seen: set[str] = set()
    for job_index, result in enumerate(results):
        duplicates = set()
        for rel, out_rel in result.written:
            tagged = stage / f"{out_rel}.{job_index:06d}"  # the job's tag (see _run)
            if out_rel in seen:
                tagged.unlink()
                duplicates.add(rel)
            else:
                os.replace(tagged, stage / out_rel)
                seen.add(out_rel)
        if duplicates:
            detail = "an earlier folder holds a file with the same SOP Instance UID"
            result.written = [(r, o) for r, o in result.written if r not in duplicates]
            result.quarantined += [QuarantineEntry(r, Reason.DUPLICATE_INSTANCE, detail) for r in sorted(duplicates)]
            pseudonymizer = Pseudonymizer(key)
            tokens = {file_token(pseudonymizer, r): r for r in duplicates}
            result.manifest = [
                bad_row(tokens[row["file"]], row["center"], Reason.DUPLICATE_INSTANCE, pseudonymizer)
                if row["file"] in tokens
                else row
                for row in result.manifest
            ]


def write_slices(
    results: list[JobResult], stage: Path, deid_root: Path, center: str, seed: int, thresholds: QCThresholds,
    unreadable: list[QuarantineEntry],
) -> NormalizeSummary:  # fmt: skip
    """Merge per-job series parts into shards + index.parquet + qc.parquet + volumes.parquet (order independent
    of workers).

    ``unreadable``: de-identified files that could not be read (:func:`normalize_center`), one QC row each.
    """
    parts_dir = stage / PARTS
    grouped: dict[str, list[SeriesPart]] = defaultdict(list)
    for result in results:
        for part in result.series:
            grouped[part.series].append(part)
    for i, series in enumerate(sorted(s for s, ps in grouped.items() if len(ps) > 1)):
        files = tuple(sorted({rel for p in grouped[series] for rel in p.relpaths}))
        # A label one folder's part read from its voxels is read again from the whole series.
        named = [(UNKNOWN.sequence if p.source else p.sequence, len(p.relpaths)) for p in grouped[series]]
        labels = Counter({label: 0 for label, _ in named})  # in part order, for ties
        for label, n in named:
            labels[label] += n
        job = Job(
            deid_root, files, center, b"", False, None, parts_dir, thresholds, f"merged{i:06d}",
            {series: labels.most_common(1)[0][0]},
        )  # fmt: skip
        merged = run_job(job)
        for result in results:
            for part in merged.series:
                relabel(result.manifest, part)
        grouped[series] = merged.series
        unreadable = unreadable + merged.quarantined
    parts = sorted((ps[0] for ps in grouped.values()), key=lambda p: (p.patient, p.study, p.series))
    sides = split_patients([p.patient for p in parts], PRETRAIN_TRAIN_FRACTION, seed)
    writer = ShardWriter(stage)
    index: list[dict[str, Any]] = []
    qc: list[dict[str, Any]] = []
    volumes: list[dict[str, Any]] = []
    for part in parts:
        keys = {"patient": part.patient, "study": part.study, "series": part.series, "sequence": part.sequence}
        if part.unusable is not None:
            qc.append({**keys, "volume": -1, "slice_index": -1, "reason": part.unusable, "center": center})
        for v, vol in enumerate(part.volumes):
            positions = writer.append(np.load(parts_dir / vol.file))
            for (shard, row), k in zip(positions, vol.slice_index, strict=True):
                index.append({
                    "slice_id": f"{part.series}-{v}-{k}", **keys, "volume": v, "plane": vol.plane,
                    "slice_index": k, "shard": shard, "row": row, "split": sides[part.patient], "center": center,
                    "b_value": vol.b_value,
                })  # fmt: skip
            qc += [{**keys, "volume": v, "slice_index": k, "reason": r, "center": center} for k, r in vol.excluded]
            g = vol.geometry
            volumes.append({
                **keys, "volume": v, "plane": vol.plane, "shape": list(g.shape), "affine": g.affine.ravel().tolist(),
                "pixel_mm": g.pixel_mm, "slice_mm": g.slice_mm, "center": center,
            })  # fmt: skip
    qc += [_unreadable_row(entry, center) for entry in sorted(unreadable, key=lambda e: e.path)]
    writer.flush()
    for path in parts_dir.iterdir():
        path.unlink()
    parts_dir.rmdir()
    index_df = pl.DataFrame(index, schema=INDEX_SCHEMA)
    qc_df = pl.DataFrame(qc, schema=QC_SCHEMA)
    index_df.write_parquet(stage / INDEX_FILE)
    qc_df.write_parquet(stage / QC_FILE)
    pl.DataFrame(volumes, schema=VOLUMES_SCHEMA).write_parquet(stage / VOLUMES_FILE)
    return NormalizeSummary(
        series=len(parts),
        slices=index_df.height,
        excluded=qc_df.height,
        exclusion_reasons=dict(Counter(qc_df["reason"].to_list())),
        patients=dict(Counter(sides.values())),
    )


def _unreadable_row(entry: QuarantineEntry, center: str) -> dict[str, Any]:
    """The QC row of a de-identified file that could not be read, reason ``file_<quarantine reason>``, keyed
    by the patient, study and series its path names (``<study>/<series>/<instance>.dcm``,
    ``<patient>/<study>/<series>/<sequence>.nii``) where those are pseudonymous keys, else null."""
    parts = Path(entry.path).parts
    names = ("patient", "study", "series") if len(parts) == 4 else ("study", "series")
    keys = {n: v for n, v in zip(names, parts, strict=False) if _PSEUDONYMOUS.fullmatch(v)}
    return {
        "patient": None, "study": None, "series": None, **keys, "volume": -1, "sequence": None,
        "slice_index": -1, "reason": f"file_{entry.reason}", "center": center,
    }  # fmt: skip


