"""Classification and grading metrics (scikit-learn), each available with a patient-bootstrap interval.

Every metric returns NaN where it is undefined on a sample (one class only), which `patient_bootstrap`
counts as a skipped replicate.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from sklearn.calibration import calibration_curve
from sklearn.metrics import accuracy_score, brier_score_loss, cohen_kappa_score, f1_score, roc_auc_score

from brainfm.evaluation.bootstrap import Estimate, Metric, patient_bootstrap


def accuracy(y_true: npt.ArrayLike, y_pred: npt.ArrayLike) -> float:
    """Share of correct predictions."""
    return float(accuracy_score(y_true, y_pred))


def macro_f1(y_true: npt.ArrayLike, y_pred: npt.ArrayLike) -> float:
    """Unweighted mean F1 over the classes present in the truth or the predictions of this sample."""
    return float(f1_score(y_true, y_pred, average="macro"))


def ovr_macro_auc(y_true: npt.ArrayLike, proba: npt.ArrayLike, classes: Sequence[object]) -> float:
    """One-vs-rest ROC AUC averaged over the classes present in ``y_true``.

    ``proba`` is (n, len(classes)), column j scoring ``classes[j]``. A class absent from the sample (a
    bootstrap resample can miss a rare class) has no AUC and is left out of the mean; NaN with fewer than
    two classes present. For two classes with rows summing to 1 this is the binary ROC AUC.
    """
    truth = np.asarray(y_true)
    scores = np.asarray(proba, dtype=float)
    if scores.ndim != 2 or scores.shape != (len(truth), len(classes)):
        raise ValueError(f"proba must be (n, {len(classes)}) = one column per class, got {scores.shape}")
    unknown = set(np.unique(truth).tolist()) - set(classes)
    if unknown:
        raise ValueError(f"labels {sorted(unknown)} are not in classes {list(classes)}")
    # roc_auc_score(multi_class="ovr") refuses a sample that lacks a class; average per present class instead.
    aucs = [
        roc_auc_score(truth == c, scores[:, j])
        for j, c in enumerate(classes)
        if 0 < (truth == c).sum() < len(truth)
    ]
    return float(np.mean(aucs)) if len(aucs) >= 2 else float("nan")


def quadratic_kappa(y_true: npt.ArrayLike, y_pred: npt.ArrayLike) -> float:
    """Quadratic-weighted Cohen's kappa for ordinal grades; NaN when truth and prediction share one grade."""
    if np.union1d(np.asarray(y_true), np.asarray(y_pred)).size < 2:
        return float("nan")
    return float(cohen_kappa_score(y_true, y_pred, weights="quadratic"))


def brier(y_true: npt.ArrayLike, prob: npt.ArrayLike) -> float:
    """Brier score of a binary probability (mean squared error against 0/1; lower is better)."""
    return float(brier_score_loss(y_true, prob))


@dataclass(frozen=True)
class Calibration:
    """Reliability curve of a binary probability: per non-empty bin, mean predicted and observed frequency."""

    prob_pred: np.ndarray
    prob_true: np.ndarray
    brier: float
    n_bins: int


def calibration(
    y_true: npt.ArrayLike, prob: npt.ArrayLike, n_bins: int = 10, strategy: str = "uniform"
) -> Calibration:
    """Calibration curve (``sklearn.calibration.calibration_curve``) and Brier score of a binary probability.

    ``strategy="quantile"`` gives equally populated bins, better for a small held-out set.
    """
    prob_true, prob_pred = calibration_curve(y_true, prob, n_bins=n_bins, strategy=strategy)
    return Calibration(prob_pred, prob_true, brier(y_true, prob), n_bins)


def classification_estimates(
    patients: npt.ArrayLike,
    y_true: npt.ArrayLike,
    proba: npt.ArrayLike,
    classes: Sequence[object] = (0, 1),
    *,
    ordinal: bool = False,
    n_boot: int = 1000,
    seed: int = 0,
) -> dict[str, Estimate]:
    """Every classification metric of a held-out set, each with its patient-bootstrap interval.

    ``proba`` is (n, len(classes)), or (n,) for a binary task (the probability of ``classes[1]``). The
    prediction is the most probable class. Keys: ``accuracy``, ``macro_f1``, ``auc`` (one-vs-rest macro),
    ``qwk`` when ``ordinal`` (``classes`` in grade order), ``brier`` for two classes. All metrics use the
    same seed, hence the same patient resamples.
    """
    scores = np.asarray(proba, dtype=float)
    if scores.ndim == 1:
        scores = np.column_stack([1.0 - scores, scores])
    labels = np.asarray(classes)
    y_pred = labels[np.argmax(scores, axis=1)]
    metrics: dict[str, tuple[Metric, tuple[npt.ArrayLike, ...]]] = {
        "accuracy": (accuracy, (y_true, y_pred)),
        "macro_f1": (macro_f1, (y_true, y_pred)),
        "auc": (lambda t, p: ovr_macro_auc(t, p, classes), (y_true, scores)),
    }
    if ordinal:
        metrics["qwk"] = (quadratic_kappa, (y_true, y_pred))
    if len(classes) == 2:
        metrics["brier"] = (brier, (np.asarray(y_true) == classes[1], scores[:, 1]))
    return {
        name: patient_bootstrap(metric, patients, *arrays, n_boot=n_boot, seed=seed)
        for name, (metric, arrays) in metrics.items()
    }
