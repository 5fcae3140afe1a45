"""Pretraining losses: normalised-pixel reconstruction on masked patches, patch statistics, InfoNCE."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def patchify(x: torch.Tensor, patch: int) -> torch.Tensor:
    """Images (B, C, H, W) -> patches (B, N, patch*patch*C) in raster order of the patch grid."""
    b, c, h, w = x.shape
    x = x.reshape(b, c, h // patch, patch, w // patch, patch)
    return x.permute(0, 2, 4, 3, 5, 1).reshape(b, (h // patch) * (w // patch), patch * patch * c)


def unpatchify(patches: torch.Tensor, patch: int, channels: int, size: int) -> torch.Tensor:
    """Inverse of `patchify` for square images of `size` px."""
    b, side = patches.shape[0], size // patch
    x = patches.reshape(b, side, side, patch, patch, channels).permute(0, 5, 1, 3, 2, 4)
    return x.reshape(b, channels, size, size)


def patch_stats(patches: torch.Tensor, eps: float = 1e-6) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-patch mean and standard deviation (B, N) as in MAE's normalised-pixel target."""
    mean = patches.mean(dim=-1)
    std = (patches.var(dim=-1) + eps).sqrt()
    return mean, std


def masked_mean(per_token: torch.Tensor, masked: torch.Tensor) -> torch.Tensor:
    """Mean of per-token losses (B, N) over masked tokens (masked: (B, N) in {0, 1})."""
    return (per_token * masked).sum() / masked.sum().clamp_min(1.0)


def info_nce(z1: torch.Tensor, z2: torch.Tensor, temperature: float) -> torch.Tensor:
    """Symmetric InfoNCE between paired embeddings (B, D): row i of z1 and z2 are the positive pair,
    the other rows of the batch the negatives. Inputs need not be normalised."""
    z1, z2 = F.normalize(z1.float(), dim=-1), F.normalize(z2.float(), dim=-1)
    logits = z1 @ z2.T / temperature
    target = torch.arange(z1.shape[0], device=z1.device)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))
