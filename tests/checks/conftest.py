"""Real outputs of one small center (two patients of the tiny cohort's center_a, ingested by the pipeline's own
code), for the gating tests to break one way at a time."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pytest

from brainfm.validation import Gate

CENTER = "center_x"


@dataclass(frozen=True)
class IngestedCenter:
    root: Path
    manifest: pl.DataFrame
    exported: int  # files de-identification exported (and its leak gate searched)
    identifier_hits: int

    @property
    def deid(self) -> Path:
        return self.root / "deid"

    @property
    def slices(self) -> Path:
        return self.root / "slices"


@pytest.fixture(scope="session")
def ingested(raw: Path, tmp_path_factory: pytest.TempPathFactory) -> IngestedCenter:
    from assets.resources import DeidSecretResource
    from brainfm.ingest import ingest_center

    root = tmp_path_factory.mktemp("ingested")
    for patient in sorted((raw / "dicom" / "center_a").iterdir())[:2]:
        shutil.copytree(patient, root / CENTER / patient.name)
    summary = ingest_center(
        root / CENTER, root / "deid", root / "slices", root / "quarantine.jsonl", CENTER,
        DeidSecretResource().pseudonymizer(),
    )  # fmt: skip
    return IngestedCenter(root, summary.manifest, summary.deid.exported, summary.deid.identifier_hits)


def failures(gate: Gate) -> set[str]:
    """The failed expectations of `gate`, as ``expectation(column)``; empty when it passes."""
    return set(gate.validate("test").failed_names)
