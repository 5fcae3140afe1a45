"""Stage-3 adapters on held-out patients: label efficiency (pretrained probe / fine-tuned vs the same network from
scratch), leave-one-center-out, encoder ablations, and prognosis against clinical-only and the oracle.

Input: an ingested cohort (`brainfm ingest` per center: DATA/<center>/normalized_slices/), its raw tables and
masks (RAW/tables, RAW/masks) and a pretrained encoder checkpoint (or `--pretrain-steps` to pretrain a tiny one
here, on the slices of the downstream training patients only). The script pseudonymises the tables and maps the masks itself
(the pipeline's own functions), then trains every cell and writes WORK/results.csv (one row per task, cell,
variant, seed and metric with its patient-bootstrap CI) and WORK/tables.md (mean and 95 % t-interval over
seeds). Everything is on held-out patients of the 7:3 downstream split; label fractions subsample the training
patients only (nested, stratified by center and category).

    BRAINFM_DEID_SECRET=... python bench/adapters.py --data DATA --raw RAW --work WORK \
        --pretrain-steps 400 --fractions 0.1,1.0 --seeds 0,1,2 --tasks classification,segmentation --loco
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import pandas as pd
import polars as pl
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from brainfm.evaluation import adapters as scoring
from brainfm.evaluation import mean_ci
from brainfm.evaluation.segmentation import score_studies, segmentation_estimates, series_spacings_mm
from brainfm.imaging.masks import map_masks
from brainfm.pseudonym import Pseudonymizer
from brainfm.secrets import load_secret
from brainfm.splits import label_fraction_subset
from brainfm.tables import mask_paths, patient_strata, pseudonymise_tables, read_oracle, study_table
from models.heads.experiments import (
    VARIANTS,
    Variant,
    fit_segmentation,
    fit_study_task,
    make_encoder,
    seg_config,
    study_config,
)
from models.heads.grading import GRADE_SCALES
from models.heads.prognosis import ClinicalBaseline
from models.heads.study_data import StudyBags
from models.train import PretrainConfig, pretrain

PRIMARY = {"classification": "category_accuracy", "grading": "grade_accuracy", "prognosis": "harrell_c",
           "segmentation": "dice_whole"}


def prepare(data: Path, raw: Path, work: Path, pseudonymizer: Pseudonymizer) -> tuple[list[str], pd.DataFrame]:
    """Pseudonymised tables and mapped masks under WORK; returns the centers and the study table."""
    centers = sorted(p.name for p in data.iterdir() if (p / "normalized_slices" / "index.parquet").is_file())
    if not (work / "clinical_tables").is_dir():
        pseudonymise_tables(raw / "tables", work / "clinical_tables", pseudonymizer)
    masks = mask_paths(raw, pseudonymizer)
    for c in centers:
        if not (work / "lesion_masks" / c).is_dir():
            map_masks(data / c / "normalized_slices", masks, work / "lesion_masks" / c)
    return centers, study_table(work / "clinical_tables")


def score(task: str, run, train: pd.DataFrame, seed: int) -> dict:
    """The task's scores of one run (patient-bootstrap CIs, 200 resamples: the tables report the spread
    over seeds)."""
    if task == "segmentation":
        spacing = series_spacings_mm(run.volumes["slice_mm"], run.volumes["pixel_mm"])
        scores = score_studies(run.predicted, run.truth, spacing)
        return segmentation_estimates(run.volumes["patient"], scores, n_boot=200, seed=seed)
    return scoring.task_scores(task, run.predictions, train, GRADE_SCALES, n_boot=200, seed=seed)


def run_cell(task: str, variant: Variant, encoder_dir: Path, images: list[Path], masks: list[Path],
             bags: StudyBags, table: pd.DataFrame, train: pd.DataFrame, test: pd.DataFrame, seed: int,
             profile: str, device: str, finetune_steps: int | None) -> dict:
    encoder = make_encoder(variant.source, encoder_dir, seed, device)
    if task == "segmentation":
        config = seg_config(profile, variant, seed, finetune_steps)
        empty = list(table.loc[table["category"] == "normal", "study"])
        run = fit_segmentation(encoder, images, masks, list(train["patient"]), list(test["patient"]), empty, config)
    else:
        config = study_config(profile, variant, seed, finetune_steps)
        run = fit_study_task(task, encoder, bags, train, test, config, table)
    return score(task, run, train, seed)


def baselines(task: str, train: pd.DataFrame, test: pd.DataFrame, work: Path, seed: int) -> dict[str, dict]:
    """Most-frequent (classification, grading), clinical-only and oracle (prognosis) on the same test set."""
    if task == "segmentation":
        return {}
    clinical = ClinicalBaseline.fit(train).predict(test) if task == "prognosis" else None
    oracle = read_oracle(work / "clinical_tables")
    return scoring.baseline_scores(task, train, test, GRADE_SCALES, clinical,
                                   None if oracle is None else oracle.to_pandas(), seed=seed)


def rows_of(task: str, cell: str, variant: str, seed: int, scores: dict, n_test: int) -> list[dict]:
    return [{"task": task, "cell": cell, "variant": variant, "seed": seed, "metric": m, "value": e.value,
             "low": e.low, "high": e.high, "n_test_patients": n_test} for m, e in scores.items()]


def summarise(results: pd.DataFrame) -> str:
    """Markdown: per task, the primary metric per cell and variant as mean (95 % t-interval over seeds)."""
    out = []
    for task, metric in PRIMARY.items():
        part = results[(results["task"] == task) & (results["metric"] == metric)]
        if part.empty:
            continue
        out.append(f"\n**{task}**: {metric}, mean (95 % CI over seeds; one value: its patient-bootstrap CI)\n")
        cells = list(dict.fromkeys(part["cell"]))
        variants = list(dict.fromkeys(part["variant"]))
        out.append("| cell | " + " | ".join(variants) + " |")
        out.append("|" + "---|" * (len(variants) + 1))
        for cell in cells:
            line = []
            for v in variants:
                values = part[(part["cell"] == cell) & (part["variant"] == v)]
                if values.empty:
                    line.append("")
                elif len(values) == 1:
                    r = values.iloc[0]
                    line.append(f"{r['value']:.3f} ({r['low']:.3f}–{r['high']:.3f})")
                else:
                    e = mean_ci(values["value"].to_numpy())
                    line.append(f"{e.value:.3f} ({e.low:.3f}–{e.high:.3f}), n={len(values)}")
            out.append(f"| {cell} | " + " | ".join(line) + " |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="DATA/<center>/normalized_slices/ (brainfm ingest)")
    parser.add_argument("--raw", type=Path, required=True, help="the raw cohort (tables/, masks/)")
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--encoder", type=Path, help="a pretrained checkpoint folder (mae.safetensors + config.json)")
    parser.add_argument("--pretrain-steps", type=int, default=0, help="pretrain a tiny encoder here first")
    parser.add_argument("--ablation", action="append", default=[], metavar="NAME=CHECKPOINT",
                        help="another pretrained encoder to compare at the same cells")
    parser.add_argument("--tasks", default="classification,segmentation,grading,prognosis")
    parser.add_argument("--fractions", default="0.1,0.5,1.0")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--variants", default=",".join(v.name for v in VARIANTS))
    parser.add_argument("--profile", default="tiny", help="adapter training profile (steps, batch sizes)")
    parser.add_argument("--finetune-steps", type=int, help="steps of every fine-tuning run (CPU budgets)")
    parser.add_argument("--loco", action="store_true", help="leave-one-center-out for classification, segmentation")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    args.work.mkdir(parents=True, exist_ok=True)
    pseudonymizer = Pseudonymizer(load_secret())
    centers, table = prepare(args.data, args.raw, args.work, pseudonymizer)
    images = [args.data / c / "normalized_slices" for c in centers]
    masks = [args.work / "lesion_masks" / c for c in centers]
    bags = StudyBags(images)
    table = table[table["study"].isin(bags.studies)].reset_index(drop=True)
    train_all, test = table[table["split"] == "train"], table[table["split"] == "test"]
    encoder_dir = args.encoder
    if encoder_dir is None:
        config = PretrainConfig.profile("tiny", steps=args.pretrain_steps)
        result = pretrain(config, images, args.work / "encoder", args.device, exclude_patients=set(test["patient"]))
        encoder_dir = result.checkpoint_dir
        print(f"pretrained {config.steps} steps in {result.seconds:.0f} s: masked SSIM {result.metrics.masked_ssim:.3f} "
              f"(baseline {result.metrics.baseline_masked_ssim:.3f})", flush=True)
    encoders = {"hybrid": encoder_dir} | dict(a.split("=", 1) for a in args.ablation)
    strata = patient_strata(pl.from_pandas(table[["patient", "center", "category"]]))
    variants = [v for v in VARIANTS if v.name in args.variants.split(",")]
    rows: list[dict] = []

    def record(task, cell, variant, seed, scores, n):
        rows.extend(rows_of(task, cell, variant, seed, scores, n))
        pd.DataFrame(rows).to_csv(args.work / "results.csv", index=False)
        print(f"{time.perf_counter() - start:7.0f} s  {task} {cell} {variant} seed {seed}: "
              f"{PRIMARY[task]} {scores[PRIMARY[task]].format() if PRIMARY[task] in scores else 'n/a'}", flush=True)

    for task in args.tasks.split(","):
        for fraction in (float(f) for f in args.fractions.split(",")):
            for seed in (int(s) for s in args.seeds.split(",")):
                subset = set(label_fraction_subset(train_all["patient"].unique(), strata, fraction, seed))
                train = train_all[train_all["patient"].isin(subset)]
                for name, ckpt in encoders.items():
                    for variant in variants:
                        if name != "hybrid" and variant.source == "scratch":
                            continue  # the scratch baseline is the hybrid's architecture
                        label = variant.name if name == "hybrid" else f"{name}-{variant.mode}"
                        scores = run_cell(task, variant, Path(ckpt), images, masks, bags, table, train, test, seed,
                                          args.profile, args.device, args.finetune_steps)
                        record(task, f"{fraction:.0%} labels", label, seed, scores, test["patient"].nunique())
                if fraction == 1.0 and seed == 0:
                    for name, scores in baselines(task, train, test, args.work, seed).items():
                        record(task, "100% labels", name, seed, scores, test["patient"].nunique())
        if args.loco and task in ("classification", "segmentation"):
            for center in centers:
                held = table[table["center"] == center]
                others = train_all[train_all["center"] != center]
                for variant in (Variant("pretrained", "finetune"), Variant("scratch", "finetune")):
                    scores = run_cell(task, variant, encoder_dir, images, masks, bags, table, others, held, 0,
                                      args.profile, args.device, args.finetune_steps)
                    record(task, f"held-out {center}", variant.name, 0, scores, held["patient"].nunique())
    results = pd.DataFrame(rows)
    header = (f"machine: {platform.node()} ({torch.get_num_threads()} threads, device {args.device}), "
              f"{time.perf_counter() - start:.0f} s, {len(centers)} centers, {table['patient'].nunique()} patients "
              f"({len(train_all)} train / {len(test)} test studies)\n"
              f"adapter profile {args.profile}, fine-tuning steps {args.finetune_steps or 'of the profile'}\n")
    (args.work / "tables.md").write_text(header + summarise(results) + "\n")
    print(header + summarise(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
