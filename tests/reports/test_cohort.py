"""The parser on the synthetic cohort's own reports (labels from tables/labels.parquet, identifiers from
manifest.json). The parser never saw the generator's templates; this checks it generalises to them."""

from __future__ import annotations

from pathlib import Path

from brainfm.jsonl import read_jsonl
from brainfm.reports import cohort_gold, score_reports, structure_report


def test_cohort_reports(raw: Path) -> None:
    reports = [r for f in sorted((raw / "reports").glob("*.jsonl")) for r in read_jsonl(f)]
    predictions = [structure_report(r["text"], r["id"], [r["patient_id"]]).to_json() for r in reports]
    scores = score_reports(predictions, cohort_gold(raw))
    assert scores.missing_predictions == 0
    assert scores.identifiers_left == 0
    assert scores.category_micro_f1 >= 0.9
    assert scores.location_micro_f1 >= 0.85
    assert scores.laterality_accuracy >= 0.75
    assert scores.size_within_1mm >= 0.75
