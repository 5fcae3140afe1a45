"""Jobs: per-center ingestion (partitioned) and the cross-center steps that follow it; the weekly retrain."""

import dagster as dg

INGEST = dg.AssetSelection.assets(
    "dicom_manifest", "deidentified_studies", "normalized_slices", "structured_reports"
)

ingest_center_job = dg.define_asset_job(
    "ingest_center",
    selection=INGEST,
    description="Manifest, de-identification, normalisation and report structuring for one center.",
)

cross_center_job = dg.define_asset_job(
    "cross_center",
    selection=INGEST.downstream(include_self=False),
    description="Built from every ingested center: vision-language and instruction pairs, MAE pretraining.",
)

# 02:00 on Sunday at the sites (Chinese hospitals), when the GPU is not needed for anything else.
weekly_retrain_schedule = dg.ScheduleDefinition(
    name="weekly_retrain",
    job=cross_center_job,
    cron_schedule="0 2 * * 0",
    execution_timezone="Asia/Shanghai",
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="Rebuild the cross-center data and retrain the encoder on every center ingested so far.",
)
