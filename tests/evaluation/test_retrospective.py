"""The retrospective report: every section present, every measured number with its CI, the headline choices,
"not measured" sections, and clear errors for rows without an interval."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import polars as pl
import pytest

from brainfm.evaluation.bootstrap import Estimate
from brainfm.evaluation.html_report import Provenance, missing_sections, numbers_without_ci
from brainfm.evaluation.retrospective import (
    BENCHMARKS,
    NOT_MEASURED,
    RETROSPECTIVE_SECTIONS,
    RetrospectiveInputs,
    read_benchmark,
    retrospective_report,
)

PROVENANCE = Provenance(True, "synthetic test cohort, profile tiny, seed 0")
N_BOOT = 50


def _rows(variants: dict[str, dict[str, float]], n_patients: int = 30) -> list[dict[str, Any]]:
    """metrics.json rows: variant → metric → value, each with a ±0.1 interval."""
    return [{"variant": v, "metric": m, "value": x, "low": x - 0.1, "high": x + 0.1, "n_patients": n_patients}
            for v, metrics in variants.items() for m, x in metrics.items()]


TASK_METRICS = {
    "prognosis": _rows({"pretrained-probe": {"harrell_c": 0.70, "metastasis_brier": 0.20},
                        "scratch-finetune": {"harrell_c": 0.60, "metastasis_brier": 0.22},
                        "clinical-only": {"harrell_c": 0.65, "metastasis_brier": 0.21},
                        "oracle (synthetic)": {"harrell_c": 0.80, "metastasis_brier": 0.15}}),
    "classification": _rows({"pretrained-probe": {"category_accuracy": 0.60, "category_macro_f1": 0.40},
                             "pretrained-finetune": {"category_accuracy": 0.70, "category_macro_f1": 0.45},
                             "scratch-finetune": {"category_accuracy": 0.45, "category_macro_f1": 0.30},
                             "most-frequent": {"category_accuracy": 0.50, "category_macro_f1": 0.10}}),
    # Not a named task: its primary metric is its first, a false-positive rate, where lower is better.
    "detection": _rows({"pretrained-probe": {"fp_rate_whole": 0.30}, "baseline-a": {"fp_rate_whole": 0.20},
                        "baseline-b": {"fp_rate_whole": 0.10}}),
    "report generation": _rows({"instructed-vlm": {"char_bleu4": 30.0, "category_macro_f1": 0.55},
                                "most-frequent report": {"char_bleu4": 25.0, "category_macro_f1": 0.20},
                                "nearest report": {"char_bleu4": 28.0, "category_macro_f1": 0.35}}),
}
MODEL_CARD = {
    "data": {"centers": ["center_a", "center_b", "center_c"],
             "per_split": {"downstream train": {"patients": 21, "studies": 40},
                           "held-out test": {"patients": 9, "studies": 17}},
             "label_counts": {"normal": 20, "neoplasm": 25, "cerebrovascular": 12}},
    "versions": {"git revision": "89f22d3", "mae_encoder (DVC md5)": "0123abcd", "profile": "tiny, seed 0"},
}


def _efficiency_rows() -> list[dict[str, Any]]:
    rows = []
    for task, metric, curves in (
        ("classification", "category_accuracy", {"pretrained-probe": (0.3, 0.5, 0.6),
                                                 "scratch-finetune": (0.2, 0.35, 0.45)}),
        ("segmentation", "dice_whole", {"pretrained-probe": (0.4, 0.55, 0.7)}),
    ):
        for variant, values in curves.items():
            rows += [{"task": task, "fraction": f, "variant": variant, "metric": metric, "value": x,
                      "low": x - 0.05, "high": x + 0.05, "n_seeds": 3} for f, x in zip((0.1, 0.5, 1.0), values)]
    return rows


PAIRED = [{"task": t, "fraction": f, "comparison": c, "metric": m, "value": x, "low": lo, "high": hi,
           "n_patients": 90, "n_seeds": 3}
          for t, f, c, m, x, lo, hi in (
              ("segmentation", 0.1, "pretrained-probe − scratch-finetune", "dice_whole", -0.03, -0.08, 0.02),
              ("classification", 0.5, "pretrained-probe − scratch-finetune", "category_accuracy", 0.3, 0.2, 0.4),
              ("classification", 0.1, "pretrained-probe − vit-probe", "category_accuracy", 0.06, -0.01, 0.13),
              ("classification", 0.1, "pretrained-probe − scratch-finetune", "category_accuracy", 0.16, 0.08, 0.24))]
ZERO_SHOT = [{"subtype": s, "value": x, "low": x - 0.2, "high": min(x + 0.2, 1.0), "n_patients": 4, "chance": 1 / 3}
             for s, x in (("encephalitis", 0.5), ("cavernous_malformation", 0.25), ("chiari", 0.75))]
LOCO = [{"held_out_center": c, "task": t, "metric": m, "value": x, "low": x - 0.1, "high": x + 0.1, "n_patients": 10}
        for c, t, m, x in (("center_a", "classification", "category_accuracy", 0.55),
                           ("center_b", "classification", "category_accuracy", 0.40),
                           ("center_c", "classification", "category_accuracy", 0.60),
                           ("center_a", "segmentation", "dice_whole", 0.65),
                           ("center_b", "segmentation", "dice_whole", 0.50))]  # center_c: no segmentation


def _predictions() -> pl.DataFrame:
    """The classifier's held-out predictions: 12 studies of 8 patients (some with two studies)."""
    categories = ["normal", "normal", "neoplasm", "normal", "neoplasm", "cerebrovascular",
                  "normal", "neoplasm", "normal", "neoplasm", "cerebrovascular", "normal"]
    p_normal = [0.9, 0.6, 0.2, 0.7, 0.4, 0.1, 0.8, 0.3, 0.5, 0.05, 0.35, 0.95]
    return pl.DataFrame({
        "patient": [f"P{i // 2 if i < 8 else i - 4}" for i in range(12)], "study": [f"S{i}" for i in range(12)],
        "category": categories, "p_category_normal": p_normal,
        "pred_category": ["normal" if p > 0.5 else "neoplasm" for p in p_normal],
    })


