"""A study as a bounded number of visual tokens for the language model.

Each drawn slice is encoded once by the frozen hybrid encoder into 1 + g² feature vectors: its global
embedding and its fused token grid average-pooled to g x g regions (so left/right and front/back survive).
`FeatureCache` keeps those per slice (item id), so the frozen encoder runs once per slice over all epochs and
both training stages. `PerceiverResampler` (Flamingo/RadFM-style: learned queries cross-attending to every
slice feature of the study, with sequence-type, region and slice-depth embeddings) turns any number of slices
into `n_queries` tokens, so a lesion on any one slice can reach the text.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from models.heads.common import to_input
from models.heads.study_data import STUDY_SEQUENCES, Bag, StudyBags
from models.hybrid_encoder import HybridEncoder

DEPTH_FREQUENCIES = 4  # sin/cos pairs encoding a slice's relative depth in its series


@dataclass(frozen=True)
class VisualBatch:
    """Cached slice features of a batch of studies, padded to the study with the most slices.

    features: (B, L, T, D) float32, T = 1 + g² vectors per slice (embedding, then regions in raster order).
    sequence: (B, L) index into `STUDY_SEQUENCES`. depth: (B, L) the slice's position in its series, 0 (first
    slice) to 1 (last). mask: (B, L) True for real slices, False for padding.
    """

    features: torch.Tensor
    sequence: torch.Tensor
    depth: torch.Tensor
    mask: torch.Tensor

    def __len__(self) -> int:
        return self.features.shape[0]

    def to(self, device: torch.device | str) -> VisualBatch:
        return VisualBatch(*(getattr(self, f.name).to(device) for f in dataclasses.fields(self)))


def spread_bags(bags: StudyBags, studies: Sequence[str], k: int) -> list[Bag]:
    """For each study, k evenly spaced slices per sequence (all where a sequence has fewer): the deterministic
    draw for evaluation and generation (training draws at random with `StudyBags.sample_bags`)."""
    out = []
    for study in studies:
        out.append(
            {
                seq: items[np.unique(np.linspace(0, len(items) - 1, min(k, len(items))).round().astype(int))]
                for seq, items in bags.all_slices(study).items()
            }
        )
    return out


class FeatureCache:
    """Frozen-encoder features of slices, computed once per slice (keyed by item id) and reused.

    `embed_batch` slices go through the encoder per forward. Each slice costs (1 + region_grid²) x D values
    stored as `dtype` (float16 halves the memory of float32; the encoder's features are well within its
    range). The encoder is put in eval mode and never gets gradients here.
    """

    def __init__(
        self,
        encoder: HybridEncoder,
        bags: StudyBags,
        region_grid: int,
        embed_batch: int = 64,
        dtype: torch.dtype = torch.float16,
    ) -> None:
        if not 1 <= region_grid <= encoder.grid:
            raise ValueError(
                f"region_grid must be in 1..{encoder.grid} (the encoder's token grid), got {region_grid}"
            )
        self.encoder, self.bags, self.region_grid = encoder.eval(), bags, region_grid
        self.embed_batch, self.dtype = embed_batch, dtype
        self.device = next(encoder.parameters()).device
        self._store: dict[int, torch.Tensor] = {}

    def __len__(self) -> int:
        """Number of slices encoded so far."""
        return len(self._store)

    @torch.no_grad()
    def features(self, items: np.ndarray) -> torch.Tensor:
        """Features (N, 1 + g², D) float32 of the slices `items`, encoding those not seen before."""
        items = np.asarray(items, dtype=np.int64)
        missing = np.array(sorted(set(items.tolist()) - self._store.keys()), dtype=np.int64)
        for lo in range(0, len(missing), self.embed_batch):
            chunk = missing[lo : lo + self.embed_batch]
            out = self.encoder.forward_features(to_input(self.bags.read(chunk).to(self.device)))
            self.fill(chunk, out.embedding, out.feature_maps)
        # float32 before stacking: CPU autocast's type promotion (bfloat16 only) refuses float16 inputs
        return torch.stack([self._store[i].float() for i in items.tolist()])

    @torch.no_grad()
    def fill(self, items: np.ndarray, embeddings: torch.Tensor, feature_maps: Sequence[torch.Tensor]) -> None:
        """Store the features of ``items`` from this encoder's output for them, computed elsewhere (the
        embedding (N, D) and the multi-scale maps of `HybridEncoder.forward_features`)."""
        regions = F.adaptive_avg_pool2d(feature_maps[2], self.region_grid).flatten(2).transpose(1, 2)
        rows = torch.cat([embeddings[:, None], regions], dim=1).to(self.dtype)
        self._store.update(zip(np.asarray(items).tolist(), rows))

    def batch(self, studies: Sequence[str], drawn: Sequence[Bag]) -> VisualBatch:
        """The `VisualBatch` of the slices `drawn[i]` (sequence -> item ids) of `studies[i]`."""
        if len(studies) != len(drawn):
            raise ValueError(f"got {len(studies)} studies but {len(drawn)} bags; pass one bag per study")
        per_study = []
        for study, bag in zip(studies, drawn):
            full = self.bags.all_slices(study)
            items, sequence, depth = [], [], []
            for s, seq in enumerate(STUDY_SEQUENCES):
                if seq not in bag:
                    continue
                order = np.argsort(full[seq])
                position = order[np.searchsorted(full[seq], bag[seq], sorter=order)]
                items.append(bag[seq])
                sequence.append(np.full(len(bag[seq]), s))
                depth.append(position / max(len(full[seq]) - 1, 1))
            per_study.append((np.concatenate(items), np.concatenate(sequence), np.concatenate(depth)))
        length = max(len(p[0]) for p in per_study)
        features = self.features(np.concatenate([p[0] for p in per_study]))
        out = VisualBatch(
            features=features.new_zeros(len(studies), length, *features.shape[1:]),
            sequence=torch.zeros(len(studies), length, dtype=torch.long),
            depth=torch.zeros(len(studies), length),
            mask=torch.zeros(len(studies), length, dtype=torch.bool),
        )
        start = 0
        for b, (items, sequence, depth) in enumerate(per_study):
            n = len(items)
            out.features[b, :n] = features[start : start + n]
            out.sequence[b, :n] = torch.from_numpy(sequence)
            out.depth[b, :n] = torch.from_numpy(depth).float()
            out.mask[b, :n] = True
            start += n
        return out.to(self.device)


@dataclass(frozen=True)
class ResamplerSpec:
    """Architecture of a `PerceiverResampler`: encoder width `encoder_dim`, the g of the g x g regions per
    slice (`region_grid`), its own width, `n_queries` output tokens, `depth` layers of `heads` heads."""

    encoder_dim: int
    region_grid: int = 2
    width: int = 256
    n_queries: int = 16
    depth: int = 2
    heads: int = 4

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class _ResamplerLayer(nn.Module):
    """Latents attend to [slice features; latents] (Flamingo's Perceiver Resampler), then an MLP; pre-norm."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.norm_x, self.norm_q, self.norm_mlp = (
            nn.LayerNorm(width),
            nn.LayerNorm(width),
            nn.LayerNorm(width),
        )
        self.attn = nn.MultiheadAttention(width, heads, batch_first=True)
        self.mlp = nn.Sequential(nn.Linear(width, 4 * width), nn.GELU(), nn.Linear(4 * width, width))

    def forward(self, latents: torch.Tensor, x: torch.Tensor, ignore: torch.Tensor) -> torch.Tensor:
        q = self.norm_q(latents)
        kv = torch.cat([self.norm_x(x), q], dim=1)
        ignore = torch.cat([ignore, ignore.new_zeros(ignore.shape[0], q.shape[1])], dim=1)
        latents = latents + self.attn(q, kv, kv, key_padding_mask=ignore, need_weights=False)[0]
        return latents + self.mlp(self.norm_mlp(latents))


