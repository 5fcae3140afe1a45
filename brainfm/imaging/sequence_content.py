"""The sequence type of a series from its voxels, for series whose header and names say nothing ("unknown").

Nine scale-free intensity statistics of the series (:data:`FEATURES`; scanners store arbitrary intensity
scales) feed a multinomial logistic regression over T1, T2, FLAIR and DWI:

- a three-class split of the foreground (CSF-, GM- and WM-like classes, whose order depends on the contrast:
  CSF is the bright class on T2, the dark one on T1 and FLAIR): the dark and middle class means over the
  bright one, and the fractions of the dark and bright classes;
- foreground percentiles 25, 75, 95 and 99 over its median (T1's bright WM and fat tail, T2's bright CSF);
- the spread across volumes at the same positions: the lowest foreground median over the highest (1 for a
  single volume; a diffusion series without b-values gives its b = 0 and b = 1000 volumes, about 0.2–0.6).

The volume with the highest mean (b = 0 of a diffusion series) is the one described, whatever the order.
``bench/sequence_content.py`` fits the parameters on the synthetic cohort's labelled series and writes them
to ``sequence_content.json`` beside this module. A series keeps no label when its best class has less than
``min_probability``, or when its features lie farther from that class's fitted series than any of them did,
by a margin (root mean square of per-feature z-scores against the class's own mean and spread): a FLAIR full
of blood read as T1, a rendering unlike the fitted ones. The FLAIR class is broad (lesions widen its
histogram), so a flat histogram the model never saw (proton density, uniform noise, the phantom of the DICOM
tests) still lands in it: content labels are a four-way guess for series nothing else describes, fitted on
synthetic images, and a site should refit on its own labelled series before trusting them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from brainfm.imaging.normalize import PERCENTILES, intensity_window
from brainfm.imaging.volumes import Volume

MODEL_FILE = Path(__file__).with_name("sequence_content.json")
FEATURES = (
    "dark_over_bright", "middle_over_bright", "dark_fraction", "bright_fraction",
    "p25_over_median", "p75_over_median", "p95_over_median", "p99_over_median", "volume_spread",
)  # fmt: skip
_SAMPLE = 65_536  # voxels of a deterministic stride sample, as normalisation takes for its window
_MIN_FOREGROUND = 1_000  # foreground voxels in the sample below which the statistics say nothing
_BINS = 128  # histogram bins of the three-class split


@dataclass(frozen=True)
class ContentModel:
    """A fitted model: standardisation, logistic-regression weights and the abstention rule.

    ``coef`` is (labels, features) on standardised features; ``centroids`` and ``spreads`` are each label's
    mean and standard deviation (floored) of the standardised fitting features, ``max_distances`` the largest
    distance a label accepts; ``fitted_on`` says which cohort and patient split fitted it."""

    labels: tuple[str, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    coef: tuple[tuple[float, ...], ...]
    intercept: tuple[float, ...]
    centroids: tuple[tuple[float, ...], ...]
    spreads: tuple[tuple[float, ...], ...]
    max_distances: tuple[float, ...]
    min_probability: float
    fitted_on: dict[str, Any]

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        """Class probabilities (in ``labels`` order) of a (features,) or (n, features) array."""
        logits = self._standardise(features) @ np.asarray(self.coef).T + np.asarray(self.intercept)
        logits -= logits.max(axis=-1, keepdims=True)
        odds = np.exp(logits)
        return odds / odds.sum(axis=-1, keepdims=True)

    def predict(self, features: np.ndarray) -> str | None:
        """The label of one feature vector, or None when the model abstains."""
        probabilities = self.probabilities(features)
        best = int(np.argmax(probabilities))
        if (
            probabilities[best] < self.min_probability
            or self.distance(features, best) > self.max_distances[best]
        ):
            return None
        return self.labels[best]

    def distance(self, features: np.ndarray, label: int) -> float:
        """Root mean square z-score of one feature vector against the fitted series of ``labels[label]``."""
        z = (self._standardise(features) - np.asarray(self.centroids[label])) / np.asarray(
            self.spreads[label]
        )
        return float(np.sqrt(np.mean(z**2)))

    def _standardise(self, features: np.ndarray) -> np.ndarray:
        return (np.asarray(features, dtype=np.float64) - np.asarray(self.mean)) / np.asarray(self.scale)

    def write(self, path: Path) -> None:
        """Save as JSON (what :func:`load_model` reads)."""
        path.write_text(json.dumps({"features": FEATURES, **asdict(self)}, indent=1) + "\n", encoding="utf-8")


@cache
def load_model(path: Path = MODEL_FILE) -> ContentModel:
    """The fitted model stored in the package (read once per process)."""
    data = json.loads(path.read_text(encoding="utf-8"))
    if tuple(data.pop("features")) != FEATURES:
        raise ValueError(
            f"{path} was fitted on other features; refit it with bench/sequence_content.py --write"
        )
    nested = {"coef", "centroids", "spreads"}
    return ContentModel(**{
        k: tuple(tuple(r) for r in v) if k in nested else tuple(v) if isinstance(v, list) else v
        for k, v in data.items()
    })  # fmt: skip


def sequence_from_content(volumes: Sequence[Volume]) -> str | None:
    """T1, T2, FLAIR or DWI from the voxels of a series' volumes, or None when they do not tell."""
    features = content_features(volumes)
    return None if features is None else load_model().predict(features)


