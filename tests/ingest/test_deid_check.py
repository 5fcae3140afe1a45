"""The de-identification gate judges NIfTI outputs too (free-text header fields must be empty, names must be
pseudonymous keys), and an export that still holds identifying values is withheld from data/."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np

from assets.ingest_checks import LeakGateReport, deid_gate


def _write_nifti(path: Path, descrip: str = "") -> None:
    image = nib.Nifti1Image(np.zeros((4, 4, 4), dtype=np.int16), np.eye(4))
    image.header["descrip"] = descrip.encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(image, path)


def test_nifti_outputs_pass_only_without_header_text_and_with_pseudonymous_names(tmp_path: Path) -> None:
    out = tmp_path / "PABCDEFGHIJKLMNOP" / "2.25.1" / "2.25.2"
    _write_nifti(out / "T1.nii")
    cleared = LeakGateReport(exported=2, identifier_hits=0)
    _write_nifti(out / "T2.nii", descrip="Zhang Wei 2019-09-04")
    gate = deid_gate(tmp_path, [], cleared)
    assert sorted(gate.frame["identity_removed"]) == ["NO", "YES"]
    assert gate.validate("test").failed_names == ["expect_column_values_to_be_in_set(identity_removed)"]
    (out / "T2.nii").unlink()
    _write_nifti(tmp_path / "Zhang_Wei_T2.nii")  # clean header, named after the patient
    assert deid_gate(tmp_path, [], cleared).validate("test").failed_names == [
        "expect_column_values_to_be_in_set(named_by_uids)"
    ]


def test_only_a_clean_export_enters_data_and_a_leaking_one_keeps_the_previous(tmp_path: Path) -> None:
    import dagster as dg
    import pytest

    from assets.ingest import publish_if_clean

    outs = [tmp_path / "data" / name / "center_x" for name in ("deidentified_studies", "normalized_slices")]
    held = tmp_path / "quarantine" / "ingest"
    for run, hits in ((1, 0), (2, 0), (3, 1)):
        staged = []
        for out in outs:
            staging = held / f"center_x.{out.parent.name}"
            (staging / "2.25.1").mkdir(parents=True)
            (staging / "2.25.1" / "x").write_bytes(f"run {run}".encode())
            staged.append((staging, out))
        if hits:
            with pytest.raises(dg.Failure, match="1 de-identified file.*previous export is kept"):
                publish_if_clean(hits, staged, held / "center_x.withheld")
        else:
            publish_if_clean(hits, staged, held / "center_x.withheld")
        assert not any(staging.exists() for staging, _ in staged)
    for out in outs:
        assert (out / "2.25.1" / "x").read_bytes() == b"run 2"  # the last clean export
        assert (held / "center_x.withheld" / out.parent.name / "2.25.1" / "x").read_bytes() == b"run 3"
    assert sorted(p.name for p in held.iterdir()) == ["center_x.withheld"]
