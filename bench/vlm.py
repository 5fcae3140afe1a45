"""Stage-2 benchmark: report LM, alignment, contrastive head and instruction tuning, on held-out patients.

The chain is trained as the assets train it (the report LM, stage 2a alignment, the contrastive head with the
rare subtypes held out, stage 2b LoRA instruction tuning) and scored against the most-frequent and
nearest-report baselines.

Input: an ingested cohort (`brainfm ingest` per center: DATA/<center>/normalized_slices/), the raw cohort's
reports and tables (RAW/reports/<center>.jsonl, RAW/tables; RAW/masks when stage 3 is fitted here) and the
pretrained encoder checkpoint. The script pseudonymises tables and masks (`bench/adapters.py`'s `prepare`) and
structures the reports (`structure_jsonl`, `build_instruction_data`) with the pipeline's own functions; a
report reaches its study through the pseudonymised labels table (accession pseudonym → study UID, the same
link the pipeline reads from the de-identified DICOM headers). Selection and scores are those of the assets
(`brainfm.evaluation.stage2`, `models.vlm.stages`): development pairs train, the downstream test patients score.

The grounding guard needs stage-3 evidence on the held-out studies: `--stage3 DIR` reads the deployed
adapters' files as the assets write them (DIR/cls_adapter/predictions.parquet, DIR/seg_adapter/
lesion_predictions.parquet); without it the deployed probes (classification and segmentation heads on the
frozen encoder) are fitted here at `--stage3-profile` and written under WORK/stage3 in that layout (pass
`--stage3 WORK/stage3` to reuse them).

`--time-budget-s` fits the run into a wall-clock budget: before each training stage a two-point probe (2 and
8 steps on a throwaway copy) measures seconds per step and fixed cost, and the stage gets at most its share of
the time left (`STAGE_WEIGHTS`; the held-out generation keeps the last share). The steps run are printed and
written, so `--steps` reproduces the run without the probes (the probes make step counts machine-dependent).

Writes WORK/results.csv (method, metric, value, low, high, n_patients), WORK/tables.md (header, steps and
seconds per stage, the metrics table) and WORK/generations.jsonl (held-out reports with the guard's flags).

    BRAINFM_DEID_SECRET=... python bench/vlm.py --data DATA --raw RAW --work WORK --encoder CHECKPOINT \\
        --profile small --device cuda --time-budget-s 420
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import platform
import shlex
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import polars as pl
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from assets.adapters import DEPLOYED, LESIONS_FILE, PREDICTIONS_FILE, metric_rows, metrics_markdown
from bench.adapters import prepare
from brainfm.evaluation.stage2 import (
    MODEL,
    QA_TASKS,
    ZERO_SHOT_PROMPT,
    alignment_scores,
    baseline_reports,
    corpus,
    development,
    evaluation,
    evidence_by_study,
    link_instructions,
    link_pairs,
    qa_scores,
    report_scores,
    zero_shot_accuracy,
)
from brainfm.grounding.segmentations import lesion_slice_table
from brainfm.jsonl import read_jsonl, write_jsonl
from brainfm.pseudonym import Pseudonymizer
from brainfm.reports import build_instruction_data, structure_jsonl
from brainfm.secrets import load_secret
from brainfm.synth.profiles import RARE_SUBTYPES
from brainfm.tables import held_out_patients, read_tables
from models.checkpoint import load_encoder
from models.heads.experiments import (
    VARIANTS,
    fit_segmentation,
    fit_study_task,
    make_encoder,
    seg_config,
    study_config,
)
from models.heads.study_data import StudyBags
from models.vlm.align_train import AlignConfig, train_alignment
from models.vlm.contrastive import ContrastiveConfig
from models.vlm.instruct_train import InstructConfig, train_instructions
from models.vlm.language_model import LMConfig, perplexity, unigram_perplexity
from models.vlm.stages import (
    MAX_REPORT_TOKENS,
    align,
    contrast,
    fit_language_model,
    held_out_embeddings,
    held_out_outputs,
    new_contrastive_head,
    new_vlm,
)
from models.vlm.tokenizer import train_tokenizer
from models.vlm.vlm import BrainVLM

STAGES = ("lm", "align", "contrastive", "instruct")
# Shares of the time left that each stage may take under --time-budget-s (renormalised over the stages still to
# run, so time a stage leaves unused passes on); "generate" is the held-out generation and scoring at the end.
STAGE_WEIGHTS = {"lm": 3.0, "align": 1.5, "contrastive": 0.5, "instruct": 3.0, "generate": 2.0}
PROBE_STEPS = (2, 8)  # the two probe lengths: their time difference gives seconds per step, the rest fixed cost
MIN_STEPS = 10


class StepPlanner:
    """Step counts per stage: the requested ones, cut to fit `budget_s` (None: no cut, no probes)."""

    def __init__(self, budget_s: float | None, start: float) -> None:
        self.budget_s, self.start = budget_s, start
        self.plan: dict[str, dict[str, float]] = {}

    def left_s(self) -> float:
        return float("inf") if self.budget_s is None else self.budget_s - (time.perf_counter() - self.start)

    def steps(self, stage: str, wanted: int, probe: Callable[[int], object]) -> int:
        """`wanted`, or fewer (at least `MIN_STEPS`) when the probed cost exceeds the stage's share of the time
        left; `probe(n)` runs n steps of the stage on a throwaway copy."""
        if self.budget_s is None:
            self.plan[stage] = {"steps": wanted}
            return wanted
        timings = []
        # Probes draw from torch's global RNG (head initialisation, dropout): forked, so the real run starts from
        # the state it would have without them and `--steps` reproduces it.
        with torch.random.fork_rng(devices=range(torch.cuda.device_count())):
            for n in PROBE_STEPS:
                tic = time.perf_counter()
                probe(n)
                timings.append(time.perf_counter() - tic)
        per_step = max((timings[1] - timings[0]) / (PROBE_STEPS[1] - PROBE_STEPS[0]), 1e-4)
        fixed = max(timings[0] - PROBE_STEPS[0] * per_step, 0.0)
        remaining = [s for s in (*STAGES, "generate") if s not in self.plan]
        share = self.left_s() * STAGE_WEIGHTS[stage] / sum(STAGE_WEIGHTS[s] for s in remaining)
        steps = max(MIN_STEPS, min(wanted, int((share - fixed) / per_step)))
        self.plan[stage] = {"steps": steps, "wanted": wanted, "s_per_step": per_step, "fixed_s": fixed,
                            "share_s": share, "probe_s": sum(timings)}
        cut = f"share {share:.0f} s" if share > fixed else f"budget spent, the minimum {MIN_STEPS}"
        print(f"  {stage}: {per_step * 1e3:.0f} ms/step + {fixed:.1f} s fixed (probed); {cut} → {steps} of "
              f"{wanted} steps (≈{fixed + steps * per_step:.0f} s)", flush=True)
        return steps


def parse_steps(text: str) -> dict[str, int]:
    """`lm=400,align=100` → {"lm": 400, "align": 100}; stage names from `STAGES`."""
    out = {}
    for item in filter(None, text.split(",")):
        name, _, value = item.partition("=")
        if name not in STAGES or not value.isdigit():
            raise SystemExit(f"--steps takes STAGE=N pairs with STAGE in {', '.join(STAGES)}; got {item!r}")
        out[name] = int(value)
    return out


def vision_language_records(
    raw: Path, work: Path, centers: list[str], pseudonymizer: Pseudonymizer, labels: pl.DataFrame, seed: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Image–report pairs and instruction records of the centers' reports (structured under WORK/structured,
    reused when there), each pair's ``study`` found through the labels' accession pseudonym."""
    records = []
    for center in centers:
        out = work / "structured" / f"{center}.jsonl"
        if not out.is_file():
            source = raw / "reports" / f"{center}.jsonl"
            if not source.is_file():
                raise SystemExit(f"no report table {source}: pass the raw cohort's folder as --raw (reports/, "
                                 "tables/); `brainfm synth` with the cohort's profile and seed writes it again")
            structure_jsonl(source, out, pseudonymizer=pseudonymizer, center=center)
        records += read_jsonl(out)
    pairs, instructions = build_instruction_data(records, seed=seed)
    study_of = dict(zip(labels["accession"].to_list(), labels["study"].to_list(), strict=True))
    return [{**p, "study": study_of.get(p["image"])} for p in pairs], instructions


