"""Session-wide test settings: a fixed test secret, the dvc tool, and a temporary git + DVC project root."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
TINY_SEED = 0
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


@pytest.fixture(scope="session")
def new_dvc_project() -> Callable[[Path], Path]:
    """The :func:`make_dvc_project` factory, for module- or session-scoped fixtures."""
    return make_dvc_project


@pytest.fixture
def dvc_project(tmp_path: Path) -> Path:
    return make_dvc_project(tmp_path / "project")


@pytest.fixture(scope="session")
def tiny_cohort(tmp_path_factory: pytest.TempPathFactory):
    """The ``tiny`` synthetic cohort, seed 0, generated once per session and shared by every stage's tests."""
    from brainfm.synth import generate_cohort

    return generate_cohort(tmp_path_factory.mktemp("synth") / "raw", "tiny", TINY_SEED, workers=2)


@pytest.fixture(scope="session")
def raw(tiny_cohort) -> Path:
    return Path(tiny_cohort.out_dir)


@pytest.fixture(scope="session")
def manifest(raw: Path) -> dict:
    return json.loads((raw / "manifest.json").read_text(encoding="utf-8"))
