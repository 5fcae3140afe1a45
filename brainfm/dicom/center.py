"""Processing one center folder: manifest, de-identification, normalisation (the asset layer's entry points).

Work is split by input folder (a hospital export keeps a series in one folder) and run in a process pool.
Each worker reads a file once and, depending on the entry point, de-identifies and writes it and/or
normalises its series, so the combined :func:`ingest_center` decodes each file once. A series found in
more than one folder is re-normalised afterwards from the de-identified tree, which groups it by new UIDs.
Outputs are staged and swapped in whole (:func:`brainfm.imaging.shards.atomic_directory`), so a re-run after
a crash gives the same bytes and never duplicates. NIfTI files (``brainfm.dicom.nifti_input``) go through the same
jobs, one series per file.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import warnings
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import polars as pl
from pydicom import config as pydicom_config
from pydicom.dataset import Dataset
from tqdm import tqdm

from brainfm.dicom.codec import Header
from brainfm.dicom.deid import Deidentifier, identifying_values, patient_key
from brainfm.dicom.diffusion import b_values
from brainfm.dicom.export import output_relpath, write_deidentified
from brainfm.dicom.leaks import OwnIdentifierSearch, dicom_text
from brainfm.dicom.manifest import bad_row, file_token, first_instances, instance_row, manifest_frame
from brainfm.dicom.mosaic import mosaic_of, untile
from brainfm.dicom.nifti_input import nifti_keys, nifti_row, sidecar_path
from brainfm.dicom.quarantine import BadInput, QuarantineEntry, Reason, write_quarantine
from brainfm.dicom.reading import (
    UNKNOWN,
    FrameGeometry,
    SequenceSource,
    burned_in_reason,
    decode_frames,
    frame_geometries,
    infer_sequence,
    lookup,
    read_header,
    require_pixel_size,
    require_uids,
)
from brainfm.imaging.nifti import is_nifti, load_nifti, nifti_volumes, rewrite_nifti
from brainfm.imaging.normalize import normalize_volume
from brainfm.imaging.qc import DEFAULT_THRESHOLDS, QCThresholds
from brainfm.imaging.sequence_content import sequence_from_content
from brainfm.imaging.shards import INDEX_FILE, QC_FILE, ShardWriter, atomic_directory
from brainfm.imaging.volumes import Frame, GeometryError, Volume, build_volumes
from brainfm.pseudonym import Pseudonymizer
from brainfm.splits import PRETRAIN_TRAIN_FRACTION, split_patients

_PSEUDONYMOUS = re.compile(r"2\.25\.[0-9]{1,39}|P[A-Z2-7]{16}")  # keyed UID or patient pseudonym
_PARTS = ".parts"  # per-series normalised arrays inside the staging directory, removed before the swap
INDEX_SCHEMA = {
    "slice_id": pl.String(), "patient": pl.String(), "study": pl.String(), "series": pl.String(),
    "volume": pl.Int32(), "sequence": pl.String(), "plane": pl.String(), "slice_index": pl.Int32(),
    "shard": pl.Int32(), "row": pl.Int32(), "split": pl.String(), "center": pl.String(), "b_value": pl.Float32(),
}  # fmt: skip
QC_SCHEMA = {
    "patient": pl.String(), "study": pl.String(), "series": pl.String(), "volume": pl.Int32(),
    "sequence": pl.String(), "slice_index": pl.Int32(), "reason": pl.String(), "center": pl.String(),
}  # fmt: skip


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


@dataclass(frozen=True)
class NormalizeSummary:
    """Counts of one center's normalisation (slices and series)."""

    series: int
    slices: int
    excluded: int
    exclusion_reasons: dict[str, int]
    patients: dict[str, int]  # split name → number of patients


@dataclass(frozen=True)
class _Job:
    root: Path
    files: tuple[str, ...]  # relative to root: one folder, or one series when re-normalising
    center: str
    key: bytes
    deidentify: bool  # False: input is already de-identified (no manifest rows, no burned-in check)
    deid_out: Path | None  # write de-identified files here
    parts_out: Path | None  # normalise, writing per-volume arrays here
    thresholds: QCThresholds
    tag: str  # unique per job, names its part files
    # series UID → sequence inferred at ingest; "unknown" has it read from the voxels
    sequences: Mapping[str, str] = field(default_factory=dict)


