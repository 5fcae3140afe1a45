"""Batched GPU augmentations for pretraining: rotation, left-right flip, gamma and contrast.

Written here rather than taken from monai because monai's array transforms draw one set of parameters per
call (per image or per batch), and this step needs independent parameters per image in one batched
kernel sequence. Parameters are drawn apart from their application so the application compiles cleanly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class AugmentConfig:
    """Ranges of the random augmentations (angles in degrees, gamma/contrast as factors)."""

    max_rotation_deg: float = 15.0
    flip_prob: float = 0.5
    gamma_range: tuple[float, float] = (0.7, 1.5)
    contrast_range: tuple[float, float] = (0.75, 1.25)


def draw_augment(batch: int, cfg: AugmentConfig, generator: torch.Generator, device: torch.device) -> torch.Tensor:
    """Per-image parameters (B, 4): rotation (rad), flip sign (+-1), gamma, contrast factor."""
    u = torch.rand(batch, 4, generator=generator, device=device)
    angle = (2 * u[:, 0] - 1) * math.radians(cfg.max_rotation_deg)
    flip = torch.where(u[:, 1] < cfg.flip_prob, -1.0, 1.0)
    gamma = cfg.gamma_range[0] + u[:, 2] * (cfg.gamma_range[1] - cfg.gamma_range[0])
    contrast = cfg.contrast_range[0] + u[:, 3] * (cfg.contrast_range[1] - cfg.contrast_range[0])
    return torch.stack([angle, flip, gamma, contrast], dim=1)


def apply_augment(x: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
    """Augment images x (B, C, H, W) with intensities in [0, 1]; returns the same shape, still in [0, 1]."""
    angle, flip, gamma, contrast = params.unbind(dim=1)
    cos, sin, zero = torch.cos(angle), torch.sin(angle), torch.zeros_like(angle)
    theta = torch.stack([torch.stack([cos * flip, -sin, zero], 1), torch.stack([sin * flip, cos, zero], 1)], 1)
    grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    x = x.clamp(0.0, 1.0).pow(gamma.view(-1, 1, 1, 1))
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return ((x - mean) * contrast.view(-1, 1, 1, 1) + mean).clamp(0.0, 1.0)
