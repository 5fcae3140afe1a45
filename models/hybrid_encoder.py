"""Hybrid encoder: a timm ViT branch (global context) beside a timm ConvNeXt branch (local detail), fused
per patch token. It yields a global embedding and feature maps at strides 4/8/16/32 for dense heads.

Masked pretraining (`encode_masked`) follows ConvMAE/FCMAE: the ViT sees only the visible tokens and the
ConvNeXt only the visible 32-px mask units, each as its own crop or, with ``conv_masking="dense"``, in the
whole image with the masked units zeroed (see `HybridEncoder.encode_masked`). For the ablations of issue 13
either branch can be left out (`HybridSpec.branches`); every variant keeps the same `forward_features` contract.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

import timm
import torch
import torch.nn.functional as F
from torch import nn

from models.registry import HybridSpec, get_spec

PATCH_SIZE = 16  # pixels per ViT token side
MASK_UNIT = 32  # pixels per mask-unit side: the ConvNeXt output stride, so one unit = one stride-32 feature
SMALL_MAP_PIXELS = 64  # depthwise convolutions on maps of at most this many pixels run as matrix products
ConvMasking = Literal["crops", "dense"]
CONV_MASKINGS: tuple[str, ...] = get_args(ConvMasking)


def check_conv_masking(conv_masking: str) -> ConvMasking:
    """Return `conv_masking` if it names a mode of `HybridEncoder.encode_masked`, else raise with the choices."""
    if conv_masking not in CONV_MASKINGS:
        raise ValueError(f"conv_masking must be one of {CONV_MASKINGS}, got {conv_masking!r}")
    return conv_masking  # type: ignore[return-value]


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


def zero_masked_units(x: torch.Tensor, unit_ids: torch.Tensor) -> torch.Tensor:
    """Images x (B, C, H, W) with every pixel outside the visible mask units unit_ids (B, K) set to 0."""
    b, side = x.shape[0], x.shape[-1] // MASK_UNIT
    visible = torch.zeros(b, side * side, dtype=torch.bool, device=x.device).scatter_(1, unit_ids, True)
    visible = visible.view(b, 1, side, 1, side, 1).expand(-1, -1, -1, MASK_UNIT, -1, MASK_UNIT)
    return torch.where(visible.reshape(b, 1, side * MASK_UNIT, side * MASK_UNIT), x, torch.zeros((), dtype=x.dtype))


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
    """ViT + ConvNeXt encoder for single-channel or multi-sequence 2D slices of `img_size` px.

    `spec.branches` leaves a branch out (`vit`, `convnext` are then None): the ConvNeXt alone makes its
    tokens with the fusion projection, at the ViT's width; the ViT alone makes its stride-4/8/32 maps from
    the token grid with `pyramid` (ViTDet's simple feature pyramid, reduced to one transposed convolution
    per upsampled scale, 2x2 max pooling down). The pyramid serves dense heads only: masked pretraining
    does not use it, so a frozen probe sees it at its random initialisation: a linear map that keeps each
    token's information (4D and 2D values per token at strides 4 and 8, for a D-wide token).
    """

    feature_strides: tuple[int, ...] = (4, 8, 16, 32)

    def __init__(self, spec: HybridSpec, in_chans: int = 1, img_size: int = 256) -> None:
        super().__init__()
        if img_size % MASK_UNIT:
            raise ValueError(f"img_size must be a multiple of {MASK_UNIT} px, got {img_size}")
        self.in_chans, self.img_size = in_chans, img_size
        vit_args = {"pretrained": False, "img_size": img_size, "in_chans": in_chans, "num_classes": 0,
                    "global_pool": "", "class_token": False, **spec.vit_kwargs}
        self.vit: nn.Module | None = None
        self.convnext: nn.Module | None = None
        self.pyramid: nn.ModuleList | None = None
        if spec.branches == "convnext":
            with torch.device("meta"):  # the ViT's width only: no memory, no initialisation
                self.embed_dim: int = timm.create_model(spec.vit, **vit_args).embed_dim
        else:
            self.vit = timm.create_model(spec.vit, **vit_args)
            self.embed_dim = self.vit.embed_dim
        dim = self.embed_dim
        if spec.branches == "vit":
            if dim % 4:
                raise ValueError(f"a ViT-only encoder needs an embed_dim divisible by 4, got {dim}")
            self.pyramid = nn.ModuleList([nn.ConvTranspose2d(dim, dim // 4, 4, stride=4),
                                          nn.ConvTranspose2d(dim, dim // 2, 2, stride=2)])
            self.feature_channels: tuple[int, ...] = (dim // 4, dim // 2, dim, dim)
        else:
            self.convnext = timm.create_model(
                spec.convnext, pretrained=False, in_chans=in_chans, **spec.convnext_kwargs
            )
            self.convnext.head = nn.Identity()  # the encoder has its own pooling; keep no unused parameters for DDP
            for stage in self.convnext.stages:
                for block in stage.blocks:
                    block.conv_dw = SmallMapDepthwiseConv2d.from_conv(block.conv_dw)
            dims = [info["num_chs"] for info in self.convnext.feature_info]
            local_dim = dims[2] + dims[3]
            self.fuse_norm = nn.LayerNorm(local_dim)
            self.fuse_proj = nn.Linear(local_dim, dim)
            self.feature_channels = (dims[0], dims[1], dim, dims[3])
        self.fc_norm = nn.LayerNorm(dim)
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

    def encode_masked(
        self, x: torch.Tensor, unit_ids: torch.Tensor, conv_masking: ConvMasking = "crops"
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Encode only the visible mask units unit_ids (B, K) of x (B, C, H, W).

        Returns the fused tokens (B, 4K, D) of those units, in the order of
        `unit_token_ids(unit_ids, H // 32)`, and the embeddings (B, D).

        The ViT sees the visible tokens only (MAE). The ConvNeXt, by `conv_masking`:

        - ``crops``: it runs on the B*K visible units as separate 32x32 crops, zero-padded at their borders:
          a stricter form of FCMAE's sparse convolution, in which every neighbouring unit counts as masked,
          visible or not. The ConvNeXt does (1 - mask ratio) of the dense work as large-batch small
          convolutions, and a unit's crop maps at strides 16/32 are exactly its 2x2 tokens. The price is no
          context across unit borders in pretraining, while `forward_features` (fine-tuning, inference) runs
          densely over the whole image, as FCMAE does.
        - ``dense`` (FCMAE-style): it runs on the whole image with the masked units set to 0, and the
          visible units' stride-16/32 features are gathered, so visible units see their visible neighbours
          as in fine-tuning, at the full dense cost. The ConvNeXt's stem and downsampling layers are aligned
          with the 32-px units, but its 7x7 depthwise convolutions cross unit borders.

        No masked pixel can leak in either mode: in ``dense`` the masked content is replaced by zeros before
        the first layer, so nothing computed downstream depends on it. What ``dense`` does differ in from
        FCMAE's true sparse convolution: masked positions are not empty but hold zeros, and after the stem's
        bias and LayerNorm, then each block's convolution and MLP, they carry features of their own (from
        biases and from visible neighbours) that flow back into nearby visible units at later layers; a
        sparse convolution (or FCMAE's dense form, re-masking after every layer) keeps them empty throughout.
        """
        token_ids = unit_token_ids(unit_ids, x.shape[-1] // MASK_UNIT)
        local = None
        if self.convnext is not None:
            if check_conv_masking(conv_masking) == "crops":
                local = self._local_tokens(self._conv_maps(unit_crops(x, unit_ids)))
                local = local.reshape(x.shape[0], token_ids.shape[1], -1)
            else:
                local = self._local_tokens(self._conv_maps(zero_masked_units(x, unit_ids)))
                local = gather_tokens(local, token_ids)
        tokens = self._fuse(self._vit_tokens(x, token_ids) if self.vit is not None else None, local)
        return tokens, self.fc_norm(tokens.mean(dim=1))

    @staticmethod
    def _fuse(vit_tokens: torch.Tensor | None, local_tokens: torch.Tensor | None) -> torch.Tensor:
        """The sum of the branches' tokens (B, N, D) that exist."""
        if vit_tokens is None or local_tokens is None:
            tokens = vit_tokens if local_tokens is None else local_tokens
            assert tokens is not None, "an encoder has at least one branch (HybridSpec.branches)"
            return tokens
        return vit_tokens + local_tokens

    def forward_features(self, x: torch.Tensor) -> EncoderFeatures:
        """Whole-image features for downstream adapters.

        An encoder whose weights were cast to bfloat16 (inference: `brainfm predict`) runs in bfloat16 throughout,
        under autocast or not: autocast would run its LayerNorms in float32 and cast each of their outputs back,
        about a tenth of its time on the CPU (docs/BENCHMARKS.md)."""
        dtype = next(self.parameters()).dtype
        if dtype == torch.bfloat16:
            with torch.autocast(x.device.type, enabled=False):
                return self._features(x.to(dtype))
        return self._features(x)

    def _features(self, x: torch.Tensor) -> EncoderFeatures:
        maps = self._conv_maps(x) if self.convnext is not None else None
        tokens = self._fuse(
            self._vit_tokens(x, None) if self.vit is not None else None,
            self._local_tokens(maps) if maps is not None else None,
        )
        # The embedding, tokens and (ViT alone) pyramid are read back from the grid, so gradients of any
        # output pass `token_grid`.
        grid = self.token_grid(tokens.transpose(1, 2).reshape(x.shape[0], self.embed_dim, self.grid, self.grid))
        tokens = grid.flatten(2).transpose(1, 2)
        if maps is not None:
            feature_maps = [maps[0], maps[1], grid, maps[3]]
        else:
            assert self.pyramid is not None
            feature_maps = [self.pyramid[0](grid), self.pyramid[1](grid), grid, F.max_pool2d(grid, 2)]
        return EncoderFeatures(embedding=self.fc_norm(tokens.mean(dim=1)), tokens=tokens, feature_maps=feature_maps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Global embedding (B, D)."""
        return self.forward_features(x).embedding


def create_encoder(name: str, in_chans: int = 1, img_size: int = 256) -> HybridEncoder:
    """A randomly initialised encoder of a registered size (`models.registry.list_sizes()`), e.g. `tiny`
    (hybrid), `tiny-vit`, `tiny-convnext`."""
    return HybridEncoder(get_spec(name), in_chans=in_chans, img_size=img_size)
