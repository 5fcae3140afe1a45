"""The raw cohort has the layout of docs/DATA_CONTRACT.md section 1 and the tiny profile's size."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from brainfm.synth import generate_cohort
from brainfm.synth.profiles import CATEGORIES, RARE_SUBTYPES, SUBTYPES


def test_manifest_keys_and_counts(raw: Path, manifest: dict) -> None:
    for key in (
        "profile",
        "seed",
        "generator_version",
        "centers",
        "n_patients",
        "n_studies",
        "n_series",
        "categories",
        "identifiers",
        "bad_files",
        "burned_in",
        "hazard_model",
        "oracle",
    ):
        assert key in manifest, key
    assert manifest["profile"] == "tiny" and manifest["seed"] == 0
    assert len(manifest["centers"]) >= 4
    assert 30 <= manifest["n_patients"] <= 40
    assert manifest["n_series"] == 4 * manifest["n_studies"]
    n_files = sum(1 for p in (raw / "dicom").rglob("*") if p.is_file())
    assert n_files < 3500
    assert n_files == manifest["n_dicom_files"] + len(manifest["bad_files"])


def test_every_category_and_subtype_present_normal_and_tumor_most_common(manifest: dict) -> None:
    assert set(manifest["categories"]) == set(CATEGORIES)
    assert set(manifest["subtypes"]) == {s for _, s, _ in SUBTYPES}
    top_two = sorted(manifest["categories"], key=manifest["categories"].get, reverse=True)[:2]
    assert set(top_two) == {"normal", "tumor"}
    assert all(manifest["subtypes"][s] <= 2 for s in RARE_SUBTYPES)


def test_reports_and_tables_follow_the_contract(raw: Path, manifest: dict) -> None:
    labels = pl.read_parquet(raw / "tables" / "labels.parquet")
    assert labels.height == manifest["n_studies"]
    for column in (
        "patient_id",
        "accession",
        "study_uid",
        "center",
        "category",
        "subtype",
        "grade",
        "laterality",
        "locations",
        "largest_size_mm",
        "mask",
    ):
        assert column in labels.columns
    clinical = pl.read_parquet(raw / "tables" / "clinical.parquet")
    assert {"patient_id", "center", "age_years", "sex", "symptoms", "kps"} <= set(clinical.columns)
    assert clinical["kps"].is_between(0, 100).all()
    outcomes = pl.read_parquet(raw / "tables" / "outcomes.parquet")
    assert {"patient_id", "metastasis", "survival_months", "event"} <= set(outcomes.columns)
    lines = [
        json.loads(line)
        for f in sorted((raw / "reports").glob("*.jsonl"))
        for line in f.read_text(encoding="utf-8").splitlines()
    ]
    assert sorted(r["id"] for r in lines) == sorted(labels["accession"])
    assert {r["center"] for r in lines} == set(manifest["centers"])
    for mask in labels["mask"].drop_nulls():
        assert (raw / mask).is_file()


def test_refuses_a_non_empty_output_folder(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("not mine")
    with pytest.raises(FileExistsError, match="not empty"):
        generate_cohort(tmp_path, "tiny", 0)
    with pytest.raises(ValueError, match="at least 5"):
        generate_cohort(tmp_path / "new", "tiny", 0, n_patients=3)
