"""Streaming loader over the normalised-slice shards of docs/DATA_CONTRACT.md section 3.

Shards (`shard-XXXXX.npy`, uint8 (N, 256, 256)) are memory-mapped and read a whole batch at a time (rows
sorted per shard), so there are no per-slice files and no per-slice Python work. The patient-level 8:2
split is the `split` column of `index.parquet`. Batch order is a pure function of (seed, step), so a
resumed run reads exactly the batches an uninterrupted one would. With lesion masks (section 3b, joined on
slice_id) each batch comes with its binary lesion maps, for lesion-aware masking (`models.masking`).
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import torch
from torch.utils.data import DataLoader, Sampler

INDEX_FILE = "index.parquet"
_COLUMNS = ["patient", "study", "sequence", "slice_index", "shard", "row", "split"]
_MASK_COLUMNS = ["slice_id", "shard", "row"]
_SLICE_LAYOUT = "the normalised-slice layout of docs/DATA_CONTRACT.md section 3 (data/normalized_slices/<center>/)"
_MASK_LAYOUT = "the lesion-mask layout of docs/DATA_CONTRACT.md section 3b (data/lesion_masks/<center>/)"


def resolve_shard_dirs(data_dirs: str | Path | Sequence[str | Path], layout: str = _SLICE_LAYOUT) -> list[Path]:
    """Shard folders under the given paths: each path is a shard folder (holding index.parquet) or a parent
    of such folders (e.g. data/normalized_slices/ with one folder per center). `layout` names the expected
    layout in the error."""
    paths = [Path(data_dirs)] if isinstance(data_dirs, (str, Path)) else [Path(p) for p in data_dirs]
    found: list[Path] = []
    for path in paths:
        if (path / INDEX_FILE).is_file():
            found.append(path)
        else:
            found.extend(sorted(p.parent for p in path.glob(f"*/{INDEX_FILE}")))
    if not found:
        raise FileNotFoundError(
            f"no {INDEX_FILE} in or directly under {[str(p) for p in paths]}; expected {layout}"
        )
    return found


class ShardDataset:
    """Slices of one split across shard folders; item i is a uint8 array (C, H, W).

    With `sequences` (e.g. ("T1", "T2", "FLAIR")) an item stacks those sequences of the same study and
    slice_index as channels (only slices where all exist); without, every slice is a 1-channel item.
    Indexing with an integer array returns a whole batch (B, C, H, W) in one read per shard.

    `lesion_masks`: lesion-mask folders (section 3b, or their parent), joined to the slices on slice_id;
    `lesion(index)` then gives each item's binary lesion map. Only the training split may use them, so that
    no validation mask shapes pretraining. `exclude_patients`: patients left out whatever their split (the
    downstream test patients, which no training stage may see).
    """

    def __init__(
        self, data_dirs: str | Path | Sequence[str | Path], split: str | None, sequences: Sequence[str] | None = None,
        lesion_masks: str | Path | Sequence[str | Path] | None = None, exclude_patients: Collection[str] = (),
    ) -> None:
        self.dirs = resolve_shard_dirs(data_dirs)
        self.sequences = tuple(sequences) if sequences else None
        if lesion_masks is not None and split != "train":
            raise ValueError(f"lesion masks are for the training split only (the map comes from it), not {split!r}")
        self.lesion_dirs = [] if lesion_masks is None else resolve_shard_dirs(lesion_masks, _MASK_LAYOUT)
        columns = _COLUMNS + (["slice_id"] if self.lesion_dirs else [])
        items, patients, locations, slice_ids = [], [], [], []
        for d, folder in enumerate(self.dirs):
            table = pq.read_table(folder / INDEX_FILE)
            missing = set(columns) - set(table.column_names)
            if missing:
                raise ValueError(f"{folder / INDEX_FILE} lacks columns {sorted(missing)} (docs/DATA_CONTRACT.md §3)")
            table = table.select(columns)
            if split is not None:
                table = table.filter(pc.equal(table["split"], split))
            if exclude_patients:
                table = table.filter(pc.invert(pc.is_in(table["patient"], pa.array(sorted(exclude_patients)))))
            offset = sum(len(loc) for loc in locations)
            location = np.stack([np.full(len(table), d), table["shard"].to_numpy(), table["row"].to_numpy()], 1)
            locations.append(location.astype(np.int64))
            if self.lesion_dirs:
                slice_ids.append(table["slice_id"].cast(pa.string()).combine_chunks())
            table = table.append_column("item", pa.array(np.arange(len(table)) + offset, pa.int64()))
            if self.sequences is None:
                items.append(table["item"].to_numpy()[:, None])
                patients.append(table["patient"].to_numpy(zero_copy_only=False))
            else:
                joined = self._join_sequences(table)
                items.append(np.stack([joined[f"item_{s}"].to_numpy() for s in self.sequences], 1))
                patients.append(joined["patient"].to_numpy(zero_copy_only=False))
        self._locations = np.concatenate(locations)  # (rows, 3): folder, shard, row
        self._items = np.concatenate(items).astype(np.int64)  # (items, C) row ids into _locations
        self.patients = np.concatenate(patients)
        if len(self._items) == 0:
            raise ValueError(f"no slices of split {split!r} (sequences {self.sequences}) in {self.dirs}")
        # Per row of _locations, its mask slice (folder in lesion_dirs, shard, row), or -1 where it has none.
        self._lesion_locations = (
            self._join_masks(pa.chunked_array(slice_ids, pa.string())) if self.lesion_dirs else None
        )
        self._shards: dict[tuple[Path, int], np.ndarray] = {}

    def _join_masks(self, slice_ids: pa.ChunkedArray) -> np.ndarray:
        """(rows, 3) mask-slice locations of the image rows with these slice ids, -1 where none."""
        ids, locations = [], []
        for d, folder in enumerate(self.lesion_dirs):
            table = pq.read_table(folder / INDEX_FILE)
            missing = set(_MASK_COLUMNS) - set(table.column_names)
            if missing:
                raise ValueError(f"{folder / INDEX_FILE} lacks columns {sorted(missing)} (docs/DATA_CONTRACT.md §3b)")
            ids.append(table["slice_id"].cast(pa.string()).combine_chunks())
            locations.append(np.stack([np.full(len(table), d), table["shard"].to_numpy(), table["row"].to_numpy()], 1))
        mask_ids = pa.chunked_array(ids, pa.string()).combine_chunks()
        if pc.count_distinct(mask_ids).as_py() != len(mask_ids):
            raise ValueError(f"a slice_id occurs twice in the lesion masks {self.lesion_dirs}: pass each center's "
                             "mask folder once")
        position = pc.index_in(slice_ids, value_set=mask_ids).to_numpy(zero_copy_only=False)
        found = ~np.isnan(position)
        out = np.full((len(position), 3), -1, dtype=np.int64)
        out[found] = np.concatenate(locations).astype(np.int64)[position[found].astype(np.int64)]
        return out

    def _join_sequences(self, table: pa.Table) -> pa.Table:
        """One row per (study, slice_index) holding the row id of every requested sequence."""
        keys = ["study", "slice_index"]
        joined = None
        for seq in self.sequences or ():
            part = table.filter(pc.equal(table["sequence"], seq)).select(keys + ["patient", "item"])
            part = part.rename_columns(keys + [f"patient_{seq}", f"item_{seq}"])
            joined = part if joined is None else joined.join(part, keys, join_type="inner")
        assert joined is not None
        joined = joined.sort_by([(k, "ascending") for k in keys])  # joins do not keep order
        return joined.append_column("patient", joined[f"patient_{self.sequences[0]}"])

    @property
    def channels(self) -> int:
        return self._items.shape[1]

    def __len__(self) -> int:
        return len(self._items)

    def _shard(self, folder: Path, shard: int) -> np.ndarray:
        """Memory-mapped shard, opened lazily in each process (memmaps must not be pickled to workers)."""
        key = (folder, shard)
        if key not in self._shards:
            self._shards[key] = np.load(folder / f"shard-{shard:05d}.npy", mmap_mode="r")
        return self._shards[key]

    def _read(self, dirs: list[Path], loc: np.ndarray) -> np.ndarray:
        """The slices at loc (n, 3) = (folder in dirs, shard, row), n >= 1, reading each shard once."""
        first = self._shard(dirs[loc[0, 0]], int(loc[0, 1]))
        out = np.empty((len(loc), *first.shape[1:]), dtype=first.dtype)
        order = np.lexsort((loc[:, 2], loc[:, 1], loc[:, 0]))  # rows ascending within each shard
        keys = loc[order, :2]
        starts = np.flatnonzero(np.r_[True, (keys[1:] != keys[:-1]).any(1)])
        for lo, hi in zip(starts, np.r_[starts[1:], len(order)]):
            sel = order[lo:hi]
            out[sel] = self._shard(dirs[loc[sel[0], 0]], int(loc[sel[0], 1]))[loc[sel, 2]]
        return out

    def __getitem__(self, index: int | np.ndarray) -> np.ndarray:
        index = np.asarray(index)
        out = self._read(self.dirs, self._locations[self._items[index.reshape(-1)].reshape(-1)])
        return out.reshape(*index.shape, self.channels, *out.shape[1:])

    def lesion(self, index: int | np.ndarray) -> np.ndarray:
        """Binary lesion maps uint8 (..., 1, H, W) of items `index`: 1 where the mask slice of any of the
        item's channels has a label > 0 (lesion, oedema, necrosis), 0 elsewhere and on slices without one."""
        if self._lesion_locations is None:
            raise ValueError("this dataset has no lesion masks: pass lesion_masks= (docs/DATA_CONTRACT.md §3b)")
        index = np.asarray(index)
        rows = self._items[index.reshape(-1)].reshape(-1)
        loc, (folder, shard, _) = self._lesion_locations[rows], self._locations[rows[0]]
        image = self._shard(self.dirs[folder], int(shard))  # for the slice shape where no mask slice is read
        has = loc[:, 0] >= 0
        labels = np.zeros((len(rows), *image.shape[1:]), dtype=np.uint8)
        if has.any():
            labels[has] = self._read(self.lesion_dirs, loc[has])
        lesion = (labels > 0).reshape(*index.shape, self.channels, *labels.shape[1:]).any(axis=-3, keepdims=True)
        return lesion.astype(np.uint8)


