"""Lesion masks exist for every category, sit inside the head on the planted side, on the T1 grid."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import polars as pl
import pydicom

from brainfm.synth import get_profile
from brainfm.synth.cohort import plan_cohort, simulate_patient
from brainfm.synth.profiles import CATEGORIES


def _centroid_x(mask: np.ndarray, affine: np.ndarray) -> float:
    """Mean RAS x (mm) of a (slices, rows, cols) mask under a NIfTI affine indexed (col, row, slice)."""
    k, r, c = np.nonzero(mask)
    return float((affine @ np.stack([c, r, k, np.ones_like(c)]))[0].mean())


def _labels(raw: Path) -> pl.DataFrame:
    return pl.read_parquet(raw / "tables" / "labels.parquet")


def test_every_lesion_category_has_a_nonempty_mask(raw: Path) -> None:
    labels = _labels(raw)
    for category in set(CATEGORIES) - {"normal"}:
        rows = labels.filter((pl.col("category") == category) & pl.col("mask").is_not_null())
        assert rows.height, category
        assert any(np.asarray(nib.load(raw / m).dataobj).any() for m in rows["mask"])
    assert (
        labels.filter(pl.col("category") == "normal")["mask"].null_count()
        == labels.filter(pl.col("category") == "normal").height
    )


def test_masks_lie_inside_the_intracranial_space_on_the_planted_side(raw: Path, manifest: dict) -> None:
    """Re-simulate one study per subtype (pure, same seed) for its brain masks on the T1 grid."""
    labels = (
        _labels(raw).filter(pl.col("mask").is_not_null()).unique("subtype", keep="first", maintain_order=True)
    )
    tasks = {t.index: t for t in plan_cohort(get_profile("tiny"), manifest["seed"], raw)}
    index_of = {acc: i for i, acc in enumerate(manifest["studies"])}
    for row in labels.iter_rows(named=True):
        sim = simulate_patient(tasks[index_of[row["accession"]]])
        mask = np.asarray(nib.load(raw / row["mask"]).dataobj).transpose(2, 1, 0) > 0
        assert np.array_equal(mask, sim.rendered.lesion_mask > 0), row["accession"]
        inside = (mask & sim.rendered.intracranial_mask).sum() / mask.sum()
        assert inside >= 0.97, (row["subtype"], inside)
        if row["laterality"] in ("left", "right"):
            # RAS: the patient's left is -x; compare with the brain's own centre (head position varies).
            affine = nib.load(raw / row["mask"]).affine
            offset = _centroid_x(mask, affine) - _centroid_x(sim.rendered.brain_mask, affine)
            assert (offset < 0) == (row["laterality"] == "left"), (row["subtype"], offset)


def test_mask_grid_matches_the_t1_series(raw: Path, manifest: dict) -> None:
    row = _labels(raw).filter(pl.col("mask").is_not_null()).row(0, named=True)
    study = manifest["studies"][row["accession"]]
    t1 = next(s for s in study["series"] if s["sequence"] == "T1")
    first = pydicom.dcmread(raw / t1["dir"] / t1["files"][0])
    image = nib.load(raw / row["mask"])
    assert image.shape == (first.Columns, first.Rows, manifest["centers"][row["center"]]["n_slices"])
    assert np.isclose(abs(image.affine[0, 0]), float(first.PixelSpacing[1]))
    assert np.isclose(image.affine[2, 2], float(first.SpacingBetweenSlices))
    positions = sorted(
        float(pydicom.dcmread(raw / t1["dir"] / f, stop_before_pixels=True).ImagePositionPatient[2])
        for f in t1["files"]
    )
    assert np.isclose(image.affine[2, 3], positions[0])  # LPS z == RAS z; slice 0 is the most inferior
    lps_xy = [-image.affine[0, 3], -image.affine[1, 3]]
    assert np.allclose(lps_xy, [float(v) for v in first.ImagePositionPatient[:2]], atol=1e-3)
