"""Classification metrics against hand-computed and scikit-learn values, and their bootstrap bundle."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from brainfm.evaluation import calibration, classification_estimates, ovr_macro_auc, quadratic_kappa


def test_quadratic_kappa_matches_the_hand_computed_value() -> None:
    # Observed weighted disagreement Σ w·O = 2 (two off-by-one errors, w = (i - j)²); expected
    # Σ w·E = Σ r_i c_j (i - j)² / n = 22 / 4 with margins r = c = (1, 1, 2): κ = 1 - 2 / 5.5 = 7/11.
    assert quadratic_kappa([0, 1, 2, 2], [0, 2, 2, 1]) == pytest.approx(7 / 11)
    assert math.isnan(quadratic_kappa([2, 2], [2, 2]))


def test_ovr_auc_equals_scikit_learn_and_skips_an_absent_class() -> None:
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1, 2], 20)
    proba = rng.dirichlet(np.ones(3), size=60) + np.eye(3)[y] * 0.5
    proba /= proba.sum(axis=1, keepdims=True)
    assert ovr_macro_auc(y, proba, (0, 1, 2)) == pytest.approx(roc_auc_score(y, proba, multi_class="ovr"))
    # Class 2 absent: the macro mean runs over the two classes present.
    present = y < 2
    expected = np.mean([roc_auc_score(y[present] == c, proba[present, c]) for c in (0, 1)])
    assert ovr_macro_auc(y[present], proba[present], (0, 1, 2)) == pytest.approx(expected)
    assert math.isnan(ovr_macro_auc(y[y == 0], proba[y == 0], (0, 1, 2)))
    with pytest.raises(ValueError, match="not in classes"):
        ovr_macro_auc(y, proba, ("a", "b", "c"))


def test_calibration_curve_and_brier_of_calibrated_bins() -> None:
    prob = np.repeat([0.1, 0.9], 10)
    y = np.array([1] + [0] * 9 + [1] * 9 + [0])  # 10 % and 90 % observed: perfectly calibrated
    curve = calibration(y, prob, n_bins=5)
    np.testing.assert_allclose(curve.prob_pred, [0.1, 0.9])
    np.testing.assert_allclose(curve.prob_true, [0.1, 0.9])
    assert curve.brier == pytest.approx((2 * 0.81 + 18 * 0.01) / 20)


def test_estimates_share_resamples_and_skip_single_class_replicates() -> None:
    # Six patients, one study each, three per class: some resamples hold one class only (AUC undefined).
    patients = [f"p{i}" for i in range(6)]
    y = np.array([0, 0, 0, 1, 1, 1])
    prob = np.array([0.1, 0.4, 0.6, 0.35, 0.8, 0.9])
    estimates = classification_estimates(patients, y, prob, n_boot=200, seed=5)
    assert set(estimates) == {"accuracy", "macro_f1", "auc", "brier"}
    assert estimates["accuracy"].value == pytest.approx(4 / 6)
    assert estimates["auc"].value == pytest.approx(7 / 9)  # 0.4 and 0.6 outrank 0.35: 2 of 9 pairs wrong
    assert estimates["accuracy"].n_skipped == 0 < estimates["auc"].n_skipped
    assert estimates["auc"].n_boot + estimates["auc"].n_skipped == 200
    for estimate in estimates.values():
        assert estimate.low <= estimate.value <= estimate.high
    assert classification_estimates(patients, y, prob, n_boot=200, seed=5) == estimates


def test_ordinal_estimates_add_kappa_on_the_argmax_grade() -> None:
    grades = np.array([2, 3, 4, 4, 3, 2])
    proba = np.eye(3)[[0, 1, 2, 1, 1, 0]] * 0.7 + 0.1  # the fourth study is under-graded by one
    estimates = classification_estimates(
        np.arange(6), grades, proba, classes=(2, 3, 4), ordinal=True, n_boot=50
    )
    assert set(estimates) == {"accuracy", "macro_f1", "auc", "qwk"}
    assert estimates["accuracy"].value == pytest.approx(5 / 6)
    assert estimates["qwk"].value == pytest.approx(quadratic_kappa(grades, [2, 3, 4, 3, 3, 2]))
