"""The controlled-trial analysis: survival tests against published results, calibration against known
miscalibration, and the simulated trial's advantage of doctor + model recovered within its CI."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

import numpy as np
import polars as pl
import pytest
from lifelines import CoxPHFitter
from lifelines.datasets import load_leukemia
from scipy import special

from brainfm.evaluation.bootstrap import Estimate
from brainfm.evaluation.trial import (
    AT_RISK_MONTHS,
    analyse_trial,
    balance_table,
    binary_auc,
    calibration_intercept,
    calibration_slope,
    compare_arms,
    cox_hazard_ratio,
    logrank,
    plot_km,
)
from brainfm.synth.clinical import HazardModel, Outcomes, draw_outcomes
from brainfm.synth.profiles import SUBTYPES
from brainfm.synth.reader_study import Case, add_prognosis, expected_prognosis_scores, simulate_trial

SUBTYPE_NAMES = [s for _, s, _ in SUBTYPES]
OUTCOMES = ("metastasis", "survival_months", "event")


@dataclass(frozen=True)
class SimulatedTrial:
    trial: pl.DataFrame
    outcomes: Outcomes


def simulated_trial(n_patients: int, n_participants: int, seed: int) -> SimulatedTrial:
    """A trial on ``n_patients`` patients (subtypes uniform, outcomes from the cohort's hazard model)."""
    rng = np.random.default_rng(seed)
    model = HazardModel()
    subtypes = [str(s) for s in rng.choice(SUBTYPE_NAMES, n_patients)]
    grades = [str(rng.choice(["WHO 2", "WHO 3", "WHO 4"])) if s == "glioma" else None for s in subtypes]
    sizes = [0.0 if s == "normal" else float(rng.uniform(5, 50)) for s in subtypes]
    ages = rng.uniform(20, 85, n_patients).tolist()
    kps = (rng.integers(5, 11, n_patients) * 10).tolist()
    outcomes = draw_outcomes(model, subtypes, grades, sizes, ages, kps, rng)
    ids = [f"P{i:04d}" for i in range(n_patients)]
    cases = [
        Case(f"A{i:04d}", ids[i], f"center_{'abc'[i % 3]}", subtypes[i], sizes[i]) for i in range(n_patients)
    ]
    rows = add_prognosis(simulate_trial(cases, SUBTYPE_NAMES, n_participants, rng), ids, outcomes, model, rng)
    return SimulatedTrial(pl.DataFrame(rows, infer_schema_length=None), outcomes)


@pytest.fixture(scope="module")
def small_trial() -> SimulatedTrial:
    return simulated_trial(200, 400, seed=5)


def test_logrank_and_cox_reproduce_the_published_gehan_analysis() -> None:
    # Gehan (1965) / Freireich 6-MP remission data, 42 patients (lifelines' `load_leukemia`, Rx 1 = placebo).
    # Published: log-rank chi-square 16.79 on 1 df (Kleinbaum & Klein, Survival Analysis, 3rd ed., ch. 2;
    # G. Rodríguez, WWS 509 "The Gehan survival data"); Cox with Efron ties (R survival::coxph on MASS::gehan):
    # coef 1.572, se 0.4124, HR 4.817 (95 % CI 2.147–10.81), p = 0.000138.
    data = load_leukemia()
    test = logrank(data["t"], data["status"], data["Rx"])
    assert (test.df, round(test.statistic, 2)) == (1, 16.79)
    assert test.p_value == pytest.approx(4.17e-5, rel=0.01)
    cox = cox_hazard_ratio(data["t"], data["status"], data["Rx"] == 1)
    hr = cox.hazard_ratio
    assert (round(hr.value, 3), round(hr.low, 3), round(hr.high, 2)) == (4.817, 2.147, 10.81)
    assert cox.p_value == pytest.approx(0.000138, rel=0.01) and not cox.clustered
    assert hr.n_boot == 0 and hr.n_patients == 42


def test_repeated_patients_do_not_narrow_the_cox_interval() -> None:
    data = load_leukemia()
    twice = {c: np.tile(data[c].to_numpy(), 2) for c in ("t", "status", "Rx")}
    patients = np.tile(np.arange(len(data)), 2)
    clustered = cox_hazard_ratio(twice["t"], twice["status"], twice["Rx"] == 1, patients).hazard_ratio
    naive = cox_hazard_ratio(twice["t"], twice["status"], twice["Rx"] == 1).hazard_ratio
    once = cox_hazard_ratio(data["t"], data["status"], data["Rx"] == 1).hazard_ratio
    robust = CoxPHFitter().fit(data[["t", "status", "Rx"]], "t", "status", robust=True).summary.loc["Rx"]

    def log_width(low: float, high: float) -> float:
        return math.log(high) - math.log(low)

    # Copies clustered by patient keep the 42 patients' (sandwich) interval; unclustered they shrink it by √2.
    # (The hazard ratio moves a little: Efron's tie correction sees the copies as ties.)
    assert clustered.n_patients == 42 and clustered.value == pytest.approx(once.value, rel=0.05)
    expected = log_width(robust["exp(coef) lower 95%"], robust["exp(coef) upper 95%"])
    assert log_width(clustered.low, clustered.high) == pytest.approx(expected, rel=0.02)
    assert log_width(naive.low, naive.high) == pytest.approx(
        log_width(once.low, once.high) / math.sqrt(2), rel=0.02
    )


def test_proportional_hazards_test_flags_crossing_hazards() -> None:
    rng = np.random.default_rng(0)
    group = np.repeat([True, False], 300)
    proportional = np.where(group, rng.exponential(10, 600), rng.exponential(20, 600))  # HR 2 throughout
    crossing = np.where(group, 12 * rng.weibull(0.5, 600), 12 * rng.weibull(3.0, 600))  # early vs late deaths
    event = np.ones(600, dtype=int)
    assert cox_hazard_ratio(proportional, event, group).ph_p_values["exposed"] > 0.05
    hr = cox_hazard_ratio(proportional, event, group).hazard_ratio
    assert hr.low < 2 < hr.high
    assert cox_hazard_ratio(crossing, event, group).ph_p_values["exposed"] < 1e-6


def test_calibration_slope_and_intercept_recover_a_known_miscalibration() -> None:
    rng = np.random.default_rng(1)
    risk = special.expit(rng.normal(-1.0, 1.5, 20_000))
    logit = special.logit(risk)
    too_extreme = (rng.random(risk.size) < special.expit(0.6 * logit)).astype(int)  # slope 0.6
    underestimated = (rng.random(risk.size) < special.expit(0.7 + logit)).astype(int)  # intercept +0.7
    calibrated = (rng.random(risk.size) < risk).astype(int)
    assert calibration_slope(too_extreme, risk) == pytest.approx(0.6, abs=0.04)
    assert calibration_intercept(underestimated, risk) == pytest.approx(0.7, abs=0.05)
    assert calibration_slope(calibrated, risk) == pytest.approx(1.0, abs=0.05)
    assert calibration_intercept(calibrated, risk) == pytest.approx(0.0, abs=0.05)
    assert math.isnan(calibration_slope(np.zeros(5), risk[:5])) and math.isnan(
        binary_auc(np.ones(5), risk[:5])
    )


def test_simulated_trial_recovers_the_auc_advantage_of_doctor_plus_model() -> None:
    simulated = simulated_trial(1500, 3000, seed=11)
    expected = expected_prognosis_scores(simulated.outcomes, draws=50)
    gain = expected["doctor_plus_model"]["auc_metastasis"] - expected["doctor_alone"]["auc_metastasis"]
    assert gain > 0.05  # the simulation's input: the model shrinks the doctor's error sd to 0.4×
    auc = compare_arms(binary_auc, simulated.trial, ("metastasis", "predicted_metastasis_risk"), n_boot=200)
    assert 0 < auc.difference.low <= gain <= auc.difference.high
    for arm, estimate in auc.per_arm.items():
        assert estimate.low <= expected[arm]["auc_metastasis"] <= estimate.high
    # noise on the logit makes predictions too extreme (slope < 1), the less so with the model
    slopes = {
        arm: calibration_slope(rows["metastasis"], rows["predicted_metastasis_risk"])
        for (arm,), rows in simulated.trial.group_by("arm")
    }
    assert slopes["doctor_alone"] < slopes["doctor_plus_model"] < 1


def _estimates(node: object) -> list[dict]:
    """Every Estimate (as JSON) inside a to_json() tree."""
    if isinstance(node, dict):
        found = [node] if set(node) >= {"value", "low", "high", "n_boot"} else []
        return found + [e for v in node.values() for e in _estimates(v)]
    if isinstance(node, list):
        return [e for v in node for e in _estimates(v)]
    return []


def test_analysis_reports_every_number_with_its_interval(small_trial: SimulatedTrial) -> None:
    result = analyse_trial(small_trial.trial, n_boot=50, seed=3)
    payload = result.to_json()
    json.dumps(payload, allow_nan=False)  # strict JSON
    estimates = _estimates(payload)
    assert len(estimates) == 25 and all(e["low"] <= e["high"] for e in estimates)
    assert result.n_participants["doctor_plus_model"] + result.n_participants["doctor_alone"] == 400
    for comparison in (result.auc_metastasis, result.c_index, result.accuracy):
        assert all(
            isinstance(e, Estimate) and e.low <= e.value <= e.high for e in comparison.per_arm.values()
        )
    # the simulated effects show: better discrimination, more correct and faster diagnoses with the model
    assert result.c_index.difference.value > 0 and result.accuracy.difference.low > 0
    assert result.time_to_diagnosis.probability_faster.low > 0.5 and result.time_to_diagnosis.p_value < 0.05
    for strata in result.risk_groups.values():
        assert [c.label for c in strata.curves] == ["low", "intermediate", "high"]
        assert strata.logrank.df == 2 and strata.high_vs_rest.clustered  # 400 participants, 200 patients
    model, alone = (
        result.risk_groups[arm].high_vs_rest.hazard_ratio for arm in ("doctor_plus_model", "doctor_alone")
    )
    assert (
        model.low > 1
        and model.value > alone.value > 1
        and result.risk_groups["doctor_plus_model"].logrank.p_value < 0.05
    )
    counts = result.critical_counts
    assert all(0 <= c["missed"] <= c["critical_cases"] for c in counts.values())
    # the analysis is deterministic and joins outcomes kept apart, on a pseudonymised key as well
    pseudonymised = small_trial.trial.rename({"patient_id": "patient"})
    outcomes = pseudonymised.select("patient", *OUTCOMES).unique("patient")
    joined = analyse_trial(pseudonymised.drop(OUTCOMES), outcomes, n_boot=50, seed=3)
    assert joined.auc_metastasis == result.auc_metastasis and joined.c_index == result.c_index


def test_balance_table_counts_and_standardised_differences() -> None:
    frame = pl.DataFrame(
        {
            "arm": ["doctor_plus_model"] * 4 + ["doctor_alone"] * 4,
            "center": ["a", "a", "a", "b", "a", "b", "b", "b"],
            **{v: ["x"] * 8 for v in ("seniority", "hospital_tier", "specialty", "truth_category")},
        }
    )
    table = balance_table(frame)
    center_a = table.filter((pl.col("variable") == "center") & (pl.col("level") == "a")).row(0, named=True)
    assert (center_a["n_doctor_plus_model"], center_a["n_doctor_alone"]) == (3, 1)
    # (0.75 − 0.25) / √((0.75·0.25 + 0.25·0.75) / 2)
    assert center_a["smd"] == pytest.approx(0.5 / math.sqrt(0.1875))
    assert table.filter(pl.col("variable") == "seniority")["smd"].to_list() == [0.0]


def test_km_figure_shows_the_numbers_at_risk(small_trial: SimulatedTrial) -> None:
    result = analyse_trial(small_trial.trial, n_boot=20)
    figure = plot_km(small_trial.trial)
    tables = [
        [t.get_text() for t in ax.get_xticklabels()]
        for ax in figure.axes
        if any("At risk" in t.get_text() for t in ax.get_xticklabels())
    ]
    assert len(tables) == 3  # by arm, and by predicted-risk tertile in each arm
    by_arm = tables[0]
    ticks = [m for m in AT_RISK_MONTHS if m <= small_trial.trial["survival_months"].max()]
    assert len(by_arm) == len(ticks) >= 3
    for label, month in zip(by_arm[1:], ticks[1:], strict=True):
        assert [int(n) for n in label.split()] == [c.at_risk[month] for c in result.km_by_arm]
    assert [c.at_risk[0.0] for c in result.km_by_arm] == [c.n for c in result.km_by_arm]


def test_bad_input_is_refused_with_a_fix(small_trial: SimulatedTrial) -> None:
    with pytest.raises(ValueError, match=r"lacks \['metastasis', 'survival_months', 'event'\].*outcomes"):
        analyse_trial(small_trial.trial.drop(OUTCOMES), n_boot=10)
    three_arms = small_trial.trial.with_columns(
        arm=pl.when(pl.int_range(pl.len()) == 0).then(pl.lit("placebo")).otherwise(pl.col("arm"))
    )
    with pytest.raises(ValueError, match="expected exactly"):
        analyse_trial(three_arms, n_boot=10)
