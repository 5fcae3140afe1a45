"""The vision-language projector: LLaVA-1.5's two-layer MLP with GELU ("mlp2x_gelu"), from the resampler's
width to the language model's hidden size."""

from __future__ import annotations

import torch
from torch import nn


class Projector(nn.Module):
    """Visual tokens (..., in_dim) -> (..., hidden_size) in the language model's input-embedding space."""

    def __init__(self, in_dim: int, hidden_size: int) -> None:
        super().__init__()
        self.in_dim, self.hidden_size = in_dim, hidden_size
        self.net = nn.Sequential(
            nn.Linear(in_dim, hidden_size), nn.GELU(), nn.Linear(hidden_size, hidden_size)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
