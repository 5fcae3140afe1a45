"""Per-folder work of an ingest: read each file once; de-identify and write it and/or collect its frames
per series; normalise the series into part files. Runs in the calling process or a pool worker."""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pydicom import config as pydicom_config
from pydicom.dataset import Dataset

from brainfm.dicom.codec import Header
from brainfm.dicom.deid import Deidentifier, identifying_values, patient_key
from brainfm.dicom.diffusion import b_values
from brainfm.dicom.export import output_relpath, write_deidentified
from brainfm.dicom.leaks import OwnIdentifierSearch, dicom_text
from brainfm.dicom.manifest import bad_row, instance_row
from brainfm.dicom.mosaic import mosaic_of, untile
from brainfm.dicom.nifti_input import nifti_keys, nifti_row, sidecar_path
from brainfm.dicom.quarantine import BadInput, QuarantineEntry, Reason
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
from brainfm.imaging.normalize import SliceGeometry, normalize_volume
from brainfm.imaging.qc import QCThresholds
from brainfm.imaging.sequence_content import sequence_from_content
from brainfm.imaging.volumes import Frame, GeometryError, Volume, build_volumes
from brainfm.pseudonym import Pseudonymizer


@dataclass(frozen=True)
class Job:
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
class VolumePart:
    file: str  # part file name under parts_out
    slice_index: list[int]
    excluded: list[tuple[int, str]]
    plane: str
    b_value: float | None
    geometry: SliceGeometry  # the volume's voxel grid and its display mapping (volumes.parquet)


@dataclass
class SeriesPart:
    patient: str
    study: str
    series: str
    sequence: str
    relpaths: list[str]  # de-identified relative paths of the series' files in this job
    volumes: list[VolumePart] = field(default_factory=list)
    unusable: str | None = None  # series-level exclusion reason
    source: SequenceSource | None = None  # "content" or "none" once the voxels of an unknown series were read


@dataclass
class JobResult:
    manifest: list[dict[str, Any]] = field(default_factory=list)
    quarantined: list[QuarantineEntry] = field(default_factory=list)
    written: list[tuple[str, str]] = field(default_factory=list)  # (input path, output path), both relative
    series: list[SeriesPart] = field(default_factory=list)
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


def run_job(job: Job) -> JobResult:
    """Read every file of one folder once; de-identify/write and/or collect frames per series; normalise."""
    with _quiet_pydicom():
        return _process_job(job)


def _process_job(job: Job) -> JobResult:
    pseudonymizer = Pseudonymizer(job.key) if job.deidentify else None
    deidentifier = Deidentifier(pseudonymizer, job.center) if pseudonymizer else None
    result = JobResult()
    frames: dict[str, list[Frame]] = defaultdict(list)
    series: dict[str, SeriesPart] = {}
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
            quarantine_file(result, rel, e, job.center, pseudonymizer)
            continue
        if row is not None:
            result.manifest.append(row)
        if job.parts_out is None:
            continue
        key = str(ds.get("SeriesInstanceUID"))
        part = series.setdefault(
            key, SeriesPart(str(ds.get("PatientID")), str(ds.get("StudyInstanceUID")), key, "other", relpaths=[])
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
        relabel(result.manifest, part)
        result.series.append(part)
    return result


def quarantine_file(
    result: JobResult, rel: str, error: Exception, center: str, pseudonymizer: Pseudonymizer | None
) -> None:
    """List a file that failed with ``error`` (BadInput, else taken as corrupt) in the quarantine and manifest."""
    bad = error if isinstance(error, BadInput) else BadInput(Reason.CORRUPT, f"{type(error).__name__}: {error}"[:200])
    result.quarantined.append(QuarantineEntry(rel, bad.reason, bad.detail))
    if pseudonymizer:
        result.manifest.append(bad_row(rel, center, bad.reason, pseudonymizer))


def _nifti_file(
    job: Job, rel: str, pseudonymizer: Pseudonymizer | None, written: set[str], result: JobResult
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
        quarantine_file(result, rel, e, job.center, pseudonymizer)
        return
    if row is not None:
        result.manifest.append(row)
    if job.parts_out is not None:
        part = SeriesPart(keys.patient, keys.study, keys.series, keys.label.sequence, relpaths=[out_rel])
        _normalise_series(part, lambda: volumes, job)
        relabel(result.manifest, part)
        result.series.append(part)


def _normalise_series(part: SeriesPart, volumes: Callable[[], list[Volume]], job: Job) -> None:
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
            part.volumes.append(
                VolumePart(name, done.slice_index, done.excluded, done.plane, volume.b_value, done.geometry)
            )
    except Exception as e:  # noqa: BLE001 - one bad series must never stop the center; it gets a QC row
        part.volumes = []  # part files already written are removed with the parts folder
        part.unusable = "bad_geometry" if isinstance(e, GeometryError) else "normalisation_failed"


def relabel(rows: list[dict[str, Any]], part: SeriesPart) -> None:
    """Give the manifest rows of ``part``'s series that no header or name labelled (source ``content`` or
    ``none``) the label the series ended with: what its voxels said (source ``content``), else ``unknown``
    (source ``none``; also where the series could not be normalised)."""
    if part.source is None and part.sequence != UNKNOWN.sequence:
        return  # labelled by its headers, names or the caller: each row keeps its own label
    for row in rows:
        if row.get("series") == part.series and row.get("sequence_source") in ("content", UNKNOWN.source):
            row["sequence"], row["sequence_source"] = part.sequence, part.source or UNKNOWN.source


