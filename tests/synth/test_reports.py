"""Reports are written from the ground truth: laterality, location, size, sections, identifiers."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl

from brainfm.synth.lesions import SITES

SIDE = {"left": "左", "right": "右", "bilateral": "双侧"}
FINDINGS = ("影像所见", "检查所见", "MRI所见", "影像表现")
IMPRESSION = ("诊断意见", "印象", "结论", "影像学诊断")


def _reports(raw: Path) -> dict[str, str]:
    return {
        r["id"]: r["text"]
        for f in (raw / "reports").glob("*.jsonl")
        for r in map(json.loads, f.read_text(encoding="utf-8").splitlines())
    }


def test_reports_state_the_planted_truth(raw: Path) -> None:
    reports = _reports(raw)
    labels = pl.read_parquet(raw / "tables" / "labels.parquet")
    for row in labels.iter_rows(named=True):
        text = reports[row["accession"]]
        assert any(h in text for h in FINDINGS) and any(h in text for h in IMPRESSION), text
        assert row["patient_id"] in text
        if row["subtype"] == "normal":
            assert "未见" in text
            continue
        if row["laterality"] in SIDE:
            assert SIDE[row["laterality"]] in text, (row["laterality"], text)
        # A site is named in full (额叶) or by its first character (额颞顶部).
        assert any(SITES[c][0] in text or SITES[c][0][0] in text for c in row["locations"]), text
        size = row["largest_size_mm"]
        if size is not None:
            assert f"{size / 10:.1f}" in text or f"{size:.0f}mm" in text, (size, text)


def test_template_families_vary_within_and_across_centers(raw: Path) -> None:
    reports = _reports(raw)
    headings = {h for text in reports.values() for h in FINDINGS + IMPRESSION if h in text}
    assert len(headings) >= 5
    assert any("【" in t for t in reports.values()) and any("1. " in t for t in reports.values())
    assert any("考虑" in t or "可能" in t for t in reports.values())
