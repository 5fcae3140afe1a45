"""Automation: a new center folder becomes a partition and is ingested; new files in a center re-ingest it once
they have settled; a successful ingest refreshes the cross-center assets; a center's drift verdict raises an
alert and requests a retrain; the weekly schedule retrains only when the encoder's data or code changed; the nightly
schedule scores the inbox."""

import os
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import dagster as dg

from assets.adapters import IMAGE_CHECKS
from assets.drift import center_drift
from assets.gating import passed_partitions
from assets.lineage import (
    CODE_VERSION,
    DATA_VERSIONS,
    InputVersion,
    code_version,
    input_versions,
    output_version,
)
from assets.partitions import CENTERS
from assets.pretrain import mae_encoder
from assets.resources import PathsResource
from brainfm.raw_layout import RawLayout
from dagster_project.jobs import batch_scoring_job, cross_center_job, ingest_center_job, retrain_job

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
        dg.RunsFilter(
            job_name=ingest_center_job.name, statuses=[_S.STARTED], tags={"dagster/partition": center}
        )
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


# Run tags saying why a retrain was requested.
TRIGGER_TAG, DRIFTED_TAG, REASON_TAG = "brainfm/trigger", "brainfm/drifted_centers", "brainfm/retrain_reason"
DRIFT_BATCH = 100  # drift reports read per tick; the cursor carries the rest to the next tick


def _drift_alert(center: str, meta: dict[str, dg.MetadataValue]) -> str:
    """The warning for a drifted center, from its center_drift metadata (assets/drift.py)."""
    share = float(meta["drifted_share"].value)  # type: ignore[arg-type]
    columns = ", ".join(meta["drifted_columns"].value)  # type: ignore[arg-type]
    return (
        f"drift alert: {center} drifted ({share:.0%} of its image and report columns; drifted: {columns}); "
        "see its center_drift report and the failing no_drift check"
    )


@dg.sensor(job=retrain_job, minimum_interval_seconds=300, default_status=dg.DefaultSensorStatus.STOPPED)
def drift_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
    """Warn, and request one retrain, when new center_drift reports say a center drifted.

    Reads the reports materialized since the cursor (the last storage id seen), the latest per center. The run
    key names each drifted center with its report's DVC hash, so one drift event requests one retrain even if
    the report is materialized again unchanged. No request while a retrain is queued: it will train on the
    drifted center's data anyway."""
    records = context.instance.fetch_materializations(
        dg.AssetRecordsFilter(
            asset_key=center_drift.key, after_storage_id=int(context.cursor) if context.cursor else None
        ),
        limit=DRIFT_BATCH,
        ascending=True,
    ).records
    if not records:
        return dg.SensorResult(skip_reason="no new drift report")
    cursor = str(records[-1].storage_id)
    latest = {r.partition_key: r for r in records if r.partition_key and r.asset_materialization}
    drifted = {}
    for center, record in sorted(latest.items()):
        meta = record.asset_materialization.metadata  # type: ignore[union-attr]
        if "drifted" in meta and meta["drifted"].value:
            context.log.warning(_drift_alert(center, meta))
            drifted[center] = output_version(record)
    if not drifted:
        return dg.SensorResult(skip_reason=f"not drifted: {', '.join(sorted(latest))}", cursor=cursor)
    if has_run(context.instance, retrain_job.name, WAITING):
        return dg.SensorResult(
            skip_reason=f"{', '.join(drifted)} drifted; a queued retrain run will train on their data",
            cursor=cursor,
        )
    request = dg.RunRequest(
        run_key="drift:" + ",".join(f"{c}@{md5}" for c, md5 in drifted.items()),
        tags={TRIGGER_TAG: "drift", DRIFTED_TAG: ",".join(drifted)},
    )
    return dg.SensorResult(run_requests=[request], cursor=cursor)


