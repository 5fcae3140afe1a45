"""Slice → series → study aggregation, and the base class of the study-level heads.

Within a series, slice embeddings are pooled with gated attention (Ilse, Tomczak & Welling 2018, "Attention-based
deep multiple instance learning"): a_i = softmax_i(w^T (tanh(V h_i) ⊙ sigmoid(U h_i))), series = Σ a_i h_i, so
the few slices that show a lesion can dominate. The study embedding is the mean over the series the study has,
so a study missing a sequence is handled without imputation.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from models.heads.study_data import BagLayout, StudyTargets


def segment_softmax(scores: torch.Tensor, segments: torch.Tensor, n_segments: int) -> torch.Tensor:
    """Softmax of scores (N,) within each segment (segments (N,) in 0..n_segments-1). Hand-written: torch has
    no segment softmax (torch_geometric's is not among our dependencies); max-shifted for stability."""
    peak = scores.new_full((n_segments,), -torch.inf).scatter_reduce(0, segments, scores, "amax")
    e = torch.exp(scores - peak[segments])
    return e / e.new_zeros(n_segments).index_add(0, segments, e)[segments]


def segment_mean(values: torch.Tensor, segments: torch.Tensor, n_segments: int) -> torch.Tensor:
    """Mean of the rows of values (N, D) per segment (N,) → (n_segments, D)."""
    total = values.new_zeros(n_segments, values.shape[1]).index_add(0, segments, values)
    count = values.new_zeros(n_segments).index_add(0, segments, torch.ones_like(segments, dtype=values.dtype))
    return total / count.clamp_min(1)[:, None]


class StudyAggregator(nn.Module):
    """Gated-attention pooling of slices into series, then the mean of a study's series."""

    def __init__(self, dim: int, hidden: int = 128) -> None:
        super().__init__()
        self.attn_v = nn.Linear(dim, hidden)
        self.attn_u = nn.Linear(dim, hidden)
        self.attn_w = nn.Linear(hidden, 1)

    def attention(self, slices: torch.Tensor, layout: BagLayout) -> torch.Tensor:
        """Attention weights (N,) of slice embeddings (N, D); they sum to 1 within each series."""
        scores = self.attn_w(torch.tanh(self.attn_v(slices)) * torch.sigmoid(self.attn_u(slices))).squeeze(1)
        return segment_softmax(scores, layout.series_index, len(layout.series_study))

    def forward(self, slices: torch.Tensor, layout: BagLayout) -> torch.Tensor:
        """Study embeddings (n_studies, D) from slice embeddings (N, D) laid out as `layout`."""
        weights = self.attention(slices, layout)
        series = slices.new_zeros(len(layout.series_study), slices.shape[1])
        series = series.index_add(0, layout.series_index, weights[:, None] * slices)
        return segment_mean(series, layout.series_study, layout.n_studies)


class StudyHead(nn.Module, ABC):
    """A study-level task head: `StudyAggregator`, then `predict` on the study embedding (and, for heads that
    take them, standardised clinical covariates). `kind` names the head in saved adapters; `spec` returns the
    constructor's keyword arguments (JSON-able) so `cls(**spec)` rebuilds it."""

    kind: str = ""

    def __init__(self, dim: int, hidden: int = 128) -> None:
        super().__init__()
        self.dim, self.hidden = dim, hidden
        self.aggregate = StudyAggregator(dim, hidden)
        # MAE's linear-probe recipe: features standardised without affine parameters (running statistics at
        # evaluation). Frozen embeddings differ between images by a small part of their norm; without this, a
        # few hundred steps did not learn a disc at 256 px (tests/models/test_gradcam.py).
        self.norm = nn.BatchNorm1d(dim, affine=False)

    def forward(
        self, slices: torch.Tensor, layout: BagLayout, covariates: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        """Raw outputs (logits, risk) per study from slice embeddings (N, D) laid out as `layout`."""
        return self.predict(self.norm(self.aggregate(slices, layout)), covariates)

    @abstractmethod
    def predict(self, study: torch.Tensor, covariates: torch.Tensor | None) -> dict[str, torch.Tensor]:
        """Raw outputs from study embeddings (B, D)."""

    @abstractmethod
    def targets(self, table: pd.DataFrame) -> StudyTargets:
        """Training targets (and covariates) of the studies of a table with one row per study."""

    @abstractmethod
    def predictions(self, outputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Readable per-study columns (class names and probabilities, grades, risk scores) from raw outputs."""

    @abstractmethod
    def spec(self) -> dict[str, Any]:
        """Constructor keyword arguments, JSON-able."""
