"""The entry points of an ingest (:func:`ingest_center` and the parts of it a site may run alone)."""

from __future__ import annotations

import contextlib
import os
from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from brainfm.dicom.manifest import first_instances, manifest_frame
from brainfm.dicom.quarantine import BadInput, Reason, write_quarantine
from brainfm.imaging.qc import DEFAULT_THRESHOLDS, QCThresholds
from brainfm.imaging.shards import atomic_directory
from brainfm.ingest.merge import PARTS, NormalizeSummary, keep_first_copies, write_slices
from brainfm.ingest.pool import Progress, map_jobs
from brainfm.ingest.work import Job, JobResult, quarantine_file, run_job
from brainfm.pseudonym import Pseudonymizer


@dataclass(frozen=True)
class DeidSummary:
    """Counts of one center's de-identification (files).

    ``identifier_hits``: exported files that still hold an identifying value of their own patient's original
    headers (name, IDs, birth date, …; :func:`~brainfm.dicom.deid.identifying_values`). The values are
    collected and matched in the worker's memory only; only this count leaves it. Must be 0 to publish.
    """

    exported: int
    quarantined: int
    reasons: dict[str, int]
    identifier_hits: int

    def line(self) -> str:
        detail = ", ".join(f"{k}={v}" for k, v in sorted(self.reasons.items()))
        detail = f" ({detail})" if detail else ""
        return (
            f"exported {self.exported} files, quarantined {self.quarantined}{detail}, "
            f"identifier hits {self.identifier_hits}"
        )


def _folders(root: Path) -> tuple[list[tuple[str, ...]], list[str]]:
    """Relative paths of all regular files under ``root``, grouped by folder, sorted (deterministic jobs), and
    of every symbolic link (to a file or a folder, never followed: it may loop or lead outside ``root``)."""
    groups: dict[str, list[str]] = defaultdict(list)
    links = []
    for dirpath, dirnames, filenames in os.walk(root):
        links += [str(Path(dirpath, d).relative_to(root)) for d in dirnames if Path(dirpath, d).is_symlink()]
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and not Path(dirpath, d).is_symlink())
        for name in filenames:
            path = Path(dirpath, name)
            if path.is_symlink():
                links.append(str(path.relative_to(root)))
            elif path.is_file():
                groups[dirpath].append(str(path.relative_to(root)))
    return [tuple(sorted(groups[d])) for d in sorted(groups)], sorted(links)


def _run(
    root: Path,
    center: str,
    key: bytes,
    *,
    deidentify: bool,
    deid_dir: Path | None,
    slices_dir: Path | None,
    workers: int,
    seed: int,
    thresholds: QCThresholds,
    sequences: Mapping[str, str] | None = None,
    staging_dir: Path | None = None,
    progress: Progress | None = None,
) -> tuple[list[JobResult], NormalizeSummary | None]:
    if not root.is_dir():
        raise FileNotFoundError(f"Input folder {root} does not exist or is not a folder; pass the center's folder.")
    with contextlib.ExitStack() as stack:
        deid_stage = stack.enter_context(atomic_directory(deid_dir, staging_dir)) if deid_dir else None
        slice_stage = stack.enter_context(atomic_directory(slices_dir, staging_dir)) if slices_dir else None
        parts = None
        if slice_stage is not None:
            parts = slice_stage / PARTS
            parts.mkdir()
        labels = sequences or {}
        folders, links = _folders(root)
        jobs = [
            Job(root, files, center, key, deidentify, deid_stage, parts, thresholds, f"{i:06d}", labels)
            for i, files in enumerate(folders)
        ]
        results = list(map_jobs(run_job, jobs, workers, center, progress))
        listed = JobResult()
        for rel in links:
            detail = "symbolic links are not followed: copy the file itself into the center folder"
            quarantine_file(listed, rel, BadInput(Reason.SYMLINK, detail), center, Pseudonymizer(key) if deidentify else None)
        results.append(listed)
        if deid_stage is not None:
            keep_first_copies(results, deid_stage, key)
        summary = None
        if slice_stage is not None:
            # Input already de-identified: a file it cannot read is listed in the QC table, not lost.
            unreadable = [] if deidentify else [e for r in results for e in r.quarantined]
            summary = write_slices(
                results, slice_stage, deid_stage or root, center, seed, thresholds, unreadable
            )
    return results, summary


def _deid_summary(results: list[JobResult], quarantine_path: Path) -> DeidSummary:
    entries = [e for r in results for e in r.quarantined]
    write_quarantine(quarantine_path, entries)
    return DeidSummary(
        exported=sum(len(r.written) for r in results),
        quarantined=len(entries),
        reasons=dict(Counter(str(e.reason) for e in entries)),
        identifier_hits=sum(len(r.identifier_hits & {rel for rel, _ in r.written}) for r in results),
    )


