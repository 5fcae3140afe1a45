"""The intensity window keeps brain tissue visible for every contrast: T1, T2, FLAIR and DWI b=0 / b=1000
rendered on the MNI152 tissue maps (the cohort's own signal model), with and without the very bright voxels
(EPI spikes) that once put the window above most of the brain, and the MNI152 T1 template nilearn ships."""

from __future__ import annotations

import numpy as np
import pytest
from nilearn.datasets import load_mni152_brain_mask, load_mni152_template

from brainfm.imaging.normalize import intensity_window
from brainfm.synth.anatomy import Template, load_template
from brainfm.synth.sequences import TISSUES, protocol, signal_weights

CONTRASTS = [("T1", 0), ("T2", 0), ("FLAIR", 0), ("DWI", 0), ("DWI", 1000)]
MAX_CRUSHED = 0.03  # at most this fraction of brain voxels may fall below the window (shown black)


@pytest.fixture(scope="module")
def template() -> Template:
    return load_template()


def _rendered(template: Template, sequence: str, b: int, spikes: bool) -> np.ndarray:
    names = list(template.tissues)
    fractions = np.stack([template.tissues[n] for n in names], axis=-1)
    signal = fractions @ signal_weights([TISSUES[n] for n in names], protocol(sequence), False, b)
    rng = np.random.default_rng(0)
    volume = np.abs(signal + rng.normal(0, 0.01 * signal.max(), signal.shape))  # magnitude: Rician floor
    if spikes:  # 0.3 % of voxels at six times the 99th percentile
        volume[rng.random(volume.shape) < 0.003] = 6 * np.percentile(volume, 99)
    return volume


def _crushed(volume: np.ndarray, brain: np.ndarray) -> tuple[float, float]:
    """Fractions of brain voxels below and above the window computed on the sample normalisation takes."""
    flat = volume.reshape(-1)
    _, lo, hi = intensity_window(flat[:: max(1, flat.size // 65_536)])
    return float((volume[brain] < lo).mean()), float((volume[brain] > hi).mean())


@pytest.mark.parametrize("spikes", [False, True], ids=["clean", "spikes"])
@pytest.mark.parametrize(("sequence", "b"), CONTRASTS, ids=[f"{s}{b or ''}" for s, b in CONTRASTS])
def test_the_window_keeps_brain_tissue_visible(template: Template, sequence: str, b: int, spikes: bool) -> None:
    brain = template.tissues["gm"] + template.tissues["wm"] > 0.6
    below, above = _crushed(_rendered(template, sequence, b, spikes), brain)
    assert below <= MAX_CRUSHED and above <= MAX_CRUSHED


def test_the_window_keeps_the_mni152_template_brain_visible() -> None:
    image, mask = load_mni152_template(), load_mni152_brain_mask()
    volume = np.asarray(image.get_fdata(), dtype=np.float32)
    below, above = _crushed(volume, np.asarray(mask.get_fdata()) > 0)
    assert below <= MAX_CRUSHED and above <= MAX_CRUSHED
