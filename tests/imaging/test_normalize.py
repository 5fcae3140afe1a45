"""Normalisation to 256×256 uint8 in RAS, QC exclusions with reasons, and the sharded store."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from scipy import ndimage

from brainfm.dicom.reading import FrameGeometry
from brainfm.imaging.normalize import normalize_volume, resample_linear
from brainfm.imaging.qc import QCThresholds, _dilate, _row_percentiles, slice_reasons
from brainfm.imaging.shards import INDEX_FILE, ShardWriter, atomic_directory, open_slices
from brainfm.imaging.volumes import Frame, build_volumes


def _head(n: int = 10, rows: int = 64, cols: int = 48, seed: int = 0) -> np.ndarray:
    """(slices, rows, cols): an ellipse 'head' with texture and a bright marker on the array's left side."""
    rng = np.random.default_rng(seed)
    y, x = np.meshgrid(np.linspace(-1, 1, rows), np.linspace(-1, 1, cols), indexing="ij")
    head = (x / 0.8) ** 2 + (y / 0.85) ** 2 < 1
    image = np.where(head, 600 + 150 * np.sin(5 * y), 0.0)
    image[(np.abs(x + 0.5) < 0.1) & (np.abs(y) < 0.1)] = 1500
    return np.stack([image + rng.normal(5, 2, image.shape) for _ in range(n)]).astype(np.float32)


def _frames(volume: np.ndarray, orientation: tuple[float, ...], step_mm: float = 5.0) -> list[Frame]:
    normal = np.cross(orientation[:3], orientation[3:])
    return [
        Frame(img, FrameGeometry(tuple(k * step_mm * normal), orientation, (2.0, 3.0)), phase_axis=0)
        for k, img in enumerate(volume)
    ]


def test_slices_are_256_uint8_using_the_full_range_and_keep_physical_aspect() -> None:
    (volume,) = build_volumes(_frames(_head(), (1, 0, 0, 0, 1, 0)))
    result = normalize_volume(volume)
    assert result.slices.shape == (10, 256, 256) and result.slices.dtype == np.uint8
    assert result.slices.min() == 0 and result.slices.max() == 255 and result.plane == "axial"
    # 64 rows × 2 mm = 128 mm and 48 columns × 3 mm = 144 mm: the columns span 256 pixels, rows ≈ 228.
    rows_used = np.flatnonzero(result.slices[0].any(axis=1))
    assert 190 < rows_used.size <= 228


def test_the_same_anatomy_stored_in_opposite_orders_normalises_identically() -> None:
    """Orientation to RAS: flipping the stored rows and the slice order (with matching geometry) changes nothing."""
    head = _head()
    (a,) = build_volumes(_frames(head, (1, 0, 0, 0, 1, 0)))
    flipped = head[::-1, ::-1, :]  # rows stored posterior→anterior, slices superior→inferior
    frames = [
        Frame(img, FrameGeometry((0.0, 126.0, 5.0 * (9 - k)), (1, 0, 0, 0, -1, 0), (2.0, 3.0)), phase_axis=0)
        for k, img in enumerate(flipped)
    ]
    (b,) = build_volumes(frames)
    ra, rb = normalize_volume(a), normalize_volume(b)
    assert ra.slice_index == rb.slice_index
    np.testing.assert_array_equal(ra.slices, rb.slices)


def test_frames_sharing_a_position_become_separate_volumes() -> None:
    head = _head(n=4)
    frames = _frames(head, (1, 0, 0, 0, 1, 0)) + _frames(head * 0.5, (1, 0, 0, 0, 1, 0))  # e.g. two b-values
    volumes = build_volumes(frames)
    assert [v.data.shape[2] for v in volumes] == [4, 4]


