"""The segmenter's held-out slices survive the bit-packed table and give the same evidence back."""

from __future__ import annotations

import numpy as np
import polars as pl

from brainfm.grounding import evidence_from_predictions
from brainfm.grounding.segmentations import lesion_slice_table, segmented_slices

from .test_evidence import GRIDS, ROW, grid_affine, segmented


def test_round_trip_keeps_every_slice_and_the_evidence() -> None:
    slices = segmented(grid_affine(GRIDS["lps-axial"]), [((-30.0, 0.0, 10.0), 5.0)])
    labels = np.stack([s.mask.astype(np.uint8) for s in slices])
    volume = {"patient": "p1", "study": "s1", "series": "se1", "volume": 0,
              "slice_index": [s.slice_index for s in slices]}
    table = lesion_slice_table([volume], [labels])
    assert table.height == len(slices) and table["mask"].null_count() == int((labels.sum(axis=(1, 2)) == 0).sum())
    geometry = pl.DataFrame([{"study": "s1", "series": "se1", "volume": 0, **slices[0].volume}])
    back = segmented_slices(table, geometry)["s1"]
    assert all(np.array_equal(a.mask, b.mask) and a.slice_index == b.slice_index for a, b in zip(slices, back, strict=True))
    assert evidence_from_predictions(ROW, back) == evidence_from_predictions(ROW, slices)
    assert evidence_from_predictions(ROW, back).lesion_side == "left"