def _gallery(folder: Path) -> list[dict[str, Any]]:
    items = []
    for i, caption in enumerate(["glioma, map inside the lesion", "meningioma, map beside the lesion"]):
        png = folder / f"gradcam_{i}.png"
        image = np.zeros((32, 32, 3))
        image[8:24, 8 + 4 * i:24 + 4 * i, 0] = 1.0
        plt.imsave(png, image)
        items.append({"png": png, "caption": caption})
    return items


def full_inputs(folder: Path) -> RetrospectiveInputs:
    return RetrospectiveInputs(
        task_metrics=TASK_METRICS, model_card=MODEL_CARD, label_efficiency=_efficiency_rows(), paired_leads=PAIRED,
        zero_shot=ZERO_SHOT,
        leave_one_center_out=LOCO, calibration=_predictions(), gradcam=_gallery(folder),
        gradcam_scores={"pointing game": Estimate(0.6, 0.4, 0.8, 9, 1000),
                        "energy inside the mask": Estimate(0.35, 0.25, 0.45, 9, 1000)},
        n_boot=N_BOOT,
    )


def _section(document: dict[str, Any], section_id: str) -> dict[str, Any]:
    return next(s for s in document["sections"] if s["id"] == section_id)


def _tables(section: dict[str, Any]) -> list[dict[str, Any]]:
    return [b for b in section["blocks"] if b["type"] == "table"]


