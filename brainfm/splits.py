"""Patient-level data splits: every slice, study and report of a patient lands on the same side.

The design fixes the ratios: 8:2 (train/val) for pretraining and vision-language data, 7:3 (train/test)
for downstream task data. Assignment is deterministic under a seed and stable when patients are added:
a patient's side depends only on (seed, patient key), never on how many other patients there are.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

PRETRAIN_TRAIN_FRACTION = 0.8  # 8:2, pretraining and vision-language pairs
DOWNSTREAM_TRAIN_FRACTION = 0.7  # 7:3, downstream task data


def _unit_interval(seed: int, patient: str) -> float:
    digest = hashlib.sha256(f"{seed}\x1f{patient}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def assign_split(
    patient: str, train_fraction: float, seed: int = 0, names: tuple[str, str] = ("train", "val")
) -> str:
    """Return ``names[0]`` for a patient whose hash falls below ``train_fraction``, else ``names[1]``."""
    if not 0.0 < train_fraction < 1.0:
        raise ValueError(f"train_fraction must lie in (0, 1), got {train_fraction}")
    return names[0] if _unit_interval(seed, patient) < train_fraction else names[1]


def split_patients(
    patients: Iterable[str], train_fraction: float, seed: int = 0, names: tuple[str, str] = ("train", "val")
) -> dict[str, str]:
    """Assign each distinct patient to a side with `assign_split`.

    No rebalancing, on purpose: images are split per center and reports over all centers, and a patient must
    land on the same side in both; any rule that looks at the other patients of a call (such as moving one
    patient when a small cohort leaves a side empty) would break that. A cohort of a few patients can
    therefore leave a side empty; consumers that need both say so (e.g. `models.data.ShardDataset`).
    """
    return {p: assign_split(p, train_fraction, seed, names) for p in sorted(set(patients))}

