"""Pretraining the report LM from scratch: next-token prediction on packed blocks of report text."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch.utils.data import DataLoader, RandomSampler
from tqdm.auto import tqdm
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from models.train import warmup_cosine
from models.vlm.language_model import LMConfig
from models.vlm.tokenizer import encode_documents


def pack_blocks(tokenizer: PreTrainedTokenizerBase, texts: Sequence[str], seq_len: int) -> torch.Tensor:
    """The texts as one token stream (each framed bos, text, eos) cut into (n_blocks, seq_len) int64 blocks;
    the tail shorter than a block is dropped. Packing wastes no compute on padding."""
    stream = torch.tensor([i for ids in encode_documents(tokenizer, texts) for i in ids], dtype=torch.long)
    n_blocks = len(stream) // seq_len
    if n_blocks == 0:
        raise ValueError(
            f"the corpus has {len(stream)} tokens, fewer than one block of seq_len={seq_len}: add texts or "
            "lower LMConfig.seq_len"
        )
    return stream[: n_blocks * seq_len].view(n_blocks, seq_len)


def train_language_model(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    texts: Sequence[str],
    config: LMConfig,
    progress: bool = True,
) -> dict[str, Any]:
    """Train `model` in place for `config.steps` AdamW steps on the device it sits on (bf16 autocast on CUDA).

    Each step draws `config.batch_size` blocks (with replacement, from a generator seeded by `config.seed`),
    so a run on the CPU is deterministic (on CUDA, up to its non-deterministic kernels). Returns the history:
    ``loss`` (mean cross-entropy in nats per token, per step), ``lr`` (per step), ``blocks`` and ``tokens``
    (the packed corpus size). The model is left in eval mode.
    """
    blocks = pack_blocks(tokenizer, texts, config.seq_len)
    device = model.device
    sampler = RandomSampler(
        blocks,
        replacement=True,
        num_samples=config.steps * config.batch_size,
        generator=torch.Generator().manual_seed(config.seed),
    )
    loader = DataLoader(blocks, batch_size=config.batch_size, sampler=sampler)
    # Decay matrices only: norms, biases and 1-D gains are left alone, as in GPT-2 and Llama training.
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.ndim >= 2], "weight_decay": config.weight_decay},
        {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0},
    ]
    optimizer = torch.optim.AdamW(groups, lr=config.lr, betas=config.betas)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: warmup_cosine(s, config.warmup_steps, config.steps, config.min_lr / config.lr)
    )
    history: dict[str, Any] = {"loss": [], "lr": [], "blocks": len(blocks), "tokens": blocks.numel()}
    model.train()
    for batch in tqdm(loader, total=config.steps, disable=not progress, desc="report LM", unit="step"):
        batch = batch.to(device)
        with torch.autocast(device.type, torch.bfloat16, enabled=device.type == "cuda"):
            loss = model(input_ids=batch, labels=batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, config.clip_grad)
        history["lr"].append(scheduler.get_last_lr()[0])
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        history["loss"].append(loss.item())
    model.eval()
    return history
