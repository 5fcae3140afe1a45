"""Reading DICOM files: a complete dataset, its decoded frames, per-frame geometry and the MR sequence type.

Every transfer syntax that pydicom decodes with its installed plugins (numpy, pylibjpeg, gdcm) is read:
uncompressed little/big endian, deflate, RLE, JPEG baseline/extended/lossless, JPEG-LS and JPEG 2000.
Single-frame and multi-frame (enhanced MR) objects share one code path: frames are always returned as an
array of shape (frames, rows, columns) with geometry per frame.
"""

from __future__ import annotations

import io
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, NamedTuple

import numpy as np
from pydicom import dcmread
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.errors import InvalidDicomError
from pydicom.tag import Tag
from pydicom.uid import DeflatedExplicitVRLittleEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from brainfm.dicom.codec import PIXEL_DATA, UNDEFINED_LENGTH, Fragments, Header, Unsupported, parse
from brainfm.dicom.quarantine import BadInput, Reason

# "other": the header or a name says it is a known kind outside the four (localizer, SWI, BOLD, ASL, not MR…);
# "unknown": nothing said anything (content inference, brainfm.imaging.sequence_content, may label it later).
SequenceType = Literal["T1", "T2", "FLAIR", "DWI", "other", "unknown"]
# Where a label came from: header fields (ImageType, b-value, timing, modality), a name (descriptions,
# protocol and sequence names, a NIfTI file name or sidecar text), the image content, or nothing ("unknown").
SequenceSource = Literal["header", "name", "content", "none"]
SpacingSource = Literal["measured", "assumed", "invalid"]
SEQUENCE_TYPES: tuple[SequenceType, ...] = ("T1", "T2", "FLAIR", "DWI", "other", "unknown")

_PIXEL_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")
_NATIVE_LITTLE_ENDIAN = frozenset({ExplicitVRLittleEndian, ImplicitVRLittleEndian})
_PIXEL_DATA = Tag("PixelData")
_UID_KEYWORDS = ("SOPClassUID", "StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID")


def read_header(path: Path) -> Header | Dataset:
    """Read a whole file (pixels still encoded): a lean :class:`~brainfm.dicom.codec.Header` when the file is in
    the codec's scope and has pixel data, else pydicom's Dataset (:func:`read_dataset`), which also decides
    the quarantine reason of a bad file. Both are read through the same ``get``/``in``/``[]`` calls."""
    data = path.read_bytes()
    try:
        header = parse(data)
    except Unsupported:
        return _dataset(data)
    return header if any(k in header for k in _PIXEL_KEYWORDS) else _dataset(data)


def read_dataset(path: Path) -> Dataset:
    """Read a whole file with pydicom (pixels still encoded) or raise :class:`BadInput` with the quarantine
    reason. Files without the 128-byte preamble are accepted when they parse to a dataset with a SOP Instance
    UID."""
    return _dataset(path.read_bytes())  # one read; pydicom then parses from memory


def _dataset(data: bytes) -> Dataset:
    size = len(data)
    if size == 0:
        raise BadInput(Reason.EMPTY_FILE)
    has_prefix = data[128:132] == b"DICM"
    # pydicom warns about every odd value it meets; the quarantine reason is what we report.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            ds = dcmread(io.BytesIO(data), force=not has_prefix)
        except InvalidDicomError as e:
            raise BadInput(Reason.NOT_DICOM, str(e)[:200]) from None
        except Exception as e:  # noqa: BLE001 - pydicom raises many types on damaged input; all mean "cannot parse"
            reason = Reason.CORRUPT if has_prefix else Reason.NOT_DICOM
            raise BadInput(reason, f"{type(e).__name__}: {e}"[:200]) from None
    if not has_prefix and "SOPInstanceUID" not in ds:
        raise BadInput(Reason.NOT_DICOM, "no DICM prefix and no SOP Instance UID")
    _check_complete(ds, size)
    return ds


def require_uids(ds: Header | Dataset) -> None:
    """Raise BadInput(missing_uid) unless the SOP Class and the Study/Series/SOP Instance UIDs are present."""
    missing = [k for k in _UID_KEYWORDS if not ds.get(k)]
    if missing:
        raise BadInput(Reason.MISSING_UID, "missing " + ", ".join(missing))


_ITEM_HEADER_BYTES = 8  # each fragment of encapsulated Pixel Data, and so each frame, has at least this