@dataclass
class _VolumePart:
    file: str  # part file name under parts_out
    slice_index: list[int]
    excluded: list[tuple[int, str]]
    plane: str
    b_value: float | None


@dataclass
class _SeriesPart:
    patient: str
    study: str
    series: str
    sequence: str
    relpaths: list[str]  # de-identified relative paths of the series' files in this job
    volumes: list[_VolumePart] = field(default_factory=list)
    unusable: str | None = None  # series-level exclusion reason
    source: SequenceSource | None = None  # "content" or "none" once the voxels of an unknown series were read


@dataclass
class _JobResult:
    manifest: list[dict[str, Any]] = field(default_factory=list)
    quarantined: list[QuarantineEntry] = field(default_factory=list)
    written: list[tuple[str, str]] = field(default_factory=list)  # (input path, output path), both relative
    series: list[_SeriesPart] = field(default_factory=list)
    identifier_hits: set[str] = field(default_factory=set)  # input paths whose export holds patient values


def _frames(
    ds: Header | Dataset, pixels: np.ndarray, geometries: list[FrameGeometry], b: list[float | None]
) -> list[Frame]:
    """Frames (stored values; the geometry's rescale is applied when volumes are built) with geometry,
    phase-encoding axis and b-value (one per stored frame: a mosaic's tiles share their image's)."""
    phase = {"COL": 0, "ROW": 1}.get(str(lookup(ds, "InPlanePhaseEncodingDirection") or "").upper())
    b = b if len(b) == len(pixels) else b[:1] * len(pixels)
    return [Frame(p, g, phase, v) for p, g, v in zip(pixels, geometries, b, strict=True)]


@contextlib.contextmanager
def _quiet_pydicom() -> Iterator[None]:
    """Silence pydicom's warnings and log lines: they quote header values, which may identify a patient.

    Value validation on reading is switched off where it would only warn (the default mode): its warnings
    are silenced anyway, and the check runs on every value pydicom decodes.
    """
    logger = logging.getLogger("pydicom")
    level, validation = logger.level, pydicom_config.settings.reading_validation_mode
    logger.setLevel(logging.CRITICAL + 1)
    if validation == pydicom_config.WARN:
        pydicom_config.settings.reading_validation_mode = pydicom_config.IGNORE
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)
        pydicom_config.settings.reading_validation_mode = validation


def _run_job(job: _Job) -> _JobResult:
    """Read every file of one folder once; de-identify/write and/or collect frames per series; normalise."""
    with _quiet_pydicom():
        return _process_job(job)


