"""`brainfm predict` on a synthetic study: every output exists and is valid, the segmentation lands on the
input series' own grid (NIfTI affine, DICOM SEG frames on the original instances), the SR carries the JSON's
measurements, the class probabilities are those of the training-time evaluation path, a failed run leaves
nothing half-written, and batch mode (with a NIfTI study) loads the models once."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import highdicom as hd
import nibabel as nib
import numpy as np
import polars as pl
import pydicom
import pytest
from nibabel.processing import resample_from_to
from pydicom.uid import SegmentationStorage

import brainfm.cli
import models.checkpoint
from brainfm.imaging.masks import load_mask, mask_slices, volume_geometry
from brainfm.ingest import ingest_center
from brainfm.predict import run
from brainfm.predict.outputs import lesion_measurements
from brainfm.predict.study import slices_to_volume
from brainfm.pseudonym import Pseudonymizer
from brainfm.secrets import load_secret
from models.heads.grading import GRADE_SCALES
from models.heads.study_data import StudyBags
from models.heads.study_train import load_study_adapter, predict_studies

CLINICAL = {"age_years": 61, "sex": "F", "kps": 70, "hypertension": 1, "diabetes": 0, "smoking": 1}


def originals(folder: Path) -> list[pydicom.Dataset]:
    """The readable DICOM files of a series folder, ordered along the slice normal (inferior first)."""
    datasets = [pydicom.dcmread(p) for p in sorted(folder.iterdir()) if p.name != "broken.dcm"]
    normal = np.cross(*np.reshape(np.asarray(datasets[0].ImageOrientationPatient, float), (2, 3)))
    return sorted(datasets, key=lambda d: float(normal @ np.asarray(d.ImagePositionPatient, float)))


def dicom_affine(datasets: list[pydicom.Dataset]) -> np.ndarray:
    """Voxel (row, column, slice) → RAS mm from the headers (PS3.3 C.7.6.2.1.1), slices ordered as given."""
    row_cosine, column_cosine = np.reshape(np.asarray(datasets[0].ImageOrientationPatient, float), (2, 3))
    positions = np.array([d.ImagePositionPatient for d in datasets], dtype=float)
    row_mm, column_mm = (float(v) for v in datasets[0].PixelSpacing)
    lps = np.eye(4)
    lps[:3, 0], lps[:3, 1] = column_cosine * row_mm, row_cosine * column_mm  # down a column, along a row
    lps[:3, 2], lps[:3, 3] = positions[1] - positions[0], positions[0]
    return np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps


def series_summary(result: dict, sequence: str) -> dict:
    return next(s for s in result["study"]["series"] if s["sequence"] == sequence)


@pytest.fixture(scope="module")
def training_ingest(study, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The study ingested by `ingest_center`, as the pipeline ingests a center: its normalised slices."""
    out = tmp_path_factory.mktemp("training_ingest")
    pseudonymizer = Pseudonymizer(load_secret())
    ingest_center(
        study.folder, out / "deid", out / "slices", out / "quarantine.jsonl", "center_b", pseudonymizer
    )
    return out / "slices"


