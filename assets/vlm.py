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
import numpy as np
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
from brainfm.jsonl import read_jsonl, write_jsonl
from brainfm.tables import held_out_patients, read_tables
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


# -- stage 2a: alignment and the contrastive head ------------------------------------------------------------

VLM_DIR, CONTRASTIVE_DIR, GENERATIONS_FILE = "vlm", "contrastive", "generations.jsonl"
EVAL_SLICES = 4  # slices per sequence (evenly spaced) each held-out study is seen through
ZERO_SHOT_PROMPT = "诊断意见：{}"


def linked_pairs(paths: PathsResource, labels: pl.DataFrame) -> list[dict[str, Any]]:
    """The image–report pairs linked to a study, keyed for the VLM (``image`` = the study key of the slices;
    the report's key, which instruction records carry as their ``image``, kept as ``accession``) and carrying the
    study's labelled ``subtype`` (null where the labels lack the study)."""
    subtype = dict(zip(labels["study"].to_list(), labels["subtype"].to_list()))
    return [{**p, "accession": p["image"], "image": p["study"], "subtype": subtype.get(p["study"])}
            for p in read_jsonl(paths.output("vl_pairs") / PAIRS_FILE) if p.get("study")]


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
    from brainfm.evaluation.bootstrap import patient_bootstrap
    from brainfm.evaluation.text import retrieval_recall
    from brainfm.synth.profiles import RARE_SUBTYPES
    from models.vlm.align_train import AlignConfig, train_alignment
    from models.vlm.contrastive import (
        ContrastiveConfig,
        ContrastiveHead,
        ContrastiveSpec,
        save_contrastive,
        train_contrastive,
    )
    from models.vlm.evaluate import example_losses, image_embeddings, text_embeddings
    from models.vlm.language_model import load_language_model
    from models.vlm.visual import ResamplerSpec
    from models.vlm.vlm import build_vlm, save_vlm, tokenize_examples, usable

    encoder, bags, labels, held_out, centers, left_out = stage2_inputs(context, paths, device)
    lm, tokenizer = load_language_model(paths.output("language_model") / MODEL_DIR, device.resolve())
    pairs = [p for p in linked_pairs(paths, labels) if p["image"] in bags]
    train, test = development(pairs, held_out), evaluation(pairs, held_out)
    config = AlignConfig.profile(profile.profile, seed=profile.seed)
    vlm = build_vlm(encoder, lm, tokenizer, ResamplerSpec(encoder_dim=encoder.embed_dim), seed=profile.seed)
    cache = vlm.feature_cache(bags)
    conversations = [(p["image"], [{"role": "user", "content": config.prompt},
                                   {"role": "assistant", "content": p["report"]}]) for p in test]
    held_out_examples = usable(tokenize_examples(tokenizer, conversations, config.max_len), bags)
    patients = [p["patient"] for p in test]
    before = example_losses(vlm, cache, held_out_examples, EVAL_SLICES)
    history = train_alignment(vlm, cache, train, config, progress=True)
    after = example_losses(vlm, cache, held_out_examples, EVAL_SLICES)
    mean = lambda x: float(np.mean(x))
    scores = {"caption_loss_before": patient_bootstrap(mean, patients, before, seed=profile.seed),
              "caption_loss_after": patient_bootstrap(mean, patients, after, seed=profile.seed),
              "caption_loss_drop": patient_bootstrap(mean, patients, before - after, seed=profile.seed)}
    out = paths.output("aligned_vlm")
    save_vlm(out / VLM_DIR, vlm, encoder_dir(paths), history)

    contrastive_config = ContrastiveConfig.profile(profile.profile, seed=profile.seed)
    head = ContrastiveHead(ContrastiveSpec(vlm.resampler.spec, lm.config.hidden_size))
    head.resampler.load_state_dict(vlm.resampler.state_dict())
    contrastive = train_contrastive(head, cache, lm, tokenizer, [p for p in train if p["subtype"]], contrastive_config,
                                    progress=True)
    save_contrastive(out / CONTRASTIVE_DIR, head, contrastive_config, contrastive)
    studies = [p["image"] for p in test]
    images = image_embeddings(head, cache, studies, EVAL_SLICES)
    texts = text_embeddings(head, vlm, [p["report"] for p in test], contrastive_config.max_len)
    for k in (1, 5):
        scores[f"recall_at_{k}"] = retrieval_recall(images @ texts.T, k, patients, seed=profile.seed)
    subtypes = sorted(set(labels["subtype"].to_list()))
    prompts = text_embeddings(head, vlm, [ZERO_SHOT_PROMPT.format(s) for s in subtypes], contrastive_config.max_len)
    rare = [i for i, p in enumerate(test) if p["subtype"] in RARE_SUBTYPES]
    if rare:
        guess = np.asarray(subtypes)[(images[rare] @ prompts.T).argmax(1)]
        hits = guess == np.asarray([test[i]["subtype"] for i in rare])
        scores["zero_shot_rare_accuracy"] = patient_bootstrap(mean, [patients[i] for i in rare], hits.astype(float),
                                                              seed=profile.seed)
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
        "rare_held_out_studies": len(rare),
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

