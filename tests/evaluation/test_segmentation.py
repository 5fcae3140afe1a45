"""Dice and HD95 (mm) with monai.metrics on label volumes with a known overlap and offset."""

from __future__ import annotations

import math

import numpy as np
import pytest

from brainfm.evaluation.segmentation import STRUCTURES, score_studies, segmentation_estimates

LESION, OEDEMA, NECROSIS, WHOLE = range(len(STRUCTURES))


def _volume(slices: slice, columns: slice, label: int = 1) -> np.ndarray:
    """A (6, 20, 20) label volume holding a box of ``label`` on rows 5–9."""
    volume = np.zeros((6, 20, 20), dtype=np.uint8)
    volume[slices, 5:10, columns] = label
    return volume


def test_dice_and_hd95_of_offset_boxes_follow_the_spacing() -> None:
    truth = _volume(slice(1, 3), slice(5, 10))
    in_plane = _volume(slice(1, 3), slice(7, 12))  # two columns to the right: overlap 3 of 5 columns
    across = _volume(slice(2, 4), slice(5, 10))  # one slice further: overlap 1 of 2 slices
    spacings = [
        (5.0, 0.5, 0.5),
        (5.0, 2.0, 2.0),
        (5.0, 1.0, 1.0),
        (2.0, 1.0, 1.0),
    ]  # (slice, pixel, pixel) mm
    scores = score_studies([in_plane, in_plane, across, across], [truth] * 4, spacings)
    np.testing.assert_allclose(scores.dice[:, LESION], [0.6, 0.6, 0.5, 0.5])
    # HD95 is the offset in mm: 2 columns × pixel_mm, or 1 slice × slice_mm.
    np.testing.assert_allclose(scores.hd95_mm[:, LESION], [1.0, 4.0, 5.0, 2.0])
    np.testing.assert_allclose(scores.dice[:, WHOLE], scores.dice[:, LESION])
    assert np.isnan(scores.dice[:, OEDEMA]).all() and scores.truth_empty[:, OEDEMA].all()


def test_empty_truth_and_empty_prediction_are_scored_as_documented() -> None:
    truth = _volume(slice(1, 3), slice(5, 10))
    empty = np.zeros_like(truth)
    oedema_only = _volume(slice(1, 3), slice(5, 10), label=2)
    scores = score_studies([empty, oedema_only], [truth, empty], [(5.0, 1.0, 1.0)] * 2)
    # Missed lesion: Dice 0, HD95 capped at the volume diagonal (30 mm × 20 mm × 20 mm).
    assert scores.dice[0, LESION] == 0.0
    assert scores.hd95_mm[0, LESION] == pytest.approx(math.sqrt(30**2 + 20**2 + 20**2))
    assert scores.hd95_capped[0, LESION]
    # Empty truth: no Dice or HD95, but a false positive where something was predicted.
    assert math.isnan(scores.dice[1, OEDEMA]) and math.isnan(scores.hd95_mm[1, OEDEMA])
    counts = scores.counts()
    assert counts["n_false_positive_oedema"] == 1 and counts["n_false_positive_lesion"] == 0
    assert counts["n_hd95_capped_lesion"] == counts["n_hd95_capped_whole"] == 1
    assert counts["n_empty_truth_necrosis"] == 2


def test_estimates_per_structure_over_patients() -> None:
    truth = _volume(slice(1, 3), slice(5, 10))
    truth_with_oedema = truth.copy()
    truth_with_oedema[1:3, 5:10, 10:12] = 2
    shifted = _volume(slice(1, 3), slice(7, 12))
    studies = [
        (shifted, truth),
        (truth, truth),
        (truth_with_oedema, truth_with_oedema),
        (truth, np.zeros_like(truth)),
    ]
    scores = score_studies([p for p, _ in studies], [t for _, t in studies], [(5.0, 1.0, 1.0)] * 4)
    estimates = segmentation_estimates(["a", "a", "b", "c"], scores, n_boot=200)
    assert "dice_necrosis" not in estimates  # no study has necrosis: undefined, left out
    assert estimates["dice_lesion"].value == pytest.approx((0.6 + 1.0 + 1.0) / 3)
    assert estimates["fp_rate_lesion"].value == 1.0  # the one empty-truth study got a prediction
    assert estimates["fp_rate_necrosis"].value == 0.0
    assert estimates["dice_lesion"].n_patients == 3
    for estimate in estimates.values():
        assert estimate.low <= estimate.value <= estimate.high


def test_mismatched_volumes_are_refused() -> None:
    with pytest.raises(ValueError, match="same 3-D"):
        score_studies([np.zeros((2, 4, 4))], [np.zeros((3, 4, 4))], [(1.0, 1.0, 1.0)])
