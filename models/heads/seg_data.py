"""Image slices paired with their lesion-mask slices, for the segmentation adapter.

Images: data/normalized_slices/<center>/ (docs/DATA_CONTRACT.md §3). Masks: data/lesion_masks/<center>/, the
same layout (`shard-XXXXX.npy` uint8 (N, 256, 256) label maps: 0 background, 1 lesion, 2 oedema, 3 necrosis)
with one index row per mask slice: slice_id (= its image slice's), patient, study, series, volume, sequence,
slice_index, shard, row, lesion_pixels, pixel_mm, slice_mm, center.

One channel per item: every sequence of a study is its own item (the encoder is pretrained on single
slices of any sequence), paired with the mask slice of the same slice_id.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from models.data import INDEX_FILE, resolve_shard_dirs

# Per-item keys: enough to rebuild each series' volume (slices ordered by slice_index) and to measure
# distances in mm (pixel_mm in-plane, slice_mm between slices).
KEY_COLUMNS: tuple[str, ...] = (
    "slice_id", "patient", "study", "series", "volume", "sequence", "slice_index", "pixel_mm", "slice_mm", "center",
    "lesion_pixels",
)
_IMAGE_COLUMNS = ["slice_id", "patient", "study", "series", "volume", "sequence", "slice_index", "shard", "row",
                  "center"]
_MASK_COLUMNS = _IMAGE_COLUMNS + ["pixel_mm", "slice_mm", "lesion_pixels"]


def _read_index(dirs: list[Path], columns: list[str], what: str) -> pd.DataFrame:
    """The index rows of shard folders (concatenated, with a `folder` column: position in dirs)."""
    frames = []
    for d, folder in enumerate(dirs):
        frame = pq.read_table(folder / INDEX_FILE).to_pandas()
        missing = sorted(set(columns) - set(frame.columns))
        if missing:
            raise ValueError(f"{folder / INDEX_FILE} lacks columns {missing}; expected the {what} index layout")
        frames.append(frame[columns].assign(folder=d))
    return pd.concat(frames, ignore_index=True)


class _Shards:
    """Rows of memory-mapped shards, by (folder, shard, row); each shard opened once, lazily."""

    def __init__(self, dirs: list[Path]) -> None:
        self.dirs = dirs
        self._open: dict[tuple[int, int], np.ndarray] = {}

    def read(self, locations: np.ndarray) -> np.ndarray:
        """Slices (len(locations), H, W) at locations (n, 3): folder, shard, row."""
        out = []
        for folder, shard, row in locations:
            key = (int(folder), int(shard))
            if key not in self._open:
                self._open[key] = np.load(self.dirs[key[0]] / f"shard-{key[1]:05d}.npy", mmap_mode="r")
            out.append(self._open[key][row])
        return np.stack(out)


class SegmentationSlices:
    """Image slices with their label maps; `data[index_array]` → (images uint8 (B, 1, H, W) in [0, 255],
    labels int64 (B, H, W)).

    image_dirs / mask_dirs: a shard folder or a root with one folder per center (`resolve_shard_dirs`).
    patients: keep these patients only (e.g. one side of the downstream split); None keeps all.
    sequences: keep these sequences only (e.g. ("T1", "FLAIR")); None keeps all.
    empty_studies: studies known to hold no lesion (no mask file, category "normal"): all their image slices
    are added with all-background labels; pixel_mm and slice_mm are NaN for them (the image index has no
    spacing, and no distance is defined to an empty mask).

    `keys` (a DataFrame, one row per item in item order, `KEY_COLUMNS`) tells where each slice belongs.
    Items are sorted by patient, study, series, volume and slice_index.
    """

    def __init__(
        self,
        image_dirs: str | Path | Sequence[str | Path],
        mask_dirs: str | Path | Sequence[str | Path],
        patients: Collection[str] | None = None,
        sequences: Collection[str] | None = None,
        empty_studies: Collection[str] = (),
    ) -> None:
        image_folders, mask_folders = resolve_shard_dirs(image_dirs), resolve_shard_dirs(mask_dirs)
        images = _read_index(image_folders, _IMAGE_COLUMNS, "normalised-slice (docs/DATA_CONTRACT.md §3)")
        masks = _read_index(mask_folders, _MASK_COLUMNS, "lesion-mask")
        if patients is not None:
            images, masks = images[images.patient.isin(patients)], masks[masks.patient.isin(patients)]
        if sequences is not None:
            images, masks = images[images.sequence.isin(sequences)], masks[masks.sequence.isin(sequences)]
        clash = sorted(set(empty_studies) & set(masks.study))
        if clash:
            raise ValueError(f"studies {clash[:5]} are passed as empty_studies but have lesion masks; drop them "
                             "from empty_studies (a study with a mask is not lesion-free)")
        location = ["folder", "shard", "row"]
        paired = masks.merge(images[["slice_id", *location]], on="slice_id", how="left", suffixes=("_mask", ""))
        unpaired = paired.slice_id[paired.folder.isna()]
        if len(unpaired):
            raise ValueError(
                f"{len(unpaired)} mask slices have no image slice (e.g. {list(unpaired[:3])}); the mask folders "
                "must be built from the same normalized_slices as the images (rebuild lesion_masks)"
            )
        empty = images[images.study.isin(empty_studies)].assign(pixel_mm=np.nan, slice_mm=np.nan, lesion_pixels=0)
        empty = empty.assign(folder_mask=-1, shard_mask=-1, row_mask=-1)  # -1: no mask, all background
        items = pd.concat([paired, empty], ignore_index=True)
        if items.empty:
            raise ValueError(f"no mask slices (or empty-study slices) for the given patients and sequences in "
                             f"{[str(p) for p in mask_folders]}")
        items = items.sort_values(["patient", "study", "series", "volume", "slice_index"], ignore_index=True)
        self.keys: pd.DataFrame = items[list(KEY_COLUMNS)]
        self._image_loc = items[location].to_numpy(np.int64)
        self._mask_loc = items[[f"{c}_mask" for c in location]].to_numpy(np.int64)
        self._images, self._masks = _Shards(image_folders), _Shards(mask_folders)

    def __len__(self) -> int:
        return len(self.keys)

    def __getitem__(self, index: int | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        index = np.atleast_1d(np.asarray(index))
        images = self._images.read(self._image_loc[index])
        labels = np.zeros(images.shape, dtype=np.int64)
        has_mask = self._mask_loc[index, 0] >= 0
        if has_mask.any():
            labels[has_mask] = self._masks.read(self._mask_loc[index][has_mask])
        return images[:, None], labels
