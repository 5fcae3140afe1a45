"""Analysis of the controlled clinical-value trial: doctor + model vs doctor alone, every number with a 95 % CI.

Input: one row per participant, the ``controlled_trial`` table (docs/SCHEMAS.md; raw, keyed by
``patient_id``, or pseudonymised, keyed by ``patient``): the arm, the doctor's diagnosis and time to it
(minutes), the doctor's ``predicted_metastasis_risk`` (probability) and ``predicted_survival_months`` (predicted
median survival, months), and the patient's ``metastasis`` (0/1), ``survival_months`` (months) and ``event``
(0/1). Differences are doctor_plus_model − doctor_alone.

Resampling unit: the patient (`brainfm.evaluation.bootstrap.patient_bootstrap`). A trial enrols each patient
once, which makes this the participant bootstrap; the simulated trial draws studies with replacement, so one
patient can be several participants, in both arms, sharing one outcome draw: resampling patients keeps them
together, and keeps the between-arm correlation inside the difference. For the same reason Cox models use a
robust variance clustered by patient when a patient repeats (the log-rank test has no such correction).
Predicted risk groups: tertiles of the doctor's predicted survival within each arm, the shortest third "high".
A metric undefined on a whole arm (no metastasis in it) is NaN with a NaN interval (null in ``to_json()``).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import cast

import numpy as np
import numpy.typing as npt
import pandas as pd
import polars as pl
from lifelines import CoxPHFitter, KaplanMeierFitter
from lifelines.plotting import add_at_risk_counts
from lifelines.statistics import multivariate_logrank_test, proportional_hazard_test
from matplotlib.figure import Figure
from scipy import optimize, special, stats
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from brainfm.evaluation.bootstrap import Estimate, patient_bootstrap
from brainfm.evaluation.classification import Calibration, brier, calibration
from brainfm.evaluation.survival import harrell_c
from brainfm.synth.reader_study import TRIAL_ARMS

TREATED, CONTROL = TRIAL_ARMS
RISK_GROUPS = ("low", "intermediate", "high")  # tertiles of predicted risk (longest predicted survival: low)
AT_RISK_MONTHS = (0.0, 12.0, 24.0, 36.0, 48.0, 60.0)  # where the numbers at risk are given
BALANCE_VARIABLES = ("center", "seniority", "hospital_tier", "specialty", "truth_category")
OUTCOME_COLUMNS = ("metastasis", "survival_months", "event")
TRIAL_COLUMNS = (
    "arm",
    "predicted_metastasis_risk",
    "predicted_survival_months",
    "correct_diagnosis",
    "time_to_diagnosis_min",
    "critical_case",
    "critical_finding_missed",
    *BALANCE_VARIABLES,
)
_EPS = 1e-6  # predicted risks are clipped to [_EPS, 1 - _EPS] before the logit (a stored 0.0 or 1.0)


def _jsonable(value: object) -> object:
    """Dataclasses, frames, arrays and numpy scalars as plain JSON values; NaN and infinities as None."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, pl.DataFrame):
        return _jsonable(value.to_dicts())
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return _jsonable(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class _ToJson:
    def to_json(self) -> dict[str, object]:
        """Every field as plain JSON values (an Estimate as value/low/high/…; NaN as null)."""
        return cast(dict[str, object], _jsonable(self))


@dataclass(frozen=True)
class Comparison(_ToJson):
    """A metric in each arm and its difference (doctor_plus_model − doctor_alone), each with a 95 % CI."""

    per_arm: dict[str, Estimate]
    difference: Estimate


@dataclass(frozen=True)
class ArmCalibration(_ToJson):
    """Calibration of the predicted metastasis risk in one arm.

    reliability: quantile bins (mean predicted vs observed frequency). slope: of the logistic recalibration
    logit P(metastasis) = a + b·logit(risk) (1 is ideal; below 1: predictions too extreme). intercept:
    calibration-in-the-large, a with b fixed at 1 (0 is ideal; above 0: risk underestimated).
    """

    reliability: Calibration
    slope: Estimate
    intercept: Estimate


@dataclass(frozen=True)
class KMCurve(_ToJson):
    """A Kaplan–Meier curve (lifelines): survival with its 95 % CI at each step, months."""

    label: str
    n: int
    n_events: int
    time_months: list[float]
    survival: list[float]
    low: list[float]
    high: list[float]
    at_risk: dict[float, int]  # AT_RISK_MONTHS → participants followed beyond that month


@dataclass(frozen=True)
class LogRank(_ToJson):
    """Log-rank test across groups (lifelines ``multivariate_logrank_test``): chi-square, df, p-value."""

    statistic: float
    df: int
    p_value: float


@dataclass(frozen=True)
class CoxHazardRatio(_ToJson):
    """Hazard ratio of the exposed vs the rest (lifelines ``CoxPHFitter``, Efron ties).

    hazard_ratio: Wald 95 % CI (``n_boot`` 0), robust and clustered by patient when ``clustered``.
    ph_p_values: covariate → p-value of the proportional-hazards test on scaled Schoenfeld residuals (rank
    time transform, ``lifelines.statistics.proportional_hazard_test``); small means the hazards are not
    proportional and the single hazard ratio averages a changing one.
    """

    hazard_ratio: Estimate
    p_value: float
    clustered: bool
    ph_p_values: dict[str, float]


@dataclass(frozen=True)
class RiskStratification(_ToJson):
    """Survival by tertile of the doctor's predicted survival in one arm: curves, log-rank, high vs rest."""

    curves: list[KMCurve]
    logrank: LogRank
    high_vs_rest: CoxHazardRatio


@dataclass(frozen=True)
class TimeToDiagnosis(_ToJson):
    """Time to diagnosis (minutes): medians by arm and their difference, Mann–Whitney U test.

    probability_faster: P(a doctor + model participant is diagnosed sooner than a doctor-alone one), ties
    counting half (the common-language effect size, 1 − U/(n₁n₀); 0.5 is no effect).
    """

    median_min: Comparison
    mann_whitney_u: float
    p_value: float
    probability_faster: Estimate


@dataclass(frozen=True)
class TrialResult(_ToJson):
    """The trial analysed by arm (see the module docstring for the resampling and the risk groups)."""

    n_participants: dict[str, int]
    n_patients: dict[str, int]  # distinct patients per arm
    auc_metastasis: Comparison  # ROC AUC of the predicted metastasis risk
    c_index: Comparison  # Harrell's C of the predicted survival
    brier: Comparison  # Brier score of the predicted metastasis risk (lower is better)
    calibration: dict[str, ArmCalibration]
    km_by_arm: list[KMCurve]
    logrank_by_arm: LogRank
    risk_groups: dict[str, RiskStratification]  # per arm
    accuracy: Comparison  # share of correct diagnoses
    time_to_diagnosis: TimeToDiagnosis
    critical_missed: Comparison  # share of critical cases whose finding was missed
    critical_counts: dict[str, dict[str, int]]  # per arm: critical cases, missed
    balance: pl.DataFrame  # randomisation balance (:func:`balance_table`)


def binary_auc(y_true: npt.ArrayLike, risk: npt.ArrayLike) -> float:
    """ROC AUC of a probability against 0/1 outcomes; NaN with one class only."""
    y = np.asarray(y_true)
    return float(roc_auc_score(y, risk)) if np.unique(y).size == 2 else float("nan")


def survival_c_index(
    time_months: npt.ArrayLike, event: npt.ArrayLike, predicted_months: npt.ArrayLike
) -> float:
    """Harrell's C of a predicted survival time (longer predicted = lower risk); NaN without comparable pairs."""
    return harrell_c(time_months, event, -np.asarray(predicted_months, dtype=float))


def _logit(risk: npt.ArrayLike) -> np.ndarray:
    return special.logit(np.clip(np.asarray(risk, dtype=float), _EPS, 1.0 - _EPS))


def calibration_slope(y_true: npt.ArrayLike, risk: npt.ArrayLike) -> float:
    """Slope b of the logistic recalibration logit P(y) = a + b·logit(risk) (unpenalised); NaN with one class."""
    y = np.asarray(y_true)
    if np.unique(y).size < 2:
        return float("nan")
    fit = LogisticRegression(C=np.inf, solver="newton-cholesky").fit(_logit(risk)[:, None], y)
    return float(fit.coef_[0, 0])


def calibration_intercept(y_true: npt.ArrayLike, risk: npt.ArrayLike) -> float:
    """Calibration-in-the-large: a in logit P(y) = a + logit(risk) (offset); NaN with one class.

    Hand-written (a one-dimensional root of the score equation Σ y − expit(a + logit risk) = 0): scikit-learn's
    logistic regression takes no offset, and statsmodels is not a dependency.
    """
    y = np.asarray(y_true, dtype=float)
    if np.unique(y).size < 2:
        return float("nan")
    offset = _logit(risk)
    return float(optimize.brentq(lambda a: y.sum() - special.expit(a + offset).sum(), -50.0, 50.0))


def _share(values: npt.ArrayLike) -> float:
    x = np.asarray(values, dtype=float)
    return float(x.mean()) if x.size else float("nan")


def _critical_miss_rate(critical: npt.ArrayLike, missed: npt.ArrayLike) -> float:
    """Missed critical findings per critical case; NaN without a critical case."""
    c = np.asarray(critical, dtype=bool)
    return float(np.asarray(missed, dtype=bool)[c].mean()) if c.any() else float("nan")


def _median(values: npt.ArrayLike) -> float:
    x = np.asarray(values, dtype=float)
    return float(np.median(x)) if x.size else float("nan")


def _probability_faster(treated_min: npt.ArrayLike, control_min: npt.ArrayLike) -> float:
    """P(treated < control) + ½ P(tie) = 1 − U/(n₁n₀), U the Mann–Whitney statistic of ``treated``."""
    t, c = np.asarray(treated_min, dtype=float), np.asarray(control_min, dtype=float)
    if not (t.size and c.size):
        return float("nan")
    return 1.0 - float(stats.mannwhitneyu(t, c).statistic) / (t.size * c.size)


def _key(frame: pl.DataFrame) -> str:
    for column in ("patient", "patient_id"):
        if column in frame.columns:
            return column
    raise ValueError(
        "the trial table has neither `patient` (pseudonymised) nor `patient_id` (raw): pass the "
        "controlled_trial table of docs/SCHEMAS.md"
    )


def _arms(frame: pl.DataFrame) -> dict[str, pl.DataFrame]:
    found = set(frame["arm"].unique().to_list())
    if found != set(TRIAL_ARMS):
        raise ValueError(f"the trial's arms are {sorted(found)}; expected exactly {list(TRIAL_ARMS)}")
    return {arm: frame.filter(pl.col("arm") == arm) for arm in TRIAL_ARMS}


def _estimate(
    metric: Callable[..., float], frame: pl.DataFrame, columns: Sequence[str], n_boot: int, seed: int
) -> Estimate:
    """``metric(*columns)`` with its patient-bootstrap CI; all NaN (``n_boot`` 0) where the metric is undefined
    on the whole sample (no metastasis in an arm of a small trial), so that it does not stop the analysis."""
    patients = frame[_key(frame)].to_numpy()
    arrays = [frame[c].to_numpy() for c in columns]
    if math.isnan(metric(*arrays)):
        return Estimate(math.nan, math.nan, math.nan, len(np.unique(patients)), n_boot=0)
    return patient_bootstrap(metric, patients, *arrays, n_boot=n_boot, seed=seed)


def compare_arms(
    metric: Callable[..., float],
    trial: pl.DataFrame,
    columns: Sequence[str],
    *,
    n_boot: int = 1000,
    seed: int = 0,
) -> Comparison:
    """``metric(*columns)`` in each arm and its difference, with patient-bootstrap 95 % CIs.

    Each arm is resampled on its own; the difference resamples patients across the whole trial (a patient in
    both arms moves together) and recomputes the metric in each arm of the replicate. A value undefined on
    the whole sample is NaN with a NaN interval.
    """
    per_arm = {arm: _estimate(metric, rows, columns, n_boot, seed) for arm, rows in _arms(trial).items()}

    def difference(arm: np.ndarray, *arrays: np.ndarray) -> float:
        treated = arm == TREATED
        return metric(*(a[treated] for a in arrays)) - metric(*(a[~treated] for a in arrays))

    return Comparison(per_arm, _estimate(difference, trial, ("arm", *columns), n_boot, seed))


def logrank(time_months: npt.ArrayLike, event: npt.ArrayLike, groups: npt.ArrayLike) -> LogRank:
    """Log-rank test that survival is the same in every group (two or more groups)."""
    result = multivariate_logrank_test(
        np.asarray(time_months, dtype=float), np.asarray(groups), np.asarray(event, dtype=int)
    )
    return LogRank(float(result.test_statistic), int(result.degrees_of_freedom), float(result.p_value))


def cox_hazard_ratio(
    time_months: npt.ArrayLike,
    event: npt.ArrayLike,
    exposed: npt.ArrayLike,
    patients: npt.ArrayLike | None = None,
) -> CoxHazardRatio:
    """Cox hazard ratio of ``exposed`` (boolean) vs the rest, with its proportional-hazards test.

    ``patients`` (one key per row): when a patient has several rows, the variance is robust and clustered by
    patient; otherwise (or without ``patients``) it is the model-based one.
    """
    data = pd.DataFrame(
        {
            "time": np.asarray(time_months, dtype=float),
            "event": np.asarray(event, dtype=int),
            "exposed": np.asarray(exposed, dtype=float),
        }
    )
    keys = None if patients is None else np.asarray(patients)
    clustered = keys is not None and len(np.unique(keys)) < len(keys)
    if clustered:
        data["patient"] = pd.factorize(keys)[0]
    fitter = CoxPHFitter().fit(data, "time", "event", cluster_col="patient" if clustered else None)
    row = fitter.summary.loc["exposed"]
    ph = proportional_hazard_test(fitter, data, time_transform="rank")
    estimate = Estimate(
        float(row["exp(coef)"]),
        float(row["exp(coef) lower 95%"]),
        float(row["exp(coef) upper 95%"]),
        len(np.unique(keys)) if keys is not None else len(data),
        n_boot=0,
    )
    return CoxHazardRatio(estimate, float(row["p"]), clustered, {"exposed": float(ph.p_value[0])})


def risk_groups(predicted_survival_months: npt.ArrayLike) -> np.ndarray:
    """Tertile of each prediction: ``high`` for the shortest third of predicted survival, then
    ``intermediate``, ``low`` (``pandas.qcut``)."""
    groups = pd.qcut(np.asarray(predicted_survival_months, dtype=float), 3, labels=RISK_GROUPS[::-1])
    return np.asarray(groups.astype(str))


def _fitters(
    time_months: np.ndarray, event: np.ndarray, groups: np.ndarray, order: Sequence[str]
) -> list[KaplanMeierFitter]:
    """One fitted KaplanMeierFitter per group present, in ``order``."""
    return [
        KaplanMeierFitter(label=str(g)).fit(time_months[groups == g], event[groups == g])
        for g in order
        if (groups == g).any()
    ]


def _curve(fitter: KaplanMeierFitter, time_months: np.ndarray) -> KMCurve:
    ci = fitter.confidence_interval_survival_function_
    return KMCurve(
        str(fitter.label),
        len(time_months),
        int(fitter.event_observed.sum()),
        fitter.survival_function_.index.to_list(),
        fitter.survival_function_.iloc[:, 0].to_list(),
        ci.iloc[:, 0].to_list(),
        ci.iloc[:, 1].to_list(),
        {m: int((time_months > m).sum()) for m in AT_RISK_MONTHS},
    )


def km_curves(
    time_months: npt.ArrayLike, event: npt.ArrayLike, groups: npt.ArrayLike, order: Sequence[str]
) -> list[KMCurve]:
    """Kaplan–Meier curve of each group of ``order`` present, with numbers at risk at AT_RISK_MONTHS."""
    t, e, g = (
        np.asarray(time_months, dtype=float),
        np.asarray(event, dtype=int),
        np.asarray(groups).astype(str),
    )
    return [_curve(f, t[g == f.label]) for f in _fitters(t, e, g, order)]


def _with_outcomes(trial: pl.DataFrame, outcomes: pl.DataFrame | None) -> pl.DataFrame:
    """The trial with the patient's outcomes (its own, or joined from ``outcomes``), checked for columns."""
    key = _key(trial)
    if outcomes is not None:
        if key not in outcomes.columns:
            raise ValueError(f"outcomes has no `{key}` column to join the trial on: pass the matching table")
        joined = trial.drop(OUTCOME_COLUMNS, strict=False).join(
            outcomes.select(key, *OUTCOME_COLUMNS), on=key, how="left", validate="m:1"
        )
        if joined["survival_months"].null_count():
            raise ValueError(
                f"{joined['survival_months'].null_count()} participant(s) have no row in outcomes: pass the "
                "outcomes of every trial patient"
            )
        trial = joined
    missing = [c for c in (*TRIAL_COLUMNS, *OUTCOME_COLUMNS) if c not in trial.columns]
    if missing:
        raise ValueError(
            f"the trial table lacks {missing}: pass the controlled_trial table of docs/SCHEMAS.md (and "
            "`outcomes` when it carries no metastasis, survival_months and event)"
        )
    return trial


def _stratified(trial: pl.DataFrame) -> pl.DataFrame:
    """The trial with ``risk_group``: tertiles of predicted survival within each arm."""
    parts = [
        rows.with_columns(risk_group=pl.Series(risk_groups(rows["predicted_survival_months"].to_numpy())))
        for rows in _arms(trial).values()
    ]
    return pl.concat(parts)


def balance_table(trial: pl.DataFrame) -> pl.DataFrame:
    """Randomisation balance: per variable and level, count and share in each arm and the standardised mean
    difference of the level's indicator, (p₁ − p₀)/√((p₁(1−p₁) + p₀(1−p₀))/2) (|SMD| < 0.1 is the usual
    mark of balance; 0 where both shares are equal, infinite where one arm has all and the other none)."""
    arms = _arms(trial)
    rows = []
    for variable in BALANCE_VARIABLES:
        for level in sorted(trial[variable].unique().to_list()):
            counts = {arm: int((frame[variable] == level).sum()) for arm, frame in arms.items()}
            p1, p0 = (counts[arm] / arms[arm].height for arm in TRIAL_ARMS)
            spread = math.sqrt((p1 * (1 - p1) + p0 * (1 - p0)) / 2)
            smd = (p1 - p0) / spread if spread else (0.0 if p1 == p0 else math.copysign(math.inf, p1 - p0))
            rows.append(
                {"variable": variable, "level": str(level)}
                | {f"n_{arm}": counts[arm] for arm in TRIAL_ARMS}
                | {"share_" + TREATED: p1, "share_" + CONTROL: p0, "smd": smd}
            )
    return pl.DataFrame(rows)


def plot_km(trial: pl.DataFrame, outcomes: pl.DataFrame | None = None) -> Figure:
    """Kaplan–Meier curves by arm and, per arm, by tertile of predicted risk, numbers at risk below each
    panel (lifelines ``add_at_risk_counts``); survival in months."""
    data = _stratified(_with_outcomes(trial, outcomes))
    t = data["survival_months"].to_numpy().astype(float)
    e = data["event"].to_numpy().astype(int)
    panels = [("by arm", data["arm"].to_numpy(), TRIAL_ARMS, np.ones(len(t), dtype=bool))]
    panels += [
        (
            f"{arm}: by tertile of predicted risk",
            data["risk_group"].to_numpy(),
            RISK_GROUPS,
            data["arm"].to_numpy() == arm,
        )
        for arm in TRIAL_ARMS
    ]
    ticks = [m for m in AT_RISK_MONTHS if m <= t.max()]
    fig = Figure(figsize=(6 * len(panels), 5.5))
    for ax, (title, groups, order, rows) in zip(fig.subplots(1, len(panels)), panels, strict=True):
        fitters = _fitters(t[rows], e[rows], groups[rows], order)
        for fitter in fitters:
            fitter.plot_survival_function(ax=ax)
        ax.set(title=title, xlabel="months", ylabel="survival probability", ylim=(0, 1.02), xticks=ticks)
        add_at_risk_counts(*fitters, ax=ax, fig=fig, rows_to_show=["At risk"], xticks=ticks)
    fig.subplots_adjust(bottom=0.3, wspace=0.35)
    return fig


def analyse_trial(
    trial: pl.DataFrame, outcomes: pl.DataFrame | None = None, *, n_boot: int = 1000, seed: int = 0
) -> TrialResult:
    """The controlled trial analysed by arm (module docstring); ``outcomes`` replaces the trial's own
    metastasis, survival_months and event, joined on the patient key. Deterministic under ``seed``."""
    data = _stratified(_with_outcomes(trial, outcomes))
    key = _key(data)
    arms = _arms(data)
    boot = {"n_boot": n_boot, "seed": seed}
    risk = ("metastasis", "predicted_metastasis_risk")
    calibrations = {
        arm: ArmCalibration(
            calibration(*(rows[c].to_numpy() for c in risk), n_bins=10, strategy="quantile"),
            _estimate(calibration_slope, rows, risk, n_boot, seed),
            _estimate(calibration_intercept, rows, risk, n_boot, seed),
        )
        for arm, rows in arms.items()
    }
    strata = {}
    for arm, rows in arms.items():
        t, e, g = (rows[c].to_numpy() for c in ("survival_months", "event", "risk_group"))
        strata[arm] = RiskStratification(
            km_curves(t, e, g, RISK_GROUPS),
            logrank(t, e, g),
            cox_hazard_ratio(t, e, g == "high", rows[key].to_numpy()),
        )
    treated, control = (arms[a]["time_to_diagnosis_min"].to_numpy() for a in TRIAL_ARMS)
    test = stats.mannwhitneyu(treated, control)
    faster = _estimate(
        lambda arm, minutes: _probability_faster(minutes[arm == TREATED], minutes[arm == CONTROL]),
        data,
        ("arm", "time_to_diagnosis_min"),
        n_boot,
        seed,
    )
    t, e = data["survival_months"].to_numpy(), data["event"].to_numpy()
    return TrialResult(
        n_participants={arm: rows.height for arm, rows in arms.items()},
        n_patients={arm: rows[key].n_unique() for arm, rows in arms.items()},
        auc_metastasis=compare_arms(binary_auc, data, risk, **boot),
        c_index=compare_arms(
            survival_c_index, data, ("survival_months", "event", "predicted_survival_months"), **boot
        ),
        brier=compare_arms(brier, data, risk, **boot),
        calibration=calibrations,
        km_by_arm=km_curves(t, e, data["arm"].to_numpy(), TRIAL_ARMS),
        logrank_by_arm=logrank(t, e, data["arm"].to_numpy()),
        risk_groups=strata,
        accuracy=compare_arms(_share, data, ("correct_diagnosis",), **boot),
        time_to_diagnosis=TimeToDiagnosis(
            compare_arms(_median, data, ("time_to_diagnosis_min",), **boot),
            float(test.statistic),
            float(test.pvalue),
            faster,
        ),
        critical_missed=compare_arms(
            _critical_miss_rate, data, ("critical_case", "critical_finding_missed"), **boot
        ),
        critical_counts={
            arm: {
                "critical_cases": int(rows["critical_case"].sum()),
                "missed": int(rows["critical_finding_missed"].sum()),
            }
            for arm, rows in arms.items()
        },
        balance=balance_table(data),
    )
