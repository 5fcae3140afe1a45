"""Small synthetic MR series with planted identifiers, written with pydicom, for the DICOM tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, JPEGBaseline8Bit, MRImageStorage, generate_uid

from brainfm.pseudonym import Pseudonymizer

IDENTIFIERS = ["张伟", "Zhang Wei", "ZW-00042", "Renmin Hospital", "Dr Li Na", "13800138000", "19700315"]


def phantom(n_slices: int, size: int = 48, seed: int = 0) -> np.ndarray:
    """An ellipsoid 'head' with noise, (slices, rows, cols) uint16; the outer slices are empty of head."""
    rng = np.random.default_rng(seed)
    z, y, x = np.meshgrid(
        np.linspace(-1.3, 1.3, n_slices), np.linspace(-1, 1, size), np.linspace(-1, 1, size), indexing="ij"
    )
    head = (x / 0.8) ** 2 + (y / 0.9) ** 2 + z**2 < 1
    image = np.where(head, 800 + 200 * np.cos(6 * x), 0) + rng.normal(10, 3, head.shape)
    return np.clip(image, 0, 4000).astype(np.uint16)


def write_series(
    folder: Path, *, patient_id: str = "ZW-00042", name: str = "Zhang Wei=张伟", n_slices: int = 12,
    description: str = "T1 MPRAGE AX 张伟", study_uid: str | None = None, seed: int = 0,
) -> list[Dataset]:  # fmt: skip
    """Write one axial series (GB18030 text, private tags, overlay, nested identifiers) into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    study_uid = study_uid or generate_uid()
    series_uid, frame_uid = generate_uid(), generate_uid()
    volume = phantom(n_slices, seed=seed)
    sop_uids = [generate_uid() for _ in range(n_slices)]
    out = []
    for k in range(n_slices):
        ds = Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.file_meta.MediaStorageSOPClassUID = MRImageStorage
        ds.file_meta.MediaStorageSOPInstanceUID = sop_uids[k]
        ds.SpecificCharacterSet = "GB18030"
        ds.SOPClassUID, ds.SOPInstanceUID = MRImageStorage, sop_uids[k]
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study_uid, series_uid, frame_uid
        ds.Modality, ds.Manufacturer = "MR", "SIEMENS"
        ds.PatientName, ds.PatientID, ds.PatientBirthDate, ds.PatientSex = name, patient_id, "19700315", "M"
        ds.PatientAge, ds.PatientWeight = "054Y", "70"
        ds.InstitutionName, ds.ReferringPhysicianName = "Renmin Hospital", "Dr Li Na"
        ds.PatientTelephoneNumbers = "13800138000"
        ds.StudyDate = ds.SeriesDate = "20240110"
        ds.AcquisitionDateTime = "20240110093000.000000+0800"
        ds.StudyTime = "093000"
        ds.AccessionNumber = "ACC-ZW-00042"
        ds.SeriesDescription = ds.ProtocolName = description
        ds.ImageComments = "Zhang Wei follow-up, call 13800138000"
        ds.RepetitionTime, ds.EchoTime, ds.ScanningSequence = "2000", "3", "GR"
        ds.InstanceNumber = k + 1
        ds.ImagePositionPatient = [-100.0, -100.0, 4.0 * k]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.PixelSpacing, ds.SliceThickness = [4.0, 4.0], "4"
        ds.InPlanePhaseEncodingDirection = "COL"
        ds.Rows, ds.Columns = volume.shape[1:]
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
        ds.PixelData = volume[k].tobytes()
        ref = Dataset()
        ref.ReferencedSOPClassUID, ref.ReferencedSOPInstanceUID = MRImageStorage, sop_uids[(k + 1) % n_slices]
        ds.ReferencedImageSequence = Sequence([ref])
        request = Dataset()
        request.RequestingPhysician, request.RequestedProcedureID = "Dr Li Na", "ZW-00042"
        ds.RequestAttributesSequence = Sequence([request])
        block = ds.private_block(0x0019, "SIEMENS MR HEADER", create=True)
        block.add_new(0x0C, "IS", "0")  # B_value: safe private, kept
        block.add_new(0x50, "LO", "Zhang Wei")  # unknown private: removed
        ds.add_new(0x60000010, "US", volume.shape[1])  # overlay rows: removed
        ds.save_as(folder / f"{name.split('=')[0]}_{k:03d}.dcm", enforce_file_format=True)
        out.append(ds)
    return out


@pytest.fixture()
def pseudonymizer() -> Pseudonymizer:
    return Pseudonymizer(b"brainfm-test-secret-0123456789abcdef")


def make_center(root: Path) -> Path:
    """A center folder: two patients (one with two series in one study), plus one file of each bad kind."""
    study = generate_uid()
    write_series(root / "Zhang Wei" / "study1" / "t1", study_uid=study)
    write_series(root / "Zhang Wei" / "study1" / "t2", study_uid=study, description="AX T2 TSE", seed=1)
    write_series(root / "Wang Fang" / "s" / "flair", patient_id="WF-7", name="Wang Fang=王芳",
                 description="FLAIR 王芳", seed=2)  # fmt: skip
    bad = root / "bad"
    bad.mkdir()
    good = next((root / "Zhang Wei" / "study1" / "t1").iterdir()).read_bytes()
    (bad / "empty.dcm").write_bytes(b"")
    (bad / "truncated.dcm").write_bytes(good[: len(good) - 500])
    (bad / "notes.txt").write_text("Zhang Wei, not an image")
    nopix = write_series(root / "tmp_nopix", n_slices=1)[0]
    del nopix.PixelData
    nopix.save_as(bad / "nopixel.dcm", enforce_file_format=True)
    undecodable = write_series(root / "tmp_undec", n_slices=1)[0]
    undecodable.file_meta.TransferSyntaxUID = JPEGBaseline8Bit  # a JPEG stream with no image in it
    undecodable.PixelData = encapsulate([b"\xff\xd8" + b"\x00" * 100 + b"\xff\xd9"])
    undecodable.save_as(bad / "undecodable.dcm", enforce_file_format=True)
    burned = write_series(root / "tmp_burned", n_slices=1)[0]
    burned.BurnedInAnnotation = "YES"
    burned.save_as(bad / "burned.dcm", enforce_file_format=True)
    for tmp in ("tmp_nopix", "tmp_undec", "tmp_burned"):
        for f in (root / tmp).iterdir():
            f.unlink()
        (root / tmp).rmdir()
    return root


BAD_REASONS = {
    "bad/empty.dcm": "empty_file",
    "bad/truncated.dcm": "truncated",
    "bad/notes.txt": "not_dicom",
    "bad/nopixel.dcm": "missing_pixel_data",
    "bad/undecodable.dcm": "undecodable_pixels",
    "bad/burned.dcm": "burned_in_annotation",
}


@pytest.fixture(scope="session")
def cohort(raw: Path) -> Path:
    """The session's synthetic ``tiny`` cohort (tests/conftest.py; docs/DATA_CONTRACT.md section 1)."""
    return raw
