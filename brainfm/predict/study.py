"""One study read and ingested exactly as training ingests a center, and the way back to its geometry.

The study folder is handed to :func:`brainfm.ingest.ingest_center` as a center of its own (the one ingest
path: the same reading, quarantine, de-identification, sequence labels, QC and 256×256 normalisation as
training), into a temporary folder. NIfTI files lying directly in the study folder are first linked into the
``<patient>/<study>/<series>.nii[.gz]`` layout the ingest reads NIfTI sites in (docs/DATA_CONTRACT.md §2).

The other direction, for writing predictions back: :func:`slices_to_volume` takes label slices drawn on the
normalised slices into a series volume's voxel grid (the inverse of
:func:`brainfm.imaging.masks.mask_slices`), and :func:`frame_slices` finds, for each frame of an original
DICOM file, its slice in that grid.
"""

from __future__ import annotations

import os
import shutil
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import nibabel as nib
import numpy as np
import polars as pl
from nibabel.processing import resample_from_to
from pydicom.dataset import Dataset

from brainfm.dicom.manifest import file_token
from brainfm.dicom.nifti_input import sidecar_path
from brainfm.dicom.quarantine import QuarantineEntry, read_quarantine
from brainfm.dicom.reading import frame_geometries, read_dataset
from brainfm.imaging.masks import volume_geometry
from brainfm.imaging.nifti import is_nifti
from brainfm.imaging.normalize import SIZE
from brainfm.imaging.shards import INDEX_FILE, QC_FILE, VOLUMES_FILE
from brainfm.ingest import ingest_center
from brainfm.pseudonym import Pseudonymizer

PREDICT_CENTER = "predict"  # the center name of the temporary ingest (part of its patient pseudonym)
_LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0])
# A frame's first pixel lies this close (voxels) to the grid's row 0, column 0 and one of its slices.
_ON_GRID_VOXELS = 0.01


class StudyError(ValueError):
    """A study folder that cannot be predicted; the message says what is wrong and what to do."""


@dataclass(frozen=True)
class IngestedStudy:
    """A study after the training-time ingest (pseudonymous keys; the tables of docs/DATA_CONTRACT.md §3).

    ``root``: the folder the ingest read (the study folder for DICOM, the staged layout for NIfTI);
    quarantine paths and ``series_files`` (pseudonymous series UID → the files the ingest kept of it) are
    relative to it. ``warnings``: what was left out (files, series), for the user.
    """

    kind: Literal["dicom", "nifti"]
    root: Path
    slices_dir: Path
    patient: str
    study: str
    index: pl.DataFrame
    volumes: pl.DataFrame
    qc: pl.DataFrame
    quarantined: list[QuarantineEntry]
    series_files: dict[str, list[str]]
    warnings: list[str]


