"""Bad input to `brainfm predict` ends with exit status 2, a message naming the problem and no output folder:
no MR image, several patients or studies, impossible geometry, another modality, missing models, clinical
variables the prognosis head cannot use, an output folder inside the study, no study given."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pydicom
import pytest

import brainfm.cli
from tests.predict.conftest import copy_series, write_study, zero_spacing


@pytest.fixture()
def predict(models_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture):
    """``predict(study, out, *options)`` → (exit status, stderr) of the CLI with the tiny models."""
    monkeypatch.setattr(brainfm.cli, "COMMAND_MODULES", ("brainfm.predict.cli",))

    def call(study: Path | None, out: Path, *options: str) -> tuple[int, str]:
        argv = [
            "predict",
            *([str(study)] if study else []),
            "--out",
            str(out),
            "--models",
            str(models_dir),
            *options,
        ]
        status = brainfm.cli.main([*argv, "--device", "cpu"])
        return status, capsys.readouterr().err

    return call


def test_a_folder_without_images(predict, tmp_path: Path) -> None:
    folder = tmp_path / "study"
    folder.mkdir()
    (folder / "request.txt").write_text("MRI brain please")
    (folder / "IM0001").write_bytes(b"")
    status, err = predict(folder, tmp_path / "out")
    assert status == 2 and "No readable MR image" in err and "empty_file=1, not_dicom=1" in err
    assert not (tmp_path / "out").exists()


def _another_study_uid(ds: pydicom.Dataset) -> None:
    ds.StudyInstanceUID = "2.25.1234567890"


@pytest.mark.parametrize("mixed", ["two patients", "two studies of one patient"])
def test_several_patients_or_studies(predict, study, tmp_path: Path, mixed: str) -> None:
    folder = tmp_path / "study"
    shutil.copytree(study.series_dir("FLAIR"), folder / "flair")
    if mixed == "two patients":
        other = write_study(tmp_path / "raw", index=2)
        shutil.copytree(other.series_dir("T1"), folder / "t1")
        expected = "mixes 2 patient(s) and 2 studies"
    else:
        copy_series(study.series_dir("T1"), folder / "t1", _another_study_uid, new_uids=False)
        expected = "mixes 1 patient(s) and 2 studies"
    status, err = predict(folder, tmp_path / "out")
    assert status == 2 and expected in err and "--batch" in err
    assert not (tmp_path / "out").exists()


def _ct(ds: pydicom.Dataset) -> None:
    ds.Modality = "CT"


@pytest.mark.parametrize(("edit", "expected"), [(zero_spacing, "Impossible geometry"), (_ct, "No MR images")])
def test_no_usable_series(predict, study, tmp_path: Path, edit, expected: str) -> None:
    folder = copy_series(study.series_dir("T1"), tmp_path / "study", edit)
    status, err = predict(folder, tmp_path / "out")
    assert status == 2 and expected in err
    assert not (tmp_path / "out").exists()


def test_missing_models(predict, study, tmp_path: Path) -> None:
    status, err = predict(study.folder, tmp_path / "out", "--models", str(tmp_path))
    assert status == 2 and "lacks the model folders" in err and "mae_encoder/checkpoint" in err


def test_clinical_variables_the_head_cannot_use(predict, study, tmp_path: Path) -> None:
    clinical = tmp_path / "clinical.json"
    clinical.write_text(json.dumps({"age_years": 50, "sex": "M"}))
    status, err = predict(study.folder, tmp_path / "out", "--clinical", str(clinical))
    assert status == 2 and "lack ['kps', 'hypertension', 'diabetes', 'smoking']" in err
    clinical.write_text(json.dumps({"age_years": 50, "sex": "X", "kps": 90, "hypertension": 0, "diabetes": 0,
                                    "smoking": 0}))  # fmt: skip
    status, err = predict(study.folder, tmp_path / "out", "--clinical", str(clinical))
    assert status == 2 and "sex must be 'M' or 'F'" in err
    clinical.write_text("[1, 2]")
    status, err = predict(study.folder, tmp_path / "out", "--clinical", str(clinical))
    assert status == 2 and "JSON object" in err
    assert not (tmp_path / "out").exists()


def test_an_output_folder_inside_the_study(predict, study, tmp_path: Path) -> None:
    status, err = predict(study.folder, study.folder / "predictions")
    assert status == 2 and "inside the study folder" in err
    assert not (study.folder / "predictions").exists()


def test_no_study_given(predict, tmp_path: Path) -> None:
    status, err = predict(None, tmp_path / "out")
    assert status == 2 and "either STUDY_DIR or --batch" in err