class StepBatchSampler(Sampler[np.ndarray]):
    """Endless batches of item indices; the batch of step s is a pure function of (seed, s, rank).

    Each epoch is a fresh permutation drawn from (seed, epoch); a global batch of batch_size * world_size
    items is split across ranks. Start at `start_step` to resume.
    """

    def __init__(
        self, n_items: int, batch_size: int, seed: int, start_step: int = 0, rank: int = 0, world_size: int = 1
    ) -> None:
        self.n, self.batch, self.seed = n_items, batch_size, seed
        self.start_step, self.rank, self.world = start_step, rank, world_size
        self.steps_per_epoch = n_items // (batch_size * world_size)
        if self.steps_per_epoch == 0:
            raise ValueError(f"{n_items} items cannot fill one global batch of {batch_size} x {world_size} ranks")

    def batch_for(self, step: int, permutation: np.ndarray) -> np.ndarray:
        lo = (step % self.steps_per_epoch) * self.batch * self.world + self.rank * self.batch
        return np.sort(permutation[lo : lo + self.batch])

    def __iter__(self) -> Iterator[np.ndarray]:
        step, epoch, perm = self.start_step, -1, np.empty(0, dtype=np.int64)
        while True:
            if step // self.steps_per_epoch != epoch:
                epoch = step // self.steps_per_epoch
                perm = np.random.default_rng([self.seed, epoch]).permutation(self.n)
            yield self.batch_for(step, perm)
            step += 1


