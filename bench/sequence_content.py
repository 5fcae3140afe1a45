"""Sequence type from image content: refit ``brainfm/imaging/sequence_content.json`` on the synthetic cohort and
measure the packaged model end to end on held-out synthetic patients.

    .venv/bin/python bench/sequence_content.py [--write] [--fit-cohort DIR] [--held-out-cohort DIR]
                                               [--workdir DIR] [--workers 2]

Fitting: the train side (``split_patients``, 8:2, split seed 0) of the ``tiny`` cohort, seed 0 (generated into
the work folder unless ``--fit-cohort`` names it). Each series' volumes are read as the cohort's DICOM holds
them (``brainfm.synth.contact_sheet.read_series``; a DWI series gives its b = 0 and b = 1000 volumes), labels
from its ``manifest.json``; scikit-learn's LogisticRegression (C = 1) on standardised features. Abstention:
below probability 0.5, or beyond 1.5 times the largest distance of a fitted series of the label (RMS z-score
against the label's mean and standard deviation, the latter floored at 0.25).
``--write`` stores the fit in the package; without it the script says whether the stored one equals this fit.

Held out, end to end: copies of (a) the fit cohort's val-side patients and (b) every patient of a
``bench``-profile cohort, seed 1, 60 patients (6 centers, center_e and center_f never seen in fitting), with
every attribute :func:`~brainfm.dicom.reading.infer_sequence` reads removed, go through ``ingest_center``. The
label its manifest gives each series (source ``content``, or ``unknown``/``none``) is compared with the truth.
Prints accuracy with a Wilson 95 % CI, the confusion matrix and accuracy per center.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import sys
import tempfile
import time
import warnings
from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np
import polars as pl
import pydicom
from scipy.stats import binomtest
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from brainfm.dicom.manifest import series_sequences
from brainfm.dicom.reading import SEQUENCE_TYPES, remove_sequence_evidence
from brainfm.imaging.sequence_content import MODEL_FILE, ContentModel, content_features, load_model
from brainfm.imaging.shards import open_slices
from brainfm.imaging.volumes import Volume
from brainfm.ingest import ingest_center
from brainfm.pseudonym import Pseudonymizer
from brainfm.splits import PRETRAIN_TRAIN_FRACTION, split_patients
from brainfm.synth import generate_cohort
from brainfm.synth.contact_sheet import read_series

FIT = {"profile": "tiny", "seed": 0, "split_seed": 0, "train_fraction": PRETRAIN_TRAIN_FRACTION}
HELD_OUT = {"profile": "bench", "seed": 1, "n_patients": 60}
C = 1.0  # scikit-learn's default regularisation: not tuned
DISTANCE_MARGIN = 1.5  # abstain beyond this multiple of the largest distance of a label's fitted series
MIN_SPREAD = 0.25  # floor of a label's per-feature standard deviation (standardised units): DWI-only features
MIN_PROBABILITY = 0.5  # abstain unless one label holds the majority of the probability
KEY = Pseudonymizer(b"bench-sequence-content-key-0123456789")
CONTENT_LABELS = ("T1", "T2", "FLAIR", "DWI")


def series_volumes(cohort: Path, series: dict) -> list[Volume]:
    """A cohort series' volumes as ``data[row, column, slice]`` in slice-major memory (the pipeline's layout);
    geometry does not enter the features."""
    stacks = [read_series(cohort / series["dir"], b)[0] for b in (series["b_values"] or [None])]
    return [Volume(np.moveaxis(s.astype(np.float32), 0, -1), np.eye(4), None) for s in stacks]


def fit(cohort: Path, studies: list[dict]) -> ContentModel:
    """The model fitted on every series of ``studies``."""
    rows = [
        (content_features(series_volumes(cohort, s)), s["sequence"]) for st in studies for s in st["series"]
    ]
    x = np.stack([f for f, _ in rows if f is not None])
    y = np.array([label for f, label in rows if f is not None])
    scaler = StandardScaler().fit(x)
    z = scaler.transform(x)
    regression = LogisticRegression(C=C, max_iter=10_000).fit(z, y)
    labels = tuple(str(c) for c in regression.classes_)
    centroids = np.stack([z[y == label].mean(axis=0) for label in labels])
    spreads = np.stack([np.maximum(z[y == label].std(axis=0), MIN_SPREAD) for label in labels])
    model = ContentModel(
        labels=labels,
        mean=tuple(scaler.mean_.tolist()),
        scale=tuple(scaler.scale_.tolist()),
        coef=tuple(tuple(r) for r in regression.coef_.tolist()),
        intercept=tuple(regression.intercept_.tolist()),
        centroids=tuple(tuple(r) for r in centroids.tolist()),
        spreads=tuple(tuple(r) for r in spreads.tolist()),
        max_distances=(),
        min_probability=MIN_PROBABILITY,
        fitted_on={**FIT, "patients": len({st["patient_id"] for st in studies}), "series": len(y)},
    )
    largest = [max(model.distance(f, k) for f in x[y == label]) for k, label in enumerate(labels)]
    return replace(model, max_distances=tuple(DISTANCE_MARGIN * d for d in largest))


def strip_copy(cohort: Path, studies: list[dict], out: Path) -> dict[str, tuple[str, str]]:
    """Copy the studies' DICOM series under ``out/<center>/`` with no attribute that names or times the
    sequence; returns pseudonymous series UID → (true sequence, center)."""
    truth = {}
    for study in studies:
        for series in study["series"]:
            source = cohort / series["dir"]
            target = out / Path(series["dir"]).relative_to("dicom")
            target.mkdir(parents=True)
            for path in sorted(source.iterdir()):
                try:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        ds = pydicom.dcmread(path)
                    remove_sequence_evidence(ds)
                    ds.save_as(target / path.name)
                except Exception:  # noqa: BLE001 - a planted bad file: copied as it is, ingest quarantines it
                    shutil.copyfile(path, target / path.name)
            truth[KEY.uid(series["series_uid"])] = (series["sequence"], study["center"])
    return truth


def evaluate(name: str, cohort: Path, studies: list[dict], work: Path, workers: int) -> dict:
    """Ingest stripped copies of ``studies`` and compare the manifest's labels with the truth."""
    raw = work / name / "raw"
    truth = strip_copy(cohort, studies, raw)
    predicted: dict[str, str] = {}
    sources: Counter[str] = Counter()
    for center in sorted(p.name for p in raw.iterdir()):
        out = work / name / "out" / center
        summary = ingest_center(
            raw / center, out / "deid", out / "slices", out / "q.jsonl", center, KEY, workers
        )
        ok = summary.manifest.filter(pl.col("status") == "ok")
        sources.update(ok["sequence_source"].to_list())
        labels = series_sequences(summary.manifest)
        index = open_slices(out / "slices").index
        indexed = dict(zip(index["series"], index["sequence"], strict=True))
        assert all(indexed[s] == labels[s] for s in indexed), "index and manifest labels differ"
        predicted |= labels
    scored = {s: (t, predicted[s], c) for s, (t, c) in truth.items() if s in predicted}
    correct = sum(t == p for t, p, _ in scored.values())
    ci = binomtest(correct, len(scored)).proportion_ci(confidence_level=0.95, method="wilson")
    confusion = Counter((t, p) for t, p, _ in scored.values())
    centers = sorted({c for _, _, c in scored.values()})
    per_center = {
        c: (
            sum(t == p for t, p, cc in scored.values() if cc == c),
            sum(cc == c for _, _, cc in scored.values()),
        )
        for c in centers
    }
    return {
        "set": name, "series": len(scored), "not_ingested": len(truth) - len(scored), "correct": correct,
        "accuracy": correct / len(scored), "ci": (ci.low, ci.high), "confusion": confusion,
        "per_center": per_center, "sources": dict(sources),
    }  # fmt: skip


