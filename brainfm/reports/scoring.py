"""Scores of structured reports against labelled ones.

Category and location scores are micro-averaged F1 over (report, label) pairs; laterality is exact
agreement (None == None counts as agreement); a size agrees when both are null or both are numbers within
``SIZE_TOLERANCE_MM``; identifiers left counts the labelled identifiers still found in the stored sections.
Hand-written on purpose: these are set counts, which torchmetrics would only wrap in tensors.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from brainfm.raw_layout import RawLayout
from brainfm.reports.deid_text import find_identifiers

SIZE_TOLERANCE_MM = 1.0
# Stands in for a missing prediction: it agrees with no gold value.
_NO_PREDICTION = {"categories": [], "laterality": "missing", "locations": [], "largest_size_mm": float("nan"),
                  "sections": {"findings": "", "impression": ""}}


@dataclass(frozen=True)
class ReportScores:
    n: int
    category_micro_f1: float
    primary_category_accuracy: float
    laterality_accuracy: float
    location_micro_f1: float
    size_within_1mm: float
    identifiers_left: int
    missing_predictions: int

    def as_table(self) -> str:
        """A two-column Markdown table."""
        rows = [f"| {k} | {v:.3f} |" if isinstance(v, float) else f"| {k} | {v} |" for k, v in asdict(self).items()]
        return "\n".join(["| metric | value |", "|---|---|", *rows])


def _f1(tp: int, fp: int, fn: int) -> float:
    return 1.0 if tp + fp + fn == 0 else 2 * tp / (2 * tp + fp + fn)


def _size_agrees(pred: float | None, gold: float | None) -> bool:
    if pred is None or gold is None:
        return pred is None and gold is None
    return abs(float(pred) - float(gold)) <= SIZE_TOLERANCE_MM  # False for NaN


def score_reports(predictions: Iterable[Mapping[str, Any]], gold: Iterable[Mapping[str, Any]]) -> ReportScores:
    """Score ``predictions`` (structured records) against ``gold`` records with the same ``id`` and keys
    ``categories`` (primary first), ``laterality``, ``locations``, ``largest_size_mm``, ``identifiers``.

    A gold report without a prediction counts as a prediction of nothing (and is reported as missing).
    """
    by_id = {str(p["id"]): p for p in predictions}
    counts = {"cat": [0, 0, 0], "loc": [0, 0, 0]}
    primary = lateral = size = left = missing = n = 0
    for g in gold:
        n += 1
        p = by_id.get(str(g["id"]))
        if p is None:
            missing += 1
            p = _NO_PREDICTION
        for key, field in (("cat", "categories"), ("loc", "locations")):
            pred_set, gold_set = set(p[field]), set(g[field])
            counts[key][0] += len(pred_set & gold_set)
            counts[key][1] += len(pred_set - gold_set)
            counts[key][2] += len(gold_set - pred_set)
        primary += bool(p["categories"]) and p["categories"][0] == g["categories"][0]
        lateral += p["laterality"] == g["laterality"]
        size += _size_agrees(p["largest_size_mm"], g["largest_size_mm"])
        stored = "\n".join(p["sections"].values())  # what a record keeps of the text (structure.OUTPUT_KEYS)
        left += len(find_identifiers(stored, g.get("identifiers", []), patterns=False))
    if n == 0:
        raise ValueError("No gold reports to score against: check the gold file.")
    return ReportScores(
        n=n,
        category_micro_f1=_f1(*counts["cat"]),
        primary_category_accuracy=primary / n,
        laterality_accuracy=lateral / n,
        location_micro_f1=_f1(*counts["loc"]),
        size_within_1mm=size / n,
        identifiers_left=left,
        missing_predictions=missing,
    )


# The cohort generator's site codes -> the location vocabulary; unknown codes pass through (and count as misses).
COHORT_SITES = {
    "frontal_lobe": "额叶", "temporal_lobe": "颞叶", "parietal_lobe": "顶叶", "occipital_lobe": "枕叶", "insula": "岛叶",
    "cerebellum": "小脑", "cerebellar_tonsil": "小脑", "brainstem": "脑干", "pons": "脑干", "basal_ganglia": "基底节", "thalamus": "丘脑",
    "sella": "鞍区", "hippocampus": "海马", "falx": "大脑镰", "cerebellopontine_angle": "桥小脑角",
    "subdural": "硬膜下", "subarachnoid": "蛛网膜下腔", "foramen_magnum": "枕骨大孔", "cervical_cord": "颈髓",
    "corpus_callosum": "胼胝体",
}


def cohort_gold(raw_dir: Path | str) -> list[dict[str, Any]]:
    """Gold records for a synthetic cohort (docs/DATA_CONTRACT.md): one per study of
    ``tables/labels.parquet``, keyed by accession, with every planted identifier of ``manifest.json``.
    Site codes map through ``COHORT_SITES`` and laterality "none" becomes None."""
    import polars as pl

    raw = Path(raw_dir)
    identifiers = RawLayout(raw).planted_identifiers()
    labels = pl.read_parquet(raw / "tables" / "labels.parquet")
    return [
        {
            "id": str(row["accession"]),
            "categories": [row["category"]],
            "laterality": None if row["laterality"] in (None, "none") else row["laterality"],
            "locations": list(dict.fromkeys(COHORT_SITES.get(s, s) for s in row["locations"] or [])),
            "largest_size_mm": row["largest_size_mm"],
            "identifiers": identifiers,
        }
        for row in labels.iter_rows(named=True)
    ]