class PerceiverResampler(nn.Module):
    """Slice features of a study (`VisualBatch`) -> (B, n_queries, width) visual tokens.

    Every feature vector is standardised per channel (batch normalisation without affine parameters, running
    statistics at evaluation: frozen-encoder features of different slices differ by a small part of their
    norm, the reason the study heads standardise too, `models.heads.aggregate.StudyHead`) and projected to
    `width`, then tagged with its sequence type (T1, T2, FLAIR, DWI), its kind (slice embedding or region r)
    and the slice's depth in its series (Fourier features of the 0..1 position); `depth` layers of learned
    queries cross-attend to all of them, padding masked.
    """

    def __init__(self, spec: ResamplerSpec) -> None:
        super().__init__()
        self.spec = spec
        self.per_slice = 1 + spec.region_grid**2
        self.in_norm = nn.BatchNorm1d(spec.encoder_dim, affine=False)
        self.in_proj = nn.Linear(spec.encoder_dim, spec.width)
        self.sequence_embed = nn.Embedding(len(STUDY_SEQUENCES), spec.width)
        self.kind_embed = nn.Embedding(self.per_slice, spec.width)
        self.depth_proj = nn.Linear(2 * DEPTH_FREQUENCIES, spec.width)
        self.queries = nn.Parameter(torch.randn(spec.n_queries, spec.width) * spec.width**-0.5)
        self.layers = nn.ModuleList(_ResamplerLayer(spec.width, spec.heads) for _ in range(spec.depth))
        self.out_norm = nn.LayerNorm(spec.width)

    def forward(self, batch: VisualBatch) -> torch.Tensor:
        b, length, per_slice, _ = batch.features.shape
        if per_slice != self.per_slice:
            raise ValueError(
                f"got {per_slice} features per slice, the resampler expects {self.per_slice}; build "
                f"the FeatureCache with region_grid={self.spec.region_grid}"
            )
        angles = batch.depth[..., None] * (
            math.pi * 2.0 ** torch.arange(DEPTH_FREQUENCIES, device=batch.depth.device)
        )
        per_slice_tag = self.sequence_embed(batch.sequence) + self.depth_proj(
            torch.cat([angles.sin(), angles.cos()], -1)
        )
        real = batch.features[batch.mask]  # (slices, per_slice, D): padding stays out of the statistics
        normed = batch.features.new_zeros(batch.features.shape)
        normed[batch.mask] = self.in_norm(real.flatten(0, 1)).view_as(real)
        x = self.in_proj(normed) + self.kind_embed.weight + per_slice_tag[:, :, None]
        x = x.reshape(b, length * per_slice, -1)
        ignore = (~batch.mask).repeat_interleave(per_slice, dim=1)
        latents = self.queries.expand(b, -1, -1)
        for layer in self.layers:
            latents = layer(latents, x, ignore)
        return self.out_norm(latents)
