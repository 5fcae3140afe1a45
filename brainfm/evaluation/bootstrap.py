"""Confidence intervals for reported metrics: a patient-level bootstrap, and a t-interval over seeds.

Every number of stage 3 is computed on held-out patients. Rows (slices, studies) of one patient are
correlated, so the resampling unit is the patient: a drawn patient brings all its rows, and a patient drawn
twice counts twice. A metric signals "undefined on this sample" (one class only for an AUC, no empty-truth
study for a false-positive rate) by returning NaN; such bootstrap replicates are skipped and counted.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import stats

Metric = Callable[..., float]


@dataclass(frozen=True)
class Estimate:
    """A metric with its confidence interval.

    value: the metric on the whole held-out set (or the mean over seeds). low, high: the interval bounds
    (95 % unless stated). n_patients: held-out patients behind each value (None where the caller did not say).
    n_boot: bootstrap replicates used (0 for the t-interval); n_skipped: replicates where the metric was
    undefined; n_seeds: training seeds averaged (1 for a single run).
    """

    value: float
    low: float
    high: float
    n_patients: int | None
    n_boot: int
    n_skipped: int = 0
    n_seeds: int = 1

    def format(self, digits: int = 3) -> str:
        """``value (low–high)``, the form of the result tables."""
        return f"{self.value:.{digits}f} ({self.low:.{digits}f}–{self.high:.{digits}f})"


def _check_confidence(confidence: float) -> None:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie in (0, 1), e.g. 0.95; got {confidence}")


def defined_mean(values: npt.ArrayLike) -> float:
    """Mean over the defined (non-NaN) rows; NaN when there are none, which `patient_bootstrap` skips."""
    array = np.asarray(values, dtype=float)
    defined = array[~np.isnan(array)]
    return float(defined.mean()) if defined.size else float("nan")


def patient_bootstrap(
    metric: Metric,
    patients: npt.ArrayLike,
    *arrays: npt.ArrayLike,
    n_boot: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> Estimate:
    """``metric(*arrays)`` with a percentile interval from resampling patients with replacement.

    ``patients`` holds one patient key per row; every array has one entry (first axis) per row. Each
    replicate draws as many patients as there are, takes all rows of each draw, and evaluates the metric on
    those rows; replicates where it returns NaN are skipped and counted in ``n_skipped``. Deterministic under
    ``seed``. Raises ValueError when the metric is undefined on the whole set or on every replicate.
    """
    if n_boot < 1:
        raise ValueError(f"n_boot must be at least 1 (1000 is usual), got {n_boot}")
    _check_confidence(confidence)
    keys = np.asarray(patients)
    columns = [np.asarray(a) for a in arrays]
    for i, column in enumerate(columns):
        if len(column) != len(keys):
            raise ValueError(
                f"array {i} has {len(column)} rows but patients has {len(keys)}: pass one patient key per row"
            )
    value = float(metric(*columns))
    if math.isnan(value):
        raise ValueError(
            "the metric is undefined on the whole held-out set (e.g. one class only, no event, empty "
            "masks); check the held-out labels before asking for its interval"
        )
    _, codes = np.unique(keys, return_inverse=True)
    counts = np.bincount(codes)
    order = np.argsort(codes, kind="stable")  # rows grouped by patient, each group contiguous
    starts = np.cumsum(counts) - counts
    # scipy.stats.bootstrap resamples rows, not clusters, and cannot skip undefined replicates: hand-written.
    rng = np.random.default_rng(seed)
    replicates: list[float] = []
    for _ in range(n_boot):
        drawn = rng.integers(0, len(counts), size=len(counts))
        lengths = counts[drawn]
        # Row positions inside each drawn patient's block, so that a block is taken whole.
        within = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        rows = order[np.repeat(starts[drawn], lengths) + within]
        replicate = float(metric(*(column[rows] for column in columns)))
        if not math.isnan(replicate):
            replicates.append(replicate)
    if not replicates:
        raise ValueError(f"the metric was undefined on all {n_boot} bootstrap replicates: too few patients")
    tail = 50.0 * (1.0 - confidence)
    low, high = np.percentile(replicates, [tail, 100.0 - tail])
    return Estimate(value, float(low), float(high), len(counts), len(replicates), n_boot - len(replicates))


def mean_ci(values: Sequence[float], n_patients: int | None = None, confidence: float = 0.95) -> Estimate:
    """Mean over training seeds with a Student-t interval (the label-efficiency convention: 3 seeds).

    ``n_patients`` is the held-out set behind each value, recorded for the table; it does not enter the
    interval, which reflects seed-to-seed variation only.
    """
    _check_confidence(confidence)
    sample = np.asarray(values, dtype=float)
    if sample.size < 2 or not np.isfinite(sample).all():
        raise ValueError(f"mean_ci needs at least two finite values (one per seed), got {list(sample)}")
    mean = float(sample.mean())
    # scipy returns NaN bounds for a zero scale: identical seeds give a zero-width interval instead.
    low, high = (
        stats.t.interval(confidence, df=sample.size - 1, loc=mean, scale=stats.sem(sample))
        if np.ptp(sample) > 0
        else (mean, mean)
    )
    return Estimate(mean, float(low), float(high), n_patients, n_boot=0, n_seeds=int(sample.size))
