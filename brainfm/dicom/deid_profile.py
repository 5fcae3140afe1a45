"""The de-identification profile: DICOM PS3.15 Annex E actions for the attributes that occur in MR.

Profile: Basic Application Level Confidentiality Profile (Table E.1-1) with the options Clean Descriptors,
Retain Longitudinal Temporal Information with Modified Dates, Retain Patient Characteristics and Retain
Safe Private. Listed here are the attributes whose action differs from the safe rule applied to all other
attributes (see ``brainfm.dicom.deid``): text-like VRs are removed, DA/DT dates shifted, UIDs remapped,
sequences recursed, coded and numeric values kept. The explicit lists therefore only need to name (a) the
text attributes that may stay or get a dummy, and (b) the non-text attributes Annex E removes.
"""

from __future__ import annotations

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

# Retain Safe Private option (113111): diffusion attributes, keyed by (private creator, group, element
# offset), following PS3.15 Table E.3.10-1. Everything else private is removed. The Siemens CSA *image*
# header (0029,xx10) is the only carrier of b-value and gradient direction on older Siemens software; the
# CSA *series* header (0029,xx20) holds the free-text protocol and is removed.
SAFE_PRIVATE: frozenset[tuple[str, int, int]] = frozenset(
    {
        ("SIEMENS MR HEADER", 0x0019, 0x08),  # ImagingMode
        ("SIEMENS MR HEADER", 0x0019, 0x0A),  # NumberOfImagesInMosaic
        ("SIEMENS MR HEADER", 0x0019, 0x0B),  # SliceMeasurementDuration
        ("SIEMENS MR HEADER", 0x0019, 0x0C),  # B_value
        ("SIEMENS MR HEADER", 0x0019, 0x0D),  # DiffusionDirectionality
        ("SIEMENS MR HEADER", 0x0019, 0x0E),  # DiffusionGradientDirection
        ("SIEMENS MR HEADER", 0x0019, 0x27),  # B_matrix
        ("SIEMENS MR HEADER", 0x0019, 0x28),  # BandwidthPerPixelPhaseEncode
        ("SIEMENS MR HEADER", 0x0019, 0x29),  # MosaicRefAcqTimes
        ("SIEMENS CSA HEADER", 0x0029, 0x08),  # CSA image header type
        ("SIEMENS CSA HEADER", 0x0029, 0x09),  # CSA image header version
        ("SIEMENS CSA HEADER", 0x0029, 0x10),  # CSA image header (b-value, gradient direction)
        ("GEMS_PARM_01", 0x0043, 0x39),  # slop_int_6..9: b-value
        ("GEMS_ACQU_01", 0x0019, 0xBB),  # diffusion direction x
        ("GEMS_ACQU_01", 0x0019, 0xBC),  # diffusion direction y
        ("GEMS_ACQU_01", 0x0019, 0xBD),  # diffusion direction z
        ("PHILIPS IMAGING DD 001", 0x2001, 0x03),  # diffusion b-factor
        ("PHILIPS IMAGING DD 001", 0x2001, 0x04),  # diffusion direction
        ("PHILIPS MR IMAGING DD 001", 0x2005, 0xB0),  # diffusion direction RL
        ("PHILIPS MR IMAGING DD 001", 0x2005, 0xB1),  # diffusion direction AP
        ("PHILIPS MR IMAGING DD 001", 0x2005, 0xB2),  # diffusion direction FH
    }
)

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