def require_pixel_size(ds: Header | Dataset) -> None:
    """Raise BadInput(corrupt) when NumberOfFrames, Rows, Columns, SamplesPerPixel and BitsAllocated ask for
    more Pixel Data than the file holds: checked before any per-frame work, so a header that claims 2³¹ frames
    is refused at once rather than looped over. Encapsulated (compressed) data must hold at least one item
    header per frame."""
    if "PixelData" not in ds:
        return
    try:
        frames = int(ds.get("NumberOfFrames") or 1)
        per_frame = int(ds.get("Rows") or 0) * int(ds.get("Columns") or 0) * int(ds.get("SamplesPerPixel") or 1)
        bits = int(ds.get("BitsAllocated") or 0)
    except (TypeError, ValueError):
        raise BadInput(Reason.CORRUPT, "NumberOfFrames, Rows, Columns or BitsAllocated is not a number") from None
    if isinstance(ds, Header):
        value = ds.raw(PIXEL_DATA)
        encapsulated = isinstance(value, Fragments)
    else:
        element = ds.get_item(_PIXEL_DATA)
        value, encapsulated = element.value, bool(element.is_undefined_length)
    if not isinstance(value, bytes) or frames < 1:
        raise BadInput(Reason.CORRUPT, f"NumberOfFrames {frames} with Pixel Data that cannot hold it")
    needed = frames * _ITEM_HEADER_BYTES if encapsulated else (frames * per_frame * bits + 7) // 8
    if needed > len(value):
        raise BadInput(Reason.CORRUPT, f"{frames} frame(s) need {needed} bytes of Pixel Data, the file holds {len(value)}")


def _check_complete(ds: Dataset, size: int) -> None:
    """Raise for a file that ends inside a data element (pydicom silently keeps what it could read)."""
    if ds.file_meta.get("TransferSyntaxUID") == DeflatedExplicitVRLittleEndian:
        return  # offsets refer to the inflated stream; zlib itself raises on a truncated stream
    pixel_keyword = next((k for k in _PIXEL_KEYWORDS if k in ds), None)
    if pixel_keyword is not None:
        raw = ds.get_item(Tag(pixel_keyword))
        tell, length = getattr(raw, "value_tell", None), getattr(raw, "length", UNDEFINED_LENGTH)
        if tell is not None and length != UNDEFINED_LENGTH and tell + length > size:
            raise BadInput(Reason.TRUNCATED, f"pixel data needs {length} bytes, file has {size - tell}")
        return
    if len(ds) == 0:
        raise BadInput(Reason.TRUNCATED, "no data elements after the file meta information")
    raw = ds.get_item(max(ds.keys()))
    tell, length = getattr(raw, "value_tell", None), getattr(raw, "length", UNDEFINED_LENGTH)
    if tell is not None and length != UNDEFINED_LENGTH and tell + length != size:
        raise BadInput(Reason.TRUNCATED, f"the last data element ends at byte {tell + length} of {size}")
    raise BadInput(Reason.MISSING_PIXEL_DATA)


def decode_frames(ds: Header | Dataset) -> np.ndarray:
    """Stored pixel values as (frames, rows, columns[, samples]); raises BadInput(undecodable_pixels)."""
    native = _native_frames(ds)
    if native is not None:
        return native
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # Compressed: pydicom's decoder plugins, given only the image attributes of a lean header.
            ds = _pixel_dataset(ds) if isinstance(ds, Header) else ds
            pixels = ds.pixel_array
    except Exception as e:  # noqa: BLE001 - decoder plugins raise assorted types; all mean "cannot decode"
        raise BadInput(Reason.UNDECODABLE_PIXELS, f"{type(e).__name__}: {e}"[:200]) from None
    frames = int(ds.get("NumberOfFrames") or 1)
    return pixels if frames > 1 else pixels[np.newaxis]


_IMAGE_PIXEL_KEYWORDS = (
    "Rows", "Columns", "BitsAllocated", "BitsStored", "HighBit", "PixelRepresentation", "SamplesPerPixel",
    "PhotometricInterpretation", "PlanarConfiguration", "NumberOfFrames",
)  # fmt: skip


def _pixel_dataset(header: Header) -> Dataset:
    """A Dataset with just the Image Pixel module and Pixel Data of ``header``: what pydicom's decoders read
    (re-parsing the whole file would cost more than decoding a small compressed frame)."""
    assert header.file_meta is not None
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = header.file_meta.get("TransferSyntaxUID")
    for keyword in _IMAGE_PIXEL_KEYWORDS:
        if keyword in header:
            setattr(ds, keyword, header.get(keyword))
    vr, value = header.elements[PIXEL_DATA]
    ds[_PIXEL_DATA] = RawDataElement(_PIXEL_DATA, vr, len(value), value, 0, header.implicit, True)
    if isinstance(value, Fragments):
        ds[_PIXEL_DATA].is_undefined_length = True
    return ds


