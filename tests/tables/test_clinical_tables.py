"""The tiny cohort's tables pseudonymised with the DICOM key: they join the ingested images, carry no
identifier, keep the oracle apart, and split patients 7:3 by (center, category), one side per patient."""

from __future__ import annotations

import itertools
import json
import random
import shutil
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pydicom
import pytest

from brainfm.ingest import ingest_center
from brainfm.pseudonym import Pseudonymizer
from brainfm.raw_layout import RawLayout
from brainfm.splits import DOWNSTREAM_TRAIN_FRACTION, label_fraction_subset, stratified_split
from brainfm.tables import (
    ORACLE_DIR,
    ORACLE_MARKER,
    TablesSummary,
    held_out_patients,
    identifier_hits,
    index_join,
    layout_report,
    mask_paths,
    original_identifiers,
    patient_strata,
    pseudonymise_tables,
    read_oracle,
    read_tables,
    schema_report,
    split_report,
)

KEY = Pseudonymizer(b"brainfm-test-secret-0123456789abcdef")  # tests/conftest.py TEST_SECRET


@dataclass(frozen=True)
class Cohort:
    raw: Path
    manifest: dict
    tables: Path  # the pseudonymised tables
    summary: TablesSummary
    deid: Path  # data/deidentified_studies
    index: pl.DataFrame  # every center's normalized_slices index


@pytest.fixture(scope="module")
def cohort(raw: Path, manifest: dict, tmp_path_factory: pytest.TempPathFactory) -> Cohort:
    out = tmp_path_factory.mktemp("clinical_tables")
    for center in RawLayout(raw).centers():
        ingest_center(
            raw / "dicom" / center, out / "deid" / center, out / "slices" / center,
            out / "quarantine" / f"{center}.jsonl", center, KEY,
        )  # fmt: skip
    summary = pseudonymise_tables(RawLayout(raw).tables, out / "tables", KEY, seed=0)
    index = pl.read_parquet(sorted((out / "slices").glob("*/index.parquet")))
    return Cohort(raw, manifest, out / "tables", summary, out / "deid", index)


def test_tables_join_the_images_on_patient_study_and_accession(cohort: Cohort) -> None:
    tables = read_tables(cohort.tables)
    joined = index_join(tables["labels"], cohort.index)
    assert joined.height == cohort.manifest["n_studies"]  # every study of the tiny cohort has kept slices
    assert joined["labelled"].all() and joined["same_patient"].all()
    labels = {row["study"]: row for row in tables["labels"].iter_rows(named=True)}
    # deid/<center>/<new StudyInstanceUID>/<series>/<sop>.dcm
    for study_dir in sorted(cohort.deid.glob("*/*")):
        ds = pydicom.dcmread(next(study_dir.rglob("*.dcm")), stop_before_pixels=True)
        row = labels[ds.StudyInstanceUID]
        assert (ds.PatientID, ds.AccessionNumber) == (row["patient"], row["accession"])
    assert (
        set(tables["clinical"]["patient"])
        == set(tables["labels"]["patient"])
        == set(tables["outcomes"]["patient"])
    )
    for name in ("reader_study", "controlled_trial"):  # the reads link to the studies they read
        pairs = tables[name].select("patient", "accession").unique()
        assert pairs.join(tables["labels"], on=["patient", "accession"], how="anti").is_empty()


