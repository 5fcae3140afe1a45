"""The brainfm code location: every asset and check in ``assets/``, jobs, the retrain and batch-scoring schedules,
sensors, and resources and executor from the environment."""

import os
from collections.abc import Mapping

import dagster as dg

import assets
from dagster_project.jobs import batch_scoring_job, cross_center_job, ingest_center_job, retrain_job
from dagster_project.resources import resources_from_env
from dagster_project.sensors import (
    drift_sensor,
    ingest_success_sensor,
    nightly_batch_scoring_schedule,
    raw_data_sensor,
    weekly_retrain_schedule,
)

EXECUTOR_ENV = "BRAINFM_EXECUTOR"


def executor_from_env(environ: Mapping[str, str] | None = None) -> dg.ExecutorDefinition | None:
    """``BRAINFM_EXECUTOR``: unset or ``multiprocess`` (one machine: Dagster's default, a process per step) or
    ``k8s`` (a Kubernetes job per step, dagster-k8s; docs/OPERATIONS.md and deploy/k8s/)."""
    name = (os.environ if environ is None else environ).get(EXECUTOR_ENV, "multiprocess")
    if name == "multiprocess":
        return None
    if name == "k8s":
        try:
            from dagster_k8s import k8s_job_executor
        except ImportError as error:
            raise ImportError(
                f"{EXECUTOR_ENV}=k8s needs dagster-k8s: `pip install dagster-k8s==0.29.27` (the release matching "
                "dagster 1.13.27) into the image that runs this code location."
            ) from error
        return k8s_job_executor
    raise ValueError(f"{EXECUTOR_ENV}={name!r}: use 'multiprocess' (one machine) or 'k8s' (Kubernetes).")


defs = dg.Definitions(
    assets=dg.load_assets_from_package_module(assets),
    asset_checks=dg.load_asset_checks_from_package_module(assets),
    jobs=[ingest_center_job, cross_center_job, retrain_job, batch_scoring_job],
    schedules=[weekly_retrain_schedule, nightly_batch_scoring_schedule],
    sensors=[raw_data_sensor, ingest_success_sensor, drift_sensor],
    resources=resources_from_env(),
    executor=executor_from_env(),
)