class _BatchReader(torch.utils.data.Dataset):
    """Adapter so DataLoader workers read whole batches (the sampler yields index arrays)."""

    def __init__(self, dataset: ShardDataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: np.ndarray) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        slices = torch.from_numpy(self.dataset[index])
        return (slices, torch.from_numpy(self.dataset.lesion(index))) if self.dataset.lesion_dirs else slices


def make_loader(
    data_dirs: str | Path | Sequence[str | Path] | ShardDataset,
    split: str | None,
    batch_size: int,
    *,
    seed: int = 0,
    start_step: int = 0,
    rank: int = 0,
    world_size: int = 1,
    num_workers: int = 4,
    pin_memory: bool = False,
    sequences: Sequence[str] | None = None,
) -> DataLoader:
    """Endless loader of uint8 batches (batch_size, C, 256, 256) from memory-mapped shards, in an order
    fixed by (seed, step): iterate it once and take one batch per training step. A `ShardDataset` with
    lesion masks yields (batch, lesion maps (batch_size, 1, 256, 256)) pairs instead."""
    dataset = data_dirs if isinstance(data_dirs, ShardDataset) else ShardDataset(data_dirs, split, sequences)
    sampler = StepBatchSampler(len(dataset), batch_size, seed, start_step, rank, world_size)
    return DataLoader(
        _BatchReader(dataset), sampler=sampler, batch_size=None, num_workers=num_workers, pin_memory=pin_memory,
        persistent_workers=False, prefetch_factor=4 if num_workers else None,
    )


