"""The pseudonymised clinical tables (docs/SCHEMAS.md, "clinical_tables outputs"): where they lie, the column
types, nullability and keys of every output table, and a report of where a table departs from them.

The schemas are an allow-list: pseudonymisation writes exactly these columns, so a column a site adds (a name,
a birth date, a free-text note) never reaches the output, and a column found in a written table that is not
listed here is itself a violation.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import polars as pl

SPLIT_NAMES = ("train", "test")  # the downstream 7:3 split (brainfm.splits.stratified_split)
ORACLE = "oracle"  # synthetic cohorts only; written apart, under ORACLE_DIR
ORACLE_DIR = "synthetic_oracle"
ORACLE_MARKER = "SYNTHETIC_ONLY"  # the file beside the oracle that says what it is
REQUIRED_TABLES = ("labels",)  # the split is computed from it


@dataclass(frozen=True)
class Column:
    dtype: pl.DataType
    nullable: bool = False
    unique: bool = False  # the table's key: one row per value
    allowed: frozenset[object] | None = None  # the only values it may take


_STR, _BOOL, _INT, _FLOAT = pl.String(), pl.Boolean(), pl.Int64(), pl.Float64()
_BINARY = Column(pl.Int8(), allowed=frozenset({0, 1}))
_SPLIT = Column(_STR, allowed=frozenset(SPLIT_NAMES))
_READ = {  # the reader and the case read, shared by the reader study and the controlled trial
    "reader_id": Column(_STR),
    "seniority": Column(_STR),
    "hospital_tier": Column(_STR),
    "specialty": Column(_STR),
    "accession": Column(_STR),
    "patient": Column(_STR),
    "center": Column(_STR),
    "truth_category": Column(_STR),
    "truth_subtype": Column(_STR),
}

TABLE_SCHEMAS: Mapping[str, Mapping[str, Column]] = {
    "labels": {
        "patient": Column(_STR),
        "accession": Column(_STR, unique=True),
        "study": Column(_STR, unique=True),
        "center": Column(_STR),
        "category": Column(_STR),
        "subtype": Column(_STR),
        "grade": Column(_STR, nullable=True),
        "laterality": Column(_STR),
        "locations": Column(pl.List(_STR)),
        "largest_size_mm": Column(_FLOAT, nullable=True),
        "n_lesions": Column(_INT),
        "contrast": Column(_BOOL),
        "has_mask": Column(_BOOL),
        "rare": Column(_BOOL),
        "split": _SPLIT,
    },
    "clinical": {
        "patient": Column(_STR, unique=True),
        "center": Column(_STR),
        "age_years": Column(_INT),
        "sex": Column(_STR),
        "symptoms": Column(_STR),
        "symptom_duration_days": Column(_INT),
        "kps": Column(_INT),
        "hypertension": Column(_BOOL),
        "diabetes": Column(_BOOL),
        "smoking": Column(_BOOL),
        "split": _SPLIT,
    },
    "outcomes": {
        "patient": Column(_STR, unique=True),
        "metastasis": _BINARY,
        "survival_months": Column(_FLOAT),
        "event": _BINARY,
        "split": _SPLIT,
    },
    "reader_study": {
        **_READ,
        "session": Column(_STR),
        "model_assisted": Column(_BOOL),
        "reading_order": Column(_INT),
        "model_suggestion": Column(_STR, nullable=True),
        "diagnosis": Column(_STR),
        "correct": Column(_BOOL),
        "confidence": Column(_INT),
        "reading_time_s": Column(_FLOAT),
        "simulated": Column(_BOOL),
    },
    "controlled_trial": {
        "participant": Column(_STR, unique=True),
        "arm": Column(_STR),
        **_READ,
        "diagnosis": Column(_STR),
        "correct_diagnosis": Column(_BOOL),
        "time_to_diagnosis_min": Column(_FLOAT),
        "critical_case": Column(_BOOL),
        "critical_finding_missed": Column(_BOOL),
        "predicted_metastasis_risk": Column(_FLOAT),
        "predicted_survival_months": Column(_FLOAT),
        "metastasis": _BINARY,
        "survival_months": Column(_FLOAT),
        "event": _BINARY,
        "simulated": Column(_BOOL),
    },
    ORACLE: {
        "patient": Column(_STR, unique=True),
        "true_linear_predictor": Column(_FLOAT),
        "true_metastasis_probability": Column(_FLOAT),
    },
}


def read_tables(tables_dir: Path) -> dict[str, pl.DataFrame]:
    """The training-side tables written by :func:`brainfm.tables.pseudonymise_tables` (name → frame; those
    present). Never the oracle: see :func:`read_oracle`."""
    return {
        name: pl.read_parquet(Path(tables_dir) / f"{name}.parquet")
        for name in TABLE_SCHEMAS
        if name != ORACLE and (Path(tables_dir) / f"{name}.parquet").is_file()
    }


def study_table(tables_dir: Path) -> pd.DataFrame:
    """One row per labelled study: the labels joined with its patient's clinical variables and outcomes (those
    tables present), as the stage-3 adapters train on it."""
    tables = read_tables(tables_dir)
    labels = tables["labels"].to_pandas()
    for name in ("clinical", "outcomes"):
        if name in tables:
            other = tables[name].to_pandas().drop(columns=["center", "split"], errors="ignore")
            labels = labels.merge(other, on="patient", how="left", validate="many_to_one")
    return labels


def read_oracle(tables_dir: Path) -> pl.DataFrame | None:
    """The synthetic cohort's generating truth per patient, for evaluation reports only (the best achievable
    C-index and AUC beside a model's); None for a real site."""
    path = Path(tables_dir) / ORACLE_DIR / f"{ORACLE}.parquet"
    return pl.read_parquet(path) if path.is_file() else None


