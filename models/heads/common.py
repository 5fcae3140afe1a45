"""What every task adapter shares: how the encoder is trained beside its head, and how slices enter it.

Two regimes, as foundation-model papers report them (RETFound, BrainIAC): ``probe`` freezes the pretrained
encoder (eval mode, no gradients) and trains the head alone; ``finetune`` trains both, the encoder at
``encoder_lr_scale`` times the head's learning rate so that pretrained features are adjusted, not erased.
"""

from __future__ import annotations

from typing import Literal, get_args

import torch
from torch import nn

AdapterMode = Literal["probe", "finetune"]
ADAPTER_MODES: tuple[str, ...] = get_args(AdapterMode)


def check_mode(mode: str) -> AdapterMode:
    """Return ``mode`` if it is a known regime, else raise with the choices."""
    if mode not in ADAPTER_MODES:
        raise ValueError(f"unknown adapter mode {mode!r}; choose one of {', '.join(ADAPTER_MODES)}")
    return mode  # type: ignore[return-value]


def bf16_autocast(device: torch.device | str, enabled: bool | None = None) -> torch.autocast:
    """bfloat16 autocast on ``device``; by default on CUDA only (full precision on the CPU), as in pretraining.
    Results leave it as float32 tensors (``.float()``) before numpy, which has no bfloat16."""
    device = torch.device(device)
    return torch.autocast(device.type, torch.bfloat16, enabled=device.type == "cuda" if enabled is None else enabled)


def to_input(slices: torch.Tensor) -> torch.Tensor:
    """uint8 slices (B, C, H, W) in [0, 255] → float32 in [0, 1], the scaling the encoder was pretrained on."""
    if slices.dtype != torch.uint8:
        raise TypeError(f"expected uint8 slices in [0, 255], got {slices.dtype}")
    return slices.float() / 255.0


def prepare_encoder(encoder: nn.Module, mode: AdapterMode) -> None:
    """Freeze (``probe``) or unfreeze (``finetune``) the encoder's parameters; a frozen encoder stays in eval
    mode (no dropout, fixed normalisation statistics) whatever mode its head is put in."""
    check_mode(mode)
    for p in encoder.parameters():
        p.requires_grad_(mode == "finetune")
    encoder.train(mode == "finetune")


def adapter_optimizer(
    encoder: nn.Module,
    head: nn.Module,
    mode: AdapterMode,
    lr: float,
    encoder_lr_scale: float = 0.1,
    weight_decay: float = 0.05,
) -> torch.optim.AdamW:
    """AdamW over the head (``lr``) and, when fine-tuning, the encoder (``lr * encoder_lr_scale``).
    Call `prepare_encoder` first."""
    groups = [{"params": [p for p in head.parameters() if p.requires_grad], "lr": lr}]
    if check_mode(mode) == "finetune":
        groups.append({"params": [p for p in encoder.parameters() if p.requires_grad], "lr": lr * encoder_lr_scale})
    return torch.optim.AdamW(groups, weight_decay=weight_decay)
