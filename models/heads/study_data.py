"""Study bags: the slices of each study, grouped by sequence, read from the normalised-slice shards
(docs/DATA_CONTRACT.md §3).

A study's *series* here are its sequences among `STUDY_SEQUENCES`: every slice of one sequence (all its series
and volumes, e.g. each DWI b-value) forms one bag, so a study has one to four bags. Slices are addressed by
their item id in a `models.data.ShardDataset` over all splits (one item per index row, folders in order), which
also does the reading.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import torch

from models.data import INDEX_FILE, ShardDataset

STUDY_SEQUENCES: tuple[str, ...] = ("T1", "T2", "FLAIR", "DWI")

Bag = dict[str, np.ndarray]  # sequence -> item ids of the slices drawn from it


@dataclass(frozen=True)
class BagLayout:
    """Where each slice of a flattened batch of bags belongs: `series_index` (N,) numbers the slice's series
    within the batch, `series_study` (S,) the series' study (0..n_studies-1)."""

    series_index: torch.Tensor
    series_study: torch.Tensor
    n_studies: int

    @classmethod
    def of(cls, bags: Sequence[Bag]) -> BagLayout:
        """The layout of `flatten(bags)`: bags in order, each bag's sequences in `STUDY_SEQUENCES` order."""
        sizes, owners = [], []
        for b, bag in enumerate(bags):
            for seq in STUDY_SEQUENCES:
                if seq in bag:
                    sizes.append(len(bag[seq]))
                    owners.append(b)
        return cls(
            series_index=torch.repeat_interleave(torch.arange(len(sizes)), torch.tensor(sizes, dtype=torch.long)),
            series_study=torch.tensor(owners, dtype=torch.long),
            n_studies=len(bags),
        )

    def to(self, device: torch.device) -> BagLayout:
        """The layout with its index tensors on `device`."""
        return BagLayout(self.series_index.to(device), self.series_study.to(device), self.n_studies)


@dataclass(frozen=True)
class StudyTargets:
    """What a head trains on: per-study target tensors (row i belongs to `studies[i]`) and, for heads that
    take them, standardised clinical covariates (n_studies, C)."""

    studies: tuple[str, ...]
    values: dict[str, torch.Tensor]
    covariates: torch.Tensor | None = None

    def take(self, rows: np.ndarray) -> tuple[dict[str, torch.Tensor], torch.Tensor | None]:
        """Targets and covariates of the given rows."""
        index = torch.as_tensor(rows, dtype=torch.long)
        covariates = None if self.covariates is None else self.covariates[index]
        return {k: v[index] for k, v in self.values.items()}, covariates


def flatten(bags: Sequence[Bag]) -> np.ndarray:
    """The item ids of `bags`, in `BagLayout.of(bags)` order."""
    return np.concatenate([bag[seq] for bag in bags for seq in STUDY_SEQUENCES if seq in bag])


class StudyBags:
    """Every study in the shard folders, with its slices per sequence (sorted by series and slice_index).

    Slices of other sequences (`other`, `unknown`) are left out; a study with none of `STUDY_SEQUENCES` is
    absent.
    """

    def __init__(self, data_dirs: str | Path | Sequence[str | Path]) -> None:
        self.dataset = ShardDataset(data_dirs, split=None)
        tables = [pq.read_table(d / INDEX_FILE, columns=["patient", "study", "series", "sequence", "slice_index"])
                  for d in self.dataset.dirs]
        table = pa.concat_tables(tables)
        table = table.append_column("item", pa.array(np.arange(len(table), dtype=np.int64)))
        table = table.filter(pc.is_in(table["sequence"], pa.array(STUDY_SEQUENCES)))
        table = table.sort_by([("study", "ascending"), ("sequence", "ascending"), ("series", "ascending"),
                               ("slice_index", "ascending")])
        study = table["study"].to_numpy(zero_copy_only=False).astype(str)
        sequence = table["sequence"].to_numpy(zero_copy_only=False).astype(str)
        items, patients = table["item"].to_numpy(), table["patient"].to_numpy(zero_copy_only=False).astype(str)
        self._bags: dict[str, Bag] = {}
        self._patient: dict[str, str] = {}
        keys = np.char.add(np.char.add(study, "\0"), sequence)
        starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
        for lo, hi in zip(starts, np.r_[starts[1:], len(keys)]):
            self._bags.setdefault(study[lo], {})[sequence[lo]] = items[lo:hi]
            self._patient[study[lo]] = patients[lo]
        self.studies: tuple[str, ...] = tuple(self._bags)

    def __len__(self) -> int:
        return len(self.studies)

    def __contains__(self, study: object) -> bool:
        return study in self._bags

    def patient(self, study: str) -> str:
        """The (pseudonymous) patient of a study."""
        return self._patient[self._check(study)]

    def sequences(self, study: str) -> tuple[str, ...]:
        """The sequences a study has, in `STUDY_SEQUENCES` order."""
        return tuple(s for s in STUDY_SEQUENCES if s in self._bags[self._check(study)])

    def all_slices(self, study: str) -> Bag:
        """Every slice of a study, per sequence (for evaluation)."""
        return dict(self._bags[self._check(study)])

    def sample_bags(self, studies: Iterable[str], k: int, rng: np.random.Generator) -> list[Bag]:
        """For each study, k slices per sequence drawn without replacement (all of them where a sequence has
        fewer), in slice order; the same generator state gives the same bags."""
        bags = []
        for study in studies:
            bag = {}
            for seq, items in self._bags[self._check(study)].items():
                pick = rng.choice(len(items), size=min(k, len(items)), replace=False) if len(items) > k else None
                bag[seq] = items if pick is None else items[np.sort(pick)]
            bags.append(bag)
        return bags

    def read(self, items: np.ndarray) -> torch.Tensor:
        """uint8 slices (N, 1, H, W) in [0, 255] of the given item ids."""
        return torch.from_numpy(self.dataset[np.asarray(items, dtype=np.int64)])

    def item_patients(self, items: np.ndarray) -> np.ndarray:
        """The patient of each item id."""
        return self.dataset.patients[np.asarray(items, dtype=np.int64)]

    def _check(self, study: str) -> str:
        if study not in self._bags:
            raise KeyError(f"study {study!r} has no {'/'.join(STUDY_SEQUENCES)} slices in {self.dataset.dirs}; "
                           "check that the label table and the normalised slices come from the same cohort")
        return study


def as_pandas(table: object, required: Sequence[str]) -> pd.DataFrame:
    """A pandas view of a pandas or polars table with one row per study, checked for `required` columns."""
    frame = table if isinstance(table, pd.DataFrame) else table.to_pandas()  # type: ignore[attr-defined]
    missing = sorted(set(required) - set(frame.columns))
    if missing:
        raise ValueError(f"the table lacks columns {missing}; join the label, clinical and outcome tables on "
                         "patient first (one row per study)")
    if frame["study"].duplicated().any():
        raise ValueError("the table has several rows for one study; expected one row per study")
    return frame.reset_index(drop=True)