def fit_stage3(args: argparse.Namespace, centers: list[str], table: pd.DataFrame, bags: StudyBags) -> Path:
    """The deployed stage-3 probes (classification, segmentation) fitted on the downstream training patients
    as the assets fit them; their held-out predictions written under WORK/stage3 in the assets' layout."""
    variant = next(v for v in VARIANTS if v.name == DEPLOYED)
    train, test = table[table["split"] == "train"], table[table["split"] == "test"]
    out = args.work / "stage3"
    (out / "cls_adapter").mkdir(parents=True, exist_ok=True)
    (out / "seg_adapter").mkdir(parents=True, exist_ok=True)
    encoder = make_encoder(variant.source, args.encoder, args.seed, args.device)
    run = fit_study_task("classification", encoder, bags, train, test,
                         study_config(args.stage3_profile, variant, args.seed), table, progress=True)
    run.predictions.to_parquet(out / "cls_adapter" / PREDICTIONS_FILE)
    empty = list(table.loc[table["category"] == "normal", "study"])
    seg = fit_segmentation(encoder, [args.data / c / "normalized_slices" for c in centers],
                           [args.work / "lesion_masks" / c for c in centers], list(train["patient"]),
                           list(test["patient"]), empty, seg_config(args.stage3_profile, variant, args.seed),
                           progress=True)
    lesion_slice_table(seg.volumes.to_dict("records"), seg.predicted).write_parquet(out / "seg_adapter" / LESIONS_FILE)
    return out