def test_no_identifier_and_only_documented_columns(cohort: Cohort) -> None:
    tables = read_tables(cohort.tables) | {"oracle": read_oracle(cohort.tables)}
    planted = RawLayout(cohort.raw).planted_identifiers()
    originals = original_identifiers(RawLayout(cohort.raw).tables)
    assert {"patient_id", "accession"} <= cohort.manifest["identifiers"].keys()
    assert len(originals) >= 3 * cohort.manifest["n_patients"]  # patient IDs, accessions, study UIDs, …
    hits = identifier_hits(tables, planted + originals)
    assert hits.height >= 10 and hits["hits"].sum() == 0
    assert schema_report(tables)["ok"].all()
    assert "mask" not in tables["labels"].columns and tables["labels"]["has_mask"].sum() == sum(
        s["mask"] is not None for s in cohort.manifest["studies"].values()
    )
    # the search itself works: a planted name, an original study UID and a lower-cased patient ID put back
    study = cohort.manifest["studies"][next(iter(cohort.manifest["studies"]))]
    name = cohort.manifest["identifiers"]["patient_name"][0]
    patient_id = study["patient_id"]
    leaky = tables["labels"].with_columns(
        pl.Series("subtype", [f"glioma ({name})"] + tables["labels"]["subtype"].to_list()[1:]),
        pl.Series("study", [study["study_uid"]] + tables["labels"]["study"].to_list()[1:]),
        pl.Series(
            "locations",
            [["frontal_lobe", f"near {patient_id.lower()}"]] + tables["labels"]["locations"].to_list()[1:],
        ),
    )
    found = identifier_hits({"labels": leaky}, planted + originals).filter(pl.col("hits") > 0)
    assert dict(zip(found["column"], found["hits"], strict=True)) == {
        "subtype": 1,
        "study": 1,
        "locations": 1,
    }


def test_oracle_only_under_synthetic_oracle(cohort: Cohort, tmp_path: Path) -> None:
    oracle = read_oracle(cohort.tables)
    assert oracle is not None and set(oracle["patient"]) == set(
        read_tables(cohort.tables)["outcomes"]["patient"]
    )
    assert "SYNTHETIC ONLY" in (cohort.tables / ORACLE_DIR / ORACLE_MARKER).read_text(encoding="utf-8")
    assert layout_report(cohort.tables)["ok"].all()
    oracle_columns = set(oracle.columns) - {"patient"}
    assert all(not oracle_columns & set(t.columns) for t in read_tables(cohort.tables).values())
    outside = [p for p in cohort.tables.rglob("*.parquet") if p.parent.name != ORACLE_DIR]
    assert all(not oracle_columns & set(pl.read_parquet_schema(p)) for p in outside) and len(outside) == 5
    # a copy beside the training tables, or an oracle without its marker, is flagged
    copy = tmp_path / "tables"
    shutil.copytree(cohort.tables, copy)
    shutil.copy(copy / ORACLE_DIR / "oracle.parquet", copy / "oracle.parquet")
    (copy / ORACLE_DIR / ORACLE_MARKER).unlink()
    problems = layout_report(copy).filter(~pl.col("ok"))
    assert problems.sort("path")["path"].to_list() == ["oracle.parquet", f"{ORACLE_DIR}/{ORACLE_MARKER}"]
    # a real site (no oracle table) gets no oracle folder
    site = tmp_path / "site"
    shutil.copytree(RawLayout(cohort.raw).tables, site, ignore=shutil.ignore_patterns("oracle.parquet"))
    pseudonymise_tables(site, tmp_path / "site_out", KEY)
    assert read_oracle(tmp_path / "site_out") is None and not (tmp_path / "site_out" / ORACLE_DIR).exists()


def test_split_is_7_to_3_stratified_deterministic_and_one_side_per_patient(
    cohort: Cohort, tmp_path: Path
) -> None:
    tables = read_tables(cohort.tables)
    sides = split_report(tables)
    assert (sides["sides"] == 1).all() and sides.height == cohort.manifest["n_patients"]
    n_train = (sides["split"] == "train").sum()
    assert n_train == round(DOWNSTREAM_TRAIN_FRACTION * sides.height) == cohort.summary.n_train
    assert held_out_patients(cohort.tables) == set(sides.filter(pl.col("split") == "test")["patient"])
    assert held_out_patients(tmp_path) == frozenset()  # no labels sent: nothing held out
    strata = patient_strata(tables["labels"])
    by_stratum = pl.DataFrame({"patient": list(strata), "stratum": [str(s) for s in strata.values()]}).join(
        sides, on="patient"
    )
    per = by_stratum.group_by("stratum").agg(n=pl.len(), train=(pl.col("split") == "train").sum())
    assert (
        per.filter(pl.col("n") >= 2)
        .select(((pl.col("train") >= 1) & (pl.col("train") < pl.col("n"))).all())
        .item()
    )
    # the same seed gives the same split; another seed another one
    pseudonymise_tables(RawLayout(cohort.raw).tables, tmp_path / "again", KEY, seed=0)
    assert read_tables(tmp_path / "again")["labels"].equals(tables["labels"])
    pseudonymise_tables(RawLayout(cohort.raw).tables, tmp_path / "seed1", KEY, seed=1)
    assert not read_tables(tmp_path / "seed1")["labels"]["split"].equals(tables["labels"]["split"])


