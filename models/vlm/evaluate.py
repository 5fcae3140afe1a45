"""Deterministic stage-2 outputs on held-out studies: per-example caption losses, greedy answers and contrastive
embeddings, each study seen through `spread_bags` (k evenly spaced slices per sequence, no randomness)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from models.vlm.contrastive import ContrastiveHead, text_features
from models.vlm.tokenizer import pad_token_id
from models.vlm.visual import FeatureCache, VisualBatch, spread_bags
from models.vlm.vlm import BrainVLM, Example, collate


def _chunks(studies: Sequence[str], cache: FeatureCache, k: int, batch: int) -> Iterator[tuple[slice, VisualBatch]]:
    for lo in range(0, len(studies), batch):
        part = list(studies[lo : lo + batch])
        yield slice(lo, lo + len(part)), cache.batch(part, spread_bags(cache.bags, part, k))


@torch.no_grad()
def example_losses(vlm: BrainVLM, cache: FeatureCache, examples: Sequence[Example], k: int, batch: int = 8) -> np.ndarray:
    """Mean cross-entropy (nats per answer token) of each example (study, tokens), in order."""
    vlm.eval()
    losses = []
    for rows, visual in _chunks([e[0] for e in examples], cache, k, batch):
        for i, example in enumerate(examples[rows]):
            tokens = collate([example[1]], pad_token_id(vlm.tokenizer), vlm.device)
            one = VisualBatch(*(t[i : i + 1] for t in (visual.features, visual.sequence, visual.depth, visual.mask)))
            losses.append(float(vlm(one, **tokens).loss))
    return np.asarray(losses)


def generate_answers(
    vlm: BrainVLM, cache: FeatureCache, studies: Sequence[str], prompt: str, k: int, max_new_tokens: int,
    batch: int = 8, progress: bool = False,
) -> list[str]:
    """Greedy answers to `prompt` about each study, in order."""
    vlm.eval()
    out: list[str] = []
    for _, visual in tqdm(list(_chunks(studies, cache, k, batch)), desc="generate", disable=not progress):
        out += vlm.generate(visual, prompt, max_new_tokens)
    return out


def answer_records(
    vlm: BrainVLM, cache: FeatureCache, records: Sequence[Mapping[str, Any]], k: int, max_new_tokens: int,
    batch: int = 8,
) -> list[str]:
    """Greedy answers to the first user turn of each instruction record (``image``: its study; ``messages``),
    in order. Records asking the same question are answered together, `batch` studies per call."""
    by_prompt: dict[str, list[int]] = {}
    for i, record in enumerate(records):
        by_prompt.setdefault(record["messages"][0]["content"], []).append(i)
    answers = [""] * len(records)
    for prompt, rows in by_prompt.items():
        found = generate_answers(vlm, cache, [records[i]["image"] for i in rows], prompt, k, max_new_tokens, batch)
        for i, answer in zip(rows, found, strict=True):
            answers[i] = answer
    return answers


@torch.no_grad()
def image_embeddings(head: ContrastiveHead, cache: FeatureCache, studies: Sequence[str], k: int, batch: int = 16) -> np.ndarray:
    """Unit-norm contrastive embeddings (N, D) of the studies."""
    head.eval()
    return torch.cat([head.encode_images(visual) for _, visual in _chunks(studies, cache, k, batch)]).cpu().numpy()


@torch.no_grad()
def text_embeddings(head: ContrastiveHead, vlm: BrainVLM, texts: Sequence[str], max_len: int) -> np.ndarray:
    """Unit-norm contrastive embeddings (N, D) of texts (reports, or one prompt per class)."""
    head.eval()
    return head.encode_texts(text_features(vlm.lm, vlm.tokenizer, list(texts), max_len)).cpu().numpy()
