"""Stage-3 metrics on held-out patients, each with a 95 % confidence interval.

`bootstrap` (patient-level bootstrap, t-interval over seeds), `classification`, `survival` and `explain`
import without torch; `segmentation` (monai.metrics) imports torch and is imported on its own. Imported on
their own too (heavier dependencies): `mrmc` and `reader_study` (reader studies, statsmodels), `trial` (the
controlled trial, lifelines), `text` (report metrics, sacrebleu and rouge-score), `html_report` and `render`
(the HTML reports and their PNG rendering).
"""

from brainfm.evaluation.bootstrap import Estimate, mean_ci, patient_bootstrap
from brainfm.evaluation.classification import (
    Calibration,
    accuracy,
    brier,
    calibration,
    classification_estimates,
    macro_f1,
    ovr_macro_auc,
    quadratic_kappa,
)
from brainfm.evaluation.explain import energy_inside_mask, pointing_game
from brainfm.evaluation.survival import harrell_c, survival_estimates, time_dependent_auc, uno_c

__all__ = [
    "Calibration",
    "Estimate",
    "accuracy",
    "brier",
    "calibration",
    "classification_estimates",
    "energy_inside_mask",
    "harrell_c",
    "macro_f1",
    "mean_ci",
    "ovr_macro_auc",
    "patient_bootstrap",
    "pointing_game",
    "quadratic_kappa",
    "survival_estimates",
    "time_dependent_auc",
    "uno_c",
]
