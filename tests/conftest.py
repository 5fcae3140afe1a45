"""Session-wide test settings: a fixed test secret, the dvc tool, and a temporary git + DVC project root."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
TEST_SECRET = "brainfm-test-secret-0123456789abcdef"


@pytest.fixture(scope="session", autouse=True)
def _test_environment() -> Iterator[None]:
    saved = dict(os.environ)
    os.environ["BRAINFM_DEID_SECRET"] = TEST_SECRET
    os.environ.setdefault("BRAINFM_DVC_BIN", str(REPO_ROOT / ".tools" / "dvc" / "bin" / "dvc"))
    yield
    os.environ.clear()
    os.environ.update(saved)


def make_dvc_project(root: Path) -> Path:
    """A fresh git + DVC repository with a local default remote beside it; returns ``root``."""
    from brainfm.versioning import DvcRepo

    root.mkdir(parents=True, exist_ok=True)
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    DvcRepo(root).ensure_initialized(remote_url=str(root.parent / f"{root.name}-remote"))
    (root / "data").mkdir(exist_ok=True)
    return root


@pytest.fixture
def dvc_project(tmp_path: Path) -> Path:
    return make_dvc_project(tmp_path / "project")
