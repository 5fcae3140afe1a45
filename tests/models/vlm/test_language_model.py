"""The report LM: byte-level BPE on Chinese reports, real training steps, save/load through from_pretrained
(ours and a site's checkpoint), chat masking and determinism. Nothing may reach a model hub."""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"  # before transformers is imported: no hub lookups at all

import copy
import json
import re
import socket
from pathlib import Path

import jinja2
import numpy as np
import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from brainfm.synth.identities import draw_identity
from brainfm.synth.lesions import SITES
from brainfm.synth.profiles import CENTERS
from brainfm.synth.reports import SIGNALS, ReportFacts, write_report
from models.vlm.language_model import (
    LMConfig,
    build_language_model,
    load_language_model,
    perplexity,
    save_language_model,
    unigram_perplexity,
)
from models.vlm.lm_train import pack_blocks, train_language_model
from models.vlm.tokenizer import (
    IGNORE_INDEX,
    IMAGE_TOKEN,
    ROLE_TOKENS,
    chat_example,
    format_chat,
    train_tokenizer,
)

REPORT_SETS = Path(__file__).resolve().parents[2] / "data" / "reports"
CJK = re.compile(r"[\u4e00-\u9fff]")
CHAT = [
    {"role": "system", "content": "你是放射科医生。"},
    {"role": "user", "content": f"{IMAGE_TOKEN * 2}病变位于哪里？"},
    {"role": "assistant", "content": "左侧颞叶。"},
    {"role": "user", "content": "多大？"},
    {"role": "assistant", "content": "最大径约41 mm。"},
]


def synthetic_reports(n: int, seed: int) -> list[str]:
    """Reports from the cohort generator's writer, with facts drawn at random (no images rendered)."""
    rng = np.random.default_rng(seed)
    subtypes, sites = [*SIGNALS, "normal"], list(SITES)
    reports = []
    for i in range(n):
        center = CENTERS[i % len(CENTERS)]
        subtype = subtypes[int(rng.integers(len(subtypes)))]
        size_mm, age = float(rng.uniform(5, 50)), int(rng.integers(18, 90))
        lesion = subtype != "normal"
        facts = ReportFacts(
            subtype,
            str(rng.choice(["left", "right", "bilateral"])),
            (sites[int(rng.integers(len(sites)))],) if lesion else (),
            "WHO 4" if subtype == "glioma" else None,
            (size_mm, 0.8 * size_mm) if lesion else None,
            int(rng.integers(1, 4)),
            bool(rng.random() < 0.5),
            bool(rng.random() < 0.2),
            str(rng.choice(["M", "F"])),
            age,
        )
        ident = draw_identity(rng, center.center_id[-1], i, center.phone_prefix, age)
        reports.append(write_report(facts, ident, center.center_id, center.institution, rng))
    return reports


