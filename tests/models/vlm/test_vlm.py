"""The vision-language model on a tiny encoder and LM: visual tokens, splicing at the image placeholder,
stage 2a (only resampler and projector change), stage 2b (only LoRA, projector and resampler change), greedy
generation after overfitting one report, and save/load."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from peft import PeftModel
from transformers import PreTrainedTokenizerFast

from models.heads.study_data import StudyBags
from models.hybrid_encoder import HybridEncoder, create_encoder
from models.vlm.align_train import REPORT_PROMPT, AlignConfig, train_alignment
from models.vlm.instruct_train import InstructConfig, train_instructions
from models.vlm.tokenizer import IGNORE_INDEX, IMAGE_TOKEN, pad_token_id
from models.vlm.visual import FeatureCache, ResamplerSpec, spread_bags
from models.vlm.vlm import BrainVLM, base_state_dict, collate, load_vlm, save_vlm, tokenize_examples

NewVLM = Callable[[], BrainVLM]


def state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def assert_identical(before: dict[str, torch.Tensor], after: dict[str, torch.Tensor]) -> None:
    assert before.keys() == after.keys()
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert not changed, f"frozen weights changed: {changed[:5]}"


def train_pairs(pairs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [p for p in pairs if p["split"] == "train"]


def caption_loss(vlm: BrainVLM, cache: FeatureCache, pairs: list[dict[str, Any]]) -> float:
    """Stage 2a's loss on all `pairs` at once, 3 evenly spread slices per study (no sampling noise)."""
    studies = [p["image"] for p in pairs]
    examples = tokenize_examples(
        vlm.tokenizer,
        [
            (
                p["image"],
                [{"role": "user", "content": REPORT_PROMPT}, {"role": "assistant", "content": p["report"]}],
            )
            for p in pairs
        ],
        max_len=256,
    )
    tokens = collate([e for _, e in examples], pad_token_id(vlm.tokenizer), vlm.device)
    with torch.no_grad():
        return float(vlm(cache.batch(studies, spread_bags(cache.bags, studies, 3)), **tokens).loss)


def test_visual_batch_tags_sequence_depth_and_padding(cache: FeatureCache, study_bags: StudyBags) -> None:
    studies = list(study_bags.studies[:2])
    drawn = spread_bags(study_bags, studies, 3)
    drawn[1] = {"T1": drawn[1]["T1"][:2]}  # a shorter study is padded
    batch = cache.batch(studies, drawn)
    assert batch.features.shape == (2, 3, 1 + 2**2, cache.encoder.embed_dim)
    assert batch.mask.tolist() == [[True, True, True], [True, True, False]]
    assert batch.sequence[batch.mask].eq(0).all()  # T1 is the first of STUDY_SEQUENCES
    assert batch.depth[0].tolist() == pytest.approx([0, 4 / 7, 1])  # slices 0, 4 and 7 of 8
    # Cached features are the encoder's embedding of that slice (first vector).
    with torch.no_grad():
        direct = cache.encoder(study_bags.read(drawn[0]["T1"][:1]).float() / 255)
    torch.testing.assert_close(batch.features[0, 0, 0], direct[0], atol=1e-2, rtol=1e-2)  # float16 storage
    encoded = len(cache)
    cache.batch(studies, drawn)
    assert len(cache) == encoded  # nothing encoded twice


def test_features_filled_from_the_heads_pass_are_the_features_the_cache_computes(
    encoder: HybridEncoder, study_bags: StudyBags, resampler_spec: ResamplerSpec, monkeypatch: pytest.MonkeyPatch
) -> None:
    """predict fills the report's cache from the slice table's kept maps: the same rows, and no slice is
    encoded again."""
    from models.heads.study_train import SliceEmbeddings

    study = study_bags.studies[0]
    items = spread_bags(study_bags, [study], 3)[0]["T1"]
    computed = FeatureCache(encoder, study_bags, resampler_spec.region_grid).features(items)
    table = SliceEmbeddings(encoder, study_bags, [study], batch=64, keep_maps=items)
    filled = FeatureCache(encoder, study_bags, resampler_spec.region_grid)
    filled.fill(items, table(items), table.kept_maps(items))
    calls = []
    monkeypatch.setattr(encoder, "forward_features", lambda x: calls.append(x))
    torch.testing.assert_close(filled.features(items), computed, rtol=0, atol=0)
    assert not calls


