"""Jobs: per-center ingestion (partitioned) and the cross-center steps that follow it."""

import dagster as dg

from assets.partitions import CENTERS

ingest_center_job = dg.define_asset_job(
    "ingest_center",
    selection=dg.AssetSelection.keys(
        "dicom_manifest", "deidentified_studies", "normalized_slices", "structured_reports"
    ),
    partitions_def=CENTERS,
    description="Manifest, de-identification, normalisation and report structuring for one center.",
)
