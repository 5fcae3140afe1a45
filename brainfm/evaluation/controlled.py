"""The controlled (clinical value) report: doctor + model vs doctor alone, randomised.

Builds a :class:`~brainfm.evaluation.html_report.Report` from :class:`TrialResult`: prognostic discrimination
(metastasis AUC, survival C-index) and calibration by arm, Kaplan–Meier curves by arm and by predicted risk
group with numbers at risk, log-rank tests, Cox hazard ratios with a proportional-hazards check, diagnostic
accuracy and time to diagnosis, and the randomisation balance. Test statistics and p-values are text.
"""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import polars as pl

from brainfm.evaluation.html_report import Count, Provenance, Report
from brainfm.evaluation.trial import TRIAL_ARMS, Comparison, TrialResult, plot_km

CONTROLLED_SECTIONS: tuple[str, ...] = (
    "design", "balance", "prognosis", "calibration", "survival-curves", "diagnosis",
)


def _p(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.3g}"  # NaN: undefined on these data (e.g. no event)


def _comparison_rows(label: str, comparison: Comparison) -> list[object]:
    return [label, *(comparison.per_arm[arm] for arm in TRIAL_ARMS), comparison.difference]


def _calibration_figure(result: TrialResult) -> tuple[plt.Figure, dict[str, object]]:
    fig, ax = plt.subplots(figsize=(5.0, 4.5))
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="ideal")
    source: dict[str, object] = {}
    for arm, calibration in result.calibration.items():
        r = calibration.reliability
        ax.plot(r.prob_pred, r.prob_true, marker="o", label=arm)
        source[arm] = {"predicted": r.prob_pred.tolist(), "observed": r.prob_true.tolist()}
    ax.set(xlabel="predicted metastasis risk", ylabel="observed frequency", xlim=(0, 1), ylim=(0, 1))
    ax.legend()
    fig.tight_layout()
    return fig, source


def controlled_report(result: TrialResult, trial: pl.DataFrame, provenance: Provenance) -> Report:
    """The controlled-trial report; ``trial`` is the analysed table (for the Kaplan–Meier figure)."""
    treated, control = TRIAL_ARMS
    report = Report("Controlled evaluation: doctor + model vs doctor alone", provenance,
                    subtitle="Clinical value: randomised comparison of metastasis-risk and survival prediction")
    simulated = " Participants, doctors and their predictions are simulated (docs/SCHEMAS.md)." if provenance.synthetic else ""
    design = report.section("design", "Design", "Participants were randomised 1:1 in permuted blocks within each "
                            "center; a doctor predicted metastasis risk and survival with or without the model's "
                            f"output. Intervals: patient bootstrap (a patient drawn twice counts twice).{simulated}")
    for arm in TRIAL_ARMS:
        design.key_number(f"participants, {arm}", Count(result.n_participants[arm]))
    balance = report.section("balance", "Randomisation balance",
                             "Counts per arm and the standardised mean difference (|SMD| < 0.1: balanced).")
    balance.table(
        [[r["variable"], r["level"], Count(r[f"n_{treated}"]), Count(r[f"n_{control}"]), f"{r['smd']:.2f}"]
         for r in result.balance.iter_rows(named=True)],
        ["variable", "level", treated, control, "SMD"], "Baseline characteristics by arm.",
    )
    columns = ["measure", treated, control, f"{treated} − {control}"]
    prognosis = report.section("prognosis", "Prognostic discrimination", "Metastasis within two years (ROC AUC) "
                               "and survival (Harrell's C) of the doctors' predictions, with the difference between arms.")
    prognosis.key_number("AUC difference (metastasis)", result.auc_metastasis.difference)
    prognosis.key_number("C-index difference (survival)", result.c_index.difference)
    prognosis.table([_comparison_rows("metastasis AUC", result.auc_metastasis),
                     _comparison_rows("survival C-index", result.c_index),
                     _comparison_rows("Brier score (lower is better)", result.brier)],
                    columns, "Discrimination and accuracy of the predicted prognosis.")

    calibration = report.section("calibration", "Calibration", "Calibration slope (1 ideal) and "
                                 "calibration-in-the-large (0 ideal) of the predicted metastasis risk, per arm.")
    calibration.table([[arm, c.slope, c.intercept] for arm, c in result.calibration.items()],
                      ["arm", "slope", "intercept"], "Calibration of the predicted metastasis risk.")
    fig, source = _calibration_figure(result)
    calibration.figure(fig, "Reliability of the predicted metastasis risk by arm (quantile bins).", source)
    plt.close(fig)

    curves = report.section("survival-curves", "Survival by arm and by predicted risk",
                            "Kaplan–Meier estimates with numbers at risk; log-rank tests; Cox hazard ratio of the "
                            "predicted high-risk tertile against the rest, with the proportional-hazards test.")
    fig = plot_km(trial)
    curves.figure(fig, "Kaplan–Meier survival by arm, and within each arm by tertile of predicted risk.",
                  {"by_arm": [c.to_json() for c in result.km_by_arm],
                   "by_risk": {arm: [c.to_json() for c in s.curves] for arm, s in result.risk_groups.items()}})
    plt.close(fig)
    rows = [["arms", f"{result.logrank_by_arm.statistic:.3g}", str(result.logrank_by_arm.df),
             _p(result.logrank_by_arm.p_value), "n/a", "n/a", "n/a"]]
    for arm, s in result.risk_groups.items():
        ph = min(s.high_vs_rest.ph_p_values.values(), default=math.nan)
        rows.append([f"risk tertiles, {arm}", f"{s.logrank.statistic:.3g}", str(s.logrank.df), _p(s.logrank.p_value),
                     s.high_vs_rest.hazard_ratio, _p(s.high_vs_rest.p_value), _p(ph)])
    curves.table(rows, ["comparison", "log-rank χ²", "df", "p", "HR high vs rest", "Cox p", "PH test p"],
                 "Log-rank tests and Cox hazard ratios (the high-risk group's hazard against the rest).")

    diagnosis = report.section("diagnosis", "Diagnosis and time to diagnosis", "Share of correct diagnoses, critical "
                               "findings missed, and minutes from scan to final report, by arm.")
    t = result.time_to_diagnosis
    diagnosis.key_number("P(doctor + model faster)", t.probability_faster)
    diagnosis.table([_comparison_rows("correct diagnosis", result.accuracy),
                     _comparison_rows("critical finding missed", result.critical_missed),
                     _comparison_rows("median time to diagnosis (min)", t.median_min)],
                    columns, "Diagnostic accuracy and speed by arm.")
    diagnosis.table([[f"{t.mann_whitney_u:.1f}", _p(t.p_value), t.probability_faster]],
                    ["Mann–Whitney U", "p", "P(faster with the model)"], "Time to diagnosis, Mann–Whitney test.")
    return report
