"""Patient-level splits: one side per patient, whatever call or cohort it is assigned in."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from assets.resources import PathsResource
from brainfm.imaging.shards import INDEX_FILE
from brainfm.splits import DOWNSTREAM_TRAIN_FRACTION, PRETRAIN_TRAIN_FRACTION, assign_split, split_patients


def test_side_depends_on_the_patient_alone() -> None:
    patients = [f"P{i:04d}" for i in range(400)]
    everyone = split_patients(patients, PRETRAIN_TRAIN_FRACTION, seed=7)
    # Per-center calls (as ingestion makes them) of 8, 2 and 1 patients agree with the call over all
    # centers (as the report assets make it), including where a small center ends up on one side only.
    for size in (8, 2, 1):
        for lo in range(0, len(patients), size):
            center = split_patients(patients[lo : lo + size], PRETRAIN_TRAIN_FRACTION, seed=7)
            assert center == {p: everyone[p] for p in patients[lo : lo + size]}
    assert split_patients(patients[:50], 0.8, seed=8) != {
        p: everyone[p] for p in patients[:50]
    }  # seed matters


@pytest.mark.parametrize("fraction", [PRETRAIN_TRAIN_FRACTION, DOWNSTREAM_TRAIN_FRACTION])
def test_ratio_and_duplicates(fraction: float) -> None:
    patients = [f"P{i:05d}" for i in range(20_000)]
    sides = split_patients(patients + patients[:100], fraction, names=("train", "test"))
    assert len(sides) == len(patients) and set(sides.values()) == {"train", "test"}
    share = sum(side == "train" for side in sides.values()) / len(sides)
    assert abs(share - fraction) < 0.01  # binomial s.d. at n = 20,000 is 0.003
    assert all(assign_split(p, fraction, names=("train", "test")) == s for p, s in list(sides.items())[:200])


def test_rejects_a_fraction_outside_zero_one() -> None:
    with pytest.raises(ValueError, match="train_fraction"):
        split_patients(["P1"], 1.0)


def test_vl_pairs_gate_flags_a_pair_on_another_side_than_its_images(tmp_path: Path) -> None:
    from assets.reports import _image_sides, training_text_gate

    index = tmp_path / "data" / "normalized_slices" / "center_a" / INDEX_FILE
    index.parent.mkdir(parents=True)
    pl.DataFrame({"patient": ["PA", "PA", "PB"], "split": ["train", "train", "val"]}).write_parquet(index)
    pairs = [
        {"patient": "PA", "split": "train", "study": "2.25.1", "report": "右侧额叶胶质瘤"},
        {"patient": "PB", "split": "train", "study": "2.25.2", "report": "未见异常"},  # images are on val
        {
            "patient": "PC",
            "split": "val",
            "study": "2.25.3",
            "report": "未见异常",
        },  # no images: nothing to agree with
    ]
    gate = training_text_gate(pairs, [], _image_sides(PathsResource(root=str(tmp_path))))
    assert gate.frame["image_side_agrees"].tolist() == [True, False, True]
    assert gate.validate("test").failed_names == ["expect_column_values_to_be_in_set(image_side_agrees)"]