def test_stratified_split_on_a_larger_cohort() -> None:
    rng = random.Random(0)
    centers, categories = "abcde", ["normal", "tumor", "infection", "malformation"]
    strata = {
        f"P{i:04d}": (rng.choice(centers), rng.choices(categories, [10, 6, 3, 1])[0]) for i in range(400)
    }
    split = stratified_split(strata, seed=3)
    assert sum(s == "train" for s in split.values()) == 280 and split == stratified_split(strata, seed=3)
    for stratum in set(strata.values()):
        members = [p for p, s in strata.items() if s == stratum]
        train = sum(split[p] == "train" for p in members)
        assert int(0.7 * len(members)) <= train <= int(0.7 * len(members)) + 1 and 0 < train < len(members)


def test_a_patient_with_several_categories_takes_the_rarest() -> None:
    labels = pl.DataFrame(
        {
            "patient": ["PA", "PA", "PB", "PC", "PD"],
            "center": ["center_a"] * 5,
            "category": ["normal", "malformation", "normal", "normal", "tumor"],
        }
    )
    clinical = pl.DataFrame({"patient": ["PA", "PE"], "center": ["center_a", "center_b"]})
    strata = patient_strata(labels, clinical)
    assert strata == {
        "PA": ("center_a", "malformation"),
        "PB": ("center_a", "normal"),
        "PC": ("center_a", "normal"),
        "PD": ("center_a", "tumor"),
        "PE": ("center_b", "unlabelled"),
    }


def test_label_fraction_subsets_are_nested_and_keep_every_stratum() -> None:
    rng = random.Random(1)
    strata = {
        f"P{i:03d}": (rng.choice("abc"), rng.choices(["normal", "tumor", "rare"], [8, 4, 1])[0])
        for i in range(200)
    }
    train = [p for p, side in stratified_split(strata, seed=0).items() if side == "train"]
    fractions = (0.1, 0.2, 0.3, 0.4, 0.5, 1.0)
    subsets = [set(label_fraction_subset(train, strata, f, seed=2)) for f in fractions]
    assert all(small < large for small, large in itertools.pairwise(subsets))
    assert subsets[-1] == set(train) and len(subsets[1]) == round(0.2 * len(train))
    for subset in subsets:
        assert {strata[p] for p in subset} == {strata[p] for p in train}
    assert subsets[0] != set(label_fraction_subset(train, strata, 0.1, seed=3))  # the seed picks the patients
    with pytest.raises(ValueError, match="fraction"):
        label_fraction_subset(train, strata, 0.0)


def test_schema_violations_are_reported_clearly(cohort: Cohort) -> None:
    tables = read_tables(cohort.tables)
    labels = tables["labels"]
    broken = {
        "labels": labels.drop("has_mask").with_columns(
            pl.when(pl.int_range(pl.len()) == 0).then(None).otherwise(pl.col("patient")).alias("patient"),
            pl.col("n_lesions").cast(pl.Float64),
            patient_name=pl.lit("someone"),
        ),
        "clinical": pl.concat([tables["clinical"], tables["clinical"].head(1)]),
        "outcomes": tables["outcomes"].with_columns(split=pl.lit("val")),
    }
    problems = schema_report(broken).filter(~pl.col("ok"))
    found = {(t, c): p for t, c, p in problems.select("table", "column", "problem").iter_rows()}
    assert found == {
        ("labels", "patient"): "1 null value(s) in a column that may not be null",
        ("labels", "n_lesions"): "type Float64, expected Int64",
        ("labels", "has_mask"): "missing column",
        ("labels", "patient_name"): "not in the schema (an extra column may hold identifiers; none is kept)",
        ("clinical", "patient"): "2 row(s) share a value of this key (one row per value expected)",
        ("outcomes", "split"): f"{labels.height} value(s) outside ['test', 'train']",
    }
    assert schema_report({"clinical": tables["clinical"]}).filter(~pl.col("ok"))["problem"].to_list() == [
        "required table missing"
    ]


