"""Per-study Dice and HD95 (mm) of lesion label volumes with `monai.metrics`, and their patient-bootstrap CIs.

Volumes are (slices, rows, columns) label arrays (0 background, 1 lesion, 2 oedema, 3 necrosis), the slices
of one series stacked in slice_index order, with spacing (slice_mm, pixel_mm, pixel_mm). Scored structures:
each label, and the whole lesion (label > 0). This module imports torch (through monai); the rest of
`brainfm.evaluation` does not.

Empty masks, defined here rather than left to MONAI's NaN/inf:
- empty truth: Dice and HD95 are undefined (NaN) and the study is left out of their means; it counts for the
  false-positive rate instead (share of empty-truth studies whose prediction is not empty);
- non-empty truth, empty prediction: Dice 0 and HD95 the volume's diagonal in mm (the worst distance the
  grid allows), counted in ``hd95_capped``.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import torch
from monai.metrics import DiceMetric, HausdorffDistanceMetric

from brainfm.evaluation.bootstrap import Estimate, defined_mean, patient_bootstrap

STRUCTURES: dict[str, tuple[int, ...]] = {
    "lesion": (1,),
    "oedema": (2,),
    "necrosis": (3,),
    "whole": (1, 2, 3),
}


@dataclass(frozen=True)
class SegmentationScores:
    """Per-study scores, one row per study and one column per entry of `STRUCTURES`.

    dice, hd95_mm: float (NaN where the truth is empty). truth_empty, pred_empty: bool. hd95_capped: bool,
    True where the prediction was empty and HD95 was set to the volume diagonal.
    """

    dice: np.ndarray
    hd95_mm: np.ndarray
    truth_empty: np.ndarray
    pred_empty: np.ndarray
    hd95_capped: np.ndarray

    def counts(self) -> dict[str, int]:
        """Per structure: studies with an empty truth, false positives among them, and capped HD95s."""
        false_positive = self.truth_empty & ~self.pred_empty
        result: dict[str, int] = {}
        for k, name in enumerate(STRUCTURES):
            result[f"n_empty_truth_{name}"] = int(self.truth_empty[:, k].sum())
            result[f"n_false_positive_{name}"] = int(false_positive[:, k].sum())
            result[f"n_hd95_capped_{name}"] = int(self.hd95_capped[:, k].sum())
        return result


def _structure_masks(labels: np.ndarray) -> np.ndarray:
    """(structures, *spatial) boolean masks, one per entry of `STRUCTURES` (no background channel)."""
    return np.stack([np.isin(labels, values) for values in STRUCTURES.values()])


def score_studies(
    predictions: Sequence[npt.ArrayLike],
    truths: Sequence[npt.ArrayLike],
    spacings_mm: Sequence[tuple[float, float, float]],
) -> SegmentationScores:
    """Dice and HD95 in mm of each study's predicted label volume against its truth (module docstring)."""
    if not len(predictions) == len(truths) == len(spacings_mm) > 0:
        raise ValueError(
            f"got {len(predictions)} predictions, {len(truths)} truths and {len(spacings_mm)} spacings: "
            "pass one of each per study"
        )
    # Background is not a channel, so include_background=True scores every structure.
    dice_metric = DiceMetric(include_background=True, reduction="none", ignore_empty=True)
    hd_metric = HausdorffDistanceMetric(include_background=True, percentile=95, reduction="none")
    diagonals, truth_empty, pred_empty = [], [], []
    for prediction, truth, spacing in zip(predictions, truths, spacings_mm, strict=True):
        pred_labels, true_labels = np.asarray(prediction), np.asarray(truth)
        if pred_labels.shape != true_labels.shape or pred_labels.ndim != 3:
            raise ValueError(
                f"prediction {pred_labels.shape} and truth {true_labels.shape} must be the same 3-D "
                "(slices, rows, columns) volume"
            )
        pred_masks, true_masks = _structure_masks(pred_labels), _structure_masks(true_labels)
        y_pred, y = (torch.from_numpy(m[None].astype(np.float32)) for m in (pred_masks, true_masks))
        dice_metric(y_pred=y_pred, y=y)
        with warnings.catch_warnings():
            # Empty masks are handled below: MONAI's warnings about them (and a deprecation notice) are noise.
            warnings.filterwarnings("ignore", message=".* is all 0", category=UserWarning)
            warnings.filterwarnings("ignore", category=FutureWarning, module="monai")
            hd_metric(y_pred=y_pred, y=y, spacing=tuple(float(s) for s in spacing))
        diagonals.append(float(np.linalg.norm(np.multiply(pred_labels.shape, spacing))))
        truth_empty.append(~true_masks.reshape(len(STRUCTURES), -1).any(axis=1))
        pred_empty.append(~pred_masks.reshape(len(STRUCTURES), -1).any(axis=1))
    empty_truth, empty_pred = np.array(truth_empty), np.array(pred_empty)
    capped = ~empty_truth & empty_pred
    hd95 = hd_metric.get_buffer().numpy().astype(float)
    hd95 = np.where(capped, np.array(diagonals)[:, None], hd95)
    hd95[empty_truth] = np.nan
    dice = dice_metric.get_buffer().numpy().astype(float)
    dice[empty_truth] = np.nan
    return SegmentationScores(dice, hd95, empty_truth, empty_pred, capped)


def series_spacings_mm(slice_mm: Sequence[float], pixel_mm: Sequence[float]) -> list[tuple[float, float, float]]:
    """(slice, row, column) spacing in mm per scored volume from its slice and in-plane pixel spacing; a
    volume without a recorded spacing (NaN: no lesion slice was mapped) gets 1 mm, which its Dice does not use
    and its HD95 (undefined without a lesion) never reads."""
    return [(s if np.isfinite(s) else 1.0, p if np.isfinite(p) else 1.0, p if np.isfinite(p) else 1.0)
            for s, p in zip(slice_mm, pixel_mm, strict=True)]


def _false_positive_rate(truth_empty: np.ndarray, pred_empty: np.ndarray) -> float:
    """Share of empty-truth studies with a non-empty prediction; NaN without an empty-truth study."""
    return float((~pred_empty[truth_empty]).mean()) if truth_empty.any() else float("nan")


def segmentation_estimates(
    patients: npt.ArrayLike, scores: SegmentationScores, n_boot: int = 1000, seed: int = 0
) -> dict[str, Estimate]:
    """Mean Dice, mean HD95 (mm) and false-positive rate per structure, with patient-bootstrap CIs.

    ``patients`` has one key per study (row of ``scores``). Keys ``dice_<structure>``, ``hd95_mm_<structure>``
    and ``fp_rate_<structure>``; a metric undefined on the whole set (a structure absent from every truth has
    no Dice; one present in every truth has no false-positive rate) is left out; `SegmentationScores.counts`
    says why.
    """
    result: dict[str, Estimate] = {}
    for k, name in enumerate(STRUCTURES):
        empty = scores.truth_empty[:, k]
        if not empty.all():
            for key, values in (("dice", scores.dice[:, k]), ("hd95_mm", scores.hd95_mm[:, k])):
                result[f"{key}_{name}"] = patient_bootstrap(
                    defined_mean, patients, values, n_boot=n_boot, seed=seed
                )
        if empty.any():
            result[f"fp_rate_{name}"] = patient_bootstrap(
                _false_positive_rate, patients, empty, scores.pred_empty[:, k], n_boot=n_boot, seed=seed
            )
    return result