REPORT_SCHEMA = {"table": pl.String(), "column": pl.String(), "expected": pl.String(), "actual": pl.String(),
                 "problem": pl.String(), "ok": pl.Boolean()}  # fmt: skip


def schema_report(tables: Mapping[str, pl.DataFrame]) -> pl.DataFrame:
    """One row per expected column of every table in ``tables`` (name → frame, as :func:`read_tables` gives
    them, the oracle under ``"oracle"``), one per column or table that should not be there, and one per
    required table that is absent: ``table, column, expected, actual, problem, ok``. ``problem`` says what
    is wrong in words (null where nothing is), so a gate can expect ``ok`` to be True everywhere and show the
    rest.
    """
    rows = [_row(name, None, "present", "absent", "required table missing") for name in REQUIRED_TABLES
            if name not in tables]  # fmt: skip
    for name, frame in tables.items():
        schema = TABLE_SCHEMAS.get(name)
        if schema is None:
            problem = f"not a clinical_tables output (those are {sorted(TABLE_SCHEMAS)})"
            rows.append(_row(name, None, "", "present", problem))
            continue
        for column, spec in schema.items():
            actual = str(frame.schema[column]) if column in frame.columns else "absent"
            rows.append(_row(name, column, str(spec.dtype), actual, _problem(frame, column, spec)))
        for column in frame.columns:
            if column not in schema:
                problem = "not in the schema (an extra column may hold identifiers; none is kept)"
                rows.append(_row(name, column, "absent", str(frame.schema[column]), problem))
    return pl.DataFrame(rows, schema=REPORT_SCHEMA, orient="row")


def _row(
    table: str, column: str | None, expected: str, actual: str, problem: str | None
) -> tuple[str, str | None, str, str, str | None, bool]:
    return table, column, expected, actual, problem, problem is None


def _problem(frame: pl.DataFrame, column: str, spec: Column) -> str | None:
    if column not in frame.columns:
        return "missing column"
    values = frame[column]
    if values.dtype != spec.dtype:
        return f"type {values.dtype}, expected {spec.dtype}"
    if not spec.nullable and values.null_count():
        return f"{values.null_count()} null value(s) in a column that may not be null"
    if spec.unique and values.is_duplicated().any():
        return f"{values.is_duplicated().sum()} row(s) share a value of this key (one row per value expected)"
    if spec.allowed is not None:
        outside = values.drop_nulls().filter(~values.drop_nulls().is_in(list(spec.allowed)))
        if len(outside):
            return f"{len(outside)} value(s) outside {sorted(spec.allowed, key=str)}"
    return None
