"""One training loop for the study-level adapters (classification, grading, prognosis), prediction, and
saving/loading adapter weights.

Each step draws a batch of studies (`models.data.StepBatchSampler`), k slices per sequence of each
(`StudyBags.sample_bags`, generator seeded by (seed, step)), embeds the slices, and trains the head on the
aggregated study embeddings. As a probe the encoder is frozen, so every slice of the training studies is embedded
once beforehand and the steps only read that table; fine-tuning embeds the drawn slices at every step, with
gradients into the encoder at `encoder_lr_scale` times the head's learning rate.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

from models.checkpoint import load_weights, read_config, save_checkpoint
from models.data import StepBatchSampler
from models.heads.aggregate import StudyHead
from models.heads.classification import ClassificationHead
from models.heads.common import AdapterMode, adapter_optimizer, check_mode, prepare_encoder, to_input
from models.heads.grading import GradingHead
from models.heads.prognosis import PrognosisHead
from models.heads.study_data import BagLayout, StudyBags, StudyTargets, flatten
from models.hybrid_encoder import HybridEncoder
from models.profiles import Profiled

HEADS: dict[str, type[StudyHead]] = {h.kind: h for h in (ClassificationHead, GradingHead, PrognosisHead)}
StudyLoss = Callable[[dict[str, torch.Tensor], dict[str, torch.Tensor]], torch.Tensor]


@dataclass(frozen=True)
class StudyConfig(Profiled):
    """A study-adapter training run: `steps` optimiser steps over batches of `batch_studies` studies, each
    study a bag of `slices_per_series` slices per sequence; `embed_batch` slices per encoder forward when
    embedding without gradients (probe table, prediction)."""

    mode: AdapterMode = "probe"
    steps: int = 300
    batch_studies: int = 16
    slices_per_series: int = 4
    lr: float = 1e-2
    encoder_lr_scale: float = 0.1
    weight_decay: float = 0.01
    embed_batch: int = 64
    seed: int = 0

    def __post_init__(self) -> None:
        check_mode(self.mode)

    PROFILES: ClassVar[Mapping[str, Mapping[str, Any]]] = {
        "tiny": {},
        "small": {"steps": 1_000, "batch_studies": 32, "slices_per_series": 8, "lr": 1e-3, "embed_batch": 256},
        "full": {"steps": 5_000, "batch_studies": 64, "slices_per_series": 16, "lr": 5e-4, "embed_batch": 512},
    }


def _device(encoder: nn.Module) -> torch.device:
    return next(encoder.parameters()).device


@torch.no_grad()
def embed_slices(encoder: nn.Module, bags: StudyBags, items: np.ndarray, batch: int) -> torch.Tensor:
    """Embeddings (N, D) of the slices `items`, without gradients, `batch` slices per forward."""
    device = _device(encoder)
    parts = [encoder(to_input(bags.read(items[lo : lo + batch]).to(device))) for lo in range(0, len(items), batch)]
    return torch.cat(parts)


class SliceEmbeddings:
    """Embeddings of every slice of the given studies, computed once by the frozen encoder; called with item
    ids, it returns their rows. One table serves every probe head on the same encoder.

    ``keep_maps``: items (of those studies) whose multi-scale feature maps are kept too (`kept_maps`), so that
    a segmentation decoder or the report model on the same frozen encoder reads them instead of encoding those
    slices again (`models.heads.seg_train.predict_segmentation`, `models.vlm.visual.FeatureCache.fill`)."""

    def __init__(
        self, encoder: HybridEncoder, bags: StudyBags, studies: Sequence[str], batch: int, keep_maps: Sequence[int] = ()
    ) -> None:
        self.items = np.unique(flatten([bags.all_slices(s) for s in studies]))
        self.kept = np.unique(np.asarray(keep_maps, dtype=np.int64))
        if not np.isin(self.kept, self.items).all():
            raise ValueError("keep_maps names items that are not slices of these studies")
        keep = np.searchsorted(self.items, self.kept)
        embeddings, maps = [], [[] for _ in keep]
        device = _device(encoder)
        for lo in range(0, len(self.items), batch):
            with torch.no_grad():
                features = encoder.forward_features(to_input(bags.read(self.items[lo : lo + batch]).to(device)))
            embeddings.append(features.embedding)
            for i in np.flatnonzero((keep >= lo) & (keep < lo + batch)):
                maps[i] = [m[keep[i] - lo].clone() for m in features.feature_maps]  # not a view of the batch
        self.embeddings = torch.cat(embeddings)
        self.feature_maps: list[torch.Tensor] = [torch.stack(scale) for scale in zip(*maps)]  # rows in `kept` order

    def __call__(self, items: np.ndarray) -> torch.Tensor:
        return self.embeddings[torch.from_numpy(np.searchsorted(self.items, items))]

    def kept_maps(self, items: np.ndarray) -> list[torch.Tensor]:
        """The kept feature maps of ``items`` (a subset of ``keep_maps``), one tensor per scale, rows in order."""
        if not np.isin(items, self.kept).all():
            raise ValueError("these items' feature maps were not kept (keep_maps)")
        index = torch.from_numpy(np.searchsorted(self.kept, items))
        return [m[index] for m in self.feature_maps]


def train_study_adapter(
    encoder: nn.Module,
    head: StudyHead,
    bags: StudyBags,
    targets: StudyTargets,
    loss: StudyLoss,
    config: StudyConfig,
    progress: bool = False,
    embeddings: SliceEmbeddings | None = None,
) -> list[float]:
    """Train `head` (and, when `config.mode` is finetune, the encoder) on the studies of `targets`; returns the
    loss per step. The trajectory is a pure function of the initial weights and `config.seed` (on CPU; build
    the head under `torch.manual_seed` for a reproducible start). Leaves encoder and head in eval mode.
    `embeddings`: a probe's table of the frozen encoder's slices covering these studies, shared between runs
    (built here when None)."""
    device = _device(encoder)
    prepare_encoder(encoder, config.mode)
    head.to(device).train()
    optimizer = adapter_optimizer(encoder, head, config.mode, config.lr, config.encoder_lr_scale, config.weight_decay)
    if config.mode == "probe":
        embed: Callable[[np.ndarray], torch.Tensor] = embeddings or SliceEmbeddings(
            encoder, bags, targets.studies, config.embed_batch
        )
    else:
        def embed(items: np.ndarray) -> torch.Tensor:
            return encoder(to_input(bags.read(items).to(device)))
    torch.manual_seed(config.seed)
    batches = iter(StepBatchSampler(len(targets.studies), min(config.batch_studies, len(targets.studies)), config.seed))
    history = []
    for step in tqdm(range(config.steps), desc=f"{head.kind} {config.mode}", disable=not progress):
        rows = next(batches)
        sampled = bags.sample_bags([targets.studies[r] for r in rows], config.slices_per_series,
                                   np.random.default_rng([config.seed, step]))
        values, covariates = targets.take(rows)
        outputs = head(embed(flatten(sampled)), BagLayout.of(sampled).to(device),
                       None if covariates is None else covariates.to(device))
        value = loss(outputs, {k: v.to(device) for k, v in values.items()})
        optimizer.zero_grad(set_to_none=True)
        value.backward()
        optimizer.step()
        history.append(float(value.detach()))
    encoder.eval()
    head.eval()
    return history


@torch.no_grad()
def predict_studies(
    encoder: nn.Module,
    head: StudyHead,
    bags: StudyBags,
    studies: Sequence[str],
    covariates: torch.Tensor | None = None,
    embed_batch: int = 64,
    progress: bool = False,
    embed: Callable[[np.ndarray], torch.Tensor] | None = None,
) -> pd.DataFrame:
    """Per-study predictions on every slice of each study (`StudyBags.all_slices`), one row per study
    (index: study) with the head's columns: class names and probabilities, grades, risk scores.
    `covariates` (n_studies, C): standardised clinical variables, for the prognosis head
    (`PrognosisHead.standardise`). `embed`: precomputed slice embeddings of `encoder` (`SliceEmbeddings`),
    shared by several heads; by default the slices are embedded here."""
    device = _device(encoder)
    encoder.eval()
    head.to(device).eval()
    outputs: list[dict[str, torch.Tensor]] = []
    for i, study in enumerate(tqdm(studies, desc=f"{head.kind} predict", disable=not progress)):
        bag = [bags.all_slices(study)]
        cov = None if covariates is None else covariates[i : i + 1].to(device)
        slices = embed(flatten(bag)) if embed is not None else embed_slices(encoder, bags, flatten(bag), embed_batch)
        outputs.append(head(slices, BagLayout.of(bag).to(device), cov))
    raw = {k: torch.cat([o[k] for o in outputs]).float().cpu().numpy() for k in outputs[0]}
    return pd.DataFrame(head.predictions(raw), index=pd.Index(list(studies), name="study"))


def save_study_adapter(
    folder: str | Path, encoder: nn.Module, head: StudyHead, config: StudyConfig, history: Sequence[float] = ()
) -> Path:
    """Write the adapter (`models.checkpoint` layout: safetensors weights, config.json, trainer state): the
    head's weights (`head.*`), and the encoder's (`encoder.*`) when it was fine-tuned."""
    modules = {"head": head} | ({"encoder": encoder} if config.mode == "finetune" else {})
    meta = {"head": head.kind, "spec": head.spec(), "study_config": config.to_dict()}
    return save_checkpoint(Path(folder), nn.ModuleDict(modules), meta, {"history": list(history)})


def load_study_adapter(folder: str | Path, encoder: nn.Module) -> tuple[StudyHead, StudyConfig]:
    """Rebuild a saved adapter's head and config. `encoder` must be the architecture it was trained on: for a
    probe, the same pretrained encoder; for a fine-tuned adapter its saved weights are loaded into it."""
    meta = read_config(folder)
    if meta.get("head") not in HEADS:
        raise ValueError(f"{folder} is not a study adapter (head {meta.get('head')!r}; known: {sorted(HEADS)})")
    head = HEADS[meta["head"]](**meta["spec"])
    config = StudyConfig(**meta["study_config"])
    modules = {"head": head} | ({"encoder": encoder} if config.mode == "finetune" else {})
    load_weights(folder, nn.ModuleDict(modules))
    return head.eval(), config
