"""Sharded storage of normalised slices: ``shard-NNNNN.npy`` uint8 arrays (N, 256, 256) plus ``index.parquet``.

A dataset directory is written whole into a temporary sibling and swapped in at the end (see
:func:`atomic_directory`), so readers and re-runs never see a partial dataset, even after ``kill -9``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import polars as pl
from numpy.lib.format import write_array_header_1_0

from brainfm.imaging.normalize import SIZE

SHARD_SLICES = 4096  # slices per shard: 256 MiB per full shard
INDEX_FILE = "index.parquet"
QC_FILE = "qc.parquet"
VOLUMES_FILE = "volumes.parquet"  # one row per normalised volume: its voxel grid (docs/DATA_CONTRACT.md §3)


@contextmanager
def atomic_directory(target: Path, staging_root: Path | None = None) -> Iterator[Path]:
    """Yield an empty staging directory that replaces ``target`` when the block succeeds.

    Staging directories left by a killed run (``<prefix>.staging-*``) are removed first. ``os.replace``
    cannot replace a non-empty directory, so the old target is renamed aside, the new one renamed in and
    the old one deleted: at every moment ``target`` is either the old complete tree, absent, or the new one.
    ``staging_root`` is where the staging and the old tree lie meanwhile (default: beside ``target``): a
    folder outside a DVC-tracked ``data/``, on the same file system, so that a ``dvc add`` running meanwhile
    never versions a half-written or half-deleted tree.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    root = target.parent if staging_root is None else staging_root
    root.mkdir(parents=True, exist_ok=True)
    if os.stat(root).st_dev != os.stat(target.parent).st_dev:
        raise ValueError(
            f"The staging folder {root} is on another file system than {target.parent}: a finished tree could "
            "not be renamed into place atomically. Choose a staging folder on the same file system."
        )
    # Beside the target its own name is unique; in a shared staging folder the name also carries its path.
    name = target.name if staging_root is None else f"{target.name}-{_path_key(target)}"
    for stale in [*root.glob(f".{name}.staging-*"), *root.glob(f".{name}.old-*")]:
        shutil.rmtree(stale, ignore_errors=True)
    staging = root / f".{name}.staging-{os.getpid()}"
    staging.mkdir()
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    old = root / f".{name}.old-{os.getpid()}"
    if target.exists():
        os.replace(target, old)
    os.replace(staging, target)
    shutil.rmtree(old, ignore_errors=True)


def _path_key(path: Path) -> str:
    return hashlib.sha256(str(path.resolve()).encode("utf-8", "surrogateescape")).hexdigest()[:12]


class ShardWriter:
    """Appends uint8 slices to consecutive shards; returns (shard, row) for every slice written."""

    def __init__(self, directory: Path, shard_slices: int = SHARD_SLICES) -> None:
        self.directory = directory
        self.shard_slices = shard_slices
        self._pending: list[np.ndarray] = []
        self._pending_count = 0
        self._shard = 0

    def append(self, slices: np.ndarray) -> list[tuple[int, int]]:
        """Queue (n, 256, 256) uint8 slices; full shards are flushed to disk."""
        if slices.dtype != np.uint8 or slices.shape[1:] != (SIZE, SIZE):
            raise ValueError(f"expected uint8 slices of shape (n, {SIZE}, {SIZE}), got {slices.dtype} {slices.shape}")
        positions = []
        start = 0
        while start < len(slices):
            take = min(self.shard_slices - self._pending_count, len(slices) - start)
            self._pending.append(slices[start : start + take])
            positions += [(self._shard, self._pending_count + i) for i in range(take)]
            self._pending_count += take
            start += take
            if self._pending_count == self.shard_slices:
                self.flush()
        return positions

    def flush(self) -> None:
        """Write the queued slices as the next shard (nothing when the queue is empty)."""
        if not self._pending_count:
            return
        path = self.directory / f"shard-{self._shard:05d}.npy"
        # Header and blocks written in sequence: no concatenated copy, and no msync as a memmap flush would do
        # (durability comes from the atomic swap of the whole directory, not from each shard).
        header = {"descr": "|u1", "fortran_order": False, "shape": (self._pending_count, SIZE, SIZE)}
        with path.open("wb") as f:
            write_array_header_1_0(f, header)
            for block in self._pending:
                f.write(np.ascontiguousarray(block).data)
        self._pending, self._pending_count = [], 0
        self._shard += 1


class SliceStore:
    """Read-only view of a slices directory: ``len(store)``, ``store[i]`` → (256, 256) uint8, ``store.index``.

    Shards are memory-mapped lazily, and dropped when pickled, so a store can be handed to PyTorch
    DataLoader workers without copying the data.
    """

    def __init__(self, directory: Path, split: str | None = None) -> None:
        self.directory = Path(directory)
        index = pl.read_parquet(self.directory / INDEX_FILE)
        self.index = index if split is None else index.filter(pl.col("split") == split)
        self._shard = self.index["shard"].to_numpy()
        self._row = self.index["row"].to_numpy()
        self._maps: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self._shard)

    def _map(self, shard: int) -> np.ndarray:
        if shard not in self._maps:
            self._maps[shard] = np.load(self.directory / f"shard-{shard:05d}.npy", mmap_mode="r")
        return self._maps[shard]

    def __getitem__(self, i: int) -> np.ndarray:
        return self._map(int(self._shard[i]))[int(self._row[i])]

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_maps": {}}


def open_slices(directory: Path, split: str | None = None) -> SliceStore:
    """Open a normalised-slices directory (``split``: "train", "val" or None for all rows)."""
    return SliceStore(directory, split)
