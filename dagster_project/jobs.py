"""Jobs: per-center ingestion (partitioned), the cross-center data that follows it, the retrain, and batch scoring
of the inbox (the retrain's weekly schedule and drift trigger and the nightly scoring schedule are in
`dagster_project.sensors`)."""

import dagster as dg

INGEST = dg.AssetSelection.assets(
    "dicom_manifest", "deidentified_studies", "normalized_slices", "structured_reports", "lesion_masks"
)

ingest_center_job = dg.define_asset_job(
    "ingest_center",
    selection=INGEST,
    # Run monitoring (dagster.yaml) fails a run still going after this long: a center at the full profile
    # takes well under an hour per worker.
    tags={"dagster/max_runtime": str(12 * 3600)},
    description="Manifest, de-identification, normalisation, report structuring and lesion masks for one center.",
)

# Both cross-center jobs write the same outputs: runs tagged so are serialised by the instance's run queue
# (tag_concurrency_limits in dagster_home/dagster.yaml, written by the Makefile).
EXCLUSIVE_TAG = {"brainfm/exclusive": "cross_center"}

cross_center_job = dg.define_asset_job(
    "cross_center",
    selection=dg.AssetSelection.assets("vl_pairs", "instruction_pairs"),
    tags=EXCLUSIVE_TAG,
    description="Cheap, after every ingest: vision-language and instruction pairs from every cleared center.",
)

# Scores patients' studies with the deployed models: never part of a retrain.
SCORING = dg.AssetSelection.assets("batch_predictions")

retrain_job = dg.define_asset_job(
    "retrain",
    selection=INGEST.downstream(include_self=False) - dg.AssetSelection.assets("center_drift") - SCORING,
    tags=EXCLUSIVE_TAG,
    description="The cross-center pairs, MAE pretraining of the encoder and the stage-3 adapters on every cleared "
    "center.",
)

batch_scoring_job = dg.define_asset_job(
    "batch_scoring",
    selection=SCORING,
    description="Score every new study folder of the inbox with the deployed models into outputs/batch_predictions/.",
)
