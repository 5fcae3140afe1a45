"""decode_frames reads native little-endian pixels itself: it must give exactly pydicom's pixel_array."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file, get_testdata_files

from brainfm.dicom.reading import decode_frames


def _pydicom_frames(ds: pydicom.Dataset) -> np.ndarray:
    pixels = ds.pixel_array
    return pixels if int(ds.get("NumberOfFrames") or 1) > 1 else pixels[np.newaxis]


def test_decode_frames_equals_pixel_array_on_every_decodable_wheel_file() -> None:
    checked = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for path in (Path(f) for f in get_testdata_files() if f.endswith(".dcm")):
            try:
                expected = _pydicom_frames(pydicom.dcmread(path))
            except Exception:  # noqa: BLE001, S112 - files pydicom cannot decode are covered by the quarantine tests
                continue
            got = decode_frames(pydicom.dcmread(path))
            assert got.dtype == expected.dtype and got.shape == expected.shape, path.name
            np.testing.assert_array_equal(got, expected, err_msg=path.name)
            checked += 1
    assert checked > 50


@pytest.mark.parametrize(("signed", "stored"), [(False, 12), (True, 12), (False, 16), (True, 16)])
def test_bits_above_bits_stored_are_masked_or_sign_extended_as_pydicom_does(signed: bool, stored: int) -> None:
    ds = pydicom.dcmread(get_testdata_file("MR_small.dcm"))
    ds.PixelRepresentation, ds.BitsStored, ds.HighBit = int(signed), stored, stored - 1
    values = np.random.default_rng(0).integers(0, 1 << 16, size=(ds.Rows, ds.Columns), dtype=np.uint16)
    ds.PixelData = values.tobytes()
    got = decode_frames(ds)
    assert got.flags.writeable
    np.testing.assert_array_equal(got, _pydicom_frames(ds))
