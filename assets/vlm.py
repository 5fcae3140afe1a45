"""Stage 2: the report language model, its alignment to the encoder and its instruction tuning.

Every stage-2 model trains on development patients only: the image–report pairs' 8:2 training side minus the
downstream test patients (`brainfm.tables.held_out_patients`), and reports its metrics on those held-out
patients, as stage 3 does (docs/DESIGN.md, "One held-out test set").
"""

# No `from __future__ import annotations` in asset modules: Dagster reads parameter annotations at runtime.

import json
import math
from collections.abc import Container, Sequence
from pathlib import Path
from typing import Any

import dagster as dg
import great_expectations as gx
import pandas as pd
import polars as pl

from assets.adapters import METRICS_FILE, metric_rows, metrics_markdown, write_metrics
from assets.gating import cleared_centers, gx_asset_check
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
from brainfm.evaluation.stage2 import corpus, development, evaluation, link_pairs
from brainfm.jsonl import read_jsonl, write_jsonl
from brainfm.tables import held_out_patients, read_tables
from brainfm.validation import Gate

SUMMARY_FILE = "summary.json"
MODEL_DIR = "model"  # save_pretrained folder of the LM and its tokenizer
EXAMPLE_PROMPT = "影像所见："


@dg.asset(
    deps=[vision_language_data.keys_by_output_name["vl_pairs"], vision_language_data.keys_by_output_name["instruction_pairs"],
          clinical_tables],
    group_name="stage2",
    pool="gpu",
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
        load_language_model,
        perplexity,
        save_language_model,
        unigram_perplexity,
    )
    from models.vlm.stages import fit_language_model

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
        model, tokenizer, history = fit_language_model(texts, config, device.resolve(), progress=True)
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


# -- stage 2a: alignment and the contrastive head ------------------------------------------------------------

VLM_DIR, CONTRASTIVE_DIR, GENERATIONS_FILE = "vlm", "contrastive", "generations.jsonl"


def linked_pairs(paths: PathsResource, labels: pl.DataFrame, bags: Container[str]) -> list[dict[str, Any]]:
    """The image–report pairs linked to a study with slices in `bags` (`brainfm.evaluation.stage2.link_pairs`)."""
    return link_pairs(read_jsonl(paths.output("vl_pairs") / PAIRS_FILE), labels, bags)


def stage2_inputs(context: dg.AssetExecutionContext, paths: PathsResource, device: DeviceResource):
    """The frozen encoder, the study bags of every cleared center, the labels and the held-out patients."""
    from assets.adapters import IMAGE_CHECKS, encoder_dir
    from models.checkpoint import load_encoder
    from models.heads.study_data import StudyBags

    centers, left_out = cleared_centers(context, IMAGE_CHECKS)
    bags = StudyBags([paths.output("normalized_slices", c) for c in centers])
    labels = read_tables(paths.output("clinical_tables"))["labels"]
    encoder = load_encoder(encoder_dir(paths), device.resolve())
    return encoder, bags, labels, held_out_patients(paths.output("clinical_tables")), centers, left_out


@dg.asset(
    deps=[language_model, "mae_encoder", clinical_tables, vision_language_data.keys_by_output_name["vl_pairs"]],
    group_name="stage2",
    pool="gpu",
    description="Stage 2a: a perceiver resampler and LLaVA-style projector aligned to the frozen encoder and frozen "
    "LM on image–report pairs (caption loss on held-out patients before and after), and a CLIP-style contrastive "
    "head (retrieval R@1/R@5; zero-shot accuracy on rare subtypes kept out of its training).",
)
def aligned_vlm(
    context: dg.AssetExecutionContext, paths: PathsResource, profile: ProfileResource, device: DeviceResource,
    dvc: DvcResource,
) -> dg.MaterializeResult:
    from assets.adapters import encoder_dir
    from brainfm.evaluation.stage2 import ZERO_SHOT_PROMPT, alignment_scores, zero_shot_accuracy
    from brainfm.synth.profiles import RARE_SUBTYPES
    from models.vlm.align_train import AlignConfig
    from models.vlm.contrastive import ContrastiveConfig, save_contrastive
    from models.vlm.language_model import load_language_model
    from models.vlm.stages import align, contrast, held_out_embeddings, new_contrastive_head, new_vlm
    from models.vlm.vlm import save_vlm

    encoder, bags, labels, held_out, centers, left_out = stage2_inputs(context, paths, device)
    lm, tokenizer = load_language_model(paths.output("language_model") / MODEL_DIR, device.resolve())
    pairs = linked_pairs(paths, labels, bags)
    train, test = development(pairs, held_out), evaluation(pairs, held_out)
    vlm, cache = new_vlm(encoder, lm, tokenizer, bags, profile.seed)
    aligned = align(vlm, cache, train, test, AlignConfig.profile(profile.profile, seed=profile.seed), progress=True)
    out = paths.output("aligned_vlm")
    save_vlm(out / VLM_DIR, vlm, encoder_dir(paths), aligned.history)

    contrastive_config = ContrastiveConfig.profile(profile.profile, seed=profile.seed)
    subtypes = sorted(set(labels["subtype"].to_list()))
    head = new_contrastive_head(vlm)
    history = contrast(head, vlm, cache, train, contrastive_config, progress=True)
    save_contrastive(out / CONTRASTIVE_DIR, head, contrastive_config, history)
    contrastive = held_out_embeddings(head, vlm, cache, test, [ZERO_SHOT_PROMPT.format(s) for s in subtypes],
                                      contrastive_config.max_len)
    patients = [p["patient"] for p in test]
    scores = alignment_scores(patients, aligned.loss_before, aligned.loss_after,
                              contrastive.images @ contrastive.texts.T, seed=profile.seed)
    truth = [p["subtype"] for p in test]
    rare = zero_shot_accuracy(contrastive.images, contrastive.prompts, subtypes, truth, patients, RARE_SUBTYPES,
                              seed=profile.seed)
    if rare is not None:
        scores["zero_shot_rare_accuracy"] = rare
    rows = metric_rows("aligned-vlm", scores, len(set(patients)))
    write_metrics(out, rows, {"centers": centers, "chance_zero_shot": 1 / len(subtypes),
                              "excluded_subtypes": list(contrastive_config.exclude_subtypes),
                              "train_pairs": len(train), "held_out_pairs": len(test)})
    context.log.info(f"stage 2a: held-out caption loss {scores['caption_loss_before'].format()} → "
                     f"{scores['caption_loss_after'].format()}; R@1 {scores['recall_at_1'].format()}")
    return dg.MaterializeResult(metadata={
        "centers": dg.MetadataValue.json(centers),
        "centers_left_out": dg.MetadataValue.json(left_out),
        "train_pairs": len(train),
        "held_out_pairs": len(test),
        "rare_held_out_studies": sum(t in RARE_SUBTYPES for t in truth),
        "chance_zero_shot": 1 / len(subtypes),
        "metrics": dg.MetadataValue.md(metrics_markdown(rows)),
        **versioned(out, paths, dvc),
    })


