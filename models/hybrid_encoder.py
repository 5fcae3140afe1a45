"""Hybrid encoder: a timm ViT branch (global context) beside a timm ConvNeXt branch (local detail), fused
per patch token. It yields a global embedding and feature maps at strides 4/8/16/32 for dense heads.

Masked pretraining (`encode_masked`) follows ConvMAE/FCMAE: the ViT sees only the visible tokens and the
ConvNeXt only the visible 32-px mask units, each as its own crop (see `HybridEncoder.encode_masked`).
"""

from __future__ import annotations

from dataclasses import dataclass

import timm
import torch
import torch.nn.functional as F
from torch import nn

from models.registry import HybridSpec, get_spec

PATCH_SIZE = 16  # pixels per ViT token side
MASK_UNIT = 32  # pixels per mask-unit side: the ConvNeXt output stride, so one unit = one stride-32 feature
SMALL_MAP_PIXELS = 64  # depthwise convolutions on maps of at most this many pixels run as matrix products


@dataclass
class EncoderFeatures:
    """Output of `HybridEncoder.forward_features` on a whole (unmasked) image.

    embedding: (B, D) global embedding. tokens: (B, N, D) fused patch tokens (N = (H/16)*(W/16)).
    feature_maps: NCHW maps at `HybridEncoder.feature_strides` (4, 8, 16, 32 px) with
    `HybridEncoder.feature_channels` channels; the stride-16 map is the fused token grid.
    """

    embedding: torch.Tensor
    tokens: torch.Tensor
    feature_maps: list[torch.Tensor]


