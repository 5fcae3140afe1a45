"""Writing de-identified files, named only by their new UIDs (input paths may hold identifiers)."""

from __future__ import annotations

import struct
from pathlib import Path

from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import dcmwrite, write_data_element, write_file_meta_info
from pydicom.multival import MultiValue
from pydicom.tag import BaseTag
from pydicom.uid import UID

from brainfm.dicom.codec import (
    LONG_LENGTH_VRS,
    NUMBER_FORMATS,
    SEQUENCE_DELIMITER,
    UNDEFINED_LENGTH,
    Header,
    element_header,
    encode,
    pad_to_even,
)

_SHORT_LENGTH_MAX = 0xFFFF
# Values encoded here rather than by pydicom's element writer (PS3.5 6.2): binary numbers little endian, and
# character strings joined by "\" and padded to even length with a space (UI: a NUL).
_STRING_VRS = frozenset(
    {"AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "LT", "PN", "SH", "ST", "TM", "UC", "UI", "UR", "UT"}
)
_UTF8 = "ISO_IR 192"
_META_VERSION = BaseTag(0x00020001)


def output_relpath(ds: Header | Dataset) -> Path:
    """``<StudyInstanceUID>/<SeriesInstanceUID>/<SOPInstanceUID>.dcm`` of a de-identified dataset."""
    return Path(
        str(ds.get("StudyInstanceUID")), str(ds.get("SeriesInstanceUID")), f"{ds.get('SOPInstanceUID')}.dcm"
    )


def write_deidentified(ds: Header | Dataset, path: Path) -> None:
    """Write ``ds`` as a DICOM Part 10 file in its original transfer syntax (from ``ds.file_meta``).

    Encapsulated or native Pixel Data bytes are written as read, so decoded pixels are unchanged. A lean
    :class:`~brainfm.dicom.codec.Header` is encoded by the codec. For a pydicom Dataset in a little
    endian, non-deflated syntaxes (nearly every file) the file is encoded here: elements still in the raw
    form they were read in are copied as header + bytes, numbers and strings in UTF-8 or ASCII are encoded
    by :func:`_encode_value`, and only sequences and other rare values go through pydicom's element writer,
    which costs tens of microseconds per element (the largest share of an ingest's time otherwise). Other
    syntaxes are written by :func:`pydicom.filewriter.dcmwrite`.
    """
    if not path.parent.is_dir():  # a stat: cheaper than mkdir's failed create for every file of a series
        path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(ds, Header):
        path.write_bytes(encode(ds))
        return
    syntax = UID(ds.file_meta.TransferSyntaxUID)
    if syntax.is_deflated or not syntax.is_little_endian:
        dcmwrite(path, ds, enforce_file_format=True)
        return
    implicit = syntax.is_implicit_VR
    if "PixelData" in ds and not ds.get_item("PixelData").is_raw:
        ds["PixelData"].is_undefined_length = syntax.is_compressed  # as dcmwrite does (PS3.5 A.4)
    fp = DicomBytesIO()
    fp.is_little_endian, fp.is_implicit_VR = True, False
    fp.write(ds.preamble or b"\0" * 128)
    fp.write(b"DICM")
    _write_file_meta(fp, ds.file_meta)
    fp.is_implicit_VR = implicit
    charset = ds.get("SpecificCharacterSet")
    encoding = "utf-8" if charset == _UTF8 else "ascii" if not charset or charset == "ISO_IR 6" else None
    for tag in sorted(ds.keys()):
        if tag.element == 0 and tag.group > 6:
            continue  # retired group lengths are never written (PS3.5 7.2), as in dcmwrite
        elem = ds.get_item(tag)
        if (
            elem.is_raw
            and elem.is_little_endian
            and elem.is_implicit_VR == implicit
            and elem.value is not None
        ):
            undefined = elem.length == UNDEFINED_LENGTH
            fp.write(
                element_header(tag, elem.VR, UNDEFINED_LENGTH if undefined else len(elem.value), implicit)
            )
            fp.write(elem.value)
            if undefined:
                fp.write(SEQUENCE_DELIMITER)
            continue
        elem = ds[tag]
        value = _encode_value(elem, encoding)
        if value is None or (
            not implicit and elem.VR not in LONG_LENGTH_VRS and len(value) > _SHORT_LENGTH_MAX
        ):
            write_data_element(fp, elem, charset)
        else:
            fp.write(element_header(tag, elem.VR, len(value), implicit))
            fp.write(value)
    path.write_bytes(fp.getvalue())


def _encode_value(elem: DataElement, encoding: str | None) -> bytes | None:
    """The value bytes of a number or string element, or None where pydicom's writer must encode it
    (sequences, tags, binary VRs, text outside ``encoding``; ``encoding`` None: a multi-byte character set)."""
    vr, value = elem.VR, elem.value
    empty = value is None or (isinstance(value, str) and not value)
    values = [] if empty else list(value) if isinstance(value, (MultiValue, list, tuple)) else [value]
    if vr in NUMBER_FORMATS:
        try:
            return struct.pack(f"<{len(values)}{NUMBER_FORMATS[vr]}", *values)
        except (struct.error, TypeError):
            return None
    if vr not in _STRING_VRS or encoding is None or any(isinstance(v, bytes) for v in values):
        return None
    try:
        data = "\\".join(str(v) for v in values).encode(encoding)
    except UnicodeEncodeError:
        return None
    return pad_to_even(data, vr)


def _write_file_meta(fp: DicomBytesIO, meta: Dataset) -> None:
    """Group 0002 in explicit VR little endian with its group length (PS3.10 7.1); pydicom's writer only for
    values :func:`_encode_value` does not encode."""
    body = [element_header(_META_VERSION, "OB", 2, False) + b"\0\1"]
    for tag in sorted(meta.keys()):
        if tag.element <= 1:
            continue  # group length and version: written here
        elem = meta[tag]
        value = _encode_value(elem, "ascii")
        if value is None:
            write_file_meta_info(fp, meta, enforce_standard=True)
            return
        body.append(element_header(tag, elem.VR, len(value), False) + value)
    data = b"".join(body)
    fp.write(element_header(BaseTag(0x00020000), "UL", 4, False) + struct.pack("<I", len(data)) + data)
