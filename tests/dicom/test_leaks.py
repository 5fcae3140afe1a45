"""The byte-level leak scan: numeric .npy payloads and DICOM PixelData are pixels, not text; the rest is scanned."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from brainfm.dicom import find_identifiers_in_tree

NAME = "吴勇"  # 4 bytes in GB18030 (ce e2 d3 c2): short enough to occur in noisy pixels by chance


def test_pixels_of_a_numeric_npy_are_not_text_but_its_header_and_object_arrays_are(tmp_path: Path) -> None:
    np.save(tmp_path / "pixels.npy", np.frombuffer(NAME.encode("gb18030") * 64, dtype=np.uint8))
    np.save(tmp_path / "objects.npy", np.array([f"{NAME} follow-up"], dtype=object), allow_pickle=True)
    (tmp_path / "notes.bin").write_bytes(b"\0" + NAME.encode("gb18030"))
    hits = find_identifiers_in_tree(tmp_path, [NAME])
    assert {(h.path, h.where) for h in hits} == {("objects.npy", "content"), ("notes.bin", "content")}


def test_safetensors_weights_are_not_text_but_their_json_header_is(tmp_path: Path) -> None:
    """Float weights are noise to a byte search (a 4-byte GB18030 name matched 1.8 MB of them by chance)."""
    from safetensors.numpy import save_file

    weights = np.frombuffer(NAME.encode("gb18030") * 64, dtype=np.uint8)
    save_file({"w": weights}, str(tmp_path / "weights.safetensors"))
    save_file({"w": weights}, str(tmp_path / "named.safetensors"), metadata={"note": NAME})
    hits = find_identifiers_in_tree(tmp_path, [NAME])
    assert {(h.path, h.where) for h in hits} == {("named.safetensors", "content")}


def test_dicom_pixel_data_is_not_text_but_its_header_is(tmp_path: Path) -> None:
    from pydicom import dcmread
    from pydicom.data import get_testdata_file

    ds = dcmread(get_testdata_file("MR_small.dcm"))
    payload = NAME.encode("gb18030")
    ds.PixelData = (payload * (len(ds.PixelData) // len(payload) + 1))[: len(ds.PixelData)]
    ds.save_as(tmp_path / "pixels_only.dcm")
    ds.ImageComments = "随访 " + NAME
    ds.SpecificCharacterSet = "GB18030"
    ds.save_as(tmp_path / "in_header.dcm")
    hits = find_identifiers_in_tree(tmp_path, [NAME])
    assert {(h.path, h.where) for h in hits} == {("in_header.dcm", "content")}


def test_gb18030_names_with_a_trail_byte_in_the_upper_case_range_are_found(tmp_path: Path) -> None:
    """華 is C8 41 and 黃 FC 53 in GB18030: lower-casing the file's bytes changes their trail byte."""
    names = ["劉德華", "黃志明"]
    for i, name in enumerate(names):
        (tmp_path / f"{i}.txt").write_bytes(b"report: " + name.encode("gb18030"))
    hits = find_identifiers_in_tree(tmp_path, names)
    assert {(h.path, h.identifier) for h in hits} == {("0.txt", "劉德華"), ("1.txt", "黃志明")}


def test_only_whole_tokens_are_file_hits(tmp_path: Path) -> None:
    from brainfm.dicom.leaks import OwnIdentifierSearch

    def file_holds_identifiers(path: Path, identifiers: list[str]) -> bool:
        return OwnIdentifierSearch(identifiers).in_file(path)

    (tmp_path / "a.txt").write_bytes(b"date 20211234567 id 567890 TR 2000 Retain Longitudinal Encoding*wang")
    assert not file_holds_identifiers(tmp_path / "a.txt", ["1234567"])  # inside a longer number
    assert file_holds_identifiers(tmp_path / "a.txt", ["567890"])
    assert not file_holds_identifiers(tmp_path / "a.txt", ["2000"])  # too short to tell from a kept number
    assert not file_holds_identifiers(tmp_path / "a.txt", ["Long", "Ding"])  # inside words
    assert file_holds_identifiers(tmp_path / "a.txt", ["WANG"])  # "*" is no letter
