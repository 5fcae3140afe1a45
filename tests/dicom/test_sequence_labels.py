"""Sequence labels and their source: header fields, names, the voxels of series nothing else describes, or none.

The cohort's held-out patients (the val side of the split the packaged content model was fitted with, see
bench/sequence_content.py) are stripped of every attribute the header inference reads and ingested as DICOM or
as neutrally named NIfTI files."""

from __future__ import annotations

import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import polars as pl
import pydicom
import pytest
from pydicom.dataset import Dataset

from brainfm.dicom.manifest import series_sequences
from brainfm.dicom.reading import SequenceLabel, infer_sequence, remove_sequence_evidence
from brainfm.imaging.sequence_content import content_features, load_model
from brainfm.imaging.shards import open_slices
from brainfm.imaging.volumes import Volume
from brainfm.ingest import ingest_center, normalize_center, scan_center
from brainfm.splits import split_patients
from brainfm.synth.anatomy import load_template
from brainfm.synth.contact_sheet import read_series
from tests.imaging.test_window import _rendered

from .test_center_robustness import KEY

# bench/sequence_content.py measured 0.992 (253/255, 95 % CI 0.972–0.998) on held-out synthetic patients; the
# tiny cohort holds out 16 series, so the floor allows one miss.
HELD_OUT_FLOOR = 0.9


@pytest.fixture(scope="module")
def held_out(manifest: dict) -> list[dict]:
    """Studies of the patients the packaged model was not fitted on (the session cohort is the one it names)."""
    fitted = load_model().fitted_on
    assert (manifest["profile"], manifest["seed"]) == (fitted["profile"], fitted["seed"])
    studies = list(manifest["studies"].values())
    sides = split_patients([s["patient_id"] for s in studies], fitted["train_fraction"], fitted["split_seed"])
    return [s for s in studies if sides[s["patient_id"]] == "val"]


def _volumes(raw: Path, series: dict) -> list[np.ndarray]:
    """(slices, rows, columns) arrays of a cohort series, one per b-value."""
    return [read_series(raw / series["dir"], b)[0].astype(np.float32) for b in series["b_values"] or [None]]


def _strip(raw: Path, study: dict, out: Path, description: str | None = None) -> dict[str, str]:
    """Copy a study's series into ``out/<series dir name>`` without any attribute the header inference reads
    (``description`` put back as SeriesDescription); returns pseudonymous series UID → true sequence."""
    for series in study["series"]:
        (out / Path(series["dir"]).name).mkdir(parents=True)
        for path in sorted((raw / series["dir"]).iterdir()):
            ds = pydicom.dcmread(path)
            remove_sequence_evidence(ds)
            if description:
                ds.SeriesDescription = description
            ds.save_as(out / Path(series["dir"]).name / path.name)
    return {KEY.uid(s["series_uid"]): s["sequence"] for s in study["series"]}


def _labels(index: pl.DataFrame) -> dict[str, str]:
    return dict(index.select("series", "sequence").unique().iter_rows())


@pytest.mark.parametrize(
    ("attributes", "expected"),
    [
        ({"ImageType": ["ORIGINAL", "PRIMARY", "DIFFUSION", "NONE"]}, ("DWI", "header")),
        ({"RepetitionTime": "9000", "EchoTime": "120", "InversionTime": "2500"}, ("FLAIR", "header")),
        ({"SeriesDescription": "AX T2 FLAIR", "RepetitionTime": "500", "EchoTime": "12"}, ("FLAIR", "name")),
        ({"ProtocolName": "3-plane localizer"}, ("other", "name")),
        ({"Modality": "CT"}, ("other", "header")),
        ({"RepetitionTime": "3000", "EchoTime": "15"}, ("unknown", "none")),  # proton density: no rule says
        ({}, ("unknown", "none")),
    ],
    ids=["image-type", "timing", "description", "localizer", "not-mr", "pd-timing", "nothing"],
)
def test_each_label_names_its_source(attributes: dict, expected: tuple[str, str]) -> None:
    ds = Dataset()
    ds.Modality = "MR"
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    assert infer_sequence(ds) == SequenceLabel(*expected)


def test_held_out_patients_are_labelled_by_content_at_or_above_the_floor(
    raw: Path, held_out: list[dict]
) -> None:
    truth, labels = [], []
    for study in held_out:
        for series in study["series"]:
            stacks = _volumes(raw, series)
            features = content_features([Volume(np.moveaxis(s, 0, -1), np.eye(4), None) for s in stacks])
            truth.append(series["sequence"])
            labels.append(None if features is None else load_model().predict(features))
    assert len(truth) >= 12 and set(truth) == {"T1", "T2", "FLAIR", "DWI"}
    assert np.mean([t == p for t, p in zip(truth, labels, strict=True)]) >= HELD_OUT_FLOOR