def test_predictions_json_holds_every_section(predicted, study, predictor, models_dir: Path) -> None:
    out, result = predicted
    assert json.loads((out / run.PREDICTIONS_FILE).read_text(encoding="utf-8")) == result
    assert sorted(p.name for p in out.iterdir()) == sorted([run.PREDICTIONS_FILE, *run.OUTPUT_FILES.values()])
    assert result["outputs"] == run.OUTPUT_FILES
    for output, classes in predictor.heads["classification"][0].classes.items():
        probabilities = result["classification"][output]["probabilities"]
        assert list(probabilities) == classes
        assert sum(probabilities.values()) == pytest.approx(1.0, abs=1e-5)
        assert result["classification"][output]["label"] == max(probabilities, key=probabilities.get)
    subtype, grade = result["classification"]["subtype"]["label"], result["grade"]
    if subtype in GRADE_SCALES:
        assert grade["scale"] == subtype and grade["label"] in GRADE_SCALES[subtype]
        assert list(grade["p_above"]) == list(GRADE_SCALES[subtype][:-1])
    else:
        assert grade["scale"] is None and grade["label"] is None
    assert (
        result["prognosis"]["clinical"] == "training_mean" and result["prognosis"]["p_metastasis_2y"] is None
    )
    assert np.isfinite(result["prognosis"]["risk_log_hazard_ratio"])
    assert result["report"] is None  # no stage-2 model in MODELS_DIR: nothing is made up
    for folder, files in result["models"]["md5"].items():  # DVC's hash: the MD5 of the file's bytes
        assert files == {n: hashlib.md5((models_dir / folder / n).read_bytes()).hexdigest() for n in files}
    assert set(result["models"]["md5"]) == {
        run.ENCODER_DIR,
        run.SEGMENTATION_DIR,
        *run.STUDY_ADAPTER_DIRS.values(),
    }
    steps = {
        "load_models",
        "ingest",
        "classification",
        "grading",
        "prognosis",
        "segmentation",
        "outputs",
        "gradcam",
        "report",
    }
    assert set(result["timings_s"]) == steps and min(result["timings_s"].values()) >= 0
    assert result["study"]["key"] == Pseudonymizer(load_secret()).uid(study.record["study_uid"])
    assert result["study"]["pseudonym_key"] == "site" and result["study"]["input"] == "dicom"
    assert {s["sequence"] for s in result["study"]["series"]} == {"T1", "FLAIR"}


def test_bad_files_and_series_are_listed_and_the_rest_predicted(predicted, study) -> None:
    _, result = predicted
    broken = (study.series_dir("FLAIR") / "broken.dcm").relative_to(study.folder).as_posix()
    assert {e["path"]: e["reason"] for e in result["quarantined"]} == {
        "notes.txt": "not_dicom",
        broken: "truncated",
    }
    assert any("notes.txt" in w for w in result["warnings"]) and any(broken in w for w in result["warnings"])
    assert any(
        w.startswith("T1 series") and w.endswith("left out (bad_geometry)") for w in result["warnings"]
    )
    assert series_summary(result, "FLAIR")["slices"] > 0


def test_the_nifti_lies_on_the_input_series_grid(predicted, study) -> None:
    """Affine and shape of the FLAIR series as its DICOM headers give them; every kept slice labelled lesion
    (the head is biased to it), the QC-excluded ones 0; volume and diameter from that known label map."""
    out, result = predicted
    flair = originals(study.series_dir("FLAIR"))
    image = nib.load(out / run.OUTPUT_FILES["nifti"])
    np.testing.assert_allclose(image.affine, dicom_affine(flair), atol=1e-3)  # NIfTI stores it in float32
    assert image.shape == (flair[0].Rows, flair[0].Columns, len(flair))
    labels = np.asarray(image.dataobj)
    whole = [k for k in range(labels.shape[2]) if (labels[:, :, k] == 1).all()]
    assert len(whole) == series_summary(result, "FLAIR")["slices"]
    assert not np.delete(labels, whole, axis=2).any()
    measured = result["segmentation"]["measurements"]
    assert set(measured) == {"lesion"}
    voxel_ml = abs(np.linalg.det(image.affine[:3, :3])) / 1000
    assert measured["lesion"]["volume_ml"] == pytest.approx(
        labels.size / labels.shape[2] * len(whole) * voxel_ml
    )
    corner_to_corner = image.affine[:3, :3] @ [
        labels.shape[0] - 1,
        labels.shape[1] - 1,
        max(whole) - min(whole),
    ]
    assert measured["lesion"]["largest_diameter_mm"] == pytest.approx(
        np.linalg.norm(corner_to_corner), rel=1e-5
    )


def test_the_segmented_series_is_encoded_once(predicted, predictor) -> None:
    """The probe segmenter shares the heads' encoder, so the heads' one pass over the study kept the FLAIR
    slices' feature maps and the segmenter read them (that they segment alike: tests/models/test_experiments.py)."""
    _, result = predicted
    key, kept, table = predictor._embeddings
    assert key == result["study"]["key"]
    assert len(kept) == series_summary(result, "FLAIR")["slices"] > 0
    assert [len(m) for m in table.feature_maps] == [len(kept)] * 4


