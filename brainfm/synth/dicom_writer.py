"""Write rendered volumes as DICOM MR series the way hospital PACS export them.

Classic MR Image Storage (one file per slice) in each center's transfer syntax, or Enhanced MR Image
Storage (one multi-frame file) where a center does so; vendor-specific descriptions, timing tags and
private tags; and identifiers planted in every place real exports carry them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import (
    PYDICOM_IMPLEMENTATION_UID,
    UID,
    EnhancedMRImageStorage,
    ExplicitVRLittleEndian,
    JPEG2000Lossless,
    MRImageStorage,
)

from brainfm.synth.centers import AcquisitionGrid
from brainfm.synth.identities import PatientIdentity
from brainfm.synth.profiles import CenterSpec
from brainfm.synth.sequences import Protocol

# Series descriptions per vendor convention (the ingestion stage infers the sequence from these and
# from the timing tags; center_d writes Chinese descriptions).
DESCRIPTIONS: dict[str, dict[str, str]] = {
    "siemens": {
        "T1": "t1_se_tra",
        "T2": "t2_tse_tra",
        "FLAIR": "t2_tirm_tra_dark-fluid",
        "DWI": "ep2d_diff_tra_trace",
    },
    "ge": {"T1": "Ax T1 SE", "T2": "Ax T2 FSE", "FLAIR": "Ax T2 FLAIR", "DWI": "Ax DWI 1000b"},
    "philips": {"T1": "T1W_SE_TRA", "T2": "T2W_TSE_TRA", "FLAIR": "T2W_FLAIR_TRA", "DWI": "DWI_TRA"},
    "uih": {"T1": "T1WI横断位", "T2": "T2WI横断位", "FLAIR": "T2FLAIR横断位", "DWI": "DWI横断位"},
}
SIEMENS_SEQUENCE_NAMES = {"T1": "*se2d1", "T2": "*tse2d1_15", "FLAIR": "*tir2d1_15", "DWI": "*ep_b{b}t"}
FILE_NAMES = {
    "siemens": "IMG{n:05d}.dcm",
    "ge": "i{n:05d}.MRDC",
    "philips": "IM_{n:04d}",
    "uih": "{n:08d}.dcm",
}
PACS_CREATOR = "HOSPITAL PACS EXPORT"  # private block holding the patient's name, as some exports do


def uid(*parts: object) -> UID:
    """A deterministic ``2.25.<128-bit integer>`` UID (PS3.5 B.2) hashed from ``parts`` (seed, accession, role).

    pydicom's ``generate_uid(prefix=None)`` ignores its entropy sources and is random, hence the hash here.
    """
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).digest()
    return UID(f"2.25.{int.from_bytes(digest[:16], 'big')}")


@dataclass(frozen=True)
class SeriesInfo:
    """What the writer needs to know about one series besides its pixels."""

    sequence: str
    protocol: Protocol
    series_number: int
    series_uid: str
    contrast: bool  # gadolinium given (T1 only shows it)
    burned_in: bool = False


@dataclass(frozen=True)
class StudyInfo:
    """Study-level context shared by its series."""

    seed: int
    center: CenterSpec
    identity: PatientIdentity
    sex: str  # "M" | "F"
    age_years: int
    study_uid: str
    frame_of_reference_uid: str
    history: str  # free text (symptoms), planted in AdditionalPatientHistory


def _da(d: date) -> str:
    return d.strftime("%Y%m%d")


def _patient_and_study(study: StudyInfo, series: SeriesInfo) -> Dataset:
    """Patient, study, equipment and series modules, with identifiers where exports carry them."""
    ident, center = study.identity, study.center
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.ImageType = (
        ["ORIGINAL", "PRIMARY", "M", "ND"]
        if series.sequence != "DWI"
        else ["ORIGINAL", "PRIMARY", "DIFFUSION", "TRACEW"]
    )
    ds.Modality = "MR"
    ds.Manufacturer = center.manufacturer
    ds.ManufacturerModelName = center.model
    ds.MagneticFieldStrength = center.field_strength_t
    ds.StationName = f"MR{center.center_id[-1].upper()}01"
    ds.InstitutionName = center.institution
    ds.InstitutionAddress = center.address
    ds.InstitutionalDepartmentName = "放射科"
    ds.PatientName = ident.person.dicom_pn
    ds.PatientID = ident.patient_id
    ds.OtherPatientIDs = ident.national_id
    ds.PatientBirthDate = _da(ident.birth_date)
    ds.PatientSex = study.sex
    ds.PatientAge = f"{study.age_years:03d}Y"
    ds.PatientTelephoneNumbers = ident.phone
    ds.AdditionalPatientHistory = study.history
    ds.ReferringPhysicianName = ident.referring.dicom_pn
    ds.PerformingPhysicianName = ident.performing.dicom_pn
    ds.OperatorsName = ident.operator.dicom_pn
    ds.RequestingPhysician = ident.referring.dicom_pn
    ds.StudyInstanceUID = study.study_uid
    ds.SeriesInstanceUID = series.series_uid
    ds.FrameOfReferenceUID = study.frame_of_reference_uid
    ds.StudyID = ident.accession[-6:]
    ds.AccessionNumber = ident.accession
    for tag in ("StudyDate", "SeriesDate", "AcquisitionDate", "ContentDate"):
        setattr(ds, tag, _da(ident.study_date))
    ds.StudyTime = ds.SeriesTime = "093000"
    ds.AcquisitionTime = ds.ContentTime = f"09{30 + series.series_number:02d}00"
    ds.StudyDescription = f"头颅MR平扫{'+增强' if series.contrast else ''} {ident.person.hanzi}"
    ds.SeriesNumber = series.series_number
    ds.SeriesDescription = DESCRIPTIONS[center.vendor][series.sequence] + (
        "+C" if series.contrast and series.sequence == "T1" else ""
    )
    ds.ProtocolName = ds.SeriesDescription
    ds.BodyPartExamined = "HEAD"
    ds.PatientPosition = "HFS"
    request = Dataset()
    request.RequestedProcedureID = ident.accession
    request.ScheduledProcedureStepID = f"SPS{ident.accession[-8:]}"
    request.ScheduledProcedureStepDescription = f"头颅MRI {ident.person.hanzi} {ident.patient_id}"
    request.RequestedProcedureDescription = "头颅MRI"
    ds.RequestAttributesSequence = Sequence([request])
    block = ds.private_block(0x0011, PACS_CREATOR, create=True)
    block.add_new(0x01, "LO", ident.person.hanzi)
    block.add_new(0x02, "LO", ident.patient_id)
    if series.burned_in:
        ds.BurnedInAnnotation = "YES"
    if series.contrast and series.sequence == "T1":
        ds.ContrastBolusAgent = "Gd-DTPA 0.1 mmol/kg"
    return ds


def _acquisition(
    ds: Dataset, center: CenterSpec, series: SeriesInfo, grid: AcquisitionGrid, enhanced: bool
) -> None:
    """MR acquisition descriptors per vendor convention (top level for classic images)."""
    p = series.protocol
    ds.ScanningSequence = p.scanning_sequence
    ds.SequenceVariant = p.sequence_variant
    ds.ScanOptions = "FS" if p.sequence == "DWI" else ""
    ds.MRAcquisitionType = "2D"
    if not enhanced:
        ds.RepetitionTime = round(p.tr_ms, 1)
        ds.EchoTime = round(p.te_ms, 1)
        if p.ti_ms is not None:
            ds.InversionTime = round(p.ti_ms, 1)
        ds.SliceThickness = grid.slice_thickness_mm
        ds.SpacingBetweenSlices = grid.slice_spacing_mm
        ds.PixelSpacing = [round(grid.pixel_mm, 6)] * 2
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.EchoTrainLength = {"T1": 1, "T2": 15, "FLAIR": 15, "DWI": 1}[p.sequence]
    ds.ImagingFrequency = round(42.577 * center.field_strength_t, 4)
    ds.ImagedNucleus = "1H"
    if center.vendor == "siemens":
        ds.SequenceName = SIEMENS_SEQUENCE_NAMES[p.sequence].format(b=max(p.b_values or (0,)))


def _pixel_module(ds: Dataset, rows: int, cols: int, window: tuple[float, float]) -> None:
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = rows, cols
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.WindowCenter, ds.WindowWidth = round(window[0], 1), round(window[1], 1)


def _vendor_diffusion(ds: Dataset, vendor: str, b: int) -> None:
    """DiffusionBValue (0018,9087) plus the vendor's private b-value tag where it has one."""
    ds.DiffusionBValue = float(b)
    ds.DiffusionDirectionality = "ISOTROPIC" if b else "NONE"
    if vendor == "siemens":  # CSA-style private header field, as Siemens VB/VE writes it
        block = ds.private_block(0x0019, "SIEMENS MR HEADER", create=True)
        block.add_new(0x0C, "IS", b)
        block.add_new(0x0D, "CS", "DIRECTIONAL" if b else "NONE")
    elif vendor == "ge":
        ds.private_block(0x0043, "GEMS_PARM_01", create=True).add_new(0x39, "IS", [b, 8, 0, 0])
    elif vendor == "philips":
        ds.private_block(0x2001, "Philips Imaging DD 001", create=True).add_new(0x03, "FL", float(b))