def report(result: dict) -> str:
    """A markdown section: accuracy with its CI, confusion matrix (true rows, label columns), per center."""
    low, high = result["ci"]
    title = f"{result['correct']}/{result['series']} series, accuracy {result['accuracy']:.3f}"
    lines = [f"### {result['set']}: {title} (95 % CI {low:.3f}–{high:.3f}, Wilson)", ""]
    lines.append("| true \\ labelled | " + " | ".join(SEQUENCE_TYPES) + " |")
    lines.append("|---|" + "---|" * len(SEQUENCE_TYPES))
    for label in CONTENT_LABELS:
        lines.append(
            f"| {label} | " + " | ".join(str(result["confusion"][(label, c)]) for c in SEQUENCE_TYPES) + " |"
        )
    centers = ", ".join(f"{c} {k}/{n}" for c, (k, n) in result["per_center"].items())
    sources = f"manifest sources of the readable files: {result['sources']}"
    lines += [
        "",
        f"per center: {centers}",
        f"{sources}; series not ingested (all files quarantined): {result['not_ingested']}",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help=f"store the fitted model in {MODEL_FILE.name}")
    parser.add_argument("--fit-cohort", type=Path, help="the tiny cohort, seed 0 (default: generated)")
    parser.add_argument("--held-out-cohort", type=Path, help="the bench-profile cohort, seed 1, 60 patients")
    parser.add_argument("--workdir", type=Path, help="work folder (default: a temporary one, removed)")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        work = Path(tmp)
        fit_cohort = args.fit_cohort or generate_cohort(
            work / "fit", FIT["profile"], FIT["seed"], args.workers
        ).out_dir  # fmt: skip
        held_cohort = args.held_out_cohort or generate_cohort(
            work / "held", HELD_OUT["profile"], HELD_OUT["seed"], args.workers, n_patients=HELD_OUT["n_patients"]
        ).out_dir  # fmt: skip
        fit_manifest = json.loads((Path(fit_cohort) / "manifest.json").read_text(encoding="utf-8"))
        held_manifest = json.loads((Path(held_cohort) / "manifest.json").read_text(encoding="utf-8"))
        for manifest, expected in ((fit_manifest, FIT), (held_manifest, HELD_OUT)):
            if (manifest["profile"], manifest["seed"]) != (expected["profile"], expected["seed"]):
                sys.exit(f"expected a {expected['profile']} cohort with seed {expected['seed']}")
        studies = list(fit_manifest["studies"].values())
        sides = split_patients([s["patient_id"] for s in studies], FIT["train_fraction"], FIT["split_seed"])
        model = fit(Path(fit_cohort), [s for s in studies if sides[s["patient_id"]] == "train"])
        if args.write:
            model.write(MODEL_FILE)
            load_model.cache_clear()
        same = load_model() == model
        results = [
            evaluate("tiny seed 0, val-side patients", Path(fit_cohort),
                     [s for s in studies if sides[s["patient_id"]] == "val"], work, args.workers),
            evaluate("bench profile seed 1, 60 patients", Path(held_cohort),
                     list(held_manifest["studies"].values()), work, args.workers),
        ]  # fmt: skip
    pooled_correct = sum(r["correct"] for r in results)
    pooled_n = sum(r["series"] for r in results)
    ci = binomtest(pooled_correct, pooled_n).proportion_ci(confidence_level=0.95, method="wilson")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"command: {' '.join(sys.argv)}")
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, load {load:.1f}"
    )
    print(f"date: {datetime.date.today().isoformat()}, wall {time.perf_counter() - start:.0f} s")
    print(f"fitted on {model.fitted_on}; packaged model {'equals' if same else 'DIFFERS FROM'} this fit\n")
    for result in results:
        print(report(result) + "\n")
    print(f"pooled: {pooled_correct}/{pooled_n}, accuracy {pooled_correct / pooled_n:.3f} "
          f"(95 % CI {ci.low:.3f}–{ci.high:.3f}, Wilson)")  # fmt: skip


if __name__ == "__main__":
    main()