def test_the_dicom_seg_lies_on_the_original_instances(predicted, study) -> None:
    out, result = predicted
    path = out / run.OUTPUT_FILES["dicom_seg"]
    seg, raw = hd.seg.segread(path), pydicom.dcmread(path)
    assert raw.SOPClassUID == SegmentationStorage and seg.SegmentationType == "BINARY"
    flair = {d.SOPInstanceUID: d for d in originals(study.series_dir("FLAIR"))}
    source = next(iter(flair.values()))
    # The original study's keys (the PACS files it with the study), so it identifies the patient as the study does.
    assert (seg.StudyInstanceUID, seg.PatientID) == (study.record["study_uid"], source.PatientID)
    assert seg.FrameOfReferenceUID == source.FrameOfReferenceUID
    assert (seg.Rows, seg.Columns) == (source.Rows, source.Columns)
    frames = raw.pixel_array.reshape(-1, seg.Rows, seg.Columns)
    referenced = []
    for frame, item in zip(frames, raw.PerFrameFunctionalGroupsSequence, strict=True):
        assert item.SegmentIdentificationSequence[0].ReferencedSegmentNumber == 1
        uid = item.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID
        position = item.PlanePositionSequence[0].ImagePositionPatient
        np.testing.assert_allclose(
            np.asarray(position, float), np.asarray(flair[uid].ImagePositionPatient, float)
        )
        assert frame.all()  # every kept slice is lesion throughout
        referenced.append(uid)
    assert len(set(referenced)) == len(referenced) == series_summary(result, "FLAIR")["slices"]
    assert set(referenced) <= set(flair)


def test_the_measurement_report_carries_the_json_measurements(predicted) -> None:
    out, result = predicted
    sr = hd.sr.srread(out / run.OUTPUT_FILES["dicom_sr"])
    seg = pydicom.dcmread(out / run.OUTPUT_FILES["dicom_seg"])
    (group,) = sr.content.get_volumetric_roi_measurement_groups()
    assert group.referenced_segment.referenced_sop_instance_uid == seg.SOPInstanceUID
    assert group.referenced_segment.referenced_segment_numbers == [1]
    values = {m.name.meaning: (m.value, m.unit.value) for m in group.get_measurements()}
    lesion = result["segmentation"]["measurements"]["lesion"]
    assert values == {
        "Volume": (pytest.approx(lesion["volume_ml"]), "ml"),
        "Diameter": (pytest.approx(lesion["largest_diameter_mm"]), "mm"),
    }
    assert sr.StudyInstanceUID == seg.StudyInstanceUID


def test_probabilities_are_those_of_the_training_evaluation_path(
    predicted, study, models_dir: Path, training_ingest: Path
) -> None:
    _, result = predicted
    bags = StudyBags(training_ingest)
    key = result["study"]["key"]
    encoder = models.checkpoint.load_encoder(models_dir / run.ENCODER_DIR)
    head, _ = load_study_adapter(models_dir / run.STUDY_ADAPTER_DIRS["classification"], encoder)
    row = predict_studies(encoder, head, bags, [key]).loc[key]
    for output, classes in head.classes.items():
        given = result["classification"][output]["probabilities"]
        assert given == {c: pytest.approx(float(row[f"p_{output}_{c}"]), abs=1e-6) for c in classes}


def test_slices_to_volume_inverts_the_mask_mapping(study, training_ingest: Path) -> None:
    """The study's lesion mask mapped onto the FLAIR slices (the training-time mapping) and back gives the mask
    on the FLAIR grid voxel for voxel (the slices enlarge the 160-px series to 256 px, so nothing is lost)."""
    volumes = pl.read_parquet(training_ingest / "volumes.parquet").filter(pl.col("sequence") == "FLAIR")
    volume = volumes.row(0, named=True)
    geometry = volume_geometry(volume)
    mask = load_mask(study.raw / study.record["mask"])
    every = list(range(len(geometry.slice_index)))
    back = slices_to_volume(mask_slices(mask, geometry, every), every, volume)
    expected = resample_from_to(
        mask, (geometry.shape, geometry.affine), order=0, mode="grid-constant", cval=0
    )
    assert np.isin(back, [1, 2, 3]).sum() > 100  # a lesion to compare
    np.testing.assert_array_equal(back, np.asarray(expected.dataobj))


