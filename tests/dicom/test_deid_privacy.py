"""PS3.15 to zero: no time of day of the input survives (every transfer syntax, nested, per frame), every kept
private element is on the allow-list and holds only its decoded numbers or a listed code, a vendor blob never
survives, and the leak gate searches for equipment and site identifiers too."""

from __future__ import annotations

import datetime as dt
import gzip
import io
import struct
import warnings
from pathlib import Path

import nibabel
import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    EnhancedMRImageStorage,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    RLELossless,
    generate_uid,
)

from brainfm.dicom.deid import Deidentifier
from brainfm.dicom.deid_profile import CSA_CREATOR, CSA_FIELDS, CSA_GROUP, SAFE_PRIVATE, PrivateField
from brainfm.dicom.export import write_deidentified
from brainfm.dicom.reading import read_header
from brainfm.ingest import deidentify_center
from brainfm.pseudonym import Pseudonymizer, center_patient_key

from .conftest import write_series

KEY = Pseudonymizer(b"brainfm-test-secret-0123456789abcdef")
NIBABEL_DATA = Path(nibabel.__file__).parent / "nicom" / "tests" / "data"
PATIENT = "TIME-0042"
# Distinctive times of day: none of these digit runs may appear in any byte of an export.
TIMES = {"StudyTime": "134729.481516", "SeriesTime": "135112", "AcquisitionTime": "135208.25",
         "ContentTime": "13:52:44", "InstanceCreationTime": "2359"}  # fmt: skip
NESTED = {"ScheduledProcedureStepStartTime": "071853", "ScheduledProcedureStepEndTime": "081906"}
FRAME_DATETIMES = ("20240110135301.123456", "20240110135302.654321+0800")
ORIGINAL_DIGITS = ("134729", "135112", "135208", "135244", "071853", "081906", "135301", "135302", "20240110")


def _shift() -> dt.timedelta:
    key = center_patient_key("c", PATIENT)
    return dt.timedelta(days=KEY.date_shift_days(key), seconds=KEY.time_shift_seconds(key))


def _timed_mr(syntax: str) -> Dataset:
    """A two-frame enhanced MR image with times at the top level, in a nested item and per frame."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = syntax
    ds.SOPClassUID, ds.SOPInstanceUID = EnhancedMRImageStorage, generate_uid()
    ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = generate_uid(), generate_uid(), generate_uid()
    ds.Modality, ds.PatientID, ds.PatientName = "MR", PATIENT, "Time^Tester"
    ds.StudyDate = ds.SeriesDate = ds.AcquisitionDate = ds.ContentDate = ds.InstanceCreationDate = "20240110"
    for keyword, value in TIMES.items():
        setattr(ds, keyword, value)
    ds.AcquisitionDateTime = "20240110135208.250000+0800"
    step = Dataset()
    step.ScheduledProcedureStepStartDate = step.ScheduledProcedureStepEndDate = "20240110"
    for keyword, value in NESTED.items():
        setattr(step, keyword, value)
    ds.ScheduledProcedureStepSequence = Sequence([step])
    frames = []
    for value in FRAME_DATETIMES:
        content = Dataset()
        content.FrameAcquisitionDateTime = content.FrameReferenceDateTime = value
        frames.append(Dataset())
        frames[-1].FrameContentSequence = Sequence([content])
    ds.PerFrameFunctionalGroupsSequence = Sequence(frames)
    ds.NumberOfFrames, ds.Rows, ds.Columns = 2, 8, 8
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    pixels = np.arange(128, dtype=np.uint8).reshape(2, 8, 8)
    if syntax == RLELossless:
        ds.compress(RLELossless, pixels)
    else:
        ds.PixelData = pixels.tobytes()
    return ds


SYNTAXES = [ExplicitVRLittleEndian, ImplicitVRLittleEndian, ExplicitVRBigEndian, DeflatedExplicitVRLittleEndian,
            RLELossless]  # fmt: skip


@pytest.fixture(scope="module", params=SYNTAXES, ids=lambda s: s.name)
def timed_export(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """One export of the timed image per transfer syntax, through the ingest's reader and writer."""
    tmp = tmp_path_factory.mktemp("timed")
    little = request.param != ExplicitVRBigEndian
    with warnings.catch_warnings():  # the ACR-NEMA time 13:52:44 is not valid PS3.5: a site's input may be
        warnings.simplefilter("ignore")
        src = _timed_mr(request.param)
        src.save_as(tmp / "in.dcm", implicit_vr=request.param == ImplicitVRLittleEndian, little_endian=little)
    ds = Deidentifier(KEY, "c")(read_header(tmp / "in.dcm"))
    write_deidentified(ds, tmp / "out.dcm")
    return (tmp / "out.dcm").read_bytes()


def test_no_time_of_day_of_the_input_survives_in_any_byte(timed_export: bytes) -> None:
    for digits in ORIGINAL_DIGITS:
        assert digits.encode() not in timed_export, digits
    assert b"+0800" not in timed_export  # a UTC offset names a place


