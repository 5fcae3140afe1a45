"""Every center's scanner effects are measurable from its images; center_d is clearly shifted."""

from __future__ import annotations

from itertools import combinations
from pathlib import Path

import numpy as np

from brainfm.synth import read_series


def _center_stats(raw: Path, manifest: dict, center: str) -> dict[str, float]:
    """Median foreground intensity (real-world values), relative background noise and matrix of T1."""
    fg, noise = [], []
    for study in manifest["studies"].values():
        if study["center"] != center:
            continue
        t1 = next(s for s in study["series"] if s["sequence"] == "T1")
        volume, _ = read_series(raw / t1["dir"])
        volume = volume[:, 14:, :]  # skip a burned-in text band, if any
        fg_median = float(np.median(volume[volume > np.percentile(volume, 60)]))
        corners = np.concatenate([volume[:, :8, :8].ravel(), volume[:, -8:, -8:].ravel()])
        fg.append(fg_median)
        noise.append(float(corners.mean()) / fg_median)
    return {
        "foreground": float(np.median(fg)),
        "noise": float(np.median(noise)),
        "matrix": float(manifest["centers"][center]["matrix"]),
    }


def test_centers_differ_and_center_d_is_shifted(raw: Path, manifest: dict) -> None:
    stats = {c: _center_stats(raw, manifest, c) for c in manifest["centers"]}
    for a, b in combinations(stats, 2):
        ratios = [abs(stats[a][k] / stats[b][k] - 1) for k in ("foreground", "noise", "matrix")]
        assert max(ratios) > 0.15, (a, b, stats[a], stats[b])
    others = [s for c, s in stats.items() if c != "center_d"]
    assert stats["center_d"]["noise"] > 1.5 * max(s["noise"] for s in others)
    assert all(abs(stats["center_d"]["foreground"] / s["foreground"] - 1) > 0.3 for s in others)
    assert manifest["centers"]["center_d"]["shifted"] is True
