"""Checks of the pseudonymised clinical tables, each returning a frame that a Great Expectations gate
validates (`brainfm.validation.Gate`): one row per thing checked, with a count or flag to expect and never an
identifier's value. `brainfm.tables.schemas.schema_report` is the schema check.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import polars as pl

from brainfm.tables.schemas import ORACLE, ORACLE_DIR, ORACLE_MARKER, TABLE_SCHEMAS

# Columns of a raw table whose values identify a patient or a study: searched for in every output cell.
DIRECT_IDENTIFIER_COLUMNS = (
    "patient_id", "accession", "study_uid", "participant_id", "patient_name", "name", "birth_date",
    "date_of_birth", "national_id", "phone", "address",
)  # fmt: skip
# Shorter values are matched as whole cells only: as substrings they occur by chance ("M" in "WHO", "12" in
# "2.25.4712…"), as in the DICOM leak scan (brainfm.dicom.leaks).
MIN_SUBSTRING_BYTES = 4
_KEYED_UID = r"^2\.25\.[0-9]+$"


def original_identifiers(raw_tables_dir: Path) -> list[str]:
    """Every value of a :data:`DIRECT_IDENTIFIER_COLUMNS` column in the raw tables (``RAW/tables``), as text.
    Held in memory for the search, never written."""
    values: set[str] = set()
    for path in sorted(Path(raw_tables_dir).glob("*.parquet")):
        frame = pl.read_parquet(path)
        for column in DIRECT_IDENTIFIER_COLUMNS:
            if column in frame.columns:
                values |= set(frame[column].drop_nulls().cast(pl.String).str.strip_chars().to_list())
    return sorted(v for v in values if v)


def identifier_hits(tables: Mapping[str, pl.DataFrame], identifiers: Iterable[str]) -> pl.DataFrame:
    """One row per text column (String or List[String]) of every table: ``table, column, cells, hits``, with
    ``hits`` the number of cells (a list counts once) that hold an identifier: equal to one
    (case-insensitive), or containing one of at least :data:`MIN_SUBSTRING_BYTES` UTF-8 bytes. A cell that is
    a keyed ``2.25.<digits>`` UID counts only if equal: digits inside a random 128-bit number are chance.
    The gate expects ``hits`` to be 0.
    """
    wanted = sorted({i.strip() for i in identifiers if i.strip()})
    long = [i for i in wanted if len(i.encode()) >= MIN_SUBSTRING_BYTES]
    lowered = [i.lower() for i in wanted]

    def leaks(cell: pl.Expr) -> pl.Expr:
        inside = cell.str.contains_any(long, ascii_case_insensitive=True) if long else pl.lit(False)
        found = cell.str.to_lowercase().is_in(lowered) | (inside & ~cell.str.contains(_KEYED_UID))
        return found.fill_null(False)

    rows = []
    for name, frame in tables.items():
        for column, dtype in frame.schema.items():
            if dtype == pl.String:
                hit = leaks(pl.col(column))
            elif dtype == pl.List(pl.String):
                hit = pl.col(column).list.eval(leaks(pl.element())).list.any().fill_null(False)
            else:
                continue
            cells, hits = frame.select(pl.col(column).count().alias("cells"), hit.sum().alias("hits")).row(0)
            rows.append((name, column, cells, hits))
    return pl.DataFrame(
        rows,
        schema={"table": pl.String, "column": pl.String, "cells": pl.Int64, "hits": pl.Int64},
        orient="row",
    )


def index_join(labels: pl.DataFrame, index: pl.DataFrame) -> pl.DataFrame:
    """One row per study of the normalised-slice ``index`` (any number of centers' ``index.parquet``):
    ``center, study, patient, labelled`` (the labels table has the study) and ``same_patient`` (and names the
    same patient pseudonym). A wrong key shows as no study labelled; a gate expects both flags True for a
    cohort whose every study is labelled, or a share of them (``mostly``) for a site that labels a subset.
    """
    studies = index.select("center", "study", "patient").unique()
    labelled = labels.select(
        "study", pl.col("patient").alias("labelled_patient"), pl.lit(True).alias("labelled")
    )
    return (
        studies.join(labelled, on="study", how="left")
        .with_columns(
            pl.col("labelled").fill_null(False),
            same_patient=(pl.col("patient") == pl.col("labelled_patient")).fill_null(False),
        )
        .drop("labelled_patient")
        .sort("center", "study")
    )


def split_report(tables: Mapping[str, pl.DataFrame]) -> pl.DataFrame:
    """One row per patient of the tables that carry a ``split`` column: ``patient, split`` (its side) and
    ``sides``, the number of distinct sides it has over all their rows. The gate expects ``sides`` to be 1."""
    rows = pl.concat(t.select("patient", "split") for t in tables.values() if "split" in t.columns)
    return (
        rows.group_by("patient")
        .agg(pl.col("split").first(), sides=pl.col("split").n_unique())
        .sort("patient")
    )


def layout_report(tables_dir: Path) -> pl.DataFrame:
    """One row per file under ``tables_dir`` and per expected file that is absent: ``path, problem, ok``.
    Only the documented outputs may be there, and the oracle only under ``synthetic_oracle/`` beside its
    ``SYNTHETIC_ONLY`` marker; the gate expects ``ok`` to be True everywhere."""
    root = Path(tables_dir)
    oracle = f"{ORACLE_DIR}/{ORACLE}.parquet"
    marker = f"{ORACLE_DIR}/{ORACLE_MARKER}"
    known = {f"{name}.parquet" for name in TABLE_SCHEMAS if name != ORACLE} | {oracle, marker}
    found = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
    rows = [(path, None if path in known else "not an output of clinical_tables") for path in found]
    if oracle in found and marker not in found:
        rows.append((marker, "missing: the oracle must lie beside its marker"))
    return pl.DataFrame(
        [(path, problem, problem is None) for path, problem in rows],
        schema={"path": pl.String, "problem": pl.String, "ok": pl.Boolean},
        orient="row",
    )