def burn_in(volume: np.ndarray, text: str) -> np.ndarray:
    """Stamp ASCII ``text`` into the top-left corner of every slice (as screen captures and some
    consoles do), at the volume's maximum value."""
    from PIL import Image, ImageDraw  # Pillow ships with matplotlib

    canvas = Image.new("L", (volume.shape[2], 14), 0)
    ImageDraw.Draw(canvas).text((2, 1), text, fill=255)
    ink = np.asarray(canvas) > 127
    out = volume.copy()
    out[:, : ink.shape[0], :][:, ink] = volume.max()
    return out


def _file_meta(sop_class: str, sop_uid: str, transfer_syntax: str) -> FileMetaDataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = transfer_syntax
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    meta.ImplementationVersionName = "BRAINFM_SYNTH"
    return meta


def _frames(images: dict[int, np.ndarray], inferior_first: bool) -> list[tuple[int, int, np.ndarray]]:
    """(b-value, slice index, pixels) in InstanceNumber order: by b-value, then slice order."""
    out = []
    for b, volume in sorted(images.items()):
        order = range(volume.shape[0]) if inferior_first else range(volume.shape[0] - 1, -1, -1)
        out += [(b, k, volume[k]) for k in order]
    return out


def _store(ds: Dataset, pixels: np.ndarray, transfer_syntax: str) -> None:
    """Set PixelData in ``transfer_syntax``; compressed syntaxes via pydicom's encoders."""
    if transfer_syntax in (ExplicitVRLittleEndian, "1.2.840.10008.1.2"):
        ds.PixelData = np.ascontiguousarray(pixels, dtype="<u2").tobytes()
    else:
        ds.compress(transfer_syntax, np.ascontiguousarray(pixels), generate_instance_uid=False)