def test_qc_reasons() -> None:
    rng = np.random.default_rng(1)
    head = _head(n=6).transpose(1, 2, 0).copy()  # (rows, cols, slices)
    head[:, :, 0] = 0  # empty
    head[:, :, 1] = 600 + rng.normal(0, 0.1, head.shape[:2])  # near-constant
    head[:, :, 2] = 0
    head[28:36, 20:28, 2] = 700  # 2% of the slice: out of brain
    head[:, :, 3] += rng.normal(0, 400, head.shape[:2]).astype(np.float32)  # noise
    ghost = np.roll(head[:, :, 4], 32, axis=0) * 0.4  # a shifted copy along the phase axis (rows)
    head[:, :, 4] += np.where(head[:, :, 4] < 100, ghost, 0)
    foreground = head > 300
    reasons = slice_reasons(head, foreground, robust_range=1500.0, phase_axis=0, t=QCThresholds())
    assert reasons == ["empty", "near_constant", "out_of_brain", "noise", "ghosting", None]


def test_a_grid_of_thumbnails_is_a_tile_grid_and_a_head_is_not() -> None:
    head = _head(n=16, rows=32, cols=32)
    grid = np.zeros((128, 128), np.float32)  # 16 heads as 4×4 tiles: a mosaic nobody un-tiled
    for k, tile in enumerate(head):
        grid[32 * (k // 4) : 32 * (k // 4 + 1), 32 * (k % 4) : 32 * (k % 4 + 1)] = tile
    whole = _head(n=1, rows=128, cols=128)[0]
    volume = np.stack([grid, whole], axis=-1)
    reasons = slice_reasons(volume, volume > 300, robust_range=1500.0, phase_axis=0, t=QCThresholds())
    assert reasons == ["tile_grid", None]


def test_shards_store_and_atomic_directory(tmp_path: Path) -> None:
    target = tmp_path / "slices"
    data = np.random.default_rng(0).integers(0, 256, (7, 256, 256), dtype=np.uint8)
    with atomic_directory(target) as stage:
        writer = ShardWriter(stage, shard_slices=3)
        positions = writer.append(data[:5]) + writer.append(data[5:])
        writer.flush()
        shard, row = zip(*positions, strict=True)
        pl.DataFrame({"shard": shard, "row": row, "split": ["train"] * 5 + ["val"] * 2}).write_parquet(stage / INDEX_FILE)
        assert not target.exists()  # nothing visible before the block ends
    assert sorted(p.name for p in target.glob("shard-*.npy")) == ["shard-00000.npy", "shard-00001.npy", "shard-00002.npy"]
    store = open_slices(target)
    np.testing.assert_array_equal(np.stack([store[i] for i in range(len(store))]), data)
    assert len(open_slices(target, split="val")) == 2
    clone = pickle.loads(pickle.dumps(store))  # DataLoader workers: maps are dropped, not copied
    assert clone._maps == {} and np.array_equal(clone[6], data[6])
    with pytest.raises(RuntimeError), atomic_directory(target) as stage:
        (stage / "partial").write_text("x")
        raise RuntimeError("crash")
    assert (target / INDEX_FILE).exists() and not (target / "partial").exists()


@pytest.mark.parametrize("name", ["anatomical.nii", "example4d.nii.gz"])
def test_nifti_files_from_the_nibabel_wheel_normalise(name: str) -> None:
    import nibabel

    from brainfm.imaging.nifti import load_nifti_volumes

    path = Path(nibabel.__file__).parent / "tests" / "data" / name
    volumes = load_nifti_volumes(path)
    assert len(volumes) == (1 if name == "anatomical.nii" else nibabel.load(path).shape[3])
    result = normalize_volume(volumes[0])
    assert result.slices.dtype == np.uint8 and result.slices.shape[1:] == (256, 256)
    assert len(result.slice_index) + len(result.excluded) == volumes[0].data.shape[2]
    assert result.slices.size == 0 or result.slices.max() == 255


@pytest.mark.parametrize("shape", [(240, 200), (512, 384), (64, 300), (7, 5)])
def test_resample_linear_gives_ndimage_zoom_values(shape: tuple[int, int]) -> None:
    stack = np.random.default_rng(0).random((3, *shape), dtype=np.float32) * 255
    for rows, cols in ((256, 213), (128, 256), shape):
        ours = resample_linear(stack, rows, cols)
        zoom = (1, rows / shape[0], cols / shape[1])
        theirs = ndimage.zoom(stack, zoom, order=1, grid_mode=True, mode="nearest")
        np.testing.assert_allclose(ours, theirs, atol=1e-3)


def test_fast_qc_reductions_equal_their_library_forms() -> None:
    rng = np.random.default_rng(1)
    mask = rng.random((4, 40, 33)) > 0.93
    np.testing.assert_array_equal(_dilate(mask, 7), ndimage.maximum_filter(mask, size=(1, 7, 7)))
    rows = rng.random((5, 301), dtype=np.float32) * 1000
    np.testing.assert_allclose(_row_percentiles(rows, (1.0, 99.0)), np.percentile(rows, [1, 99], axis=1), rtol=1e-5)


def test_a_few_non_finite_voxels_do_not_discard_the_series_and_a_mostly_nan_slice_is_excluded() -> None:
    clean = normalize_volume(build_volumes(_frames(_head(), (1, 0, 0, 0, 1, 0)))[0])
    head = _head()
    head[3, 10, 10], head[4, 20, 20], head[5, 0, 0] = np.nan, np.inf, -np.inf
    head[7, :50] = np.nan  # 50 of 64 rows
    result = normalize_volume(build_volumes(_frames(head, (1, 0, 0, 0, 1, 0)))[0])
    assert dict(result.excluded) == {**dict(clean.excluded), 7: "non_finite"}
    assert result.slice_index == [k for k in clean.slice_index if k != 7]
    assert np.abs(result.slices.astype(int)[:3] - clean.slices[:3]).max() <= 2  # the window barely moves


def test_a_zero_or_missing_pixel_spacing_is_not_taken_as_measured() -> None:
    from pydicom.data import get_testdata_file

    from brainfm.dicom.reading import frame_geometries, read_dataset
    from brainfm.imaging.volumes import GeometryError

    ds = read_dataset(Path(get_testdata_file("MR_small.dcm")))
    assert frame_geometries(ds)[0].spacing_source == "measured"
    ds.PixelSpacing = [0, 0]
    assert frame_geometries(ds)[0].spacing_source == "invalid"
    with pytest.raises(GeometryError):
        build_volumes([Frame(np.ones((4, 4), np.float32), frame_geometries(ds)[0])])
    del ds.PixelSpacing
    (geometry,) = frame_geometries(ds)
    assert geometry.spacing_source == "assumed" and geometry.spacing_mm == (1.0, 1.0)


def test_a_series_without_orientation_is_shown_as_stored_and_marked_unknown() -> None:
    """No ImageOrientationPatient: the frames are normalised in their stored layout (the marker on the
    array's left stays on the image's left, rows stay rows), in input order, and the plane says so."""
    head = _head(n=4, rows=64, cols=64)
    frames = [Frame(img, FrameGeometry(None, None, (2.0, 2.0)), phase_axis=0) for img in head]
    (volume,) = build_volumes(frames)
    result = normalize_volume(volume)
    assert result.plane == "unknown" and result.slice_index == [0, 1, 2, 3]
    image = result.slices[0].astype(float)
    marker = np.argwhere(image == image.max()).mean(axis=0)  # stored at row 32, column 8 of 64
    assert abs(marker[0] - 128) < 10 and marker[1] < 64
    oriented = normalize_volume(build_volumes(_frames(head, (1, 0, 0, 0, 1, 0)))[0])
    assert oriented.plane == "axial"


def test_a_staging_folder_elsewhere_keeps_every_partial_tree_out_of_the_target_folder(tmp_path: Path) -> None:
    """While the block runs (e.g. during a ``dvc add`` of data/), data/ holds only complete trees; two targets
    of one name share the staging folder without colliding."""
    data, staging = tmp_path / "data", tmp_path / "staging"
    deid, slices = data / "deid" / "center_a", data / "slices" / "center_a"
    deid.mkdir(parents=True)
    (deid / "old.txt").write_text("old")
    with atomic_directory(deid, staging) as a, atomic_directory(slices, staging) as b:
        (a / "new.txt").write_text("new")
        (b / "new.txt").write_text("new")
        assert a != b and a.parent == b.parent == staging
        listed = sorted(p.relative_to(data).as_posix() for p in data.rglob("*"))
        assert listed == ["deid", "deid/center_a", "deid/center_a/old.txt", "slices"]
    assert [p.name for p in deid.iterdir()] == [p.name for p in slices.iterdir()] == ["new.txt"]
    assert list(staging.iterdir()) == []
