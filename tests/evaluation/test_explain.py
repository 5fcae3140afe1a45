"""Pointing game and energy inside the mask on toy saliency maps."""

from __future__ import annotations

import math

import numpy as np
import pytest

from brainfm.evaluation import energy_inside_mask, pointing_game


def _mask() -> np.ndarray:
    mask = np.zeros((10, 10), dtype=bool)
    mask[2:7, 2:7] = True  # 25 of 100 pixels
    return mask


def test_pointing_game_hits_when_the_peak_is_inside() -> None:
    rows, columns = np.mgrid[0:10, 0:10]
    peak_inside = np.exp(-((rows - 4) ** 2 + (columns - 4) ** 2) / 4.0)
    assert pointing_game(peak_inside, _mask()) == 1.0
    assert pointing_game(np.roll(peak_inside, 4, axis=1), _mask()) == 0.0  # peak moved to (4, 8)
    assert pointing_game(np.ones((10, 10)), _mask()) == 0.0  # a flat map's maximum is everywhere
    assert math.isnan(pointing_game(peak_inside, np.zeros((10, 10), dtype=bool)))


def test_energy_inside_mask_counts_positive_saliency_only() -> None:
    assert energy_inside_mask(np.ones((10, 10)), _mask()) == pytest.approx(0.25)  # uniform: the area share
    saliency = np.where(_mask(), 2.0, -1.0)  # negative evidence outside is not energy
    assert energy_inside_mask(saliency, _mask()) == 1.0
    assert math.isnan(energy_inside_mask(np.ones((10, 10)), np.zeros((10, 10), dtype=bool)))
    assert math.isnan(energy_inside_mask(-np.ones((10, 10)), _mask()))
    with pytest.raises(ValueError, match="same shape"):
        energy_inside_mask(np.ones((10, 10)), np.ones((5, 5), dtype=bool))
