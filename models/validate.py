"""Held-out reconstruction quality (SSIM, PSNR with torchmetrics) against the mean-filled baseline, and the
figures the Dagster asset attaches (reconstruction grid, loss curve). matplotlib/torchmetrics are imported
lazily so training alone needs neither."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from models.data import ShardDataset
from models.hybrid_encoder import MASK_UNIT
from models.mae import MaskedAutoencoder
from models.masking import draw_unit_mask, visible_units


@dataclass(frozen=True)
class ReconstructionMetrics:
    """Means over held-out slices; intensities in [0, 1] (data_range 1). The baseline fills masked
    patches with the mean of the visible pixels of the same slice. Whole-image scores include the visible
    units, which both copy from the input; the ``masked_`` scores judge only what had to be predicted
    (SSIM: the SSIM map averaged over masked pixels; PSNR: from the MSE over masked pixels)."""

    ssim: float
    psnr_db: float
    baseline_ssim: float
    baseline_psnr_db: float
    masked_ssim: float
    masked_psnr_db: float
    baseline_masked_ssim: float
    baseline_masked_psnr_db: float
    n_slices: int
    mask_ratio: float


def validation_rows(n_items: int, n_slices: int) -> np.ndarray:
    """`n_slices` evenly spaced items of a validation split: items are stored center by center and patient
    by patient, so the first n would cover only the first patients of the first center."""
    return np.unique(np.linspace(0, n_items - 1, min(n_slices, n_items)).round().astype(np.int64))


def _scores(pred: torch.Tensor, target: torch.Tensor, masked: torch.Tensor) -> torch.Tensor:
    """Per image (B, 4): SSIM, PSNR (dB), masked-region SSIM and PSNR; masked is a bool (B, 1, H, W) map."""
    from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure

    ssim, ssim_map = structural_similarity_index_measure(
        pred, target, data_range=1.0, reduction="none", return_full_image=True
    )
    psnr = peak_signal_noise_ratio(pred, target, data_range=1.0, reduction="none", dim=(1, 2, 3))
    weight = masked.float()
    count = weight.sum((1, 2, 3)).clamp_min(1.0)
    masked_ssim = (ssim_map * weight).sum((1, 2, 3)) / count
    # torchmetrics' PSNR takes no mask: 10·log10(range² / MSE) over the masked pixels, range 1.
    masked_mse = (((pred - target) ** 2) * weight).sum((1, 2, 3)) / count
    masked_psnr = 10.0 * torch.log10(1.0 / masked_mse.clamp_min(1e-10))
    return torch.stack([ssim, psnr, masked_ssim, masked_psnr], dim=1)


@torch.no_grad()
def evaluate_reconstruction(
    mae: MaskedAutoencoder,
    dataset: ShardDataset,
    device: torch.device,
    n_slices: int,
    mask_ratio: float = 0.75,
    seed: int = 0,
    batch_size: int = 32,
    amp: bool = False,
) -> tuple[ReconstructionMetrics, dict[str, torch.Tensor]]:
    """SSIM/PSNR of reconstructions of `n_slices` evenly spaced slices of `dataset` under fixed random masks.

    Returns the metrics and a few examples ('input', 'unit_visible', 'reconstruction', CPU tensors) for
    `save_reconstruction_figure`.
    """
    rows = validation_rows(len(dataset), n_slices)
    size = dataset[0].shape[-1]
    n_visible = visible_units(size, mask_ratio)
    generator = torch.Generator(device).manual_seed(seed)
    was_training = mae.training
    mae.eval()
    sums = torch.zeros(2, 4, dtype=torch.float64)
    examples: dict[str, torch.Tensor] = {}
    for lo in range(0, len(rows), batch_size):
        slices = torch.from_numpy(dataset[rows[lo : lo + batch_size]]).to(device)
        unit_visible = draw_unit_mask(len(slices), size, n_visible, 0.0, generator, device)
        with torch.autocast(device.type, torch.bfloat16, enabled=amp):
            recon = mae.reconstruct(slices, unit_visible, n_visible).float()
        target = slices.float() / 255.0
        pixel_visible = unit_visible.repeat_interleave(MASK_UNIT, 2).repeat_interleave(MASK_UNIT, 3)
        visible_mean = (target * pixel_visible).sum((1, 2, 3), keepdim=True) / pixel_visible.sum((1, 2, 3), keepdim=True)
        baseline = torch.where(pixel_visible, target, visible_mean.expand_as(target))
        masked = ~pixel_visible.expand_as(target)
        for k, pred in enumerate((recon, baseline)):
            sums[k] += _scores(pred, target, masked).sum(0).double().cpu()
        if not examples:
            examples = {"input": target[:4].cpu(), "unit_visible": unit_visible[:4].cpu(), "reconstruction": recon[:4].cpu()}
    mae.train(was_training)
    (ssim, psnr, m_ssim, m_psnr), (b_ssim, b_psnr, bm_ssim, bm_psnr) = (sums / len(rows)).tolist()
    metrics = ReconstructionMetrics(
        ssim, psnr, b_ssim, b_psnr, m_ssim, m_psnr, bm_ssim, bm_psnr, len(rows), mask_ratio
    )
    return metrics, examples


def save_reconstruction_figure(path: str | Path, examples: dict[str, torch.Tensor]) -> Path:
    """PNG grid, one row per slice: input, masked input (masked units grey), reconstruction."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    inputs, recon = examples["input"][:, 0], examples["reconstruction"][:, 0]
    visible = examples["unit_visible"].repeat_interleave(MASK_UNIT, 2).repeat_interleave(MASK_UNIT, 3)[:, 0]
    masked = torch.where(visible, inputs, torch.full_like(inputs, 0.5))
    rows = len(inputs)
    fig, axes = plt.subplots(rows, 3, figsize=(7.5, 2.5 * rows), squeeze=False)
    for r in range(rows):
        for c, (title, image) in enumerate((("input", inputs), ("mask", masked), ("reconstruction", recon))):
            axes[r, c].imshow(image[r].numpy(), cmap="gray", vmin=0, vmax=1)
            axes[r, c].set_axis_off()
            if r == 0:
                axes[r, c].set_title(title)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def save_loss_curve(path: str | Path, losses: list[float]) -> Path:
    """PNG of the training loss per step."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(np.arange(1, len(losses) + 1), losses, lw=1)
    ax.set_xlabel("step")
    ax.set_ylabel("pretraining loss")
    ax.set_yscale("log")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
