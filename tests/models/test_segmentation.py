"""Segmentation adapter: data pairing, decoder shapes, probe vs fine-tuning, determinism, checkpoints, and
learning bright discs well enough to beat an all-background prediction (tiny encoder, 64-px slices, CPU)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from monai.metrics import compute_dice
from monai.networks.utils import one_hot

from models.data import INDEX_FILE, write_shards
from models.heads.seg_data import KEY_COLUMNS, SegmentationSlices
from models.heads.seg_train import (
    SegConfig,
    load_segmentation,
    predict_segmentation,
    save_segmentation,
    train_segmentation,
)
from models.heads.segmentation import SegmentationModel, segmentation_loss
from models.hybrid_encoder import create_encoder

SIZE = 64  # px: the smallest multiple of 32 whose stride-32 map (2x2) instance norm accepts
LESION, DISC_VALUE = 1, 220  # label and intensity of a disc; the 'brain' is ~90 ± 15
TRAIN_PATIENTS, HELD_OUT = ["P0", "P1", "P2", "P3", "N0"], ["P4", "P5"]
MIN_DICE_GAIN = 0.7  # held-out lesion Dice over an all-background prediction (which scores 0)


def disc_slices(n: int, rng: np.random.Generator, discs: bool) -> tuple[np.ndarray, np.ndarray]:
    """n noisy elliptical 'brains' (uint8 (n, SIZE, SIZE)), each with 0-2 bright discs (radius 4-8 px) when
    `discs`; the label maps mark the discs as lesion."""
    yy, xx = np.mgrid[:SIZE, :SIZE]
    brain = ((yy - SIZE / 2) / (0.42 * SIZE)) ** 2 + ((xx - SIZE / 2) / (0.35 * SIZE)) ** 2 < 1
    images = np.where(brain, rng.normal(90, 15, (n, SIZE, SIZE)), 0)
    labels = np.zeros((n, SIZE, SIZE), dtype=np.uint8)
    for i in range(n if discs else 0):
        for _ in range(rng.integers(0, 3)):
            cy, cx, r = rng.integers(20, SIZE - 20), rng.integers(22, SIZE - 22), rng.integers(4, 9)
            labels[i][(yy - cy) ** 2 + (xx - cx) ** 2 <= r**2] = LESION
    images = np.where(labels == LESION, rng.normal(DISC_VALUE, 10, images.shape), images)
    return np.clip(images, 0, 255).astype(np.uint8), labels


def write_masks(folder: Path, labels: np.ndarray, image_index: pd.DataFrame) -> None:
    """A lesion_masks folder (one shard) for the image slices of `image_index`, row for row."""
    folder.mkdir(parents=True)
    np.save(folder / "shard-00000.npy", labels)
    index = image_index[["slice_id", "patient", "study", "series", "volume", "sequence", "slice_index", "center"]]
    index = index.assign(
        shard=0, row=np.arange(len(labels)), lesion_pixels=(labels > 0).sum((1, 2)), pixel_mm=0.9, slice_mm=5.0
    )
    pq.write_table(pa.Table.from_pandas(index, preserve_index=False), folder / INDEX_FILE)


@pytest.fixture(scope="module")
def disc_data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(normalised-slices root, lesion-masks root) of one center: patients P0-P5 with discs and masks
    (8 slices each), N0 a lesion-free study without a mask."""
    root = tmp_path_factory.mktemp("seg")
    rng = np.random.default_rng(0)
    lesioned, labels = disc_slices(48, rng, discs=True)
    normal, _ = disc_slices(8, rng, discs=False)
    patients = [f"P{i // 8}" for i in range(48)] + ["N0"] * 8
    images = write_shards(root / "images" / "center_a", np.concatenate([lesioned, normal]), patients)
    index = pq.read_table(images / INDEX_FILE).to_pandas().assign(volume=0)  # write_shards writes no volume
    pq.write_table(pa.Table.from_pandas(index, preserve_index=False), images / INDEX_FILE)
    write_masks(root / "masks" / "center_a", labels, index[:48])
    return root / "images", root / "masks"


def slices(disc_data: tuple[Path, Path], patients: list[str]) -> SegmentationSlices:
    return SegmentationSlices(*disc_data, patients=patients, empty_studies=["study-N0"])


def encoder() -> torch.nn.Module:
    torch.manual_seed(0)
    return create_encoder("tiny", img_size=SIZE)


def test_slices_pair_masks_with_their_images(disc_data: tuple[Path, Path]) -> None:
    data = SegmentationSlices(*disc_data, empty_studies=["study-N0"])
    assert len(data) == 56 and list(data.keys.columns) == list(KEY_COLUMNS)
    images, labels = data[np.arange(len(data))]
    assert images.shape == (56, 1, SIZE, SIZE) and images.dtype == np.uint8 and labels.dtype == np.int64
    lesion = labels == LESION
    assert lesion.sum() > 500 and images[:, 0][lesion].min() > 160  # discs lie where their masks say
    assert images[:, 0][~lesion].max() < 160
    normal = (data.keys.patient == "N0").to_numpy()
    assert normal.sum() == 8 and not labels[normal].any() and data.keys.pixel_mm[normal].isna().all()
    assert (data.keys.pixel_mm[~normal] == 0.9).all()
    assert set(slices(disc_data, HELD_OUT).keys.patient) == set(HELD_OUT)
    with pytest.raises(ValueError, match="no mask slices"):
        SegmentationSlices(*disc_data, sequences=["FLAIR"])
    with pytest.raises(ValueError, match="have lesion masks"):
        SegmentationSlices(*disc_data, empty_studies=["study-P0"])


