"""Patient bootstrap and the t-interval over seeds, against known values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from brainfm.evaluation import Estimate, mean_ci, patient_bootstrap


def test_interval_of_a_known_mean_covers_it_about_95_percent_of_the_time() -> None:
    rng = np.random.default_rng(7)
    covered = [
        estimate.low < 5.0 < estimate.high
        for estimate in (
            patient_bootstrap(np.mean, np.arange(50), rng.normal(5.0, 1.0, 50), n_boot=200, seed=i)
            for i in range(100)
        )
    ]
    assert 0.88 <= np.mean(covered) <= 0.99


def test_interval_of_a_mean_has_the_normal_width_and_is_deterministic() -> None:
    sample = np.random.default_rng(7).normal(5.0, 1.0, 200)
    patients = np.arange(sample.size)
    estimate = patient_bootstrap(np.mean, patients, sample, n_boot=500, seed=1)
    assert estimate.value == pytest.approx(sample.mean())
    assert estimate.low < estimate.value < estimate.high
    # The percentile interval of a mean is close to the normal one: ±1.96 σ/√n.
    normal_width = 2 * 1.96 * sample.std(ddof=1) / math.sqrt(sample.size)
    assert estimate.high - estimate.low == pytest.approx(normal_width, rel=0.2)
    assert (estimate.n_patients, estimate.n_boot, estimate.n_skipped) == (200, 500, 0)
    assert patient_bootstrap(np.mean, patients, sample, n_boot=500, seed=1) == estimate
    assert patient_bootstrap(np.mean, patients, sample, n_boot=500, seed=2) != estimate


def test_a_patient_with_many_rows_moves_as_one_block() -> None:
    # Patient "p0" has 100 rows of 1; nine patients have one row of 0 each.
    patients = np.array(["p0"] * 100 + [f"p{i}" for i in range(1, 10)])
    values = np.array([1.0] * 100 + [0.0] * 9)
    rows_of_p0: list[int] = []
    sizes: list[int] = []

    def mean_recording(x: np.ndarray) -> float:
        rows_of_p0.append(int(x.sum()))
        sizes.append(x.size)
        return float(x.mean())

    patient_bootstrap(mean_recording, patients, values, n_boot=300, seed=0)
    replicates = list(zip(rows_of_p0[1:], sizes[1:], strict=True))  # the first call is the whole set
    assert all(ones % 100 == 0 for ones, _ in replicates)  # p0 comes with all of its rows, or not at all
    assert all(size == ones + 10 - ones // 100 for ones, size in replicates)  # 10 patients drawn each time
    assert {0, 100, 200} <= {ones for ones, _ in replicates}  # absent, once, twice (counted twice)


def test_replicates_where_the_metric_is_undefined_are_skipped_and_counted() -> None:
    def defined_with_two_classes(y: np.ndarray) -> float:
        return float(y.mean()) if np.unique(y).size == 2 else float("nan")

    # Two patients of different classes: half of the resamples draw the same patient twice.
    estimate = patient_bootstrap(defined_with_two_classes, ["a", "a", "b"], [0, 0, 1], n_boot=400, seed=3)
    assert estimate.n_boot + estimate.n_skipped == 400
    assert 0.4 < estimate.n_skipped / 400 < 0.6
    assert estimate.low == estimate.high == pytest.approx(1 / 3)  # every defined resample is {a, b}


def test_undefined_on_the_whole_set_and_mismatched_rows_are_refused() -> None:
    with pytest.raises(ValueError, match="undefined on the whole held-out set"):
        patient_bootstrap(lambda y: float("nan"), [1, 2], [0, 1])
    with pytest.raises(ValueError, match="one patient key per row"):
        patient_bootstrap(np.mean, [1, 2, 3], [0.0, 1.0])


def test_mean_over_seeds_uses_the_student_t_interval() -> None:
    estimate = mean_ci([1.0, 2.0, 3.0], n_patients=40)
    half_width = 4.302653 * 1.0 / math.sqrt(3)  # t(0.975, df=2) × s/√n, s = 1
    assert estimate == Estimate(
        2.0, pytest.approx(2.0 - half_width), pytest.approx(2.0 + half_width), 40, n_boot=0, n_seeds=3
    )
    assert estimate.format(2) == "2.00 (-0.48–4.48)"
    same = mean_ci([0.8, 0.8, 0.8])
    assert same.low == same.value == same.high == pytest.approx(0.8)
    with pytest.raises(ValueError, match="at least two finite values"):
        mean_ci([0.8])
