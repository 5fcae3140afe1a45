"""Sensors: a new center folder becomes a partition and is ingested; new files in a center re-ingest it."""

import os

import dagster as dg

from assets.partitions import CENTERS
from assets.resources import PathsResource
from brainfm.raw_layout import RawLayout
from dagster_project.jobs import ingest_center_job


def center_signature(center_dir: str) -> str:
    """Files and newest modification time (ns) under a center folder: changes when data arrives."""
    count, newest = 0, 0
    for dirpath, _dirs, files in os.walk(center_dir):
        for name in files:
            count += 1
            newest = max(newest, os.stat(os.path.join(dirpath, name)).st_mtime_ns)
    return f"{count}-{newest}"


@dg.sensor(job=ingest_center_job, minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.STOPPED)
def raw_data_sensor(context: dg.SensorEvaluationContext, paths: PathsResource) -> dg.SensorResult:
    """Register new center folders as partitions and request an ingest run when a center's files change."""
    layout = RawLayout(paths.raw)
    centers = layout.centers()
    known = set(context.instance.get_dynamic_partitions(CENTERS.name))
    new = [c for c in centers if c not in known]
    requests = [
        dg.RunRequest(partition_key=c, run_key=f"{c}:{center_signature(str(layout.dicom / c))}")
        for c in centers
    ]
    return dg.SensorResult(
        run_requests=requests,
        dynamic_partitions_requests=[CENTERS.build_add_request(new)] if new else [],
    )
