"""The lean codec (brainfm.dicom.codec) agrees with pydicom: the values it reads, the files it writes, and the
de-identified result, on every real file in the pydicom and nibabel wheels that falls in its scope."""

from __future__ import annotations

import gzip
import io
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset

from brainfm.dicom.codec import Header, Unsupported, encode, parse
from brainfm.dicom.deid import Deidentifier
from brainfm.dicom.export import write_deidentified
from brainfm.dicom.quarantine import BadInput
from brainfm.dicom.reading import decode_frames, frame_geometries, infer_sequence, read_dataset, read_header
from brainfm.pseudonym import Pseudonymizer
from tests.dicom.test_deid_testdata import wheel_files

KEYWORDS = (
    "PatientID", "PatientName", "PatientBirthDate", "StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID",
    "SOPClassUID", "Modality", "Manufacturer", "SeriesDescription", "ImageType", "Rows", "Columns",
    "BitsAllocated", "PixelRepresentation", "SamplesPerPixel", "NumberOfFrames", "PixelSpacing", "SliceThickness",
    "ImagePositionPatient", "ImageOrientationPatient", "RescaleSlope", "RescaleIntercept", "RepetitionTime",
    "EchoTime", "InstanceNumber", "SpecificCharacterSet", "AccessionNumber", "InstitutionName",
)  # fmt: skip


def _data(path: Path) -> bytes:
    return gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()


def _in_scope() -> list[Path]:
    kept = []
    for path in wheel_files():
        try:
            parse(_data(path))
        except Unsupported:
            continue
        kept.append(path)
    return kept


IN_SCOPE = _in_scope()


def _pydicom(data: bytes) -> Dataset:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pydicom.dcmread(io.BytesIO(data))


def _plain(value: object) -> object:
    """A pydicom or codec value in comparable form (MultiValue → list, DSfloat → float, PersonName → str)."""
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        return [_plain(v) for v in value]  # type: ignore[union-attr]
    if isinstance(value, float):
        return float(value)
    if isinstance(value, int):
        return int(value)
    return None if value is None else str(value)


def test_most_wheel_files_are_in_scope() -> None:
    assert len(IN_SCOPE) >= 40  # the rest (big endian, deflate, no preamble, damaged) go through pydicom


@pytest.mark.parametrize("path", IN_SCOPE, ids=lambda p: p.name)
def test_values_match_pydicom(path: Path) -> None:
    data = _data(path)
    header, ds = parse(data), _pydicom(data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for keyword in KEYWORDS:
            assert (keyword in header) == (keyword in ds), keyword
            if keyword in ds:
                assert _plain(header.get(keyword)) == _plain(ds.get(keyword)), keyword
        if "PixelData" in ds:
            for fn in (frame_geometries, infer_sequence):
                assert _outcome(fn, header) == _outcome(fn, ds)


def _outcome(fn: Callable[[Any], Any], ds: Any) -> Any:
    """The result, or the exception type where the value is invalid (the file is then quarantined)."""
    try:
        return fn(ds)
    except (TypeError, ValueError, BadInput) as e:
        return type(e)


@pytest.mark.parametrize("path", IN_SCOPE, ids=lambda p: p.name)
def test_encoding_a_parsed_file_gives_the_same_dataset(path: Path) -> None:
    data = _data(path)
    header = parse(data)
    back, original = _pydicom(encode(header)), _pydicom(data)
    for ds in (back, original):  # group lengths are dropped on writing (retired, PS3.5 7.2)
        for tag in [elem.tag for elem in ds if elem.tag.element == 0]:
            del ds[tag]
    assert back == original
    assert back.file_meta.TransferSyntaxUID == original.file_meta.TransferSyntaxUID


@pytest.mark.parametrize("path", IN_SCOPE, ids=lambda p: p.name)
def test_deidentified_header_equals_the_deidentified_dataset(path: Path, tmp_path: Path) -> None:
    """Both routes through the one de-identification walker give the same DICOM data set and pixels."""
    data = _data(path)
    src = tmp_path / "in.dcm"
    src.write_bytes(data)
    key = Pseudonymizer(b"codec-test-secret-0123456789")
    try:
        ds = read_dataset(src)
    except BadInput as error:  # e.g. no pixel data: the ingest reads it with pydicom, same reason
        with pytest.raises(BadInput) as raised:
            read_header(src)
        assert raised.value.reason == error.reason
        return
    header = read_header(src)
    assert isinstance(header, Header)
    write_deidentified(Deidentifier(key)(ds), tmp_path / "dataset.dcm")
    write_deidentified(Deidentifier(key)(header), tmp_path / "header.dcm")
    a, b = _pydicom((tmp_path / "dataset.dcm").read_bytes()), _pydicom((tmp_path / "header.dcm").read_bytes())
    assert a == b
    assert a.file_meta.MediaStorageSOPInstanceUID == b.file_meta.MediaStorageSOPInstanceUID


def test_out_of_scope_files_are_refused() -> None:
    for name in ("MR_small_bigendian.dcm", "image_dfl.dcm", "no_meta.dcm"):
        with pytest.raises(Unsupported):
            parse(Path(get_testdata_file(name)).read_bytes())
    whole = Path(get_testdata_file("MR_small.dcm")).read_bytes()
    with pytest.raises(Unsupported):
        parse(whole[: len(whole) // 2])  # truncated: pydicom's route names the reason


@pytest.mark.parametrize("path", IN_SCOPE, ids=lambda p: p.name)
def test_pixels_decoded_from_the_header_equal_pydicom(path: Path) -> None:
    """Native pixels are read from the header's bytes; compressed ones through pydicom's decoders."""
    data = _data(path)
    header, ds = parse(data), _pydicom(data)
    if "PixelData" not in ds:
        return
    ours, theirs = _outcome(decode_frames, header), _outcome(decode_frames, ds)
    if isinstance(theirs, np.ndarray):
        np.testing.assert_array_equal(ours, theirs)
    else:
        assert isinstance(ours, type) and ours is theirs


def test_a_sequence_that_cannot_be_parsed_is_removed_not_kept() -> None:
    """A sequence value left as bytes cannot be checked for identifiers, so de-identification drops it."""
    header = parse(Path(get_testdata_file("MR_small.dcm")).read_bytes())
    referenced_images = 0x00081140  # ReferencedImageSequence: its items would hold UIDs to remap
    header.put(referenced_images, "SQ", b"\xfe\xff\x00\xe0\x08\x00\x00\x00garbage!")
    Deidentifier(Pseudonymizer(b"codec-test-secret-0123456789"))(header)
    assert referenced_images not in header.elements