def test_a_dicom_study_without_descriptions_or_timing_is_labelled_by_content(
    raw: Path, held_out: list[dict], tmp_path: Path
) -> None:
    center = tmp_path / "raw"
    truth = _strip(raw, held_out[0], center / "patient" / "study")
    t1_dir = next(s["dir"] for s in held_out[0]["series"] if s["sequence"] == "T1")
    t1 = center / "patient" / "study" / Path(t1_dir).name
    (center / "patient" / "later").mkdir()
    for path in sorted(t1.iterdir())[:2]:  # one series in two folders: labelled again from the whole series,
        shutil.move(path, center / "patient" / "later" / path.name)  # not from two edge slices
    summary = ingest_center(
        center, tmp_path / "deid", tmp_path / "slices", tmp_path / "q.jsonl", "center_s", KEY
    )
    ok = summary.manifest.filter(status="ok")
    assert set(ok.select("series", "sequence", "sequence_source").iter_rows()) == {
        (s, q, "content") for s, q in truth.items()
    }
    assert _labels(open_slices(tmp_path / "slices").index) == truth
    scanned = scan_center(center, "center_s", KEY)  # headers only: nothing says, nothing decoded
    assert set(scanned.filter(status="ok").select("sequence", "sequence_source").iter_rows()) == {
        ("unknown", "none")
    }
    normalize_center(tmp_path / "deid", tmp_path / "again", "center_s", sequences=series_sequences(scanned))
    assert _labels(open_slices(tmp_path / "again").index) == truth


def test_neutrally_named_nifti_volumes_are_labelled_by_content_or_stay_unknown(
    raw: Path, held_out: list[dict], tmp_path: Path
) -> None:
    study = tmp_path / "raw" / "patient" / "study"
    study.mkdir(parents=True)
    truth = {}
    for k, series in enumerate(held_out[1]["series"]):
        # (slices, rows, columns) → (x, y, z[, b]) with 1.5 × 1.5 × 6 mm voxels
        stacks = _volumes(raw, series)
        data = np.stack([s.transpose(2, 1, 0) for s in stacks], axis=-1)
        nib.save(nib.Nifti1Image(data[..., 0] if len(stacks) == 1 else data, np.diag([1.5, 1.5, 6.0, 1.0])),
                 study / f"series{k}.nii.gz")  # fmt: skip
        truth[f"series{k}"] = (series["sequence"], "content")
    # Unlike every fitted series (tests/imaging/test_sequence_content.py): its voxels do not tell.
    nib.save(
        nib.Nifti1Image(_rendered(load_template(), "T1", 0, False), np.diag([2.0, 2.0, 2.0, 1.0])),
        study / "x.nii",
    )
    truth["x"] = ("unknown", "none")
    summary = ingest_center(
        tmp_path / "raw", tmp_path / "deid", tmp_path / "slices", tmp_path / "q.jsonl", "center_n", KEY
    )
    expected = {KEY.uid(f"nifti:patient/study/{name}"): label for name, label in truth.items()}
    rows = summary.manifest.filter(status="ok")
    assert {
        s: (q, src) for s, q, src in rows.select("series", "sequence", "sequence_source").iter_rows()
    } == expected
    labels = {s: q for s, (q, _) in expected.items()}
    assert _labels(open_slices(tmp_path / "slices").index) == labels
    named = {p.name for p in (tmp_path / "deid").rglob("*.nii")}
    assert named == {"unknown.nii"}  # the de-identified copy is named before its voxels are read
    normalize_center(tmp_path / "deid", tmp_path / "again", "center_n")
    assert _labels(open_slices(tmp_path / "again").index) == labels
    scanned = scan_center(tmp_path / "raw", "center_n", KEY).filter(status="ok")
    assert set(scanned.select("sequence", "sequence_source").iter_rows()) == {("unknown", "none")}


def test_a_localizer_stays_other_from_its_name_whatever_its_voxels(
    raw: Path, held_out: list[dict], tmp_path: Path
) -> None:
    t1 = {**held_out[0], "series": [s for s in held_out[0]["series"] if s["sequence"] == "T1"]}
    _strip(raw, t1, tmp_path / "raw" / "patient" / "study", description="3-plane localizer")
    summary = ingest_center(
        tmp_path / "raw", tmp_path / "deid", tmp_path / "slices", tmp_path / "q.jsonl", "center_l", KEY
    )
    rows = summary.manifest.filter(status="ok")
    assert set(rows.select("sequence", "sequence_source").iter_rows()) == {("other", "name")}
    assert set(open_slices(tmp_path / "slices").index["sequence"]) == {"other"}
