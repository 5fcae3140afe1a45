"""Scores and baselines of the stage-3 study tasks (brainfm.evaluation.adapters) on hand-made held-out sets."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from brainfm.evaluation import adapters as scoring
from brainfm.evaluation.segmentation import series_spacings_mm

SCALES = {"glioma": ("WHO 2", "WHO 3", "WHO 4")}


def _studies(categories: list[str], prefix: str) -> pd.DataFrame:
    return pd.DataFrame({
        "study": [f"{prefix}s{i}" for i in range(len(categories))],
        "patient": [f"{prefix}p{i}" for i in range(len(categories))],
        "category": categories,
        "subtype": ["glioma" if c == "tumor" else c for c in categories],
    })


def test_most_frequent_classification_scores_the_test_share_of_the_training_majority() -> None:
    train = _studies(["normal"] * 6 + ["tumor"] * 3 + ["infection"], "tr")
    test = _studies(["normal"] * 4 + ["tumor"] * 6, "te")
    found = scoring.baseline_scores("classification", train, test, SCALES, n_boot=50)["most-frequent"]
    assert found["category_accuracy"].value == pytest.approx(0.4)  # 'normal' is right on 4 of 10
    assert math.isclose(found["category_auc"].value, 0.5)  # constant probabilities rank nothing


def test_most_frequent_grade_is_the_training_mode_on_graded_test_studies_only() -> None:
    train = _studies(["tumor"] * 5, "tr").assign(grade=["WHO 4", "WHO 4", "WHO 4", "WHO 2", "WHO 3"])
    test = _studies(["tumor"] * 4 + ["normal"] * 2, "te").assign(grade=["WHO 4", "WHO 2", "WHO 4", "WHO 4", None, None])
    found = scoring.baseline_scores("grading", train, test, SCALES, n_boot=50)["most-frequent"]
    assert found["grade_accuracy"].value == pytest.approx(0.75)  # WHO 4 right on 3 of the 4 graded studies
    assert found["grade_accuracy"].n_patients == 4


def _prognosis_set(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    lp = rng.normal(size=n)
    months = rng.exponential(24.0 * np.exp(-lp))
    p = 1 / (1 + np.exp(-2 * lp))
    return pd.DataFrame({
        "patient": [f"p{seed}-{i}" for i in range(n)], "survival_months": months,
        "event": (months < 60).astype(int), "metastasis": (rng.random(n) < p).astype(int),
        "true_linear_predictor": lp, "true_metastasis_probability": p,
    })


def test_the_oracle_outranks_a_clinical_model_that_knows_nothing() -> None:
    train, test = _prognosis_set(120, 0), _prognosis_set(80, 1)
    oracle = pd.concat([train, test])[["patient", "true_linear_predictor", "true_metastasis_probability"]]
    uninformed = {"risk": np.zeros(len(test)), "p_metastasis": np.full(len(test), 0.5)}
    found = scoring.baseline_scores("prognosis", train, test, SCALES, uninformed, oracle, n_boot=100)
    assert found["clinical-only"]["harrell_c"].value == pytest.approx(0.5)
    assert found["oracle (synthetic)"]["harrell_c"].value > 0.7
    assert found["oracle (synthetic)"]["metastasis_auc"].low > 0.5


def test_task_scores_rejects_an_unknown_task() -> None:
    with pytest.raises(ValueError, match="unknown study task"):
        scoring.task_scores("segmentation", pd.DataFrame(), pd.DataFrame(), SCALES)


def test_spacings_without_a_record_default_to_one_mm() -> None:
    assert series_spacings_mm([5.0, float("nan")], [0.9, float("nan")]) == [(5.0, 0.9, 0.9), (1.0, 1.0, 1.0)]


def _class_predictions(truth: list[str], right: np.ndarray) -> pd.DataFrame:
    """Held-out category predictions that are right where `right` is True (else they pick the other class)."""
    frame = _studies(truth, "te")
    hit = np.asarray(truth) == "tumor"
    said_tumor = np.where(right, hit, ~hit)
    return frame.assign(p_category_normal=np.where(said_tumor, 0.2, 0.8), p_category_tumor=np.where(said_tumor, 0.8, 0.2))


def test_paired_lead_is_the_mean_of_the_per_seed_differences_with_a_patient_interval() -> None:
    rng = np.random.default_rng(0)
    truth = ["normal", "tumor"] * 30
    runs = [(_class_predictions(truth, rng.random(60) < 0.8), _class_predictions(truth, rng.random(60) < 0.5))
            for _ in range(3)]
    lead = scoring.paired_lead("classification", runs, SCALES, n_boot=300)
    def accuracy(frame: pd.DataFrame) -> float:
        said = np.where(frame["p_category_tumor"] > frame["p_category_normal"], "tumor", "normal")
        return float(np.mean(said == frame["category"]))

    per_seed = [accuracy(a) - accuracy(b) for a, b in runs]
    assert lead.value == pytest.approx(np.mean(per_seed))
    assert lead.n_patients == 60
    assert 0 < lead.low < lead.value < lead.high  # a 0.8-vs-0.5 accuracy gap on 60 patients excludes 0


def test_paired_lead_of_a_variant_against_itself_is_exactly_zero() -> None:
    same = _class_predictions(["normal", "tumor"] * 10, np.arange(20) % 3 > 0)
    lead = scoring.paired_lead("classification", [(same, same), (same, same)], SCALES, n_boot=100)
    assert (lead.value, lead.low, lead.high) == (0.0, 0.0, 0.0)


def test_paired_lead_scores_segmentation_over_volumes_with_a_lesion_and_prognosis_by_harrell_c() -> None:
    patients = [f"p{i}" for i in range(8)]
    better = pd.DataFrame({"patient": patients, "dice_whole": [0.9, 0.8, np.nan, 0.7, 0.9, np.nan, 0.8, 0.6]})
    worse = better.assign(dice_whole=better["dice_whole"] - 0.2)
    assert scoring.paired_lead("segmentation", [(better, worse)], SCALES, n_boot=100).value == pytest.approx(0.2)
    test = _prognosis_set(60, 3)
    oracle, blind = test.assign(risk=test["true_linear_predictor"]), test.assign(risk=0.0)
    lead = scoring.paired_lead("prognosis", [(oracle, blind)], SCALES, n_boot=100)
    assert lead.value > 0.1 and lead.low > 0  # a blind risk has C = 0.5


def test_paired_lead_refuses_runs_scored_on_different_patients() -> None:
    a = _class_predictions(["normal", "tumor"] * 5, np.ones(10, bool))
    with pytest.raises(ValueError, match="different patients"):
        scoring.paired_lead("classification", [(a, a.iloc[:6])], SCALES)
