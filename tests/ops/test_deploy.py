"""Scale-out configurations in deploy/: the Kubernetes run config against dagster-k8s's k8s_job_executor schema,
the one-machine run config and instance config (run queue, one GPU step at a time), and the multi-node torchrun
command run as two CPU "nodes" on this machine."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import numpy as np
import pytest
import yaml

from dagster_project.definitions import EXECUTOR_ENV, defs, executor_from_env
from dagster_project.jobs import batch_scoring_job, cross_center_job, ingest_center_job, retrain_job
from dagster_project.screenshots import free_port

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
GPU_STEPS = {"mae_encoder", "seg_adapter", "study_adapters", "batch_predictions"}


def _load(name: str) -> dict:
    return yaml.safe_load((DEPLOY / name).read_text())


def _job(name: str, executor: dg.ExecutorDefinition | None = None) -> dg.JobDefinition:
    jobs = [ingest_center_job, cross_center_job, retrain_job, batch_scoring_job]
    return dg.Definitions(
        assets=defs.assets,
        asset_checks=defs.asset_checks,
        jobs=jobs,
        resources=defs.resources,
        executor=executor,
    ).resolve_job_def(name)


def test_the_k8s_run_config_is_valid_for_the_k8s_job_executor() -> None:
    pytest.importorskip("dagster_k8s", reason="dagster-k8s is not installed (pin dagster-k8s==0.29.27)")
    executor = executor_from_env({EXECUTOR_ENV: "k8s"})
    assert executor is not None and executor.name == "k8s"
    job, scoring = _job(retrain_job.name, executor), _job(batch_scoring_job.name, executor)
    config = dg.validate_run_config(job, _load("k8s/run_config.yaml"))["execution"]["k8s"]
    dg.validate_run_config(scoring, _load("k8s/run_config.yaml"))
    assert set(config["per_step_k8s_config"]) == GPU_STEPS <= set(job.graph.node_dict) | set(scoring.graph.node_dict)
    for step in GPU_STEPS:
        assert (
            config["per_step_k8s_config"][step]["container_config"]["resources"]["limits"]["nvidia.com/gpu"]
            == "1"
        )
    assert "BRAINFM_PROFILE=full" in config["env_vars"]
    with pytest.raises(dg.DagsterInvalidConfigError, match="job_namespce"):  # the schema is enforced
        dg.validate_run_config(job, {"execution": {"config": {"job_namespce": "brainfm"}}})


def test_the_executor_is_chosen_by_the_environment() -> None:
    assert executor_from_env({}) is None  # Dagster's default: multiprocess, or in-process when asked
    with pytest.raises(ValueError, match="BRAINFM_EXECUTOR='celery'.*'multiprocess'.*'k8s'"):
        executor_from_env({EXECUTOR_ENV: "celery"})


@pytest.mark.parametrize(
    "job", [ingest_center_job.name, cross_center_job.name, retrain_job.name, batch_scoring_job.name]
)
def test_the_one_machine_run_config_is_valid_for_every_job(job: str) -> None:
    config = dg.validate_run_config(_job(job), _load("local/run_config.yaml"))["execution"]
    assert config["multi_or_in_process_executor"]["multiprocess"]["max_concurrent"] == 4


def test_the_one_machine_instance_runs_one_gpu_step_at_a_time(tmp_path: Path) -> None:
    shutil.copy(DEPLOY / "local" / "dagster.yaml", tmp_path / "dagster.yaml")
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        concurrency = instance.get_concurrency_config()
    assert concurrency.pool_config.default_pool_limit == 1  # the "gpu" pool, and any pool not set otherwise
    assert concurrency.pool_config.pool_granularity.value == "op"
    assert concurrency.run_queue_config.max_concurrent_runs == 4
    assert {"key": "brainfm/exclusive", "value": "cross_center", "limit": 1} in (
        concurrency.run_queue_config.tag_concurrency_limits
    )
    assert instance.telemetry_enabled is False


def test_multi_node_torchrun_trains_on_two_nodes(tmp_path: Path) -> None:
    """Two launchers with NNODES=2 on one machine, one CPU worker each (gloo): the c10d rendezvous waits for
    both, so rank 0 finishing means both nodes trained together."""
    from models.data import write_shards

    rng = np.random.default_rng(0)
    for center in ("center_a", "center_b"):
        slices = rng.integers(0, 256, size=(40, 256, 256), dtype=np.uint8)
        write_shards(
            tmp_path / "data" / center, slices, [f"{center}-P{i // 8}" for i in range(40)], shard_size=64
        )
    env = {
        **os.environ, "NNODES": "2", "NPROC_PER_NODE": "1", "MASTER_PORT": str(free_port()), "RDZV_ID": "test",
        "PROFILE": "tiny", "DATA": str(tmp_path / "data"), "OUT": str(tmp_path / "mae"), "PYTHON": sys.executable,
        "OMP_NUM_THREADS": "1",
    }  # fmt: skip
    command = [str(DEPLOY / "torchrun" / "pretrain.sh"), "--steps", "2", "--device", "cpu"]
    nodes = [
        subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for _ in range(2)
    ]
    try:
        outputs = [node.communicate(timeout=240)[0] for node in nodes]
    finally:
        for node in nodes:
            node.kill()
    assert [node.returncode for node in nodes] == [0, 0], "\n".join(o[-2000:] for o in outputs)
    assert sum("steps=2 final_loss=" in o for o in outputs) == 1  # printed by global rank 0 only
    assert {p.name for p in (tmp_path / "mae" / "checkpoint").iterdir()} >= {"config.json", "mae.safetensors"}