def test_splice_puts_visual_tokens_at_the_placeholder(
    new_vlm: NewVLM, cache: FeatureCache, study_bags: StudyBags, tokenizer: PreTrainedTokenizerFast
) -> None:
    vlm = new_vlm()
    studies = list(study_bags.studies[:2])
    visual = cache.batch(studies, spread_bags(study_bags, studies, 2))
    (_, a), (_, b) = tokenize_examples(
        tokenizer,
        [
            (
                s,
                [
                    {"role": "user", "content": REPORT_PROMPT},
                    {"role": "assistant", "content": "影像所见：未见异常。"},
                ],
            )
            for s in studies
        ],
        max_len=128,
    )
    ids, mask, labels = (torch.stack([a[k], b[k]]) for k in ("input_ids", "attention_mask", "labels"))
    at = int((ids[0] == tokenizer.convert_tokens_to_ids(IMAGE_TOKEN)).nonzero())
    embeds, new_mask, new_labels = vlm.splice(visual, ids, mask, labels)
    q = vlm.resampler.spec.n_queries
    assert embeds.shape == (2, ids.shape[1] + q - 1, vlm.lm.config.hidden_size)
    torch.testing.assert_close(embeds[:, at : at + q], vlm.visual_tokens(visual))
    torch.testing.assert_close(embeds[:, at + q :], vlm.lm.get_input_embeddings()(ids[:, at + 1 :]))
    assert (new_labels[:, at : at + q] == IGNORE_INDEX).all()
    assert torch.equal(new_labels[:, at + q :], labels[:, at + 1 :]) and new_mask.sum() == mask.sum() + 2 * (
        q - 1
    )
    with pytest.raises(ValueError, match="exactly one"):
        vlm.splice(visual, ids[:, at + 1 :], mask[:, at + 1 :])


def test_stage2a_lowers_caption_loss_and_leaves_encoder_and_lm_bit_identical(
    new_vlm: NewVLM, cache: FeatureCache, pairs: list[dict[str, Any]]
) -> None:
    vlm = new_vlm()
    encoder, lm, visual = state(vlm.encoder), state(vlm.lm), state(vlm.projector) | state(vlm.resampler)
    before = caption_loss(vlm, cache, train_pairs(pairs))
    history = train_alignment(vlm, cache, train_pairs(pairs), AlignConfig.profile("tiny", steps=30))
    assert len(history) == 30 and np.isfinite(history).all()
    # The frozen LM bounds the gain (its text-only floor is about 1.37 nats per token here, from about 1.5).
    after = caption_loss(vlm, cache, train_pairs(pairs))
    assert after < before - 0.1
    assert_identical(encoder, state(vlm.encoder))
    assert_identical(lm, state(vlm.lm))
    after = state(vlm.projector) | state(vlm.resampler)
    assert all(not torch.equal(visual[k], after[k]) for k in visual if k.endswith("weight"))
    # Deterministic under the seed: a second run from the same start repeats the trajectory.
    assert (
        train_alignment(new_vlm(), cache, train_pairs(pairs), AlignConfig.profile("tiny", steps=3))
        == history[:3]
    )


def test_stage2b_changes_only_lora_projector_and_resampler(
    new_vlm: NewVLM, cache: FeatureCache, instructions: list[dict[str, Any]]
) -> None:
    vlm = new_vlm()
    encoder, lm, visual = state(vlm.encoder), state(vlm.lm), state(vlm.projector) | state(vlm.resampler)
    history = train_instructions(vlm, cache, instructions, InstructConfig.profile("tiny", steps=6))
    assert isinstance(vlm.lm, PeftModel) and len(history) == 6 and np.isfinite(history).all()
    assert_identical(encoder, state(vlm.encoder))
    assert_identical(lm, {k: v.clone() for k, v in base_state_dict(vlm.lm).items()})
    lora = {k: v for k, v in vlm.lm.state_dict().items() if "lora_B" in k}
    assert len(lora) == 2 * 4  # q/k/v/o projections of both layers
    assert all(v.abs().sum() > 0 for v in lora.values())  # LoRA B starts at zero: it was trained
    after = state(vlm.projector) | state(vlm.resampler)
    assert all(not torch.equal(visual[k], after[k]) for k in visual if k.endswith("weight"))


