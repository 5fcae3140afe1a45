"""Stage 2: the report language model, its alignment to the encoder and its instruction tuning.

Every stage-2 model trains on development patients only: the image–report pairs' 8:2 training side minus the
downstream test patients (`brainfm.tables.held_out_patients`), and reports its metrics on those held-out
patients, as stage 3 does (docs/DESIGN.md, "One held-out test set").
"""

# No `from __future__ import annotations` in asset modules: Dagster reads parameter annotations at runtime.

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import dagster as dg
import great_expectations as gx
import pandas as pd

from assets.gating import gx_asset_check
from assets.reports import INSTRUCTIONS_FILE, PAIRS_FILE, vision_language_data
from assets.resources import (
    DeviceResource,
    DvcResource,
    LanguageModelResource,
    PathsResource,
    ProfileResource,
)
from assets.tables import clinical_tables
from assets.versioning import versioned
from brainfm.jsonl import read_jsonl
from brainfm.tables import held_out_patients
from brainfm.validation import Gate

SUMMARY_FILE = "summary.json"
MODEL_DIR = "model"  # save_pretrained folder of the LM and its tokenizer
EXAMPLE_PROMPT = "影像所见："


def development(records: Sequence[Mapping[str, Any]], held_out: frozenset[str]) -> list[Mapping[str, Any]]:
    """Records of the training side whose patient is not held out for evaluation."""
    return [r for r in records if r["split"] == "train" and r["patient"] not in held_out]


def evaluation(records: Sequence[Mapping[str, Any]], held_out: frozenset[str]) -> list[Mapping[str, Any]]:
    """Records of the held-out patients (every reported stage-2 metric is computed on these)."""
    return [r for r in records if r["patient"] in held_out]


def corpus(pairs: Sequence[Mapping[str, Any]], instructions: Sequence[Mapping[str, Any]]) -> list[str]:
    """The LM's training texts: the reports, then every turn of the instruction records."""
    return [p["report"] for p in pairs] + [m["content"] for r in instructions for m in r["messages"]]


@dg.asset(
    deps=[vision_language_data.keys_by_output_name["vl_pairs"], vision_language_data.keys_by_output_name["instruction_pairs"],
          clinical_tables],
    group_name="stage2",
    description="The report language model: a byte-level BPE tokenizer and a small Qwen2-style decoder trained here on "
    "the de-identified reports and instruction texts of development patients (or a site's own checkpoint loaded "
    "with from_pretrained); perplexity on held-out patients' reports against a unigram baseline.",
)
def language_model(
    context: dg.AssetExecutionContext,
    paths: PathsResource,
    profile: ProfileResource,
    device: DeviceResource,
    dvc: DvcResource,
    site_lm: LanguageModelResource,
) -> dg.MaterializeResult:
    from models.vlm.language_model import (
        LMConfig,
        build_language_model,
        load_language_model,
        perplexity,
        save_language_model,
        unigram_perplexity,
    )
    from models.vlm.lm_train import train_language_model
    from models.vlm.tokenizer import train_tokenizer

    held_out = held_out_patients(paths.output("clinical_tables"))
    pairs = read_jsonl(paths.output("vl_pairs") / PAIRS_FILE)
    instructions = read_jsonl(paths.output("instruction_pairs") / INSTRUCTIONS_FILE)
    texts = corpus(development(pairs, held_out), development(instructions, held_out))
    test_reports = [p["report"] for p in evaluation(pairs, held_out)]
    if not texts or not test_reports:
        raise ValueError(f"{len(texts)} training texts and {len(test_reports)} held-out reports: the language model "
                         "needs both (check vl_pairs and the clinical tables' split)")
    config = LMConfig.profile(profile.profile, seed=profile.seed)
    history: dict[str, Any] = {}
    if site_lm.checkpoint:
        model, tokenizer = load_language_model(site_lm.checkpoint, device.resolve())
        source = f"site checkpoint {site_lm.checkpoint}"
    else:
        tokenizer = train_tokenizer(texts, config.vocab_size)
        model = build_language_model(tokenizer, config).to(device.resolve())
        history = train_language_model(model, tokenizer, texts, config, progress=True)
        source = "trained here (LMConfig profile " + profile.profile + ")"
    out = paths.output("language_model")
    save_language_model(model.cpu(), tokenizer, out / MODEL_DIR)
    held_out_ppl = perplexity(model, tokenizer, test_reports)
    baseline_ppl = unigram_perplexity(tokenizer, texts, test_reports)
    prompt = tokenizer(tokenizer.bos_token + EXAMPLE_PROMPT, return_tensors="pt", add_special_tokens=False)
    example = tokenizer.decode(model.generate(**prompt, max_new_tokens=40, do_sample=False)[0], skip_special_tokens=True)
    summary = {"source": source, "parameters": sum(p.numel() for p in model.parameters()), "vocabulary": len(tokenizer),
               "train_texts": len(texts), "held_out_reports": len(test_reports), "held_out_perplexity": held_out_ppl,
               "unigram_perplexity": baseline_ppl, "loss": history.get("loss", []), "config": config.to_dict()}
    (out / SUMMARY_FILE).write_text(json.dumps(summary, indent=1, ensure_ascii=False))
    context.log.info(f"language model ({source}): held-out perplexity {held_out_ppl:.1f}, unigram {baseline_ppl:.1f}")
    return dg.MaterializeResult(metadata={
        "source": source,
        "parameters": summary["parameters"],
        "vocabulary": summary["vocabulary"],
        "train_texts": len(texts),
        "held_out_reports": len(test_reports),
        "held_out_perplexity": held_out_ppl,
        "unigram_perplexity": baseline_ppl,
        "example": dg.MetadataValue.md(f"Greedy continuation of `{EXAMPLE_PROMPT}`:\n\n> {example}"),
        **versioned(out, paths, dvc),
    })


def lm_gate(out: Path) -> Gate:
    """One row from the LM's summary: the held-out perplexity is finite and below the unigram baseline's (the
    model has learned something about word order, not only word frequencies)."""
    summary = json.loads((out / SUMMARY_FILE).read_text())
    ppl, baseline = summary["held_out_perplexity"], summary["unigram_perplexity"]
    frame = pd.DataFrame([{"finite": math.isfinite(ppl), "ratio_to_unigram": ppl / baseline}])
    return Gate(frame, [
        gx.expectations.ExpectColumnValuesToBeInSet(column="finite", value_set=[True]),
        gx.expectations.ExpectColumnValuesToBeBetween(column="ratio_to_unigram", max_value=1.0, strict_max=True),
    ])


language_model_beats_unigram = gx_asset_check(
    asset=language_model,
    name="beats_unigram",
    description="Held-out perplexity is finite and below the unigram baseline's.",
    gate=lambda context: lm_gate(context.resources.paths.output("language_model")),
    required_resource_keys={"paths"},
)
