"""Stage-2 gates pass good outputs and fail each way they can break: an LM no better than unigram frequencies,
an alignment that did not lower the held-out caption loss, an empty generation or an unmeasured core metric."""

from __future__ import annotations

import json
import math
from pathlib import Path

from assets.vlm import GENERATIONS_FILE, SUMMARY_FILE, alignment_gate, instruction_gate, lm_gate
from brainfm.jsonl import write_jsonl

from .conftest import failures


def _lm(out: Path, perplexity: float, unigram: float) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    (out / SUMMARY_FILE).write_text(json.dumps({"held_out_perplexity": perplexity, "unigram_perplexity": unigram}))
    return out


def _metrics(out: Path, rows: dict[tuple[str, str], float]) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps({"rows": [
        {"variant": v, "metric": m, "value": x, "low": x, "high": x, "n_patients": 10} for (v, m), x in rows.items()
    ]}))
    return out


def test_the_lm_must_beat_the_unigram_baseline(tmp_path: Path) -> None:
    assert failures(lm_gate(_lm(tmp_path / "good", 120.0, 300.0))) == set()
    assert failures(lm_gate(_lm(tmp_path / "bad", 320.0, 300.0))) == {
        "expect_column_values_to_be_between(ratio_to_unigram)"}
    assert "expect_column_values_to_be_in_set(finite)" in failures(lm_gate(_lm(tmp_path / "nan", math.inf, 300.0)))


def test_alignment_must_lower_the_held_out_caption_loss(tmp_path: Path) -> None:
    good = _metrics(tmp_path / "good", {("aligned-vlm", "caption_loss_drop"): 0.3, ("aligned-vlm", "recall_at_1"): 0.2})
    assert failures(alignment_gate(good)) == set()
    flat = _metrics(tmp_path / "flat", {("aligned-vlm", "caption_loss_drop"): -0.01})
    assert failures(alignment_gate(flat)) == {"expect_column_values_to_be_between(caption_loss_drop)"}


def test_instructions_need_a_report_per_study_and_the_core_metrics(tmp_path: Path) -> None:
    core = {("instructed-vlm", "category_accuracy"): 0.4, ("instructed-vlm", "unsupported_report_rate"): 0.3}
    for name, texts, metrics in (("good", ["影像所见：…", "诊断意见：…"], core), ("empty", ["影像所见：…", ""], core),
                                 ("unmeasured", ["影像所见：…"], {("instructed-vlm", "category_accuracy"): 0.4})):
        out = _metrics(tmp_path / name, metrics)
        write_jsonl(out / GENERATIONS_FILE, [{"study": str(i), "generated": t} for i, t in enumerate(texts)])
    assert failures(instruction_gate(tmp_path / "good")) == set()
    assert failures(instruction_gate(tmp_path / "empty")) == {"expect_column_values_to_be_between(length)"}
    assert failures(instruction_gate(tmp_path / "unmeasured")) == {
        "expect_column_values_to_be_in_set(core_metrics_measured)"}
