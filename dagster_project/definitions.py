"""The brainfm code location: every asset and check in ``assets/``, jobs, the retrain schedule, sensors, and
resources from the environment."""

import dagster as dg

import assets
from dagster_project.jobs import cross_center_job, ingest_center_job, retrain_job, weekly_retrain_schedule
from dagster_project.resources import resources_from_env
from dagster_project.sensors import ingest_success_sensor, raw_data_sensor

defs = dg.Definitions(
    assets=dg.load_assets_from_package_module(assets),
    asset_checks=dg.load_asset_checks_from_package_module(assets),
    jobs=[ingest_center_job, cross_center_job, retrain_job],
    schedules=[weekly_retrain_schedule],
    sensors=[raw_data_sensor, ingest_success_sensor],
    resources=resources_from_env(),
)
