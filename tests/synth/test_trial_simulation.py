"""The controlled trial's prognosis: the doctor's predictions follow the stated noise model, less noisy with the
model, and each participant carries the patient's outcomes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
from scipy import special

from brainfm.synth.clinical import HazardModel, Outcomes, oracle_scores
from brainfm.synth.profiles import SUBTYPES
from brainfm.synth.reader_study import (
    MODEL_PROGNOSIS_NOISE_FACTOR,
    PROGNOSIS_NOISE_SD,
    TRIAL_ARMS,
    Case,
    add_prognosis,
    expected_prognosis_scores,
    simulate_trial,
)

MODEL = HazardModel()
SUBTYPE_NAMES = [s for _, s, _ in SUBTYPES]


def _patients(n: int, rng: np.random.Generator) -> tuple[list[Case], list[str], Outcomes]:
    """``n`` cases with a made-up true risk and outcomes (only their pairing with the patient matters here)."""
    ids = [f"P{i:04d}" for i in range(n)]
    cases = [
        Case(f"A{i:04d}", ids[i], f"center_{'ab'[i % 2]}", str(rng.choice(SUBTYPE_NAMES)), 20.0)
        for i in range(n)
    ]
    months = np.round(rng.uniform(1, 60, n), 2)
    outcomes = Outcomes(
        rng.normal(1.0, 0.8, n), special.expit(rng.normal(-2.0, 1.0, n)), rng.integers(0, 2, n, dtype=np.int8),
        months, rng.integers(0, 2, n, dtype=np.int8),
    )  # fmt: skip
    return cases, ids, outcomes


def _robust_sd(errors: np.ndarray) -> float:
    """The normal sd from the median absolute error: insensitive to risks stored as 0.0 after rounding."""
    return float(np.median(np.abs(errors)) / 0.6745)


def test_predictions_are_the_true_risk_plus_the_stated_noise() -> None:
    rng = np.random.default_rng(3)
    cases, ids, outcomes = _patients(500, rng)
    trial = pl.DataFrame(
        add_prognosis(simulate_trial(cases, SUBTYPE_NAMES, 6000, rng), ids, outcomes, MODEL, rng)
    )
    index = {p: i for i, p in enumerate(ids)}
    rows = np.array([index[p] for p in trial["patient_id"]])
    risk = np.clip(trial["predicted_metastasis_risk"].to_numpy(), 1e-9, 1 - 1e-9)
    logit_error = special.logit(risk) - special.logit(outcomes.p_metastasis[rows])
    # invert the Weibull median m = (ln 2 / (lam e^lp))^(1/k) for the doctor's linear predictor
    months = trial["predicted_survival_months"].to_numpy()
    lp_hat = np.log(np.log(2) / MODEL.weibull_scale) - MODEL.weibull_shape * np.log(months)
    lp_error = lp_hat - outcomes.lp[rows]
    for arm in TRIAL_ARMS:
        factor = MODEL_PROGNOSIS_NOISE_FACTOR if arm == "doctor_plus_model" else 1.0
        for seniority, sd in PROGNOSIS_NOISE_SD.items():
            cell = ((trial["arm"] == arm) & (trial["seniority"] == seniority)).to_numpy()
            assert cell.sum() > 700
            assert abs(_robust_sd(lp_error[cell]) / (sd * factor) - 1) < 0.1
            assert abs(_robust_sd(logit_error[cell]) / (sd * factor) - 1) < 0.1
            assert abs(np.median(lp_error[cell])) < 0.1 * sd  # unbiased
    assert trial["predicted_metastasis_risk"].is_between(0, 1).all() and (months > 0).all()
    # the patient's own outcomes travel with every participant
    assert (trial["survival_months"].to_numpy() == outcomes.survival_months[rows]).all()
    assert (trial["metastasis"].to_numpy() == outcomes.metastasis[rows]).all()
    assert (trial["event"].to_numpy() == outcomes.event[rows]).all()


def test_prognosis_is_deterministic_and_leaves_the_diagnosis_columns_alone() -> None:
    cases, ids, outcomes = _patients(40, np.random.default_rng(0))

    def draw(seed: int) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
        rng = np.random.default_rng(seed)
        trial = simulate_trial(cases, SUBTYPE_NAMES, 100, rng)
        return trial, add_prognosis(trial, ids, outcomes, MODEL, rng)

    (trial, with_prognosis), (_, again) = draw(7), draw(7)
    assert with_prognosis == again and with_prognosis != draw(8)[1]
    assert [{k: r[k] for k in trial[0]} for r in with_prognosis] == trial
    added = set(with_prognosis[0]) - set(trial[0])
    assert added == {
        "predicted_metastasis_risk",
        "predicted_survival_months",
        "metastasis",
        "survival_months",
        "event",
    }


def test_expected_scores_favour_the_model_arm_and_stay_below_the_oracle() -> None:
    _, _, outcomes = _patients(300, np.random.default_rng(1))
    outcomes = Outcomes(  # outcomes that follow the true risk, so that the scores mean something
        outcomes.lp,
        outcomes.p_metastasis,
        (np.random.default_rng(2).random(300) < outcomes.p_metastasis).astype(np.int8),
        np.round(np.exp(-outcomes.lp) * 30, 2),
        np.ones(300, dtype=np.int8),
    )
    oracle = oracle_scores(outcomes)
    expected = expected_prognosis_scores(outcomes, draws=50)
    assert oracle["c_index"] == 1.0  # survival is a decreasing function of lp here
    for score in ("c_index", "auc_metastasis"):
        assert oracle[score] > expected["doctor_plus_model"][score] > expected["doctor_alone"][score] > 0.5
    assert expected == expected_prognosis_scores(outcomes, draws=50)


def test_the_cohort_trial_carries_prognosis_and_outcomes(raw: Path) -> None:
    tables = raw / "tables"
    trial = pl.read_parquet(tables / "controlled_trial.parquet")
    outcomes = pl.read_parquet(tables / "outcomes.parquet")
    assert trial["predicted_metastasis_risk"].is_between(0, 1).all()
    assert (trial["predicted_survival_months"] > 0).all()
    joined = trial.join(outcomes, on="patient_id", suffix="_patient", validate="m:1")
    assert joined.height == trial.height
    for column in ("metastasis", "survival_months", "event"):
        assert (joined[column] == joined[f"{column}_patient"]).all()