def content_features(volumes: Sequence[Volume]) -> np.ndarray | None:
    """:data:`FEATURES` of a series (its volumes as built for normalisation), or None without a foreground."""
    if not volumes:
        return None
    shape = volumes[0].data.shape
    step = max(1, int(np.prod(shape)) // _SAMPLE)
    # Volumes of one series share their memory layout, so equal sample positions are equal voxels.
    samples = [np.ravel(v.data, order="K")[::step] for v in volumes if v.data.shape == shape]
    finite = [s[np.isfinite(s)] for s in samples]
    if any(f.size == 0 for f in finite):
        return None
    brightest = int(np.argmax([f.mean() for f in finite]))
    reference = samples[brightest]
    mask = np.isfinite(reference) & (reference > intensity_window(finite[brightest])[0])
    foreground = reference[mask]
    if foreground.size < _MIN_FOREGROUND:
        return None
    foreground = foreground[foreground <= np.percentile(foreground, PERCENTILES[1])]  # spikes, vessels
    thresholds = _three_class_thresholds(foreground)
    if thresholds is None:
        return None
    classes = np.digitize(foreground, thresholds)  # 0 dark, 1 middle, 2 bright: none empty
    means = [float(foreground[classes == k].mean()) for k in range(3)]
    fractions = np.bincount(classes, minlength=3) / foreground.size
    medians = [float(np.nanmedian(s[mask])) for s in samples]
    spread = min(medians) / max(medians) if max(medians) > 0 else 1.0
    percentiles = np.percentile(foreground, [25, 75, 95, 99]) / np.median(foreground)
    return np.array(
        [means[0] / means[2], means[1] / means[2], fractions[0], fractions[2], *percentiles, spread]
    )


def _three_class_thresholds(values: np.ndarray) -> tuple[float, float] | None:
    """The two thresholds that split ``values`` into three non-empty classes with the largest between-class
    variance (Otsu's criterion for three classes, searched exhaustively over a histogram), or None when no
    split leaves three classes. Written here because scikit-image's ``threshold_multiotsu`` is not a
    dependency; the search is one 128 × 128 array operation.

    Between-class variance is Σ w_k μ_k² − μ² = Σ m_k² / w_k − μ², with w_k the class weights and m_k the
    class sums of p × centre, all read from cumulative sums; classes are bins ``[0, i]``, ``(i, j]``, ``(j, end]``.
    """
    counts, edges = np.histogram(values, bins=_BINS)
    centres = (edges[:-1] + edges[1:]) / 2
    p = counts / counts.sum()
    w, m = np.cumsum(p), np.cumsum(p * centres)
    w0, m0 = w[:, None], m[:, None]
    w1, m1 = w[None, :] - w[:, None], m[None, :] - m[:, None]
    w2, m2 = 1.0 - w[None, :], m[-1] - m[None, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        between = m0**2 / w0 + m1**2 / w1 + m2**2 / w2
    eps = 1e-12
    order = np.arange(_BINS)
    valid = (w0 > eps) & (w1 > eps) & (w2 > eps) & (order[:, None] < order[None, :])
    if not valid.any():
        return None
    i, j = np.unravel_index(np.argmax(np.where(valid, between, -np.inf)), between.shape)
    return float(edges[i + 1]), float(edges[j + 1])
