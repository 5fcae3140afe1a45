"""DICOM series: real MR storage, per-vendor conventions, planted identifiers, bad files as listed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.uid import (
    EnhancedMRImageStorage,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    MRImageStorage,
    RLELossless,
)

from brainfm.synth import read_series


def _series(manifest: dict, center: str, sequence: str) -> dict:
    study = next(s for s in manifest["studies"].values() if s["center"] == center)
    return next(s for s in study["series"] if s["sequence"] == sequence)


def _first(raw: Path, series: dict) -> pydicom.Dataset:
    return pydicom.dcmread(raw / series["dir"] / series["files"][0])


def test_identifiers_are_planted_where_exports_carry_them(raw: Path, manifest: dict) -> None:
    study = next(iter(manifest["studies"].values()))
    ds = _first(raw, study["series"][0])
    assert ds.SpecificCharacterSet == "ISO_IR 192"
    assert ds.PatientName.ideographic and ds.PatientName.alphabetic
    ids = manifest["identifiers"]
    assert str(ds.PatientName) in ids["patient_name"]
    assert ds.PatientID in ids["patient_id"] and ds.OtherPatientIDs in ids["national_id"]
    assert ds.PatientBirthDate in ids["birth_date"] and ds.StudyDate in ids["study_date"]
    assert ds.AccessionNumber in ids["accession"] and ds.InstitutionName in ids["institution"]
    for tag in ("ReferringPhysicianName", "PerformingPhysicianName", "OperatorsName"):
        assert str(ds.data_element(tag).value)
    request = ds.RequestAttributesSequence[0]
    assert ds.PatientID in request.ScheduledProcedureStepDescription
    private = ds.private_block(0x0011, "HOSPITAL PACS EXPORT")
    assert private[0x01].value in ids["patient_name"]
    assert ds.PatientID in ds.ImageComments


@pytest.mark.parametrize("center", ["center_a", "center_b", "center_c", "center_d"])
def test_sequences_recognisable_from_headers_and_geometry_consistent(
    raw: Path, manifest: dict, center: str
) -> None:
    timings = {}
    for seq in ("T1", "T2", "FLAIR"):
        ds = _first(raw, _series(manifest, center, seq))
        timings[seq] = (float(ds.RepetitionTime), float(ds.EchoTime), float(ds.get("InversionTime", 0)))
        assert ds.SOPClassUID == MRImageStorage and ds.Modality == "MR"
        assert list(ds.ImageOrientationPatient) == [1, 0, 0, 0, 1, 0]
        assert float(ds.SliceThickness) >= 5.0
        assert ds.Rows == ds.Columns == manifest["centers"][center]["matrix"]
    assert timings["T1"][0] < 1000 and timings["T1"][1] < 30  # short TR, short TE
    assert timings["T2"][0] > 2000 and timings["T2"][1] > 80  # long TR, long TE
    assert (
        timings["FLAIR"][2] > 1500
        and "IR" in _first(raw, _series(manifest, center, "FLAIR")).ScanningSequence
    )
    _, z = read_series(raw / _series(manifest, center, "T2")["dir"])
    assert np.allclose(np.diff(z), manifest["centers"][center]["slice_spacing_mm"], atol=1e-3)
    dwi_b1000, _ = read_series(raw / _series(manifest, center, "DWI")["dir"], 1000)
    dwi_b0, _ = read_series(raw / _series(manifest, center, "DWI")["dir"], 0)
    assert dwi_b1000.mean() < dwi_b0.mean()  # diffusion weighting attenuates


def test_transfer_syntaxes_enhanced_and_private_diffusion_tags(raw: Path, manifest: dict) -> None:
    assert (
        _first(raw, _series(manifest, "center_b", "T1")).file_meta.TransferSyntaxUID == ImplicitVRLittleEndian
    )
    assert _first(raw, _series(manifest, "center_d", "T1")).file_meta.TransferSyntaxUID == RLELossless
    assert _first(raw, _series(manifest, "center_c", "FLAIR")).file_meta.TransferSyntaxUID == JPEG2000Lossless
    enhanced = _series(manifest, "center_c", "DWI")
    ds = _first(raw, enhanced)
    assert ds.SOPClassUID == EnhancedMRImageStorage and len(enhanced["files"]) == 1
    assert int(ds.NumberOfFrames) == 2 * manifest["centers"]["center_c"]["n_slices"]
    b_values = {float(f.MRDiffusionSequence[0].DiffusionBValue) for f in ds.PerFrameFunctionalGroupsSequence}
    assert b_values == {0.0, 1000.0}
    siemens = _series(manifest, "center_a", "DWI")
    last = pydicom.dcmread(raw / siemens["dir"] / siemens["files"][-1])
    assert float(last.DiffusionBValue) == 1000.0
    assert last.private_block(0x0019, "SIEMENS MR HEADER")[0x0C].value == 1000


def test_bad_files_fail_as_listed_and_burned_in_is_flagged(raw: Path, manifest: dict) -> None:
    assert sorted(set(manifest["bad_files"].values())) == [
        "empty_file",
        "missing_pixel_data",
        "not_dicom",
        "truncated",
    ]
    for rel, reason in manifest["bad_files"].items():
        path = raw / rel
        if reason == "empty_file":
            assert path.stat().st_size == 0
        elif reason == "not_dicom":
            with pytest.raises(pydicom.errors.InvalidDicomError):
                pydicom.dcmread(path)
        elif reason == "missing_pixel_data":
            ds = pydicom.dcmread(path)
            assert "PixelData" not in ds and ds.Rows > 0
        else:
            with pytest.raises(Exception):  # noqa: B017 - pydicom raises different errors by where it cuts
                pydicom.dcmread(path).pixel_array  # noqa: B018
    [burned] = manifest["burned_in"]
    files = sorted((raw / burned).iterdir())
    ds = pydicom.dcmread(files[0])
    assert ds.BurnedInAnnotation == "YES"
    assert ds.pixel_array[:14].max() == ds.pixel_array.max()  # the text band holds the brightest pixels
