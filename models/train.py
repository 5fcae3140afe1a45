"""MAE pretraining loop: bf16 autocast, fused AdamW, warm-up + cosine schedule, gradient clipping,
optional torch.compile, resumable checkpoints and DDP under torchrun.

    torchrun --nproc_per_node 8 -m models.train --profile full --data data/normalized_slices --out outputs/mae
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import time
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from models.augment import AugmentConfig, draw_augment
from models.checkpoint import STATE_FILE, load_weights, read_config, rng_state, save_checkpoint, set_rng_state
from models.data import INDEX_FILE, ShardDataset, make_loader
from models.hybrid_encoder import ConvMasking, check_conv_masking
from models.mae import MAEOutput, create_mae
from models.masking import lesion_unit_weights, mask_noise, visible_from_noise, visible_units
from models.profiles import Profiled
from models.validate import (
    ReconstructionMetrics,
    evaluate_reconstruction,
    save_loss_curve,
    save_reconstruction_figure,
)


@dataclass(frozen=True)
class PretrainConfig(Profiled):
    """Everything that defines a pretraining run. batch_size is slices per rank per step (each slice gives
    `views` augmented views); lr is the peak learning rate; steps counts optimiser steps.

    The encoder ablations of issue 13: `model` picks the branches (`tiny` hybrid, `tiny-vit`,
    `tiny-convnext`, likewise for the other sizes); `conv_masking` how the ConvNeXt sees a masked image
    ("crops" or "dense", `HybridEncoder.encode_masked`); `lesion_masks` (lesion-mask folders of
    docs/DATA_CONTRACT.md §3b, or their parent) with `lesion_bias` > 0 turns on lesion-aware masking: a unit
    covered by a lesion or its border is kept visible (1 + lesion_bias) times less readily
    (`models.masking.visible_from_noise`); 0 is uniform masking. Validation always masks uniformly.
    """

    model: str = "tiny"
    in_chans: int = 1
    sequences: tuple[str, ...] | None = None  # stack these sequences as channels (then in_chans must match)
    img_size: int = 256
    batch_size: int = 8
    steps: int = 80  # fewer did not learn reliably on the tiny cohort (see assets/pretrain.py MIN_SSIM_GAIN)
    lr: float = 1e-3
    min_lr: float = 1e-5
    warmup_steps: int = 5
    weight_decay: float = 0.05
    betas: tuple[float, float] = (0.9, 0.95)
    clip_grad: float = 1.0
    mask_ratios: tuple[float, ...] = (0.5, 0.625, 0.75)  # one drawn per step: few static shapes to compile
    blockwise_prob: float = 0.5
    views: int = 2  # 2: two augmented views per slice and the InfoNCE consistency loss; 1: MAE alone
    stats_weight: float = 1.0
    consistency_weight: float = 0.1
    temperature: float = 0.2
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    seed: int = 0
    compile: bool = False
    num_workers: int = 0
    checkpoint_every: int = 0  # steps; 0: only at the end
    val_slices: int = 32
    val_mask_ratio: float = 0.75
    conv_masking: ConvMasking = "crops"
    lesion_masks: tuple[str, ...] | None = None
    lesion_bias: float = 0.0

    def __post_init__(self) -> None:
        if self.sequences is not None and len(self.sequences) != self.in_chans:
            raise ValueError(f"in_chans={self.in_chans} but {len(self.sequences)} sequences {self.sequences}")
        if self.views not in (1, 2):
            raise ValueError(f"views must be 1 or 2, got {self.views}")
        check_conv_masking(self.conv_masking)
        if self.lesion_masks is not None:
            paths = [self.lesion_masks] if isinstance(self.lesion_masks, (str, Path)) else self.lesion_masks
            object.__setattr__(self, "lesion_masks", tuple(str(p) for p in paths))  # JSON-able in config.json
        if not (math.isfinite(self.lesion_bias) and self.lesion_bias >= 0):
            raise ValueError(f"lesion_bias must be a finite number >= 0 (0: uniform masking), got {self.lesion_bias}")
        if self.lesion_bias > 0 and not self.lesion_masks:
            raise ValueError("lesion_bias > 0 needs lesion_masks: the data/lesion_masks/<center>/ folders (or their "
                             "parent) of the training data")

    PROFILES: ClassVar[Mapping[str, Mapping[str, Any]]] = {
        "tiny": {},
        "small": {"model": "small", "batch_size": 128, "steps": 2_000, "lr": 3e-4, "warmup_steps": 100,
                  "compile": True, "num_workers": 8, "checkpoint_every": 500, "val_slices": 512},
        "full": {"model": "base", "batch_size": 256, "steps": 200_000, "lr": 3e-4, "min_lr": 1e-6,
                 "warmup_steps": 5_000, "compile": True, "num_workers": 12, "checkpoint_every": 2_000,
                 "val_slices": 2_048},
    }


@dataclass
class PretrainResult:
    """What `pretrain` hands the asset layer. Losses are per optimiser step (rank 0's batch); figure paths
    are PNG files inside out_dir."""

    history: list[float]
    metrics: ReconstructionMetrics
    checkpoint_dir: Path
    loss_curve_png: Path
    reconstruction_png: Path
    steps: int
    seconds: float


# What `Trainer.train_step` takes: uint8 slices (B, C, H, W), or with lesion-aware masking the pair (slices,
# binary lesion maps (B, 1, H, W)), as `models.data.make_loader` yields them.
Batch = torch.Tensor | tuple[torch.Tensor, torch.Tensor]


def init_distributed(device: str | torch.device) -> tuple[int, int, torch.device]:
    """Join the torchrun process group if WORLD_SIZE > 1 (NCCL on CUDA, gloo on CPU).
    Returns (rank, world_size, this rank's device)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    device = torch.device(device)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    if world > 1 and device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    return (dist.get_rank() if world > 1 else 0), world, device


# Settings a resumed run may change: they do not alter the trajectory of the steps already taken (`steps`
# stretches the cosine schedule from here on, as `stop_at` allows for).
RESUMABLE_CHANGES = frozenset({"steps", "compile", "num_workers", "checkpoint_every", "val_slices", "val_mask_ratio"})


def data_signature(dirs: Sequence[Path]) -> list[list[str]]:
    """[folder name, SHA-256 of its index.parquet] per shard folder: which data a run trains on."""
    return [[d.name, hashlib.sha256((d / INDEX_FILE).read_bytes()).hexdigest()] for d in dirs]


def check_resumable(saved: dict[str, Any], config: PretrainConfig, data: list[list[str]], folder: Path) -> None:
    """Raise if the checkpoint in `folder` (its saved config) was trained with other settings than `config`
    or on other data (`data_signature`): resuming would mix two trainings (the optimiser state keeps the old
    learning rate, the data order the old seed, the slice indices another index). A setting the checkpoint
    predates counts as its default."""
    current = json.loads(json.dumps({**config.to_dict(), "data": data}, default=list))  # tuples as JSON lists
    defaults = json.loads(json.dumps(PretrainConfig().to_dict(), default=list))
    keys = (saved.keys() | current.keys()) - RESUMABLE_CHANGES - {"step"}
    changed = sorted(k for k in keys if saved.get(k, defaults.get(k)) != current.get(k))
    if changed:
        raise ValueError(
            f"the checkpoint in {folder} was trained with other settings ({', '.join(changed)}); resuming would mix "
            "two trainings. Delete that folder to start afresh, or run with the settings in its config.json."
        )


def warmup_cosine(step: int, warmup: int, total: int, floor: float) -> float:
    """LR multiplier: linear warm-up over `warmup` steps, then cosine decay to `floor` at `total`."""
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


class Trainer:
    """Owns the MAE, optimiser, schedule and the position in the data; `train_step` is one optimiser step."""

    def __init__(
        self, config: PretrainConfig, data_dir: str | Path | Sequence[str | Path], device: str | torch.device,
        rank: int = 0, world_size: int = 1, exclude_patients: Collection[str] = (),
    ) -> None:
        self.config, self.rank, self.world = config, rank, world_size
        self.device = torch.device(device)
        self.amp = self.device.type == "cuda"
        torch.manual_seed(config.seed)
        np.random.seed(config.seed)
        self.mae = create_mae(
            config.model, config.in_chans, config.img_size, conv_masking=config.conv_masking,
            stats_weight=config.stats_weight, consistency_weight=config.consistency_weight,
            temperature=config.temperature,
        ).to(self.device)
        if self.device.type == "cuda" and self.mae.encoder.convnext is not None:
            self.mae.encoder.convnext.to(memory_format=torch.channels_last)
        self.model: torch.nn.Module = (
            DistributedDataParallel(
                self.mae, device_ids=[self.device] if self.device.type == "cuda" else None,
                # One view: no consistency loss, so the projector and the embedding norm get no gradient.
                find_unused_parameters=config.views == 1,
            )
            if world_size > 1 else self.mae
        )
        self.forward = torch.compile(self.model, dynamic=False) if config.compile else self.model
        decay = [p for n, p in self.mae.named_parameters() if p.ndim > 1 and "pos_embed" not in n]
        no_decay = [p for n, p in self.mae.named_parameters() if p.ndim <= 1 or "pos_embed" in n]
        self.optimizer = torch.optim.AdamW(
            [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
            lr=config.lr, betas=config.betas, fused=self.device.type == "cuda",
        )
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer,
            lambda s: warmup_cosine(s, config.warmup_steps, config.steps, config.min_lr / config.lr),
        )
        self.dataset = ShardDataset(
            data_dir, "train", config.sequences, config.lesion_masks if config.lesion_bias > 0 else None,
            exclude_patients=exclude_patients,
        )
        self.excluded = sorted(exclude_patients)
        if self.dataset.channels != config.in_chans:
            raise ValueError(f"data has {self.dataset.channels} channel(s) but in_chans={config.in_chans}")
        self.step = 0
        self.history: list[float] = []
        self._pending: list[torch.Tensor] = []
        self._generator = torch.Generator(self.device)

    @property
    def data(self) -> list[list[str]]:
        """`data_signature` of the slice folders, then of the lesion-mask folders in use, then of the excluded
        patients (if any)."""
        signature = data_signature([*self.dataset.dirs, *self.dataset.lesion_dirs])
        if self.excluded:
            digest = hashlib.sha256("\n".join(self.excluded).encode()).hexdigest()
            signature.append(["excluded_patients", digest])
        return signature

    def batches(self) -> Iterator[Batch]:
        """Endless batches for `train_step` from the current step on, on the device (the order depends
        only on seed and step)."""
        loader = make_loader(
            self.dataset, None, self.config.batch_size, seed=self.config.seed, start_step=self.step,
            rank=self.rank, world_size=self.world, num_workers=self.config.num_workers,
            pin_memory=self.device.type == "cuda",
        )
        for batch in loader:
            if isinstance(batch, (tuple, list)):
                yield tuple(t.to(self.device, non_blocking=True) for t in batch)
            else:
                yield batch.to(self.device, non_blocking=True)

    def mask_ratio(self, step: int) -> float:
        """The mask ratio of optimiser step `step`, drawn from (seed, step) alone (the same on every rank)."""
        ratios = self.config.mask_ratios
        return ratios[np.random.default_rng([self.config.seed, step]).integers(len(ratios))]

    def train_step(self, batch: Batch) -> MAEOutput:
        """One optimiser step on a batch already on the device. Masks, mask ratio and augmentations are
        drawn from (seed, step, rank) alone, so a resumed run repeats them exactly."""
        cfg = self.config
        slices, lesion = batch if isinstance(batch, tuple) else (batch, None)
        n_visible = visible_units(cfg.img_size, self.mask_ratio(self.step))
        self._generator.manual_seed(int(np.random.SeedSequence([cfg.seed, self.step, self.rank]).generate_state(1)[0]))
        n_views = cfg.views * slices.shape[0]
        noise = mask_noise(n_views, cfg.img_size, cfg.blockwise_prob, self._generator, self.device)
        augment = draw_augment(n_views, cfg.augment, self._generator, self.device)
        # Views are the slices repeated (MaskedAutoencoder.forward), each turned as its augment says.
        weights = None if lesion is None else lesion_unit_weights(lesion.repeat(cfg.views, 1, 1, 1), augment)
        unit_visible = visible_from_noise(noise, n_visible, weights, cfg.lesion_bias)
        with torch.autocast(self.device.type, torch.bfloat16, enabled=self.amp):
            out: MAEOutput = self.forward(slices, unit_visible, n_visible, augment)
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(self.mae.parameters(), cfg.clip_grad, foreach=True)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.step += 1
        self._pending.append(out.loss.detach())
        return MAEOutput(*(t.detach() for t in out))

    def flush_history(self) -> list[float]:
        """Move the pending per-step losses to `history` (one device sync)."""
        if self._pending:
            self.history += torch.stack(self._pending).float().cpu().tolist()
            self._pending.clear()
        return self.history

    def train(self, until: int, progress: bool = False, checkpoint_dir: Path | None = None) -> None:
        """Train until `step == until`, checkpointing every `checkpoint_every` steps (rank 0 writes)."""
        if self.step >= until:
            return
        from tqdm.auto import tqdm

        bar = tqdm(total=until - self.step, disable=not progress or self.rank != 0, desc="pretrain", unit="step")
        for batch in self.batches():
            self.train_step(batch)
            bar.update()
            every = self.config.checkpoint_every
            if checkpoint_dir is not None and every and self.step % every == 0 and self.step < until:
                self.save(checkpoint_dir)
            if self.step % 50 == 0 or self.step >= until:
                bar.set_postfix(loss=f"{self.flush_history()[-1]:.4f}")
            if self.step >= until:
                break
        bar.close()
        self.flush_history()

    def save(self, folder: Path) -> None:
        """Checkpoint weights, optimiser, schedule, RNG and loader position (rank 0 only)."""
        self.flush_history()
        if self.rank != 0:
            return
        state = {
            "step": self.step, "history": self.history, "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(), "rng": rng_state(),
        }
        config = {**self.config.to_dict(), "step": self.step, "data": self.data}
        save_checkpoint(folder, self.mae, config, state)

    def load(self, folder: Path) -> None:
        """Resume from a checkpoint written by `save` under the same training settings."""
        check_resumable(read_config(folder), self.config, self.data, folder)
        load_weights(folder, self.mae)
        state = torch.load(Path(folder) / STATE_FILE, map_location=self.device, weights_only=False)
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        set_rng_state(state["rng"])
        self.step, self.history = state["step"], list(state["history"])


def pretrain(
    config: PretrainConfig,
    data_dir: str | Path | Sequence[str | Path],
    out_dir: str | Path,
    device: str | torch.device = "cuda",
    progress: bool = True,
    stop_at: int | None = None,
    exclude_patients: Collection[str] = (),
) -> PretrainResult:
    """Pretrain (or resume, if out_dir/checkpoint exists) and validate on the held-out `val` split.

    data_dir: a shard folder or the normalised-slices root (one folder per center). Writes
    out_dir/checkpoint/, out_dir/loss_curve.png and out_dir/reconstruction.png. `stop_at` ends this call
    early at that step (the schedule still spans config.steps); a later call resumes. `exclude_patients` are
    left out of training and validation (the downstream test patients). Under torchrun every rank calls this;
    rank 0 writes the files.
    """
    start = time.perf_counter()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rank, world, device = init_distributed(device)
    trainer = Trainer(config, data_dir, device, rank, world, exclude_patients)
    checkpoint_dir = out_dir / "checkpoint"
    if (checkpoint_dir / STATE_FILE).is_file():
        trainer.load(checkpoint_dir)
    trainer.train(min(stop_at or config.steps, config.steps), progress, checkpoint_dir)
    trainer.save(checkpoint_dir)
    val = ShardDataset(data_dir, "val", config.sequences, exclude_patients=exclude_patients)
    metrics, examples = evaluate_reconstruction(
        trainer.mae, val, device, config.val_slices, config.val_mask_ratio, config.seed, amp=trainer.amp
    )
    loss_png, recon_png = out_dir / "loss_curve.png", out_dir / "reconstruction.png"
    if rank == 0:
        save_loss_curve(loss_png, trainer.history)
        save_reconstruction_figure(recon_png, examples)
    if world > 1:
        dist.barrier()
    return PretrainResult(
        trainer.history, metrics, checkpoint_dir, loss_png, recon_png, trainer.step, time.perf_counter() - start
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Command line for `python -m models.train` / `torchrun ... -m models.train`."""
    parser = argparse.ArgumentParser(description="MAE pretraining of the hybrid encoder.")
    parser.add_argument("--profile", default="tiny", help="tiny | small | full")
    parser.add_argument("--data", required=True, type=Path, help="normalised-slices root or one shard folder")
    parser.add_argument("--out", required=True, type=Path, help="output folder (resumes if it holds a checkpoint)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--steps", type=int, help="override the profile's number of steps")
    parser.add_argument("--exclude-patients", type=Path, metavar="FILE",
                        help="patients to leave out (one pseudonym per line): the downstream test patients, which "
                        "no training stage may see; `brainfm held-out-patients TABLES_DIR` writes them")
    args = parser.parse_args(argv)
    overrides = {"steps": args.steps} if args.steps else {}
    excluded = set(args.exclude_patients.read_text().split()) if args.exclude_patients else set()
    result = pretrain(PretrainConfig.profile(args.profile, **overrides), args.data, args.out, args.device,
                      exclude_patients=excluded)
    if int(os.environ.get("RANK", "0")) == 0:
        print(f"steps={result.steps} final_loss={result.history[-1]:.4f} {result.metrics}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