def test_full_report_is_complete_self_contained_and_picks_the_right_headline(tmp_path: Path) -> None:
    files = retrospective_report(full_inputs(tmp_path), PROVENANCE).write(tmp_path / "report")
    document = json.loads(files.json.read_text())
    assert missing_sections(document, RETROSPECTIVE_SECTIONS) == []
    assert [s["id"] for s in document["sections"]] == list(RETROSPECTIVE_SECTIONS)
    assert numbers_without_ci(document) == []
    html = files.html.read_text()
    # Forest (deployed vs scratch), two label-efficiency tasks, paired leads, zero-shot, heat map, reliability,
    # gallery.
    assert html.count("data:image/png;base64,") == 8
    assert re.findall(r"(?:src|href)=\"(?!data:|#)", html) == [] and "<script" not in html and "<link" not in html
    assert NOT_MEASURED not in html

    multi = _section(document, "multi-task")
    headline = {r["task"]["text"]: r for r in _tables(multi)[0]["rows"]}
    # Task order: the named tasks first, in PRIMARY_METRICS order, then the rest as given.
    assert list(headline) == ["classification", "prognosis", "report generation", "detection"]
    # Pretrained variants are not baselines; the oracle is a ceiling; lower is better for a false-positive rate.
    assert headline["classification"]["best baseline"]["text"] == "most-frequent"
    assert headline["prognosis"]["best baseline"]["text"] == "clinical-only"
    assert headline["detection"]["primary metric"]["text"] == "fp_rate_whole"
    assert headline["detection"]["best baseline"]["text"] == "baseline-b"
    report_generation = headline["report generation"]
    assert report_generation["deployed"]["text"] == "instructed-vlm"  # the task's first variant
    assert report_generation["primary metric"]["text"] == "category_macro_f1"
    assert report_generation["deployed estimate"]["text"] == "0.550 (0.450–0.650)"
    assert report_generation["best baseline"]["text"] == "nearest report"
    scratch = {r["task"]["text"]: r["deployed − scratch (point estimates)"]["text"] for r in _tables(multi)[1]["rows"]}
    assert scratch == {"classification": "+0.150", "prognosis": "+0.100"}
    per_task = _tables(multi)[2]
    assert [c["name"] for c in per_task["columns"]] == [
        "metric", "pretrained-probe", "pretrained-finetune", "scratch-finetune", "most-frequent"]
    assert "1000 replicates, 30 held-out patients" in per_task["intervals"]

    efficiency = _tables(_section(document, "label-efficiency"))[0]
    assert [c["name"] for c in efficiency["columns"]][3:] == ["10%", "50%", "100%"]
    rows = [(r["task"]["text"], r["variant"]["text"]) for r in efficiency["rows"]]
    assert rows == [("segmentation", "pretrained-probe"), ("classification", "pretrained-probe"),
                    ("classification", "scratch-finetune")]
    assert efficiency["rows"][1]["50%"]["text"] == "0.500 (0.450–0.550)"
    assert efficiency["rows"][1]["50%"]["n_seeds"] == 3 and "t-interval over 3 seeds" in efficiency["intervals"]

    paired = _tables(_section(document, "paired-leads"))[0]["rows"]
    assert [(r["task"]["text"], r["labels"]["text"], r["comparison"]["text"]) for r in paired] == [
        ("segmentation", "10%", "pretrained-probe − scratch-finetune"),  # task order as in the other tables
        ("classification", "10%", "pretrained-probe − scratch-finetune"),
        ("classification", "10%", "pretrained-probe − vit-probe"),
        ("classification", "50%", "pretrained-probe − scratch-finetune")]
    assert [r["interval"]["text"] for r in paired] == ["includes 0", "above 0", "includes 0", "above 0"]
    assert paired[1]["difference (95 % CI)"]["text"] == "0.160 (0.080–0.240)"

    loco = _tables(_section(document, "cross-center"))[0]["rows"]
    assert [r["held-out center"]["text"] for r in loco] == ["center_a", "center_b", "center_c"]
    assert loco[2]["segmentation: dice_whole"]["text"] == "—"
    zero_shot = _tables(_section(document, "zero-shot"))[0]["rows"]
    assert zero_shot[0]["chance"]["kind"] == "setting" and zero_shot[0]["chance"]["text"] == "0.333"
    assert zero_shot[0]["held-out patients"]["text"] == "4"

    card = _section(document, "model-card")
    assert card["key_numbers"][0]["cell"]["text"] == "3"  # centers
    assert any("not a medical device" in r["aspect"]["text"] for r in _tables(card)[-1]["rows"])
    assert "Synthetic cohort" in files.markdown.read_text()


def test_calibration_brier_matches_the_hand_computed_value_from_pandas_or_polars(tmp_path: Path) -> None:
    predictions = _predictions()
    abnormal = (predictions["category"] != "normal").to_numpy()
    expected = float(np.mean((abnormal - (1.0 - predictions["p_category_normal"].to_numpy())) ** 2))
    prevalence = abnormal.mean()
    expected_reference = float(np.mean((abnormal - prevalence) ** 2))
    found = []
    for frame in (predictions, predictions.to_pandas()):
        inputs = RetrospectiveInputs(task_metrics={}, model_card=MODEL_CARD, calibration=frame, n_boot=N_BOOT)
        section = _section(retrospective_report(inputs, PROVENANCE).as_json(), "calibration")
        rows = _tables(section)[0]["rows"]
        found.append((rows[0]["Brier score"], rows[1]["Brier score"]))
        assert [k["cell"]["text"] for k in section["key_numbers"][1:]] == ["12", "6"]  # studies, abnormal
    (model, reference), (model_pd, _) = found
    assert math.isclose(model["value"], expected) and math.isclose(reference["value"], expected_reference)
    assert model["low"] <= model["value"] <= model["high"] and model["n_patients"] == 8
    assert model == model_pd  # same seed, same resamples, whichever frame type
    assert model["value"] < reference["value"]  # these probabilities carry information