def handwritten_reports() -> list[str]:
    """Every hand-written report of the repository's test sets (report parsing and de-identification)."""
    texts = [
        json.loads(line)["text"]
        for path in sorted(REPORT_SETS.glob("*.jsonl"))
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    assert len(texts) > 300
    return texts


def whole_character_share(tokenizer: PreTrainedTokenizerFast, texts: list[str]) -> float:
    """Share of Chinese characters that fall inside tokens made of whole characters (not split into bytes)."""
    whole = sum(
        len(CJK.findall(piece))
        for text in texts
        for piece in map(tokenizer.decode, ([i] for i in tokenizer.encode(text, add_special_tokens=False)))
        if "\ufffd" not in piece
    )
    return whole / sum(len(CJK.findall(text)) for text in texts)


def chars_per_token(tokenizer: PreTrainedTokenizerFast, texts: list[str]) -> float:
    return sum(map(len, texts)) / sum(len(tokenizer.encode(t, add_special_tokens=False)) for t in texts)


@pytest.fixture(scope="module")
def config() -> LMConfig:
    return LMConfig.profile("tiny")


@pytest.fixture(scope="module")
def corpus() -> list[str]:
    """Synthetic reports plus every other hand-written report; the rest of those is held out."""
    return synthetic_reports(300, seed=0) + handwritten_reports()[::2]


@pytest.fixture(scope="module")
def tokenizer(corpus: list[str], config: LMConfig) -> PreTrainedTokenizerFast:
    return train_tokenizer(corpus, config.vocab_size)


@pytest.fixture(scope="module")
def lm_corpus() -> list[str]:
    """A tiny LM corpus: 60 synthetic reports (~8 k tokens, 120 blocks of the tiny profile)."""
    return synthetic_reports(60, seed=0)


@pytest.fixture(scope="module")
def trained(tokenizer: PreTrainedTokenizerFast, lm_corpus: list[str], config: LMConfig) -> tuple[torch.nn.Module, dict]:
    model = build_language_model(tokenizer, config)
    return model, train_language_model(model, tokenizer, lm_corpus, config, progress=False)


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to open a connection fails the test."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"tried to open a network connection: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def test_no_unknown_tokens_and_exact_round_trip_on_handwritten_reports(tokenizer: PreTrainedTokenizerFast) -> None:
    assert tokenizer.unk_token is None  # byte-level: nothing is unknown by construction
    for text in handwritten_reports():
        ids = tokenizer.encode(text, add_special_tokens=False)
        assert max(ids) < len(tokenizer)
        assert tokenizer.decode(ids) == text


def test_special_tokens(tokenizer: PreTrainedTokenizerFast) -> None:
    names = [tokenizer.pad_token, tokenizer.bos_token, tokenizer.eos_token, tokenizer.image_token, *ROLE_TOKENS]
    assert tokenizer.image_token == IMAGE_TOKEN and tokenizer.eos_token == "<|end|>"
    ids = tokenizer.convert_tokens_to_ids(names)
    assert len(set(ids)) == len(names) and max(ids) < len(tokenizer)
    # each marker is one token, also when written inside a message
    assert tokenizer.encode(f"左侧{IMAGE_TOKEN * 3}颞叶", add_special_tokens=False).count(tokenizer.image_token_id) == 3


def test_chinese_compresses_to_whole_characters(tokenizer: PreTrainedTokenizerFast) -> None:
    unseen_synthetic = synthetic_reports(50, seed=1)
    held_out = handwritten_reports()[1::2]
    # UTF-8 spends 3 bytes per Chinese character: byte tokens alone would give ~0.4 characters per token.
    assert whole_character_share(tokenizer, unseen_synthetic) > 0.99
    assert chars_per_token(tokenizer, unseen_synthetic) > 2.0
    assert whole_character_share(tokenizer, held_out) > 0.85  # 0.91 when written; rare names fall back to bytes
    assert chars_per_token(tokenizer, held_out) > 1.4  # 1.61 when written
    assert len(tokenizer.tokenize("信号")) == 1 and len(tokenizer.tokenize("颞")) == 1


def test_tokenizer_is_deterministic(corpus: list[str], tokenizer: PreTrainedTokenizerFast, config: LMConfig) -> None:
    again = json.loads(train_tokenizer(corpus, config.vocab_size).backend_tokenizer.to_str())["model"]
    assert again == json.loads(tokenizer.backend_tokenizer.to_str())["model"]  # vocabulary and merges


def test_vocab_size_too_small_is_an_error() -> None:
    with pytest.raises(ValueError, match="byte tokens"):
        train_tokenizer(["左侧颞叶"], 100)


def test_training_lowers_the_loss(
    trained: tuple[torch.nn.Module, dict], tokenizer: PreTrainedTokenizerFast, config: LMConfig
) -> None:
    model, history = trained
    losses = history["loss"]
    assert len(losses) == config.steps and history["tokens"] == history["blocks"] * config.seq_len
    assert np.mean(losses[:5]) > 7.5  # ~ln(4000): uniform guessing at the start
    assert np.mean(losses[-5:]) < 0.65 * np.mean(losses[:5])  # 0.56 when written
    held_out = synthetic_reports(20, seed=2)
    untrained = build_language_model(tokenizer, config)
    assert perplexity(model, tokenizer, held_out) < perplexity(untrained, tokenizer, held_out) / 10


def test_the_trained_lm_beats_the_unigram_baseline(
    trained: tuple[torch.nn.Module, dict], tokenizer: PreTrainedTokenizerFast, lm_corpus: list[str]
) -> None:
    held_out = synthetic_reports(20, seed=2)
    baseline = unigram_perplexity(tokenizer, lm_corpus, held_out)
    assert 1.0 < perplexity(trained[0], tokenizer, held_out) < baseline < len(tokenizer)


def test_training_is_deterministic(tokenizer: PreTrainedTokenizerFast, lm_corpus: list[str]) -> None:
    config = LMConfig.profile("tiny", steps=8)
    models = [build_language_model(tokenizer, config) for _ in range(2)]
    first, second = (train_language_model(m, tokenizer, lm_corpus, config, progress=False) for m in models)
    assert first["loss"] == second["loss"] and len(set(first["loss"])) == 8
    for (name, a), b in zip(models[0].state_dict().items(), models[1].state_dict().values(), strict=True):
        assert torch.equal(a, b), name


def test_build_is_seeded_and_leaves_global_rng_alone(tokenizer: PreTrainedTokenizerFast, config: LMConfig) -> None:
    state = torch.random.get_rng_state()
    a, b = build_language_model(tokenizer, config), build_language_model(tokenizer, config)
    c = build_language_model(tokenizer, LMConfig.profile("tiny", seed=1))
    assert torch.equal(torch.random.get_rng_state(), state)
    embed = a.get_input_embeddings().weight
    assert torch.equal(embed, b.get_input_embeddings().weight) and not torch.equal(embed, c.get_input_embeddings().weight)
    assert a.config.vocab_size == len(tokenizer) and a.config.eos_token_id == tokenizer.eos_token_id


def test_profiles(tokenizer: PreTrainedTokenizerFast) -> None:
    def n_params(name: str) -> int:
        with torch.device("meta"):  # shapes only, no memory
            return sum(p.numel() for p in build_language_model(tokenizer, LMConfig.profile(name)).parameters())

    assert n_params("tiny") < 1e6 and 1e7 < n_params("small") < 6e7 and 6e7 < n_params("full") < 1.5e8
    with pytest.raises(KeyError, match="choose one of"):
        LMConfig.profile("huge")
    with pytest.raises(ValueError, match="multiple of heads"):
        LMConfig.profile("tiny", heads=3)


def test_corpus_shorter_than_a_block_is_an_error(tokenizer: PreTrainedTokenizerFast) -> None:
    assert pack_blocks(tokenizer, ["左侧颞叶。"] * 40, 16).shape[1] == 16
    with pytest.raises(ValueError, match="lower LMConfig.seq_len"):
        pack_blocks(tokenizer, ["左侧颞叶。"], 64)


def test_save_and_load_give_identical_logits(
    trained: tuple[torch.nn.Module, dict], tokenizer: PreTrainedTokenizerFast, tmp_path: Path, no_network: None
) -> None:
    model, _ = trained
    folder = save_language_model(model, tokenizer, tmp_path / "lm")
    loaded, loaded_tokenizer = load_language_model(folder)
    text = handwritten_reports()[0]
    ids = loaded_tokenizer(text, return_tensors="pt")["input_ids"]
    assert ids[0].tolist() == tokenizer.encode(text, add_special_tokens=False)
    with torch.no_grad():
        assert torch.equal(loaded(input_ids=ids).logits, model(input_ids=ids).logits)
    assert format_chat(loaded_tokenizer, CHAT) == format_chat(tokenizer, CHAT)
    for attribute in ("pad_token_id", "bos_token_id", "eos_token_id", "image_token_id"):
        assert getattr(loaded_tokenizer, attribute) == getattr(tokenizer, attribute)


def test_a_site_checkpoint_loads(corpus: list[str], tmp_path: Path, no_network: None) -> None:
    """A site's own LM (another architecture and vocabulary, no pad token) saved with save_pretrained."""
    site_tokenizer = train_tokenizer(corpus, 600)
    site_tokenizer.pad_token = None
    site_model = LlamaForCausalLM(
        LlamaConfig(vocab_size=len(site_tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                    num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128)
    ).eval()
    site_model.save_pretrained(tmp_path / "site")
    site_tokenizer.save_pretrained(tmp_path / "site")
    model, tokenizer = load_language_model(tmp_path / "site")
    assert isinstance(model, LlamaForCausalLM) and model.config.hidden_size == 32 and len(tokenizer) == 600
    ids = torch.tensor([tokenizer.encode("左侧颞叶见团块状异常信号。")])
    with torch.no_grad():
        assert torch.equal(model(input_ids=ids).logits, site_model(input_ids=ids).logits)
    # texts longer than its 128-token context are scored window by window, padded with eos
    assert np.isfinite(perplexity(model, tokenizer, synthetic_reports(3, seed=3)))


def test_a_folder_without_a_checkpoint_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"config\.json.*save_language_model"):
        load_language_model(tmp_path)
    (tmp_path / "config.json").write_text("{}", encoding="utf-8")
    with pytest.raises(FileNotFoundError, match=r"lacks tokenizer\.json or tokenizer_config\.json"):
        load_language_model(tmp_path)


def test_chat_format_and_assistant_only_labels(tokenizer: PreTrainedTokenizerFast) -> None:
    assert format_chat(tokenizer, CHAT) == (
        "<|bos|><|system|>你是放射科医生。<|end|><|user|><|image|><|image|>病变位于哪里？<|end|>"
        "<|assistant|>左侧颞叶。<|end|><|user|>多大？<|end|><|assistant|>最大径约41 mm。<|end|>"
    )
    assert format_chat(tokenizer, CHAT[:2], add_generation_prompt=True).endswith("<|end|><|assistant|>")
    n_tokens = len(tokenizer.encode(format_chat(tokenizer, CHAT), add_special_tokens=False))
    example = chat_example(tokenizer, CHAT, max_len=n_tokens + 5)
    ids, labels, mask = example["input_ids"], example["labels"], example["attention_mask"]
    assert ids.shape == labels.shape == mask.shape == (n_tokens + 5,)
    assert mask.tolist() == [1] * n_tokens + [0] * 5 and (ids[n_tokens:] == tokenizer.pad_token_id).all()
    supervised = labels != IGNORE_INDEX
    assert torch.equal(labels[supervised], ids[supervised])
    assert tokenizer.decode(ids[supervised]) == "左侧颞叶。<|end|>最大径约41 mm。<|end|>"
    assert tokenizer.decode(ids[~supervised & (mask == 1)]) == (
        "<|bos|><|system|>你是放射科医生。<|end|><|user|><|image|><|image|>病变位于哪里？<|end|><|assistant|>"
        "<|user|>多大？<|end|><|assistant|>"
    )


def test_chat_truncation_and_bad_roles(tokenizer: PreTrainedTokenizerFast) -> None:
    n_tokens = len(tokenizer.encode(format_chat(tokenizer, CHAT), add_special_tokens=False))
    cut = chat_example(tokenizer, CHAT, max_len=n_tokens - 2)
    assert cut["attention_mask"].all() and tokenizer.decode(cut["input_ids"][-1:]) != "<|end|>"
    with pytest.raises(ValueError, match="raise max_len"):
        chat_example(tokenizer, CHAT, max_len=8)
    with pytest.raises(ValueError, match="no assistant turn"):
        chat_example(tokenizer, CHAT[:2], max_len=64)
    with pytest.raises(jinja2.TemplateError, match="chat roles are system, user and assistant"):
        format_chat(tokenizer, [{"role": "doctor", "content": "左侧颞叶。"}])
    site = copy.deepcopy(tokenizer)
    site.chat_template = "{% for m in messages %}{{ m['content'] }}{% endfor %}{% if add_generation_prompt %}{% endif %}"
    with pytest.raises(ValueError, match="does not mark assistant turns"):
        chat_example(site, CHAT, max_len=64)