def scan_center(center_dir: Path, center: str, pseudonymizer: Pseudonymizer, workers: int = 1) -> pl.DataFrame:
    """The ``dicom_manifest`` of one center: one row per file (schema ``MANIFEST_SCHEMA``), pseudonymous keys.

    Header-level status only (empty, not DICOM, truncated, missing pixel data or UIDs, burned-in); pixel
    decodability is established by :func:`deidentify_center`. Pixels are never decoded here, so a series that
    no header field or name labels stays ``unknown`` (source ``none``); :func:`normalize_center` and
    :func:`ingest_center` label it from its voxels.
    """
    results, _ = _run(
        center_dir, center, pseudonymizer.key, deidentify=True, deid_dir=None, slices_dir=None,
        workers=workers, seed=0, thresholds=DEFAULT_THRESHOLDS,
    )  # fmt: skip
    return manifest_frame(first_instances([row for r in results for row in r.manifest]))


def deidentify_center(
    center_dir: Path, out_dir: Path, quarantine_path: Path, pseudonymizer: Pseudonymizer, workers: int = 1,
    center: str | None = None, staging_dir: Path | None = None,
) -> DeidSummary:  # fmt: skip
    """De-identify every file under ``center_dir`` into ``out_dir`` (replaced atomically); quarantine the rest.

    ``quarantine_path`` (JSON lines naming original paths) must lie outside ``out_dir``. ``center`` (default:
    the folder's name, as in the raw layout) is part of every patient key: it must be the manifest's center.
    The summary's ``identifier_hits`` counts exports that still hold their patient's identifying values.
    ``staging_dir``: where the tree is written until it is complete (default: beside ``out_dir``; see
    :func:`~brainfm.imaging.shards.atomic_directory`).
    """
    _check_quarantine_outside(quarantine_path, out_dir)
    results, _ = _run(
        center_dir, center_dir.name if center is None else center, pseudonymizer.key, deidentify=True,
        deid_dir=out_dir, slices_dir=None,
        workers=workers, seed=0, thresholds=DEFAULT_THRESHOLDS, staging_dir=staging_dir,
    )  # fmt: skip
    return _deid_summary(results, quarantine_path)


def normalize_center(
    deid_dir: Path, out_dir: Path, center: str, workers: int = 1, seed: int = 0,
    thresholds: QCThresholds = DEFAULT_THRESHOLDS, sequences: Mapping[str, str] | None = None,
    staging_dir: Path | None = None,
) -> NormalizeSummary:  # fmt: skip
    """Normalise a de-identified tree into 256×256 uint8 shards + index.parquet + qc.parquet + volumes.parquet
    (atomically).

    ``sequences`` maps a (pseudonymous) SeriesInstanceUID to the sequence inferred from the *original* header,
    e.g. :func:`~brainfm.dicom.manifest.series_sequences` of the center's manifest. De-identification cleans
    the descriptions the inference reads (``t2star_gre_tra`` keeps only ``GRE TRA``), so a series missing from
    it is labelled from its de-identified header, which may differ from the manifest. A series labelled
    ``unknown`` (by ``sequences`` or its header) is labelled from its voxels
    (:mod:`brainfm.imaging.sequence_content`), or stays ``unknown`` where they do not tell. A file of the tree that
    cannot be read is kept in the QC table as one row with reason ``file_<quarantine reason>``. ``staging_dir``
    as for :func:`deidentify_center`.
    """
    _, summary = _run(
        deid_dir, center, b"", deidentify=False, deid_dir=None, slices_dir=out_dir,
        workers=workers, seed=seed, thresholds=thresholds, sequences=sequences, staging_dir=staging_dir,
    )  # fmt: skip
    assert summary is not None
    return summary


@dataclass(frozen=True)
class IngestSummary:
    manifest: pl.DataFrame
    deid: DeidSummary
    normalize: NormalizeSummary


def ingest_center(
    center_dir: Path, deid_dir: Path, slices_dir: Path, quarantine_path: Path, center: str,
    pseudonymizer: Pseudonymizer, workers: int = 1, seed: int = 0, thresholds: QCThresholds = DEFAULT_THRESHOLDS,
    staging_dir: Path | None = None, progress: Progress | None = None,
) -> IngestSummary:  # fmt: skip
    """Manifest, de-identification and normalisation in one pass (each file read and decoded once).

    Same outputs as :func:`scan_center` + :func:`deidentify_center` + :func:`normalize_center`; ``staging_dir``
    as for :func:`deidentify_center`; ``progress(done, total)`` is called after each input folder. One difference: the manifest rows of a series labelled from its voxels
    carry that label with source ``content`` (scan_center's say ``unknown``, ``none``).
    """
    _check_quarantine_outside(quarantine_path, deid_dir)
    results, summary = _run(
        center_dir, center, pseudonymizer.key, deidentify=True, deid_dir=deid_dir, slices_dir=slices_dir,
        workers=workers, seed=seed, thresholds=thresholds, staging_dir=staging_dir, progress=progress,
    )  # fmt: skip
    assert summary is not None
    manifest = manifest_frame([row for r in results for row in r.manifest])
    return IngestSummary(manifest, _deid_summary(results, quarantine_path), summary)


def _check_quarantine_outside(quarantine_path: Path, out_dir: Path) -> None:
    q, out = quarantine_path.resolve(), out_dir.resolve()
    if q == out or out in q.parents:
        raise ValueError(
            f"The quarantine list names original paths and must not be written inside {out_dir}; "
            "choose a quarantine path outside the de-identified output folder."
        )

