"""Grad-CAM of the study classifier: a map of the slice's shape in [0, 1], the overlay PNG, and more energy per
pixel inside a lesion disc than outside."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from models.data import write_shards
from models.heads.classification import ClassificationHead, classification_loss
from models.heads.gradcam import gradcam_maps, save_gradcam_overlay
from models.heads.study_data import StudyBags
from models.heads.study_train import StudyConfig, train_study_adapter
from models.hybrid_encoder import HybridEncoder, create_encoder

SIZE = 256


def disc_slices(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """n noisy slices, every other one with a bright disc (radius 28-40 px) at a random place:
    (slices uint8 (n, H, W), has_disc (n,), disc masks (n, H, W))."""
    yy, xx = np.mgrid[:SIZE, :SIZE]
    slices = np.clip(rng.normal(80, 12, (n, SIZE, SIZE)), 0, 255)
    has_disc = np.arange(n) % 2 == 1
    masks = np.zeros((n, SIZE, SIZE), dtype=bool)
    for i in np.flatnonzero(has_disc):
        radius = rng.integers(28, 41)
        cy, cx = rng.integers(radius + 8, SIZE - radius - 8, size=2)
        masks[i] = (yy - cy) ** 2 + (xx - cx) ** 2 < radius**2
    slices[masks] += 120  # brighter, with the background's noise texture
    return slices.astype(np.uint8), has_disc, masks


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[HybridEncoder, ClassificationHead]:
    """A tiny random encoder with a classification probe trained on disc (lesion) vs no disc (normal)."""
    rng = np.random.default_rng(0)
    slices, has_disc, _ = disc_slices(32, rng)
    patients = [f"P{i:02d}" for i in range(len(slices))]
    bags = StudyBags(write_shards(tmp_path_factory.mktemp("gradcam") / "center_a", slices, patients))
    table = pd.DataFrame({"study": [f"study-{p}" for p in patients],
                          "category": np.where(has_disc, "lesion", "normal")})
    table["subtype"] = table["category"]
    torch.manual_seed(0)
    encoder = create_encoder("tiny").eval()
    head = ClassificationHead(encoder.embed_dim, ["lesion", "normal"], ["lesion", "normal"])
    config = StudyConfig.profile("tiny", steps=100, slices_per_series=1)
    history = train_study_adapter(encoder, head, bags, head.targets(table), classification_loss, config)
    assert history[-1] < 0.1  # the probe separates the classes
    return encoder, head


def lesion_maps(trained: tuple[HybridEncoder, ClassificationHead]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Held-out disc slices, their Grad-CAM maps for class "lesion" and their disc masks."""
    test, _, masks = disc_slices(8, np.random.default_rng(1))
    maps = gradcam_maps(*trained, torch.from_numpy(test[1::2, None]), class_idx=0).cpu().numpy()
    return test[1::2], maps, masks[1::2]


def test_gradcam_has_image_shape_and_writes_overlay(
    trained: tuple[HybridEncoder, ClassificationHead], tmp_path: Path
) -> None:
    images, maps, masks = lesion_maps(trained)
    assert maps.shape == (4, SIZE, SIZE) and maps.min() >= 0.0 and maps.max() == pytest.approx(1.0)
    png = save_gradcam_overlay(tmp_path / "overlay.png", images[0], maps[0], masks[0], title="lesion")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_gradcam_energy_inside_disc_exceeds_outside(trained: tuple[HybridEncoder, ClassificationHead]) -> None:
    _, maps, masks = lesion_maps(trained)
    inside = np.mean([m[k].mean() for m, k in zip(maps, masks)])
    outside = np.mean([m[~k].mean() for m, k in zip(maps, masks)])
    assert inside > 2 * outside, (inside, outside)  # energy per pixel, averaged over slices (0.62 vs 0.05)
