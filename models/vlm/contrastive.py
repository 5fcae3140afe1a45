"""A CLIP-style image-report head: report retrieval (R@k) and zero-shot classification from text prompts.

Image side: a perceiver resampler over the study's cached slice features, mean over its queries, a linear
projection. Text side: the frozen LM's hidden states of the last layer, mean-pooled over the text's tokens
(computed once per distinct text), then a trainable linear projection. Both are L2-normalised and trained
with CLIP's symmetric InfoNCE at a learned temperature. Studies that share a report text (every normal study
reads alike) get identical text embeddings, so a duplicate in the batch costs a constant, never a gradient
against the true pair.

Subtypes listed in `ContrastiveConfig.exclude_subtypes` (the rare ones by default) are dropped from the
training pairs, so zero-shot accuracy on them measures transfer from text alone.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from peft import PeftModel
from torch import nn
from tqdm.auto import tqdm
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from models.checkpoint import load_weights, read_config, save_checkpoint
from models.vlm.visual import FeatureCache, PerceiverResampler, ResamplerSpec, VisualBatch
from models.vlm.vlm import StepConfig, freeze, optimizer_for, study_batches

KIND = "contrastive_head"
RARE_SUBTYPES = ("encephalitis", "cavernous_malformation", "chiari")
CLIP_INIT_TEMPERATURE = 0.07  # CLIP's initial temperature; the logit scale is clamped at 100 as in CLIP
MAX_LOGIT_SCALE = 100.0


@dataclass(frozen=True)
class ContrastiveSpec:
    """Architecture: the image resampler, the LM's hidden size `text_dim`, the joint space's `embed_dim`."""

    resampler: ResamplerSpec
    text_dim: int
    embed_dim: int = 128

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> ContrastiveSpec:
        return cls(**{**values, "resampler": ResamplerSpec(**values["resampler"])})


class ContrastiveHead(nn.Module):
    """Image and text projections into one L2-normalised space, and the learned logit scale (1/temperature).
    To start from stage 2a, load the VLM's resampler weights into `resampler` (same `ResamplerSpec`)."""

    def __init__(self, spec: ContrastiveSpec) -> None:
        super().__init__()
        self.spec = spec
        self.resampler = PerceiverResampler(spec.resampler)
        self.image_proj = nn.Linear(spec.resampler.width, spec.embed_dim)
        self.text_proj = nn.Linear(spec.text_dim, spec.embed_dim)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / CLIP_INIT_TEMPERATURE)))

    def scale(self) -> torch.Tensor:
        """The logit scale exp(s), at most `MAX_LOGIT_SCALE`."""
        return self.logit_scale.exp().clamp(max=MAX_LOGIT_SCALE)

    def encode_images(self, visual: VisualBatch) -> torch.Tensor:
        """Unit-norm study embeddings (B, embed_dim)."""
        visual = visual.to(self.logit_scale.device)
        return F.normalize(self.image_proj(self.resampler(visual).mean(dim=1)), dim=-1)

    def encode_texts(self, features: torch.Tensor) -> torch.Tensor:
        """Unit-norm text embeddings (N, embed_dim) from `text_features` (N, text_dim)."""
        return F.normalize(self.text_proj(features.to(self.logit_scale.device)), dim=-1)

    def loss(self, image_emb: torch.Tensor, text_emb: torch.Tensor) -> torch.Tensor:
        """CLIP's symmetric InfoNCE (nats) of paired rows: row i of each is the other's positive."""
        logits = self.scale() * image_emb @ text_emb.T
        targets = torch.arange(len(logits), device=logits.device)
        return (F.cross_entropy(logits, targets) + F.cross_entropy(logits.T, targets)) / 2


@torch.no_grad()
def text_features(
    lm: PreTrainedModel | PeftModel,
    tokenizer: PreTrainedTokenizerBase,
    texts: Sequence[str],
    max_len: int = 512,
    batch: int = 32,
) -> torch.Tensor:
    """The frozen LM's last-layer hidden states mean-pooled over each text's tokens: (N, hidden) float32."""
    device = next(lm.parameters()).device
    out = []
    for lo in range(0, len(texts), batch):
        tokens = tokenizer(
            list(texts[lo : lo + batch]),
            padding=True,
            padding_side="right",
            truncation=True,
            max_length=max_len,
            return_tensors="pt",
        ).to(device)
        hidden = lm(**tokens, output_hidden_states=True).hidden_states[-1].float()
        mask = tokens["attention_mask"][..., None].float()
        out.append((hidden * mask).sum(1) / mask.sum(1))
    return torch.cat(out)


def retrieve(query_emb: torch.Tensor, target_emb: torch.Tensor) -> torch.Tensor:
    """1-based rank (N,) of target i among all targets by cosine similarity to query i (unit-norm rows;
    image->text with (image, text), text->image swapped). Ties count in the pair's favour, so a duplicate of
    the true text does not push it down. R@k = mean(ranks <= k)."""
    scores = query_emb @ target_emb.T
    return 1 + (scores > scores.diagonal()[:, None]).sum(dim=1)