def _native_frames(ds: Header | Dataset) -> np.ndarray | None:
    """Uncompressed little-endian single-sample pixels read straight from the Pixel Data bytes, else None.

    pydicom's ``pixel_array`` gives the same values but spends most of its time (about 1 ms a file) collecting
    and validating the image attributes; nearly every MR file is this simple case. As pydicom does, bits
    above Bits Stored are cleared (unsigned) or sign-extended (signed). Anything else, a short or padded
    value included, goes through pydicom, which decodes it or raises the error that quarantines the file.
    """
    syntax = ds.file_meta.get("TransferSyntaxUID")
    if syntax not in _NATIVE_LITTLE_ENDIAN or "PixelData" not in ds or ds.get("SamplesPerPixel", 1) != 1:
        return None
    # Raw bytes: left unconverted, so the writer copies them as read.
    data = ds.raw(PIXEL_DATA) if isinstance(ds, Header) else ds.get_item(_PIXEL_DATA).value
    if not isinstance(data, bytes):
        return None
    try:
        allocated, stored = int(ds.get("BitsAllocated") or 0), int(ds.get("BitsStored") or 0)
        shape = (int(ds.get("NumberOfFrames") or 1), int(ds.get("Rows") or 0), int(ds.get("Columns") or 0))
    except (TypeError, ValueError):
        return None  # a malformed image attribute: pydicom reports it
    signed = ds.get("PixelRepresentation") == 1
    if (
        allocated not in (8, 16, 32)
        or not 0 < stored <= allocated
        or len(data) != np.prod(shape) * allocated // 8
    ):
        return None
    pixels = np.frombuffer(data, dtype=f"<{'i' if signed else 'u'}{allocated // 8}").reshape(shape)
    spare = allocated - stored
    if spare == 0:
        return pixels.copy()  # writeable, like pixel_array
    return (pixels << spare) >> spare if signed else pixels & ((1 << stored) - 1)


@dataclass(frozen=True)
class FrameGeometry:
    """Where one frame lies in the patient (LPS, mm) and how its stored values map to real values."""

    position_mm: tuple[float, float, float] | None  # ImagePositionPatient: centre of the first pixel
    orientation: tuple[float, ...] | None  # ImageOrientationPatient: row then column direction cosines
    spacing_mm: tuple[float, float]  # PixelSpacing: between rows, between columns (1.0 when absent)
    slope: float = 1.0
    intercept: float = 0.0
    # "assumed": no PixelSpacing, 1.0 mm stands in; "invalid": not two finite positive numbers (no volume)
    spacing_source: SpacingSource = "measured"


def functional_value(ds: Header | Dataset, frame: int, sequence: str, keyword: str) -> Any:
    """An attribute from the per-frame functional group of ``frame``, else the shared group, else None."""
    for groups, index in (("PerFrameFunctionalGroupsSequence", frame), ("SharedFunctionalGroupsSequence", 0)):
        items = ds.get(groups)
        if items is not None and len(items) > index:
            macro = items[index].get(sequence)
            if macro is not None and len(macro) and keyword in macro[0]:
                return macro[0][keyword].value
    return None


def frame_geometries(ds: Header | Dataset) -> list[FrameGeometry]:
    """Geometry for every frame: enhanced multi-frame functional groups first, then top-level attributes."""
    n = int(ds.get("NumberOfFrames") or 1)
    # Single-frame objects have no functional groups: skip their ten look-ups per frame (a per-file cost).
    enhanced = "PerFrameFunctionalGroupsSequence" in ds or "SharedFunctionalGroupsSequence" in ds

    def functional(i: int, sequence: str, keyword: str) -> Any:
        return functional_value(ds, i, sequence, keyword) if enhanced else None

    out = []
    for i in range(n):
        pos = functional(i, "PlanePositionSequence", "ImagePositionPatient")
        ori = functional(i, "PlaneOrientationSequence", "ImageOrientationPatient")
        spacing = functional(i, "PixelMeasuresSequence", "PixelSpacing")
        slope = functional(i, "PixelValueTransformationSequence", "RescaleSlope")
        intercept = functional(i, "PixelValueTransformationSequence", "RescaleIntercept")
        pos = pos if pos is not None else ds.get("ImagePositionPatient")
        if pos is not None and n > 1 and "PerFrameFunctionalGroupsSequence" not in ds:
            pos = _legacy_frame_position(ds, pos, i)
        ori = ori if ori is not None else ds.get("ImageOrientationPatient")
        spacing = spacing if spacing is not None else ds.get("PixelSpacing")
        spacing_mm, spacing_source = _pixel_spacing(spacing)
        out.append(
            FrameGeometry(
                position_mm=tuple(float(v) for v in pos) if pos is not None and len(pos) == 3 else None,
                orientation=tuple(float(v) for v in ori) if ori is not None and len(ori) == 6 else None,
                spacing_mm=spacing_mm,
                spacing_source=spacing_source,
                slope=float(slope if slope is not None else ds.get("RescaleSlope", 1.0) or 1.0),
                intercept=float(
                    intercept if intercept is not None else ds.get("RescaleIntercept", 0.0) or 0.0
                ),
            )
        )
    return out


