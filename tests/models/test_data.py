"""The shard loader: contract layout, patient-level split, deterministic resumable order, multi-sequence."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from models import ShardDataset, make_loader, resolve_shard_dirs, write_shards
from models.data import StepBatchSampler


def test_split_is_patient_level_and_reads_the_right_rows(mni_shards: Path) -> None:
    train, val = ShardDataset(mni_shards, "train"), ShardDataset(mni_shards, "val")
    assert len(resolve_shard_dirs(mni_shards)) == 2
    assert not set(train.patients) & set(val.patients)
    assert len(val) / (len(train) + len(val)) == pytest.approx(0.2, abs=0.05)
    folder = resolve_shard_dirs(mni_shards)[1]
    index = pq.read_table(folder / "index.parquet").to_pandas()
    row = index[index.split == "val"].iloc[-1]
    expected = np.load(folder / f"shard-{row['shard']:05d}.npy")[row["row"]]
    np.testing.assert_array_equal(val[len(val) - 1][0], expected)
    batch = val[np.array([len(val) - 1, 0])]
    assert batch.shape == (2, 1, 256, 256) and batch.dtype == np.uint8
    np.testing.assert_array_equal(batch[0, 0], expected)


def test_excluded_patients_leave_every_split(mni_shards: Path) -> None:
    train = ShardDataset(mni_shards, "train")
    gone = set(train.patients[:: max(len(train) // 3, 1)])
    kept = ShardDataset(mni_shards, "train", exclude_patients=gone)
    assert not gone & set(kept.patients)
    assert len(kept) == int(np.isin(train.patients, list(gone), invert=True).sum())

def test_loader_order_is_a_function_of_seed_and_step(mni_shards: Path) -> None:
    first = iter(make_loader(mni_shards, "train", 8, seed=3, num_workers=0))
    batches = [next(first) for _ in range(30)]  # crosses an epoch boundary
    resumed = iter(make_loader(mni_shards, "train", 8, seed=3, start_step=25, num_workers=0))
    for expected in batches[25:]:
        np.testing.assert_array_equal(next(resumed).numpy(), expected.numpy())
    other = next(iter(make_loader(mni_shards, "train", 8, seed=4, num_workers=0)))
    assert not np.array_equal(other.numpy(), batches[0].numpy())


def test_ranks_split_each_global_batch_and_cover_each_epoch() -> None:
    r0, r1 = (iter(StepBatchSampler(100, 10, seed=0, rank=r, world_size=2)) for r in (0, 1))
    epoch: list[int] = []
    for step in range(12):  # 5 global batches of 20 per epoch: crosses two epoch boundaries
        a, b = next(r0), next(r1)
        assert len(a) == len(b) == 10 and not set(a) & set(b)
        epoch += [*a, *b]
        if step % 5 == 4:
            assert sorted(epoch) == list(range(100))  # every slice once per epoch, across both ranks
            epoch = []


def test_multi_sequence_items_stack_channels(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    slices = rng.integers(0, 255, (40, 256, 256), dtype=np.uint8)
    patients = [f"P{i // 4 % 5}" for i in range(40)]  # slices 0-19 are T1, 20-39 FLAIR of the same studies
    write_shards(tmp_path, slices, patients, shard_size=16, sequences=["T1"] * 20 + ["FLAIR"] * 20)
    dataset = ShardDataset(tmp_path, "train", sequences=("T1", "FLAIR"))
    assert dataset.channels == 2 and len(dataset) == 16
    batch = dataset[np.arange(len(dataset))]
    first = np.flatnonzero(dataset.patients == "P0")[0]  # P0's slice_index 0: rows 0 (T1) and 20 (FLAIR)
    np.testing.assert_array_equal(batch[first], slices[[0, 20]])


def test_missing_index_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="DATA_CONTRACT"):
        ShardDataset(tmp_path, "train")


def test_validation_rows_span_the_whole_split() -> None:
    from models.validate import validation_rows

    rows = validation_rows(1000, 5)  # items are stored center by center: the first 5 would be one patient's
    assert rows.tolist() == [0, 250, 500, 749, 999]
    assert validation_rows(3, 32).tolist() == [0, 1, 2]