def test_inputs_not_measured_are_stated_and_sections_still_present(tmp_path: Path) -> None:
    inputs = RetrospectiveInputs(task_metrics={"grading": _rows({"pretrained-probe": {"grade_accuracy": 0.5},
                                                                 "most-frequent": {"grade_accuracy": 0.4}})},
                                 model_card=MODEL_CARD)
    files = retrospective_report(inputs, PROVENANCE).write(tmp_path)
    document = json.loads(files.json.read_text())
    assert missing_sections(document, RETROSPECTIVE_SECTIONS) == []
    assert numbers_without_ci(document) == []
    for section_id in ("label-efficiency", "paired-leads", "zero-shot", "cross-center", "calibration",
                       "explainability"):
        texts = [b["text"] for b in _section(document, section_id)["blocks"] if b["type"] == "paragraph"]
        assert any(t.startswith(NOT_MEASURED) for t in texts), section_id
    assert any(BENCHMARKS in b["text"] for b in _section(document, "label-efficiency")["blocks"])
    assert "data:image/png;base64," not in files.html.read_text()  # no scratch variant, nothing else measured


def _without(row: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k not in keys}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"task_metrics": {"classification": [_without(TASK_METRICS["classification"][0], "low", "high")]}},
         "lacks low, high"),
        ({"leave_one_center_out": [_without(LOCO[0], "high")]}, "leave_one_center_out: a row lacks high"),
        ({"zero_shot": [ZERO_SHOT[0] | {"low": float("nan")}]}, "not a finite interval"),
        ({"label_efficiency": [_efficiency_rows()[0] | {"n_seeds": 1}]}, "at least 2"),
        ({"paired_leads": [_without(PAIRED[0], "low")]}, "paired_leads: a row lacks low"),
        ({"model_card": {"data": MODEL_CARD["data"]}}, r"model_card lacks \['versions'\]"),
        ({"calibration": pd.DataFrame({"patient": ["P1"], "category": ["normal"]})}, "lack columns"),
    ],
)
def test_rows_without_an_interval_or_columns_raise_a_clear_error(change: dict[str, Any], message: str) -> None:
    inputs = RetrospectiveInputs(**({"task_metrics": {}, "model_card": MODEL_CARD} | change))
    with pytest.raises(ValueError, match=message):
        retrospective_report(inputs, PROVENANCE)


def test_benchmark_results_fill_both_sections_and_say_where_they_come_from(tmp_path: Path) -> None:
    provenance = {"command": "python bench/adapters.py --fractions 0.1,1.0", "cohort": "synth small, seed 0",
                  "commit": "abc1234", "machine": "2-core VM", "date": "2026-12-05"}
    path = tmp_path / "retrospective.json"
    path.write_text(json.dumps({"label_efficiency": _efficiency_rows(), "paired_leads": PAIRED,
                                "leave_one_center_out": LOCO, "provenance": provenance}))
    inputs = RetrospectiveInputs(task_metrics=TASK_METRICS, model_card=MODEL_CARD, **read_benchmark(path))
    document = json.loads(retrospective_report(inputs, PROVENANCE).write(tmp_path / "report").json.read_text())
    for section_id in ("label-efficiency", "paired-leads", "cross-center"):
        notes = [b["text"] for b in _section(document, section_id)["blocks"] if b["type"] == "note"]
        assert any("not by this run" in n and "abc1234" in n and "synth small" in n for n in notes)
        assert _tables(_section(document, section_id))
    assert numbers_without_ci(document) == []


def test_benchmark_results_without_provenance_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "retrospective.json"
    path.write_text(json.dumps({"label_efficiency": [], "leave_one_center_out": []}))
    with pytest.raises(ValueError, match="lacks \\['provenance'\\]"):
        read_benchmark(path)
