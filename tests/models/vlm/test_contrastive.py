"""The CLIP-style head: InfoNCE, retrieval ranks and zero-shot probabilities on hand-made embeddings with
known answers; training on the tiny encoder's cached features with the rare subtype left out; save/load."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from transformers import PreTrainedModel, PreTrainedTokenizerFast

from models.vlm.contrastive import (
    RARE_SUBTYPES,
    ContrastiveConfig,
    ContrastiveHead,
    ContrastiveSpec,
    load_contrastive,
    retrieve,
    save_contrastive,
    text_features,
    train_contrastive,
    training_pairs,
    zero_shot,
)
from models.vlm.visual import FeatureCache, ResamplerSpec, spread_bags


@pytest.fixture
def head(resampler_spec: ResamplerSpec, report_lm: PreTrainedModel) -> ContrastiveHead:
    torch.manual_seed(0)
    return ContrastiveHead(
        ContrastiveSpec(resampler_spec, text_dim=report_lm.config.hidden_size, embed_dim=16)
    )


@torch.no_grad()
def test_infonce_known_values(head: ContrastiveHead) -> None:
    head.logit_scale.fill_(math.log(100.0))
    eye = torch.eye(3)
    # Perfectly paired: each row's logits are (100, 0, 0) -> loss log(1 + 2 e^-100), i.e. 0.
    assert float(head.loss(eye, eye)) == pytest.approx(0.0, abs=1e-6)
    # Every image equally similar to every text: log(3) nats in both directions.
    same = F.normalize(torch.ones(3, 4), dim=-1)
    assert float(head.loss(same, same)) == pytest.approx(math.log(3), rel=1e-6)
    head.logit_scale.fill_(math.log(1e4))
    assert float(head.scale()) == pytest.approx(100.0)  # clamped as in CLIP


def test_retrieve_ranks_and_zero_shot_known_answers() -> None:
    query = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])
    target = torch.tensor([[0.0, 1.0], [1.0, 0.0], [0.6, 0.8]])
    # Query 0 scores its target 0, below both others: rank 3; likewise query 1; query 2 finds its own first.
    assert retrieve(query, target).tolist() == [3, 3, 1]
    assert retrieve(target, target).tolist() == [1, 1, 1]
    duplicate = torch.tensor([[1.0, 0.0], [1.0, 0.0]])  # two studies with the same report text
    assert retrieve(duplicate, duplicate).tolist() == [1, 1]
    probs = zero_shot(query, torch.eye(2), logit_scale=100.0)
    assert probs.shape == (3, 2) and torch.allclose(probs.sum(1), torch.ones(3))
    assert probs.argmax(1).tolist() == [0, 1, 1] and float(probs[0, 0]) == pytest.approx(1.0)


def test_training_excludes_rare_subtypes_lowers_loss_and_round_trips(
    head: ContrastiveHead,
    cache: FeatureCache,
    report_lm: PreTrainedModel,
    tokenizer: PreTrainedTokenizerFast,
    pairs: list[dict[str, Any]],
    tmp_path: Path,
) -> None:
    train = [p for p in pairs if p["split"] == "train"]
    kept = training_pairs(train, RARE_SUBTYPES)
    rare = {p["image"] for p in train if p["subtype"] in RARE_SUBTYPES}
    assert rare and len(kept) == len(train) - len(rare)
    studies = [p["image"] for p in kept]
    visual = cache.batch(studies, spread_bags(cache.bags, studies, 3))
    texts = text_features(report_lm, tokenizer, [p["report"] for p in kept])

    def fixed_loss() -> float:
        with torch.no_grad():
            return float(head.loss(head.encode_images(visual), head.encode_texts(texts)))

    before = fixed_loss()
    ranks_before = retrieve(head.encode_images(visual).detach(), head.encode_texts(texts).detach())
    config = ContrastiveConfig.profile("tiny", steps=30, batch_studies=6, lr=5e-3)
    history = train_contrastive(head, cache, report_lm, tokenizer, train, config)
    assert not rare & {s for batch in history.studies for s in batch}  # never in a training batch
    assert {s for batch in history.studies for s in batch} == set(studies)
    assert len(history.loss) == 30 and history.temperature[-1] != pytest.approx(0.07)
    assert fixed_loss() < min(before - 0.2, math.log(len(kept)))  # below chance: images tell reports apart
    with torch.no_grad():
        image_emb, text_emb = head.encode_images(visual), head.encode_texts(texts)
    ranks = retrieve(image_emb, text_emb)
    assert ranks.dtype == torch.long and ranks.shape == (len(kept),)
    assert int(ranks.min()) >= 1 and int(ranks.max()) <= len(kept)
    assert ranks.float().mean() < ranks_before.float().mean()

    save_contrastive(tmp_path / "clip", head, config, history)
    loaded = load_contrastive(tmp_path / "clip")
    with torch.no_grad():
        assert torch.equal(loaded.encode_images(visual), image_emb)
        assert torch.equal(loaded.encode_texts(texts), text_emb)
    with pytest.raises(ValueError, match="subtype"):
        train_contrastive(
            head,
            cache,
            report_lm,
            tokenizer,
            [{"image": p["image"], "report": p["report"]} for p in train],
            config,
        )
