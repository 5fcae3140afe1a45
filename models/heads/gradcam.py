"""Grad-CAM for the study classifier on one slice and an overlay PNG writer.

The target layer is the encoder's fused stride-16 token grid (`HybridEncoder.token_grid`, a parameter-free
hook): it is what the study heads read, and it carries both branches (the ViT's global context and the
ConvNeXt's local detail), whereas a ConvNeXt stage would explain the local branch only. Its 16-px cells give
a 16x16 map on a 256-px slice, upsampled bilinearly to the image and scaled to [0, 1] per slice.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from torch import nn

from models.heads.aggregate import StudyHead
from models.heads.common import to_input
from models.heads.study_data import BagLayout

TARGET_LAYER = "encoder.token_grid"


class SliceClassifier(nn.Module):
    """Encoder and study head applied to single slices, each as a study of one one-slice series: float slices
    (B, C, H, W) in [0, 1] → the head's `output` logits (B, K)."""

    def __init__(self, encoder: nn.Module, head: StudyHead, output: str = "category") -> None:
        super().__init__()
        self.encoder, self.head, self.output = encoder, head, output

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # A frozen (probe) encoder has no parameter needing gradients; an input that needs them keeps the
        # graph, so the class score still back-propagates to the token grid.
        x = x if x.requires_grad else x.detach().requires_grad_(True)
        one = torch.arange(x.shape[0], device=x.device)
        return self.head(self.encoder(x), BagLayout(one, one, x.shape[0]))[self.output]


def gradcam_maps(
    encoder: nn.Module,
    head: StudyHead,
    slices: torch.Tensor,
    class_idx: int | None = None,
    output: str = "category",
    target_layer: str = TARGET_LAYER,
) -> torch.Tensor:
    """Grad-CAM maps (B, H, W) in [0, 1] of uint8 slices (B, C, H, W) for class `class_idx` of the head's
    `output` (default: each slice's predicted class), at `target_layer` (a module name under `encoder.`).

    Written here rather than with `monai.visualize.GradCAM`: MONAI captures gradients with legacy module
    backward hooks, which on the parameter-free `token_grid` (its output a view of the tokens) record the wrong
    tensor: on disc-vs-normal slices its map was lowest on the disc (0.38 inside vs 0.95 outside), while this
    computation, the same formula (Selvaraju et al. 2017) with the gradient taken by `torch.autograd.grad` on
    the hooked activation itself, gives 0.62 inside vs 0.05 outside (tests/models/test_gradcam.py)."""
    model = SliceClassifier(encoder, head, output).eval()
    device = next(encoder.parameters()).device
    captured: list[torch.Tensor] = []
    layer = model.get_submodule(target_layer)
    hook = layer.register_forward_hook(lambda _module, _args, out: captured.append(out))
    try:
        logits = model(to_input(slices).to(device))
    finally:
        hook.remove()
    activation = captured[-1]  # (B, C, h, w)
    target = logits.argmax(1) if class_idx is None else torch.full_like(logits[:, 0], class_idx, dtype=torch.long)
    (grad,) = torch.autograd.grad(logits.gather(1, target[:, None]).sum(), activation)
    cam = torch.relu((grad.mean(dim=(2, 3), keepdim=True) * activation).sum(1, keepdim=True))
    cam = F.interpolate(cam, size=slices.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
    low = cam.flatten(1).min(1).values[:, None, None]
    high = cam.flatten(1).max(1).values[:, None, None]
    return ((cam - low) / (high - low).clamp_min(1e-12)).detach().float()


def save_gradcam_overlay(
    path: str | Path, image: np.ndarray, cam: np.ndarray, mask: np.ndarray | None = None, title: str | None = None
) -> Path:
    """Write a PNG: the slice (H, W) in grey, the map (H, W, [0, 1]) as a translucent heat map and, if given,
    the lesion mask's outline (nonzero pixels) in cyan."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig = Figure(figsize=(4, 4), dpi=100)  # no pyplot: no global backend or figure registry
    ax = fig.subplots()
    ax.imshow(image, cmap="gray", vmin=0, vmax=255)
    ax.imshow(cam, cmap="jet", alpha=0.4, vmin=0.0, vmax=1.0)
    if mask is not None and np.any(mask):
        ax.contour(np.asarray(mask) > 0, levels=[0.5], colors="cyan", linewidths=1.0)
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=9)
    fig.savefig(path, bbox_inches="tight")
    return path