def _instant(date: str, time: str) -> dt.datetime:
    time = time.replace(":", "")
    return dt.datetime.strptime(date + time.ljust(6, "0")[:6], "%Y%m%d%H%M%S")


def test_every_date_time_moves_by_the_patients_one_shift(timed_export: bytes) -> None:
    """A date and its time still name one instant, moved by the patient's days and seconds; each keeps its
    precision, so intervals within the patient stay exact."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        back = pydicom.dcmread(io.BytesIO(timed_export))
    shift = _shift()
    for keyword, original in TIMES.items():
        date = getattr(back, keyword.replace("Time", "Date"))
        value = str(getattr(back, keyword))
        assert _instant(date, value) == _instant("20240110", original) + shift, keyword
        digits = len(original.replace(":", "").split(".")[0])
        assert len(value.split(".")[0]) == digits and ":" not in value
    assert str(back.StudyTime).endswith(".481516")
    step = back.ScheduledProcedureStepSequence[0]
    for keyword, original in NESTED.items():
        date = step[keyword.replace("Time", "Date")].value
        assert _instant(date, str(step[keyword].value)) == _instant("20240110", original) + shift
    expected = dt.datetime(2024, 1, 10, 13, 52, 8, 250000) + shift
    assert back.AcquisitionDateTime == expected.strftime("%Y%m%d%H%M%S.%f")
    for item, original in zip(back.PerFrameFunctionalGroupsSequence, FRAME_DATETIMES, strict=True):
        moved = dt.datetime.strptime(original[:21], "%Y%m%d%H%M%S.%f") + shift
        assert item.FrameContentSequence[0].FrameAcquisitionDateTime == moved.strftime("%Y%m%d%H%M%S.%f")


def _private_numbers(elem: pydicom.DataElement, field: PrivateField) -> list[float] | str:
    """A kept private value read back independently of the de-identifier: its VR must be the field's where the
    file states one (explicit VR), and it must decode to numbers of the field's count, or to a listed code."""
    raw = elem.value
    if elem.VR != "UN":
        assert elem.VR == field.vr, (elem.tag, elem.VR, field)
        raw = elem.value if isinstance(elem.value, bytes) else None
    if raw is None:
        values = list(elem.value) if isinstance(elem.value, list | pydicom.multival.MultiValue) else [elem.value]
    elif field.vr in ("IS", "DS", "CS"):
        values = raw.decode("ascii").strip("\0 ").split("\\")
    else:
        fmt = {"US": "H", "SS": "h", "UL": "I", "SL": "i", "FL": "f", "FD": "d"}[field.vr]
        values = list(struct.unpack(f"<{len(raw) // struct.calcsize(fmt)}{fmt}", raw))
    if field.codes:
        assert len(values) == 1 and str(values[0]).strip() in field.codes
        return str(values[0]).strip()
    numbers = [float(v) for v in values]
    assert field.vm is None or len(numbers) == field.vm, (elem.tag, numbers, field)
    assert all(np.isfinite(numbers))
    return numbers


def _kept_private(ds: Dataset) -> dict[str, list[float] | str]:
    """Every private value of ``ds`` (creators aside), checked against the allow-list, by field name."""
    kept: dict[str, list[float] | str] = {}
    for elem in ds.iterall():
        if not elem.tag.is_private or elem.tag.is_private_creator:
            continue
        creator = str(elem.private_creator or "").strip()
        if creator == CSA_CREATOR and elem.tag.group == CSA_GROUP:
            field = CSA_FIELDS[elem.tag.element & 0xFF]
            name = f"csa:{field.name}"
        else:
            field = SAFE_PRIVATE[(creator.upper(), elem.tag.group, elem.tag.element & 0xFF)]
            name = field.name
        kept[name] = _private_numbers(elem, field)
    return kept


def _deidentify_file(src: Path, out: Path) -> tuple[bytes, Dataset]:
    ds = Deidentifier(KEY, "c")(read_header(src))
    write_deidentified(ds, out)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return out.read_bytes(), pydicom.dcmread(out)


def _vendor_file(path: Path) -> None:
    """GE and Philips diffusion fields, plus private values that must not survive even in listed places."""
    ds = _timed_mr(ExplicitVRLittleEndian)
    ds.private_block(0x0043, "GEMS_PARM_01", create=True).add_new(0x39, "IS", [1000, 8, 0, 0])
    acqu = ds.private_block(0x0019, "GEMS_ACQU_01", create=True)
    acqu.add_new(0xBB, "DS", "0.7071")
    acqu.add_new(0xBC, "UN", b"ZHANG WEI ")  # text where a number belongs: removed
    philips = ds.private_block(0x2001, "Philips Imaging DD 001", create=True)
    philips.add_new(0x03, "FL", 1000.0)
    philips.add_new(0x04, "CS", "I")
    ds.private_block(0x2005, "Philips MR Imaging DD 001", create=True).add_new(0xB0, "FL", [0.5, 0.5])  # count 2
    siemens = ds.private_block(0x0019, "SIEMENS MR HEADER", create=True)
    siemens.add_new(0x09, "LO", "20240110")  # a "version" element holding a date: never listed
    siemens.add_new(0x0D, "CS", "MRC45321")  # not one of the directionality codes
    ds.save_as(path, implicit_vr=False)


