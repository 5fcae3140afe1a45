"""The brainfm code location: every asset and check in ``assets/``, jobs, sensors, resources from the environment."""

import dagster as dg

import assets
from dagster_project.jobs import ingest_center_job
from dagster_project.resources import resources_from_env
from dagster_project.sensors import raw_data_sensor

defs = dg.Definitions(
    assets=dg.load_assets_from_package_module(assets),
    asset_checks=dg.load_asset_checks_from_package_module(assets),
    jobs=[ingest_center_job],
    sensors=[raw_data_sensor],
    resources=resources_from_env(),
)
