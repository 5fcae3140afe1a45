"""Pseudonymising a cohort's label tables (``RAW/tables/*.parquet``) with the DICOM key; the downstream split.

Every table is re-keyed exactly as de-identification keys the images, so tables, normalised slices and
reports join: ``patient`` = ``Pseudonymizer.patient_id(center_patient_key(center, patient_id))`` (the
``patient`` column of ``normalized_slices/<center>/index.parquet`` for every file whose PatientID is set),
``accession`` = ``Pseudonymizer.accession(accession)``, ``study`` = ``Pseudonymizer.uid(study_uid)`` (the
de-identified StudyInstanceUID, the index's ``study``). Only the columns of :data:`TABLE_SCHEMAS` are written:
original IDs, names, birth dates and anything else a site adds are dropped, and the raw ``mask`` path (named
after the accession) becomes the boolean ``has_mask``. The synthetic cohort's oracle goes to
``synthetic_oracle/`` beside a ``SYNTHETIC_ONLY`` marker, where no reader of the training tables looks.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from brainfm.imaging.shards import atomic_directory
from brainfm.pseudonym import Pseudonymizer, center_patient_key
from brainfm.raw_layout import RawLayout
from brainfm.splits import DOWNSTREAM_TRAIN_FRACTION, Stratum, stratified_split
from brainfm.tables.checks import identifier_hits, original_identifiers
from brainfm.tables.schemas import (
    ORACLE,
    ORACLE_DIR,
    ORACLE_MARKER,
    REQUIRED_TABLES,
    SPLIT_NAMES,
    TABLE_SCHEMAS,
    schema_report,
)

SPLIT_TABLES = ("labels", "clinical", "outcomes")  # the tables that carry the downstream split
# output column → the raw column it is made from (the others keep their names)
RAW_NAME = {
    "patient": "patient_id", "study": "study_uid", "participant": "participant_id", "has_mask": "mask",
}  # fmt: skip
UNLABELLED = "unlabelled"  # the category stratum of a patient with clinical rows but no labelled study
_MARKER_TEXT = (
    "SYNTHETIC ONLY: the generating truth of a synthetic cohort (true Cox linear predictor and metastasis "
    "probability per patient). For reporting the best achievable C-index and AUC beside a model's; never a "
    "training input. A real site has no oracle.\n"
)


@dataclass(frozen=True)
class TablesSummary:
    """What :func:`pseudonymise_tables` wrote: counts and column names only, safe for asset metadata."""

    out_dir: Path
    rows: dict[str, int]  # table → rows written (the oracle under "oracle")
    dropped_columns: dict[str, list[str]]  # table → raw columns written in no form (names only, never values)
    n_train: int  # patients on each side of the downstream split
    n_test: int
    n_strata: int  # (center, category) strata the split was stratified by


def pseudonymise_tables(
    raw_tables_dir: Path,
    out_dir: Path,
    pseudonymizer: Pseudonymizer,
    seed: int = 0,
    staging_root: Path | None = None,
) -> TablesSummary:
    """Write the pseudonymised tables present in ``raw_tables_dir`` (labels required) into ``out_dir``.

    ``labels.parquet``, ``clinical.parquet`` and ``outcomes.parquet`` get the downstream ``split`` column
    (:func:`brainfm.splits.stratified_split` by (center, category), :func:`patient_strata`, under ``seed``).
    Nothing is written unless every table meets its schema and none holds an original identifier; ``out_dir``
    is replaced whole and atomically (``staging_root``: as for `brainfm.imaging.shards.atomic_directory`).
    """
    raw = _read_raw(Path(raw_tables_dir))
    centers = _patient_centers(raw)
    tables = {name: _pseudonymise(name, frame, pseudonymizer, centers) for name, frame in raw.items()}
    strata = patient_strata(tables["labels"], *(tables[n] for n in SPLIT_TABLES[1:] if n in tables))
    sides = stratified_split(strata, DOWNSTREAM_TRAIN_FRACTION, seed, SPLIT_NAMES)
    for name in SPLIT_TABLES:
        if name in tables:
            tables[name] = tables[name].with_columns(
                split=pl.col("patient").replace_strict(sides, default=None, return_dtype=pl.String)
            )
    tables = {name: _conform(name, frame) for name, frame in tables.items()}
    _refuse_problems(tables, original_identifiers(raw_tables_dir))
    with atomic_directory(Path(out_dir), staging_root) as stage:
        for name, frame in tables.items():
            if name == ORACLE:
                (stage / ORACLE_DIR).mkdir()
                (stage / ORACLE_DIR / ORACLE_MARKER).write_text(_MARKER_TEXT, encoding="utf-8")
                frame.write_parquet(stage / ORACLE_DIR / f"{ORACLE}.parquet")
            else:
                frame.write_parquet(stage / f"{name}.parquet")
    return TablesSummary(
        Path(out_dir),
        {name: frame.height for name, frame in tables.items()},
        {name: sorted(set(frame.columns) - _consumed(name)) for name, frame in raw.items()},
        sum(side == SPLIT_NAMES[0] for side in sides.values()),
        sum(side == SPLIT_NAMES[1] for side in sides.values()),
        len(set(strata.values())),
    )


def patient_strata(labels: pl.DataFrame, *others: pl.DataFrame) -> dict[str, Stratum]:
    """Each patient's (center, category) stratum, from a pseudonymised labels table (``patient``, ``center``,
    ``category``); patients of ``others`` (e.g. clinical: ``patient``, ``center``) without a labelled study
    get (center, "unlabelled").

    A patient with studies in several categories is stratified by the one with the fewest patients in the
    cohort (ties: alphabetical), so that stratification spreads the rare categories over both sides.
    """
    per_patient = labels.select("patient", "center", "category").unique()
    frequency = Counter(per_patient["category"].to_list())
    strata: dict[str, Stratum] = {}
    for patient, center, category in sorted(per_patient.iter_rows(), key=lambda r: (frequency[r[2]], r[2])):
        strata.setdefault(patient, (center, category))
    for frame in others:
        for patient, center in frame.select("patient", "center").iter_rows():
            strata.setdefault(patient, (center, UNLABELLED))
    return strata


def mask_paths(raw_root: Path, pseudonymizer: Pseudonymizer) -> dict[str, Path]:
    """De-identified StudyInstanceUID (the index's ``study``) → the raw lesion mask of that study
    (``RAW/masks/<accession>.nii.gz``), for studies whose labels name one.

    In memory only: the raw paths hold accession numbers, so this mapping must never be written or logged.
    """
    layout = RawLayout(Path(raw_root))
    labels = _read_raw(layout.tables)["labels"].filter(pl.col("mask").is_not_null())
    paths = {
        pseudonymizer.uid(uid): layout.root / mask
        for uid, mask in labels.select("study_uid", "mask").iter_rows()
    }
    missing = sum(not p.is_file() for p in paths.values())
    if missing:
        raise FileNotFoundError(
            f"{missing} of the {len(paths)} lesion masks named in the `mask` column of "
            f"{layout.tables}/labels.parquet are not files under {layout.root}; restore them, or set `mask` "
            "to null for studies without one."
        )
    return paths


def _read_raw(raw_tables_dir: Path) -> dict[str, pl.DataFrame]:
    """The raw tables present, each checked for the columns its output is made of and for null keys."""
    tables = {
        name: pl.read_parquet(raw_tables_dir / f"{name}.parquet")
        for name in TABLE_SCHEMAS
        if (raw_tables_dir / f"{name}.parquet").is_file()
    }
    problems = [f"{name}.parquet is missing" for name in REQUIRED_TABLES if name not in tables]
    for name, frame in tables.items():
        needed = sorted(_consumed(name))
        absent = [c for c in needed if c not in frame.columns]
        if absent:
            problems.append(f"{name}.parquet lacks column(s) {absent}")
        for key in ("patient_id", "accession", "study_uid", "participant_id", "center"):
            if key in needed and key in frame.columns and frame[key].null_count():
                problems.append(f"{name}.parquet has {frame[key].null_count()} row(s) without a {key}")
    if problems:
        raise ValueError(
            f"The raw tables in {raw_tables_dir} do not meet docs/SCHEMAS.md: "
            + "; ".join(problems)
            + ". Fix the export (every row needs its keys) and run again."
        )
    return tables


def _consumed(name: str) -> set[str]:
    """The raw columns that the output table ``name`` is made of."""
    return {RAW_NAME.get(c, c) for c in TABLE_SCHEMAS[name] if c != "split"}


def _patient_centers(raw: Mapping[str, pl.DataFrame]) -> dict[str, str]:
    """Original patient ID → center, for the tables without a center column (outcomes, oracle).

    A local patient ID is unique only within its center, so an ID seen at two centers cannot be resolved
    there: that is an error only if such a table holds it.
    """
    seen: dict[str, set[str]] = {}
    for frame in raw.values():
        if "center" in frame.columns:
            for patient, center in frame.select("patient_id", "center").unique().iter_rows():
                seen.setdefault(patient, set()).add(center)
    for name, frame in raw.items():
        if "center" in frame.columns:
            continue
        ids = set(frame["patient_id"].to_list())
        ambiguous, unknown = sum(len(seen.get(i, ())) > 1 for i in ids), sum(i not in seen for i in ids)
        if ambiguous or unknown:
            raise ValueError(
                f"{name}.parquet has no center column, and {ambiguous} of its patient IDs occur at several "
                f"centers and {unknown} in no table with a center (labels, clinical): add a `center` column "
                "to it, since a local patient ID names a patient only within its center."
            )
    return {patient: next(iter(c)) for patient, c in seen.items() if len(c) == 1}


def _pseudonymise(
    name: str, frame: pl.DataFrame, pseudonymizer: Pseudonymizer, centers: Mapping[str, str]
) -> pl.DataFrame:
    """The table re-keyed: original keys replaced by their pseudonyms, ``mask`` by ``has_mask``; with a
    ``center`` column (taken from ``centers`` where the table has none, then dropped by :func:`_conform`)."""
    if "center" in frame.columns:
        center = frame["center"]
    else:
        center = frame["patient_id"].replace_strict(centers).alias("center")
    keys: dict[str, tuple[str, Callable[[str], str]]] = {
        "accession": ("accession", pseudonymizer.accession),
        "study_uid": ("study", pseudonymizer.uid),
        "participant_id": ("participant", lambda p: pseudonymizer.token("trial_participant", p, 16)),
    }
    columns = {
        "patient": [
            pseudonymizer.patient_id(center_patient_key(c, p))
            for c, p in zip(center, frame["patient_id"], strict=True)
        ]
    }
    columns |= {
        new: [fn(str(v)) for v in frame[old]] for old, (new, fn) in keys.items() if old in frame.columns
    }
    out = frame.drop([*RAW_NAME.values(), *keys], strict=False).with_columns(
        center, *(pl.Series(k, v, dtype=pl.String) for k, v in columns.items())
    )
    return out.with_columns(has_mask=frame["mask"].is_not_null()) if "mask" in frame.columns else out


def _conform(name: str, frame: pl.DataFrame) -> pl.DataFrame:
    """The schema's columns, in its order and types; a column that cannot take its type is an error."""
    schema = TABLE_SCHEMAS[name]
    try:
        return frame.select(pl.col(c).cast(spec.dtype, strict=True) for c, spec in schema.items())
    except (pl.exceptions.InvalidOperationError, pl.exceptions.ComputeError) as err:
        raise ValueError(
            f"{name}.parquet: a column cannot be read as its documented type (docs/SCHEMAS.md): {err}"
        ) from err


def _refuse_problems(tables: Mapping[str, pl.DataFrame], identifiers: list[str]) -> None:
    schema = schema_report(tables).filter(~pl.col("ok"))
    leaks = identifier_hits(tables, identifiers).filter(pl.col("hits") > 0)
    if schema.height or leaks.height:
        problems = [f"{t}.{c}: {p}" for t, c, p in schema.select("table", "column", "problem").iter_rows()]
        problems += [
            f"{t}.{c}: {n} cell(s) hold an original identifier"
            for t, c, n in leaks.select("table", "column", "hits").iter_rows()
        ]
        raise ValueError(
            "The pseudonymised tables were not written: "
            + "; ".join(problems)
            + ". Fix the raw tables (docs/SCHEMAS.md) and run again."
        )
