"""False-alarm and detection rates of the per-center drift verdict (:func:`brainfm.drift.compare_center`).

Design (2 CPU cores, a few minutes): one synthetic cohort of the ``tiny`` profile's four centers with
``--patients`` patients (default 120: 30 per center) is generated, ingested and its reports structured with the
pipeline's own functions, and the drift features of every center are computed once. Then, for each of
``--comparisons`` seeds (default 24), a center size k cycles through ``--sizes`` (studies) and

- null: k studies drawn from the pooled studies of the ordinary centers (a, b, c) form a pseudo-center from
  the same distribution as the reference, the remaining pooled studies are the reference: a flag is a false
  alarm;
- shifted: k studies drawn from ``center_d`` (the deliberately shifted site) against the same reference: a
  flag is a detection.

Drawing study subsets of one big cohort gives independent seeded comparisons without generating a cohort per
seed. Prints the rates, the voting-column drift shares under both hypotheses, and a Markdown table.

    .venv/bin/python bench/drift.py --patients 120 --comparisons 24
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from brainfm.drift import DriftRule, center_features, compare_center
from brainfm.ingest import ingest_center
from brainfm.pseudonym import Pseudonymizer
from brainfm.reports import structure_jsonl
from brainfm.synth import generate_cohort

SHIFTED = "center_d"
KEY = b"brainfm-bench-drift-secret-0123456789"


def cohort_features(root: Path, patients: int, seed: int, workers: int) -> dict[str, pd.DataFrame]:
    """Generate, ingest and structure a ``tiny``-profile cohort of ``patients`` under ``root``; features per
    center."""
    raw = root / "raw"
    generate_cohort(raw, "tiny", seed, workers=workers, n_patients=patients)
    pseudonymizer = Pseudonymizer(KEY)
    features = {}
    for center_dir in sorted((raw / "dicom").iterdir()):
        center = center_dir.name
        deid, slices = root / "deid" / center, root / "slices" / center
        ingest_center(center_dir, deid, slices, root / "quarantine" / f"{center}.jsonl", center, pseudonymizer,
                      workers=workers, seed=seed)  # fmt: skip
        reports = root / "reports" / center / "structured.jsonl"
        reports.parent.mkdir(parents=True)
        structure_jsonl(raw / "reports" / f"{center}.jsonl", reports, pseudonymizer=pseudonymizer, center=center)
        features[center] = center_features(slices, deid, reports)
    return features


def run(features: dict[str, pd.DataFrame], comparisons: int, sizes: list[int]) -> pd.DataFrame:
    """One row per seeded comparison: size, null and shifted verdicts and drift shares."""
    pool = pd.concat([f for c, f in features.items() if c != SHIFTED])
    ordinary = sorted(c for c in features if c != SHIFTED)
    shifted = features[SHIFTED]
    rows = []
    for seed in range(comparisons):
        k = min(sizes[seed % len(sizes)], len(shifted))
        rng = np.random.default_rng(seed)
        drawn = rng.permutation(len(pool))
        pseudo, reference = pool.iloc[drawn[:k]], pool.iloc[drawn[k:]]
        null = compare_center(f"null-{seed}", pseudo, reference, ordinary)
        flagged = compare_center(SHIFTED, shifted.iloc[rng.permutation(len(shifted))[:k]], reference, ordinary)
        rows.append(
            {
                "seed": seed,
                "studies": k,
                "reference_studies": len(reference),
                "false_alarm": null.drifted,
                "null_share": null.drifted_share,
                "detected": flagged.drifted,
                "shifted_share": flagged.drifted_share,
            }
        )
        print(rows[-1], flush=True)
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--patients", type=int, default=120)
    parser.add_argument("--seed", type=int, default=0, help="cohort seed")
    parser.add_argument("--comparisons", type=int, default=24)
    parser.add_argument("--sizes", type=int, nargs="+", default=[8, 16, 24], help="center sizes (studies)")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        features = cohort_features(Path(tmp), args.patients, args.seed, args.workers)
    prepared = time.perf_counter() - start
    table = run(features, args.comparisons, args.sizes)
    rule = DriftRule()
    by_size = table.groupby("studies").agg(
        comparisons=("seed", "size"),
        false_alarms=("false_alarm", "sum"),
        detections=("detected", "sum"),
        null_share_max=("null_share", "max"),
        shifted_share_min=("shifted_share", "min"),
    )
    print(f"\nrule: {rule.describe()}")
    print(f"cohort + ingest + features: {prepared:.0f} s; comparisons: {time.perf_counter() - start - prepared:.0f} s")
    print(f"false-alarm rate: {table.false_alarm.mean():.1%} ({table.false_alarm.sum()}/{len(table)})")
    print(f"detection rate ({SHIFTED}): {table.detected.mean():.1%} ({table.detected.sum()}/{len(table)})")
    print(by_size.to_markdown())


if __name__ == "__main__":
    main()
