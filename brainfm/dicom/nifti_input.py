"""NIfTI files in a center folder: their pseudonymous keys, sequence type, manifest row and output name.

A site exporting NIfTI lays a center out as ``<patient>/<study>/<series>.nii[.gz]`` (deeper study folders are
joined), optionally with a ``<series>.json`` sidecar as dcm2niix writes it. The folder and file names may hold
identifiers, so on input they only feed keyed pseudonyms; the de-identified copy is
``<patient>/<study>/<series>/<sequence>.nii`` (uncompressed; pseudonymous keys, sequence type from the sidecar or
name, T1|T2|FLAIR|DWI|other|unknown), from which :func:`nifti_keys` reads the keys back verbatim when a
de-identified tree is normalised. An ``unknown`` series is labelled from its voxels where it is normalised.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import nibabel as nib
import numpy as np
from pydicom.dataset import Dataset

from brainfm.dicom.manifest import file_token, plane_name
from brainfm.dicom.quarantine import BadInput, Reason
from brainfm.dicom.reading import SEQUENCE_TYPES, UNKNOWN, SequenceLabel, infer_sequence
from brainfm.imaging.nifti import nifti_stem
from brainfm.pseudonym import Pseudonymizer, center_patient_key

TRANSFER_SYNTAX = "nifti"  # the manifest's transfer_syntax for NIfTI input
_SECONDS_TO_MS = 1000.0  # BIDS sidecars give times in seconds; the sequence rules use ms as DICOM does
# Sidecar keys (dcm2niix/BIDS names) that feed the sequence rules; every other key, identifying or not, is ignored.
_TEXT_KEYS = ("SeriesDescription", "ProtocolName", "SequenceName", "PulseSequenceName")
_TIME_KEYS = ("RepetitionTime", "EchoTime", "InversionTime")


@dataclass(frozen=True)
class NiftiKeys:
    """Pseudonymous keys of one NIfTI file (one series) and its sequence type with its source."""

    patient: str
    study: str
    series: str
    label: SequenceLabel

    def output_relpath(self) -> str:
        """Where its de-identified copy goes, relative to the output folder."""
        return f"{self.patient}/{self.study}/{self.series}/{self.label.sequence}.nii"


def sidecar_path(path: Path) -> Path:
    """The dcm2niix/BIDS JSON sidecar of a NIfTI file: same folder, same stem."""
    return path.with_name(nifti_stem(path.name) + ".json")


def nifti_keys(root: Path, relpath: str, pseudonymizer: Pseudonymizer | None, center: str) -> NiftiKeys:
    """Keys of the NIfTI file ``root/relpath``: pseudonymised from an input layout (the patient folder within
    ``center``), or, with no pseudonymizer, read from a de-identified layout. Raises BadInput(missing_uid) for
    a file lying too shallow."""
    parts = PurePosixPath(relpath).parts
    if len(parts) < 3:
        raise BadInput(Reason.MISSING_UID, "a NIfTI file must lie at <patient>/<study>/<series>.nii[.gz]")
    if pseudonymizer is None:
        sequence = nifti_stem(parts[-1])
        if len(parts) != 4 or sequence not in SEQUENCE_TYPES:
            raise BadInput(Reason.MISSING_UID, "not a de-identified <patient>/<study>/<series>/<sequence>.nii")
        named = SequenceLabel(sequence, "name")  # type: ignore[arg-type]
        return NiftiKeys(parts[0], parts[1], parts[2], UNKNOWN if sequence == UNKNOWN.sequence else named)
    patient, study = parts[0], "/".join(parts[1:-1])
    series = f"{patient}/{study}/{nifti_stem(parts[-1])}"
    return NiftiKeys(
        # A folder named by PatientID links to the same pseudonym as the DICOM files of that patient.
        patient=pseudonymizer.patient_id(center_patient_key(center, patient)),
        study=pseudonymizer.uid(f"nifti:{patient}/{study}"),
        series=pseudonymizer.uid(f"nifti:{series}"),
        label=infer_sequence(_sequence_header(root / relpath)),
    )


def _sequence_header(path: Path) -> Dataset:
    """A DICOM-like header for :func:`infer_sequence`: the sidecar's sequence fields (times in ms), else the
    file name as the series description."""
    sidecar = _read_sidecar(sidecar_path(path))
    ds = Dataset()
    ds.Modality = "MR"  # NIfTI input is taken as MR: sites export their brain MR series this way
    for key in _TEXT_KEYS:
        if isinstance(sidecar.get(key), str):
            setattr(ds, key, sidecar[key])
    if "SeriesDescription" not in ds and "ProtocolName" not in ds:
        ds.SeriesDescription = nifti_stem(path.name)
    for key in _TIME_KEYS:
        if isinstance(sidecar.get(key), (int, float)):
            setattr(ds, key, f"{sidecar[key] * _SECONDS_TO_MS:.6g}")
    if isinstance(sidecar.get("ImageType"), list):
        ds.ImageType = [str(v) for v in sidecar["ImageType"]]
    if isinstance(sidecar.get("ScanningSequence"), str):
        ds.ScanningSequence = sidecar["ScanningSequence"].split("_")  # dcm2niix joins multiple values with "_"
    if isinstance(sidecar.get("DiffusionBValue"), (int, float)):
        ds.DiffusionBValue = float(sidecar["DiffusionBValue"])
    return ds


def _read_sidecar(path: Path) -> dict[str, Any]:
    """The sidecar's JSON object, or {} when there is none or it is not a JSON object."""
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def nifti_row(
    image: nib.Nifti1Image, keys: NiftiKeys, relpath: str, center: str, pseudonymizer: Pseudonymizer
) -> dict[str, Any]:
    """The manifest row of a readable NIfTI file (one file is one series and one instance)."""
    shape = image.shape + (1,) * (4 - len(image.shape))
    zooms = image.header.get_zooms() + (0.0,) * 3
    directions = image.affine[:3, :3] / np.maximum(np.linalg.norm(image.affine[:3, :3], axis=0), 1e-12)
    return {
        "center": center,
        "file": file_token(pseudonymizer, relpath),
        "status": "ok",
        "patient": keys.patient,
        "study": keys.study,
        "series": keys.series,
        "instance": keys.series,
        "sop_class": None,
        "modality": "MR",
        "sequence": keys.label.sequence,
        "sequence_source": keys.label.source,
        "transfer_syntax": TRANSFER_SYNTAX,
        "rows": int(shape[0]),
        "columns": int(shape[1]),
        "frames": int(np.prod(shape[2:])),
        "row_spacing_mm": float(zooms[0]),
        "column_spacing_mm": float(zooms[1]),
        "slice_thickness_mm": float(zooms[2]),
        "plane": plane_name(tuple(directions[:, 0]) + tuple(directions[:, 1])),
        "manufacturer": None,
    }
