"""Masked-autoencoder pretraining of the hybrid encoder (MAE + ConvMAE/FCMAE masking + a consistency loss).

The decoder predicts, for every patch, its normalised pixels (MAE's target) and its mean and standard
deviation, so a reconstruction in intensity units exists without peeking at the target (needed for an
honest SSIM/PSNR against the mean-filled baseline).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from timm.layers.pos_embed_sincos import build_sincos2d_pos_embed
from timm.models.vision_transformer import Block
from torch import nn

from models.augment import apply_augment
from models.hybrid_encoder import (
    MASK_UNIT,
    PATCH_SIZE,
    ConvMasking,
    HybridEncoder,
    check_conv_masking,
    create_encoder,
    unit_token_ids,
)
from models.losses import info_nce, masked_mean, patch_stats, patchify, unpatchify
from models.masking import token_visibility, visible_unit_ids
from models.registry import get_spec


class MAEOutput(NamedTuple):
    """Losses of one pretraining forward (scalars); `loss` is the weighted total."""

    loss: torch.Tensor
    pixel_loss: torch.Tensor
    stats_loss: torch.Tensor
    consistency_loss: torch.Tensor


class MaskedAutoencoder(nn.Module):
    """Hybrid encoder + light Transformer decoder + projector for the two-view InfoNCE loss.

    conv_masking: how the ConvNeXt branch sees a masked image (`HybridEncoder.encode_masked`). A ViT-only
    encoder's feature pyramid takes no part in masked pretraining: it is frozen here (no gradient, so DDP
    needs no unused-parameter search) and trains with the dense heads.
    """

    def __init__(
        self,
        encoder: HybridEncoder,
        decoder_dim: int,
        decoder_depth: int,
        decoder_heads: int,
        projector_dim: int,
        stats_weight: float = 1.0,
        consistency_weight: float = 0.1,
        temperature: float = 0.2,
        conv_masking: ConvMasking = "crops",
    ) -> None:
        super().__init__()
        if check_conv_masking(conv_masking) == "dense" and encoder.convnext is None:
            raise ValueError("conv_masking='dense' needs a ConvNeXt branch; a ViT-only encoder is a plain MAE "
                             "(leave conv_masking at 'crops')")
        self.encoder, self.conv_masking = encoder, conv_masking
        if encoder.pyramid is not None:
            encoder.pyramid.requires_grad_(False)
        self.stats_weight, self.consistency_weight, self.temperature = stats_weight, consistency_weight, temperature
        dim, grid = encoder.embed_dim, encoder.grid
        self.decoder_embed = nn.Linear(dim, decoder_dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, decoder_dim))
        nn.init.normal_(self.mask_token, std=0.02)
        self.register_buffer("decoder_pos", build_sincos2d_pos_embed([grid, grid], decoder_dim)[None], persistent=False)
        self.decoder_blocks = nn.Sequential(
            *[Block(decoder_dim, decoder_heads, mlp_ratio=4.0, qkv_bias=True) for _ in range(decoder_depth)]
        )
        self.decoder_norm = nn.LayerNorm(decoder_dim)
        self.patch_dim = PATCH_SIZE * PATCH_SIZE * encoder.in_chans
        self.decoder_pred = nn.Linear(decoder_dim, self.patch_dim + 2)  # normalised pixels, patch mean, patch std
        self.projector = nn.Sequential(nn.Linear(dim, dim), nn.GELU(), nn.Linear(dim, projector_dim))

    def _predict(
        self, views: torch.Tensor, unit_visible: torch.Tensor, n_visible_units: int
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per-patch predictions (V, N, patch_dim + 2) in float32, embeddings (V, D), token visibility (V, N)."""
        unit_ids = visible_unit_ids(unit_visible, n_visible_units)
        token_ids = unit_token_ids(unit_ids, views.shape[-1] // MASK_UNIT)
        token_visible = token_visibility(unit_visible)
        tokens, embedding = self.encoder.encode_masked(views, unit_ids, self.conv_masking)
        visible = self.decoder_embed(tokens)
        full = self.mask_token.to(visible.dtype).expand(views.shape[0], token_visible.shape[1], -1)
        full = full.scatter(1, token_ids.unsqueeze(-1).expand(-1, -1, visible.shape[-1]), visible)
        decoded = self.decoder_norm(self.decoder_blocks(full + self.decoder_pos.to(full.dtype)))
        return self.decoder_pred(decoded).float(), embedding, token_visible

    def forward(
        self,
        slices: torch.Tensor,
        unit_visible: torch.Tensor,
        n_visible_units: int,
        augment: torch.Tensor | None = None,
    ) -> MAEOutput:
        """Pretraining losses for uint8 slices (B, C, H, W).

        augment: per-view parameters (V*B, 4) from `models.augment.draw_augment`; with two views per slice
        (V = 2) the InfoNCE consistency loss between the views' embeddings is added. unit_visible:
        (V*B, 1, H/32, W/32) bool with exactly `n_visible_units` True per view.
        """
        views = slices.float() / 255.0
        if augment is not None:
            views = apply_augment(views.repeat(augment.shape[0] // views.shape[0], 1, 1, 1), augment)
        pred, embedding, token_visible = self._predict(views, unit_visible, n_visible_units)
        target = patchify(views, PATCH_SIZE)
        mean, std = patch_stats(target)
        masked = (~token_visible).float()
        pixel = masked_mean(((pred[..., : self.patch_dim] - (target - mean[..., None]) / std[..., None]) ** 2).mean(-1), masked)
        stats = masked_mean(((pred[..., self.patch_dim :] - torch.stack([mean, std], -1)) ** 2).mean(-1), masked)
        if views.shape[0] == 2 * slices.shape[0]:
            z1, z2 = self.projector(embedding).chunk(2)
            consistency = info_nce(z1, z2, self.temperature)
        else:
            consistency = torch.zeros((), device=views.device)
        loss = pixel + self.stats_weight * stats + self.consistency_weight * consistency
        return MAEOutput(loss, pixel, stats, consistency)

    @torch.no_grad()
    def reconstruct(self, slices: torch.Tensor, unit_visible: torch.Tensor, n_visible_units: int) -> torch.Tensor:
        """Reconstruction in [0, 1] (B, C, H, W): visible patches from the input, masked ones predicted."""
        views = slices.float() / 255.0
        pred, _, token_visible = self._predict(views, unit_visible, n_visible_units)
        patches = pred[..., : self.patch_dim] * pred[..., -1:].clamp_min(0) + pred[..., -2:-1]
        patches = torch.where(token_visible[..., None], patchify(views, PATCH_SIZE), patches.clamp(0.0, 1.0))
        return unpatchify(patches, PATCH_SIZE, views.shape[1], views.shape[-1])


def create_mae(
    name: str, in_chans: int = 1, img_size: int = 256, conv_masking: ConvMasking = "crops", **loss_kwargs: float
) -> MaskedAutoencoder:
    """MAE around a new encoder of a registered size (e.g. `tiny`, `tiny-vit`, `tiny-convnext`);
    loss_kwargs: stats_weight, consistency_weight, temperature."""
    spec = get_spec(name)
    return MaskedAutoencoder(
        create_encoder(name, in_chans=in_chans, img_size=img_size),
        spec.decoder_dim, spec.decoder_depth, spec.decoder_heads, spec.projector_dim,
        conv_masking=conv_masking, **loss_kwargs,
    )
