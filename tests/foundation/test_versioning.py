"""DVC helper: snapshot an output, push it, lose every local copy, restore it by hash, same bytes."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from brainfm.cli import main
from brainfm.versioning import DvcError, DvcRepo


def _tree_bytes(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_snapshot_push_delete_restore_round_trip(dvc_project: Path, tmp_path: Path) -> None:
    out = dvc_project / "data" / "normalized_slices" / "center_a"
    out.mkdir(parents=True)
    np.save(out / "shard-00000.npy", np.arange(256 * 256, dtype=np.uint8).reshape(1, 256, 256))
    (out / "index.json").write_text('{"rows": 1}')
    other = dvc_project / "data" / "other.txt"
    other.write_text("not part of the asset")
    original = _tree_bytes(out)

    repo = DvcRepo(dvc_project)
    snap = repo.snapshot(out)
    assert snap.output_md5.endswith(".dir") and snap.data_md5.endswith(".dir")
    assert snap.output_md5 != snap.data_md5
    assert snap.n_files == 2 and snap.output_relpath == "normalized_slices/center_a"

    # Lose the data and the local cache: only the remote holds the bytes now.
    shutil.rmtree(dvc_project / "data")
    shutil.rmtree(repo.cache_dir)

    restored = repo.restore(snap.output_md5, tmp_path / "restored")
    assert _tree_bytes(restored) == original

    whole = repo.restore(snap.data_md5, tmp_path / "restored_all")
    assert (whole / "other.txt").read_text() == "not part of the asset"
    assert _tree_bytes(whole / "normalized_slices" / "center_a") == original


def test_restore_command_line(dvc_project: Path, tmp_path: Path) -> None:
    out = dvc_project / "data" / "ckpt"
    out.mkdir()
    (out / "weights.bin").write_bytes(b"\x00\x01" * 100)
    snap = DvcRepo(dvc_project).snapshot(out)
    assert main(["restore", snap.output_md5, str(tmp_path / "r"), "--repo", str(dvc_project)]) == 0
    assert (tmp_path / "r" / "weights.bin").read_bytes() == b"\x00\x01" * 100


def test_snapshot_outside_data_is_a_clear_error(dvc_project: Path) -> None:
    with pytest.raises(DvcError, match="not inside the DVC-tracked folder"):
        DvcRepo(dvc_project).snapshot(dvc_project / "elsewhere")


def test_push_follows_a_remote_changed_after_the_first_push(dvc_project: Path, tmp_path: Path) -> None:
    repo = DvcRepo(dvc_project)
    first = dvc_project / "data" / "first"
    first.mkdir()
    (first / "a.txt").write_text("one")
    repo.snapshot(first)
    moved = tmp_path / "new_remote"
    repo.run("remote", "modify", "storage", "url", str(moved))
    second = dvc_project / "data" / "second"
    second.mkdir()
    (second / "b.txt").write_text("two")
    snap = repo.snapshot(second)
    shutil.rmtree(repo.cache_dir)  # only the new remote can serve it now
    assert (repo.restore(snap.output_md5, tmp_path / "r") / "b.txt").read_text() == "two"
    assert (moved / "files" / "md5" / snap.output_md5[:2] / snap.output_md5[2:]).is_file()


def test_a_root_that_is_no_git_dvc_repository_is_a_clear_error_and_nothing_is_written(tmp_path: Path) -> None:
    (tmp_path / "data" / "out").mkdir(parents=True)
    (tmp_path / "data" / "out" / "x.txt").write_text("x")
    with pytest.raises(DvcError, match="not a git \\+ DVC repository.*git init && dvc init.*BRAINFM_VERSIONING=0"):
        DvcRepo(tmp_path).snapshot(tmp_path / "data" / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]  # no stray .dvc/tmp