def write_shards(folder: str | Path, slices: np.ndarray, patients: Sequence[str], val_fraction: float = 0.2,
                 shard_size: int = 4096, sequences: Sequence[str] | None = None) -> Path:
    """Write uint8 slices (N, H, W) as a contract-shaped shard folder, for tests and benchmarks (the
    pipeline's own writer is brainfm's imaging stage). `sequences` labels each slice (default all T1);
    slices of one patient and sequence get consecutive slice_index values (slice_id
    "series-<patient>-<sequence>-0-<slice_index>", unique across folders whose patients differ), and the last
    `val_fraction` of distinct patients (in sorted order) form the `val` split."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if slices.dtype != np.uint8 or slices.ndim != 3:
        raise ValueError(f"slices must be uint8 (N, H, W), got {slices.dtype} {slices.shape}")
    n = len(slices)
    for shard, lo in enumerate(range(0, n, shard_size)):
        np.save(folder / f"shard-{shard:05d}.npy", slices[lo : lo + shard_size])
    patients = np.asarray(patients, dtype=str)
    sequence = np.asarray(sequences if sequences is not None else ["T1"] * n, dtype=str)
    unique = np.unique(patients)
    val = set(unique[len(unique) - round(val_fraction * len(unique)) :])
    series = np.char.add(np.char.add(patients, "-"), sequence)
    slice_index = np.zeros(n, dtype=np.int64)
    for key in np.unique(series):
        where = np.flatnonzero(series == key)
        slice_index[where] = np.arange(len(where))
    pq.write_table(
        pa.table({
            "slice_id": np.char.add(np.char.add("series-", series), np.char.add("-0-", slice_index.astype(str))),
            "patient": patients,
            "study": np.char.add("study-", patients),
            "series": np.char.add("series-", series),
            "volume": np.zeros(n, dtype=np.int64),
            "sequence": sequence,
            "slice_index": slice_index,
            "shard": np.arange(n) // shard_size,
            "row": np.arange(n) % shard_size,
            "split": ["val" if p in val else "train" for p in patients],
            "center": [folder.name] * n,
        }),
        folder / INDEX_FILE,
    )
    return folder