def _pixel_spacing(value: Any) -> tuple[tuple[float, float], SpacingSource]:
    """PixelSpacing (mm) and where it came from: 1.0 × 1.0 "assumed" when absent or empty, "invalid" unless it
    is two finite positive numbers (such a frame keeps its file, but no volume is built from it)."""
    if value is None or value == "" or value == []:
        return (1.0, 1.0), "assumed"
    try:
        row, column = float(value[0]), float(value[1])
    except (TypeError, ValueError, IndexError):
        return (1.0, 1.0), "invalid"
    valid = bool(np.isfinite([row, column]).all()) and row > 0 and column > 0
    return (row, column), "measured" if valid else "invalid"


def _legacy_frame_position(ds: Header | Dataset, first: Any, frame: int) -> Any:
    """Frame positions of a legacy multi-frame object: the first position stepped along the slice normal."""
    ori, step = ds.get("ImageOrientationPatient"), ds.get("SpacingBetweenSlices") or ds.get("SliceThickness")
    if ori is None or len(ori) != 6 or not step:
        return None
    normal = np.cross(np.asarray(ori[:3], float), np.asarray(ori[3:], float))
    return np.asarray(first, float) + frame * float(step) * normal


def lookup(ds: Header | Dataset, keyword: str) -> Any:
    """A top-level attribute, else the same attribute in the first frame's functional groups."""
    if keyword in ds:
        return ds[keyword].value
    for groups in ("SharedFunctionalGroupsSequence", "PerFrameFunctionalGroupsSequence"):
        items = ds.get(groups)
        if items:
            for macro in items[0]:
                if macro.VR == "SQ" and macro.value and keyword in macro.value[0]:
                    return macro.value[0][keyword].value
    return None


def _word(*alternatives: str) -> re.Pattern[str]:
    """Keywords matched as whole tokens (so T1 does not match T10); CJK terms match anywhere."""
    return re.compile(r"(?<![a-z0-9])(?:" + "|".join(alternatives) + r")(?![a-z0-9])", re.IGNORECASE)


# Vendor protocol names (Siemens, GE, Philips, United Imaging) and Chinese series descriptions.
_DWI = _word(
    r"dwi\w*",
    r"diff\w*",
    r"dti",
    r"adc",
    r"e?trace\w*",
    r"ep2d_diff\w*",
    r"resolve",
    r"tensor",
    r"b\d{3,4}",
    r"ep_b\d+\w*",
    "弥散",
    "扩散",
)
_OTHER = _word(
    r"swi\w*",
    r"t2\*",
    r"t2star",
    r"perf\w*",
    r"asl",
    r"pcasl",
    r"dsc",
    r"localizer",
    r"scout",
    r"survey",
    r"3[-_ ]?plane",
    r"tof\w*",
    r"mra",
    r"angio\w*",
    r"bold",
    r"fmri",
    r"fieldmap",
    r"svs",
    r"csi",
    "定位",
    "灌注",
    "血管",
    "波谱",
)
_FLAIR = _word(r"\w*flair\w*", r"dark[-_ ]?fluid", r"tirm\w*", "水抑制", "液体衰减")
_T1 = _word(
    r"t1\w*",
    r"mprage",
    r"mp2rage",
    r"t1w",
    r"spgr",
    r"fspgr",
    r"bravo",
    r"tfl\w*",
    r"vibe",
    r"tfe",
    r"flash",
    r"3d_?t1",
    "T1加权",
)
_T2 = _word(r"t2\w*", r"tse", r"fse", r"haste", r"blade", r"propeller", "T2加权")


class SequenceLabel(NamedTuple):
    """A series' sequence type and where it came from."""

    sequence: SequenceType
    source: SequenceSource


