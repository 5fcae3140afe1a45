"""NIfTI input in a center folder: keyed names, sequence from sidecar or name, nothing of the header copied."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from brainfm.dicom import find_identifiers_in_tree
from brainfm.dicom.quarantine import read_quarantine
from brainfm.imaging.shards import open_slices
from brainfm.ingest import ingest_center, normalize_center, scan_center
from brainfm.pseudonym import Pseudonymizer, center_patient_key

from .conftest import IDENTIFIERS, phantom, write_series

KEY = Pseudonymizer(b"brainfm-test-secret-0123456789abcdef")
NIBABEL_DATA = Path(nib.__file__).parent / "tests" / "data"
# nibabel's shipped images, renamed so their names carry the sequence (no sidecar)
SHIPPED = {"anatomical.nii": "t1_mprage.nii", "example4d.nii.gz": "ep2d_diff.nii.gz",
           "example_nifti2.nii.gz": "T2_tse.nii.gz"}  # fmt: skip
PLANTED = "Zhang Wei/study1/Zhang Wei 3.nii"  # uncompressed: the raw scan sees its header
BAD = {"loose.nii.gz": "missing_uid", "Zhang Wei/study1/damaged.nii": "corrupt"}


def _planted_image() -> nib.Nifti1Image:
    """A phantom whose header text and extension name the patient (x, y, z) = (columns, rows, slices)."""
    image = nib.Nifti1Image(np.ascontiguousarray(phantom(16).T), np.diag([2.0, 2.0, 4.0, 1.0]))
    image.header["descrip"] = "Zhang Wei 张伟 19700315".encode()
    image.header["aux_file"] = b"ZW-00042"
    image.header["intent_name"] = b"Dr Li Na"
    image.header.extensions.append(nib.nifti1.Nifti1Extension("comment", b"Renmin Hospital 13800138000"))
    return image


@pytest.fixture(scope="module")
def center(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("raw") / "center_n"
    study = root / "Zhang Wei" / "study1"
    study.mkdir(parents=True)
    for source, name in SHIPPED.items():
        shutil.copy(NIBABEL_DATA / source, study / name)
    nib.save(_planted_image(), root / PLANTED)
    sidecar = {"SeriesDescription": "AX FLAIR 张伟", "PatientName": "Zhang Wei", "PatientID": "ZW-00042",
               "PatientBirthDate": "19700315", "AcquisitionDateTime": "2024-01-10T09:30:00",
               "InstitutionName": "Renmin Hospital", "ReferringPhysicianName": "Dr Li Na",
               "RepetitionTime": 9.0, "EchoTime": 0.1, "InversionTime": 2.5}  # fmt: skip
    (study / "Zhang Wei 3.json").write_text(json.dumps(sidecar, ensure_ascii=False), encoding="utf-8")
    write_series(root / "Wang Fang" / "s" / "dicom", patient_id="WF-7", name="Wang Fang=王芳", description="T2 TSE")
    shutil.copy(NIBABEL_DATA / "standard.nii.gz", root / "loose.nii.gz")
    (root / "Zhang Wei" / "study1" / "damaged.nii").write_bytes((root / PLANTED).read_bytes()[:300])
    return root


@pytest.fixture(scope="module")
def ingested(center: Path, tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("out")
    return out, ingest_center(center, out / "deid", out / "slices", out / "q.jsonl", "center_n", KEY)


def _digests(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*") if p.is_file()}


def test_no_identifier_from_names_headers_or_sidecars_reaches_any_output(center: Path, ingested) -> None:
    out, summary = ingested
    planted = {(h.path, h.where) for h in find_identifiers_in_tree(center, IDENTIFIERS)}
    assert {(PLANTED, "content"), ("Zhang Wei/study1/Zhang Wei 3.json", "content")} <= planted
    (out / "manifest").mkdir()
    summary.manifest.write_parquet(out / "manifest" / "manifest.parquet")
    for tree in ("deid", "slices", "manifest"):  # not q.jsonl: it names original paths, outside the output
        assert find_identifiers_in_tree(out / tree, IDENTIFIERS) == []
    nifti = sorted((out / "deid").rglob("*.nii"))
    assert {p.suffix for p in (out / "deid").rglob("*") if p.is_file()} == {".dcm", ".nii"}
    assert len(nifti) == len(SHIPPED) + 1
    for path in nifti:
        header = nib.load(path).header
        assert header["descrip"].item() == b"" and header["aux_file"].item() == b""
        assert header["intent_name"].item() == b"" and not header.extensions


def test_rewrite_keeps_array_and_affine_and_keys_sequence(center: Path, ingested) -> None:
    out, summary = ingested
    rows = summary.manifest.filter(transfer_syntax="nifti")
    assert rows.height == len(SHIPPED) + 1 and set(rows["status"]) == {"ok"}
    assert rows["patient"].n_unique() == 1
    assert rows["patient"][0] == KEY.patient_id(center_patient_key("center_n", "Zhang Wei"))
    assert sorted(rows["sequence"]) == ["DWI", "FLAIR", "T1", "T2"]  # FLAIR from the sidecar, others by name
    by_sequence = {p.name.split(".")[0]: p for p in (out / "deid").rglob("*.nii")}
    sources = {"T1": "t1_mprage.nii", "DWI": "ep2d_diff.nii.gz", "T2": "T2_tse.nii.gz", "FLAIR": "Zhang Wei 3.nii"}
    for sequence, name in sources.items():
        original, rewritten = nib.load(center / "Zhang Wei" / "study1" / name), nib.load(by_sequence[sequence])
        np.testing.assert_array_equal(np.asanyarray(rewritten.dataobj), np.asanyarray(original.dataobj))
        np.testing.assert_allclose(rewritten.affine, original.affine, atol=1e-5)
    entries = {e.path: str(e.reason) for e in read_quarantine(out / "q.jsonl")}
    assert entries == BAD  # the sidecar is read with its image, neither listed nor copied
    index = open_slices(out / "slices").index
    assert set(index["sequence"]) == {"T1", "T2", "FLAIR", "DWI"}
    assert set(rows["series"]) <= set(index["series"])


def test_scan_and_renormalising_the_deidentified_tree_agree_with_ingest(center: Path, ingested, tmp_path: Path) -> None:
    out, summary = ingested
    scan = scan_center(center, "center_n", KEY).filter(transfer_syntax="nifti")
    assert scan.equals(summary.manifest.filter(transfer_syntax="nifti"))
    normalize_center(out / "deid", tmp_path / "slices", "center_n")
    assert _digests(tmp_path / "slices") == _digests(out / "slices")
    second = tmp_path / "again"
    ingest_center(center, second / "deid", second / "slices", second / "q.jsonl", "center_n", KEY, workers=2)
    assert _digests(second / "deid") == _digests(out / "deid")
