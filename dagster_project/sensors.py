"""Sensors: a new center folder becomes a partition and is ingested; new files in a center re-ingest it once
they have settled; a successful ingest refreshes the cross-center assets."""

import os
import time
from collections.abc import Iterator
from pathlib import Path

import dagster as dg

from assets.partitions import CENTERS
from assets.resources import PathsResource
from brainfm.raw_layout import RawLayout
from dagster_project.jobs import cross_center_job, ingest_center_job

# A center is ingested only when none of its files changed for this long: a transfer in progress waits.
SETTLE_SECONDS = float(os.environ.get("BRAINFM_SENSOR_SETTLE_SECONDS", "120"))
# An ingest run with no event for this long is presumed dead (its worker was killed or crashed: the default run
# launcher cannot report that); the ingest asset logs its progress at least once a minute while it works.
STALE_RUN_ENV, STALE_RUN_SECONDS = "BRAINFM_SENSOR_STALE_RUN_SECONDS", 1800.0
_S = dg.DagsterRunStatus
WAITING = [_S.QUEUED, _S.NOT_STARTED]  # runs that have not read any data yet
NOT_FINISHED = [*WAITING, _S.STARTING, _S.STARTED, _S.SUSPENDED, _S.CANCELING]


def center_partitions(instance: dg.DagsterInstance, layout: RawLayout) -> tuple[list[str], list[str]]:
    """Every center folder of the raw layout (sorted) and those not yet registered as partitions."""
    centers = layout.centers()
    known = set(instance.get_dynamic_partitions(CENTERS.name))
    return centers, [c for c in centers if c not in known]


def center_files(layout: RawLayout, center: str) -> Iterator[Path]:
    """A center's raw inputs: the files under its DICOM folder and its report table."""
    for dirpath, _dirs, files in os.walk(layout.dicom / center):
        yield from (Path(dirpath, name) for name in files)
    yield layout.reports / f"{center}.jsonl"


def center_signature(layout: RawLayout, center: str) -> tuple[int, int]:
    """Number of files and newest modification time (ns) of a center's inputs: changes when data arrives.

    A file that disappears while it is listed (a transfer renaming its temporary file) is left out.
    """
    mtimes = []
    for path in center_files(layout, center):
        try:
            mtimes.append(path.stat().st_mtime_ns)
        except FileNotFoundError:
            continue
    return len(mtimes), max(mtimes, default=0)


def has_run(
    instance: dg.DagsterInstance,
    job_name: str,
    statuses: list[dg.DagsterRunStatus],
    partition: str | None = None,
) -> bool:
    """Whether the instance holds a run of ``job_name`` (of ``partition``, if any) in one of ``statuses``."""
    tags = {"dagster/partition": partition} if partition else {}
    return bool(instance.get_run_ids(dg.RunsFilter(job_name=job_name, statuses=statuses, tags=tags), limit=1))


def _ingest_request(
    instance: dg.DagsterInstance, layout: RawLayout, center: str, now_ns: int
) -> dg.RunRequest | str:
    """The ingest run request for ``center``, or why it waits (run keys skip data already ingested)."""
    count, newest = center_signature(layout, center)
    if not count:
        return f"{center}: no files yet"
    if now_ns - newest < SETTLE_SECONDS * 1e9:
        return f"{center}: files changed less than {SETTLE_SECONDS:g} s ago"
    _fail_dead_runs(instance, center)
    if has_run(instance, ingest_center_job.name, NOT_FINISHED, center):
        return f"{center}: an ingest run is queued or in progress"
    return dg.RunRequest(partition_key=center, run_key=f"{center}:{count}-{newest}")


def _fail_dead_runs(instance: dg.DagsterInstance, center: str) -> None:
    """Mark failed every started ingest run of ``center`` with no event (nor status change) for the stale time,
    so that a run killed mid-ingest does not hold the center back forever."""
    stale = float(os.environ.get(STALE_RUN_ENV, STALE_RUN_SECONDS))
    runs = instance.get_run_records(
        dg.RunsFilter(job_name=ingest_center_job.name, statuses=[_S.STARTED], tags={"dagster/partition": center})
    )
    for record in runs:
        events = instance.get_records_for_run(record.dagster_run.run_id, limit=1, ascending=False).records
        last = max([record.update_timestamp.timestamp(), *(e.event_log_entry.timestamp for e in events)])
        if time.time() - last >= stale:
            instance.report_run_failed(
                record.dagster_run,
                f"No event for {stale:g} s: the run worker is presumed dead (killed or crashed); marked failed by "
                f"raw_data_sensor so that {center} can be ingested again.",
            )


@dg.sensor(job=ingest_center_job, minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.STOPPED)
def raw_data_sensor(context: dg.SensorEvaluationContext, paths: PathsResource) -> dg.SensorResult:
    """Register new center folders as partitions and request an ingest run when a center's files changed."""
    layout = RawLayout(paths.raw)
    centers, new = center_partitions(context.instance, layout)
    now_ns = time.time_ns()
    outcomes = [_ingest_request(context.instance, layout, c, now_ns) for c in centers]
    requests = [o for o in outcomes if isinstance(o, dg.RunRequest)]
    waits = [o for o in outcomes if isinstance(o, str)]
    return dg.SensorResult(
        run_requests=requests,
        skip_reason=None if requests else "; ".join(waits) or f"no center folders under {layout.dicom}",
        dynamic_partitions_requests=[CENTERS.build_add_request(new)] if new else [],
    )


@dg.run_status_sensor(
    run_status=dg.DagsterRunStatus.SUCCESS,
    monitored_jobs=[ingest_center_job],
    request_job=cross_center_job,
    default_status=dg.DefaultSensorStatus.STOPPED,
)
def ingest_success_sensor(context: dg.RunStatusSensorContext) -> dg.RunRequest | dg.SkipReason:
    """Rebuild the cross-center assets after a center's ingest succeeded, unless a rebuild is still waiting
    to start (it will read the new data anyway)."""
    if has_run(context.instance, cross_center_job.name, WAITING):
        return dg.SkipReason("a cross-center run is already queued")
    return dg.RunRequest(run_key=context.dagster_run.run_id)
