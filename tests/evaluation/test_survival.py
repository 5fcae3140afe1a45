"""C-indices and time-dependent AUC against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from brainfm.evaluation import harrell_c, survival_estimates, time_dependent_auc, uno_c

# Training follow-up: one censoring at 2 months, so the censoring survival G is 1 before 2 and 3/4 from 2 on.
TRAIN = {"train_time_months": [1.0, 2.0, 3.0, 4.0, 5.0], "train_event": [1, 0, 1, 1, 1]}


def test_harrell_c_of_ordered_and_reversed_risks() -> None:
    months, died = np.array([3.0, 8.0, 12.0, 20.0, 30.0]), np.ones(5)
    assert harrell_c(months, died, -months) == 1.0  # higher risk, earlier death
    assert harrell_c(months, died, months) == 0.0
    assert math.isnan(harrell_c(months, np.zeros(5), -months))  # no event: no comparable pair


def test_uno_c_weights_pairs_by_the_training_censoring_distribution() -> None:
    # Pairs (1.5, 2.5) and (1.5, 3.5) are concordant with weight 1/G(1.5)² = 1; (2.5, 3.5) is discordant
    # with weight 1/G(2.5)² = 16/9. Uno: 2 / (2 + 16/9) = 9/17; Harrell (unweighted): 2/3.
    months, died, risk = [1.5, 2.5, 3.5], [1, 1, 1], [3.0, 1.0, 2.0]
    assert uno_c(months, died, risk, **TRAIN) == pytest.approx(9 / 17)
    assert harrell_c(months, died, risk) == pytest.approx(2 / 3)
    assert uno_c(months, died, risk, tau_months=2.0, **TRAIN) == 1.0  # only the death at 1.5 months counts
    assert math.isnan(uno_c(months, [0, 0, 0], risk, **TRAIN))


def test_uno_c_beyond_the_training_follow_up_says_what_to_do() -> None:
    with pytest.raises(ValueError, match="pass tau_months"):
        uno_c([1.5, 4.5, 6.0], [1, 1, 1], [3.0, 2.0, 1.0], **TRAIN)


def test_time_dependent_auc_at_a_month() -> None:
    train = {"train_time_months": np.arange(1.0, 7.0), "train_event": np.ones(6)}  # uncensored: G = 1
    months, died = [1.0, 2.0, 3.0, 4.0], [1, 1, 0, 1]
    # At 2.5 months, cases 1.0 and 2.0 against controls 3.0 and 4.0: risks 4 and 2.5 against 3 and 1 give
    # three ordered pairs of four.
    risk = [4.0, 2.5, 3.0, 1.0]
    assert time_dependent_auc(months, died, risk, month=2.5, **train) == pytest.approx(0.75)
    # A death after the training follow-up (8 > 6 months) is a control at 2.5 months: no weight needed.
    assert time_dependent_auc([1.0, 2.0, 3.0, 8.0], died, risk, month=2.5, **train) == pytest.approx(0.75)
    assert math.isnan(time_dependent_auc(months, died, risk, month=4.5, **train))  # past follow-up
    assert math.isnan(time_dependent_auc(months, [0, 0, 0, 1], risk, month=2.5, **train))  # no case


def test_survival_estimates_bundle() -> None:
    rng = np.random.default_rng(0)
    risk = rng.normal(size=100)
    months = rng.exponential(30.0 * np.exp(-risk))  # higher risk, shorter survival
    censored_at = rng.uniform(6.0, 60.0, 100)
    time, died = np.minimum(months, censored_at), months <= censored_at
    train, test = slice(0, 70), slice(70, 100)
    estimates = survival_estimates(
        np.arange(30),
        time[test],
        died[test],
        risk[test],
        train_time_months=time[train],
        train_event=died[train],
        months=(12, 24),
        tau_months=40.0,
        n_boot=100,
    )
    assert set(estimates) == {"harrell_c", "uno_c", "auc_12m", "auc_24m"}
    for estimate in estimates.values():
        assert 0.5 < estimate.value <= 1.0
        assert estimate.low <= estimate.value <= estimate.high
