"""The de-identification profile: DICOM PS3.15 Annex E actions for the attributes that occur in MR.

Profile: Basic Application Level Confidentiality Profile (Table E.1-1) with the options Clean Descriptors,
Retain Longitudinal Temporal Information with Modified Dates, Retain Patient Characteristics and Retain
Safe Private (numeric fields only, decoded and written back fresh). Listed here are the attributes whose action
differs from the safe rule applied to all other attributes (see ``brainfm.dicom.deid``): text-like VRs are
removed, dates, times and date-times shifted (``brainfm.dicom.temporal``), UIDs remapped, sequences recursed,
coded and numeric values kept. The explicit lists therefore only need to name (a) the
text attributes that may stay or get a dummy, and (b) the non-text attributes Annex E removes.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Action(StrEnum):
    """Annex E action codes used by this profile."""

    REMOVE = "X"
    EMPTY = "Z"  # zero-length value (Type 2 attributes stay present)
    PSEUDONYM = "D-pseudonym"  # dummy value: the keyed patient pseudonym
    TOKEN = "D-token"  # dummy value: a keyed token (accession numbers, so reports still link)
    CLEAN = "C"  # Clean Descriptors option: keep only known technical vocabulary
    KEEP = "K"


# (a) Text VRs (PN, LO, SH, LT, ST, UT, UC, UR, AE, AS) kept, cleaned or replaced; every other one is removed.
TEXT_ACTIONS: dict[str, Action] = {
    "PatientID": Action.PSEUDONYM,
    "PatientName": Action.PSEUDONYM,
    "AccessionNumber": Action.TOKEN,
    "StudyID": Action.EMPTY,
    "ReferringPhysicianName": Action.EMPTY,
    "ContentCreatorName": Action.EMPTY,
    # Clean Descriptors option (113105).
    "StudyDescription": Action.CLEAN,
    "SeriesDescription": Action.CLEAN,
    "ProtocolName": Action.CLEAN,
    "PerformedProcedureStepDescription": Action.CLEAN,
    "RequestedProcedureDescription": Action.CLEAN,
    "ImageComments": Action.CLEAN,
    "AcquisitionComments": Action.CLEAN,
    # Retain Patient Characteristics option (113108): PatientSex (CS) and PatientSize/Weight (DS) are kept
    # by the type rule; PatientAge is an AS text value and is named here.
    "PatientAge": Action.KEEP,
    # Equipment type (not identity: serial number and station name are removed) and sequence names.
    "Manufacturer": Action.KEEP,
    "ManufacturerModelName": Action.KEEP,
    "SequenceName": Action.KEEP,
    "PulseSequenceName": Action.KEEP,
    "TransmitCoilName": Action.KEEP,
    "ReceiveCoilName": Action.KEEP,
    # Coded entries (PS3.3 Code Sequence Macro): controlled vocabularies, e.g. anatomy or our own codes.
    "CodeValue": Action.KEEP,
    "CodingSchemeDesignator": Action.KEEP,
    "CodingSchemeVersion": Action.KEEP,
    "CodeMeaning": Action.KEEP,
    "ContextIdentifier": Action.KEEP,
    "MappingResource": Action.KEEP,
    "DeidentificationMethod": Action.KEEP,
}

# (b) Attributes with a non-text VR (SQ, TM, dates, numbers) that Annex E removes (X) in this profile.
REMOVE_NON_TEXT: frozenset[str] = frozenset(
    {
        "PatientBirthTime",
        "PatientBirthDate",  # Z in Annex E; removed here, which is stricter (Type 2 only in patient IE)
        "OtherPatientIDsSequence",
        "ReferencedPatientSequence",
        "ReferencedPatientPhotoSequence",
        "PatientInsurancePlanCodeSequence",
        "PatientPrimaryLanguageCodeSequence",
        "RequestAttributesSequence",
        "ReferringPhysicianIdentificationSequence",
        "PhysiciansOfRecordIdentificationSequence",
        "PerformingPhysicianIdentificationSequence",
        "PhysiciansReadingStudyIdentificationSequence",
        "OperatorIdentificationSequence",
        "InstitutionCodeSequence",
        "InstitutionalDepartmentTypeCodeSequence",
        "ProcedureCodeSequence",
        "PerformedProtocolCodeSequence",
        "AdmittingDiagnosesCodeSequence",
        "OriginalAttributesSequence",
        "ModifiedAttributesSequence",
        "DigitalSignaturesSequence",
        "MACParametersSequence",
        "EncryptedAttributesSequence",
        "GraphicAnnotationSequence",
        "ContentCreatorIdentificationCodeSequence",
        "IconImageSequence",  # a thumbnail may show burned-in text
        "SourceImageSequence",  # references files outside the de-identified set; nothing consumes them
        "DataSetTrailingPadding",
        "PregnancyStatus",
        "SmokingStatus",
        "LastMenstrualDate",
        "TimezoneOffsetFromUTC",
    }
)

# UIDs that name a standard or a vendor class, not a thing about the patient: never remapped.
KEEP_UID_KEYWORDS: frozenset[str] = frozenset(
    {
        "SOPClassUID",
        "ReferencedSOPClassUID",
        "MediaStorageSOPClassUID",
        "TransferSyntaxUID",
        "ImplementationClassUID",
        "CodingSchemeUID",
        "ContextUID",
        "RelatedGeneralSOPClassUID",
        "OriginalSpecializedSOPClassUID",
        "ReferencedSOPClassUIDInFile",
        "ReferencedTransferSyntaxUIDInFile",
        "PrivateInformationCreatorUID",
    }
)


@dataclass(frozen=True)
class PrivateField:
    """A private value the Retain Safe Private option keeps: decoded as ``vr`` and written back as a fresh
    element holding only the decoded numbers (or one of ``codes``), never as the stored bytes."""

    name: str
    vr: str  # a numeric VR (US, SS, UL, SL, FL, FD, IS, DS), or CS with ``codes``
    vm: int | None = 1  # the number of values; None: one or more
    codes: frozenset[str] = frozenset()


_DIRECTIONALITY = frozenset({"DIRECTIONAL", "NONE", "ISOTROPIC", "BMATRIX"})
# Philips (2001,xx04): the direction of a diffusion weighting (I isotropic, O oblique, R/L, A/P, F/H or S/I).
_PHILIPS_DIRECTIONS = frozenset("IONRLAPFHS")

# Retain Safe Private option (113111): the values the pipeline needs (b-values, gradient directions, mosaic
# slice count and slice timing, vendor diffusion fields), keyed by (private creator, group, element offset),
# after PS3.15 Table E.3.10-1. Every other private element is removed, vendor blobs and version or text
# elements included: a "version" element can hold a date, and a blob's padding the station name.
SAFE_PRIVATE: dict[tuple[str, int, int], PrivateField] = {
    ("SIEMENS MR HEADER", 0x0019, 0x0A): PrivateField("NumberOfImagesInMosaic", "US"),
    ("SIEMENS MR HEADER", 0x0019, 0x0B): PrivateField("SliceMeasurementDuration", "DS"),
    ("SIEMENS MR HEADER", 0x0019, 0x0C): PrivateField("B_value", "IS"),
    ("SIEMENS MR HEADER", 0x0019, 0x0D): PrivateField("DiffusionDirectionality", "CS", codes=_DIRECTIONALITY),
    ("SIEMENS MR HEADER", 0x0019, 0x0E): PrivateField("DiffusionGradientDirection", "FD", 3),
    ("SIEMENS MR HEADER", 0x0019, 0x27): PrivateField("B_matrix", "FD", 6),
    ("SIEMENS MR HEADER", 0x0019, 0x28): PrivateField("BandwidthPerPixelPhaseEncode", "FD"),
    ("SIEMENS MR HEADER", 0x0019, 0x29): PrivateField("MosaicRefAcqTimes", "FD", None),  # ms, per slice
    ("GEMS_PARM_01", 0x0043, 0x39): PrivateField("SlopInt6to9", "IS", 4),  # b-value first
    ("GEMS_ACQU_01", 0x0019, 0xBB): PrivateField("DiffusionDirectionX", "DS"),
    ("GEMS_ACQU_01", 0x0019, 0xBC): PrivateField("DiffusionDirectionY", "DS"),
    ("GEMS_ACQU_01", 0x0019, 0xBD): PrivateField("DiffusionDirectionZ", "DS"),
    ("PHILIPS IMAGING DD 001", 0x2001, 0x03): PrivateField("DiffusionBFactor", "FL"),
    ("PHILIPS IMAGING DD 001", 0x2001, 0x04): PrivateField(
        "DiffusionDirection", "CS", codes=_PHILIPS_DIRECTIONS
    ),
    ("PHILIPS MR IMAGING DD 001", 0x2005, 0xB0): PrivateField("DiffusionDirectionRL", "FL"),
    ("PHILIPS MR IMAGING DD 001", 0x2005, 0xB1): PrivateField("DiffusionDirectionAP", "FL"),
    ("PHILIPS MR IMAGING DD 001", 0x2005, 0xB2): PrivateField("DiffusionDirectionFH", "FL"),
}

# The Siemens CSA image header (0029,xx10) is a vendor blob: the only carrier of b-value, gradient direction and
# slice normal on some Siemens software, and of station names in its padding. It is never kept; these of its
# fields are decoded (nibabel's CSA reader) and written into a fresh private block of this project's own,
# ``CSA_CREATOR`` in group ``CSA_GROUP``, at the element offset given here.
CSA_IMAGE_HEADER = ("SIEMENS CSA HEADER", 0x0029, 0x10)
CSA_CREATOR = "BRAINFM CSA FIELDS 1"
CSA_GROUP = 0x0029
CSA_FIELDS: dict[int, PrivateField] = {
    0x01: PrivateField("B_value", "FD"),  # s/mm²
    0x02: PrivateField("DiffusionGradientDirection", "FD", 3),
    0x03: PrivateField("NumberOfImagesInMosaic", "US"),
    0x04: PrivateField("SliceNormalVector", "FD", 3),
    0x05: PrivateField("MosaicRefAcqTimes", "FD", None),  # ms, per slice
}

# DeidentificationMethodCodeSequence (CID 7050): the profile and options applied.
METHOD_CODES: tuple[tuple[str, str], ...] = (
    ("113100", "Basic Application Confidentiality Profile"),
    ("113105", "Clean Descriptors Option"),
    ("113107", "Retain Longitudinal Temporal Information Modified Dates Option"),
    ("113108", "Retain Patient Characteristics Option"),
    ("113111", "Retain Safe Private Option"),
)
METHOD_TEXT = "PS3.15 E basic; clean desc; mod dates; patient chars; safe priv"  # LO: at most 64 characters

# Clean Descriptors: the technical vocabulary that may stay in a description (case-insensitive tokens, and
# Chinese terms matched as substrings). Anything else (names, numbers, hospital words) is dropped.
DESCRIPTOR_TOKENS: frozenset[str] = frozenset(
    ["t1", "t1w", "t2", "t2w", "t2*", "pd", "pdw", "flair", "dwi", "adc", "trace", "dti", "diff", "diffusion", "ep2d", "epi", "b0", "b50", "b500", "b800", "b1000", "b2000", "swi", "mprage", "mp2rage", "spgr", "fspgr", "bravo", "tfl", "tfe", "ffe", "flash", "gre", "se", "tse", "fse", "ir", "stir", "tirm", "dark", "fluid", "vibe", "space", "cube", "vista", "haste", "blade", "propeller", "resolve", "mosaic", "2d", "3d", "ax", "axi", "axial", "tra", "sag", "sagittal", "cor", "coronal", "obl", "pre", "post", "gd", "c+", "+c", "ce", "contrast", "fs", "fatsat", "spir", "spair", "dixon", "water", "fat", "iso", "mpr", "mip", "brain", "head", "neuro", "routine", "localizer", "scout", "survey", "3plane", "tof", "mra", "asl", "pcasl", "perf", "dsc", "dce", "bold", "fmri", "mrs", "svs", "csi", "map", "maps"]
)
DESCRIPTOR_CJK_TERMS: tuple[str, ...] = (
    "轴位", "横断位", "横断", "矢状位", "矢状", "冠状位", "冠状", "增强", "平扫", "弥散", "扩散", "加权",
    "水抑制", "液体衰减", "反转恢复", "头颅", "颅脑", "脑", "定位", "灌注", "血管", "波谱", "压脂",
)
