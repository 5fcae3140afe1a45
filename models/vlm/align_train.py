"""Stage 2a, vision-language alignment (LLaVA's stage 1): encoder and LM frozen, the resampler and projector
learn to caption: prompt = a report-generation instruction with the study's visual tokens, target = the report
(findings and impression), loss on the report tokens only."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from models.vlm.visual import FeatureCache
from models.vlm.vlm import BrainVLM, StepConfig, freeze, tokenize_examples, train_steps, usable

# The first report-generation phrasing of the instruction data (brainfm/reports/instructions.py), so stage 2a
# and the report_generation task of stage 2b ask alike.
REPORT_PROMPT = "请根据这组脑部MRI图像书写影像报告，包括影像所见和诊断意见。"


@dataclass(frozen=True)
class AlignConfig(StepConfig):
    """Stage 2a run (fields of `StepConfig`) and the caption `prompt`."""

    prompt: str = REPORT_PROMPT

    # LLaVA-Med's stage 1: projector only, lr 2e-3, about one epoch.
    PROFILES: ClassVar[Mapping[str, Mapping[str, Any]]] = {
        "tiny": {},
        "small": {
            "steps": 1_000,
            "batch_studies": 16,
            "slices_per_series": 6,
            "warmup_steps": 30,
            "max_len": 768,
        },
        "full": {
            "steps": 5_000,
            "batch_studies": 64,
            "slices_per_series": 8,
            "lr": 1e-3,
            "warmup_steps": 150,
            "max_len": 1024,
        },
    }


def train_alignment(
    vlm: BrainVLM,
    cache: FeatureCache,
    pairs: Sequence[Mapping[str, Any]],
    config: AlignConfig,
    progress: bool = False,
) -> list[float]:
    """Train the resampler and projector on image-report pairs (records with `image`, the study key, and
    `report`; pass the training split) whose slices `cache` (`vlm.feature_cache(bags)`, shareable with the
    other stages) reads; returns the caption loss per step. Encoder and LM are frozen (no gradients, eval
    mode) and stay bit-identical. Leaves the model in eval mode."""
    freeze(vlm.lm)
    vlm.encoder.eval()
    vlm.resampler.requires_grad_(True).train()
    vlm.projector.requires_grad_(True).train()
    conversations = [
        (
            p["image"],
            [{"role": "user", "content": config.prompt}, {"role": "assistant", "content": p["report"]}],
        )
        for p in pairs
    ]
    examples = usable(tokenize_examples(vlm.tokenizer, conversations, config.max_len), cache.bags)
    parameters = [*vlm.resampler.parameters(), *vlm.projector.parameters()]
    history = train_steps(vlm, cache, examples, parameters, config, "stage 2a alignment", progress)
    vlm.eval()
    return history
