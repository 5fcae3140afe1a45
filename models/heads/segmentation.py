"""Lesion segmentation on the hybrid encoder: a UNETR-style decoder over its four feature maps.

MONAI's `UNETR` builds its own ViT, so the decoder reuses its blocks instead (../shared/FIELD_NOTES.md): each
encoder map (strides 4, 8, 16, 32 px) is projected by a `UnetrBasicBlock` and merged by `UnetrUpBlock`s from
the coarsest map upwards; a last up-block brings stride 4 to full resolution with a skip from the input image
itself (UNETR's `encoder1`), which keeps lesion borders sharp. Output: logits (B, n_classes, H, W) for
background / lesion / oedema / necrosis (the label values of data/lesion_masks).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from monai.losses import DiceCELoss
from monai.networks.blocks import UnetOutBlock, UnetrBasicBlock, UnetrUpBlock
from torch import nn

from models.hybrid_encoder import HybridEncoder

SEG_CLASSES: tuple[str, ...] = ("background", "lesion", "oedema", "necrosis")
_NORM = "instance"  # UNETR's choice; unlike batch norm it is the same in train and eval mode
_SPATIAL_DIMS = 2


class SegmentationDecoder(nn.Module):
    """UNETR-style decoder: encoder maps at strides 4/8/16/32 px plus the input image → logits at full size.

    `width` sets the channels: 4·width at stride 32, 2·width at 16, width at 8 and 4, width/2 at full size.
    """

    def __init__(self, feature_channels: tuple[int, ...], in_chans: int, n_classes: int, width: int = 32) -> None:
        super().__init__()
        if len(feature_channels) != 4:
            raise ValueError(f"expected 4 feature maps (strides 4, 8, 16, 32 px), got channels {feature_channels}")
        if width < 2 or width % 2:
            raise ValueError(f"width must be an even number of channels ≥ 2, got {width}")
        widths = (width, width, 2 * width, 4 * width)  # per encoder map, strides 4, 8, 16, 32
        self.project = nn.ModuleList(
            UnetrBasicBlock(_SPATIAL_DIMS, c, w, kernel_size=3, stride=1, norm_name=_NORM, res_block=True)
            for c, w in zip(feature_channels, widths)
        )
        self.up = nn.ModuleList(  # stride 32 → 16 → 8 → 4
            UnetrUpBlock(_SPATIAL_DIMS, widths[i + 1], widths[i], kernel_size=3, upsample_kernel_size=2,
                         norm_name=_NORM, res_block=True)
            for i in reversed(range(3))
        )
        self.image = UnetrBasicBlock(_SPATIAL_DIMS, in_chans, width // 2, kernel_size=3, stride=1, norm_name=_NORM,
                                     res_block=True)
        self.to_full = UnetrUpBlock(_SPATIAL_DIMS, width, width // 2, kernel_size=3, upsample_kernel_size=4,
                                    norm_name=_NORM, res_block=True)
        self.out = UnetOutBlock(_SPATIAL_DIMS, width // 2, n_classes)

    def forward(self, image: torch.Tensor, feature_maps: list[torch.Tensor]) -> torch.Tensor:
        skips = [proj(m) for proj, m in zip(self.project, feature_maps)]
        x = skips[3]
        for up, skip in zip(self.up, reversed(skips[:3])):
            x = up(x, skip)
        return self.out(self.to_full(x, self.image(image)))


class SegmentationModel(nn.Module):
    """Hybrid encoder + `SegmentationDecoder`. `forward(x)`: x float (B, C, H, W) in [0, 1]
    (`models.heads.common.to_input` of uint8 slices) → logits (B, n_classes, H, W).

    A frozen encoder (`prepare_encoder(..., "probe")`) runs without building a graph, so a probe costs
    the head's backward pass only.
    """

    def __init__(self, encoder: HybridEncoder, n_classes: int = len(SEG_CLASSES), width: int = 32) -> None:
        super().__init__()
        self.encoder = encoder
        self.n_classes, self.width = n_classes, width
        self.decoder = SegmentationDecoder(encoder.feature_channels, encoder.in_chans, n_classes, width)

    def forward(self, x: torch.Tensor, feature_maps: Sequence[torch.Tensor] | None = None) -> torch.Tensor:
        """``feature_maps``: the encoder's maps of ``x`` when already computed (a probe's shared encoder pass)."""
        if feature_maps is None:
            frozen = not any(p.requires_grad for p in self.encoder.parameters())
            with torch.set_grad_enabled(torch.is_grad_enabled() and not frozen):
                feature_maps = self.encoder.forward_features(x).feature_maps
        return self.decoder(x, list(feature_maps))


def segmentation_loss() -> DiceCELoss:
    """Dice + cross-entropy on softmax logits (B, K, H, W) against integer labels (B, 1, H, W).

    Dice is pooled over the batch (`batch=True`): most slices hold no lesion, and a per-slice Dice of an
    absent class would be a noisy all-or-nothing term.
    """
    return DiceCELoss(to_onehot_y=True, softmax=True, batch=True)
