"""Clinical tables: the site's label, clinical, outcome, reader-study and trial tables, pseudonymised with the
DICOM key so they join images and reports on patient, accession and study, and the downstream 7:3 split."""

# No `from __future__ import annotations` in asset modules: Dagster reads parameter annotations at runtime.

from pathlib import Path

import dagster as dg
import great_expectations as gx
import polars as pl

from assets.cohort import raw_cohort
from assets.gating import gx_asset_check
from assets.resources import DeidSecretResource, DvcResource, PathsResource, ProfileResource
from assets.versioning import versioned
from brainfm.raw_layout import RawLayout
from brainfm.tables import (
    identifier_hits,
    layout_report,
    original_identifiers,
    pseudonymise_tables,
    read_oracle,
    read_tables,
    schema_report,
    split_report,
)
from brainfm.validation import Gate

# The training side of the downstream split (7:3 by patient, stratified by center and category): rounding
# within strata keeps it within a few points of 0.7 (tiny cohort: 22 of 32 patients).
TRAIN_SHARE = (0.6, 0.8)


@dg.asset(
    deps=[raw_cohort],
    group_name="stage3",
    description="Label, clinical, outcome, reader-study and controlled-trial tables pseudonymised with the DICOM "
    "key (joins on patient, accession and study), identifier columns dropped, a 7:3 train/test split by patient "
    "stratified by center and category; a synthetic cohort's oracle kept apart in synthetic_oracle/.",
)
def clinical_tables(
    context: dg.AssetExecutionContext,
    paths: PathsResource,
    profile: ProfileResource,
    deid_secret: DeidSecretResource,
    dvc: DvcResource,
) -> dg.MaterializeResult:
    out = paths.output("clinical_tables")
    summary = pseudonymise_tables(
        RawLayout(paths.raw).tables, out, deid_secret.pseudonymizer(), seed=profile.seed,
        staging_root=paths.quarantine / "staging",
    )
    context.log.info(f"{summary.n_train} training and {summary.n_test} test patients in {summary.n_strata} strata")
    return dg.MaterializeResult(
        metadata={
            "rows": dg.MetadataValue.json(summary.rows),
            "dropped_columns": dg.MetadataValue.json(summary.dropped_columns),
            "train_patients": summary.n_train,
            "test_patients": summary.n_test,
            "strata": summary.n_strata,
            "synthetic_oracle": read_oracle(out) is not None,
            **versioned(out, paths, dvc),
        }
    )


def tables_layout_gate(out: Path) -> Gate:
    """One row per column checked against its schema and per file under the output: both must be ok (the
    documented tables only, the oracle only beside its SYNTHETIC_ONLY marker)."""
    frame = pl.concat(
        [
            schema_report(read_tables(out)).select(
                pl.concat_str("table", pl.lit("."), "column").alias("item"), "ok"
            ),
            layout_report(out).select(pl.col("path").alias("item"), "ok"),
        ]
    ).to_pandas()
    return Gate(frame, [gx.expectations.ExpectColumnValuesToBeInSet(column="ok", value_set=[True])])


def tables_identifier_gate(out: Path, raw: Path) -> Gate:
    """One row per text column of every output table (oracle included): no cell holds an original identifier
    (the raw tables' key columns, and on a synthetic cohort every planted identifier)."""
    layout = RawLayout(raw)
    tables = read_tables(out)
    oracle = read_oracle(out)
    if oracle is not None:
        tables["oracle"] = oracle
    wanted = layout.planted_identifiers() + original_identifiers(layout.tables)
    return Gate(
        identifier_hits(tables, wanted).to_pandas(),
        [gx.expectations.ExpectColumnValuesToBeBetween(column="hits", min_value=0, max_value=0)],
    )


def tables_split_gate(out: Path) -> Gate:
    """One row per patient: one side in every table, and the training share of patients within
    `TRAIN_SHARE`."""
    frame = split_report(read_tables(out)).to_pandas()
    frame["train_share"] = float((frame["split"] == "train").mean()) if len(frame) else float("nan")
    return Gate(
        frame,
        [
            gx.expectations.ExpectTableRowCountToBeBetween(min_value=2),
            gx.expectations.ExpectColumnValuesToBeBetween(column="sides", min_value=1, max_value=1),
            gx.expectations.ExpectColumnValuesToBeInSet(column="split", value_set=["train", "test"]),
            gx.expectations.ExpectColumnValuesToNotBeNull(column="split"),
            gx.expectations.ExpectColumnValuesToNotBeNull(column="train_share"),
            gx.expectations.ExpectColumnValuesToBeBetween(
                column="train_share", min_value=TRAIN_SHARE[0], max_value=TRAIN_SHARE[1]
            ),
        ],
    )


clinical_tables_layout = gx_asset_check(
    asset=clinical_tables,
    name="schema_and_layout",
    description="Every table meets its schema (columns, types, nulls, unique keys, allowed values); only the "
    "documented files are written, and a synthetic oracle only in synthetic_oracle/ beside its marker.",
    gate=lambda context: tables_layout_gate(context.resources.paths.output("clinical_tables")),
    required_resource_keys={"paths"},
)

clinical_tables_no_identifiers = gx_asset_check(
    asset=clinical_tables,
    name="no_identifiers",
    description="No cell of any output table (oracle included) holds a value of the raw tables' identifier "
    "columns or, on a synthetic cohort, any planted identifier.",
    gate=lambda context: tables_identifier_gate(
        context.resources.paths.output("clinical_tables"), context.resources.paths.raw
    ),
    required_resource_keys={"paths"},
)

clinical_tables_split = gx_asset_check(
    asset=clinical_tables,
    name="split_by_patient",
    description=f"Every patient lies on one side (train or test) in every table; the training share of patients "
    f"is within {TRAIN_SHARE[0]:.0%}–{TRAIN_SHARE[1]:.0%} (7:3 by design).",
    gate=lambda context: tables_split_gate(context.resources.paths.output("clinical_tables")),
    required_resource_keys={"paths"},
)
