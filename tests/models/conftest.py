"""Small contract-shaped shard folders cut from nilearn's shipped MNI152 template (no download)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F


def mni_slices(n_patients: int, slices_per_patient: int, seed: int) -> tuple[np.ndarray, list[str]]:
    """Axial MNI152 slices resized to 256x256 uint8, each 'patient' a random flip and intensity scale of a
    random run of slices, so patients differ but share anatomy."""
    from nilearn.datasets import load_mni152_template

    volume = np.asarray(load_mni152_template(resolution=1).get_fdata(), dtype=np.float32)  # (x, y, z)
    volume /= np.percentile(volume, 99.5)
    axial = torch.from_numpy(volume).permute(2, 1, 0)[:, None].flip(2)  # (z, 1, y, x), anterior up
    axial = F.interpolate(axial, size=(256, 256), mode="bilinear", align_corners=False)[:, 0].numpy()
    rng = np.random.default_rng(seed)
    slices, patients = [], []
    for p in range(n_patients):
        start = rng.integers(40, axial.shape[0] - 50 - slices_per_patient)
        stack = axial[start : start + slices_per_patient] * rng.uniform(0.7, 1.0)
        if rng.random() < 0.5:
            stack = stack[:, :, ::-1]
        slices.append(np.clip(stack * 255, 0, 255).astype(np.uint8))
        patients += [f"P{p:03d}"] * slices_per_patient
    return np.concatenate(slices), patients


@pytest.fixture(scope="session")
def mni_shards(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A normalised-slices root with two centers of MNI-derived slices (shards of 64 slices)."""
    from models.data import write_shards

    root = tmp_path_factory.mktemp("normalized_slices")
    for c, center in enumerate(["center_a", "center_b"]):
        slices, patients = mni_slices(n_patients=10, slices_per_patient=12, seed=c)
        write_shards(root / center, slices, [f"{center}-{p}" for p in patients], shard_size=64)
    return root