def _process_job(job: _Job) -> _JobResult:
    pseudonymizer = Pseudonymizer(job.key) if job.deidentify else None
    deidentifier = Deidentifier(pseudonymizer, job.center) if pseudonymizer else None
    result = _JobResult()
    frames: dict[str, list[Frame]] = defaultdict(list)
    series: dict[str, _SeriesPart] = {}
    sequences: dict[str, Counter[str]] = defaultdict(Counter)
    written: set[str] = set()
    identifiers: dict[str, set[str]] = defaultdict(set)  # original patient key → its identifying values
    # (input path, written file, its text when a lean header wrote it, original patient key)
    exported: list[tuple[str, Path, bytes | None, str]] = []
    sidecars = {str(sidecar_path(Path(rel))) for rel in job.files if is_nifti(rel)}
    for rel in job.files:
        if rel in sidecars:
            continue  # read with its NIfTI file, never copied
        if is_nifti(rel):
            _nifti_file(job, rel, pseudonymizer, written, result)
            continue
        try:
            ds = read_header(job.root / rel)
            require_uids(ds)
            require_pixel_size(ds)
            if job.deidentify and (reason := burned_in_reason(ds)) is not None:
                raise BadInput(reason)
            geometries, label, mosaic = frame_geometries(ds), infer_sequence(ds), mosaic_of(ds)  # original header
            # Vendor b-value fields are looked up for diffusion images only (a per-file cost on every other).
            b = b_values(ds) if label.sequence == "DWI" else [None] * len(geometries)
            row = None
            if pseudonymizer:
                row = instance_row(ds, rel, job.center, pseudonymizer, geometry=geometries[0], sequence=label)
            if job.deid_out is None and job.parts_out is None:
                result.manifest.append(row)  # manifest scan: headers only, pixels not decoded
                continue
            pixels = decode_frames(ds)
            if mosaic is not None:
                pixels, geometries = untile(pixels, geometries, mosaic)
            original_key = patient_key(ds, job.center) if deidentifier else ""
            if deidentifier:
                identifiers[original_key] |= identifying_values(ds)
                deidentifier(ds)
            out_rel = str(output_relpath(ds))
            if out_rel in written:
                raise BadInput(Reason.DUPLICATE_INSTANCE, "another file of this folder has the same SOP Instance UID")
            written.add(out_rel)
            if job.deid_out is not None:
                # Tagged by job: the parent keeps the first job's copy of a SOP Instance UID seen twice.
                out = job.deid_out / f"{out_rel}.{job.tag}"
                write_deidentified(ds, out)
                result.written.append((rel, out_rel))
                text = dicom_text(ds) if isinstance(ds, Header) else None  # what encode just wrote
                exported.append((rel, out, text, original_key))
        except Exception as e:  # noqa: BLE001 - one bad file must never stop the run; it is listed instead
            _quarantine(result, rel, e, job.center, pseudonymizer)
            continue
        if row is not None:
            result.manifest.append(row)
        if job.parts_out is None:
            continue
        key = str(ds.get("SeriesInstanceUID"))
        part = series.setdefault(
            key, _SeriesPart(str(ds.get("PatientID")), str(ds.get("StudyInstanceUID")), key, "other", relpaths=[])
        )
        part.relpaths.append(out_rel)
        sequences[key][label.sequence] += 1
        if str(ds.get("Modality", "")).upper() != "MR":
            part.unusable = "not_mr"
        elif pixels.ndim != 3:
            part.unusable = "not_grayscale"
        else:
            frames[key].extend(_frames(ds, pixels, geometries, b))
    # Each export is checked against every value of its own patient seen in this folder, never another's.
    searches = {k: OwnIdentifierSearch(values) for k, values in identifiers.items()}
    result.identifier_hits = {
        rel for rel, out, text, k in exported
        if (searches[k].in_file(out) if text is None else searches[k].in_text(text))
    }  # fmt: skip
    for key, part in series.items():
        # A de-identified header re-infers from cleaned descriptions: the label inferred at ingest wins.
        part.sequence = job.sequences.get(key) or sequences[key].most_common(1)[0][0]
        if part.unusable is None:
            _normalise_series(part, lambda k=key: build_volumes(frames.pop(k, [])), job)
        _relabel(result.manifest, part)
        result.series.append(part)
    return result


def _quarantine(
    result: _JobResult, rel: str, error: Exception, center: str, pseudonymizer: Pseudonymizer | None
) -> None:
    """List a file that failed with ``error`` (BadInput, else taken as corrupt) in the quarantine and manifest."""
    bad = error if isinstance(error, BadInput) else BadInput(Reason.CORRUPT, f"{type(error).__name__}: {error}"[:200])
    result.quarantined.append(QuarantineEntry(rel, bad.reason, bad.detail))
    if pseudonymizer:
        result.manifest.append(bad_row(rel, center, bad.reason, pseudonymizer))


def _nifti_file(
    job: _Job, rel: str, pseudonymizer: Pseudonymizer | None, written: set[str], result: _JobResult
) -> None:
    """One NIfTI file (one series): manifest row, rewrite from array + affine only, and/or normalisation."""
    try:
        keys = nifti_keys(job.root, rel, pseudonymizer, job.center)
        image = load_nifti(job.root / rel)
        row = nifti_row(image, keys, rel, job.center, pseudonymizer) if pseudonymizer else None
        if job.deid_out is None and job.parts_out is None:
            result.manifest.append(row)
            return
        volumes = nifti_volumes(image)  # reads the voxels: a damaged file fails here
        out_rel = keys.output_relpath()
        if out_rel in written:
            raise BadInput(Reason.DUPLICATE_INSTANCE, "another NIfTI file of this folder has the same series name")
        written.add(out_rel)
        if job.deid_out is not None:
            out = job.deid_out / f"{out_rel}.{job.tag}"
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(rewrite_nifti(image))
            result.written.append((rel, out_rel))
    except Exception as e:  # noqa: BLE001 - as for DICOM files: listed, never fatal
        _quarantine(result, rel, e, job.center, pseudonymizer)
        return
    if row is not None:
        result.manifest.append(row)
    if job.parts_out is not None:
        part = _SeriesPart(keys.patient, keys.study, keys.series, keys.label.sequence, relpaths=[out_rel])
        _normalise_series(part, lambda: volumes, job)
        _relabel(result.manifest, part)
        result.series.append(part)