def _metrics(out: Path) -> dict[tuple[str, str], float]:
    rows = json.loads((out / METRICS_FILE).read_text())["rows"]
    return {(r["variant"], r["metric"]): r["value"] for r in rows}


def alignment_gate(out: Path) -> Gate:
    """One row: the held-out caption loss fell during alignment (the projector learned to steer the frozen LM)
    and every metric is finite."""
    metrics = _metrics(out)
    frame = pd.DataFrame([{"finite": all(math.isfinite(v) for v in metrics.values()),
                           "caption_loss_drop": metrics[("aligned-vlm", "caption_loss_drop")]}])
    return Gate(frame, [
        gx.expectations.ExpectColumnValuesToBeInSet(column="finite", value_set=[True]),
        gx.expectations.ExpectColumnValuesToBeBetween(column="caption_loss_drop", min_value=0.0, strict_min=True),
    ])


aligned_vlm_learns = gx_asset_check(
    asset=aligned_vlm,
    name="caption_loss_falls_on_held_out",
    description="Stage 2a lowered the caption loss on held-out patients; every metric finite.",
    gate=lambda context: alignment_gate(context.resources.paths.output("aligned_vlm")),
    required_resource_keys={"paths"},
)


# -- stage 2b: instruction tuning, held-out generation and grounding ------------------------------------------

def evidence_by_study(paths: PathsResource, centers: Sequence[str]) -> dict[str, Any]:
    """Per held-out study, the stage-3 evidence the guard checks a report against: the deployed classifier's
    probabilities and the deployed segmenter's lesion slices, placed by the centers' volumes.parquet."""
    from assets.adapters import LESIONS_FILE, PREDICTIONS_FILE
    from brainfm.evaluation.stage2 import evidence_by_study as evidence

    volumes = pl.concat([pl.read_parquet(paths.output("normalized_slices", c) / "volumes.parquet") for c in centers],
                        how="diagonal_relaxed")
    return evidence(pl.read_parquet(paths.output("cls_adapter") / PREDICTIONS_FILE),
                    pl.read_parquet(paths.output("seg_adapter") / LESIONS_FILE), volumes)


