"""Reader study and controlled trial: simulated, complete, and showing the stated effects."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from brainfm.synth.profiles import SUBTYPES
from brainfm.synth.reader_study import Case, simulate_reader_study


def test_tables_are_marked_simulated_and_complete(raw: Path, manifest: dict) -> None:
    reads = pl.read_parquet(raw / "tables" / "reader_study.parquet")
    trial = pl.read_parquet(raw / "tables" / "controlled_trial.parquet")
    assert reads["simulated"].all() and trial["simulated"].all()
    assert set(manifest["simulated_tables"]) == {"reader_study", "controlled_trial"}
    assert reads.height == 12 * manifest["n_studies"] * 2
    assert reads.group_by("reader_id", "accession").len()["len"].eq(2).all()
    assert set(reads["seniority"]) == {"low", "mid", "high"} and set(reads["hospital_tier"]) == {
        "primary",
        "tertiary",
    }
    arms = trial.group_by("center", "arm").len().pivot("arm", index="center", values="len")
    assert (arms["doctor_plus_model"] - arms["doctor_alone"]).abs().max() <= 2  # permuted blocks of 4


def test_assistance_helps_junior_readers_most_and_saves_time() -> None:
    rng = np.random.default_rng(1)
    subtypes = [s for _, s, _ in SUBTYPES]
    cases = [
        Case(f"C{i}", f"P{i}", "center_a", str(rng.choice(subtypes)), float(rng.uniform(5, 50)))
        for i in range(400)
    ]
    reads = pl.DataFrame(simulate_reader_study(cases, subtypes, rng))
    acc = (
        reads.group_by("seniority", "session")
        .agg(pl.col("correct").mean())
        .pivot("session", index="seniority", values="correct")
    )
    gain = dict(zip(acc["seniority"], acc["aided"] - acc["unaided"], strict=True))
    assert gain["low"] > gain["high"] > 0
    times = reads.group_by("session").agg(pl.col("reading_time_s").median())
    t = dict(zip(times["session"], times["reading_time_s"], strict=True))
    assert t["aided"] < t["unaided"]
