"""Lineage: a trained artefact's metadata names the DVC hashes of the inputs it saw (per center for partitioned
ones), the git revision and its config; `brainfm restore` brings its checkpoint back from the hash alone."""

# No `from __future__ import annotations`: Dagster reads the asset's parameter annotations at runtime.

import json
import shutil
import subprocess
from pathlib import Path

import dagster as dg
import numpy as np
import pytest
from safetensors.numpy import save_file

from assets.lineage import (
    CODE_VERSION,
    DATA_VERSIONS,
    GIT_REVISION_ENV,
    NEVER,
    UNKNOWN,
    code_version,
    input_versions,
    lineage,
)
from assets.resources import DvcResource, PathsResource
from assets.versioning import versioned
from brainfm.cli import main as brainfm


def _report(instance: dg.DagsterInstance, key: str, md5: str | None, partition: str | None = None) -> None:
    metadata = {"dvc_md5": md5} if md5 else {}
    instance.report_runless_asset_event(dg.AssetMaterialization(key, partition=partition, metadata=metadata))


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.org", *args],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip


def test_code_version_is_the_commit_and_whether_the_tree_differs(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv(GIT_REVISION_ENV, raising=False)
    repo = tmp_path / "code"
    repo.mkdir()
    _git(repo, "init", "-q")
    (repo / "train.py").write_text("steps = 2\n")
    _git(repo, "add", "train.py")
    _git(repo, "commit", "-q", "-m", "first")
    head = _git(repo, "rev-parse", "HEAD").strip()

    clean = code_version(repo)
    assert (clean.commit, clean.dirty, clean.label) == (head, False, head)

    (repo / "train.py").write_text("steps = 3\n")
    edited = code_version(repo)
    assert edited.commit == head and edited.dirty is True
    assert edited.label.startswith(f"{head}+dirty.") and len(edited.label) == len(head) + 19
    (repo / "train.py").write_text("steps = 4\n")
    assert code_version(repo).label != edited.label  # another change, another version
    (repo / "train.py").write_text("steps = 2\n")
    (repo / "new_module.py").write_text("")
    assert code_version(repo).dirty is True  # an untracked source file counts

    assert code_version(tmp_path / "not_a_checkout") == code_version(tmp_path / "not_a_checkout")
    assert code_version(tmp_path / "not_a_checkout").label == UNKNOWN
    monkeypatch.setenv(GIT_REVISION_ENV, "abc123")  # an image built without .git
    assert code_version(repo).label == "abc123" and code_version(repo).dirty is None


def test_input_versions_are_the_latest_hash_per_input_and_center() -> None:
    instance = dg.DagsterInstance.ephemeral()
    _report(instance, "normalized_slices", "a1.dir", "center_a")
    _report(instance, "normalized_slices", "b1.dir", "center_b")
    _report(instance, "normalized_slices", "a2.dir", "center_a")  # center_a re-ingested
    _report(instance, "normalized_slices", "c1.dir", "center_c")
    _report(instance, "clinical_tables", "t1.dir")
    _report(instance, "vl_pairs", None)  # versioning off: the event stands for the data
    (pairs,) = instance.fetch_materializations(dg.AssetKey("vl_pairs"), limit=1).records

    keys = ["normalized_slices", dg.AssetKey("clinical_tables"), "vl_pairs", "lesion_masks"]
    assert input_versions(instance, keys) == {
        "normalized_slices": {"center_a": "a2.dir", "center_b": "b1.dir", "center_c": "c1.dir"},
        "clinical_tables": "t1.dir",
        "vl_pairs": f"unversioned:event-{pairs.storage_id}",
        "lesion_masks": NEVER,
    }
    only = input_versions(
        instance, ["normalized_slices", "clinical_tables"], partitions=["center_a", "center_c"]
    )
    assert only == {
        "normalized_slices": {"center_a": "a2.dir", "center_c": "c1.dir"},
        "clinical_tables": "t1.dir",
    }


@dg.asset(deps=["normalized_slices", "clinical_tables"])
def encoder_standin(
    context: dg.AssetExecutionContext, paths: PathsResource, dvc: DvcResource
) -> dg.MaterializeResult:
    """Writes a checkpoint folder as mae_encoder does and records its version and lineage, as the lead adds to
    mae_encoder (docs/OPERATIONS.md, "Lineage")."""
    out = paths.output("mae_encoder") / "checkpoint"
    out.mkdir(parents=True)
    save_file({"w": np.arange(12, dtype=np.float32).reshape(3, 4)}, str(out / "model.safetensors"))
    (out / "config.json").write_text('{"model": "tiny"}')
    config = {"model": "tiny", "steps": 2, "img_size": (256, 256), "out": Path("/x")}
    return dg.MaterializeResult(
        metadata={
            **versioned(out, paths, dvc),
            **lineage(context, ["normalized_slices", "clinical_tables"], config, partitions=["center_a"]),
        }
    )


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_a_trained_checkpoint_names_its_lineage_and_is_restored_by_its_hash(
    dvc_project: Path, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setenv(GIT_REVISION_ENV, "0123abcd")
    instance = dg.DagsterInstance.ephemeral()
    _report(instance, "normalized_slices", "a1.dir", "center_a")
    _report(instance, "normalized_slices", "b1.dir", "center_b")  # left out of training
    _report(instance, "clinical_tables", "t1.dir")
    paths = PathsResource(root=str(dvc_project))
    result = dg.materialize(
        [encoder_standin], instance=instance, resources={"paths": paths, "dvc": DvcResource()}
    )
    meta = result.asset_materializations_for_node("encoder_standin")[0].metadata
    assert meta[DATA_VERSIONS].value == {
        "normalized_slices": {"center_a": "a1.dir"},
        "clinical_tables": "t1.dir",
    }
    assert meta[CODE_VERSION].value == meta["git_commit"].value == "0123abcd"
    assert meta["git_dirty"].value == UNKNOWN
    assert meta["config"].value == {"img_size": [256, 256], "model": "tiny", "out": "/x", "steps": 2}
    json.dumps(meta["config"].value)  # plain JSON

    checkpoint = paths.output("mae_encoder") / "checkpoint"
    original = _tree(checkpoint)
    shutil.rmtree(checkpoint)
    shutil.rmtree(dvc_project / ".dvc" / "cache")  # only the remote holds the bytes now
    md5 = str(meta["dvc_md5"].value)
    assert brainfm(["restore", md5, str(tmp_path / "restored"), "--repo", str(dvc_project)]) == 0
    assert _tree(tmp_path / "restored") == original
    with pytest.raises(FileExistsError, match="choose a new folder"):
        brainfm(["restore", md5, str(tmp_path / "restored"), "--repo", str(dvc_project)])
