"""The stage-2 chain as the pipeline runs it, one function per stage, shared by the stage-2 assets
(`assets/vlm.py`) and the benchmark (`bench/vlm.py`): the report LM trained from scratch, stage 2a alignment
(with the held-out caption loss before and after), the contrastive head, and the held-out outputs of the
instruction-tuned model (stage 2b trains with `models.vlm.instruct_train.train_instructions`). Records are
the `brainfm.evaluation.stage2` ones (``image`` = study key, ``report``, ``patient``, ``subtype``); scoring
them is that module's job: nothing here computes a metric."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase, PreTrainedTokenizerFast

from models.heads.study_data import StudyBags
from models.hybrid_encoder import HybridEncoder
from models.vlm.align_train import REPORT_PROMPT, AlignConfig, train_alignment
from models.vlm.contrastive import (
    ContrastiveConfig,
    ContrastiveHead,
    ContrastiveHistory,
    ContrastiveSpec,
    train_contrastive,
)
from models.vlm.evaluate import (
    answer_records,
    example_losses,
    generate_answers,
    image_embeddings,
    text_embeddings,
)
from models.vlm.language_model import LMConfig, build_language_model
from models.vlm.lm_train import train_language_model
from models.vlm.tokenizer import train_tokenizer
from models.vlm.visual import FeatureCache, ResamplerSpec
from models.vlm.vlm import BrainVLM, build_vlm, tokenize_examples, usable

EVAL_SLICES = 4  # slices per sequence (evenly spaced) each held-out study is seen through
MAX_REPORT_TOKENS = {"tiny": 96, "small": 384, "full": 512}  # generated report length cap per profile, tokens

Record = Mapping[str, Any]


def fit_language_model(
    texts: Sequence[str], config: LMConfig, device: str | torch.device, progress: bool = False,
    tokenizer: PreTrainedTokenizerFast | None = None,
) -> tuple[PreTrainedModel, PreTrainedTokenizerFast, dict[str, Any]]:
    """A fresh LM (`config`) trained on `texts` on `device` with `tokenizer` (by default a byte-level BPE
    tokenizer trained on `texts`); returns the model (eval mode), the tokenizer and the training history."""
    tokenizer = tokenizer or train_tokenizer(texts, config.vocab_size)
    model = build_language_model(tokenizer, config).to(device)
    history = train_language_model(model, tokenizer, texts, config, progress=progress)
    return model, tokenizer, history


@dataclass
class Alignment:
    """Stage 2a: the aligned VLM, its slice-feature cache (shared by the later stages), the caption loss per
    step, and each held-out pair's caption loss (nats per report token) before and after training."""

    vlm: BrainVLM
    cache: FeatureCache
    history: list[float]
    loss_before: np.ndarray
    loss_after: np.ndarray


def new_vlm(
    encoder: HybridEncoder, lm: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, bags: StudyBags, seed: int
) -> tuple[BrainVLM, FeatureCache]:
    """A VLM with a fresh resampler and projector (drawn under `seed`) on the frozen encoder and LM, and the
    feature cache of its encoder over `bags`."""
    vlm = build_vlm(encoder, lm, tokenizer, ResamplerSpec(encoder_dim=encoder.embed_dim), seed=seed)
    return vlm, vlm.feature_cache(bags)


def align(
    vlm: BrainVLM, cache: FeatureCache, train: Sequence[Record], test: Sequence[Record], config: AlignConfig,
    progress: bool = False,
) -> Alignment:
    """Stage 2a on the `train` pairs (`train_alignment`), with the held-out `test` pairs' caption loss under
    the same prompt measured before and after (`EVAL_SLICES` per sequence, deterministic)."""
    conversations = [(p["image"], [{"role": "user", "content": config.prompt},
                                   {"role": "assistant", "content": p["report"]}]) for p in test]
    held_out = usable(tokenize_examples(vlm.tokenizer, conversations, config.max_len), cache.bags)
    before = example_losses(vlm, cache, held_out, EVAL_SLICES)
    history = train_alignment(vlm, cache, train, config, progress=progress)
    return Alignment(vlm, cache, history, before, example_losses(vlm, cache, held_out, EVAL_SLICES))


def new_contrastive_head(vlm: BrainVLM) -> ContrastiveHead:
    """A contrastive head on the LM's hidden size, its resampler started from the VLM's (stage 2a)."""
    head = ContrastiveHead(ContrastiveSpec(vlm.resampler.spec, vlm.lm.config.hidden_size))
    head.resampler.load_state_dict(vlm.resampler.state_dict())
    return head


def contrast(
    head: ContrastiveHead, vlm: BrainVLM, cache: FeatureCache, train: Sequence[Record], config: ContrastiveConfig,
    progress: bool = False,
) -> ContrastiveHistory:
    """Train `head` (`new_contrastive_head`) on the labelled `train` pairs, `config.exclude_subtypes` left out,
    with the VLM's frozen LM as text encoder."""
    return train_contrastive(head, cache, vlm.lm, vlm.tokenizer, [p for p in train if p["subtype"]], config,
                             progress=progress)


@dataclass
class HeldOutEmbeddings:
    """Unit-norm contrastive embeddings of the held-out studies (`images`), their reports (`texts`, same order)
    and one text prompt per class (`prompts`)."""

    images: np.ndarray
    texts: np.ndarray
    prompts: np.ndarray


def held_out_embeddings(
    head: ContrastiveHead, vlm: BrainVLM, cache: FeatureCache, test: Sequence[Record], prompts: Sequence[str],
    max_len: int,
) -> HeldOutEmbeddings:
    """The trained head's embeddings of the `test` pairs' studies and reports and of `prompts` (texts cut at
    `max_len` tokens)."""
    return HeldOutEmbeddings(image_embeddings(head, cache, [p["image"] for p in test], EVAL_SLICES),
                             text_embeddings(head, vlm, [p["report"] for p in test], max_len),
                             text_embeddings(head, vlm, prompts, max_len))


@dataclass
class HeldOutOutputs:
    """The instruction-tuned model's greedy report per held-out study and answer per QA record (in order),
    and the contrastive image embeddings of the training and held-out studies (the nearest-report baseline)."""

    reports: list[str]
    answers: list[str]
    train_embeddings: np.ndarray
    test_embeddings: np.ndarray


def held_out_outputs(
    vlm: BrainVLM, head: ContrastiveHead, cache: FeatureCache, train: Sequence[Record], test: Sequence[Record],
    qa_records: Sequence[Record], max_new_tokens: int, progress: bool = False,
) -> HeldOutOutputs:
    """Greedy reports (`REPORT_PROMPT`) for the `test` studies and answers to the first user turn of each
    `qa_records` entry, at most `max_new_tokens` tokens each, and the head's embeddings of the pairs' studies."""
    reports = generate_answers(vlm, cache, [p["image"] for p in test], REPORT_PROMPT, EVAL_SLICES, max_new_tokens,
                               progress=progress)
    answers = answer_records(vlm, cache, qa_records, EVAL_SLICES, max_new_tokens)
    return HeldOutOutputs(reports, answers, image_embeddings(head, cache, [p["image"] for p in train], EVAL_SLICES),
                          image_embeddings(head, cache, [p["image"] for p in test], EVAL_SLICES))
