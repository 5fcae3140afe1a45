"""The raw-data sensor: a new center folder becomes a partition; new files in it request a new ingest run."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from assets.resources import PathsResource
from dagster_project.sensors import raw_data_sensor


def _evaluate(instance: dg.DagsterInstance, root: Path) -> dg.SensorResult:
    ctx = dg.build_sensor_context(instance=instance, resources={"paths": PathsResource(root=str(root))})
    return raw_data_sensor(ctx)


def test_new_center_and_new_files_trigger_ingest(tmp_path: Path) -> None:
    instance = dg.DagsterInstance.ephemeral()
    center = tmp_path / "raw" / "dicom" / "center_x" / "patient" / "study" / "series"
    center.mkdir(parents=True)
    (center / "1.dcm").write_bytes(b"x")

    first = _evaluate(instance, tmp_path)
    assert [r.partition_key for r in first.run_requests] == ["center_x"]
    assert first.dynamic_partitions_requests[0].partition_keys == ["center_x"]

    instance.add_dynamic_partitions("center", ["center_x"])
    same = _evaluate(instance, tmp_path)
    assert not same.dynamic_partitions_requests
    assert (
        same.run_requests[0].run_key == first.run_requests[0].run_key
    )  # no new data: Dagster skips the run key

    (center / "2.dcm").write_bytes(b"y")
    changed = _evaluate(instance, tmp_path)
    assert changed.run_requests[0].run_key != first.run_requests[0].run_key


def test_folder_that_is_not_a_center_id_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "raw" / "dicom" / "Hospital A (张三)").mkdir(parents=True)
    with pytest.raises(ValueError, match="not valid center ids") as err:
        _evaluate(dg.DagsterInstance.ephemeral(), tmp_path)
    assert "张三" not in str(err.value)  # the message never repeats folder names, which may identify someone
