"""Writing de-identified files, named only by their new UIDs (input paths may hold identifiers)."""

from __future__ import annotations

import struct
from pathlib import Path

from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import dcmwrite, write_data_element, write_file_meta_info
from pydicom.uid import UID

# Explicit VR encoding: these VRs have a 2-byte reserved field and a 4-byte length (PS3.5 Table 7.1-1).
_LONG_LENGTH_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV"})
_UNDEFINED_LENGTH = 0xFFFFFFFF
_SEQUENCE_DELIMITER = struct.pack("<HHI", 0xFFFE, 0xE0DD, 0)


def output_relpath(ds: Dataset) -> Path:
    """``<StudyInstanceUID>/<SeriesInstanceUID>/<SOPInstanceUID>.dcm`` of a de-identified dataset."""
    return Path(str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID), f"{ds.SOPInstanceUID}.dcm")


def write_deidentified(ds: Dataset, path: Path) -> None:
    """Write ``ds`` as a DICOM Part 10 file in its original transfer syntax (from ``ds.file_meta``).

    Encapsulated or native Pixel Data bytes are written as read, so decoded pixels are unchanged. For little
    endian, non-deflated syntaxes (nearly every file), elements still in the raw form they were read in are
    copied as header + bytes, and only the rest go through pydicom's element writer: pydicom's writer
    costs tens of microseconds per element, the largest share of an ingest's time otherwise. Other syntaxes
    are written by :func:`pydicom.filewriter.dcmwrite`.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
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
    write_file_meta_info(fp, ds.file_meta, enforce_standard=True)
    fp.is_implicit_VR = implicit
    charset = ds.get("SpecificCharacterSet")
    for tag in sorted(ds.keys()):
        if tag.element == 0 and tag.group > 6:
            continue  # retired group lengths are never written (PS3.5 7.2), as in dcmwrite
        elem = ds.get_item(tag)
        if elem.is_raw and elem.is_little_endian and elem.is_implicit_VR == implicit and elem.value is not None:
            undefined = elem.length == _UNDEFINED_LENGTH
            length = _UNDEFINED_LENGTH if undefined else len(elem.value)
            if implicit:
                fp.write(struct.pack("<HHI", tag.group, tag.element, length))
            elif elem.VR in _LONG_LENGTH_VRS:
                fp.write(struct.pack("<HH2sHI", tag.group, tag.element, elem.VR.encode(), 0, length))
            else:
                fp.write(struct.pack("<HH2sH", tag.group, tag.element, elem.VR.encode(), length))
            fp.write(elem.value)
            if undefined:
                fp.write(_SEQUENCE_DELIMITER)
        else:
            write_data_element(fp, ds[tag], charset)
    path.write_bytes(fp.getvalue())