def write_series(
    out_dir: Path,
    study: StudyInfo,
    series: SeriesInfo,
    images: dict[int, np.ndarray],
    grid: AcquisitionGrid,
    rescale_slope: float = 1.0,
) -> list[Path]:
    """Write one series into ``out_dir``; returns the files written (relative order = InstanceNumber)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    center = study.center
    special = center.special(series.sequence)
    transfer_syntax = JPEG2000Lossless if special == "jpeg2000" else center.transfer_syntax
    stored = {b: np.rint(v / rescale_slope).astype(np.uint16) for b, v in images.items()}
    window = _window(stored, rescale_slope)
    if special == "enhanced":
        return [_write_enhanced(out_dir, study, series, stored, grid, window, rescale_slope, transfer_syntax)]
    base = _patient_and_study(study, series)
    _acquisition(base, center, series, grid, enhanced=False)
    _pixel_module(base, grid.shape[1], grid.shape[2], window)
    base.SOPClassUID = MRImageStorage
    if center.vendor == "philips":
        base.RescaleSlope, base.RescaleIntercept, base.RescaleType = round(rescale_slope, 6), 0, "US"
    paths = []
    for n, (b, k, pixels) in enumerate(_frames(stored, center.inferior_first), start=1):
        ds = Dataset(dict(base.items()))
        sop = uid(study.seed, series.series_uid, n)
        ds.file_meta = _file_meta(MRImageStorage, sop, transfer_syntax)
        ds.SOPInstanceUID = sop
        ds.InstanceNumber = n
        position = grid.position_lps(k)
        ds.ImagePositionPatient = [round(float(x), 4) for x in position]
        ds.SliceLocation = round(float(position[2]), 4)
        if series.sequence == "DWI":
            _vendor_diffusion(ds, center.vendor, b)
        if n == 1:
            ds.ImageComments = f"患者{study.identity.person.hanzi} ID {study.identity.patient_id} 电话 {study.identity.phone}"
        _store(ds, pixels, transfer_syntax)
        path = out_dir / FILE_NAMES[center.vendor].format(n=n)
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def _window(stored: dict[int, np.ndarray], slope: float) -> tuple[float, float]:
    """Window centre/width (real-world values) from the 1st and 99th percentiles of the first volume."""
    lo, hi = np.percentile(next(iter(stored.values())), [1, 99]) * slope
    return (lo + hi) / 2, max(hi - lo, 1.0)


def _write_enhanced(
    out_dir: Path,
    study: StudyInfo,
    series: SeriesInfo,
    stored: dict[int, np.ndarray],
    grid: AcquisitionGrid,
    window: tuple[float, float],
    rescale_slope: float,
    transfer_syntax: str,
) -> Path:
    """One Enhanced MR Image Storage file with every frame (PS3.3 C.8.13), functional groups per frame."""
    p = series.protocol
    ds = _patient_and_study(study, series)
    _acquisition(ds, study.center, series, grid, enhanced=True)
    _pixel_module(ds, grid.shape[1], grid.shape[2], window)
    del ds.WindowCenter, ds.WindowWidth  # enhanced images carry them in FrameVOILUTSequence
    ds.ImageType = (
        ["ORIGINAL", "PRIMARY", "DIFFUSION", "NONE"]
        if p.sequence == "DWI"
        else ["ORIGINAL", "PRIMARY", "M", "NONE"]
    )
    ds.SOPClassUID = EnhancedMRImageStorage
    ds.SOPInstanceUID = uid(study.seed, series.series_uid, "enhanced")
    ds.InstanceNumber = 1
    ds.file_meta = _file_meta(EnhancedMRImageStorage, ds.SOPInstanceUID, transfer_syntax)
    ds.ContentQualification = "PRODUCT"
    ds.ResonantNucleus = "1H"
    ds.ComplexImageComponent = "MAGNITUDE"
    ds.AcquisitionContrast = (
        "DIFFUSION"
        if p.sequence == "DWI"
        else {"T1": "T1", "T2": "T2", "FLAIR": "FLUID_ATTENUATED"}[p.sequence]
    )
    ds.PixelPresentation = "MONOCHROME"
    ds.VolumetricProperties = "VOLUME"
    ds.VolumeBasedCalculationTechnique = "NONE"
    ds.BurnedInAnnotation = "YES" if series.burned_in else "NO"
    ds.ImageComments = f"患者{study.identity.person.hanzi} ID {study.identity.patient_id}"

    shared = Dataset()
    measures = Dataset()
    measures.PixelSpacing = [round(grid.pixel_mm, 6)] * 2
    measures.SliceThickness = grid.slice_thickness_mm
    measures.SpacingBetweenSlices = grid.slice_spacing_mm
    orientation = Dataset()
    orientation.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    timing = Dataset()
    timing.RepetitionTime = round(p.tr_ms, 1)
    timing.EchoTrainLength = 1
    timing.FlipAngle = 90
    echo = Dataset()
    echo.EffectiveEchoTime = round(p.te_ms, 1)
    rescale = Dataset()
    rescale.RescaleSlope, rescale.RescaleIntercept, rescale.RescaleType = round(rescale_slope, 6), 0, "US"
    voi = Dataset()
    voi.WindowCenter, voi.WindowWidth = round(window[0], 1), round(window[1], 1)
    shared.PixelMeasuresSequence = Sequence([measures])
    shared.PlaneOrientationSequence = Sequence([orientation])
    shared.MRTimingAndRelatedParametersSequence = Sequence([timing])
    shared.MREchoSequence = Sequence([echo])
    shared.PixelValueTransformationSequence = Sequence([rescale])
    shared.FrameVOILUTSequence = Sequence([voi])
    ds.SharedFunctionalGroupsSequence = Sequence([shared])

    dim_org = uid(study.seed, series.series_uid, "dimensions")
    organization = Dataset()
    organization.DimensionOrganizationUID = dim_org
    ds.DimensionOrganizationSequence = Sequence([organization])
    index_items = []
    for pointer, group in ((0x00209057, 0x00209111), (0x00189087, 0x00189117)):  # in-stack position, b-value
        item = Dataset()
        item.DimensionOrganizationUID = dim_org
        item.DimensionIndexPointer = pointer
        item.FunctionalGroupPointer = group
        index_items.append(item)
    ds.DimensionIndexSequence = Sequence(index_items)

    frames = _frames(stored, study.center.inferior_first)
    b_values = sorted(stored)
    per_frame = []
    for b, k, _ in frames:
        item = Dataset()
        position = Dataset()
        position.ImagePositionPatient = [round(float(x), 4) for x in grid.position_lps(k)]
        content = Dataset()
        content.StackID = "1"
        content.InStackPositionNumber = k + 1
        content.DimensionIndexValues = [k + 1, b_values.index(b) + 1]
        diffusion = Dataset()
        diffusion.DiffusionBValue = float(b)
        diffusion.DiffusionDirectionality = "ISOTROPIC" if b else "NONE"
        item.PlanePositionSequence = Sequence([position])
        item.FrameContentSequence = Sequence([content])
        item.MRDiffusionSequence = Sequence([diffusion])
        per_frame.append(item)
    ds.PerFrameFunctionalGroupsSequence = Sequence(per_frame)
    ds.NumberOfFrames = len(frames)
    _store(ds, np.stack([f for _, _, f in frames]), transfer_syntax)
    path = out_dir / FILE_NAMES[study.center.vendor].format(n=1)
    ds.save_as(path, enforce_file_format=True)
    return path