def test_raw_tables_without_keys_are_refused(cohort: Cohort, tmp_path: Path) -> None:
    raw = tmp_path / "raw_tables"
    shutil.copytree(RawLayout(cohort.raw).tables, raw)
    clinical = pl.read_parquet(raw / "clinical.parquet")
    clinical.with_columns(pl.lit(None, pl.String).alias("patient_id")).write_parquet(raw / "clinical.parquet")
    pl.read_parquet(raw / "outcomes.parquet").drop("event").write_parquet(raw / "outcomes.parquet")
    expected = (
        rf"clinical.parquet has {clinical.height} row\(s\) without a patient_id.*outcomes.parquet lacks"
    )
    with pytest.raises(ValueError, match=expected):
        pseudonymise_tables(raw, tmp_path / "out", KEY)
    assert not (tmp_path / "out").exists()


def test_mask_paths_key_the_index_studies(cohort: Cohort) -> None:
    paths = mask_paths(cohort.raw, KEY)
    labels = read_tables(cohort.tables)["labels"]
    assert set(paths) == set(labels.filter(pl.col("has_mask"))["study"]) and set(paths) <= set(
        cohort.index["study"]
    )
    expected = {
        KEY.uid(s["study_uid"]): cohort.raw / s["mask"]
        for s in cohort.manifest["studies"].values()
        if s["mask"]
    }
    assert paths == expected and all(p.is_file() for p in paths.values())


def test_summary_names_dropped_columns_never_values(raw: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    shutil.copytree(RawLayout(raw).tables, site)
    clinical = pl.read_parquet(site / "clinical.parquet")
    clinical.with_columns(patient_name=pl.lit("张伟"), birth_date=pl.lit("19700315")).write_parquet(
        site / "clinical.parquet"
    )
    summary = pseudonymise_tables(site, tmp_path / "out", KEY)
    assert summary.dropped_columns["clinical"] == ["birth_date", "patient_name"]
    assert set(read_tables(tmp_path / "out")["clinical"].columns).isdisjoint({"birth_date", "patient_name"})
    assert {"张伟", "19700315"} <= set(original_identifiers(site))  # searched for in every output cell
    assert "张伟" not in json.dumps(summary.dropped_columns, ensure_ascii=False)


def test_an_identifier_in_a_kept_column_is_refused(raw: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    shutil.copytree(RawLayout(raw).tables, site)
    clinical = pl.read_parquet(site / "clinical.parquet")
    clinical.with_columns(symptoms=pl.format("头痛 (病历号 {})", "patient_id")).write_parquet(
        site / "clinical.parquet"
    )
    with pytest.raises(
        ValueError, match=rf"clinical.symptoms: {clinical.height} cell\(s\) hold an original identifier"
    ):
        pseudonymise_tables(site, tmp_path / "out", KEY)
    assert not (tmp_path / "out").exists()


def test_identifier_search_skips_chance_digits_inside_keyed_uids() -> None:
    frame = pl.DataFrame({"study": ["2.25.1197003151", "2.25.42"], "note": ["born 19700315", "ok"]})
    hits = identifier_hits({"labels": frame}, ["19700315", "2.25.42", "ok"])
    assert dict(zip(hits["column"], hits["hits"], strict=True)) == {"study": 1, "note": 2}


def test_held_out_patients_command_lists_the_test_side(cohort: Cohort, tmp_path: Path) -> None:
    from brainfm.cli import main

    out = tmp_path / "held_out.txt"
    assert main(["held-out-patients", str(cohort.tables), "--out", str(out)]) == 0
    assert set(out.read_text().split()) == held_out_patients(cohort.tables)
    assert main(["held-out-patients", str(tmp_path)]) == 2  # no labels table: a clear error
