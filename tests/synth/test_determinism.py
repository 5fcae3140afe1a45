"""Same seed, same bytes, whatever the number of workers; another seed, another cohort."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from brainfm.synth import generate_cohort, get_profile
from brainfm.synth.cohort import plan_cohort, simulate_patient

N = 6  # small: one patient per center, one with the burned-in series, one more


def test_same_seed_same_manifest_bytes_serial_and_parallel(tmp_path: Path) -> None:
    a = generate_cohort(tmp_path / "a", "tiny", 7, workers=1, n_patients=N).out_dir
    b = generate_cohort(tmp_path / "b", "tiny", 7, workers=2, n_patients=N).out_dir
    assert (a / "manifest.json").read_bytes() == (b / "manifest.json").read_bytes()
    for rel in ("tables/labels.parquet", "tables/outcomes.parquet", "reports/center_a.jsonl"):
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel
    files_a = sorted(p.relative_to(a) for p in (a / "dicom").rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(b) for p in (b / "dicom").rglob("*") if p.is_file())
    assert files_a == files_b
    for rel in files_a[::97]:
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel


def test_other_seed_other_patient(tmp_path: Path) -> None:
    task = plan_cohort(get_profile("tiny", N), 7, tmp_path)[0]
    same = simulate_patient(task).rendered.images["T1"][0]
    assert np.array_equal(same, simulate_patient(task).rendered.images["T1"][0])
    other = simulate_patient(replace(task, seed=8)).rendered.images["T1"][0]
    assert not np.array_equal(same, other)
