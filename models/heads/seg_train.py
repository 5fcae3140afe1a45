"""Training, inference and checkpoints of the segmentation adapter (`models.heads.segmentation`).

A run is a pure function of (encoder weights, data, `SegConfig`): the decoder is initialised from
`seed`, batches follow `models.data.StepBatchSampler` (numpy, from (seed, step)), and on the CPU the
result is bit-identical from run to run. The caller's encoder is never modified (training works on a copy).
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from models.checkpoint import load_weights, read_config, save_checkpoint
from models.data import StepBatchSampler
from models.heads.common import (
    AdapterMode,
    adapter_optimizer,
    bf16_autocast,
    check_mode,
    prepare_encoder,
    to_input,
)
from models.heads.seg_data import SegmentationSlices
from models.heads.segmentation import SEG_CLASSES, SegmentationModel, segmentation_loss
from models.hybrid_encoder import HybridEncoder
from models.profiles import Profiled
from models.train import warmup_cosine


@dataclass(frozen=True)
class SegConfig(Profiled):
    """One segmentation-adapter run. batch_size is slices per step; lr is the head's peak learning rate
    (the encoder's is lr * encoder_lr_scale when fine-tuning); steps counts optimiser steps."""

    mode: AdapterMode = "probe"
    steps: int = 40  # the tiny profile: enough for held-out lesion Dice > 0.9 on the test discs
    batch_size: int = 8
    lr: float = 3e-3
    encoder_lr_scale: float = 0.1
    weight_decay: float = 0.05
    warmup_steps: int = 5
    min_lr: float = 1e-5
    clip_grad: float = 1.0
    width: int = 32  # decoder channels (`SegmentationDecoder`)
    n_classes: int = len(SEG_CLASSES)
    seed: int = 0
    # Sequences whose slices are segmented (None: all). The tiny profile keeps FLAIR, where lesion and oedema
    # both show, so the CPU predicts a quarter of the held-out slices (CI); larger profiles use every sequence.
    sequences: tuple[str, ...] | None = ("FLAIR",)
    # Share of each batch drawn from slices that show a lesion: most slices of a brain show none, and on the
    # tiny cohort uniform batches taught every variant to predict background only (held-out Dice 0).
    lesion_share: float = 0.5

    def __post_init__(self) -> None:
        check_mode(self.mode)
        if self.steps < 0 or self.batch_size < 1:
            raise ValueError(f"need steps ≥ 0 and batch_size ≥ 1, got {self.steps} and {self.batch_size}")

    PROFILES: ClassVar[Mapping[str, Mapping[str, Any]]] = {
        "tiny": {},
        "small": {"sequences": None, "steps": 2_000, "batch_size": 32, "lr": 3e-4, "warmup_steps": 100, "width": 64},
        "full": {"sequences": None, "steps": 20_000, "batch_size": 64, "lr": 3e-4, "min_lr": 1e-6, "warmup_steps": 1_000,
                 "width": 96},
    }


def train_segmentation(
    encoder: HybridEncoder, train_data: SegmentationSlices, config: SegConfig, progress: bool = False
) -> tuple[SegmentationModel, list[float]]:
    """Train a segmentation adapter on a copy of `encoder` (on the encoder's device).

    Returns the model (in eval mode) and the loss (Dice + CE) of every optimiser step. A training set
    smaller than one batch is used whole at every step.
    """
    from tqdm.auto import tqdm

    device = next(encoder.parameters()).device
    torch.manual_seed(config.seed)
    model = SegmentationModel(copy.deepcopy(encoder), config.n_classes, config.width).to(device)
    prepare_encoder(model.encoder, config.mode)
    model.decoder.train()
    optimizer = adapter_optimizer(model.encoder, model.decoder, config.mode, config.lr, config.encoder_lr_scale,
                                  config.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: warmup_cosine(s, config.warmup_steps, config.steps, config.min_lr / config.lr)
    )
    loss_fn = segmentation_loss()
    batches = _batches(train_data, config)
    losses = []
    for _ in tqdm(range(config.steps), disable=not progress, desc=f"segmentation {config.mode}", unit="step"):
        images, labels = train_data[next(batches)]
        if labels.max() >= config.n_classes:
            raise ValueError(f"label {labels.max()} in the masks but n_classes={config.n_classes}: the masks "
                             f"must use 0..{config.n_classes - 1} ({', '.join(SEG_CLASSES)})")
        x = to_input(torch.from_numpy(images).to(device))
        with bf16_autocast(device):
            logits = model(x)
        loss = loss_fn(logits.float(), torch.from_numpy(labels).to(device)[:, None])
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], config.clip_grad)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.detach())
    model.eval()
    return model, torch.stack(losses).float().cpu().tolist() if losses else []


