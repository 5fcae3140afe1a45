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
from brainfm.dicom.leaks import _text_bytes, dicom_text
from brainfm.dicom.quarantine import BadInput
from brainfm.dicom.reading import decode_frames, frame_geometries, infer_sequence, read_dataset, read_header
from brainfm.pseudonym import Pseudonymizer, center_patient_key
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
    """Both routes through the one de-identification walker give the same DICOM data set and pixels, and the
    text the leak gate searches in a lean export's header (``dicom_text``) holds every value of the file written."""
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
    write_deidentified(Deidentifier(key, "center_a")(ds), tmp_path / "dataset.dcm")
    write_deidentified(Deidentifier(key, "center_a")(header), tmp_path / "header.dcm")
    a, b = _pydicom((tmp_path / "dataset.dcm").read_bytes()), _pydicom((tmp_path / "header.dcm").read_bytes())
    assert a == b
    assert a.file_meta.MediaStorageSOPInstanceUID == b.file_meta.MediaStorageSOPInstanceUID
    searched, written = dicom_text(header), (tmp_path / "header.dcm").read_bytes()
    missing = {value for value in _text_bytes(tmp_path / "header.dcm")[128:].split(b"\n") if value not in searched}
    assert missing <= {written[140:144]}  # at most the file meta group length: a number encode computes


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
    Deidentifier(Pseudonymizer(b"codec-test-secret-0123456789"), "center_a")(header)
    assert referenced_images not in header.elements


def _gb18030_file(path: Path, **attributes: str) -> Path:
    """A small MR file in GB18030 without private elements (nothing decodes text before the walker does)."""
    ds = Dataset()
    ds.file_meta = pydicom.dataset.FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    ds.SpecificCharacterSet = "GB18030"
    ds.SOPClassUID, ds.Modality = pydicom.uid.MRImageStorage, "MR"
    for keyword in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"):
        setattr(ds, keyword, pydicom.uid.generate_uid())
    ds.PatientID, ds.PatientName = "1", "张^三"
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    ds.Rows = ds.Columns = 2
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PixelData = 1, "MONOCHROME2", bytes(4)
    ds.save_as(path, enforce_file_format=True)
    return path


def test_chinese_descriptions_are_decoded_alike_on_the_lean_and_the_pydicom_path(tmp_path: Path) -> None:
    """SpecificCharacterSet is removed only after the texts it decodes were read, on both paths."""
    src = _gb18030_file(tmp_path / "in.dcm", StudyDescription="头颅 平扫 增强", SeriesDescription="T2 轴位")
    key = Pseudonymizer(b"codec-test-secret-0123456789")
    header, ds = read_header(src), read_dataset(src)
    assert isinstance(header, Header)
    write_deidentified(Deidentifier(key, "center_a")(header), tmp_path / "header.dcm")
    write_deidentified(Deidentifier(key, "center_a")(ds), tmp_path / "dataset.dcm")
    a, b = (pydicom.dcmread(tmp_path / name) for name in ("header.dcm", "dataset.dcm"))
    assert (a.StudyDescription, a.SeriesDescription) == ("头颅 平扫 增强", "T2 轴位")
    assert a == b


def test_deleting_the_character_set_forgets_the_cached_decoding(tmp_path: Path) -> None:
    header = read_header(_gb18030_file(tmp_path / "in.dcm", StudyDescription="增强"))
    assert isinstance(header, Header) and header.get("StudyDescription") == "增强"  # decoding now cached
    header.delete(0x00080005)
    assert header.get("StudyDescription") != "增强"  # the bytes are read as the default repertoire again


def test_accession_numbers_get_the_pseudonymizers_accession_pseudonym(tmp_path: Path) -> None:
    class Marked(Pseudonymizer):
        def accession(self, accession_number: str) -> str:
            return f"ACC{len(accession_number)}"

    header = read_header(_gb18030_file(tmp_path / "in.dcm", AccessionNumber="A-12345"))
    Deidentifier(Marked(b"codec-test-secret-0123456789"), "center_a")(header)
    assert header.get("AccessionNumber") == "ACC7"


def test_the_same_local_patient_id_at_two_centers_is_two_patients(tmp_path: Path) -> None:
    key = Pseudonymizer(b"codec-test-secret-0123456789")
    seen = {}
    for center, issuer in (("center_a", ""), ("center_b", ""), ("center_a", "RIS")):
        extra = {"IssuerOfPatientID": issuer} if issuer else {}
        header = read_header(_gb18030_file(tmp_path / f"{center}{issuer}.dcm", StudyDate="20240110", **extra))
        Deidentifier(key, center)(header)
        seen[center, issuer] = (header.get("PatientID"), header.get("StudyDate"))
    # Two centers: two patients. The issuer is not part of the key (report tables do not carry it).
    assert seen["center_a", ""] != seen["center_b", ""] and seen["center_a", ""] == seen["center_a", "RIS"]
    assert seen["center_a", ""][0] == key.patient_id(center_patient_key("center_a", "1"))