def zero_shot(
    image_emb: torch.Tensor, class_emb: torch.Tensor, logit_scale: float | torch.Tensor
) -> torch.Tensor:
    """Class probabilities (N, C) of unit-norm image embeddings against the embeddings of one text prompt per
    class (`head.encode_texts(text_features(lm, tokenizer, prompts))`, prompts such as "诊断意见：海马硬化"),
    at the head's `scale()`."""
    return torch.softmax(logit_scale * image_emb @ class_emb.T, dim=-1)


@dataclass(frozen=True)
class ContrastiveConfig(StepConfig):
    """Training of the head (fields of `StepConfig`; `max_len`: text tokens) without the pairs whose `subtype`
    is in `exclude_subtypes`."""

    batch_studies: int = 8
    exclude_subtypes: tuple[str, ...] = RARE_SUBTYPES

    PROFILES: ClassVar[Mapping[str, Mapping[str, Any]]] = {
        "tiny": {},
        "small": {
            "steps": 1_000,
            "batch_studies": 64,
            "slices_per_series": 6,
            "lr": 1e-3,
            "warmup_steps": 30,
        },
        "full": {
            "steps": 5_000,
            "batch_studies": 256,
            "slices_per_series": 8,
            "lr": 5e-4,
            "warmup_steps": 150,
        },
    }


@dataclass
class ContrastiveHistory:
    """Per step: the loss, the temperature (1 / logit scale) and the studies of the batch."""

    loss: list[float] = field(default_factory=list)
    temperature: list[float] = field(default_factory=list)
    studies: list[tuple[str, ...]] = field(default_factory=list)


def training_pairs(
    pairs: Sequence[Mapping[str, Any]], exclude_subtypes: Sequence[str]
) -> list[Mapping[str, Any]]:
    """The pairs whose `subtype` is not excluded (all of them when nothing is excluded)."""
    if exclude_subtypes and any("subtype" not in p for p in pairs):
        raise ValueError(
            "excluding subtypes needs a 'subtype' in every pair; join the label table on the study "
            "first, or pass exclude_subtypes=()"
        )
    return [p for p in pairs if p.get("subtype") not in exclude_subtypes]


def train_contrastive(
    head: ContrastiveHead,
    cache: FeatureCache,
    lm: PreTrainedModel | PeftModel,
    tokenizer: PreTrainedTokenizerBase,
    pairs: Sequence[Mapping[str, Any]],
    config: ContrastiveConfig,
    progress: bool = False,
) -> ContrastiveHistory:
    """Train the head on image-report pairs (`image`, `report`, and `subtype` when excluding; pass the
    training split) whose slices `cache` reads; the LM is frozen (eval mode, no gradients). Deterministic
    under `config.seed` (on CPU). Leaves the head in eval mode."""
    kept = [p for p in training_pairs(pairs, config.exclude_subtypes) if p["image"] in cache.bags]
    if len(kept) < 2:
        raise ValueError(
            f"{len(kept)} usable pairs: contrastive training needs at least two studies with slices "
            "and a subtype not excluded"
        )
    freeze(lm)
    cache.encoder.eval()
    texts = {t: i for i, t in enumerate(sorted({p["report"] for p in kept}))}
    text_ids = torch.tensor([texts[p["report"]] for p in kept])
    features = text_features(lm, tokenizer, list(texts), config.max_len)
    head.to(features.device).train()
    torch.manual_seed(config.seed)
    optimizer, scheduler = optimizer_for([p for p in head.parameters() if p.requires_grad], config)
    batches = study_batches(cache, [p["image"] for p in kept], config)
    history = ContrastiveHistory()
    for _ in tqdm(range(config.steps), desc="contrastive head", disable=not progress):
        rows, visual = next(batches)
        loss = head.loss(
            head.encode_images(visual), head.encode_texts(features[text_ids[torch.from_numpy(rows)]])
        )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        history.loss.append(float(loss.detach()))
        history.temperature.append(float(1 / head.scale().detach()))
        history.studies.append(tuple(kept[r]["image"] for r in rows))
    head.eval()
    return history


def save_contrastive(
    folder: str | Path, head: ContrastiveHead, config: ContrastiveConfig, history: ContrastiveHistory
) -> Path:
    """Write the head (`models.checkpoint` layout: safetensors weights, config.json, trainer state)."""
    meta = {"kind": KIND, "spec": head.spec.to_dict(), "config": config.to_dict()}
    return save_checkpoint(Path(folder), head, meta, {"history": dataclasses.asdict(history)})


def load_contrastive(folder: str | Path, device: str | torch.device = "cpu") -> ContrastiveHead:
    """A head written by `save_contrastive`, in eval mode on `device`."""
    meta = read_config(folder)
    if meta.get("kind") != KIND:
        raise ValueError(
            f"{folder} holds no contrastive head (kind {meta.get('kind')!r}); pass the folder that "
            "save_contrastive wrote"
        )
    head = ContrastiveHead(ContrastiveSpec.from_dict(meta["spec"]))
    load_weights(folder, head)
    return head.to(device).eval()
