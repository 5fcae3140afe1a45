"""Every real DICOM file shipped in the pydicom and nibabel wheels: decodable ones are read, de-identified and
written back as valid DICOM with equal pixels; the others are quarantined with a reason, never a crash."""

from __future__ import annotations

import gzip
import shutil
import warnings
from pathlib import Path

import nibabel
import numpy as np
import pydicom
import pytest
from pydicom.data import get_charset_files, get_testdata_files

from brainfm.dicom.deid import Deidentifier
from brainfm.dicom.export import write_deidentified
from brainfm.dicom.quarantine import BadInput, Reason, read_quarantine
from brainfm.dicom.reading import decode_frames, read_dataset, require_uids
from brainfm.ingest import deidentify_center
from brainfm.pseudonym import Pseudonymizer

NIBABEL_DATA = Path(nibabel.__file__).parent / "nicom" / "tests" / "data"
# Why each wheel file that is not read, decoded and de-identified fails (with this project's decoder plugins).
EXPECTED_REASONS: dict[str, Reason] = {
    **dict.fromkeys(("JPEG-lossy.dcm", "JPEG2000-embedded-sequence-delimiter.dcm", "badVR.dcm"),
                    Reason.UNDECODABLE_PIXELS),
    **dict.fromkeys(("JPEGLSNearLossless_08.dcm", "JPEGLSNearLossless_16.dcm", "SC_rgb_jls_lossy_line.dcm",
                     "SC_rgb_jls_lossy_sample.dcm", "decimal_rescale.dcm", "meta_missing_tsyntax.dcm",
                     "nested_priv_SQ.dcm"), Reason.MISSING_UID),
    **dict.fromkeys(("MR_truncated.dcm", "rtplan_truncated.dcm"), Reason.TRUNCATED),
    "no_meta.dcm": Reason.NOT_DICOM,
    **dict.fromkeys(("DICOMDIR-empty.dcm", "ExplVR_BigEndNoMeta.dcm", "ExplVR_LitEndNoMeta.dcm",
                     "UN_sequence.dcm", "chrJapMulti.dcm", "chrJapMultiExplicitIR6.dcm", "chrKoreanMulti.dcm",
                     "chrSQEncoding.dcm", "chrSQEncoding1.dcm", "csa_slice_norm.dcm", "empty_charset_LEI.dcm",
                     "no_meta_group_length.dcm", "priv_SQ.dcm", "reportsi.dcm",
                     "reportsi_with_empty_number_tags.dcm", "rtplan.dcm", "rtstruct.dcm", "test-SR.dcm",
                     "waveform_ecg.dcm"), Reason.MISSING_PIXEL_DATA),
}  # fmt: skip


def wheel_files() -> list[Path]:
    files = [Path(f) for f in get_testdata_files() + get_charset_files() if f.endswith(".dcm")]
    files += sorted(NIBABEL_DATA.glob("*.dcm")) + sorted(NIBABEL_DATA.glob("*.dcm.gz"))
    return files


@pytest.fixture(scope="module")
def roundtrip(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """Each file in its own folder (several share UIDs), de-identified once for all tests of this module."""
    tmp = tmp_path_factory.mktemp("wheel")
    raw = tmp / "raw"
    for i, src in enumerate(wheel_files()):
        (raw / f"{i:03d}").mkdir(parents=True)
        dst = raw / f"{i:03d}" / src.name.removesuffix(".gz")
        if src.suffix == ".gz":
            dst.write_bytes(gzip.decompress(src.read_bytes()))
        else:
            shutil.copy(src, dst)
    quarantine = tmp / "quarantine.jsonl"
    deidentify_center(raw, tmp / "out", quarantine, Pseudonymizer(b"wheel-test-secret-0123456789"), workers=1)
    return raw, tmp / "out", quarantine


def test_every_file_is_exported_or_quarantined_with_a_reason(roundtrip: tuple[Path, Path, Path]) -> None:
    raw, out, quarantine = roundtrip
    entries = read_quarantine(quarantine)
    exported = list(out.rglob("*.dcm"))
    assert len(exported) + len(entries) == sum(1 for f in raw.rglob("*") if f.is_file())
    assert len(exported) >= 15  # MR, CT, US, RT dose, multi-frame; same-UID variants are quarantined duplicates
    assert {e.reason for e in entries} >= {Reason.SECONDARY_CAPTURE, Reason.MISSING_PIXEL_DATA, Reason.TRUNCATED}
    assert not list(out.rglob("*.jsonl"))


@pytest.mark.parametrize("src", wheel_files(), ids=lambda p: p.name)
def test_decodable_file_roundtrips_with_equal_pixels(src: Path, tmp_path: Path) -> None:
    """Each file alone (many share UIDs): read → decode → de-identify → write → read without force."""
    path = tmp_path / src.name.removesuffix(".gz")
    path.write_bytes(gzip.decompress(src.read_bytes()) if src.suffix == ".gz" else src.read_bytes())
    try:
        ds = read_dataset(path)
        require_uids(ds)
        original = decode_frames(ds)
    except BadInput as e:
        assert e.reason == EXPECTED_REASONS.get(src.name), src.name
        return
    assert src.name not in EXPECTED_REASONS  # a file expected to fail was read and decoded
    syntax = ds.file_meta.get("TransferSyntaxUID")
    Deidentifier(Pseudonymizer(b"wheel-test-secret-0123456789"), "wheel")(ds)
    out = tmp_path / "out.dcm"
    write_deidentified(ds, out)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        back = pydicom.dcmread(out)  # no force: a valid Part 10 file with preamble and file meta
        np.testing.assert_array_equal(decode_frames(back), original)
    assert syntax is None or back.file_meta.TransferSyntaxUID == syntax
    assert back.PatientIdentityRemoved == "YES" and str(back.SOPInstanceUID).startswith("2.25.")
    assert [c.CodeValue for c in back.DeidentificationMethodCodeSequence] == [
        "113100", "113105", "113107", "113108", "113111"
    ]  # fmt: skip
    assert not any(e.tag.is_private and e.tag.group != 0x0029 and e.tag.group != 0x0019 for e in back.iterall())


def test_chinese_text_is_decoded_cleaned_and_written_as_utf8(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    src = pydicom.dcmread(get_charset_files("chrX2.dcm")[0])  # GB18030: Wang^XiaoDong=王^小东
    src.SeriesDescription = "T1 增强 王小东"
    src.SOPClassUID = pydicom.uid.MRImageStorage
    src.Modality, src.Rows, src.Columns, src.BitsAllocated, src.BitsStored, src.HighBit = "MR", 2, 2, 8, 8, 7
    src.SamplesPerPixel, src.PhotometricInterpretation, src.PixelRepresentation = 1, "MONOCHROME2", 0
    src.PixelData = bytes([1, 2, 3, 4])
    for kw in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"):
        setattr(src, kw, pydicom.uid.generate_uid())
    src.save_as(tmp_path / "in" / "x.dcm", enforce_file_format=True)
    deidentify_center(tmp_path / "in", tmp_path / "out", tmp_path / "q.jsonl", Pseudonymizer(b"0" * 16))
    (f,) = (tmp_path / "out").rglob("*.dcm")
    ds = pydicom.dcmread(f)
    assert ds.SpecificCharacterSet == "ISO_IR 192" and ds.SeriesDescription == "T1 增强"
    data = f.read_bytes()
    for text in ("王小东", "王", "XiaoDong"):
        assert text.encode("utf-8") not in data and text.encode("gb18030") not in data
