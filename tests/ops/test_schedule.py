"""The weekly retrain schedule retrains only when the encoder's data (DVC hashes of the centers that pass their
image checks and of the clinical tables) or the code (git) changed since the latest encoder recorded them."""

# No `from __future__ import annotations`: Dagster reads the assets' parameter annotations at runtime.

from collections.abc import Iterator
from datetime import datetime
from zoneinfo import ZoneInfo

import dagster as dg
import pytest

from assets.adapters import IMAGE_CHECKS
from assets.gating import cleared_centers
from assets.lineage import GIT_REVISION_ENV, lineage
from assets.partitions import CENTERS
from dagster_project.definitions import defs
from dagster_project.jobs import retrain_job
from dagster_project.sensors import REASON_TAG, TRIGGER_TAG, weekly_retrain_schedule

SUNDAY_2AM = datetime(2025, 3, 2, 2, 0, tzinfo=ZoneInfo("Asia/Shanghai"))


class Version(dg.Config):
    md5: str
    passed: bool = True


@dg.asset(name="normalized_slices", partitions_def=CENTERS)
def slices_standin(config: Version) -> dg.MaterializeResult:
    """A center's ingest: its DVC hash, and whether its image checks are to pass."""
    return dg.MaterializeResult(metadata={"dvc_md5": config.md5, "passed": config.passed})


