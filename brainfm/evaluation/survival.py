"""Prognosis metrics: Harrell's and Uno's C-index and time-dependent AUC, times in months.

``risk`` is any score where higher means earlier death (a Cox linear predictor). Uno's C and the
time-dependent AUC weight test patients by the inverse probability of being uncensored, estimated
(Kaplan–Meier) from the TRAINING set's follow-up, as scikit-survival prescribes. Each metric returns NaN
where it is undefined on a sample (no event, no comparable pair), which `patient_bootstrap` skips.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial

import numpy as np
import numpy.typing as npt
from lifelines.utils import concordance_index
from sksurv.exceptions import NoComparablePairException
from sksurv.metrics import concordance_index_ipcw, cumulative_dynamic_auc
from sksurv.util import Surv

from brainfm.evaluation.bootstrap import Estimate, patient_bootstrap


def harrell_c(time_months: npt.ArrayLike, event: npt.ArrayLike, risk: npt.ArrayLike) -> float:
    """Harrell's C-index (lifelines); NaN when no pair is comparable (e.g. no event)."""
    try:
        # lifelines scores concordance with survival time: a higher score means LONGER survival, so negate.
        return float(concordance_index(time_months, -np.asarray(risk, dtype=float), event))
    except ZeroDivisionError:  # lifelines' signal for "no admissible pairs"
        return float("nan")


def _ipcw(
    metric: Callable[..., tuple],
    train_time_months: npt.ArrayLike,
    train_event: npt.ArrayLike,
    time: np.ndarray,
    died: np.ndarray,
    risk: npt.ArrayLike,
    **options: object,
) -> tuple:
    """Call a scikit-survival IPCW metric; turn its refusals of the censoring weights into a useful error."""
    train = np.asarray(train_time_months, dtype=float)
    try:
        return metric(
            Surv.from_arrays(np.asarray(train_event, dtype=bool), train),
            Surv.from_arrays(died, time),
            np.asarray(risk, dtype=float),
            **options,
        )
    except NoComparablePairException:
        raise
    except ValueError as error:
        raise ValueError(
            f"scikit-survival refused the censoring weights: {error}. They are estimated from the training "
            "set, which needs an event and follow-up beyond the test times used (it ends at "
            f"{train.max():.1f} months): pass tau_months / months below that"
        ) from error


def uno_c(
    time_months: npt.ArrayLike,
    event: npt.ArrayLike,
    risk: npt.ArrayLike,
    *,
    train_time_months: npt.ArrayLike,
    train_event: npt.ArrayLike,
    tau_months: float | None = None,
) -> float:
    """Uno's IPCW C-index (``sksurv.metrics.concordance_index_ipcw``), truncated at ``tau_months``.

    NaN when the test sample has no event before ``tau_months`` or no comparable pair.
    """
    time = np.asarray(time_months, dtype=float)
    died = np.asarray(event, dtype=bool)
    horizon = np.inf if tau_months is None else tau_months
    if not (died & (time < horizon)).any():
        return float("nan")
    try:
        result = _ipcw(
            concordance_index_ipcw, train_time_months, train_event, time, died, risk, tau=tau_months
        )
    except NoComparablePairException:
        return float("nan")
    return float(result[0])


def time_dependent_auc(
    time_months: npt.ArrayLike,
    event: npt.ArrayLike,
    risk: npt.ArrayLike,
    *,
    month: float,
    train_time_months: npt.ArrayLike,
    train_event: npt.ArrayLike,
) -> float:
    """Cumulative/dynamic AUC at ``month`` (``sksurv.metrics.cumulative_dynamic_auc``).

    Cases died by ``month``, controls were still followed after it. NaN when the sample has no case or no
    control, or ``month`` lies outside its follow-up.
    """
    time = np.asarray(time_months, dtype=float)
    died = np.asarray(event, dtype=bool)
    cases = died & (time <= month)
    if not (cases.any() and (time > month).any() and time.min() <= month):
        return float("nan")
    # Deaths after `month` are controls at `month` whatever their weight; marking them censored spares them
    # IPCW weights, so test follow-up may outlast the training set's.
    auc, _ = _ipcw(cumulative_dynamic_auc, train_time_months, train_event, time, cases, risk, times=[month])
    return float(auc[0])


def survival_estimates(
    patients: npt.ArrayLike,
    time_months: npt.ArrayLike,
    event: npt.ArrayLike,
    risk: npt.ArrayLike,
    *,
    train_time_months: npt.ArrayLike,
    train_event: npt.ArrayLike,
    months: Sequence[float] = (12.0, 24.0),
    tau_months: float | None = None,
    n_boot: int = 1000,
    seed: int = 0,
) -> dict[str, Estimate]:
    """Harrell's C, Uno's C and the time-dependent AUC at each of ``months``, with patient-bootstrap CIs.

    Keys: ``harrell_c``, ``uno_c``, ``auc_<m>m`` (e.g. ``auc_24m``). The training follow-up stays fixed
    across replicates (it only supplies the censoring weights); all metrics share the seed's resamples.
    """
    train = {"train_time_months": train_time_months, "train_event": train_event}
    metrics: dict[str, Callable[..., float]] = {
        "harrell_c": harrell_c,
        "uno_c": partial(uno_c, tau_months=tau_months, **train),
    }
    metrics.update({f"auc_{m:g}m": partial(time_dependent_auc, month=m, **train) for m in months})
    return {
        name: patient_bootstrap(metric, patients, time_months, event, risk, n_boot=n_boot, seed=seed)
        for name, metric in metrics.items()
    }