def _batches(data: SegmentationSlices, config: SegConfig) -> Iterator[np.ndarray]:
    """Item indices per step, a pure function of (seed, step): `StepBatchSampler` epochs, with
    `config.lesion_share` of each batch replaced by slices showing a lesion (drawn with replacement)."""
    batch = min(config.batch_size, len(data))
    lesion = np.flatnonzero(data.keys["lesion_pixels"].to_numpy() > 0)
    n_lesion = round(config.lesion_share * batch) if len(lesion) else 0
    for step, items in enumerate(StepBatchSampler(len(data), batch, config.seed)):
        if n_lesion:
            rng = np.random.default_rng([config.seed, step])
            items = np.sort(np.concatenate([items[n_lesion:], rng.choice(lesion, n_lesion)]))
        yield items


@torch.inference_mode()
def predict_segmentation(
    model: SegmentationModel,
    data: SegmentationSlices,
    batch_size: int = 16,
    bf16: bool | None = None,
    feature_maps: Sequence[torch.Tensor] | None = None,
) -> np.ndarray:
    """Argmax label maps uint8 (N, H, W) of every item of `data`, in item order (rows of `data.keys`); under
    bfloat16 autocast where ``bf16`` says (default: on CUDA only, as in training). ``feature_maps``: the
    frozen encoder's maps of those items, one tensor per scale (`SliceEmbeddings.feature_maps`), read instead
    of encoding them again."""
    device = next(model.parameters()).device
    model.eval()
    out = []
    for lo in range(0, len(data), batch_size):
        hi = min(lo + batch_size, len(data))
        images, _ = data[np.arange(lo, hi)]
        maps = None if feature_maps is None else [m[lo:hi] for m in feature_maps]
        with bf16_autocast(device, enabled=bf16):
            logits = model(to_input(torch.from_numpy(images).to(device)), maps)
        out.append(logits.argmax(1).to(torch.uint8).cpu().numpy())
    return np.concatenate(out)


def encoder_digest(encoder: torch.nn.Module) -> str:
    """SHA-256 of an encoder's weights (names, shapes and values): which encoder a probe head belongs to."""
    digest = hashlib.sha256()
    for name, tensor in encoder.state_dict().items():
        digest.update(f"{name}{tuple(tensor.shape)}".encode())
        digest.update(tensor.detach().float().cpu().numpy().tobytes())
    return digest.hexdigest()


def save_segmentation(
    folder: str | Path, model: SegmentationModel, config: SegConfig, history: list[float], base_encoder: HybridEncoder
) -> Path:
    """Write the adapter with `models.checkpoint.save_checkpoint`: the decoder alone for a probe, decoder and
    encoder for fine-tuning; config.json records the run and the digest of `base_encoder` (the encoder the
    adapter was trained from); trainer_state.pt holds the loss history."""
    meta = {
        "task": "segmentation", "in_chans": model.encoder.in_chans, "img_size": model.encoder.img_size,
        "encoder_sha256": encoder_digest(base_encoder), "config": config.to_dict(),
    }
    weights = model.decoder if config.mode == "probe" else model
    return save_checkpoint(Path(folder), weights, meta, {"history": history})


def load_segmentation(folder: str | Path, base_encoder: HybridEncoder) -> SegmentationModel:
    """An adapter written by `save_segmentation` on `base_encoder`. A probe's head reads the very encoder it was
    trained on (checked by digest) and shares it, frozen: inference keeps one copy of the encoder's weights for
    every probe head. Fine-tuning gets a copy of an encoder of the same architecture, its weights replaced by the
    saved ones. The model is in eval mode on the encoder's device."""
    meta = read_config(folder)
    if meta.get("task") != "segmentation":
        raise ValueError(f"{folder} holds no segmentation adapter (task {meta.get('task')!r}); pass the folder "
                         "that save_segmentation wrote")
    config = SegConfig(**meta["config"])
    if config.mode == "probe" and encoder_digest(base_encoder) != meta["encoder_sha256"]:
        raise ValueError(f"the probe head in {folder} was trained on another encoder; pass the encoder it was "
                         "trained on (models.checkpoint.load_encoder of the same pretraining checkpoint)")
    encoder = base_encoder if config.mode == "probe" else copy.deepcopy(base_encoder)
    model = SegmentationModel(encoder, config.n_classes, config.width)
    model = model.to(next(base_encoder.parameters()).device)
    load_weights(folder, model.decoder if config.mode == "probe" else model)
    prepare_encoder(model.encoder, config.mode)
    return model.eval()
