"""Automation: a new center folder becomes a partition; new or changed files (DICOM or report table)
request an ingest once they have settled and no ingest of that center is pending; a successful ingest requests
the cross-center job. The weekly retrain schedule and the drift sensor: test_schedule.py, test_drift_sensor.py."""

from __future__ import annotations

import os
import time
from pathlib import Path

import dagster as dg
import pytest

from assets.resources import PathsResource
from dagster_project.definitions import defs
from dagster_project.jobs import EXCLUSIVE_TAG, cross_center_job, ingest_center_job
from dagster_project.sensors import SETTLE_SECONDS, STALE_RUN_ENV, ingest_success_sensor, raw_data_sensor


def _evaluate(instance: dg.DagsterInstance, root: Path) -> dg.SensorResult:
    ctx = dg.build_sensor_context(instance=instance, resources={"paths": PathsResource(root=str(root))})
    return raw_data_sensor(ctx)


def _write(path: Path, data: bytes, age_s: float = 2 * SETTLE_SECONDS) -> None:
    """Write ``path`` with a modification time ``age_s`` seconds ago (a transfer finished that long ago)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    past = time.time() - age_s
    os.utime(path, (past, past))


def _center(root: Path, name: str) -> Path:
    return root / "raw" / "dicom" / name / "patient" / "study" / "series"


def _run_keys(result: dg.SensorResult) -> dict[str | None, str | None]:
    return {r.partition_key: r.run_key for r in result.run_requests}


def _add_run(instance: dg.DagsterInstance, job: str, status: dg.DagsterRunStatus, **tags: str) -> None:
    instance.add_run(dg.DagsterRun(job_name=job, status=status, tags=tags))


def test_new_center_new_images_and_new_reports_trigger_ingest(tmp_path: Path) -> None:
    instance = dg.DagsterInstance.ephemeral()
    _write(_center(tmp_path, "center_x") / "1.dcm", b"x")

    first = _evaluate(instance, tmp_path)
    assert list(_run_keys(first)) == ["center_x"]
    assert first.dynamic_partitions_requests[0].partition_keys == ["center_x"]

    instance.add_dynamic_partitions("center", ["center_x"])
    same = _evaluate(instance, tmp_path)
    assert not same.dynamic_partitions_requests
    assert _run_keys(same) == _run_keys(first)  # no new data: Dagster skips the run key

    _write(_center(tmp_path, "center_x") / "2.dcm", b"y")
    images = _evaluate(instance, tmp_path)
    assert _run_keys(images)["center_x"] != _run_keys(first)["center_x"]

    _write(tmp_path / "raw" / "reports" / "center_x.jsonl", b"{}\n", age_s=SETTLE_SECONDS + 10)
    reports = _evaluate(instance, tmp_path)
    assert _run_keys(reports)["center_x"] not in {_run_keys(first)["center_x"], _run_keys(images)["center_x"]}


def test_a_transfer_in_progress_waits_for_the_settle_time(tmp_path: Path) -> None:
    instance = dg.DagsterInstance.ephemeral()
    _write(_center(tmp_path, "center_a") / "1.dcm", b"a")
    _write(_center(tmp_path, "center_b") / "1.dcm", b"b")
    _write(_center(tmp_path, "center_b") / "2.dcm", b"b", age_s=1)  # still arriving
    (tmp_path / "raw" / "dicom" / "center_c").mkdir()  # transfer not started

    result = _evaluate(instance, tmp_path)
    assert list(_run_keys(result)) == ["center_a"]
    assert result.dynamic_partitions_requests[0].partition_keys == ["center_a", "center_b", "center_c"]

    _write(_center(tmp_path, "center_a") / "2.dcm", b"a", age_s=1)
    _write(tmp_path / "raw" / "reports" / "center_b.jsonl", b"{}\n", age_s=1)
    waiting = _evaluate(instance, tmp_path)
    assert not waiting.run_requests
    assert waiting.skip_reason is not None
    reason = waiting.skip_reason.skip_message or ""
    assert "center_a: files changed" in reason and "center_b: files changed" in reason
    assert "center_c: no files yet" in reason


def test_a_center_with_an_unfinished_ingest_run_is_not_requested_again(tmp_path: Path) -> None:
    instance = dg.DagsterInstance.ephemeral()
    for center in ("center_a", "center_b"):
        _write(_center(tmp_path, center) / "1.dcm", b"x")
    job = ingest_center_job.name
    _add_run(instance, job, dg.DagsterRunStatus.NOT_STARTED, **{"dagster/partition": "center_a"})
    _add_run(instance, job, dg.DagsterRunStatus.SUCCESS, **{"dagster/partition": "center_b"})
    _add_run(
        instance, cross_center_job.name, dg.DagsterRunStatus.STARTED, **{"dagster/partition": "center_b"}
    )

    assert list(_run_keys(_evaluate(instance, tmp_path))) == ["center_b"]

    _add_run(instance, job, dg.DagsterRunStatus.STARTED, **{"dagster/partition": "center_b"})
    busy = _evaluate(instance, tmp_path)
    assert not busy.run_requests
    assert "center_b: an ingest run is queued or in progress" in (busy.skip_reason.skip_message or "")


def test_folder_that_is_not_a_center_id_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "raw" / "dicom" / "Hospital A (张三)").mkdir(parents=True)
    with pytest.raises(ValueError, match="not valid center ids") as err:
        _evaluate(dg.DagsterInstance.ephemeral(), tmp_path)
    assert "张三" not in str(err.value)  # the message never repeats folder names, which may identify someone


@dg.asset
def _finished_step() -> None:
    """Stands in for an ingest run: the sensor reads only the run and its success event."""


def test_a_successful_ingest_requests_the_cross_center_job_once(tmp_path: Path) -> None:
    instance = dg.DagsterInstance.ephemeral()
    ingest = dg.materialize([_finished_step], instance=instance)

    def evaluate() -> dg.RunRequest | dg.SkipReason:
        return ingest_success_sensor(
            dg.build_run_status_sensor_context(
                sensor_name=ingest_success_sensor.name,
                dagster_instance=instance,
                dagster_run=ingest.dagster_run,
                dagster_event=ingest.get_run_success_event(),
            )
        )

    request = evaluate()
    assert isinstance(request, dg.RunRequest) and request.run_key == ingest.dagster_run.run_id
    assert ingest_success_sensor.job_name == cross_center_job.name

    _add_run(instance, cross_center_job.name, dg.DagsterRunStatus.NOT_STARTED)
    assert isinstance(evaluate(), dg.SkipReason)  # the queued rebuild will read this center's data


def test_the_code_location_registers_the_automation() -> None:
    assert {j.name for j in defs.resolve_all_job_defs()} >= {"ingest_center", "cross_center", "retrain"}
    assert defs.resolve_schedule_def("weekly_retrain").job_name == "retrain"
    assert defs.resolve_sensor_def("raw_data_sensor").job_name == "ingest_center"
    assert defs.resolve_sensor_def("ingest_success_sensor").job_name == "cross_center"
    selected = {
        name: {k.to_user_string() for k in defs.resolve_job_def(name).asset_layer.selected_asset_keys}
        for name in ("cross_center", "retrain")
    }
    assert selected == {
        "cross_center": {"vl_pairs", "instruction_pairs"},  # after each ingest: no GPU-days per new center
        "retrain": {  # a new encoder invalidates everything trained or evaluated on it
            "vl_pairs", "instruction_pairs", "mae_encoder",
            "seg_adapter", "cls_adapter", "grade_adapter", "prognosis_adapter",
            "language_model", "aligned_vlm", "instructed_vlm", "prospective_evaluation", "retrospective_evaluation",
        },
    }
    # Both write the same outputs; the instance's run queue serialises runs with this tag (Makefile).
    assert all(defs.resolve_job_def(n).tags["brainfm/exclusive"] == "cross_center" for n in selected)


def test_the_instance_config_of_make_serialises_cross_center_runs(tmp_path: Path) -> None:
    import subprocess

    home = tmp_path / "dagster_home"
    root = Path(__file__).resolve().parents[2]
    subprocess.run(["make", "-s", "-C", str(root), f"DAGSTER_HOME={home}", f"{home}/dagster.yaml"], check=True)
    with dg.DagsterInstance.from_config(str(home)) as instance:  # as `make dev` and `make demo` load it
        limits = instance.get_concurrency_config().run_queue_config.tag_concurrency_limits
    assert {"key": "brainfm/exclusive", "value": "cross_center", "limit": 1} in limits
    assert EXCLUSIVE_TAG == {"brainfm/exclusive": "cross_center"}


def test_an_ingest_run_killed_mid_way_no_longer_holds_its_center_back(tmp_path: Path, monkeypatch) -> None:
    """A started run whose worker died never finishes by itself; once it has been silent for the stale time
    the sensor marks it failed and ingests the center again."""
    instance = dg.DagsterInstance.ephemeral()
    _write(_center(tmp_path, "center_k") / "1.dcm", b"k")
    instance.add_dynamic_partitions("center", ["center_k"])
    _add_run(instance, ingest_center_job.name, dg.DagsterRunStatus.STARTED, **{"dagster/partition": "center_k"})
    waiting = _evaluate(instance, tmp_path)
    assert not waiting.run_requests and "in progress" in (waiting.skip_reason.skip_message or "")
    monkeypatch.setenv(STALE_RUN_ENV, "0")  # the run has been silent for longer than the stale time
    recovered = _evaluate(instance, tmp_path)
    assert list(_run_keys(recovered)) == ["center_k"]
    (run,) = instance.get_runs(dg.RunsFilter(job_name=ingest_center_job.name))
    assert run.status == dg.DagsterRunStatus.FAILURE


def test_a_new_sites_center_can_be_registered_before_the_sensor_runs(tmp_path: Path) -> None:
    from brainfm.raw_layout import RawLayout
    from dagster_project.add_center import add_centers

    instance = dg.DagsterInstance.ephemeral()
    layout = RawLayout(tmp_path / "raw")
    _write(_center(tmp_path, "center_x") / "1.dcm", b"x")
    _write(_center(tmp_path, "center_y") / "1.dcm", b"y")
    assert add_centers(instance, layout, ["center_x"]) == ["center_x"]
    assert add_centers(instance, layout) == ["center_y"]  # every folder not yet registered
    assert add_centers(instance, layout) == []
    with pytest.raises(ValueError, match="No center folder for center_z.*copy the center's files"):
        add_centers(instance, layout, ["center_z"])
    assert sorted(instance.get_dynamic_partitions("center")) == ["center_x", "center_y"]
