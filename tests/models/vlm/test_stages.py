"""The stage-2 chain shared by the assets and bench/vlm.py, on the tiny vision-language fixtures: the LM reuses
a given tokenizer, alignment reports each held-out pair's caption loss before and after, the contrastive head
embeds the held-out side, and the held-out outputs answer every study and QA record in order (answers batched
by question equal the one-at-a-time ones)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from transformers import PreTrainedTokenizerFast

from models.vlm.align_train import AlignConfig
from models.vlm.contrastive import ContrastiveConfig
from models.vlm.evaluate import answer_records, generate_answers
from models.vlm.language_model import LMConfig
from models.vlm.stages import (
    EVAL_SLICES,
    align,
    contrast,
    fit_language_model,
    held_out_embeddings,
    held_out_outputs,
    new_contrastive_head,
)
from models.vlm.visual import FeatureCache
from models.vlm.vlm import BrainVLM


def test_fit_language_model_trains_with_the_given_tokenizer(
    tokenizer: PreTrainedTokenizerFast, pairs: list[dict[str, Any]]
) -> None:
    model, used, history = fit_language_model([p["report"] for p in pairs], LMConfig.profile("tiny", steps=5), "cpu",
                                              tokenizer=tokenizer)
    assert used is tokenizer and len(history["loss"]) == 5
    assert model.config.vocab_size == len(tokenizer) and not model.training


def test_align_lowers_each_held_out_caption_loss_on_average(
    new_vlm: Callable[[], BrainVLM], cache: FeatureCache, pairs: list[dict[str, Any]]
) -> None:
    train, test = [p for p in pairs if p["split"] == "train"], [p for p in pairs if p["split"] == "test"]
    result = align(new_vlm(), cache, train, test, AlignConfig.profile("tiny", steps=30, lr=3e-3))
    assert len(result.history) == 30 and result.loss_before.shape == result.loss_after.shape == (len(test),)
    assert result.loss_after.mean() < result.loss_before.mean()


def test_contrastive_embeddings_and_held_out_outputs_cover_every_study_and_record(
    new_vlm: Callable[[], BrainVLM], cache: FeatureCache, pairs: list[dict[str, Any]],
    instructions: list[dict[str, Any]],
) -> None:
    vlm = new_vlm()
    train, test = [p for p in pairs if p["split"] == "train"], [p for p in pairs if p["split"] == "test"]
    head = new_contrastive_head(vlm)
    assert torch.equal(head.resampler.queries, vlm.resampler.queries)
    history = contrast(head, vlm, cache, train, ContrastiveConfig.profile("tiny", steps=3))
    trained = {study for batch in history.studies for study in batch}
    rare = {p["image"] for p in pairs if p["subtype"] in ContrastiveConfig().exclude_subtypes}
    assert trained and rare and not trained & rare
    embedded = held_out_embeddings(head, vlm, cache, test, ["诊断意见：胶质瘤", "诊断意见：脑膜瘤"], 64)
    assert embedded.images.shape[0] == embedded.texts.shape[0] == len(test) and embedded.prompts.shape[0] == 2
    assert np.allclose(np.linalg.norm(embedded.images, axis=1), 1.0, atol=1e-5)

    qa = [r for r in instructions if r["split"] == "test" and r["task"] == "qa_category"]
    outputs = held_out_outputs(vlm, head, cache, train, test, qa, max_new_tokens=6)
    assert len(outputs.reports) == len(test) and len(outputs.answers) == len(qa)
    assert outputs.train_embeddings.shape == (len(train), embedded.images.shape[1])
    assert np.allclose(outputs.test_embeddings, embedded.images, atol=1e-5)


def test_answers_batched_by_question_equal_one_at_a_time(
    new_vlm: Callable[[], BrainVLM], cache: FeatureCache, instructions: list[dict[str, Any]]
) -> None:
    vlm = new_vlm()
    # Two questions interleaved, so grouping must put every answer back in its record's place.
    records = [r for r in instructions if r["task"] in ("qa_category", "report_generation")][:6]
    assert len({r["messages"][0]["content"] for r in records}) == 2
    alone = [generate_answers(vlm, cache, [r["image"]], r["messages"][0]["content"], EVAL_SLICES, 6)[0]
             for r in records]
    assert answer_records(vlm, cache, records, EVAL_SLICES, 6) == alone
