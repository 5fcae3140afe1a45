"""Per-center ingestion: DICOM manifest, PS3.15 de-identification, 256×256 normalisation, each gated."""

# No `from __future__ import annotations` in asset modules: Dagster reads parameter annotations at runtime.

import shutil
from pathlib import Path

import dagster as dg
import great_expectations as gx
import nibabel as nib
import numpy as np
import pandas as pd
import polars as pl
from great_expectations.expectations.row_conditions import Column
from pydicom import dcmread

from assets.cohort import raw_cohort
from assets.figures import png_metadata
from assets.gating import gx_asset_check
from assets.partitions import CENTERS
from assets.resources import DeidSecretResource, DvcResource, PathsResource, ProfileResource
from assets.versioning import versioned
from brainfm.dicom import (
    DeidSummary,
    deidentify_center,
    find_identifiers_in_tree,
    normalize_center,
    scan_center,
    series_sequences,
)
from brainfm.dicom.quarantine import Reason
from brainfm.imaging.shards import INDEX_FILE, QC_FILE, open_slices
from brainfm.plots import slice_grid
from brainfm.raw_layout import RawLayout

MANIFEST_FILE = "manifest.parquet"
# A center whose QC excludes more than this fraction of its slices has a systematic problem (wrong
# sequence, broken export) that a person must look at before its data trains anything.
MAX_QC_EXCLUSION_RATE = 0.6


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


# -- gating checks -----------------------------------------------------------------------------------------


def _manifest_frame(context: dg.AssetCheckExecutionContext) -> pd.DataFrame:
    path = context.resources.paths.output("dicom_manifest", context.partition_key) / MANIFEST_FILE
    return pl.read_parquet(path).to_pandas()


def _deid_frame(context: dg.AssetCheckExecutionContext) -> pd.DataFrame:
    """One row per de-identified file: profile flags from its header and planted identifiers found in it.

    NIfTI outputs count as de-identified when their free-text header fields are empty and they carry no
    extensions; they are named by pseudonymous keys.
    """
    paths: PathsResource = context.resources.paths
    root = paths.output("deidentified_studies", context.partition_key)
    hits: dict[str, int] = {}
    for hit in find_identifiers_in_tree(root, RawLayout(paths.raw).planted_identifiers()):
        hits[hit.path] = hits.get(hit.path, 0) + 1
    rows = []
    for path in sorted(root.rglob("*.dcm")):
        ds = dcmread(path, stop_before_pixels=True)
        rel = path.relative_to(root).as_posix()
        rows.append(
            {
                "identity_removed": str(ds.get("PatientIdentityRemoved", "")),
                "has_method_codes": "DeidentificationMethodCodeSequence" in ds,
                "named_by_uids": rel.split("/")[0] == str(ds.StudyInstanceUID)
                and path.stem == str(ds.SOPInstanceUID),
                "identifier_hits": hits.pop(rel, 0),
            }
        )
    for path in sorted(root.rglob("*.nii")):  # NIfTI input is rewritten from array + affine only
        header = nib.load(path).header
        text = b"".join(
            bytes(header[k].tobytes()).strip(b"\0 ") for k in ("descrip", "aux_file", "intent_name")
        )
        clean = not text and not header.extensions
        rows.append(
            {
                "identity_removed": "YES" if clean else "NO",
                "has_method_codes": True,
                "named_by_uids": True,
                "identifier_hits": hits.pop(path.relative_to(root).as_posix(), 0),
            }
        )
    # Hits in files that are not DICOM instances (there should be none) still fail the check.
    rows.extend(
        {"identity_removed": "YES", "has_method_codes": True, "named_by_uids": False, "identifier_hits": n}
        for n in hits.values()
    )
    return pd.DataFrame(rows)


def _slice_frame(context: dg.AssetCheckExecutionContext) -> pd.DataFrame:
    """One row per shard: shape, dtype and intensity range, from the memory-mapped arrays."""
    root = context.resources.paths.output("normalized_slices", context.partition_key)
    rows = []
    for shard in sorted(root.glob("shard-*.npy")):
        arr = np.load(shard, mmap_mode="r")
        rows.append(
            {
                "height": arr.shape[1],
                "width": arr.shape[2],
                "dtype": str(arr.dtype),
                "min": int(arr.min()),
                "max": int(arr.max()),
            }
        )
    return pd.DataFrame(rows)


def _split_frame(context: dg.AssetCheckExecutionContext) -> pd.DataFrame:
    """One row per patient: on how many sides of the split its slices lie."""
    root = context.resources.paths.output("normalized_slices", context.partition_key)
    index = pl.read_parquet(root / INDEX_FILE)
    return index.group_by("patient").agg(pl.col("split").n_unique().alias("sides")).to_pandas()


