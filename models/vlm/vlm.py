"""The brain vision-language model: frozen hybrid encoder -> perceiver resampler -> MLP projector -> LM.

The prompt carries one image placeholder token (`IMAGE_TOKEN`, in the first user turn); `BrainVLM` replaces it
by the study's `n_queries` projected visual tokens in the LM's input embeddings, so the LM reads
[prompt before, visual tokens, prompt after]. The loss covers the answer tokens only (labels -100 elsewhere,
visual tokens included). Both training stages (`align_train`, `instruct_train`) share `train_steps`.

Saved layout (`save_vlm`): the `models.checkpoint` files (resampler and projector weights in safetensors,
config.json with their architecture and the encoder's path and SHA-256, trainer_state.pt with the loss
history), the base LM in `language_model/` (transformers save_pretrained, with its tokenizer) and, after
stage 2b, the LoRA adapters in `lora/` (peft save_pretrained).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from peft import PeftModel
from torch import nn
from torch.nn.utils.rnn import pad_sequence
from tqdm.auto import tqdm
from transformers import PreTrainedModel, PreTrainedTokenizerBase
from transformers.modeling_outputs import CausalLMOutputWithPast

from models.checkpoint import load_encoder, load_weights, read_config, save_checkpoint
from models.data import StepBatchSampler
from models.heads.seg_train import encoder_digest
from models.heads.study_data import STUDY_SEQUENCES, StudyBags
from models.hybrid_encoder import HybridEncoder
from models.profiles import Profiled
from models.train import warmup_cosine
from models.vlm.language_model import load_language_model, save_language_model
from models.vlm.projector import Projector
from models.vlm.tokenizer import IGNORE_INDEX, IMAGE_TOKEN, chat_example, format_chat, pad_token_id
from models.vlm.visual import FeatureCache, PerceiverResampler, ResamplerSpec, VisualBatch

logger = logging.getLogger(__name__)

KIND = "brain_vlm"
LM_DIR, LORA_DIR = "language_model", "lora"
LR_FLOOR = 0.1  # final learning rate as a fraction of the peak
# Greedy decoding never repeats a 4-token n-gram: without it small LMs loop on one phrase (R2Gen-style report
# generators block repeated trigrams for the same reason); 4 keeps legitimately repeated short phrases.
NO_REPEAT_NGRAM = 4
Example = tuple[str, dict[str, torch.Tensor]]  # (study, chat_example output without its padding)


def freeze(module: nn.Module) -> None:
    """No gradients and eval mode (no dropout) for a module that must stay bit-identical."""
    module.requires_grad_(False)
    module.eval()


class BrainVLM(nn.Module):
    """Encoder (frozen), resampler, projector and LM, with the image placeholder spliced at the input."""

    def __init__(
        self,
        encoder: HybridEncoder,
        lm: PreTrainedModel | PeftModel,
        tokenizer: PreTrainedTokenizerBase,
        resampler: PerceiverResampler,
        projector: Projector,
    ) -> None:
        super().__init__()
        if resampler.spec.encoder_dim != encoder.embed_dim:
            raise ValueError(
                f"the resampler expects {resampler.spec.encoder_dim}-wide slice features but the "
                f"encoder gives {encoder.embed_dim}; build ResamplerSpec(encoder_dim=encoder.embed_dim)"
            )
        if (projector.in_dim, projector.hidden_size) != (resampler.spec.width, lm.config.hidden_size):
            raise ValueError(
                f"the projector maps {projector.in_dim} -> {projector.hidden_size} but needs "
                f"{resampler.spec.width} (resampler width) -> {lm.config.hidden_size} (LM hidden size)"
            )
        self.image_token_id = tokenizer.convert_tokens_to_ids(IMAGE_TOKEN)
        if self.image_token_id is None or self.image_token_id == tokenizer.unk_token_id:
            raise ValueError(
                f"the tokenizer has no {IMAGE_TOKEN!r} token; train it with "
                "models.vlm.tokenizer.train_tokenizer"
            )
        freeze(encoder)
        self.encoder, self.lm, self.tokenizer = encoder, lm, tokenizer
        self.resampler, self.projector = resampler, projector

    @property
    def device(self) -> torch.device:
        return next(self.projector.parameters()).device

    def feature_cache(self, bags: StudyBags, embed_batch: int = 64) -> FeatureCache:
        """A cache of this model's frozen-encoder slice features over the studies of `bags`."""
        return FeatureCache(self.encoder, bags, self.resampler.spec.region_grid, embed_batch)

    def visual_tokens(self, visual: VisualBatch) -> torch.Tensor:
        """(B, n_queries, LM hidden size) projected visual tokens of a batch of studies."""
        return self.projector(self.resampler(visual.to(self.device)))

    def splice(
        self,
        visual: VisualBatch,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        labels: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Input embeddings, attention mask and labels with each row's image placeholder replaced by its
        study's visual tokens (labels `IGNORE_INDEX` there). Every row grows by n_queries - 1, so padding
        stays aligned."""
        at = input_ids == self.image_token_id
        if not bool((at.sum(1) == 1).all()):
            raise ValueError(
                f"every prompt needs exactly one {IMAGE_TOKEN!r} (got {at.sum(1).tolist()}); put it "
                "in the first user turn (with_image) and keep max_len above the prompt's length"
            )
        vis = self.visual_tokens(visual)
        embeds = self.lm.get_input_embeddings()(input_ids)
        vis = vis.to(embeds.dtype)
        ones = attention_mask.new_ones(vis.shape[1])
        ignore = input_ids.new_full((vis.shape[1],), IGNORE_INDEX)
        rows, masks, targets = [], [], []
        for b, i in enumerate(at.float().argmax(1).tolist()):
            rows.append(torch.cat([embeds[b, :i], vis[b], embeds[b, i + 1 :]]))
            masks.append(torch.cat([attention_mask[b, :i], ones, attention_mask[b, i + 1 :]]))
            if labels is not None:
                targets.append(torch.cat([labels[b, :i], ignore, labels[b, i + 1 :]]))
        return torch.stack(rows), torch.stack(masks), torch.stack(targets) if labels is not None else None

    def forward(
        self,
        visual: VisualBatch,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        labels: torch.Tensor | None = None,
    ) -> CausalLMOutputWithPast:
        """LM outputs: logits over the spliced sequence and, with `labels`, the mean cross-entropy (nats) of
        the answer tokens."""
        embeds, mask, targets = self.splice(visual, input_ids, attention_mask, labels)
        return self.lm(inputs_embeds=embeds, attention_mask=mask, labels=targets)

    def for_inference(self, dtype: torch.dtype | None = None) -> BrainVLM:
        """This model, in place, made ready to generate and nothing else: LoRA adapters merged into the LM's
        weights (one product per adapted layer instead of three, the same outputs up to rounding) and, with
        `dtype`, the LM's weights cast once (under autocast a float32 LM is cast again at every decoding step).
        Train or save the model before, not after."""
        if isinstance(self.lm, PeftModel):
            self.lm = self.lm.merge_and_unload()
        if dtype is not None:
            self.lm.to(dtype)
        return self

    @torch.no_grad()
    def generate(self, visual: VisualBatch, prompt: str, max_new_tokens: int = 256) -> list[str]:
        """Greedy (deterministic) answers to one user `prompt` about each study of `visual`, special tokens
        removed. The image placeholder is added in front of the prompt."""
        text = format_chat(
            self.tokenizer, with_image([{"role": "user", "content": prompt}]), add_generation_prompt=True
        )
        ids = self.tokenizer(text, add_special_tokens=False, return_tensors="pt")["input_ids"].to(self.device)
        ids = ids.expand(len(visual), -1)
        embeds, mask, _ = self.splice(visual, ids, torch.ones_like(ids))
        # Special tokens other than the end of the answer (bos, pad, the image placeholder, role markers) are
        # structurally impossible inside an answer: suppressed, as Whisper suppresses its task tokens. A small LM
        # pretrained on packed documents otherwise learns "<|end|> is followed by <|bos|>" and answers with bos.
        suppressed = sorted(set(self.tokenizer.all_special_ids) - {self.tokenizer.eos_token_id})
        out = self.lm.generate(
            inputs_embeds=embeds,
            attention_mask=mask,
            max_new_tokens=max_new_tokens,
            do_sample=False,
            num_beams=1,
            eos_token_id=self.tokenizer.eos_token_id,
            pad_token_id=pad_token_id(self.tokenizer),
            suppress_tokens=suppressed or None,
            no_repeat_ngram_size=NO_REPEAT_NGRAM,
        )
        return [t.strip() for t in self.tokenizer.batch_decode(out, skip_special_tokens=True)]


def with_image(messages: Sequence[Mapping[str, str]]) -> list[dict[str, str]]:
    """The conversation with `IMAGE_TOKEN` on its own line in front of the first user turn."""
    out = [dict(m) for m in messages]
    first = next((m for m in out if m["role"] == "user"), None)
    if first is None:
        raise ValueError("a conversation needs a user turn to carry the image; check the instruction records")
    first["content"] = f"{IMAGE_TOKEN}\n{first['content']}"
    return out


def build_vlm(
    encoder: HybridEncoder,
    lm: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    spec: ResamplerSpec,
    seed: int = 0,
) -> BrainVLM:
    """A VLM with a freshly initialised resampler and projector (drawn under `seed`)."""
    torch.manual_seed(seed)
    resampler = PerceiverResampler(spec)
    projector = Projector(spec.width, lm.config.hidden_size)
    device = next(lm.parameters()).device
    return BrainVLM(encoder.to(device), lm, tokenizer, resampler.to(device), projector.to(device))


@dataclass(frozen=True)
class StepConfig(Profiled):
    """What both training stages share: `steps` optimiser steps over batches of `batch_studies` examples,
    `slices_per_series` slices drawn per sequence of each study, AdamW at peak `lr` with `warmup_steps` of
    linear warm-up then cosine decay, token sequences cut at `max_len` tokens."""

    steps: int = 60
    batch_studies: int = 4
    slices_per_series: int = 3
    lr: float = 2e-3
    weight_decay: float = 0.0
    warmup_steps: int = 5
    max_len: int = 512
    seed: int = 0


def tokenize_examples(
    tokenizer: PreTrainedTokenizerBase,
    conversations: Sequence[tuple[str, Sequence[Mapping[str, str]]]],
    max_len: int,
) -> list[Example]:
    """(study, `chat_example` cut to its tokens) of each (study, messages), the image placeholder put in the
    first user turn."""
    out = []
    for study, messages in conversations:
        example = chat_example(tokenizer, with_image(messages), max_len)
        n = int(example["attention_mask"].sum())
        out.append((study, {k: v[:n] for k, v in example.items()}))
    return out


def usable(examples: Sequence[Example], bags: StudyBags) -> list[Example]:
    """The examples whose study has slices in `bags`; the others are logged and left out."""
    kept = [e for e in examples if e[0] in bags]
    if len(kept) < len(examples):
        logger.warning(
            "%d of %d examples have no slices of %s and are left out",
            len(examples) - len(kept),
            len(examples),
            "/".join(STUDY_SEQUENCES),
        )
    if not kept:
        raise ValueError(
            "no example's study has slices in the shard folders; check that the image-report "
            "records and the normalised slices come from the same cohort"
        )
    return kept


def collate(
    examples: Sequence[Mapping[str, torch.Tensor]], pad_id: int, device: torch.device
) -> dict[str, torch.Tensor]:
    """Right-padded input_ids, attention_mask and labels (padding: `pad_id`, 0, `IGNORE_INDEX`)."""

    def pad(key: str, value: int) -> torch.Tensor:
        return pad_sequence([e[key] for e in examples], batch_first=True, padding_value=value)

    return {
        k: pad(k, v).to(device)
        for k, v in (("input_ids", pad_id), ("attention_mask", 0), ("labels", IGNORE_INDEX))
    }


def optimizer_for(
    parameters: Sequence[nn.Parameter], config: StepConfig
) -> tuple[torch.optim.AdamW, torch.optim.lr_scheduler.LambdaLR]:
    """AdamW over `parameters`; the learning rate warms up linearly, then decays along a cosine to
    `LR_FLOOR` x `config.lr` at `config.steps`."""
    optimizer = torch.optim.AdamW(parameters, lr=config.lr, weight_decay=config.weight_decay)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: warmup_cosine(s, config.warmup_steps, config.steps, LR_FLOOR)
    )
    return optimizer, schedule


def study_batches(
    cache: FeatureCache, studies: Sequence[str], config: StepConfig
) -> Iterator[tuple[np.ndarray, VisualBatch]]:
    """Endless (rows into `studies`, their `VisualBatch`): the rows of step s from `StepBatchSampler(seed)`,
    `slices_per_series` slices per sequence drawn by `sample_bags` with the generator (seed, s)."""
    batches = StepBatchSampler(len(studies), min(config.batch_studies, len(studies)), config.seed)
    for step, rows in enumerate(batches):
        picked = [studies[r] for r in rows]
        drawn = cache.bags.sample_bags(
            picked, config.slices_per_series, np.random.default_rng([config.seed, step])
        )
        yield rows, cache.batch(picked, drawn)


def train_steps(
    vlm: BrainVLM,
    cache: FeatureCache,
    examples: Sequence[Example],
    parameters: Sequence[nn.Parameter],
    config: StepConfig,
    desc: str,
    progress: bool = False,
) -> list[float]:
    """Train `parameters` (the caller sets requires_grad and train/eval modes) on the examples' answer tokens;
    the loss per step. Batches: `study_batches`, so the trajectory is a pure function of the initial weights
    and `config.seed` (on CPU)."""
    if cache.encoder is not vlm.encoder:
        raise ValueError("the feature cache was built on another encoder; use vlm.feature_cache(bags)")
    torch.manual_seed(config.seed)
    optimizer, scheduler = optimizer_for(parameters, config)
    batches = study_batches(cache, [e[0] for e in examples], config)
    history = []
    for _ in tqdm(range(config.steps), desc=desc, disable=not progress):
        rows, visual = next(batches)
        tokens = collate([examples[r][1] for r in rows], pad_token_id(vlm.tokenizer), vlm.device)
        loss = vlm(visual, **tokens).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        history.append(float(loss.detach()))
    return history


def base_state_dict(lm: PreTrainedModel | PeftModel) -> dict[str, torch.Tensor]:
    """The LM's own weights under their original names, without LoRA adapters. Hand-written: peft only
    offers the adapters' state (`get_peft_model_state_dict`) or `unload()`, which strips the LoRA layers from
    the live model; here the wrapped layers' `base_layer` weights are renamed back instead."""
    if not isinstance(lm, PeftModel):
        return lm.state_dict()
    return {
        k.replace(".base_layer.", "."): v
        for k, v in lm.get_base_model().state_dict().items()
        if "lora_" not in k
    }


def save_vlm(
    folder: str | Path, vlm: BrainVLM, encoder_dir: str | Path | None = None, history: Sequence[float] = ()
) -> Path:
    """Write the VLM (layout in the module docstring). `encoder_dir`: the pretraining checkpoint the encoder
    was loaded from (`models.checkpoint.load_encoder`), recorded with the encoder's digest so `load_vlm` can
    find and check it."""
    folder = Path(folder)
    meta = {
        "kind": KIND,
        "resampler": vlm.resampler.spec.to_dict(),
        "encoder": {
            "path": None if encoder_dir is None else str(encoder_dir),
            "sha256": encoder_digest(vlm.encoder),
        },
        "lora": isinstance(vlm.lm, PeftModel),
    }
    visual = nn.ModuleDict({"resampler": vlm.resampler, "projector": vlm.projector})
    save_checkpoint(folder, visual, meta, {"history": list(history)})
    if isinstance(vlm.lm, PeftModel):
        vlm.lm.get_base_model().save_pretrained(folder / LM_DIR, state_dict=base_state_dict(vlm.lm))
        vlm.tokenizer.save_pretrained(folder / LM_DIR)
        vlm.lm.save_pretrained(folder / LORA_DIR)
    else:
        save_language_model(vlm.lm, vlm.tokenizer, folder / LM_DIR)
    return folder


def load_vlm(
    folder: str | Path, encoder: HybridEncoder | None = None, device: str | torch.device = "cpu"
) -> BrainVLM:
    """A VLM written by `save_vlm`, in eval mode on `device`. Without `encoder` the recorded pretraining
    checkpoint is loaded; either way its digest must match the one the VLM was trained with."""
    folder = Path(folder)
    meta: dict[str, Any] = read_config(folder)
    if meta.get("kind") != KIND:
        raise ValueError(
            f"{folder} holds no vision-language model (kind {meta.get('kind')!r}); pass the folder "
            "that save_vlm wrote"
        )
    if encoder is None:
        if meta["encoder"]["path"] is None:
            raise ValueError(f"{folder} records no encoder folder; pass the encoder it was trained with")
        encoder = load_encoder(meta["encoder"]["path"], device)
    if encoder_digest(encoder) != meta["encoder"]["sha256"]:
        raise ValueError(
            f"the VLM in {folder} was trained on another encoder; pass the encoder it was trained "
            f"with (models.checkpoint.load_encoder of {meta['encoder']['path'] or 'its checkpoint'})"
        )
    lm, tokenizer = load_language_model(folder / LM_DIR, device)
    if meta["lora"]:
        lm = PeftModel.from_pretrained(lm, folder / LORA_DIR)
    spec = ResamplerSpec(**meta["resampler"])
    resampler, projector = PerceiverResampler(spec), Projector(spec.width, lm.config.hidden_size)
    load_weights(folder, nn.ModuleDict({"resampler": resampler, "projector": projector}))
    vlm = BrainVLM(encoder.to(device), lm, tokenizer, resampler.to(device), projector.to(device))
    return vlm.eval()
