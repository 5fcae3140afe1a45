"""The report language model: a Qwen2-style decoder-only causal LM built from a transformers config and
trained here from scratch (no open, well-provenanced Chinese LM ships without a hub download), or a site's
own checkpoint directory loaded with ``from_pretrained``; plus its settings, save/load and perplexity."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    Qwen2Config,
    Qwen2ForCausalLM,
)

from models.profiles import Profiled
from models.vlm.tokenizer import IGNORE_INDEX, encode_documents, pad_token_id

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json")  # either one marks a saved tokenizer


@dataclass(frozen=True)
class LMConfig(Profiled):
    """Architecture and training settings of the report LM.

    vocab_size is what `train_tokenizer` is asked for (the model takes its vocabulary from the tokenizer);
    max_positions (tokens) bounds a chat with its visual tokens; seq_len (tokens) is the length of the packed
    pretraining blocks; batch_size counts blocks per step; lr is the peak AdamW learning rate, reached after
    warmup_steps and decayed along a cosine to min_lr at `steps`.
    """

    vocab_size: int = 4_000
    hidden_size: int = 64
    layers: int = 2
    heads: int = 2
    kv_heads: int = 2
    intermediate_size: int = 128
    max_positions: int = 1_024
    steps: int = 40
    lr: float = 3e-3
    min_lr: float = 3e-4
    warmup_steps: int = 4
    weight_decay: float = 0.1
    betas: tuple[float, float] = (0.9, 0.95)
    clip_grad: float = 1.0
    batch_size: int = 8
    seq_len: int = 64
    seed: int = 0

    def __post_init__(self) -> None:
        if self.hidden_size % self.heads or self.heads % self.kv_heads:
            raise ValueError(
                f"hidden_size ({self.hidden_size}) must be a multiple of heads ({self.heads}) and heads a "
                f"multiple of kv_heads ({self.kv_heads})"
            )
        if self.seq_len > self.max_positions:
            raise ValueError(f"seq_len ({self.seq_len}) exceeds max_positions ({self.max_positions})")
        if self.steps < 1 or self.batch_size < 1:
            raise ValueError(f"need steps ≥ 1 and batch_size ≥ 1, got {self.steps} and {self.batch_size}")

    # Sizes: `tiny` ~0.3 M parameters, `small` ~30 M, `full` ~0.1 B (the size reported to beat far larger LLMs on
    # 3D report generation).
    PROFILES: ClassVar[Mapping[str, Mapping[str, Any]]] = {
        "tiny": {},
        "small": {"vocab_size": 16_000, "hidden_size": 512, "layers": 8, "heads": 8, "kv_heads": 4,
                  "intermediate_size": 1_408, "max_positions": 2_048, "steps": 5_000, "lr": 6e-4, "min_lr": 6e-5,
                  "warmup_steps": 200, "batch_size": 32, "seq_len": 512},
        "full": {"vocab_size": 32_000, "hidden_size": 768, "layers": 12, "heads": 12, "kv_heads": 4,
                 "intermediate_size": 2_048, "max_positions": 4_096, "steps": 50_000, "lr": 3e-4,
                 "min_lr": 3e-5, "warmup_steps": 2_000, "batch_size": 64, "seq_len": 1_024},
    }


def build_language_model(tokenizer: PreTrainedTokenizerBase, config: LMConfig) -> PreTrainedModel:
    """A freshly initialised Qwen2 causal LM (tied input/output embeddings) sized to the tokenizer's
    vocabulary (added tokens included), initialised from `config.seed` without touching the global RNG."""
    lm_config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=config.hidden_size,
        intermediate_size=config.intermediate_size,
        num_hidden_layers=config.layers,
        num_attention_heads=config.heads,
        num_key_value_heads=config.kv_heads,
        max_position_embeddings=config.max_positions,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=pad_token_id(tokenizer),
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        return Qwen2ForCausalLM(lm_config)


def save_language_model(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, folder: str | Path) -> Path:
    """Write the model (config.json + safetensors weights) and the tokenizer into `folder`; returns it."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def load_language_model(
    folder: str | Path, device: str | torch.device = "cpu"
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """A causal LM and its tokenizer from a local checkpoint directory (ours, or a site's own saved with
    ``save_pretrained``), on `device` in eval mode. Never contacts a model hub."""
    folder = Path(folder)
    missing = [] if (folder / "config.json").is_file() else ["config.json"]
    if not any((folder / name).is_file() for name in TOKENIZER_FILES):
        missing.append(" or ".join(TOKENIZER_FILES))
    if missing:
        raise FileNotFoundError(
            f"{folder} is not a language-model checkpoint directory: it lacks {', '.join(missing)}. Point to a "
            "folder written by save_language_model (or by model.save_pretrained and tokenizer.save_pretrained)."
        )
    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(folder, local_files_only=True)
    return model.to(device).eval(), tokenizer


@torch.no_grad()
def perplexity(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, texts: Sequence[str], batch_size: int = 8
) -> float:
    """Token-level perplexity of `model` on `texts`, each framed as in training (bos, text, eos) and cut into
    windows of the model's context length; exp of the mean negative log-likelihood (nats) per predicted token.

    Written out rather than taken from a metrics package: it is one masked cross-entropy over padded batches.
    """
    context = model.config.max_position_embeddings
    documents = encode_documents(tokenizer, texts)
    windows = [ids[i : i + context] for ids in documents for i in range(0, len(ids), context)]
    windows = [w for w in windows if len(w) > 1]  # a lone token predicts nothing
    if not windows:
        raise ValueError("no text to score: pass at least one text")
    device, was_training, pad = model.device, model.training, pad_token_id(tokenizer)
    model.eval()
    nll, count = 0.0, 0
    for start in range(0, len(windows), batch_size):
        batch = windows[start : start + batch_size]
        width = max(map(len, batch))
        ids = torch.tensor([w + [pad] * (width - len(w)) for w in batch], device=device)
        mask = torch.tensor([[1] * len(w) + [0] * (width - len(w)) for w in batch], device=device)
        logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1].float()
        targets = ids[:, 1:].masked_fill(mask[:, 1:] == 0, IGNORE_INDEX)
        nll += F.cross_entropy(logits.transpose(1, 2), targets, ignore_index=IGNORE_INDEX, reduction="sum").item()
        count += int(mask[:, 1:].sum())
    model.train(was_training)
    return math.exp(nll / count)


def unigram_perplexity(tokenizer: PreTrainedTokenizerBase, train_texts: Sequence[str], texts: Sequence[str]) -> float:
    """Perplexity of the unigram baseline on `texts`: token frequencies counted on `train_texts` (add-one
    smoothing over the vocabulary), every predicted token of `texts` framed as in `perplexity`. A language model
    that has learned anything about order beats it."""
    counts = torch.ones(len(tokenizer), dtype=torch.float64)
    for ids in encode_documents(tokenizer, train_texts):
        counts += torch.bincount(torch.tensor(ids[1:]), minlength=len(tokenizer)).double()
    log_p = torch.log(counts / counts.sum())
    scored = [torch.tensor(ids[1:]) for ids in encode_documents(tokenizer, texts) if len(ids) > 1]
    if not scored:
        raise ValueError("no text to score: pass at least one text")
    targets = torch.cat(scored)
    return math.exp(-float(log_p[targets].mean()))