@dg.asset(
    deps=[aligned_vlm, vision_language_data.keys_by_output_name["instruction_pairs"], "cls_adapter", "seg_adapter"],
    group_name="stage2",
    pool="gpu",
    description="Stage 2b: LoRA on the LM plus the projector and resampler, tuned on report generation, patient "
    "explanation, question answering and dialogue. On held-out patients: generated reports (影像所见 + 诊断意见) "
    "scored by the report structurer against the labels, char BLEU-4 and ROUGE-L, QA accuracy, and every abnormal "
    "finding checked against the stage-3 classifier and segmenter (unsupported-finding rate), against the "
    "most-frequent report and the nearest training report.",
)
def instructed_vlm(
    context: dg.AssetExecutionContext, paths: PathsResource, profile: ProfileResource, device: DeviceResource,
    dvc: DvcResource,
) -> dg.MaterializeResult:
    from assets.figures import png_metadata
    from brainfm.evaluation.stage2 import (
        MODEL,
        QA_TASKS,
        baseline_reports,
        link_instructions,
        qa_scores,
        report_scores,
    )
    from brainfm.plots import slice_grid
    from models.vlm.contrastive import load_contrastive
    from models.vlm.instruct_train import InstructConfig, train_instructions
    from models.vlm.stages import MAX_REPORT_TOKENS, held_out_outputs
    from models.vlm.vlm import load_vlm, save_vlm

    encoder, bags, labels, held_out, centers, left_out = stage2_inputs(context, paths, device)
    aligned = paths.output("aligned_vlm")
    vlm = load_vlm(aligned / VLM_DIR, encoder, device.resolve())
    cache = vlm.feature_cache(bags)
    pairs = linked_pairs(paths, labels, bags)
    records = link_instructions(read_jsonl(paths.output("instruction_pairs") / INSTRUCTIONS_FILE), pairs)
    config = InstructConfig.profile(profile.profile, seed=profile.seed)
    history = train_instructions(vlm, cache, development(records, held_out), config, progress=True)
    out = paths.output("instructed_vlm")
    save_vlm(out / VLM_DIR, vlm, paths.output("mae_encoder") / "checkpoint", history)

    train, test = development(pairs, held_out), evaluation(pairs, held_out)
    studies, patients = [p["image"] for p in test], [p["patient"] for p in test]
    qa = [r for r in evaluation(records, held_out) if r["task"] in QA_TASKS]
    head = load_contrastive(aligned / CONTRASTIVE_DIR, device.resolve())
    outputs = held_out_outputs(vlm, head, cache, train, test, qa, MAX_REPORT_TOKENS[profile.profile], progress=True)
    methods = {MODEL: dict(zip(studies, outputs.reports))} | baseline_reports(
        train, test, outputs.train_embeddings, outputs.test_embeddings)
    reports = report_scores(methods, test, labels, evidence_by_study(paths, centers), seed=profile.seed)
    scores = reports.scores
    scores[MODEL] |= qa_scores(qa, outputs.answers, seed=profile.seed)
    verdicts = reports.verdicts[MODEL]
    rows = [row for method, found in scores.items() for row in metric_rows(method, found, len(set(patients)))]
    write_metrics(out, rows, {"centers": centers, "held_out_studies": len(studies), "grounded_studies": len(verdicts)})
    generations = [{"study": s, "patient": patients[i], "generated": outputs.reports[i], "reference": test[i]["report"],
                    "flags": list(verdicts[s].flags) if s in verdicts else None}
                   for i, s in enumerate(studies)]
    write_jsonl(out / GENERATIONS_FILE, generations)
    example = generations[0]
    middle = bags.all_slices(example["study"])
    sequence = next(iter(middle))
    image = bags.read(middle[sequence][len(middle[sequence]) // 2 : len(middle[sequence]) // 2 + 1])[0, 0].numpy()
    png = slice_grid([image], [f"held-out study, {sequence}"], paths.outputs / "instructed_vlm" / "example.png", columns=1)
    context.log.info(f"stage 2b: {len(studies)} held-out reports generated, {len(verdicts)} grounded")
    return dg.MaterializeResult(metadata={
        "centers": dg.MetadataValue.json(centers),
        "centers_left_out": dg.MetadataValue.json(left_out),
        "held_out_studies": len(studies),
        "grounded_studies": len(verdicts),
        "metrics": dg.MetadataValue.md(metrics_markdown(rows)),
        "example_image": png_metadata(png, "A held-out study (middle slice)"),
        "example_report": dg.MetadataValue.md(
            f"**Generated** (grounding flags: {example['flags'] or 'none'}):\n\n> {example['generated']}\n\n"
            f"**Reference:**\n\n> {example['reference']}"),
        **versioned(out, paths, dvc),
    })


def instruction_gate(out: Path) -> Gate:
    """One row per held-out generation: non-empty; and the model's clinical category accuracy and flagged-report
    rate are measured (finite). Other metrics may be undefined on a small held-out set (no report states a size,
    say) and are then left out of the tables, not faked."""
    generations = read_jsonl(out / GENERATIONS_FILE)
    metrics = _metrics(out)
    measured = all(math.isfinite(metrics.get(("instructed-vlm", m), math.nan))
                   for m in ("category_accuracy", "unsupported_report_rate"))
    frame = pd.DataFrame({"length": [len(g["generated"]) for g in generations], "core_metrics_measured": measured})
    return Gate(frame, [
        gx.expectations.ExpectColumnValuesToBeBetween(column="length", min_value=1),
        gx.expectations.ExpectColumnValuesToBeInSet(column="core_metrics_measured", value_set=[True]),
    ])


instructed_vlm_generates = gx_asset_check(
    asset=instructed_vlm,
    name="generates_on_held_out",
    description="Every held-out study got a non-empty generated report; its clinical category accuracy and "
    "flagged-report rate are measured.",
    gate=lambda context: instruction_gate(context.resources.paths.output("instructed_vlm")),
    required_resource_keys={"paths"},
)