UNKNOWN = SequenceLabel("unknown", "none")
_TEXT_KEYWORDS = ("SeriesDescription", "ProtocolName", "SequenceName", "PulseSequenceName")
_TIMING_KEYWORDS = (
    "RepetitionTime", "EchoTime", "EffectiveEchoTime", "InversionTime", "InversionTimes", "ScanningSequence",
)  # fmt: skip
# Every attribute infer_sequence reads besides Modality (top level or in the first frame's functional groups):
# removing them all leaves a series labelled "unknown".
SEQUENCE_KEYWORDS = ("ImageType", "FrameType", "DiffusionBValue", *_TEXT_KEYWORDS, *_TIMING_KEYWORDS)
_FUNCTIONAL_GROUPS = ("SharedFunctionalGroupsSequence", "PerFrameFunctionalGroupsSequence")


def remove_sequence_evidence(ds: Dataset) -> None:
    """Delete every :data:`SEQUENCE_KEYWORDS` attribute, at the top level and in every functional group
    item, so that :func:`infer_sequence` says ``unknown``: an export with blank descriptions and no timing, the
    case content inference exists for (tests and ``bench/sequence_content.py`` build such series)."""
    frames = [frame for group in _FUNCTIONAL_GROUPS for frame in ds.get(group) or []]
    macros = [item for frame in frames for e in frame if e.VR == "SQ" for item in e.value]
    for item in (ds, *macros):
        for keyword in SEQUENCE_KEYWORDS:
            if keyword in item:
                delattr(item, keyword)


def infer_sequence(ds: Header | Dataset) -> SequenceLabel:
    """T1, T2, FLAIR, DWI, other or unknown, from image type, b-values, descriptions, then TR/TE/TI (ms).

    Order matters: diffusion evidence wins, then explicit non-structural names (SWI, localizer…), then
    FLAIR before T1/T2 because FLAIR descriptions often also say T2. A modality other than MR is "other".
    """
    if str(ds.get("Modality", "MR")).upper() != "MR":
        return SequenceLabel("other", "header")
    image_type = {str(v).upper() for v in (lookup(ds, "ImageType") or lookup(ds, "FrameType") or [])}
    if image_type & {"ADC", "TRACEW", "TRACE", "DIFFUSION", "EADC", "FA"}:
        return SequenceLabel("DWI", "header")
    b_value = lookup(ds, "DiffusionBValue")
    if b_value is not None and float(b_value) > 0:
        return SequenceLabel("DWI", "header")
    text = " ".join(str(ds.get(k) or "") for k in _TEXT_KEYWORDS)
    for pattern, label in ((_DWI, "DWI"), (_OTHER, "other"), (_FLAIR, "FLAIR"), (_T1, "T1"), (_T2, "T2")):
        if pattern.search(text):
            return SequenceLabel(label, "name")  # type: ignore[arg-type]
    timed = _sequence_from_timing(ds)
    return UNKNOWN if timed is None else SequenceLabel(timed, "header")


def _sequence_from_timing(ds: Header | Dataset) -> SequenceType | None:
    """Textbook contrast rules on TR, TE and TI in ms (1.5–3 T): the fallback when names say nothing; None
    when the times are absent or fit no rule."""

    def ms(keyword: str, alt: str | None = None) -> float | None:
        value = lookup(ds, keyword)
        if value is None and alt:
            value = lookup(ds, alt)
        if isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
            value = value[0] if len(value) else None
        try:
            return float(value) if value not in (None, "") else None
        except (TypeError, ValueError):
            return None

    tr, te = ms("RepetitionTime"), ms("EchoTime", "EffectiveEchoTime")
    ti = ms("InversionTime", "InversionTimes")
    scanning = {str(v).upper() for v in (lookup(ds, "ScanningSequence") or [])}
    if ti is not None and ti >= 1500 and (tr or 0) >= 5000:
        return "FLAIR"
    if ti is not None and "IR" in scanning and ti < 1300 and (te or 99) < 10:
        return "T1"
    if tr is not None and te is not None:
        if tr < 1000 and te < 30:
            return "T1"
        if tr >= 2000 and te >= 60:
            return "T2"
    return None


def burned_in_reason(ds: Header | Dataset) -> Reason | None:
    """Quarantine reason for images that may show identifiers in their pixels (PS3.15 E.1.1 note)."""
    if str(ds.get("BurnedInAnnotation", "")).upper() == "YES":
        return Reason.BURNED_IN_ANNOTATION
    if str(ds.get("SOPClassUID", "")).startswith("1.2.840.10008.5.1.4.1.1.7"):
        return Reason.SECONDARY_CAPTURE
    return None
