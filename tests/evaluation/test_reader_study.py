"""Reader-study analysis against a textbook McNemar example and the documented simulation model."""

from __future__ import annotations

import json
import math
from itertools import product

import numpy as np
import polars as pl
import pytest
from scipy.special import expit
from sklearn.metrics import roc_auc_score

from brainfm.evaluation.reader_study import (
    ReaderStudyResult,
    abnormality_rating,
    analyse_reader_study,
    mcnemar_test,
    model_vs_readers,
    rank_biserial,
)
from brainfm.synth.profiles import RARE_SUBTYPES, SUBTYPES
from brainfm.synth.reader_study import Case, simulate_reader_study

SUBTYPE_NAMES = [s for _, s, _ in SUBTYPES]
N_CASES = 84  # six of each of the 14 subtypes: rare ones (model right 55 %) give wrong suggestions to study


def _cases() -> list[Case]:
    rng = np.random.default_rng(11)
    return [
        Case(
            f"ACC{i:03d}",
            f"PAT{i // 2:03d}",  # two studies per patient: the bootstrap resamples patients
            "center_a",
            subtype,
            None if subtype == "normal" else float(rng.uniform(4.0, 40.0)),
        )
        for i, subtype in enumerate(SUBTYPE_NAMES * (N_CASES // len(SUBTYPE_NAMES)))
    ]


@pytest.fixture(scope="module")
def reads() -> pl.DataFrame:
    rows = simulate_reader_study(_cases(), SUBTYPE_NAMES, np.random.default_rng(2024))
    # The pipeline reads the pseudonymised table, keyed by `patient` (docs/SCHEMAS.md, Clinical tables).
    return pl.DataFrame(rows, infer_schema_length=None).rename({"patient_id": "patient"})


@pytest.fixture(scope="module")
def result(reads: pl.DataFrame) -> ReaderStudyResult:
    return analyse_reader_study(reads, n_boot=200, seed=0)


def _expected_accuracy_gain(seniority: str | None = None) -> float:
    """Aided minus unaided P(correct), from the logistic model of docs/SCHEMAS.md, averaged over the
    reader profiles (all, or one seniority), the cases, the model's right/wrong suggestion and the reader
    effect u ~ N(0, 0.2²) (Gauss–Hermite quadrature)."""
    s_term = {"low": 0.2, "mid": 0.9, "high": 1.6}
    t_term = {"primary": -0.3, "tertiary": 0.3}
    p_term = {"general": -0.3, "neuro": 0.4}
    bias = {"low": 0.9, "mid": 0.6, "high": 0.3}
    cases = _cases()
    rare = np.array([c.subtype in RARE_SUBTYPES for c in cases])
    small = np.array([(c.size_mm or 0.0) < 10.0 for c in cases])
    normal = np.array([c.subtype == "normal" for c in cases])
    difficulty = np.where(normal, 0.8, -1.0 * rare - 0.5 * small)
    model_right = np.where(rare, 0.55, 0.88)
    nodes, weights = np.polynomial.hermite_e.hermegauss(20)
    u, weights = 0.2 * nodes[:, None], weights / weights.sum()
    gains = []
    for (s, s_value), (t, t_value), (p, p_value) in product(s_term.items(), t_term.items(), p_term.items()):
        if seniority not in (None, s):
            continue
        gain = 1.0 * (1 + 0.6 * (s == "low") + 0.3 * (t == "primary") + 0.3 * (p == "general"))
        logit = s_value + t_value + p_value + u + difficulty  # (nodes, cases)
        aided = model_right * expit(logit + gain) + (1 - model_right) * expit(logit - bias[s])
        gains.append(weights @ (aided - expit(logit)))
    return float(np.mean(gains))


def test_mcnemar_reproduces_agrestis_presidential_approval_example() -> None:
    # Agresti, Categorical Data Analysis (2002), Table 10.1: approval in two surveys of the same 1600 people,
    # 794 approve twice, 150 approve then disapprove, 86 disapprove then approve, 570 disapprove twice.
    # McNemar z² = (86 − 150)² / (86 + 150) = 17.36 (no continuity correction), P < 0.001.
    first = np.repeat([True, True, False, False], [794, 150, 86, 570])
    second = np.repeat([True, False, True, False], [794, 150, 86, 570])
    plain = mcnemar_test(first, second, correction=False)
    assert (plain.both_correct, plain.unaided_only, plain.aided_only, plain.both_wrong) == (794, 150, 86, 570)
    assert not plain.exact
    assert plain.statistic == pytest.approx(64**2 / 236) and round(plain.statistic, 2) == 17.36
    assert plain.p_value == pytest.approx(3.09e-5, rel=0.01)
    assert plain.odds_ratio.value == pytest.approx(86 / 150)
    assert plain.odds_ratio.low < 86 / 150 < plain.odds_ratio.high < 1.0
    corrected = mcnemar_test(first, second)  # Edwards' continuity correction: (|b − c| − 1)² / (b + c)
    assert corrected.statistic == pytest.approx(63**2 / 236)


def test_rating_folds_the_call_and_its_confidence_into_ten_points() -> None:
    ratings = abnormality_rating(["normal", "normal", "glioma", "infarct"], [5, 1, 1, 5])
    assert ratings.tolist() == [1, 5, 6, 10]
    with pytest.raises(ValueError, match="confidence must be an integer 1–5"):
        abnormality_rating(["normal"], [0])


def test_rank_biserial_of_hand_made_differences() -> None:
    # |d| ranks 1, 2, 3, 4; the positive difference has rank 2: (2 − 8) / 10.
    assert rank_biserial([-1.0, 2.0, -3.0, -4.0, 0.0]) == pytest.approx(-0.6)


def test_mrmc_accuracy_gain_covers_the_simulated_one(result: ReaderStudyResult) -> None:
    gain = next(a for a in result.assistance if a.group == "all" and a.fom == "accuracy")
    expected = _expected_accuracy_gain()
    assert gain.effect.value > 0 and gain.effect.low > 0  # assistance helps, significantly
    assert gain.effect.low < expected < gain.effect.high
    assert gain.p_value < 0.05 and gain.readers == tuple(f"R{i:02d}" for i in range(1, 13))
    assert gain.aided.value - gain.unaided.value == pytest.approx(gain.effect.value)
    auc = next(a for a in result.assistance if a.group == "all" and a.fom == "auc")
    assert 0.5 < auc.unaided.value < auc.aided.value < 1.0


def test_junior_readers_gain_more_than_senior_readers(result: ReaderStudyResult) -> None:
    assert _expected_accuracy_gain("low") > _expected_accuracy_gain("high")
    gains = {a.group: a.effect.value for a in result.assistance if a.fom == "accuracy"}
    assert gains["seniority=low"] > gains["seniority=high"]
    contrast = next(
        i
        for i in result.interactions
        if (i.fom, i.factor, i.level_a, i.level_b) == ("accuracy", "seniority", "low", "high")
    )
    assert contrast.effect.value == pytest.approx(gains["seniority=low"] - gains["seniority=high"])
    assert contrast.effect.low < contrast.effect.value < contrast.effect.high
    assert contrast.df == 4 + 4 - 2  # four readers per seniority


def test_automation_bias_recovers_half_of_errors_following_the_wrong_suggestion(
    result: ReaderStudyResult,
) -> None:
    overall = next(b for b in result.automation_bias if b.group == "all")
    assert overall.adoption_among_errors is not None
    # A wrong read takes the suggestion with probability 1/2, or picks another subtype, which equals the
    # (uniformly drawn) wrong suggestion with probability 1/13: 1/2 + 1/2 · 1/13.
    expected = 0.5 + 0.5 / (len(SUBTYPE_NAMES) - 1)
    assert overall.adoption_among_errors.low < expected < overall.adoption_among_errors.high
    assert overall.adoption.value < overall.adoption_among_errors.value
    assert {b.group for b in result.automation_bias} >= {"seniority=low", "seniority=high"}


def test_paired_tests_and_rates_see_more_correct_and_faster_aided_reads(
    reads: pl.DataFrame, result: ReaderStudyResult
) -> None:
    assert result.mcnemar.n_pairs == 12 * N_CASES
    assert result.mcnemar.aided_only > result.mcnemar.unaided_only and result.mcnemar.p_value < 1e-6
    assert result.mcnemar.odds_ratio.low > 1.0
    time = result.reading_time
    assert time.median_ratio.low < 0.8 < time.median_ratio.high  # the simulation's 0.8 × median time
    assert -1.0 < time.rank_biserial.high < 0 and time.p_value < 1e-6
    detection = {g.group: g for g in result.detection}
    assert {"abnormal", "rare subtypes", "common subtypes", "category=tumor"} <= set(detection)
    abnormal_unaided = reads.filter((pl.col("truth_category") != "normal") & (pl.col("session") == "unaided"))
    called_abnormal = (abnormal_unaided["diagnosis"] != "normal").mean()
    assert detection["abnormal"].sensitivity.unaided.value == pytest.approx(called_abnormal)
    assert detection["abnormal"].sensitivity.difference.value > 0


def test_json_holds_plain_numbers_each_estimate_with_its_interval(result: ReaderStudyResult) -> None:
    plain = result.to_json()
    text = json.dumps(plain, allow_nan=False)
    assert json.loads(text) == plain
    assert plain["simulated"] is True and plain["n_cases"] == N_CASES
    effect = plain["assistance"][0]["effect"]
    assert set(effect) >= {"value", "low", "high"} and "analysis" not in plain["assistance"][0]


def test_model_vs_readers_uses_only_held_out_cases_and_labels_simulated_readers(reads: pl.DataFrame) -> None:
    held_out = _cases()[::2]  # the model trained on the other half
    predictions = pl.DataFrame(
        {
            "accession": [c.accession for c in held_out],
            # Right on every case but the first three.
            "predicted_subtype": ["chiari"] * 3 + [c.subtype for c in held_out[3:]],
            "abnormality_probability": [0.5] * 3
            + [0.1 if c.subtype == "normal" else 0.9 for c in held_out[3:]],
        }
    )
    rows = model_vs_readers(reads, predictions, n_boot=200, seed=1)
    everyone = next(r for r in rows if r.group == "all")
    assert everyone.n_cases == len(held_out) and everyone.n_readers == 12 and everyone.simulated
    assert everyone.model_accuracy.value == pytest.approx(1 - 3 / len(held_out))
    unaided = reads.filter(
        (pl.col("session") == "unaided") & pl.col("accession").is_in(predictions["accession"].implode())
    )
    assert everyone.readers_accuracy.value == pytest.approx(unaided["correct"].mean())
    assert everyone.accuracy_difference.value == pytest.approx(
        everyone.model_accuracy.value - everyone.readers_accuracy.value
    )
    abnormal = [c.subtype != "normal" for c in held_out]
    expected_auc = roc_auc_score(abnormal, predictions["abnormality_probability"].to_numpy())
    ratings = unaided.with_columns(rating=abnormality_rating(unaided["diagnosis"], unaided["confidence"]))
    per_reader = [
        roc_auc_score(group["truth_category"] != "normal", group["rating"])
        for _, group in ratings.group_by("reader_id")
    ]
    assert everyone.readers_auc is not None and everyone.readers_auc.value == pytest.approx(
        np.mean(per_reader)
    )
    assert everyone.model_auc is not None and everyone.model_auc.value == pytest.approx(expected_auc)
    assert {r.group for r in rows} >= {"seniority=low", "hospital_tier=primary", "specialty=neuro"}
    assert all(math.isfinite(r.readers_accuracy.low) for r in rows)
    with pytest.raises(ValueError, match="pseudonymised"):
        model_vs_readers(reads, predictions.with_columns(pl.col("accession") + "_elsewhere"), n_boot=10)