def test_mask_without_image_slice_is_refused(disc_data: tuple[Path, Path], tmp_path: Path) -> None:
    index = pq.read_table(disc_data[0] / "center_a" / INDEX_FILE).to_pandas()[:2]
    write_masks(tmp_path / "center_a", np.zeros((2, SIZE, SIZE), np.uint8), index.assign(slice_id=["x1", "x2"]))
    with pytest.raises(ValueError, match="2 mask slices have no image slice"):
        SegmentationSlices(disc_data[0], tmp_path)


def test_logits_have_the_image_size_and_one_channel_per_class() -> None:
    model = SegmentationModel(encoder())
    logits = model(torch.rand(2, 1, SIZE, SIZE))
    assert logits.shape == (2, 4, SIZE, SIZE)
    loss = segmentation_loss()(logits, torch.randint(0, 4, (2, 1, SIZE, SIZE)))
    assert torch.isfinite(loss) and loss > 0


def changed(a: torch.nn.Module, b: torch.nn.Module) -> list[bool]:
    """Per parameter tensor: differs between two modules of the same architecture."""
    return [not torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters())]


@pytest.mark.parametrize("mode", ["probe", "finetune"])
def test_probe_freezes_the_encoder_and_finetune_trains_it(disc_data: tuple[Path, Path], mode: str) -> None:
    base, data = encoder(), slices(disc_data, TRAIN_PATIENTS)
    before = [p.clone() for p in base.parameters()]
    untrained, _ = train_segmentation(base, data, SegConfig(mode=mode, steps=0))
    trained, history = train_segmentation(base, data, SegConfig(mode=mode, steps=3))
    assert len(history) == 3 and all(np.isfinite(history))
    assert all(changed(trained.decoder, untrained.decoder))
    encoder_changed = changed(trained.encoder, untrained.encoder)
    assert (not any(encoder_changed)) if mode == "probe" else sum(encoder_changed) > 0.9 * len(encoder_changed)
    assert all(torch.equal(p, q) for p, q in zip(base.parameters(), before))  # the caller's encoder is untouched


def test_training_is_deterministic_under_its_seed(disc_data: tuple[Path, Path]) -> None:
    base, data = encoder(), slices(disc_data, TRAIN_PATIENTS)
    runs = [train_segmentation(base, data, SegConfig(mode="finetune", steps=2, seed=s)) for s in (0, 0, 1)]
    (a, history_a), (b, history_b), (c, history_c) = runs
    assert history_a == history_b and not any(changed(a, b))
    assert history_a != history_c and any(changed(a, c))


@pytest.mark.parametrize("mode", ["probe", "finetune"])
def test_saved_adapter_predicts_what_the_trained_one_did(
    disc_data: tuple[Path, Path], tmp_path: Path, mode: str
) -> None:
    base, train, held_out = encoder(), slices(disc_data, TRAIN_PATIENTS), slices(disc_data, HELD_OUT)
    config = SegConfig(mode=mode, steps=2)
    model, history = train_segmentation(base, train, config)
    save_segmentation(tmp_path / "seg", model, config, history, base)
    loaded = load_segmentation(tmp_path / "seg", base)
    expected = predict_segmentation(model, held_out)
    assert expected.shape == (len(held_out), SIZE, SIZE) and expected.dtype == np.uint8
    np.testing.assert_array_equal(predict_segmentation(loaded, held_out), expected)
    assert (loaded.encoder is base) == (mode == "probe")  # a probe shares the frozen encoder, no second copy
    if mode == "probe":
        with pytest.raises(ValueError, match="trained on another encoder"):
            load_segmentation(tmp_path / "seg", create_encoder("tiny", img_size=SIZE))


def test_adapter_learns_lesions_it_has_not_seen(disc_data: tuple[Path, Path]) -> None:
    held_out = slices(disc_data, HELD_OUT)
    model, history = train_segmentation(encoder(), slices(disc_data, TRAIN_PATIENTS), SegConfig.profile("tiny"))
    assert np.mean(history[-5:]) < 0.6 * np.mean(history[:5])  # Dice of absent classes keeps it > 0.5
    _, labels = held_out[np.arange(len(held_out))]
    truth = one_hot(torch.from_numpy(labels)[:, None], 4)
    has_lesion = truth[:, LESION].flatten(1).any(1)

    def lesion_dice(prediction: np.ndarray) -> float:
        """Mean held-out lesion Dice over the slices that hold a lesion."""
        dice = compute_dice(one_hot(torch.from_numpy(prediction.astype(np.int64))[:, None], 4), truth,
                            include_background=False)
        return float(dice[has_lesion, LESION - 1].mean())

    background = lesion_dice(np.zeros_like(labels))
    assert lesion_dice(predict_segmentation(model, held_out)) > background + MIN_DICE_GAIN


@pytest.mark.parametrize("bf16", [None, True])
def test_prediction_runs_in_the_precision_asked(disc_data: tuple[Path, Path], bf16: bool | None) -> None:
    """bf16=True runs the segmenter under bfloat16 autocast on the CPU too (predict's bf16 path); the default
    keeps float32 there, as training does."""
    model, dtypes = SegmentationModel(encoder()), []
    model.decoder.out.register_forward_hook(lambda module, inputs, output: dtypes.append(output.dtype))
    predict_segmentation(model, slices(disc_data, HELD_OUT), bf16=bf16)
    assert set(dtypes) == {torch.bfloat16 if bf16 else torch.float32}
