"""Ordinal grading, one family per grade scale, trained only on studies that have a grade.

Choice: CORAL (Cao, Mirjalili & Raschka 2020, "Rank consistent ordinal regression for neural networks"). A grade
with K levels becomes K-1 binary tasks "level > k" that share one weight vector and differ only in their bias,
so the predicted probabilities are rank-consistent and a few graded studies (a handful per scale in the cohort)
train few parameters: D + K-1 per scale. A cumulative-link (proportional-odds) model has the same linear form;
CORAL's per-threshold binary cross-entropy is simpler to mask per family. The predicted level is the number of
thresholds with P(level > k) > 0.5.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from models.heads.aggregate import StudyHead
from models.heads.study_data import StudyTargets, as_pandas

# Grade scales by subtype, lowest level first (brainfm.synth.lesions draws exactly these).
GRADE_SCALES: dict[str, tuple[str, ...]] = {
    "glioma": ("WHO 2", "WHO 3", "WHO 4"),
    "meningioma": ("WHO 1", "WHO 2"),
    "pituitary_adenoma": ("microadenoma", "macroadenoma"),
    "subdural_hematoma": ("subacute", "chronic"),
}


class GradingHead(StudyHead):
    """CORAL logits (B, T) over all families' thresholds; family f owns the thresholds `threshold_family == f`."""

    kind = "grading"

    def __init__(self, dim: int, scales: Mapping[str, Sequence[str]] | None = None, hidden: int = 128) -> None:
        super().__init__(dim, hidden)
        self.scales = {k: list(v) for k, v in (GRADE_SCALES if scales is None else scales).items()}
        if any(len(levels) < 2 for levels in self.scales.values()):
            raise ValueError(f"every grade scale needs at least two levels: {self.scales}")
        self.families = list(self.scales)
        family, rank = zip(*[(f, k) for f, levels in enumerate(self.scales.values()) for k in range(len(levels) - 1)])
        self.register_buffer("threshold_family", torch.tensor(family, dtype=torch.long), persistent=False)
        self.register_buffer("threshold_rank", torch.tensor(rank, dtype=torch.long), persistent=False)
        self.weight = nn.Linear(dim, len(self.families), bias=False)  # one shared weight vector per family
        self.bias = nn.Parameter(torch.zeros(len(family)))  # one bias per threshold

    def predict(self, study: torch.Tensor, covariates: torch.Tensor | None) -> dict[str, torch.Tensor]:
        return {"grade": self.weight(study)[:, self.threshold_family] + self.bias}

    def targets(self, table: pd.DataFrame) -> StudyTargets:
        """Per study and threshold (B, T): `graded` (the threshold is on the study's own scale and the study has
        a grade: only these enter the loss) and `above` (1 where the grade is above that threshold)."""
        frame = as_pandas(table, ("study", "subtype", "grade"))
        family, level = [], []
        for subtype, grade in zip(frame["subtype"], frame["grade"]):
            if subtype not in self.scales or grade is None or pd.isna(grade):
                family.append(-1)
                level.append(0)
                continue
            if grade not in self.scales[subtype]:
                raise ValueError(f"grade {grade!r} of a {subtype} study is not on its scale {self.scales[subtype]}")
            family.append(self.families.index(subtype))
            level.append(self.scales[subtype].index(grade))
        family_t, level_t = torch.tensor(family)[:, None], torch.tensor(level)[:, None]
        values = {
            "graded": family_t == self.threshold_family.cpu()[None, :],
            "above": (level_t > self.threshold_rank.cpu()[None, :]).float(),
        }
        return StudyTargets(tuple(frame["study"]), values)

    def predictions(self, outputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Per family: the predicted grade (`grade_<family>`, a level name; read the column of the study's
        subtype) and P(level > k) per threshold (`p_<family>_gt_<level k>`)."""
        probs = torch.sigmoid(torch.as_tensor(outputs["grade"])).numpy()
        family = self.threshold_family.cpu().numpy()
        columns: dict[str, np.ndarray] = {}
        for f, (name, levels) in enumerate(self.scales.items()):
            p = probs[:, family == f]
            columns[f"grade_{name}"] = np.asarray(levels)[(p > 0.5).sum(1)]
            columns |= {f"p_{name}_gt_{levels[k]}": p[:, k] for k in range(p.shape[1])}
        return columns

    def spec(self) -> dict[str, Any]:
        return {"dim": self.dim, "hidden": self.hidden, "scales": self.scales}


def ordinal_loss(outputs: dict[str, torch.Tensor], targets: dict[str, torch.Tensor]) -> torch.Tensor:
    """CORAL loss: binary cross-entropy of "grade > threshold" over the `graded` (study, threshold) pairs,
    averaged; zero (keeping the graph) for a batch without a graded study."""
    logits, graded = outputs["grade"], targets["graded"]
    if not graded.any():
        return logits.sum() * 0.0
    return F.binary_cross_entropy_with_logits(logits[graded], targets["above"][graded])
