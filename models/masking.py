"""Random, block-wise and lesion-aware masks on the 32-px mask-unit grid shared by both encoder branches.

Each batch uses one fixed number of visible units (drawn per step from a small set of ratios), so shapes
stay static for `torch.compile`. Lesion-aware masking (issue 13) keeps units near lesions visible less often,
so they are masked, and reconstructed, more often.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from models.augment import apply_augment
from models.hybrid_encoder import MASK_UNIT, PATCH_SIZE

LESION_BORDER_PX = 4  # a pixel within this many pixels (max-norm) of a lesion counts as its border: ~4 mm at 1 mm/px


def visible_units(img_size: int, mask_ratio: float) -> int:
    """Number of visible mask units per image for a mask ratio in (0, 1)."""
    if not 0.0 < mask_ratio < 1.0:
        raise ValueError(f"mask_ratio must lie in (0, 1), got {mask_ratio}")
    units = (img_size // MASK_UNIT) ** 2
    return max(1, round(units * (1.0 - mask_ratio)))


def mask_noise(
    batch: int, img_size: int, blockwise_prob: float, generator: torch.Generator, device: torch.device
) -> torch.Tensor:
    """Per-unit noise in [0, 1) (B, 1, H/32, W/32) from which `visible_from_noise` keeps the lowest units.

    Uniform noise gives random masking. Block-wise masking (drawn per image with probability
    `blockwise_prob`) smooths that noise with a 3x3 box filter, so kept and masked units form contiguous
    blobs (the effect of BEiT's block masking, at an exact ratio and without a Python loop).
    """
    side = img_size // MASK_UNIT
    noise = torch.rand(batch, 1, side, side, generator=generator, device=device)
    if blockwise_prob > 0:
        smooth = F.avg_pool2d(noise, 3, stride=1, padding=1, count_include_pad=False)
        blockwise = torch.rand(batch, 1, 1, 1, generator=generator, device=device) < blockwise_prob
        noise = torch.where(blockwise, smooth, noise)
    return noise


def visible_from_noise(
    noise: torch.Tensor, n_visible: int, lesion_weights: torch.Tensor | None = None, lesion_bias: float = 0.0
) -> torch.Tensor:
    """Keep the `n_visible` units of lowest noise (B, 1, h, w): bool of the same shape, exactly `n_visible`
    True per image.

    With lesion_weights w in [0, 1] (B, 1, h, w) (`lesion_unit_weights`) and lesion_bias b > 0, the noise
    becomes -log(1 - u) * (1 + b * w): on uniform noise u, an exponential race (Efraimidis & Spirakis, 2006),
    i.e. the visible units are drawn one by one without replacement, each with probability proportional to
    1 / (1 + b * w) among the units left (as `torch.multinomial` without replacement draws). A lesion unit
    (w = 1) is thus kept (1 + b) times less readily than a unit far from any lesion (w = 0); at one visible
    unit per image that is exactly the ratio of their visible probabilities. On block-wise noise the same
    factor scales the smoothed noise: lesion units still lose, blobs still form. w = 0 everywhere (a slice
    without a mask) leaves the order, hence the mask, unchanged.
    """
    if lesion_weights is not None and lesion_bias > 0:
        noise = -torch.log1p(-noise) * (1.0 + lesion_bias * lesion_weights)
    batch, _, h, w = noise.shape
    keep = noise.flatten(1).argsort(dim=1)[:, :n_visible]
    visible = torch.zeros(batch, h * w, dtype=torch.bool, device=noise.device).scatter_(1, keep, True)
    return visible.view(batch, 1, h, w)


def draw_unit_mask(
    batch: int, img_size: int, n_visible: int, blockwise_prob: float, generator: torch.Generator,
    device: torch.device, lesion_weights: torch.Tensor | None = None, lesion_bias: float = 0.0,
) -> torch.Tensor:
    """Visibility of each mask unit, bool (B, 1, H/32, W/32) with exactly `n_visible` True per image:
    `mask_noise` then `visible_from_noise` (see both)."""
    noise = mask_noise(batch, img_size, blockwise_prob, generator, device)
    return visible_from_noise(noise, n_visible, lesion_weights, lesion_bias)


def lesion_unit_weights(
    lesion: torch.Tensor, augment: torch.Tensor | None = None, border_px: int = LESION_BORDER_PX
) -> torch.Tensor:
    """Per mask unit, the fraction of its pixels within `border_px` px of a lesion (the lesion and its
    border), float (B, 1, H/32, W/32) in [0, 1], from binary lesion maps (B, 1, H, W) of the input slices.

    augment: the views' parameters (B, 4) (`models.augment.draw_augment`): the map is rotated and flipped
    as the view is, so the weights lie where the augmented view shows the lesion.
    """
    near = F.max_pool2d(lesion.float(), 2 * border_px + 1, stride=1, padding=border_px)
    if augment is not None:
        # apply_augment's geometry alone: a gamma and contrast factor of 1 leave values unchanged.
        near = apply_augment(near, torch.cat([augment[:, :2], torch.ones_like(augment[:, 2:])], dim=1))
    return F.avg_pool2d(near, MASK_UNIT)


def token_visibility(unit_visible: torch.Tensor) -> torch.Tensor:
    """Per-token visibility (B, N) of the 16-px ViT tokens under a unit mask (B, 1, h, w)."""
    factor = MASK_UNIT // PATCH_SIZE
    return unit_visible.repeat_interleave(factor, 2).repeat_interleave(factor, 3).flatten(1)


def visible_unit_ids(unit_visible: torch.Tensor, n_visible: int) -> torch.Tensor:
    """Raster indices (B, n_visible) of the visible units of a unit mask (B, 1, h, w) with exactly
    `n_visible` True per image (a static count, so shapes stay fixed under `torch.compile`)."""
    return torch.argsort((~unit_visible.flatten(1)).to(torch.int8), dim=1, stable=True)[:, :n_visible]
