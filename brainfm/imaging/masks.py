"""Lesion masks on the normalised slices (docs/DATA_CONTRACT.md §3b).

A study's mask (a NIfTI label map in RAS mm, on any grid: the cohort writes it on the T1 grid) is resampled by
world coordinates into the voxel grid of each of the study's image series (nearest neighbour), then put through
that series' own :class:`~brainfm.imaging.normalize.SliceGeometry` (reorientation, slicing, display
transpose and flip, nearest-neighbour resize, centring, padding), keeping exactly the slices the image index
kept. The mask slice of image slice ``slice_id`` has the same ``slice_id``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import polars as pl
from nibabel.processing import resample_from_to

from brainfm.imaging.normalize import SliceGeometry, slice_geometry
from brainfm.imaging.shards import INDEX_FILE, VOLUMES_FILE, ShardWriter, atomic_directory, open_slices
from brainfm.imaging.volumes import GeometryError, check_grid

MASK_LABELS = {1: "lesion", 2: "oedema", 3: "necrosis"}  # 0: background (docs/DATA_CONTRACT.md §1)
CORE_LABELS = (1, 3)  # the lesion proper: what a centroid is taken of
MASK_INDEX_SCHEMA = {
    "slice_id": pl.String(), "patient": pl.String(), "study": pl.String(), "series": pl.String(),
    "volume": pl.Int32(), "sequence": pl.String(), "slice_index": pl.Int32(), "shard": pl.Int32(),
    "row": pl.Int32(), "lesion_pixels": pl.Int32(), "pixel_mm": pl.Float64(), "slice_mm": pl.Float64(),
    "center": pl.String(),
}  # fmt: skip


class MaskError(ValueError):
    """A mask file that cannot be used; the message never names the file (its name may hold an accession)."""


@dataclass(frozen=True)
class MaskSummary:
    """What :func:`map_masks` wrote for one center."""

    studies: int  # studies whose mask was mapped onto their image series
    slices: int  # mask slices written (one per image slice of those studies)
    lesion_slices: int  # of them, slices with any label > 0
    failed: dict[str, str]  # study → why its mask was not mapped


def volume_geometry(volume: Mapping[str, Any]) -> SliceGeometry:
    """The slice geometry of a ``volumes.parquet`` row (its ``affine`` and ``shape``)."""
    return slice_geometry(np.reshape(np.asarray(volume["affine"], dtype=np.float64), (4, 4)), volume["shape"])


def slice_to_ras(volume: Mapping[str, Any], slice_index: Any, row: Any, column: Any) -> np.ndarray:
    """RAS mm of the pixel centre (``row``, ``column``) on normalised slice ``slice_index`` of the volume of
    a ``volumes.parquet`` row: the inverse of the display mapping. Scalars give (3,), arrays (…, 3)."""
    points = np.stack(np.broadcast_arrays(slice_index, row, column, 1.0), axis=-1).astype(np.float64)
    return (points @ volume_geometry(volume).to_ras().T)[..., :3]


def load_mask(path: Path) -> nib.Nifti1Image:
    """A mask as a uint8 NIfTI image; raises MaskError unless it is a readable 3-D label map with values in
    {0, 1, 2, 3} on a usable voxel grid (a trailing time axis of length 1 is dropped)."""
    if not Path(path).is_file():
        raise MaskError("missing: no mask file at the path given; check the labels table's mask column")
    try:
        image = nib.load(path)
        data = np.asanyarray(image.dataobj)
    except Exception as e:  # any reader failure means the same: the file is damaged
        raise MaskError(f"unreadable: {type(e).__name__} (not a readable NIfTI file)") from e
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise MaskError(f"not_3d: shape {data.shape}; a mask is one 3-D label map")
    values = np.unique(data)
    if not np.isin(values, list(MASK_LABELS) + [0]).all():
        bad = [v.item() for v in values if v not in MASK_LABELS and v != 0][:5]
        raise MaskError(f"bad_labels: values {bad} outside {{0, 1, 2, 3}}")
    try:
        check_grid(image.affine)
    except GeometryError as e:
        raise MaskError(f"bad_geometry: {e}") from e
    return nib.Nifti1Image(data.astype(np.uint8), image.affine)


def mask_slices(mask: nib.Nifti1Image, geometry: SliceGeometry, slice_index: Sequence[int]) -> np.ndarray:
    """(n, 256, 256) uint8 label slices of ``mask`` at RAS ``slice_index`` of an image volume's geometry:
    resampled into its voxel grid by RAS mm coordinates (nearest neighbour, 0 outside the mask's field of
    view), then through the same geometry as the image (nearest-neighbour resize)."""
    # "grid-constant": a voxel is a box, so a point up to half a voxel past the outermost centre still takes
    # its value. ("constant" drops it, and with it a whole edge slice when the two affines differ by float
    # rounding: a NIfTI header stores its affine in float32, a DICOM position has a few decimals.)
    on_grid = resample_from_to(mask, (geometry.shape, geometry.affine), order=0, mode="grid-constant", cval=0)
    return geometry.display(geometry.stack(np.asarray(on_grid.dataobj), slice_index), labels=True)


def map_masks(
    slices_dir: Path, masks: Mapping[str, Path], out_dir: Path, staging_dir: Path | None = None
) -> MaskSummary:
    """Map the masks of one center's studies onto its normalised slices; write ``out_dir`` (atomically).

    ``slices_dir``: the center's ``normalized_slices`` folder (index.parquet, volumes.parquet). ``masks``: study
    (de-identified StudyInstanceUID, the index's ``study``) → mask NIfTI path; studies of other centers are
    ignored. Every image slice of a study with a mask gets a mask slice (series with plane ``unknown`` have no
    patient coordinates and are skipped); a study whose mask cannot be used is listed in ``failed`` and the
    others go on. ``out_dir`` gets ``shard-XXXXX.npy`` (uint8 (N, 256, 256) labels) and index.parquet
    (``MASK_INDEX_SCHEMA``); ``staging_dir`` as for :func:`~brainfm.imaging.shards.atomic_directory`.
    """
    if not (slices_dir / VOLUMES_FILE).is_file():
        raise FileNotFoundError(
            f"{slices_dir / VOLUMES_FILE} is missing: the slices were normalised before volume geometries were "
            "recorded. Materialise normalized_slices for this center again, then map the masks."
        )
    volumes = pl.read_parquet(slices_dir / VOLUMES_FILE).filter(pl.col("plane") != "unknown")
    geometry = {(r["series"], r["volume"]): r for r in volumes.iter_rows(named=True)}
    index = pl.read_parquet(slices_dir / INDEX_FILE)
    failed: dict[str, str] = {}
    rows: list[dict[str, Any]] = []
    with atomic_directory(out_dir, staging_dir) as stage:
        writer = ShardWriter(stage)
        for study in index.filter(pl.col("study").is_in(list(masks)))["study"].unique(maintain_order=True):
            try:
                mask = load_mask(masks[study])
            except MaskError as e:
                failed[study] = str(e)
                continue
            slices = index.filter((pl.col("study") == study) & (pl.col("plane") != "unknown"))
            if slices.is_empty():
                failed[study] = "no_oriented_series: the study's image series have no patient orientation"
                continue
            for (series, volume), group in slices.group_by(["series", "volume"], maintain_order=True):
                vol = geometry[(series, volume)]
                labels = mask_slices(mask, volume_geometry(vol), group["slice_index"].to_list())
                positions = writer.append(labels)
                lesion = (labels > 0).sum(axis=(1, 2))
                for (shard, row), image, n in zip(positions, group.iter_rows(named=True), lesion, strict=True):
                    rows.append({
                        **{k: image[k] for k in ("slice_id", "patient", "study", "series", "volume", "sequence")},
                        "slice_index": image["slice_index"], "shard": shard, "row": row, "lesion_pixels": int(n),
                        "pixel_mm": vol["pixel_mm"], "slice_mm": vol["slice_mm"], "center": image["center"],
                    })  # fmt: skip
        writer.flush()
        mask_index = pl.DataFrame(rows, schema=MASK_INDEX_SCHEMA)
        mask_index.write_parquet(stage / INDEX_FILE)
    return MaskSummary(
        studies=mask_index["study"].n_unique(),
        slices=mask_index.height,
        lesion_slices=int((mask_index["lesion_pixels"] > 0).sum()),
        failed=failed,
    )


def mask_slices_without_image(mask_index: pl.DataFrame, image_index: pl.DataFrame) -> pl.DataFrame:
    """The rows of a mask index whose ``slice_id`` the image index lacks (empty when every mask slice has its
    image slice)."""
    return mask_index.join(image_index.select("slice_id"), on="slice_id", how="anti")


def mask_centroid_distances(mask_dir: Path, slices_dir: Path, masks: Mapping[str, Path]) -> pl.DataFrame:
    """Per mapped (study, series, volume): the distance (mm) between the lesion centroid (labels 1 and 3) of
    its mask slices, taken back to RAS (:func:`slice_to_ras`), and the centroid of the study's NIfTI mask in
    RAS. Columns: study, series, volume, sequence, core_pixels, distance_mm (NaN where either side has no
    label 1 or 3), pixel_mm, slice_mm. Nearest-neighbour mapping keeps it within about one slice spacing plus
    one pixel on the synthetic cohort, whose lesions lie inside the imaged head."""
    store = open_slices(mask_dir)
    volumes = pl.read_parquet(slices_dir / VOLUMES_FILE)
    geometry = {(r["series"], r["volume"]): r for r in volumes.iter_rows(named=True)}
    raw: dict[str, np.ndarray] = {}
    out = []
    for (study, series, volume), group in store.index.with_row_index("i").group_by(
        ["study", "series", "volume"], maintain_order=True
    ):
        if study not in raw:
            mask = load_mask(masks[study])
            core = np.argwhere(np.isin(np.asarray(mask.dataobj), CORE_LABELS))
            raw[study] = nib.affines.apply_affine(mask.affine, core).mean(axis=0) if len(core) else np.full(3, np.nan)
        labels = np.stack([store[i] for i in group["i"]])
        k, row, column = np.nonzero(np.isin(labels, CORE_LABELS))
        vol = geometry[(series, volume)]
        mapped = slice_to_ras(vol, group["slice_index"].to_numpy()[k], row, column).mean(axis=0) if len(k) else None
        out.append({
            "study": study, "series": series, "volume": volume, "sequence": group["sequence"][0],
            "core_pixels": len(k), "distance_mm": float("nan") if mapped is None else float(np.linalg.norm(mapped - raw[study])),
            "pixel_mm": vol["pixel_mm"], "slice_mm": vol["slice_mm"],
        })  # fmt: skip
    return pl.DataFrame(out, schema={
        "study": pl.String(), "series": pl.String(), "volume": pl.Int32(), "sequence": pl.String(),
        "core_pixels": pl.Int64(), "distance_mm": pl.Float64(), "pixel_mm": pl.Float64(), "slice_mm": pl.Float64(),
    })  # fmt: skip
