"""Stage-3 gates pass good outputs and fail each way they can break: the clinical tables (schema and layout,
identifiers, split), the lesion masks (orphan slices, failed masks, misplaced lesions, keys that do not join)
and the adapters (NaN metrics, a floor, a baseline, scratch)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import polars as pl
import pytest

from assets.adapters import DEPLOYED, METRICS_FILE, MIN_PATIENTS_FOR_COMPARISON, adapter_gate
from assets.masks import labels_join_gate, mask_alignment_gate, mask_placement_gate
from assets.resources import DeidSecretResource
from assets.tables import tables_identifier_gate, tables_layout_gate, tables_split_gate
from brainfm.imaging.shards import INDEX_FILE
from brainfm.raw_layout import RawLayout
from brainfm.tables import pseudonymise_tables

from .conftest import failures


@pytest.fixture(scope="module")
def tables(raw: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("tables") / "clinical_tables"
    pseudonymise_tables(RawLayout(raw).tables, out, DeidSecretResource().pseudonymizer())
    return out


def _copy(tables: Path, tmp_path: Path) -> Path:
    import shutil

    return Path(shutil.copytree(tables, tmp_path / "clinical_tables"))


def test_written_tables_pass(tables: Path, raw: Path) -> None:
    assert failures(tables_layout_gate(tables)) == set()
    assert failures(tables_identifier_gate(tables, raw)) == set()
    assert failures(tables_split_gate(tables)) == set()


def test_an_identifier_put_back_fails(tables: Path, raw: Path, tmp_path: Path, manifest: dict) -> None:
    out = _copy(tables, tmp_path)
    name = manifest["identifiers"]["patient_name"][0]
    labels = pl.read_parquet(out / "labels.parquet")
    labels.with_columns(pl.lit(name).alias("laterality")).write_parquet(out / "labels.parquet")
    assert failures(tables_identifier_gate(out, raw)) == {"expect_column_values_to_be_between(hits)"}


def test_a_stray_file_or_a_broken_schema_fails(tables: Path, tmp_path: Path) -> None:
    out = _copy(tables, tmp_path)
    (out / "oracle.parquet").write_bytes((out / "synthetic_oracle" / "oracle.parquet").read_bytes())
    assert failures(tables_layout_gate(out)) == {"expect_column_values_to_be_in_set(ok)"}
    out = _copy(tables, tmp_path / "second")
    clinical = pl.read_parquet(out / "clinical.parquet")
    clinical.drop("kps").write_parquet(out / "clinical.parquet")
    assert failures(tables_layout_gate(out)) == {"expect_column_values_to_be_in_set(ok)"}


def test_a_patient_on_both_sides_or_a_lopsided_split_fails(tables: Path, tmp_path: Path) -> None:
    out = _copy(tables, tmp_path)
    outcomes = pl.read_parquet(out / "outcomes.parquet")
    first = outcomes["patient"][0]
    flipped = pl.when(pl.col("patient") == first).then(
        pl.when(pl.col("split") == "train").then(pl.lit("test")).otherwise(pl.lit("train"))
    ).otherwise(pl.col("split"))
    outcomes.with_columns(split=flipped).write_parquet(out / "outcomes.parquet")
    assert "expect_column_values_to_be_between(sides)" in failures(tables_split_gate(out))
    out = _copy(tables, tmp_path / "second")
    for name in ("labels", "clinical", "outcomes"):
        frame = pl.read_parquet(out / f"{name}.parquet")
        frame.with_columns(split=pl.lit("train")).write_parquet(out / f"{name}.parquet")
    assert failures(tables_split_gate(out)) == {"expect_column_values_to_be_between(train_share)"}


def _index(folder: Path, slice_ids: list[str], lesion_pixels: int = 5) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    pl.DataFrame(
        {"slice_id": slice_ids, "study": ["s1"] * len(slice_ids), "lesion_pixels": [lesion_pixels] * len(slice_ids)}
    ).write_parquet(folder / INDEX_FILE)
    return folder


def test_mask_slices_without_images_or_failed_masks_fail(tmp_path: Path) -> None:
    images = _index(tmp_path / "images", ["a-0-0", "a-0-1"])
    assert failures(mask_alignment_gate(_index(tmp_path / "ok", ["a-0-1"]), images, n_masks=1)) == set()
    orphan = _index(tmp_path / "orphan", ["a-0-1", "a-0-2"])
    assert failures(mask_alignment_gate(orphan, images, n_masks=1)) == {
        "expect_column_values_to_be_between(orphan_mask_slices)"
    }
    # one study mapped of three with a mask: two thirds failed
    assert failures(mask_alignment_gate(_index(tmp_path / "ok", ["a-0-1"]), images, n_masks=3)) == {
        "expect_column_values_to_be_between(failed_share)"
    }


def test_a_misplaced_lesion_fails_and_an_unmeasurable_one_is_skipped() -> None:
    distances = pl.DataFrame(
        {"distance_mm": [2.0, math.nan], "slice_mm": [6.0, 6.0], "pixel_mm": [0.9, 0.9]}
    )
    assert failures(mask_placement_gate(distances)) == set()
    moved = distances.with_columns(pl.Series("distance_mm", [12.0, math.nan]))
    assert failures(mask_placement_gate(moved)) == {"expect_column_values_to_be_between(excess_mm)"}


def test_labels_that_do_not_join_the_images_fail() -> None:
    index = pl.DataFrame({"center": ["c", "c"], "study": ["s1", "s2"], "patient": ["p1", "p2"]})
    labels = pl.DataFrame({"study": ["s1", "s2"], "patient": ["p1", "p2"]})
    assert failures(labels_join_gate(labels, index)) == set()
    assert failures(labels_join_gate(labels.head(1), index)) == {
        "expect_column_values_to_be_in_set(labelled)", "expect_column_values_to_be_in_set(same_patient)"
    }
    swapped = labels.with_columns(pl.Series("patient", ["p2", "p1"]))
    assert failures(labels_join_gate(swapped, index)) == {"expect_column_values_to_be_in_set(same_patient)"}


def _metrics(tmp_path: Path, deployed: float, scratch: float, baseline: float, n: int, low: float = 0.1) -> Path:
    rows = [
        {"variant": v, "metric": "category_accuracy", "value": x, "low": low, "high": 0.99, "n_patients": n}
        for v, x in ((DEPLOYED, deployed), ("scratch-finetune", scratch), ("most-frequent", baseline))
    ]
    (tmp_path / METRICS_FILE).write_text(json.dumps({"rows": rows}))
    return tmp_path


def test_adapter_gate(tmp_path: Path) -> None:
    def gate(**kw) -> set[str]:
        return failures(adapter_gate(_metrics(tmp_path, **kw), "category_accuracy", 0.3, "most-frequent"))

    assert gate(deployed=0.6, scratch=0.7, baseline=0.4, n=10) == set()  # scratch: not meaningful at n=10
    assert gate(deployed=0.6, scratch=0.5, baseline=0.4, n=MIN_PATIENTS_FOR_COMPARISON) == set()
    assert gate(deployed=0.6, scratch=0.7, baseline=0.4, n=MIN_PATIENTS_FOR_COMPARISON) == {
        "expect_column_values_to_be_in_set(beats_scratch)"
    }
    assert gate(deployed=0.25, scratch=0.2, baseline=0.2, n=10) == {"expect_column_values_to_be_between(above_floor)"}
    assert gate(deployed=0.4, scratch=0.2, baseline=0.5, n=10) == set()  # baseline: not meaningful at n=10
    assert gate(deployed=0.4, scratch=0.2, baseline=0.5, n=MIN_PATIENTS_FOR_COMPARISON) == {
        "expect_column_values_to_be_between(above_baseline)"
    }
    assert gate(deployed=0.6, scratch=0.2, baseline=0.4, n=10, low=math.nan) == {
        "expect_column_values_to_be_in_set(all_finite)"
    }