def _qc_frame(context: dg.AssetCheckExecutionContext) -> pd.DataFrame:
    root = context.resources.paths.output("normalized_slices", context.partition_key)
    kept, excluded = pl.read_parquet(root / INDEX_FILE).height, pl.read_parquet(root / QC_FILE).height
    return pd.DataFrame({"exclusion_rate": [excluded / max(kept + excluded, 1)], "kept": [kept]})


_CHECKS = {"required_resource_keys": {"paths"}, "partitions_def": CENTERS}
dicom_manifest_schema = gx_asset_check(
    asset=dicom_manifest,
    name="manifest_schema",
    description="Manifest columns and types, unique instance keys, a known status for every file.",
    frame=_manifest_frame,
    expectations=lambda: [
        gx.expectations.ExpectTableColumnsToMatchSet(
            column_set=[
                "center",
                "file",
                "status",
                "patient",
                "study",
                "series",
                "instance",
                "sop_class",
                "modality",
                "sequence",
                "transfer_syntax",
                "rows",
                "columns",
                "frames",
                "row_spacing_mm",
                "column_spacing_mm",
                "slice_thickness_mm",
                "plane",
                "manufacturer",
            ],
            exact_match=True,
        ),
        gx.expectations.ExpectColumnValuesToBeUnique(column="file"),
        gx.expectations.ExpectColumnValuesToBeInSet(column="status", value_set=["ok", *(r.value for r in Reason)]),
        gx.expectations.ExpectColumnValuesToBeInSet(
            column="sequence", value_set=["T1", "T2", "FLAIR", "DWI", "other"]
        ),
        gx.expectations.ExpectColumnValuesToBeUnique(
            column="instance", row_condition=Column("status") == "ok"
        ),
    ],
    **_CHECKS,
)
deidentified_no_identifiers = gx_asset_check(
    asset=deidentified_studies,
    name="no_identifiers",
    description="Every file says PatientIdentityRemoved=YES with method codes, is named by its new UIDs, "
    "and holds none of the identifiers the cohort planted.",
    frame=_deid_frame,
    expectations=lambda: [
        gx.expectations.ExpectTableRowCountToBeBetween(min_value=1),
        gx.expectations.ExpectColumnValuesToBeInSet(column="identity_removed", value_set=["YES"]),
        gx.expectations.ExpectColumnValuesToBeInSet(column="has_method_codes", value_set=[True]),
        gx.expectations.ExpectColumnValuesToBeInSet(column="named_by_uids", value_set=[True]),
        gx.expectations.ExpectColumnValuesToBeBetween(column="identifier_hits", min_value=0, max_value=0),
    ],
    **_CHECKS,
)
normalized_format = gx_asset_check(
    asset=normalized_slices,
    name="slice_format",
    description="Every shard is N×256×256 uint8 (finite by type) and uses the intensity range (0 and ≥200 present).",
    frame=_slice_frame,
    expectations=lambda: [
        gx.expectations.ExpectTableRowCountToBeBetween(min_value=1),
        gx.expectations.ExpectColumnValuesToBeInSet(column="height", value_set=[256]),
        gx.expectations.ExpectColumnValuesToBeInSet(column="width", value_set=[256]),
        gx.expectations.ExpectColumnValuesToBeInSet(column="dtype", value_set=["uint8"]),
        gx.expectations.ExpectColumnValuesToBeBetween(column="min", min_value=0, max_value=0),
        gx.expectations.ExpectColumnValuesToBeBetween(column="max", min_value=200, max_value=255),
    ],
    **_CHECKS,
)
normalized_split = gx_asset_check(
    asset=normalized_slices,
    name="split_by_patient",
    description="No patient has slices on both sides of the 8:2 split.",
    frame=_split_frame,
    expectations=lambda: [
        gx.expectations.ExpectColumnValuesToBeBetween(column="sides", min_value=1, max_value=1)
    ],
    **_CHECKS,
)
normalized_qc_rate = gx_asset_check(
    asset=normalized_slices,
    name="qc_exclusion_rate",
    description=f"QC excludes at most {MAX_QC_EXCLUSION_RATE:.0%} of a center's slices, and some slices are kept.",
    frame=_qc_frame,
    expectations=lambda: [
        gx.expectations.ExpectColumnValuesToBeBetween(
            column="exclusion_rate", min_value=0, max_value=MAX_QC_EXCLUSION_RATE
        ),
        gx.expectations.ExpectColumnValuesToBeBetween(column="kept", min_value=1),
    ],
    **_CHECKS,
)