def test_overfit_one_report_regenerates_its_sections(
    new_vlm: NewVLM, cache: FeatureCache, study_bags: StudyBags, pairs: list[dict[str, Any]]
) -> None:
    """Stage 2b on ONE report-generation record: greedy generation then writes both section headers and the
    report's impression."""
    pair = pairs[1]
    vlm = new_vlm()
    record = {
        "image": pair["image"],
        "messages": [
            {"role": "user", "content": REPORT_PROMPT},
            {"role": "assistant", "content": pair["report"]},
        ],
    }
    train_instructions(vlm, cache, [record], InstructConfig.profile("tiny", steps=30, batch_studies=1))
    visual = cache.batch([pair["image"]], spread_bags(study_bags, [pair["image"]], 3))
    text = vlm.generate(visual, REPORT_PROMPT, max_new_tokens=80)[0]
    assert "影像所见：" in text and f"诊断意见：{pair['impression']}" in text, text
    assert vlm.generate(visual, REPORT_PROMPT, max_new_tokens=80)[0] == text  # greedy: deterministic


def test_save_load_gives_identical_logits_and_generations(
    new_vlm: NewVLM,
    cache: FeatureCache,
    study_bags: StudyBags,
    encoder: HybridEncoder,
    instructions: list[dict[str, Any]],
    tokenizer: PreTrainedTokenizerFast,
    tmp_path: Path,
) -> None:
    vlm = new_vlm()
    train_instructions(vlm, cache, instructions, InstructConfig.profile("tiny", steps=2))
    save_vlm(tmp_path / "vlm", vlm, history=[1.0, 0.5])
    loaded = load_vlm(tmp_path / "vlm", encoder=encoder)
    assert isinstance(loaded.lm, PeftModel) and not loaded.training
    studies = list(study_bags.studies[:2])
    visual = cache.batch(studies, spread_bags(study_bags, studies, 2))
    [(_, a)] = tokenize_examples(tokenizer, [(studies[0], instructions[0]["messages"])], max_len=128)
    with torch.no_grad():
        logits = [
            m(visual, a["input_ids"][None].expand(2, -1), a["attention_mask"][None].expand(2, -1)).logits
            for m in (vlm, loaded)
        ]
    assert torch.equal(*logits)
    assert loaded.generate(visual, REPORT_PROMPT, 12) == vlm.generate(visual, REPORT_PROMPT, 12)
    torch.manual_seed(1)
    with pytest.raises(ValueError, match="another encoder"):
        load_vlm(tmp_path / "vlm", encoder=create_encoder("tiny"))
    with pytest.raises(ValueError, match="records no encoder"):
        load_vlm(tmp_path / "vlm")


def test_for_inference_merges_lora_and_casts_the_lm_once(
    new_vlm: NewVLM, cache: FeatureCache, study_bags: StudyBags, instructions: list[dict[str, Any]]
) -> None:
    """Merged LoRA answers as the adapters do; in bfloat16 (weights cast once, run under autocast as predict runs
    it) the LM holds no float32 weight and still generates."""
    vlm = new_vlm()
    train_instructions(vlm, cache, instructions, InstructConfig.profile("tiny", steps=2))  # LoRA B now non-zero
    studies = list(study_bags.studies[:2])
    visual = cache.batch(studies, spread_bags(study_bags, studies, 2))
    adapted = vlm.generate(visual, REPORT_PROMPT, 12)
    merged = vlm.for_inference()
    assert merged is vlm and not isinstance(vlm.lm, PeftModel)
    assert not any("lora" in name for name, _ in vlm.lm.named_parameters())
    assert vlm.generate(visual, REPORT_PROMPT, 12) == adapted
    vlm.for_inference(torch.bfloat16)
    assert {p.dtype for p in vlm.lm.parameters()} == {torch.bfloat16}
    with torch.autocast("cpu", dtype=torch.bfloat16):
        answers = vlm.generate(visual, REPORT_PROMPT, 12)
    assert len(answers) == 2 and all(isinstance(a, str) for a in answers)