def test_every_kept_private_element_is_listed_and_holds_only_its_numbers(tmp_path: Path) -> None:
    sources = [tmp_path / "vendor.dcm"]
    _vendor_file(sources[0])
    for name in ("siemens_dwi_1000.dcm.gz", "siemens_dwi_0.dcm.gz", "philips_mprage.dcm.gz", "1.dcm"):
        data = (NIBABEL_DATA / name).read_bytes()
        sources.append(tmp_path / name.removesuffix(".gz"))
        sources[-1].write_bytes(gzip.decompress(data) if name.endswith(".gz") else data)
    kept = {src.name: _kept_private(_deidentify_file(src, tmp_path / f"out_{src.name}")[1]) for src in sources}
    assert kept["vendor.dcm"] == {
        "SlopInt6to9": [1000, 8, 0, 0], "DiffusionDirectionX": [0.7071], "DiffusionBFactor": [1000.0],
        "DiffusionDirection": "I",
    }  # fmt: skip
    dwi = kept["siemens_dwi_1000.dcm"]
    assert dwi["B_value"] == [1000] and dwi["NumberOfImagesInMosaic"] == [48]
    assert dwi["DiffusionDirectionality"] == "DIRECTIONAL" and len(dwi["MosaicRefAcqTimes"]) == 48
    assert dwi["csa:B_value"] == [1000] and dwi["csa:NumberOfImagesInMosaic"] == [48]
    np.testing.assert_allclose(dwi["csa:DiffusionGradientDirection"], [0.99997449, 0.00505012, -0.00505012])
    np.testing.assert_allclose(dwi["csa:SliceNormalVector"], [0.0, 0.00523632, 0.99998629])
    assert len(dwi["csa:MosaicRefAcqTimes"]) == 48


def test_a_station_name_in_a_csa_blob_and_a_date_in_a_version_element_do_not_survive(tmp_path: Path) -> None:
    ds = pydicom.dcmread(io.BytesIO(gzip.decompress((NIBABEL_DATA / "siemens_dwi_1000.dcm.gz").read_bytes())))
    csa = ds[0x00291010]
    csa.value = csa.value + b"\0STATION MRC45321\0\0"  # padding after the last item, as scanners leave it
    ds.StationName = "MRC45321"
    ds.save_as(tmp_path / "in.dcm")
    data, back = _deidentify_file(tmp_path / "in.dcm", tmp_path / "out.dcm")
    assert b"mrc45321" not in data.lower()
    assert b"20100114" not in data  # the CSA header version element holds the acquisition date
    assert b"SV10" not in data and 0x00291010 not in back  # no CSA blob of any kind


def test_the_leak_gate_finds_a_station_name_or_institution_in_kept_text(tmp_path: Path) -> None:
    write_series(tmp_path / "raw" / "clean", n_slices=2)
    write_series(tmp_path / "raw" / "station", patient_id="ST-1", name="Sun^Tian", n_slices=2, seed=1)
    write_series(tmp_path / "raw" / "model", patient_id="MD-2", name="Ma^Dong", n_slices=2, seed=2)
    for folder, station, sequence_name in (("station", "MRC45321", "*mrc45321"), ("model", "Prisma", "*prisma")):
        for path in (tmp_path / "raw" / folder).iterdir():
            ds = pydicom.dcmread(path)
            ds.StationName, ds.ManufacturerModelName, ds.SequenceName = station, "Prisma", sequence_name
            ds.save_as(path)
    summary = deidentify_center(tmp_path / "raw", tmp_path / "deid", tmp_path / "q.jsonl", KEY)
    # A station named after its scanner model (kept as equipment type) is no leak; MRC45321 is.
    assert summary.exported == 6 and summary.identifier_hits == 2


def test_identifying_values_are_the_same_from_a_lean_header_and_a_dataset(tmp_path: Path) -> None:
    """The lean route caches them by the stored bytes (and character set); the values must not differ."""
    from brainfm.dicom.deid import identifying_values

    write_series(tmp_path / "a", n_slices=2)
    write_series(tmp_path / "b", patient_id="WF-7", name="Wang Fang=王芳", n_slices=1, seed=1)
    for path in sorted(tmp_path.rglob("*.dcm")):
        values = identifying_values(read_header(path))
        assert values == identifying_values(pydicom.dcmread(path))
        assert {"ZW-00042", "Zhang Wei", "张伟", "Renmin Hospital"} <= values or {"WF-7", "王芳"} <= values
