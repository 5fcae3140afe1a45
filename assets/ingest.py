"""Per-center ingestion: DICOM manifest, PS3.15 de-identification, 256×256 normalisation, each gated
(checks in assets/ingest_checks.py)."""

# No `from __future__ import annotations` in asset modules: Dagster reads parameter annotations at runtime.

import shutil
from pathlib import Path

import dagster as dg
import numpy as np
import polars as pl

from assets.cohort import raw_cohort
from assets.figures import png_metadata
from assets.partitions import CENTERS
from assets.resources import DeidSecretResource, DvcResource, PathsResource, ProfileResource
from assets.versioning import versioned
from brainfm.dicom import (
    DeidSummary,
    deidentify_center,
    normalize_center,
    scan_center,
    series_sequences,
)
from brainfm.imaging.shards import open_slices
from brainfm.plots import slice_grid
from brainfm.raw_layout import RawLayout

MANIFEST_FILE = "manifest.parquet"


def _center_dir(paths: PathsResource, center: str) -> Path:
    return RawLayout(paths.raw).dicom / center


def _counts(values: pl.Series) -> dict[str, int]:
    return {str(k): int(v) for k, v in values.value_counts(sort=True).iter_rows()}


@dg.asset(
    partitions_def=CENTERS,
    deps=[raw_cohort],
    group_name="ingest",
    description="One row per input file: pseudonymous keys, sequence inferred from headers, geometry, transfer syntax, status.",
)
def dicom_manifest(
    context: dg.AssetExecutionContext,
    paths: PathsResource,
    profile: ProfileResource,
    deid_secret: DeidSecretResource,
    dvc: DvcResource,
) -> dg.MaterializeResult:
    center = context.partition_key
    frame = scan_center(
        _center_dir(paths, center), center, deid_secret.pseudonymizer(), workers=profile.workers
    )
    out = paths.output("dicom_manifest", center)
    out.mkdir(parents=True, exist_ok=True)
    frame.write_parquet(out / MANIFEST_FILE)
    return dg.MaterializeResult(
        metadata={
            "files": frame.height,
            "status": dg.MetadataValue.json(_counts(frame["status"])),
            "sequences": dg.MetadataValue.json(_counts(frame.filter(pl.col("status") == "ok")["sequence"])),
            "transfer_syntaxes": dg.MetadataValue.json(
                _counts(frame["transfer_syntax"].fill_null("unknown"))
            ),
            **versioned(out, paths, dvc),
        }
    )


@dg.asset(
    partitions_def=CENTERS,
    deps=[dicom_manifest],
    group_name="ingest",
    description="De-identified DICOM (PS3.15 basic profile + clean descriptors, modified dates, patient characteristics, "
    "safe private), named by new UIDs; bad files quarantined with reasons outside data/.",
)
def deidentified_studies(
    context: dg.AssetExecutionContext,
    paths: PathsResource,
    profile: ProfileResource,
    deid_secret: DeidSecretResource,
    dvc: DvcResource,
) -> dg.MaterializeResult:
    center = context.partition_key
    out = paths.output("deidentified_studies", center)
    held = paths.quarantine / "deidentified_studies"  # untracked: exports wait here until cleared
    staging = held / f"{center}.staging"
    summary = deidentify_center(
        _center_dir(paths, center),
        staging,
        held / f"{center}.jsonl",
        deid_secret.pseudonymizer(),
        workers=profile.workers,
        center=center,
    )
    context.log.info(summary.line())
    publish_if_clean(summary, staging, out, held / f"{center}.withheld")
    return dg.MaterializeResult(
        metadata={
            "exported": summary.exported,
            "identifier_hits": summary.identifier_hits,
            "quarantined": summary.quarantined,
            "quarantine_reasons": dg.MetadataValue.json(dict(summary.reasons)),
            **versioned(out, paths, dvc),
        }
    )


def publish_if_clean(summary: DeidSummary, staging: Path, out: Path, withheld: Path) -> None:
    """Move a de-identified tree from ``staging`` (outside ``data/``) to ``out`` if none of its files holds
    its patient's identifying values; otherwise move it to ``withheld`` and fail the asset. A leaking export
    never enters ``data/`` (which DVC snapshots whole, also for other assets), and the previous export stays
    published until a clean one replaces it."""
    if summary.identifier_hits:
        shutil.rmtree(withheld, ignore_errors=True)
        staging.rename(withheld)
        raise dg.Failure(
            f"{summary.identifier_hits} de-identified file(s) still hold identifying values of their patient; "
            f"the export was moved to {withheld} (untracked), the previous export is kept and nothing was "
            "versioned. Find the attributes that carry them (e.g. `brainfm deid` on one file, then a text "
            "search) and extend the de-identification profile."
        )
    previous = staging.with_name(staging.name + ".previous")
    shutil.rmtree(previous, ignore_errors=True)
    if out.exists():
        shutil.move(out, previous)
    out.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(staging, out)
    shutil.rmtree(previous, ignore_errors=True)


@dg.asset(
    partitions_def=CENTERS,
    deps=[deidentified_studies, dicom_manifest],
    group_name="ingest",
    description="256×256 uint8 slices in [0,255] (RAS frame, robust percentiles per series), QC exclusions with reasons, "
    "8:2 split by patient; memory-mappable shards + index.parquet; sequence labels from the manifest.",
)
def normalized_slices(
    context: dg.AssetExecutionContext,
    paths: PathsResource,
    profile: ProfileResource,
    dvc: DvcResource,
) -> dg.MaterializeResult:
    center = context.partition_key
    out = paths.output("normalized_slices", center)
    manifest = pl.read_parquet(paths.output("dicom_manifest", center) / MANIFEST_FILE)
    summary = normalize_center(
        paths.output("deidentified_studies", center),
        out,
        center,
        workers=profile.workers,
        seed=profile.seed,
        sequences=series_sequences(manifest),
    )
    store = open_slices(out)
    rng = np.random.default_rng(profile.seed)
    picks = (
        sorted(rng.choice(len(store), size=min(8, len(store)), replace=False).tolist()) if len(store) else []
    )
    index = store.index
    titles = [f"{index['sequence'][i]} {index['split'][i]}" for i in picks]
    grid = slice_grid(
        [store[i] for i in picks], titles, paths.outputs / "normalized_slices" / f"{center}.png"
    )
    return dg.MaterializeResult(
        metadata={
            "slices": summary.slices,
            "series": summary.series,
            "excluded": summary.excluded,
            "exclusion_reasons": dg.MetadataValue.json(dict(summary.exclusion_reasons)),
            "patients_per_split": dg.MetadataValue.json(dict(summary.patients)),
            "preview": png_metadata(grid, f"{center}: random normalised slices"),
            **versioned(out, paths, dvc),
        }
    )