def ingest_study(
    study_dir: Path, work_dir: Path, pseudonymizer: Pseudonymizer, sequences: Collection[str]
) -> IngestedStudy:
    """Ingest one study folder (DICOM files in any layout, or NIfTI files directly in it) into ``work_dir``
    (which must be empty or absent) through :func:`brainfm.ingest.ingest_center`.

    Raises :class:`StudyError` for a folder with no usable MR image, several patients or studies mixed, series
    whose geometry gives no voxel grid, or no series of ``sequences`` (those the models read). Files the
    ingest quarantines and series it cannot normalise are listed in ``warnings`` while the rest of the study
    goes on.
    """
    study_dir = Path(study_dir)
    if not study_dir.is_dir():
        raise StudyError(
            f"{study_dir} is not a folder; pass the folder holding one study's DICOM or NIfTI files."
        )
    kind, root, warnings = _input_root(study_dir, work_dir / "input")
    summary = ingest_center(
        root, work_dir / "deidentified", work_dir / "slices", work_dir / "quarantine.jsonl", PREDICT_CENTER,
        pseudonymizer,
    )  # fmt: skip
    quarantined = read_quarantine(work_dir / "quarantine.jsonl")
    if kind == "nifti":  # named as in the study folder, where the staged files lie flat
        quarantined = [QuarantineEntry(Path(e.path).name, e.reason, e.detail) for e in quarantined]
    ok = summary.manifest.filter(pl.col("status") == "ok")
    if ok.is_empty():
        raise StudyError(
            f"No readable MR image in {study_dir}: {_files_line(quarantined)}. Pass the folder of a DICOM or NIfTI "
            "export (the quarantine reasons say what is wrong with each file)."
        )
    patients, studies = ok["patient"].n_unique(), ok["study"].n_unique()
    if patients > 1 or studies > 1:
        raise StudyError(
            f"{study_dir} mixes {patients} patient(s) and {studies} studies; `brainfm predict` reads one study. Put "
            "each study in a folder of its own and run `brainfm predict --batch` on their parent folder."
        )
    slices = work_dir / "slices"
    index, qc = pl.read_parquet(slices / INDEX_FILE), pl.read_parquet(slices / QC_FILE)
    unusable = qc.filter(pl.col("volume") == -1, pl.col("series").is_not_null())
    if index.filter(pl.col("sequence").is_in(list(sequences))).is_empty():
        raise StudyError(_no_series_message(study_dir, index, unusable, sequences))
    warnings += [
        f"file {e.path} quarantined ({e.reason}{': ' + e.detail if e.detail else ''})" for e in quarantined
    ]
    warnings += [
        f"{r['sequence']} series {r['series']} left out ({r['reason']})"
        for r in unusable.iter_rows(named=True)
    ]
    return IngestedStudy(
        kind=kind, root=root, slices_dir=slices, patient=str(ok["patient"][0]), study=str(ok["study"][0]),
        index=index, volumes=pl.read_parquet(slices / VOLUMES_FILE), qc=qc, quarantined=quarantined,
        series_files=_series_files(root, ok, pseudonymizer), warnings=warnings,
    )  # fmt: skip


def _input_root(study_dir: Path, staged: Path) -> tuple[Literal["dicom", "nifti"], Path, list[str]]:
    """The folder to ingest and a warning for files it leaves unread: the study folder itself for DICOM; for
    NIfTI files lying directly in it, hard links (copies across file systems) in ``staged/<study>/<study>/``,
    the patient/study layout the ingest reads a NIfTI site in (a NIfTI file in a subfolder would be a study
    of its own there), and every other file of the folder is left unread."""
    # A symbolic link is never followed (as the ingest quarantines it): it is listed as not read.
    names = sorted(
        p.name for p in study_dir.iterdir() if p.is_file() and not p.is_symlink() and is_nifti(p.name)
    )
    if not names:
        return "dicom", study_dir, []
    nested = [p for p in study_dir.rglob("*") if p.parent != study_dir and is_nifti(p.name)]
    if nested:
        raise StudyError(
            f"{study_dir} holds NIfTI files in subfolders (e.g. {nested[0].relative_to(study_dir)}); put the "
            "series files of one study directly in its folder."
        )
    folder = staged / study_dir.name / study_dir.name
    folder.mkdir(parents=True)
    read = set()
    for name in names:
        for source in (study_dir / name, sidecar_path(study_dir / name)):
            if source.is_file():
                _link(source, folder / source.name)
                read.add(source)
    others = sorted(
        p.relative_to(study_dir).as_posix() for p in study_dir.rglob("*") if p.is_file() and p not in read
    )
    warnings = (
        [f"{len(others)} file(s) beside the NIfTI series not read (e.g. {others[0]})"] if others else []
    )
    return "nifti", staged, warnings


