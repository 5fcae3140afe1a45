"""The hand-written encoder of :func:`write_deidentified` agrees with pydicom's writer."""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_file

from brainfm.dicom.export import write_deidentified


@pytest.mark.parametrize("name", ["MR_small.dcm", "CT_small.dcm", "MR_small_implicit.dcm", "JPEG2000.dcm"])
def test_decoded_elements_are_written_as_pydicom_writes_them(name: str, tmp_path: Path) -> None:
    ds = pydicom.dcmread(get_testdata_file(name))
    for elem in ds.iterall():  # decode every element, as header look-ups and de-identification do
        _ = elem.value
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.PatientName = "Zhāng^Wěi"  # non-ASCII: encoded as UTF-8
    ds.ImageType = ["ORIGINAL", "PRIMARY"]
    write_deidentified(ds, tmp_path / "ours.dcm")
    ds.save_as(tmp_path / "pydicom.dcm", enforce_file_format=True)
    ours, theirs = pydicom.dcmread(tmp_path / "ours.dcm"), pydicom.dcmread(tmp_path / "pydicom.dcm")
    assert ours.file_meta.TransferSyntaxUID == theirs.file_meta.TransferSyntaxUID
    assert ours.file_meta.MediaStorageSOPInstanceUID == theirs.file_meta.MediaStorageSOPInstanceUID
    assert ours == theirs and str(ours.PatientName) == "Zhāng^Wěi"