def _normalise_series(part: _SeriesPart, volumes: Callable[[], list[Volume]], job: _Job) -> None:
    """Normalise the series' volumes into part files; a series that fails is marked unusable (``bad_geometry``
    for an unusable voxel grid, else ``normalisation_failed``) and the run goes on with the next series.

    A series labelled ``unknown`` is labelled from its voxels first (:mod:`brainfm.imaging.sequence_content`):
    its whole volumes exist only here."""
    assert job.parts_out is not None
    try:
        built = volumes()
        if part.sequence == UNKNOWN.sequence:
            content = sequence_from_content(built)
            part.sequence, part.source = (content, "content") if content else (part.sequence, UNKNOWN.source)
        for v, volume in enumerate(built):
            done = normalize_volume(volume, job.thresholds)
            name = f"{job.tag}-{part.series}-{v}.npy"
            np.save(job.parts_out / name, done.slices)
            part.volumes.append(_VolumePart(name, done.slice_index, done.excluded, done.plane, volume.b_value))
    except Exception as e:  # noqa: BLE001 - one bad series must never stop the center; it gets a QC row
        part.volumes = []  # part files already written are removed with the parts folder
        part.unusable = "bad_geometry" if isinstance(e, GeometryError) else "normalisation_failed"


def _relabel(rows: list[dict[str, Any]], part: _SeriesPart) -> None:
    """Give the manifest rows of ``part``'s series that no header or name labelled (source ``content`` or
    ``none``) the label the series ended with: what its voxels said (source ``content``), else ``unknown``
    (source ``none``; also where the series could not be normalised)."""
    if part.source is None and part.sequence != UNKNOWN.sequence:
        return  # labelled by its headers, names or the caller: each row keeps its own label
    for row in rows:
        if row.get("series") == part.series and row.get("sequence_source") in ("content", UNKNOWN.source):
            row["sequence"], row["sequence_source"] = part.sequence, part.source or UNKNOWN.source


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


T = TypeVar("T")
Progress = Callable[[int, int], None]  # (folders done, folders in all), called after each folder
_BROKEN_POOL = (
    "A worker process died while starting or running (workers > 1). If you call brainfm from a Python script, "
    "put the call under `if __name__ == \"__main__\":`: worker processes (multiprocessing's forkserver) import "
    "the script again, and an unguarded call starts the whole ingest again inside each of them. Otherwise pass "
    "workers=1, or check the machine's memory (the kernel may have killed a worker)."
)


def _map(
    fn: Callable[[_Job], T], jobs: list[_Job], workers: int, desc: str, progress: Progress | None = None
) -> Iterator[T]:
    """Ordered results of ``fn`` over jobs, computed by this process and ``workers - 1`` pool processes.

    This process takes jobs from the end of the list while the pool (forkserver) takes them from the front,
    so no time is lost while the pool's processes start and import their modules (about 1.5 s, as long as a
    whole small center takes), and ``workers`` processes are busy in total.
    """
    bar = tqdm(total=len(jobs), desc=desc, unit="folder", disable=None)  # disabled without a terminal
    finished = 0

    def tick() -> None:
        nonlocal finished
        finished += 1
        bar.update()
        if progress is not None:
            progress(finished, len(jobs))

    if workers <= 1 or len(jobs) <= 1:
        for job in jobs:
            result = fn(job)
            tick()
            yield result
        bar.close()
        return
    context = get_context("forkserver")
    context.set_forkserver_preload([__name__])  # pool processes start with pydicom, numpy, scipy imported
    results: dict[int, T] = {}
    front, back, emitted = 0, len(jobs), 0
    running: dict[Future[T], int] = {}
    with ProcessPoolExecutor(workers - 1, mp_context=context) as pool:
        while emitted < len(jobs):
            while front < back and len(running) < 2 * (workers - 1):  # keep the pool fed, not flooded
                running[pool.submit(fn, jobs[front])] = front
                front += 1
            if front < back:
                back -= 1
                results[back] = fn(jobs[back])
                tick()
                done = {f for f in running if f.done()}
            else:
                done = wait(running, return_when=FIRST_COMPLETED).done
            for future in done:
                try:
                    results[running.pop(future)] = future.result()
                except BrokenProcessPool as e:
                    raise RuntimeError(_BROKEN_POOL) from e
                tick()
            while emitted in results:
                yield results.pop(emitted)
                emitted += 1
    bar.close()