def _data_changes(seen: dict[str, InputVersion], now: dict[str, InputVersion]) -> list[str]:
    """What differs between two `assets.lineage.input_versions`: 'clinical_tables',
    'normalized_slices[center_e] new', '… changed', '… left out'."""
    changes = []
    for name in sorted(seen.keys() | now.keys()):
        before, after = seen.get(name), now.get(name)
        if isinstance(before, dict) and isinstance(after, dict):
            for part in sorted(before.keys() | after.keys()):
                if part not in before:
                    changes.append(f"{name}[{part}] new")
                elif part not in after:
                    changes.append(f"{name}[{part}] left out")
                elif before[part] != after[part]:
                    changes.append(f"{name}[{part}] changed")
        elif before != after:
            changes.append(name)
    return changes


def retrain_reason(instance: dg.DagsterInstance, centers: Sequence[str]) -> str | None:
    """Why the encoder should be retrained: no encoder yet, or its lineage differs from now: the DVC hashes of
    its inputs (partitioned ones: of ``centers``, those the encoder would read) or the code's git version. None
    when nothing changed since the latest encoder."""
    event = instance.get_latest_materialization_event(mae_encoder.key)
    if event is None or event.asset_materialization is None:
        return "no encoder yet"
    meta = event.asset_materialization.metadata
    if DATA_VERSIONS not in meta or CODE_VERSION not in meta:
        return "the latest encoder records no lineage (data_versions, code_version)"
    seen: dict[str, InputVersion] = meta[DATA_VERSIONS].value  # type: ignore[assignment]
    reasons = []
    if changes := _data_changes(seen, input_versions(instance, list(seen), centers)):
        reasons.append("data changed: " + ", ".join(changes))
    then, now = str(meta[CODE_VERSION].value), code_version().label
    if then != now:
        reasons.append(f"code changed: {then} -> {now}")
    return "; ".join(reasons) or None


# 02:00 on Sunday at the sites (Chinese hospitals), when the GPU is not needed for anything else. Retraining
# is scheduled, not triggered by each ingest: at the full profile it takes GPU-days.
@dg.schedule(
    name="weekly_retrain",
    job=retrain_job,
    cron_schedule="0 2 * * 0",
    execution_timezone="Asia/Shanghai",
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="Rebuild the cross-center data and retrain the encoder on every center ingested so far, when its "
    "data (DVC hashes) or code (git) changed since the latest encoder.",
)
def weekly_retrain_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest | dg.SkipReason:
    """Request a retrain when `retrain_reason` names one (for the centers that pass the image checks the encoder
    gates on) and no retrain is queued or running."""
    instance = context.instance
    centers, _ = passed_partitions(instance, IMAGE_CHECKS, instance.get_dynamic_partitions(CENTERS.name))
    if not centers:
        return dg.SkipReason("no center has passed its image checks yet: ingest one first")
    if has_run(instance, retrain_job.name, NOT_FINISHED):
        return dg.SkipReason("a retrain run is queued or in progress")
    reason = retrain_reason(instance, centers)
    if reason is None:
        return dg.SkipReason(
            "neither the encoder's data (DVC hashes) nor the code (git) changed since it was trained"
        )
    context.log.info(f"retraining: {reason}")
    return dg.RunRequest(tags={TRIGGER_TAG: "schedule", REASON_TAG: reason})


# 01:00 every night at the sites, an hour before the Sunday retrain (both use the GPU pool), so that a study that
# arrived during the day has its results in the morning.
@dg.schedule(
    name="nightly_batch_scoring",
    job=batch_scoring_job,
    cron_schedule="0 1 * * *",
    execution_timezone="Asia/Shanghai",
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="Score the study folders of the inbox not yet scored with the current models.",
)
def nightly_batch_scoring_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest | dg.SkipReason:
    """Request a scoring run unless one is queued or running (it would score the same studies)."""
    if has_run(context.instance, batch_scoring_job.name, NOT_FINISHED):
        return dg.SkipReason("a batch_scoring run is queued or in progress")
    return dg.RunRequest()