def share_encoder(vlm: BrainVLM) -> BrainVLM:
    """A deep copy of the VLM that shares its frozen encoder and tokenizer (a probe trains the copy; the
    feature cache stays valid because the encoder is the same object)."""
    return copy.deepcopy(vlm, memo={id(vlm.encoder): vlm.encoder, id(vlm.tokenizer): vlm.tokenizer})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="DATA/<center>/normalized_slices/ (brainfm ingest)")
    parser.add_argument("--raw", type=Path, required=True, help="the raw cohort (reports/, tables/, masks/)")
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--encoder", type=Path, required=True, help="pretrained checkpoint folder (mae.safetensors)")
    parser.add_argument("--stage3", type=Path, help="folder with cls_adapter/ and seg_adapter/ held-out predictions")
    parser.add_argument("--stage3-profile", default="tiny", choices=("tiny", "small", "full"),
                        help="profile of the stage-3 probes fitted here when --stage3 is not given")
    parser.add_argument("--profile", default="tiny", choices=("tiny", "small", "full"))
    parser.add_argument("--steps", default="", type=parse_steps, metavar="STAGE=N,...",
                        help=f"step overrides per stage ({', '.join(STAGES)}), e.g. for CPU budgets")
    parser.add_argument("--time-budget-s", type=float, help="cut steps so the whole run fits this many seconds")
    parser.add_argument("--max-report-tokens", type=int, help="generated answer cap (default: per profile)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", choices=("cuda", "cpu"))
    args = parser.parse_args(argv)
    if args.device == "cuda":
        # TF32 matmuls for the fp32 stages (alignment, contrastive, instructions; the LM already trains under bf16
        # autocast): several times faster on an H100/H200, within the noise of the metrics.
        torch.backends.cuda.matmul.allow_tf32 = True
    start = time.perf_counter()
    command = shlex.join(["python", "bench/vlm.py", *(sys.argv[1:] if argv is None else argv)])
    args.work.mkdir(parents=True, exist_ok=True)
    seconds: dict[str, float] = {}
    planner = StepPlanner(args.time_budget_s, start)

    def phase(name: str, tic: float) -> None:
        seconds[name] = time.perf_counter() - tic
        print(f"{time.perf_counter() - start:7.0f} s  {name} done in {seconds[name]:.0f} s", flush=True)

    tic = time.perf_counter()
    pseudonymizer = Pseudonymizer(load_secret())
    centers, table = prepare(args.data, args.raw, args.work, pseudonymizer)
    bags = StudyBags([args.data / c / "normalized_slices" for c in centers])
    table = table[table["study"].isin(bags.studies)].reset_index(drop=True)
    labels = read_tables(args.work / "clinical_tables")["labels"]
    held_out = held_out_patients(args.work / "clinical_tables")
    raw_pairs, raw_instructions = vision_language_records(args.raw, args.work, centers, pseudonymizer, labels,
                                                          args.seed)
    pairs = link_pairs(raw_pairs, labels, bags)
    records = link_instructions(raw_instructions, pairs)
    train, test = development(pairs, held_out), evaluation(pairs, held_out)
    if not train or not test:
        raise SystemExit(f"{len(train)} development and {len(test)} held-out pairs have images: need both (are "
                         "--data and --raw the same cohort, and BRAINFM_DEID_SECRET the one used to ingest it?)")
    phase("prepare", tic)

    tic = time.perf_counter()
    stage3 = args.stage3 or fit_stage3(args, centers, table, bags)
    volumes = pl.concat([pl.read_parquet(args.data / c / "normalized_slices" / "volumes.parquet") for c in centers],
                        how="diagonal_relaxed")
    evidence = evidence_by_study(pl.read_parquet(stage3 / "cls_adapter" / PREDICTIONS_FILE),
                                 pl.read_parquet(stage3 / "seg_adapter" / LESIONS_FILE), volumes)
    phase("stage-3 evidence" + ("" if args.stage3 else f" (probes fitted, {args.stage3_profile} profile)"), tic)

    tic = time.perf_counter()
    texts = corpus(development(raw_pairs, held_out), development(raw_instructions, held_out))
    lm_config = LMConfig.profile(args.profile, seed=args.seed)
    tokenizer = train_tokenizer(texts, lm_config.vocab_size)
    steps = planner.steps("lm", args.steps.get("lm", lm_config.steps), lambda n: fit_language_model(
        texts, dataclasses.replace(lm_config, steps=n), args.device, tokenizer=tokenizer))
    lm, tokenizer, _ = fit_language_model(texts, dataclasses.replace(lm_config, steps=steps), args.device,
                                          tokenizer=tokenizer)
    test_reports = [p["report"] for p in evaluation(raw_pairs, held_out)]
    lm_scores = {"held_out_perplexity": perplexity(lm, tokenizer, test_reports),
                 "unigram_perplexity": unigram_perplexity(tokenizer, texts, test_reports)}
    phase("language model", tic)

    tic = time.perf_counter()
    encoder = load_encoder(args.encoder, args.device)
    vlm, cache = new_vlm(encoder, lm, tokenizer, bags, args.seed)
    align_config = AlignConfig.profile(args.profile, seed=args.seed)
    steps = planner.steps("align", args.steps.get("align", align_config.steps), lambda n: train_alignment(
        share_encoder(vlm), cache, train, dataclasses.replace(align_config, steps=n)))
    aligned = align(vlm, cache, train, test, dataclasses.replace(align_config, steps=steps))
    phase("stage 2a alignment", tic)

    tic = time.perf_counter()
    contrastive_config = ContrastiveConfig.profile(args.profile, seed=args.seed)
    steps = planner.steps("contrastive", args.steps.get("contrastive", contrastive_config.steps), lambda n: contrast(
        new_contrastive_head(vlm), vlm, cache, train, dataclasses.replace(contrastive_config, steps=n)))
    head = new_contrastive_head(vlm)
    contrast(head, vlm, cache, train, dataclasses.replace(contrastive_config, steps=steps))
    subtypes = sorted(set(labels["subtype"].to_list()))
    embedded = held_out_embeddings(head, vlm, cache, test, [ZERO_SHOT_PROMPT.format(s) for s in subtypes],
                                   contrastive_config.max_len)
    phase("contrastive head", tic)

    tic = time.perf_counter()
    instruct_config = InstructConfig.profile(args.profile, seed=args.seed)
    dev_records = development(records, held_out)
    steps = planner.steps("instruct", args.steps.get("instruct", instruct_config.steps), lambda n: train_instructions(
        share_encoder(vlm), cache, dev_records, dataclasses.replace(instruct_config, steps=n)))
    train_instructions(vlm, cache, dev_records, dataclasses.replace(instruct_config, steps=steps))
    phase("stage 2b instructions", tic)

    tic = time.perf_counter()
    qa = [r for r in evaluation(records, held_out) if r["task"] in QA_TASKS]
    max_tokens = args.max_report_tokens or MAX_REPORT_TOKENS[args.profile]
    outputs = held_out_outputs(vlm, head, cache, train, test, qa, max_tokens)
    studies, patients = [p["image"] for p in test], [p["patient"] for p in test]
    methods = {MODEL: dict(zip(studies, outputs.reports, strict=True))} | baseline_reports(
        train, test, outputs.train_embeddings, outputs.test_embeddings)
    reports = report_scores(methods, test, labels, evidence, seed=args.seed)
    scores = reports.scores
    scores[MODEL] |= qa_scores(qa, outputs.answers, seed=args.seed)
    scores["aligned-vlm"] = alignment_scores(patients, aligned.loss_before, aligned.loss_after,
                                             embedded.images @ embedded.texts.T, seed=args.seed)
    truth = [p["subtype"] for p in test]
    rare = zero_shot_accuracy(embedded.images, embedded.prompts, subtypes, truth, patients, RARE_SUBTYPES,
                              seed=args.seed)
    if rare is not None:
        scores["aligned-vlm"]["zero_shot_rare_accuracy"] = rare
    n_patients = len(set(patients))
    rows = [row for method, found in scores.items() for row in metric_rows(method, found, n_patients)]
    if rare is not None:  # chance: one of the subtypes' prompts at random
        chance = 1 / len(subtypes)
        rows.append({"variant": "chance", "metric": "zero_shot_rare_accuracy", "value": chance, "low": chance,
                     "high": chance, "n_patients": n_patients})
    verdicts = reports.verdicts[MODEL]
    write_jsonl(args.work / "generations.jsonl", [
        {"study": s, "generated": outputs.reports[i], "reference": test[i]["report"],
         "nearest": methods["nearest report"][s], "flags": list(verdicts[s].flags) if s in verdicts else None}
        for i, s in enumerate(studies)])
    phase("held-out generation and scoring", tic)

    results = pd.DataFrame(rows).rename(columns={"variant": "method"})
    results.to_csv(args.work / "results.csv", index=False)
    total = time.perf_counter() - start
    header = (
        f"machine: {platform.node()} ({torch.get_num_threads()} threads, device {args.device}"
        f"{' ' + torch.cuda.get_device_name() + ', TF32' if args.device == 'cuda' else ''}), {total:.0f} s"
        + (f" of a {args.time_budget_s:.0f} s budget" if args.time_budget_s else "") + "\n"
        f"command: {command}\n"
        f"cohort: {len(centers)} centers, {len(train)} development / {len(test)} held-out pairs "
        f"({n_patients} held-out patients, {len(verdicts)} studies with stage-3 evidence), {len(dev_records)} "
        f"development instruction records, {len(qa)} held-out QA records; rare held-out studies "
        f"{sum(t in RARE_SUBTYPES for t in truth)}\n"
        f"profile {args.profile}, steps {json.dumps({s: int(p['steps']) for s, p in planner.plan.items()})}, "
        f"report cap {max_tokens} tokens; stage 3 from {stage3}\n"
        f"seconds: {json.dumps({k: round(v) for k, v in seconds.items()}, ensure_ascii=False)}\n"
        f"language model: held-out perplexity {lm_scores['held_out_perplexity']:.1f} "
        f"(unigram {lm_scores['unigram_perplexity']:.1f})\n"
    )
    (args.work / "tables.md").write_text(header + "\n" + metrics_markdown(rows) + "\n")
    (args.work / "run.json").write_text(json.dumps(
        {"command": command, "plan": planner.plan, "seconds": seconds, "total_s": total, **lm_scores}, indent=1))
    print(header + "\n" + metrics_markdown(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