def _keep_first_copies(results: list[_JobResult], stage: Path, key: bytes) -> None:
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


def _write_slices(
    results: list[_JobResult], stage: Path, deid_root: Path, center: str, seed: int, thresholds: QCThresholds,
    unreadable: list[QuarantineEntry],
) -> NormalizeSummary:  # fmt: skip
    """Merge per-job series parts into shards + index.parquet + qc.parquet (order independent of workers).

    ``unreadable``: de-identified files that could not be read (:func:`normalize_center`), one QC row each.
    """
    parts_dir = stage / _PARTS
    grouped: dict[str, list[_SeriesPart]] = defaultdict(list)
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
        job = _Job(
            deid_root, files, center, b"", False, None, parts_dir, thresholds, f"merged{i:06d}",
            {series: labels.most_common(1)[0][0]},
        )  # fmt: skip
        merged = _run_job(job)
        for result in results:
            for part in merged.series:
                _relabel(result.manifest, part)
        grouped[series] = merged.series
        unreadable = unreadable + merged.quarantined
    parts = sorted((ps[0] for ps in grouped.values()), key=lambda p: (p.patient, p.study, p.series))
    sides = split_patients([p.patient for p in parts], PRETRAIN_TRAIN_FRACTION, seed)
    writer = ShardWriter(stage)
    index: list[dict[str, Any]] = []
    qc: list[dict[str, Any]] = []
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
    qc += [_unreadable_row(entry, center) for entry in sorted(unreadable, key=lambda e: e.path)]
    writer.flush()
    for path in parts_dir.iterdir():
        path.unlink()
    parts_dir.rmdir()
    index_df = pl.DataFrame(index, schema=INDEX_SCHEMA)
    qc_df = pl.DataFrame(qc, schema=QC_SCHEMA)
    index_df.write_parquet(stage / INDEX_FILE)
    qc_df.write_parquet(stage / QC_FILE)
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
) -> tuple[list[_JobResult], NormalizeSummary | None]:
    if not root.is_dir():
        raise FileNotFoundError(f"Input folder {root} does not exist or is not a folder; pass the center's folder.")
    with contextlib.ExitStack() as stack:
        deid_stage = stack.enter_context(atomic_directory(deid_dir, staging_dir)) if deid_dir else None
        slice_stage = stack.enter_context(atomic_directory(slices_dir, staging_dir)) if slices_dir else None
        parts = None
        if slice_stage is not None:
            parts = slice_stage / _PARTS
            parts.mkdir()
        labels = sequences or {}
        folders, links = _folders(root)
        jobs = [
            _Job(root, files, center, key, deidentify, deid_stage, parts, thresholds, f"{i:06d}", labels)
            for i, files in enumerate(folders)
        ]
        results = list(_map(_run_job, jobs, workers, center, progress))
        listed = _JobResult()
        for rel in links:
            detail = "symbolic links are not followed: copy the file itself into the center folder"
            _quarantine(listed, rel, BadInput(Reason.SYMLINK, detail), center, Pseudonymizer(key) if deidentify else None)
        results.append(listed)
        if deid_stage is not None:
            _keep_first_copies(results, deid_stage, key)
        summary = None
        if slice_stage is not None:
            # Input already de-identified: a file it cannot read is listed in the QC table, not lost.
            unreadable = [] if deidentify else [e for r in results for e in r.quarantined]
            summary = _write_slices(
                results, slice_stage, deid_stage or root, center, seed, thresholds, unreadable
            )
    return results, summary


def _deid_summary(results: list[_JobResult], quarantine_path: Path) -> DeidSummary:
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
    """Normalise a de-identified tree into 256×256 uint8 shards + index.parquet + qc.parquet (atomically).

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
