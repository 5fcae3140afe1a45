"""Lesion masks per center, put through exactly the geometry of each image series in normalized_slices."""

# No `from __future__ import annotations` in asset modules: Dagster reads parameter annotations at runtime.

from pathlib import Path

import dagster as dg
import great_expectations as gx
import pandas as pd
import polars as pl

from assets.gating import gx_asset_check
from assets.ingest import NORMALIZED_SLICES
from assets.partitions import CENTERS
from assets.resources import DeidSecretResource, DvcResource, PathsResource
from assets.tables import clinical_tables
from assets.versioning import versioned
from brainfm.imaging.masks import map_masks, mask_centroid_distances, mask_slices_without_image
from brainfm.imaging.shards import INDEX_FILE
from brainfm.tables import index_join, mask_paths, read_tables
from brainfm.validation import Gate

# A mask that cannot be used (missing, unreadable, not 3-D, labels outside 0–3, no oriented series) loses its
# study for segmentation only; more than this share of a center's masks is a broken export, not bad luck.
MAX_FAILED_MASKS = 0.1


@dg.asset(
    partitions_def=CENTERS,
    deps=[NORMALIZED_SLICES, clinical_tables],
    group_name="stage3",
    description="Each study's lesion mask (1 lesion, 2 oedema, 3 necrosis) put through the geometry of every "
    "image series of the study in normalized_slices (reorientation, slicing, nearest-neighbour resize, "
    "padding): uint8 shards and an index keyed by the image slice_id.",
)
def lesion_masks(
    context: dg.AssetExecutionContext, paths: PathsResource, deid_secret: DeidSecretResource, dvc: DvcResource
) -> dg.MaterializeResult:
    center = context.partition_key
    out = paths.output("lesion_masks", center)
    # The mapping study → raw mask path stays in memory: raw paths hold accession numbers.
    masks = mask_paths(paths.raw, deid_secret.pseudonymizer())
    summary = map_masks(
        paths.output("normalized_slices", center), masks, out, staging_dir=paths.quarantine / "staging"
    )
    for reason in summary.failed.values():
        context.log.warning(f"a mask of {center} was not mapped: {reason}")
    return dg.MaterializeResult(
        metadata={
            "studies": summary.studies,
            "slices": summary.slices,
            "lesion_slices": summary.lesion_slices,
            "failed_masks": len(summary.failed),
            "failed_reasons": dg.MetadataValue.json(sorted(summary.failed.values())),
            **versioned(out, paths, dvc),
        }
    )


def mask_alignment_gate(mask_dir: Path, slices_dir: Path, n_masks: int) -> Gate:
    """One row per mask slice without an image slice (none may exist), and the share of the center's masks
    that could not be mapped (from the materialization; at most `MAX_FAILED_MASKS`)."""
    mask_index = pl.read_parquet(mask_dir / INDEX_FILE)
    orphans = mask_slices_without_image(mask_index, pl.read_parquet(slices_dir / INDEX_FILE))
    mapped = mask_index["study"].n_unique()
    frame = pd.DataFrame(
        {
            "orphan_mask_slices": [len(orphans)],
            "failed_share": [1 - mapped / n_masks if n_masks else 0.0],
            "min_label_pixels": [int(mask_index["lesion_pixels"].min()) if len(mask_index) else 0],
        }
    )
    return Gate(
        frame,
        [
            gx.expectations.ExpectColumnValuesToBeBetween(column="orphan_mask_slices", min_value=0, max_value=0),
            gx.expectations.ExpectColumnValuesToBeBetween(column="failed_share", max_value=MAX_FAILED_MASKS),
            gx.expectations.ExpectColumnValuesToBeBetween(column="min_label_pixels", min_value=0),
        ],
    )


def mask_placement_gate(distances: pl.DataFrame) -> Gate:
    """One row per mapped (study, series, volume) with a lesion core on both sides: the centroid of its mapped
    mask, taken back to RAS, lies within one slice spacing plus one pixel of the raw mask's centroid."""
    measured = distances.filter(pl.col("distance_mm").is_not_nan())
    frame = measured.with_columns(
        excess_mm=pl.col("distance_mm") - pl.col("slice_mm") - pl.col("pixel_mm")
    ).to_pandas()
    return Gate(
        frame,
        [
            gx.expectations.ExpectTableRowCountToBeBetween(min_value=0),
            gx.expectations.ExpectColumnValuesToNotBeNull(column="excess_mm"),
            gx.expectations.ExpectColumnValuesToBeBetween(column="excess_mm", max_value=0.0),
        ],
    )


def labels_join_gate(labels: pl.DataFrame, index: pl.DataFrame) -> Gate:
    """One row per study of the center's normalised index: it has a row in the labels table, naming the same
    patient pseudonym (a wrong key shows as nothing labelled)."""
    frame = index_join(labels, index).to_pandas()
    return Gate(
        frame,
        [
            gx.expectations.ExpectTableRowCountToBeBetween(min_value=1),
            gx.expectations.ExpectColumnValuesToBeInSet(column="labelled", value_set=[True]),
            gx.expectations.ExpectColumnValuesToBeInSet(column="same_patient", value_set=[True]),
        ],
    )


def _paths(context: dg.AssetCheckExecutionContext) -> tuple[Path, Path]:
    paths: PathsResource = context.resources.paths
    return paths.output("lesion_masks", context.partition_key), paths.output("normalized_slices", context.partition_key)


def _center_masks(context: dg.AssetCheckExecutionContext) -> dict[str, Path]:
    """The center's studies with a mask (study → raw path; in memory only)."""
    _, slices_dir = _paths(context)
    studies = set(pl.read_parquet(slices_dir / INDEX_FILE)["study"].to_list())
    masks = mask_paths(context.resources.paths.raw, context.resources.deid_secret.pseudonymizer())
    return {s: p for s, p in masks.items() if s in studies}


_CHECKS = {"required_resource_keys": {"paths", "deid_secret"}, "partitions_def": CENTERS}
lesion_masks_aligned = gx_asset_check(
    asset=lesion_masks,
    name="mask_slices_have_images",
    description=f"Every mask slice has an image slice (same slice_id); at most {MAX_FAILED_MASKS:.0%} of the "
    "center's masks could not be mapped.",
    gate=lambda context: mask_alignment_gate(*_paths(context), len(_center_masks(context))),
    **_CHECKS,
)
lesion_masks_placed = gx_asset_check(
    asset=lesion_masks,
    name="lesion_where_planted",
    description="On every mapped series with a lesion core, the mapped mask's centroid (back in RAS mm) is within "
    "one slice spacing plus one pixel of the raw mask's centroid.",
    gate=lambda context: mask_placement_gate(mask_centroid_distances(*_paths(context), _center_masks(context))),
    **_CHECKS,
)
lesion_masks_labelled = gx_asset_check(
    asset=lesion_masks,
    name="studies_labelled",
    description="Every study of the center's normalised slices has a row in clinical_tables' labels, naming the "
    "same patient pseudonym: labels and images share the key.",
    gate=lambda context: labels_join_gate(
        read_tables(context.resources.paths.output("clinical_tables"))["labels"],
        pl.read_parquet(_paths(context)[1] / INDEX_FILE),
    ),
    **_CHECKS,
)
