"""Random and block-wise masks on the 32-px mask-unit grid shared by both encoder branches.

Each batch uses one fixed number of visible units (drawn per step from a small set of ratios), so shapes
stay static for `torch.compile`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from models.hybrid_encoder import MASK_UNIT, PATCH_SIZE


def visible_units(img_size: int, mask_ratio: float) -> int:
    """Number of visible mask units per image for a mask ratio in (0, 1)."""
    if not 0.0 < mask_ratio < 1.0:
        raise ValueError(f"mask_ratio must lie in (0, 1), got {mask_ratio}")
    units = (img_size // MASK_UNIT) ** 2
    return max(1, round(units * (1.0 - mask_ratio)))


def draw_unit_mask(
    batch: int, img_size: int, n_visible: int, blockwise_prob: float, generator: torch.Generator, device: torch.device
) -> torch.Tensor:
    """Visibility of each mask unit, bool (B, 1, H/32, W/32) with exactly `n_visible` True per image.

    Random masking keeps the units of lowest uniform noise. Block-wise masking (drawn per image with
    probability `blockwise_prob`) smooths that noise with a 3x3 box filter first, so kept and masked units
    form contiguous blobs (the effect of BEiT's block masking, at an exact ratio and without a Python loop).
    """
    side = img_size // MASK_UNIT
    noise = torch.rand(batch, 1, side, side, generator=generator, device=device)
    if blockwise_prob > 0:
        smooth = F.avg_pool2d(noise, 3, stride=1, padding=1, count_include_pad=False)
        blockwise = torch.rand(batch, 1, 1, 1, generator=generator, device=device) < blockwise_prob
        noise = torch.where(blockwise, smooth, noise)
    keep = noise.flatten(1).argsort(dim=1)[:, :n_visible]
    visible = torch.zeros(batch, side * side, dtype=torch.bool, device=device).scatter_(1, keep, True)
    return visible.view(batch, 1, side, side)


def token_visibility(unit_visible: torch.Tensor) -> torch.Tensor:
    """Per-token visibility (B, N) of the 16-px ViT tokens under a unit mask (B, 1, h, w)."""
    factor = MASK_UNIT // PATCH_SIZE
    return unit_visible.repeat_interleave(factor, 2).repeat_interleave(factor, 3).flatten(1)


def visible_unit_ids(unit_visible: torch.Tensor, n_visible: int) -> torch.Tensor:
    """Raster indices (B, n_visible) of the visible units of a unit mask (B, 1, h, w) with exactly
    `n_visible` True per image (a static count, so shapes stay fixed under `torch.compile`)."""
    return torch.argsort((~unit_visible.flatten(1)).to(torch.int8), dim=1, stable=True)[:, :n_visible]