def _image_check(name: str) -> dg.AssetChecksDefinition:
    """A stand-in for one of the image checks mae_encoder gates on (same key, partitioned like it)."""

    @dg.asset_check(asset="normalized_slices", name=name, partitions_def=CENTERS)
    def _check(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
        latest = context.instance.fetch_materializations(
            dg.AssetRecordsFilter(dg.AssetKey("normalized_slices"), asset_partitions=[context.partition_key]),
            limit=1,
        ).records[0]
        return dg.AssetCheckResult(passed=bool(latest.asset_materialization.metadata["passed"].value))

    return _check


IMAGE_CHECK_STANDINS = [_image_check(key.name) for check in IMAGE_CHECKS for key in check.check_keys]


@dg.asset(name="clinical_tables")
def tables_standin(config: Version) -> dg.MaterializeResult:
    return dg.MaterializeResult(metadata={"dvc_md5": config.md5})


@dg.asset(name="mae_encoder", deps=["normalized_slices", "clinical_tables"])
def encoder_standin(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    """mae_encoder's gating and the lineage the lead adds to it (docs/OPERATIONS.md, "Lineage")."""
    centers, _ = cleared_centers(context, IMAGE_CHECKS)
    inputs = ["normalized_slices", "clinical_tables"]
    return dg.MaterializeResult(metadata=lineage(context, inputs, {"model": "tiny"}, partitions=centers))


def _ingest(instance: dg.DagsterInstance, center: str, md5: str, passed: bool = True) -> None:
    instance.add_dynamic_partitions(CENTERS.name, [center])
    config = {"ops": {"normalized_slices": {"config": {"md5": md5, "passed": passed}}}}
    dg.materialize(
        [slices_standin, *IMAGE_CHECK_STANDINS], instance=instance, partition_key=center, run_config=config
    )


def _tables(instance: dg.DagsterInstance, md5: str) -> None:
    dg.materialize(
        [tables_standin], instance=instance, run_config={"ops": {"clinical_tables": {"config": {"md5": md5}}}}
    )


def _tick(instance: dg.DagsterInstance) -> dg.RunRequest | dg.SkipReason:
    data = weekly_retrain_schedule.evaluate_tick(
        dg.build_schedule_context(instance=instance, scheduled_execution_time=SUNDAY_2AM)
    )
    if data.skip_message:
        return dg.SkipReason(data.skip_message)
    (request,) = data.run_requests or []
    return request


def _reason(instance: dg.DagsterInstance) -> str:
    request = _tick(instance)
    assert isinstance(request, dg.RunRequest), request
    assert request.tags[TRIGGER_TAG] == "schedule"
    return request.tags[REASON_TAG]


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test() as instance:  # schedule contexts need a persistent instance
        yield instance


@pytest.fixture
def trained(instance: dg.DagsterInstance, monkeypatch) -> dg.DagsterInstance:
    """Two cleared centers and the clinical tables, and an encoder trained on them by code 'commit-1'."""
    monkeypatch.setenv(GIT_REVISION_ENV, "commit-1")  # the checkout's own state changes under other sessions
    _ingest(instance, "center_a", "a1.dir")
    _ingest(instance, "center_b", "b1.dir")
    _tables(instance, "t1.dir")
    assert _reason(instance) == "no encoder yet"
    dg.materialize([encoder_standin], instance=instance)
    return instance


def test_nothing_changed_since_the_encoder_skips(trained: dg.DagsterInstance) -> None:
    skip = _tick(trained)
    assert isinstance(skip, dg.SkipReason)
    assert skip.skip_message == (
        "neither the encoder's data (DVC hashes) nor the code (git) changed since it was trained"
    )
    _ingest(trained, "center_a", "a1.dir")  # re-ingested, same content: same DVC hash
    _tables(trained, "t1.dir")
    assert isinstance(_tick(trained), dg.SkipReason)


def test_new_or_changed_data_retrains(trained: dg.DagsterInstance) -> None:
    _ingest(trained, "center_b", "b2.dir")
    assert _reason(trained) == "data changed: normalized_slices[center_b] changed"
    _ingest(trained, "center_c", "c1.dir")
    _tables(trained, "t2.dir")
    assert _reason(trained) == (
        "data changed: clinical_tables, normalized_slices[center_b] changed, normalized_slices[center_c] new"
    )


def test_a_center_that_fails_its_checks_counts_only_once_it_passes(trained: dg.DagsterInstance) -> None:
    _ingest(trained, "center_c", "c1.dir", passed=False)  # never read by the encoder: nothing to retrain for
    assert isinstance(_tick(trained), dg.SkipReason)
    _ingest(trained, "center_a", "a2.dir", passed=False)  # the encoder would now leave center_a out
    assert _reason(trained) == "data changed: normalized_slices[center_a] left out"


def test_changed_code_retrains(trained: dg.DagsterInstance, monkeypatch) -> None:
    monkeypatch.setenv(GIT_REVISION_ENV, "commit-2")
    assert _reason(trained) == "code changed: commit-1 -> commit-2"


def test_no_cleared_center_or_a_retrain_in_progress_skips(trained: dg.DagsterInstance) -> None:
    with dg.instance_for_test() as empty:
        assert _tick(empty).skip_message == "no center has passed its image checks yet: ingest one first"  # type: ignore[union-attr]
    _tables(trained, "t2.dir")
    trained.add_run(dg.DagsterRun(job_name=retrain_job.name, status=dg.DagsterRunStatus.STARTED))
    assert _tick(trained).skip_message == "a retrain run is queued or in progress"  # type: ignore[union-attr]


def test_an_encoder_without_lineage_is_retrained(instance: dg.DagsterInstance) -> None:
    _ingest(instance, "center_a", "a1.dir")
    instance.report_runless_asset_event(
        dg.AssetMaterialization("mae_encoder")
    )  # trained before lineage existed
    assert _reason(instance) == "the latest encoder records no lineage (data_versions, code_version)"


def test_the_schedule_is_weekly_at_night_shanghai_time() -> None:
    assert weekly_retrain_schedule.job_name == retrain_job.name
    assert weekly_retrain_schedule.cron_schedule == "0 2 * * 0"  # Sundays 02:00
    assert weekly_retrain_schedule.execution_timezone == "Asia/Shanghai"
    assert weekly_retrain_schedule.default_status == dg.DefaultScheduleStatus.STOPPED
    assert defs.resolve_schedule_def("weekly_retrain").job_name == "retrain"
