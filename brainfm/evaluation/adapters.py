"""Scores of the stage-3 study adapters from their held-out predictions (one row per test study, truth and
prediction columns as `models.heads.experiments.fit_study_task` returns them), each with a patient-bootstrap
95 % CI, and the predictions of the naive baselines the tables compare against.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from brainfm.evaluation.bootstrap import Estimate, Metric, defined_mean, patient_bootstrap
from brainfm.evaluation.classification import accuracy, classification_estimates, quadratic_kappa
from brainfm.evaluation.survival import harrell_c, survival_estimates

CLASS_OUTPUTS: tuple[str, ...] = ("category", "subtype")
SURVIVAL_MONTHS: tuple[float, ...] = (12.0, 24.0)  # time-dependent AUC horizons


def class_probabilities(predictions: pd.DataFrame, output: str) -> tuple[list[str], np.ndarray]:
    """The classes of an output (`category`, `subtype`) and their probabilities (n, K) from the
    ``p_<output>_<class>`` columns."""
    prefix = f"p_{output}_"
    columns = [c for c in predictions.columns if c.startswith(prefix)]
    if not columns:
        raise ValueError(f"no {prefix}* columns: pass the predictions of a classification run")
    return [c[len(prefix) :] for c in columns], predictions[columns].to_numpy(dtype=float)


def classification_scores(
    predictions: pd.DataFrame, n_boot: int = 1000, seed: int = 0
) -> dict[str, Estimate]:
    """Accuracy, macro-F1 and one-vs-rest AUC of category and subtype (keys ``<output>_<metric>``)."""
    scores: dict[str, Estimate] = {}
    for output in CLASS_OUTPUTS:
        classes, proba = class_probabilities(predictions, output)
        found = classification_estimates(
            predictions["patient"], predictions[output], proba, classes, n_boot=n_boot, seed=seed
        )
        scores |= {f"{output}_{k}": v for k, v in found.items()}
    return scores


def majority_predictions(train: pd.DataFrame, test: pd.DataFrame) -> pd.DataFrame:
    """The most-frequent baseline: every test study gets the training class frequencies as its probabilities
    (its predicted class is the training majority), per output."""
    out = test.copy()
    for output in CLASS_OUTPUTS:
        frequencies = train[output].value_counts(normalize=True)
        for name in sorted(set(train[output]) | set(test[output])):
            out[f"p_{output}_{name}"] = float(frequencies.get(name, 0.0))
    return out


def grade_levels(predictions: pd.DataFrame, scales: Mapping[str, Sequence[str]]) -> tuple[np.ndarray, np.ndarray]:
    """True and predicted level indices (0 = lowest grade) of each graded study on its own scale (the
    ``grade_<subtype>`` column holds the prediction)."""
    true, pred = [], []
    for _, row in predictions.iterrows():
        levels = list(scales[row["subtype"]])
        true.append(levels.index(row["grade"]))
        pred.append(levels.index(row[f"grade_{row['subtype']}"]))
    return np.asarray(true), np.asarray(pred)


def grading_scores(
    predictions: pd.DataFrame, scales: Mapping[str, Sequence[str]], n_boot: int = 1000, seed: int = 0
) -> dict[str, Estimate]:
    """Exact-grade accuracy and quadratic-weighted kappa over the graded test studies. The scales are pooled
    by level index (0 = lowest grade of each scale): with a handful of graded studies per scale, per-scale
    kappas would be undefined in most resamples."""
    true, pred = grade_levels(predictions, scales)
    patients = predictions["patient"]
    return {
        "grade_accuracy": patient_bootstrap(accuracy, patients, true, pred, n_boot=n_boot, seed=seed),
        "grade_qwk": patient_bootstrap(quadratic_kappa, patients, true, pred, n_boot=n_boot, seed=seed),
    }


def majority_grades(train: pd.DataFrame, test: pd.DataFrame, scales: Mapping[str, Sequence[str]]) -> pd.DataFrame:
    """The most-frequent baseline: every graded test study gets its scale's most frequent training grade
    (the lowest level where training has none)."""
    out = test.copy()
    for subtype, levels in scales.items():
        seen = train.loc[train["subtype"] == subtype, "grade"].dropna()
        out[f"grade_{subtype}"] = seen.mode().sort_values().iloc[0] if len(seen) else levels[0]
    return out


def prognosis_scores(
    predictions: pd.DataFrame, train: pd.DataFrame, n_boot: int = 1000, seed: int = 0
) -> dict[str, Estimate]:
    """Harrell's and Uno's C-index and time-dependent AUC at `SURVIVAL_MONTHS` of ``risk`` (censoring
    weights from the training outcomes), and AUC and Brier score of ``p_metastasis`` (keys
    ``metastasis_<metric>``; left out when the held-out patients have only one outcome)."""
    scores = survival_estimates(
        predictions["patient"], predictions["survival_months"], predictions["event"], predictions["risk"],
        train_time_months=train["survival_months"], train_event=train["event"], months=SURVIVAL_MONTHS,
        n_boot=n_boot, seed=seed,
    )
    if predictions["metastasis"].nunique() < 2:  # no AUC without both outcomes among the held-out patients
        return scores
    metastasis = classification_estimates(
        predictions["patient"], predictions["metastasis"].astype(int), predictions["p_metastasis"], (0, 1),
        n_boot=n_boot, seed=seed,
    )
    return scores | {f"metastasis_{k}": metastasis[k] for k in ("auc", "brier")}


def task_scores(
    task: str,
    predictions: pd.DataFrame,
    train: pd.DataFrame,
    scales: Mapping[str, Sequence[str]],
    n_boot: int = 1000,
    seed: int = 0,
) -> dict[str, Estimate]:
    """The scores of one study task (`classification`, `grading`, `prognosis`) from its held-out predictions."""
    if task == "classification":
        return classification_scores(predictions, n_boot=n_boot, seed=seed)
    if task == "grading":
        return grading_scores(predictions, scales, n_boot=n_boot, seed=seed)
    if task == "prognosis":
        return prognosis_scores(predictions, train, n_boot=n_boot, seed=seed)
    raise ValueError(f"unknown study task {task!r}; choose classification, grading or prognosis")


def primary_metric(
    task: str, predictions: pd.DataFrame, scales: Mapping[str, Sequence[str]]
) -> tuple[Metric, tuple[np.ndarray, ...]]:
    """A task's headline metric and the per-row arrays it reads: category accuracy (classification), exact-grade
    accuracy (grading), Harrell's C of ``risk`` (prognosis), or the mean whole-lesion Dice over the volumes
    with a lesion (segmentation: one row per volume, ``dice_whole`` NaN where the truth is empty)."""
    if task == "classification":
        classes, proba = class_probabilities(predictions, "category")
        return accuracy, (predictions["category"].to_numpy(), np.asarray(classes)[np.argmax(proba, axis=1)])
    if task == "grading":
        return accuracy, grade_levels(predictions, scales)
    if task == "prognosis":
        columns = ("survival_months", "event", "risk")
        return harrell_c, tuple(predictions[c].to_numpy(dtype=float) for c in columns)
    if task == "segmentation":
        return defined_mean, (predictions["dice_whole"].to_numpy(dtype=float),)
    raise ValueError(f"unknown task {task!r}; choose classification, grading, prognosis or segmentation")


def paired_lead(
    task: str,
    runs: Sequence[tuple[pd.DataFrame, pd.DataFrame]],
    scales: Mapping[str, Sequence[str]],
    n_boot: int = 1000,
    seed: int = 0,
) -> Estimate:
    """How far variant A leads variant B on the same held-out patients: the mean over runs (seeds) of
    ``primary(A) - primary(B)`` (`primary_metric`), with a 95 % patient-bootstrap interval in which a drawn
    patient brings its rows of every run and of both variants.

    ``runs`` holds one (A, B) pair of held-out prediction frames per seed, both over the same patients (the
    seeds differ in their training labels, not in the held-out set). Pairing removes the between-patient
    variation the two variants share, so the interval is about the held-out patients; the seeds' spread is
    averaged, not resampled (three seeds cannot be), so report it beside this interval.
    """
    if not runs:
        raise ValueError("paired_lead needs at least one (A, B) pair of prediction frames")
    for k, (a, b) in enumerate(runs):
        if set(a["patient"]) != set(b["patient"]):
            raise ValueError(f"run {k}: the two variants were scored on different patients; pair runs of the same "
                             "held-out set")
    frames = [frame for pair in runs for frame in pair]
    parts = [primary_metric(task, frame, scales) for frame in frames]
    group = np.repeat(np.arange(len(frames)), [len(f) for f in frames])
    local = np.concatenate([np.arange(len(f)) for f in frames])

    def lead(drawn_group: np.ndarray, drawn_row: np.ndarray) -> float:
        values = [metric(*(a[drawn_row[drawn_group == k]] for a in arrays))
                  for k, (metric, arrays) in enumerate(parts)]
        return float(np.mean(np.subtract(values[0::2], values[1::2])))

    patients = np.concatenate([f["patient"].to_numpy() for f in frames])
    return patient_bootstrap(lead, patients, group, local, n_boot=n_boot, seed=seed)


def baseline_scores(
    task: str,
    train: pd.DataFrame,
    test: pd.DataFrame,
    scales: Mapping[str, Sequence[str]],
    clinical: Mapping[str, np.ndarray] | None = None,
    oracle: pd.DataFrame | None = None,
    n_boot: int = 1000,
    seed: int = 0,
) -> dict[str, dict[str, Estimate]]:
    """The baselines each task names, scored on the same held-out studies `test` (one row per study, truth
    columns): most frequent (classification, grading); for prognosis the clinical-variables-only model's
    predictions `clinical` (``risk``, ``p_metastasis`` per test row) and, on a synthetic cohort, the generating
    `oracle` (one row per patient: ``patient``, ``true_linear_predictor``, ``true_metastasis_probability``)."""
    if task == "classification":
        return {"most-frequent": classification_scores(majority_predictions(train, test), n_boot=n_boot, seed=seed)}
    if task == "grading":
        graded = test[test["subtype"].isin(list(scales)) & test["grade"].notna()]
        guess = majority_grades(train[train["grade"].notna()], graded, scales)
        return {"most-frequent": grading_scores(guess, scales, n_boot=n_boot, seed=seed)}
    if task != "prognosis":
        raise ValueError(f"unknown study task {task!r}; choose classification, grading or prognosis")
    if clinical is None:
        raise ValueError("prognosis baselines need the clinical-only model's predictions (`clinical`)")
    found = {"clinical-only": prognosis_scores(test.assign(**clinical), train, n_boot=n_boot, seed=seed)}
    if oracle is not None:
        truth = oracle.set_index("patient")
        synthetic = test.assign(
            risk=test["patient"].map(truth["true_linear_predictor"]).to_numpy(),
            p_metastasis=test["patient"].map(truth["true_metastasis_probability"]).to_numpy(),
        )
        found["oracle (synthetic)"] = prognosis_scores(synthetic, train, n_boot=n_boot, seed=seed)
    return found
