"""The segmenter's held-out output kept for grounding: one row per predicted slice, the lesion packed to bits.

`seg_adapter` writes the table; the stage-2 evaluation reads it back as :class:`SegmentedSlice` lists, placed
in RAS mm through each volume's `volumes.parquet` row (docs/DATA_CONTRACT.md §3).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl

from brainfm.grounding.evidence import SegmentedSlice

VOLUME_KEYS = ("study", "series", "volume")
SLICE_SHAPE = (256, 256)


def lesion_slice_table(volumes: Sequence[Mapping[str, Any]], predicted: Sequence[npt.NDArray[np.integer]]) -> pl.DataFrame:
    """One row per predicted slice: patient, study, series, volume, slice_index, lesion_pixels and ``mask``
    (np.packbits of label > 0 over the 256×256 slice; null where no pixel is lesion). ``volumes`` has one mapping
    per predicted volume with its keys and ``slice_index`` list, in the order of ``predicted`` ((slices, 256,
    256) label arrays)."""
    rows = []
    for volume, labels in zip(volumes, predicted, strict=True):
        if len(volume["slice_index"]) != len(labels):
            raise ValueError(f"volume {volume['study']}/{volume['series']} lists {len(volume['slice_index'])} slice "
                             f"indices for {len(labels)} predicted slices")
        for slice_index, label in zip(volume["slice_index"], labels, strict=True):
            lesion = np.asarray(label) > 0
            rows.append({"patient": volume["patient"], **{k: volume[k] for k in VOLUME_KEYS},
                         "slice_index": int(slice_index), "lesion_pixels": int(lesion.sum()),
                         "mask": np.packbits(lesion).tobytes() if lesion.any() else None})
    return pl.DataFrame(rows, schema_overrides={"mask": pl.Binary})


def segmented_slices(table: pl.DataFrame, volume_rows: pl.DataFrame) -> dict[str, list[SegmentedSlice]]:
    """Per study, its predicted slices as :class:`SegmentedSlice` (every slice of each segmented volume, empty
    ones included), placed by the matching ``volumes.parquet`` rows; a volume without its row is an error."""
    geometry = {tuple(r[k] for k in VOLUME_KEYS): r for r in volume_rows.iter_rows(named=True)}
    out: dict[str, list[SegmentedSlice]] = {}
    for row in table.iter_rows(named=True):
        key = tuple(row[k] for k in VOLUME_KEYS)
        if key not in geometry:
            raise KeyError(f"no volumes.parquet row for {'/'.join(map(str, key))}: pass the volumes of the centers "
                           "whose slices were segmented")
        if row["mask"] is None:
            mask = np.zeros(SLICE_SHAPE, dtype=bool)
        else:
            bits = np.unpackbits(np.frombuffer(row["mask"], dtype=np.uint8))
            mask = bits[: SLICE_SHAPE[0] * SLICE_SHAPE[1]].reshape(SLICE_SHAPE).astype(bool)
        out.setdefault(row["study"], []).append(SegmentedSlice(mask, geometry[key], row["slice_index"]))
    return out