def gather_tokens(tokens: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """Select tokens (B, N, C) at indices ids (B, K) -> (B, K, C)."""
    return torch.gather(tokens, 1, ids.unsqueeze(-1).expand(-1, -1, tokens.shape[-1]))


def unit_token_ids(unit_ids: torch.Tensor, units_per_side: int) -> torch.Tensor:
    """Indices (B, 4K) of the 16-px tokens inside mask units unit_ids (B, K) (raster indices on the unit
    grid), unit by unit and in raster order inside each unit: the order of `unit_crops`' stride-16 maps."""
    factor = MASK_UNIT // PATCH_SIZE
    grid = units_per_side * factor
    corner = (unit_ids // units_per_side) * (factor * grid) + (unit_ids % units_per_side) * factor
    step = torch.arange(factor, device=unit_ids.device)
    offsets = (step[:, None] * grid + step).flatten()
    return (corner[..., None] + offsets).flatten(1)


def unit_crops(x: torch.Tensor, unit_ids: torch.Tensor) -> torch.Tensor:
    """The mask units unit_ids (B, K) of images x (B, C, H, W) as one batch of crops (B*K, C, 32, 32)."""
    b, c, h, w = x.shape
    units = x.reshape(b, c, h // MASK_UNIT, MASK_UNIT, w // MASK_UNIT, MASK_UNIT).permute(0, 2, 4, 1, 3, 5)
    units = units.reshape(b, -1, c, MASK_UNIT, MASK_UNIT)
    return units[torch.arange(b, device=x.device)[:, None], unit_ids].flatten(0, 1)


class SmallMapDepthwiseConv2d(nn.Conv2d):
    """A stride-1, zero-padded ('same') depthwise convolution that computes maps of at most
    `SMALL_MAP_PIXELS` pixels as one batched matrix product with a per-channel Toeplitz matrix: the same
    function, on tensor cores. On the 8x8 to 1x1 maps of the 32-px crops of `HybridEncoder.encode_masked`,
    cuDNN's depthwise kernels took over a third of the H100 step (docs/BENCHMARKS.md). Larger maps use the
    convolution. Parameters keep nn.Conv2d's names, so checkpoints and timm weights load unchanged."""

    @classmethod
    def from_conv(cls, conv: nn.Conv2d) -> SmallMapDepthwiseConv2d:
        """Wrap (share the parameters of) a depthwise convolution such as timm ConvNeXt's `conv_dw`."""
        k = conv.kernel_size[0]
        if not (
            conv.groups == conv.in_channels == conv.out_channels and conv.kernel_size == (k, k) and k % 2
            and conv.stride == (1, 1) and conv.dilation == (1, 1) and conv.padding == (k // 2, k // 2)
            and conv.padding_mode == "zeros"
        ):
            raise ValueError(f"expected a stride-1 'same' depthwise convolution with an odd square kernel: {conv}")
        new = cls(conv.in_channels, conv.out_channels, k, padding=k // 2, groups=conv.groups,
                  bias=conv.bias is not None, device="meta")
        new.weight, new.bias = conv.weight, conv.bias
        return new

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        if h * w > SMALL_MAP_PIXELS:
            return super().forward(x)
        k = self.kernel_size[0]
        rows, cols = torch.arange(h, device=x.device), torch.arange(w, device=x.device)
        dr = (rows[None, :] - rows[:, None] + k // 2)[:, None, :, None]  # (out row, 1, in row, 1): kernel row
        dc = (cols[None, :] - cols[:, None] + k // 2)[None, :, None, :]  # (1, out col, 1, in col): kernel column
        inside = ((dr >= 0) & (dr < k) & (dc >= 0) & (dc < k)).reshape(h * w, h * w)
        taps = (dr.clamp(0, k - 1) * k + dc.clamp(0, k - 1)).reshape(h * w, h * w)
        toeplitz = self.weight.flatten(1)[:, taps] * inside  # (C, out pixel, in pixel)
        y = torch.matmul(x.flatten(2).transpose(0, 1), toeplitz.transpose(1, 2))  # (C, N, out pixel)
        y = y.transpose(0, 1).reshape(n, c, h, w)
        return y if self.bias is None else y + self.bias.to(y.dtype).view(1, c, 1, 1)


class HybridEncoder(nn.Module):
    """ViT + ConvNeXt encoder for single-channel or multi-sequence 2D slices of `img_size` px."""

    feature_strides: tuple[int, ...] = (4, 8, 16, 32)

    def __init__(self, spec: HybridSpec, in_chans: int = 1, img_size: int = 256) -> None:
        super().__init__()
        if img_size % MASK_UNIT:
            raise ValueError(f"img_size must be a multiple of {MASK_UNIT} px, got {img_size}")
        self.in_chans, self.img_size = in_chans, img_size
        self.vit = timm.create_model(
            spec.vit, pretrained=False, img_size=img_size, in_chans=in_chans, num_classes=0,
            global_pool="", class_token=False, **spec.vit_kwargs,
        )
        self.convnext = timm.create_model(spec.convnext, pretrained=False, in_chans=in_chans, **spec.convnext_kwargs)
        self.convnext.head = nn.Identity()  # the encoder has its own pooling; keep no unused parameters for DDP
        for stage in self.convnext.stages:
            for block in stage.blocks:
                block.conv_dw = SmallMapDepthwiseConv2d.from_conv(block.conv_dw)
        dims = [info["num_chs"] for info in self.convnext.feature_info]
        self.embed_dim: int = self.vit.embed_dim
        local_dim = dims[2] + dims[3]
        self.fuse_norm = nn.LayerNorm(local_dim)
        self.fuse_proj = nn.Linear(local_dim, self.embed_dim)
        self.fc_norm = nn.LayerNorm(self.embed_dim)
        self.feature_channels: tuple[int, ...] = (dims[0], dims[1], self.embed_dim, dims[3])
        self.grid = img_size // PATCH_SIZE  # tokens per side
        # Parameter-free hook point: the fused stride-16 token grid (B, D, H/16, W/16) that every adapter reads,
        # so Grad-CAM (`models.heads.gradcam`) can target it by name. No parameters: checkpoints load unchanged.
        self.token_grid = nn.Identity()

    def _vit_tokens(self, x: torch.Tensor, token_ids: torch.Tensor | None) -> torch.Tensor:
        """ViT over all tokens, or over the tokens token_ids (B, K) only, in that order."""
        tokens = self.vit.patch_embed(x) + self.vit.pos_embed
        if token_ids is not None:
            tokens = gather_tokens(tokens, token_ids)
        return self.vit.norm(self.vit.blocks(self.vit.norm_pre(tokens)))

    def _conv_maps(self, x: torch.Tensor) -> list[torch.Tensor]:
        """ConvNeXt stage outputs (strides 4, 8, 16, 32 px)."""
        maps = [self.convnext.stem(x)]
        for stage in self.convnext.stages:
            maps.append(stage(maps[-1]))
        return maps[1:]

    def _local_tokens(self, maps: list[torch.Tensor]) -> torch.Tensor:
        """Per 16-px token (raster order of the map), its stride-16 and stride-32 ConvNeXt features,
        normalised and projected to the ViT width: (B, N, D)."""
        c16 = maps[2].flatten(2).transpose(1, 2)
        c32 = F.interpolate(maps[3], scale_factor=2, mode="nearest").flatten(2).transpose(1, 2)
        return self.fuse_proj(self.fuse_norm(torch.cat([c16, c32], dim=-1)))

    def encode_masked(self, x: torch.Tensor, unit_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Encode only the visible mask units unit_ids (B, K) of x (B, C, H, W).

        Returns the fused tokens (B, 4K, D) of those units, in the order of
        `unit_token_ids(unit_ids, H // 32)`, and the embeddings (B, D).

        The ViT sees the visible tokens only (MAE). The ConvNeXt runs on the B*K visible units as separate
        32x32 crops, zero-padded at their borders: a stricter form of FCMAE's sparse convolution, in which
        every neighbouring unit counts as masked, visible or not. No masked pixel can leak, the ConvNeXt does
        (1 - mask ratio) of the dense work as large-batch small convolutions, and a unit's crop maps at
        strides 16/32 are exactly its 2x2 tokens. The price is no context across unit borders in
        pretraining; `forward_features` (fine-tuning, inference) runs densely over the whole image, as FCMAE
        does.
        """
        token_ids = unit_token_ids(unit_ids, x.shape[-1] // MASK_UNIT)
        local = self._local_tokens(self._conv_maps(unit_crops(x, unit_ids)))
        local = local.reshape(x.shape[0], token_ids.shape[1], -1)
        tokens = self._vit_tokens(x, token_ids) + local
        return tokens, self.fc_norm(tokens.mean(dim=1))

    def forward_features(self, x: torch.Tensor) -> EncoderFeatures:
        """Whole-image features for downstream adapters."""
        maps = self._conv_maps(x)
        tokens = self._vit_tokens(x, None) + self._local_tokens(maps)
        # The embedding and tokens are read back from the grid, so gradients of any output pass `token_grid`.
        grid = self.token_grid(tokens.transpose(1, 2).reshape(x.shape[0], self.embed_dim, self.grid, self.grid))
        tokens = grid.flatten(2).transpose(1, 2)
        return EncoderFeatures(
            embedding=self.fc_norm(tokens.mean(dim=1)), tokens=tokens, feature_maps=[maps[0], maps[1], grid, maps[3]]
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Global embedding (B, D)."""
        return self.forward_features(x).embedding


def create_encoder(name: str, in_chans: int = 1, img_size: int = 256) -> HybridEncoder:
    """A randomly initialised hybrid encoder of a registered size (`models.registry.list_sizes()`)."""
    return HybridEncoder(get_spec(name), in_chans=in_chans, img_size=img_size)