def _link(source: Path, target: Path) -> None:
    """A hard link (no copy of the voxels), or a copy where the work folder is on another file system."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


def _files_line(quarantined: Sequence[QuarantineEntry]) -> str:
    if not quarantined:
        return "no files"
    reasons = Counter(str(e.reason) for e in quarantined)
    return (
        f"{len(quarantined)} file(s) quarantined ("
        + ", ".join(f"{k}={v}" for k, v in sorted(reasons.items()))
        + ")"
    )


def _no_series_message(
    study_dir: Path, index: pl.DataFrame, unusable: pl.DataFrame, sequences: Collection[str]
) -> str:
    """Why no slice of ``sequences`` came out of a study whose files were readable."""
    reasons = Counter(unusable["reason"].to_list())
    if reasons.get("bad_geometry"):
        return (
            f"Impossible geometry in {study_dir}: {reasons['bad_geometry']} series give no usable voxel grid "
            "(PixelSpacing, ImageOrientationPatient or the NIfTI affine is zero, not finite or degenerate). Export "
            "the series again from the scanner or PACS with their geometry."
        )
    if reasons and set(reasons) == {"not_mr"}:
        return f"No MR images in {study_dir}: its {len(unusable)} series are of another modality. Pass an MR study."
    if reasons:
        detail = ", ".join(f"{k}={v}" for k, v in sorted(reasons.items()))
        return f"No usable MR series in {study_dir}: every series was left out ({detail})."
    labels = sorted(set(index["sequence"].to_list())) or ["none"]
    return (
        f"No {'/'.join(sequences)} series in {study_dir} (series labelled {', '.join(labels)}): the models read "
        "only these; check the series descriptions or export the structural series."
    )


def slices_to_volume(labels: np.ndarray, slice_index: Sequence[int], volume: Mapping[str, Any]) -> np.ndarray:
    """uint8 label volume (rows, columns, slices) on the voxel grid of a ``volumes.parquet`` row, from label
    slices (n, 256, 256) drawn on its normalised slices at RAS ``slice_index``; slices without labels (QC
    excluded) are 0.

    The inverse of :func:`brainfm.imaging.masks.mask_slices`, with the same library: the slices, placed at
    their RAS mm (:meth:`~brainfm.imaging.normalize.SliceGeometry.to_ras`), are resampled onto the grid by
    nearest neighbour (``nibabel.processing.resample_from_to``, order 0). Where the normalisation enlarged the
    series in-plane this returns exactly the labels of the native voxels the slices were drawn from.
    """
    geometry = volume_geometry(volume)
    if labels.shape[1:] != (SIZE, SIZE) or len(labels) != len(slice_index):
        raise ValueError(f"expected one (256, 256) label slice per slice index, got {labels.shape}")
    stack = np.zeros((len(geometry.slice_index), SIZE, SIZE), dtype=np.uint8)
    stack[list(slice_index)] = labels
    drawn = nib.Nifti1Image(stack, geometry.to_ras())
    on_grid = resample_from_to(
        drawn, (geometry.shape, geometry.affine), order=0, mode="grid-constant", cval=0
    )
    return np.asarray(on_grid.dataobj).astype(np.uint8)


def _series_files(root: Path, ok: pl.DataFrame, pseudonymizer: Pseudonymizer) -> dict[str, list[str]]:
    """Pseudonymous series UID → the input files (relative to ``root``, sorted) of the manifest's ``ok`` rows,
    found by the manifest's keyed token of each path (``brainfm.dicom.manifest.file_token``)."""
    series = dict(zip(ok["file"].to_list(), ok["series"].to_list(), strict=True))
    out: dict[str, list[str]] = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root).as_posix()
        if (key := series.get(file_token(pseudonymizer, rel))) is not None:
            out.setdefault(key, []).append(rel)
    return out


def series_sources(study: IngestedStudy, series: str) -> list[Dataset]:
    """The original (identifying) DICOM datasets of the de-identified ``series``, in file order: the instances
    a DICOM SEG must reference for a viewer to lay it over the study (the files the ingest kept of it)."""
    return [read_dataset(study.root / rel) for rel in study.series_files.get(series, [])]


def frame_slices(source: Dataset, volume: Mapping[str, Any]) -> list[int]:
    """For each frame of an original DICOM dataset, its slice (third voxel index) in the voxel grid of a
    ``volumes.parquet`` row built from its series; raises :class:`StudyError` for a frame off that grid."""
    inverse = np.linalg.inv(np.reshape(np.asarray(volume["affine"], dtype=np.float64), (4, 4)))
    slices = []
    for geometry in frame_geometries(source):
        if geometry.position_mm is None:
            raise StudyError(
                "a frame of the segmented series has no ImagePositionPatient: no DICOM SEG can be placed"
            )
        voxel = inverse[:3, :3] @ (_LPS_TO_RAS @ np.asarray(geometry.position_mm)) + inverse[:3, 3]
        k = round(float(voxel[2]))
        if np.abs(voxel - [0.0, 0.0, k]).max() > _ON_GRID_VOXELS or not 0 <= k < volume["shape"][2]:
            raise StudyError(
                f"a frame of the segmented series lies off its volume's voxel grid (voxel {voxel.round(3).tolist()}); "
                "the series mixes geometries: export it again"
            )
        slices.append(k)
    return slices
