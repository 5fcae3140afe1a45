"""The drift sensor: a center_drift report saying a center drifted raises a warning and requests one retrain
named after the center and the report's DVC hash; a center that did not drift requests nothing; the same drift
event is requested once."""

from __future__ import annotations

import dagster as dg
import pytest

from dagster_project.definitions import defs
from dagster_project.jobs import retrain_job
from dagster_project.sensors import DRIFTED_TAG, TRIGGER_TAG, drift_sensor


def _report(instance: dg.DagsterInstance, center: str, drifted: bool, md5: str | None = None) -> None:
    """Record a center_drift materialization with the metadata assets/drift.py writes (the parts the sensor reads)."""
    metadata: dict[str, dg.RawMetadataValue] = {
        "drifted": drifted,
        "drifted_share": 0.52 if drifted else 0.1,
        "drifted_columns": dg.MetadataValue.json(["T1_p50", "FLAIR_snr"] if drifted else []),
    }
    if md5 is not None:
        metadata["dvc_md5"] = md5
    instance.report_runless_asset_event(
        dg.AssetMaterialization("center_drift", partition=center, metadata=metadata)
    )


def _evaluate(instance: dg.DagsterInstance, cursor: str | None = None) -> dg.SensorResult:
    return drift_sensor(dg.build_sensor_context(instance=instance, cursor=cursor))


def test_a_drifted_center_requests_a_retrain_and_warns(capfd: pytest.CaptureFixture[str]) -> None:
    instance = dg.DagsterInstance.ephemeral()
    _report(instance, "center_a", drifted=False, md5="a0.dir")
    _report(instance, "center_d", drifted=True, md5="d1.dir")
    result = _evaluate(instance)
    log = capfd.readouterr().err  # the sensor's log: Dagster's console logger
    (request,) = result.run_requests
    assert request.run_key == "drift:center_d@d1.dir"
    assert request.tags == {TRIGGER_TAG: "drift", DRIFTED_TAG: "center_d"}
    assert drift_sensor.job_name == retrain_job.name
    assert (
        "WARNING - drift alert: center_d drifted (52% of its image and report columns; drifted: T1_p50, "
        in log
    )
    assert "center_a" not in log


def test_centers_that_did_not_drift_request_nothing() -> None:
    instance = dg.DagsterInstance.ephemeral()
    assert _evaluate(instance).skip_reason.skip_message == "no new drift report"
    _report(instance, "center_b", drifted=False, md5="b0.dir")
    _report(instance, "center_a", drifted=False, md5="a0.dir")
    result = _evaluate(instance)
    assert not result.run_requests and result.skip_reason.skip_message == "not drifted: center_a, center_b"
    assert result.cursor is not None  # read: not looked at again


def test_the_same_drift_event_is_requested_once() -> None:
    instance = dg.DagsterInstance.ephemeral()
    _report(instance, "center_d", drifted=True, md5="d1.dir")
    first = _evaluate(instance)
    assert [r.run_key for r in first.run_requests] == ["drift:center_d@d1.dir"]

    again = _evaluate(instance, first.cursor)
    assert not again.run_requests and again.skip_reason.skip_message == "no new drift report"

    # The report materialized again with the same content (same DVC hash): the same run key, which Dagster
    # does not launch twice.
    _report(instance, "center_d", drifted=True, md5="d1.dir")
    repeated = _evaluate(instance, again.cursor)
    assert [r.run_key for r in repeated.run_requests] == ["drift:center_d@d1.dir"]

    # New data at the center, still drifted: a new event, a new retrain.
    _report(instance, "center_d", drifted=True, md5="d2.dir")
    assert [r.run_key for r in _evaluate(instance, repeated.cursor).run_requests] == ["drift:center_d@d2.dir"]


def test_several_drifted_centers_request_one_retrain_and_the_latest_verdict_counts() -> None:
    instance = dg.DagsterInstance.ephemeral()
    _report(instance, "center_e", drifted=True, md5="e1.dir")
    _report(instance, "center_c", drifted=True, md5="c1.dir")
    _report(instance, "center_b", drifted=True, md5="b1.dir")
    _report(instance, "center_b", drifted=False, md5="b2.dir")  # re-ingested: no longer drifted
    (request,) = _evaluate(instance).run_requests
    assert request.run_key == "drift:center_c@c1.dir,center_e@e1.dir"
    assert request.tags[DRIFTED_TAG] == "center_c,center_e"


def test_without_versioning_the_event_names_the_report() -> None:
    instance = dg.DagsterInstance.ephemeral()
    _report(instance, "center_d", drifted=True)  # BRAINFM_VERSIONING=0: no dvc_md5
    (record,) = instance.fetch_materializations(dg.AssetKey("center_drift"), limit=1).records
    (request,) = _evaluate(instance).run_requests
    assert request.run_key == f"drift:center_d@unversioned:event-{record.storage_id}"


def test_a_queued_retrain_absorbs_the_drift_event() -> None:
    instance = dg.DagsterInstance.ephemeral()
    instance.add_run(dg.DagsterRun(job_name=retrain_job.name, status=dg.DagsterRunStatus.NOT_STARTED))
    _report(instance, "center_d", drifted=True, md5="d1.dir")
    result = _evaluate(instance)
    assert not result.run_requests
    assert (
        result.skip_reason.skip_message == "center_d drifted; a queued retrain run will train on their data"
    )
    assert not _evaluate(instance, result.cursor).run_requests


def test_the_code_location_registers_the_drift_sensor() -> None:
    sensor = defs.resolve_sensor_def("drift_sensor")
    assert sensor.job_name == "retrain"
    assert sensor.default_status == dg.DefaultSensorStatus.STOPPED