QA_TASKS = ("qa_location", "qa_size", "qa_category")
MAX_REPORT_TOKENS = {"tiny": 96, "small": 384, "full": 512}  # generated report length cap, tokens


def evidence_by_study(paths: PathsResource, centers: Sequence[str]) -> dict[str, Any]:
    """Per held-out study, the stage-3 evidence the guard checks a report against: the deployed classifier's
    probabilities and the deployed segmenter's lesion slices, placed by the centers' volumes.parquet."""
    from assets.adapters import LESIONS_FILE, PREDICTIONS_FILE
    from brainfm.grounding import evidence_from_predictions
    from brainfm.grounding.segmentations import segmented_slices

    predictions = pl.read_parquet(paths.output("cls_adapter") / PREDICTIONS_FILE)
    volumes = pl.concat([pl.read_parquet(paths.output("normalized_slices", c) / "volumes.parquet") for c in centers],
                        how="diagonal_relaxed")
    lesions = segmented_slices(pl.read_parquet(paths.output("seg_adapter") / LESIONS_FILE), volumes)
    return {row["study"]: evidence_from_predictions(row, lesions.get(row["study"]))
            for row in predictions.iter_rows(named=True)}


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
    from brainfm.evaluation.text import (
        most_frequent_report,
        nearest_report,
        qa_accuracy,
        report_metrics_table,
    )
    from brainfm.grounding import check_report, unsupported_rate
    from brainfm.plots import slice_grid
    from models.vlm.align_train import REPORT_PROMPT
    from models.vlm.contrastive import load_contrastive
    from models.vlm.evaluate import generate_answers, image_embeddings
    from models.vlm.instruct_train import InstructConfig, train_instructions
    from models.vlm.vlm import load_vlm, save_vlm

    encoder, bags, labels, held_out, centers, left_out = stage2_inputs(context, paths, device)
    aligned = paths.output("aligned_vlm")
    vlm = load_vlm(aligned / VLM_DIR, encoder, device.resolve())
    cache = vlm.feature_cache(bags)
    pairs = [p for p in linked_pairs(paths, labels) if p["image"] in bags]
    study_of = {p["accession"]: p["image"] for p in pairs}
    records = [{**r, "image": study_of.get(r["image"])} for r in read_jsonl(paths.output("instruction_pairs") / INSTRUCTIONS_FILE)]
    records = [r for r in records if r["image"] in bags]
    config = InstructConfig.profile(profile.profile, seed=profile.seed)
    history = train_instructions(vlm, cache, development(records, held_out), config, progress=True)
    out = paths.output("instructed_vlm")
    save_vlm(out / VLM_DIR, vlm, paths.output("mae_encoder") / "checkpoint", history)

    train, test = development(pairs, held_out), evaluation(pairs, held_out)
    studies, patients = [p["image"] for p in test], [p["patient"] for p in test]
    generated = generate_answers(vlm, cache, studies, REPORT_PROMPT, EVAL_SLICES, MAX_REPORT_TOKENS[profile.profile],
                                 progress=True)
    head = load_contrastive(aligned / CONTRASTIVE_DIR, device.resolve())
    nearest = nearest_report(image_embeddings(head, cache, [p["image"] for p in train], EVAL_SLICES),
                             [p["report"] for p in train], image_embeddings(head, cache, studies, EVAL_SLICES))
    methods = {"instructed-vlm": dict(zip(studies, generated)), "nearest report": dict(zip(studies, nearest)),
               "most-frequent report": dict.fromkeys(studies, most_frequent_report([p["report"] for p in train]))}
    test_labels = labels.filter(pl.col("study").is_in(studies)).unique("study").sort("study")
    table = report_metrics_table(methods, {p["image"]: p["report"] for p in test}, test_labels, seed=profile.seed)
    scores: dict[str, dict[str, Any]] = {m: {} for m in methods}
    for row in table:
        scores[row.method][row.metric] = row.estimate
    evidence = evidence_by_study(paths, centers)
    grounded = [s for s in studies if s in evidence]
    grounded_patients = [patients[studies.index(s)] for s in grounded]
    verdicts = {}
    for method, reports in methods.items():
        verdicts[method] = [check_report(reports[s], evidence[s]) for s in grounded]
        checked = sum(r.count("supported") + r.count("unsupported") for r in verdicts[method])
        # Per claim only where some claim could be checked (a method writing only normal reports claims nothing).
        for unit in ("finding", "report") if checked else ("report",):
            scores[method][f"unsupported_{unit}_rate"] = unsupported_rate(verdicts[method], grounded_patients, unit=unit,
                                                                         seed=profile.seed)
    for task in QA_TASKS:
        qa = [r for r in evaluation(records, held_out) if r["task"] == task]
        if qa:
            answers = [generate_answers(vlm, cache, [r["image"]], r["messages"][0]["content"], EVAL_SLICES,
                                        MAX_REPORT_TOKENS[profile.profile])[0] for r in qa]
            scores["instructed-vlm"][f"{task}_accuracy"] = qa_accuracy(
                answers, [r["messages"][1]["content"] for r in qa], task, [r["patient"] for r in qa], seed=profile.seed)
    rows = [row for method, found in scores.items() for row in metric_rows(method, found, len(set(patients)))]
    write_metrics(out, rows, {"centers": centers, "held_out_studies": len(studies), "grounded_studies": len(grounded)})
    generations = [{"study": s, "patient": patients[i], "generated": generated[i], "reference": test[i]["report"],
                    "flags": list(verdicts["instructed-vlm"][grounded.index(s)].flags) if s in grounded else None}
                   for i, s in enumerate(studies)]
    write_jsonl(out / GENERATIONS_FILE, generations)
    example = generations[0]
    middle = bags.all_slices(example["study"])
    sequence = next(iter(middle))
    image = bags.read(middle[sequence][len(middle[sequence]) // 2 : len(middle[sequence]) // 2 + 1])[0, 0].numpy()
    png = slice_grid([image], [f"held-out study, {sequence}"], paths.outputs / "instructed_vlm" / "example.png", columns=1)
    context.log.info(f"stage 2b: {len(studies)} held-out reports generated, {len(grounded)} grounded")
    return dg.MaterializeResult(metadata={
        "centers": dg.MetadataValue.json(centers),
        "centers_left_out": dg.MetadataValue.json(left_out),
        "held_out_studies": len(studies),
        "grounded_studies": len(grounded),
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
