"""Stage 2b, instruction tuning: LoRA adapters on the LM's attention projections plus the projector (and,
by default, the resampler) learn the instruction tasks (report generation, patient explanation, question
answering, multi-turn dialogue). Every assistant turn is supervised (`chat_example`); the image placeholder
sits in the first user turn. Encoder and base LM weights stay bit-identical."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from peft import LoraConfig, PeftModel, get_peft_model

from models.vlm.visual import FeatureCache
from models.vlm.vlm import BrainVLM, StepConfig, freeze, tokenize_examples, train_steps, usable


@dataclass(frozen=True)
class InstructConfig(StepConfig):
    """Stage 2b run (fields of `StepConfig`); LoRA of rank `lora_r` (scale `lora_alpha / lora_r`, dropout
    `lora_dropout`) on the LM modules named `lora_targets`; `train_resampler` trains the resampler beside the
    projector."""

    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.05
    lora_targets: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj")
    train_resampler: bool = True

    PROFILES: ClassVar[Mapping[str, Mapping[str, Any]]] = {
        "tiny": {},
        "small": {
            "steps": 2_000,
            "batch_studies": 16,
            "slices_per_series": 6,
            "lr": 5e-4,
            "warmup_steps": 60,
            "max_len": 1024,
        },
        "full": {
            "steps": 10_000,
            "batch_studies": 32,
            "slices_per_series": 8,
            "lr": 2e-4,
            "warmup_steps": 300,
            "max_len": 1536,
            "lora_r": 16,
            "lora_alpha": 32,
        },
    }


def add_lora(vlm: BrainVLM, config: InstructConfig) -> None:
    """Wrap the LM in LoRA adapters (drawn under `config.seed`) unless it already has them (a saved stage-2b
    model resumes with its own)."""
    if isinstance(vlm.lm, PeftModel):
        return
    torch.manual_seed(config.seed)
    lora = LoraConfig(
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=list(config.lora_targets),
        task_type="CAUSAL_LM",
    )
    vlm.lm = get_peft_model(vlm.lm, lora)


def train_instructions(
    vlm: BrainVLM,
    cache: FeatureCache,
    records: Sequence[Mapping[str, Any]],
    config: InstructConfig,
    progress: bool = False,
) -> list[float]:
    """Add LoRA (`add_lora`) and train it with the projector (and resampler) on instruction records (`image`,
    the study key, and `messages`; pass the training split) whose slices `cache` (`vlm.feature_cache(bags)`)
    reads; returns the loss per step. Only LoRA, projector and resampler weights change. Leaves the model in
    eval mode."""
    add_lora(vlm, config)
    vlm.encoder.eval()
    for name, p in vlm.lm.named_parameters():
        p.requires_grad_("lora_" in name)
    vlm.lm.train()  # LoRA dropout; the base weights get no gradients
    vlm.projector.requires_grad_(True).train()
    if config.train_resampler:
        vlm.resampler.requires_grad_(True).train()
    else:
        freeze(vlm.resampler)
    examples = usable(
        tokenize_examples(vlm.tokenizer, [(r["image"], r["messages"]) for r in records], config.max_len),
        cache.bags,
    )
    parameters = [p for p in vlm.parameters() if p.requires_grad]
    history = train_steps(vlm, cache, examples, parameters, config, "stage 2b instructions", progress)
    vlm.eval()
    return history