def test_lesion_measurements_of_known_shapes() -> None:
    """A 3×4×2-voxel box at 0.5 × 0.5 × 2 mm: 24 voxels of 0.5 mm³; its diameter joins opposite voxel centres.
    A one-voxel label has diameter 0; a label on one slice (no volume for a 3-D hull) is measured in-plane."""
    labels = np.zeros((10, 10, 5), dtype=np.uint8)
    labels[2:5, 3:7, 1:3] = 1
    labels[8, 8, 4] = 3
    labels[0:6, 0:6, 0] = 2
    affine = np.diag([0.5, 0.5, 2.0, 1.0])
    measured = lesion_measurements(labels, affine)
    assert measured["lesion"]["volume_ml"] == pytest.approx(24 * 0.5 / 1000)
    assert measured["lesion"]["largest_diameter_mm"] == pytest.approx(np.sqrt(1.0**2 + 1.5**2 + 2.0**2))
    assert measured["necrosis"] == {"volume_ml": pytest.approx(0.5 / 1000), "largest_diameter_mm": 0.0}
    assert measured["oedema"]["largest_diameter_mm"] == pytest.approx(np.hypot(2.5, 2.5))


def test_a_failed_run_leaves_the_previous_output_untouched(
    predictor, study, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run that dies half-way (here: after writing part of a file) leaves OUT_DIR as it was and nothing
    beside it."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "previous.txt").write_text("an earlier prediction")

    def half_written(_self: run.Predictor, _study: object, stage: Path, *_args: object) -> None:
        (stage / run.OUTPUT_FILES["nifti"]).write_bytes(b"\x1f\x8b")
        raise OSError("No space left on device")

    monkeypatch.setattr(run.Predictor, "_predict", half_written)
    with pytest.raises(OSError, match="No space left"):
        predictor.predict(study.folder, out)
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no staging folder left beside it
    assert [p.name for p in out.iterdir()] == ["previous.txt"]


def nifti_study(study, folder: Path) -> Path:
    """The study's FLAIR series as a NIfTI file (voxels and affine from the DICOM), as a NIfTI site exports it."""
    folder.mkdir(parents=True)
    datasets = originals(study.series_dir("FLAIR"))
    data = np.stack([d.pixel_array for d in datasets], axis=-1).astype(np.float32)
    nib.save(nib.Nifti1Image(data, dicom_affine(datasets)), folder / "FLAIR.nii.gz")
    return folder


def test_batch_mode_loads_the_models_once(
    study, models_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    """A NIfTI study with clinical variables and an empty folder, through the CLI: the models load once, the
    empty folder is reported and the NIfTI study predicted on its own grid."""
    root, out = tmp_path / "studies", tmp_path / "out"
    nifti = nifti_study(study, root / "nifti_study")
    (root / "empty").mkdir()
    clinical = tmp_path / "clinical.json"
    clinical.write_text(json.dumps({"nifti_study": CLINICAL}))
    loads = []
    load_encoder = models.checkpoint.load_encoder
    monkeypatch.setattr(
        models.checkpoint, "load_encoder", lambda *a, **k: loads.append(a) or load_encoder(*a, **k)
    )
    monkeypatch.setattr(brainfm.cli, "COMMAND_MODULES", ("brainfm.predict.cli",))
    argv = ["predict", "--batch", str(root), "--out", str(out), "--models", str(models_dir), "--device", "cpu",
            "--clinical", str(clinical)]  # fmt: skip
    assert brainfm.cli.main(argv) == 2  # the empty folder
    assert len(loads) == 1
    status = json.loads((out / run.BATCH_FILE).read_text(encoding="utf-8"))
    assert status["nifti_study"] == "ok"
    assert "No readable MR image" in status["empty"] and "empty" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == [run.BATCH_FILE, "nifti_study"]
    result = json.loads((out / "nifti_study" / run.PREDICTIONS_FILE).read_text(encoding="utf-8"))
    assert result["prognosis"]["clinical"] == "given" and 0.0 < result["prognosis"]["p_metastasis_2y"] < 1.0
    assert result["study"]["input"] == "nifti"
    assert set(result["outputs"]) == {"nifti", "overlay_segmentation", "overlay_gradcam"}
    assert any("NIfTI input" in w for w in result["warnings"])
    segmentation = nib.load(out / "nifti_study" / run.OUTPUT_FILES["nifti"])
    np.testing.assert_array_equal(segmentation.affine, nib.load(nifti / "FLAIR.nii.gz").affine)
    assert segmentation.shape == nib.load(nifti / "FLAIR.nii.gz").shape
