"""Stage-3 adapters on held-out patients: label efficiency (pretrained probe / fine-tuned vs the same network from
scratch), leave-one-center-out, encoder ablations, and prognosis against clinical-only and the oracle.

Input: an ingested cohort (`brainfm ingest` per center: DATA/<center>/normalized_slices/), its raw tables and
masks (RAW/tables, RAW/masks) and a pretrained encoder checkpoint (or `--pretrain-steps` to pretrain a tiny one
here, on the slices of the downstream training patients only). The script pseudonymises the tables and maps the masks itself
(the pipeline's own functions), then trains every cell and writes WORK/results.csv (one row per task, cell,
variant, seed and metric with its patient-bootstrap CI), WORK/predictions/ (each cell's held-out rows) and
WORK/tables.md (mean and 95 % t-interval over seeds, and the deployed probe's lead over scratch and over each
ablation, paired by seed: a t-interval over seeds and a paired patient bootstrap). Everything is on
held-out patients of the 7:3 downstream split; label fractions subsample the training
patients only (nested, stratified by center and category).

It also writes WORK/retrospective.json, the benchmark's rows for the retrospective report
(`brainfm.evaluation.retrospective.read_benchmark`): "label_efficiency" (mean and 95 % t-interval over seeds per
task, label fraction, variant and metric), "paired_leads" (the deployed probe's lead over scratch and each
ablation, with its paired patient-bootstrap interval), "leave_one_center_out" (the deployed variant per held-out center,
patient-bootstrap CIs) and "provenance" (command, cohort, commit, machine, date). `--merge` adds the rows of
earlier runs' results.csv (same cohort, encoder and held-out set; a row measured here wins).

Probes share one table of the frozen encoder's slice embeddings per checkpoint (every study, computed on first
use): fractions, seeds, tasks and held-out centers then embed no slice again, training or test.

    BRAINFM_DEID_SECRET=... python bench/adapters.py --data DATA --raw RAW --work WORK \
        --pretrain-steps 400 --fractions 0.1,1.0 --seeds 0,1,2 --tasks classification,segmentation --loco
    # the encoder ablations at the same cells, pretrained like the hybrid: ViT alone, ConvNeXt alone, dense
    # ConvNeXt, lesion-aware masking
    ... --encoder WORK/encoder/checkpoint --pretrain-steps 400 --pretrain-ablations vit,convnext,dense,lesion \
        --variants pretrained-probe --fractions 0.2 --tasks classification
"""

from __future__ import annotations

import argparse
import functools
import json
import platform
import shlex
import sys
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from assets.lineage import code_version
from brainfm.evaluation import adapters as scoring
from brainfm.evaluation import mean_ci
from brainfm.evaluation.bootstrap import Estimate
from brainfm.evaluation.retrospective import DEPLOYED
from brainfm.evaluation.segmentation import (
    STRUCTURES,
    score_studies,
    segmentation_estimates,
    series_spacings_mm,
)
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
from models.heads.study_train import SliceEmbeddings, StudyConfig
from models.train import PretrainConfig, pretrain

PRIMARY = {"classification": "category_accuracy", "grading": "grade_accuracy", "prognosis": "harrell_c",
           "segmentation": "dice_whole"}
# The encoder ablations of issue 13, as pretraining settings: one branch alone; the ConvNeXt reading the masked
# image whole in pretraining (as it does when fine-tuned) instead of each visible mask unit as its own crop; or
# lesion-aware masking (units on a lesion or its border kept visible 5x less readily, from the training
# patients' mapped masks under WORK/lesion_masks) instead of uniform masking.
ABLATIONS = {"vit": {"model": "tiny-vit"}, "convnext": {"model": "tiny-convnext"}, "dense": {"conv_masking": "dense"},
             "lesion": {"lesion_bias": 4.0}}
RUN_KEY = ["task", "cell", "variant", "seed", "metric"]  # one row of results.csv


def prepare(data: Path, raw: Path, work: Path, pseudonymizer: Pseudonymizer) -> tuple[list[str], pd.DataFrame]:
    """Pseudonymised tables and mapped masks under WORK (those already there are reused, raw tables unread);
    returns the centers and the study table."""
    centers = sorted(p.name for p in data.iterdir() if (p / "normalized_slices" / "index.parquet").is_file())
    if not (work / "clinical_tables").is_dir():
        pseudonymise_tables(raw / "tables", work / "clinical_tables", pseudonymizer)
    if unmapped := [c for c in centers if not (work / "lesion_masks" / c).is_dir()]:
        masks = mask_paths(raw, pseudonymizer)
        for c in unmapped:
            map_masks(data / c / "normalized_slices", masks, work / "lesion_masks" / c)
    return centers, study_table(work / "clinical_tables")


def score(task: str, run, train: pd.DataFrame, seed: int) -> tuple[dict, pd.DataFrame]:
    """The task's scores of one run (patient-bootstrap CIs, 200 resamples: the tables report the spread
    over seeds) and its per-study held-out rows (predictions, or per-volume scores for segmentation), which
    the paired patient bootstrap reads."""
    if task == "segmentation":
        spacing = series_spacings_mm(run.volumes["slice_mm"], run.volumes["pixel_mm"])
        scores = score_studies(run.predicted, run.truth, spacing)
        rows = run.volumes[["patient", "study"]].reset_index(drop=True).assign(
            **{f"dice_{name}": scores.dice[:, k] for k, name in enumerate(STRUCTURES)})
        return segmentation_estimates(run.volumes["patient"], scores, n_boot=200, seed=seed), rows
    return scoring.task_scores(task, run.predictions, train, GRADE_SCALES, n_boot=200, seed=seed), run.predictions


def run_cell(task: str, variant: Variant, encoder_dir: Path, images: list[Path], masks: list[Path],
             bags: StudyBags, table: pd.DataFrame, train: pd.DataFrame, test: pd.DataFrame, seed: int,
             profile: str, device: str, finetune_steps: int | None,
             embeddings: SliceEmbeddings | None = None, seg_steps: int | None = None) -> tuple[dict, pd.DataFrame]:
    """Train and score one cell (`score`); `embeddings`: the shared slice table of a study-task probe's encoder;
    `seg_steps`: the steps of a segmentation run whatever its variant (warm-up an eighth of them)."""
    encoder = make_encoder(variant.source, encoder_dir, seed, device)
    if task == "segmentation":
        config = seg_config(profile, variant, seed, finetune_steps)
        if seg_steps is not None:
            config = replace(config, steps=seg_steps, warmup_steps=max(1, seg_steps // 8))
        empty = list(table.loc[table["category"] == "normal", "study"])
        run = fit_segmentation(encoder, images, masks, list(train["patient"]), list(test["patient"]), empty, config)
    else:
        config = study_config(profile, variant, seed, finetune_steps)
        run = fit_study_task(task, encoder, bags, train, test, config, table, embeddings=embeddings)
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


def fraction_of(cell: str) -> float | None:
    """The label fraction of a cell named "NN% labels" (0.1 for "10% labels"); None for other cells."""
    return float(cell.removesuffix("% labels")) / 100 if cell.endswith("% labels") else None


def cell_order(cell: str) -> tuple[int, float, str]:
    """Label-fraction cells by fraction, then the held-out centers by name."""
    fraction = fraction_of(cell)
    return (0, fraction, "") if fraction is not None else (1, 0.0, cell)


def merge_results(current: pd.DataFrame, earlier: list[Path]) -> pd.DataFrame:
    """The rows of this run and of earlier runs' results.csv; where both have a run (task, cell, variant, seed,
    metric), this run's row is kept."""
    frames = [current, *(pd.read_csv(path) for path in earlier)]
    merged = pd.concat([f for f in frames if not f.empty], ignore_index=True)
    return merged.drop_duplicates(subset=RUN_KEY, keep="first").reset_index(drop=True)


def label_efficiency_rows(results: pd.DataFrame) -> list[dict]:
    """`RetrospectiveInputs.label_efficiency` rows: per task, label fraction, variant and metric measured with at
    least two seeds, the mean and 95 % t-interval over seeds (`mean_ci`). Cells with a non-finite value (a metric
    undefined on the held-out set) or one seed (the baselines) are left out."""
    rows = []
    part = results[results["cell"].map(fraction_of).notna()]
    for (task, cell, variant, metric), group in part.groupby(["task", "cell", "variant", "metric"], sort=False):
        values = group["value"].to_numpy(dtype=float)
        if len(values) < 2 or not np.isfinite(values).all():
            continue
        e = mean_ci(values)
        rows.append({"task": task, "fraction": fraction_of(cell), "variant": variant, "metric": metric,
                     "value": e.value, "low": e.low, "high": e.high, "n_seeds": e.n_seeds})
    return rows


def loco_rows(results: pd.DataFrame, variant: str = DEPLOYED) -> list[dict]:
    """`RetrospectiveInputs.leave_one_center_out` rows: every finite metric of `variant` per held-out center, with
    its patient-bootstrap CI."""
    part = results[results["cell"].str.startswith("held-out ") & (results["variant"] == variant)]
    part = part[np.isfinite(part[["value", "low", "high"]].to_numpy(dtype=float)).all(axis=1)]
    return [{"held_out_center": r.cell.removeprefix("held-out "), "task": r.task, "metric": r.metric,
             "value": r.value, "low": r.low, "high": r.high, "n_patients": int(r.n_test_patients)}
            for r in part.itertuples()]


def prediction_files(works: list[Path]) -> dict[tuple[str, str, str, int], Path]:
    """The held-out rows each cell saved (WORK/predictions/TASK/CELL/VARIANT/seedN.parquet, `score`) under these
    work folders, keyed like a run (task, cell, variant, seed); the first folder's file wins, as in
    `merge_results`."""
    found: dict[tuple[str, str, str, int], Path] = {}
    for work in works:
        for path in sorted((work / "predictions").glob("*/*/*/seed*.parquet")):
            task, cell, variant = path.parts[-4:-1]
            found.setdefault((task, cell, variant, int(path.stem.removeprefix("seed"))), path)
    return found


def summarise(results: pd.DataFrame, files: dict[tuple[str, str, str, int], Path]) -> str:
    """Markdown: per task, the primary metric per cell and variant as mean (95 % t-interval over seeds), and the
    deployed probe's paired leads (`paired_differences`, with the patient bootstrap where `files` has the rows)."""
    out = []
    for task, metric in PRIMARY.items():
        part = results[(results["task"] == task) & (results["metric"] == metric)]
        if part.empty:
            continue
        out.append(f"\n**{task}**: {metric}, mean (95 % CI over seeds; one value: its patient-bootstrap CI)\n")
        cells = sorted(dict.fromkeys(part["cell"]), key=cell_order)
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
        out += paired_differences(paired_leads(task, part, files))
    return "\n".join(out)


def paired_leads(task: str, part: pd.DataFrame, files: dict[tuple[str, str, str, int], Path]) -> list[dict]:
    """The deployed probe minus scratch and minus each ablation's probe on one task's primary metric (`part`),
    per cell with two seeds or more of both, paired by seed (the same label subset and held-out patients): the
    per-seed differences, their mean and 95 % t-interval over seeds (``t``), and, where every seed's held-out rows
    are in `files`, the 95 % patient-bootstrap interval of the same mean (``patients``, `scoring.paired_lead`,
    1,000 resamples; else None). Seeds share the encoder and the held-out set: the t-interval is about the
    adapters' randomness (label subset, training seed), the bootstrap about the held-out patients."""
    values = part.set_index(["cell", "variant", "seed"])["value"].sort_index()
    others = [v for v in dict.fromkeys(part["variant"]) if v == "scratch-finetune" or v.endswith("-probe")]
    leads = []
    for cell in sorted(dict.fromkeys(part["cell"]), key=cell_order):
        for other in (o for o in others if o != "pretrained-probe"):
            try:
                a, b = values.loc[(cell, "pretrained-probe")], values.loc[(cell, other)]
            except KeyError:
                continue
            seeds = sorted(set(a.index) & set(b.index))
            if len(seeds) < 2:
                continue
            diff = a.loc[seeds].to_numpy() - b.loc[seeds].to_numpy()
            keys = [(task, cell, v, seed) for seed in seeds for v in ("pretrained-probe", other)]
            patients = patient_lead(task, tuple(files[k] for k in keys)) if all(k in files for k in keys) else None
            leads.append({"task": task, "cell": cell, "comparison": f"pretrained-probe − {other}",
                          "per_seed": diff, "t": mean_ci(diff), "patients": patients})
    return leads


def paired_differences(leads: list[dict]) -> list[str]:
    """Markdown lines of one task's `paired_leads`; ** where an interval excludes 0."""
    if not leads:
        return []
    lines = []
    for lead in leads:
        e = lead["patients"]
        boot = "no held-out rows saved" if e is None else f"{signed_estimate(e)} ({e.n_patients} patients)"
        per_seed = ", ".join(f"{d:+.3f}" for d in lead["per_seed"])
        lines.append(f"| {lead['cell']} | {lead['comparison']} | {signed_estimate(lead['t'])} | {per_seed} | {boot} |")
    title = ("Paired by seed (same labels, same held-out patients): the deployed probe's lead, mean (95 % t-interval "
             "over seeds), per seed, and the same mean with its paired patient-bootstrap interval; ** where an "
             "interval excludes 0")
    return ["", title, "", "| cell | comparison | difference, t over seeds | per seed | difference, patient bootstrap |",
            "|---|---|---|---|---|", *lines]


def paired_rows(results: pd.DataFrame, files: dict[tuple[str, str, str, int], Path]) -> list[dict]:
    """`RetrospectiveInputs.paired_leads` rows: every label-fraction lead of every task's primary metric with its
    paired patient-bootstrap interval."""
    rows = []
    for task, metric in PRIMARY.items():
        part = results[(results["task"] == task) & (results["metric"] == metric)]
        for lead in paired_leads(task, part, files):
            e, fraction = lead["patients"], fraction_of(lead["cell"])
            if e is not None and fraction is not None:
                rows.append({"task": task, "fraction": fraction, "comparison": lead["comparison"], "metric": metric,
                             "value": e.value, "low": e.low, "high": e.high, "n_patients": e.n_patients,
                             "n_seeds": len(lead["per_seed"])})
    return rows


@functools.cache
def patient_lead(task: str, paths: tuple[Path, ...]) -> Estimate:
    """`scoring.paired_lead` of the held-out rows in `paths` (A and B of each seed, in turn), 1,000 resamples;
    cached, as every recorded cell rewrites the tables."""
    frames = [pd.read_parquet(path) for path in paths]
    runs = list(zip(frames[0::2], frames[1::2], strict=True))
    return scoring.paired_lead(task, runs, GRADE_SCALES, n_boot=1000, seed=0)


def signed_estimate(e: Estimate) -> str:
    """``+0.123 (+0.045 to +0.201)``, in ** where the interval excludes 0."""
    mark = "**" if e.low > 0 or e.high < 0 else ""
    return f"{mark}{e.value:+.3f} ({e.low:+.3f} to {e.high:+.3f}){mark}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="DATA/<center>/normalized_slices/ (brainfm ingest)")
    parser.add_argument("--raw", type=Path, required=True, help="the raw cohort (tables/, masks/)")
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--encoder", type=Path, help="a pretrained checkpoint folder (mae.safetensors + config.json)")
    parser.add_argument("--pretrain-steps", type=int, default=0, help="pretrain a tiny encoder here first")
    parser.add_argument("--ablation", action="append", default=[], metavar="NAME=CHECKPOINT",
                        help="another pretrained encoder to compare at the same cells")
    parser.add_argument("--pretrain-ablations", default="", metavar="NAMES",
                        help=f"pretrain these encoder ablations here ({', '.join(ABLATIONS)}), with --pretrain-steps "
                             "like the hybrid, and compare them at the same cells")
    parser.add_argument("--tasks", default="classification,segmentation,grading,prognosis",
                        help="tasks to train; empty (--tasks '') only tabulates the --merge results")
    parser.add_argument("--fractions", default="0.1,0.5,1.0", help="label fractions; empty: --loco only")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--variants", default=",".join(v.name for v in VARIANTS))
    parser.add_argument("--profile", default="tiny", help="adapter training profile (steps, batch sizes)")
    parser.add_argument("--finetune-steps", type=int, help="steps of every fine-tuning run (CPU budgets)")
    parser.add_argument("--seg-steps", type=int,
                        help="steps of every segmentation run, probe and fine-tuned alike (default: the profile's "
                             "for a probe, --finetune-steps for fine-tuning; 40 steps of the tiny profile left one "
                             "seed in three collapsed on the small cohort, docs/BENCHMARKS.md)")
    parser.add_argument("--loco", action="store_true",
                        help="leave-one-center-out for classification, segmentation (seed 0, the --variants)")
    parser.add_argument("--merge", type=Path, action="append", default=[], metavar="RESULTS_CSV",
                        help="an earlier run's results.csv (same cohort, encoder, held-out set) for the tables "
                        "and retrospective.json")
    parser.add_argument("--resume", action="store_true",
                        help="keep the cells WORK/results.csv already holds (an interrupted run) and train the rest")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args(argv)
    if not args.tasks.strip(",") and not args.merge:
        parser.error("nothing to do: name --tasks to train, or --merge earlier results.csv files to tabulate")
    if (args.encoder is None or args.pretrain_ablations) and args.pretrain_steps <= 0:
        parser.error("pretraining here needs --pretrain-steps (the hybrid's, for its ablations): give it, or --encoder")
    if unknown := set(filter(None, args.pretrain_ablations.split(","))) - set(ABLATIONS):
        parser.error(f"unknown ablations {sorted(unknown)}: choose from {', '.join(ABLATIONS)}")
    start = time.perf_counter()
    command = shlex.join(["python", "bench/adapters.py", *(sys.argv[1:] if argv is None else argv)])
    date, commit = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), code_version().label
    args.work.mkdir(parents=True, exist_ok=True)
    pseudonymizer = Pseudonymizer(load_secret())
    centers, table = prepare(args.data, args.raw, args.work, pseudonymizer)
    images = [args.data / c / "normalized_slices" for c in centers]
    masks = [args.work / "lesion_masks" / c for c in centers]
    bags = StudyBags(images)
    table = table[table["study"].isin(bags.studies)].reset_index(drop=True)
    train_all, test = table[table["split"] == "train"], table[table["split"] == "test"]

    def pretrained(name: str, **settings) -> Path:
        """A tiny encoder pretrained here with ``settings`` on the downstream training patients' slices."""
        if settings.get("lesion_bias"):
            settings |= {"lesion_masks": (str(args.work / "lesion_masks"),)}
        config = PretrainConfig.profile("tiny", steps=args.pretrain_steps, **settings)
        result = pretrain(config, images, args.work / name, args.device, exclude_patients=set(test["patient"]))
        print(f"pretrained {name} {config.steps} steps in {result.seconds:.0f} s: masked SSIM "
              f"{result.metrics.masked_ssim:.3f} (baseline {result.metrics.baseline_masked_ssim:.3f})", flush=True)
        return result.checkpoint_dir

    encoder_dir = args.encoder or pretrained("encoder")
    encoders = {"hybrid": encoder_dir} | dict(a.split("=", 1) for a in args.ablation)
    encoders |= {a: pretrained(f"encoder-{a}", **ABLATIONS[a]) for a in filter(None, args.pretrain_ablations.split(","))}
    strata = patient_strata(pl.from_pandas(table[["patient", "center", "category"]]))
    variants = [v for v in VARIANTS if v.name in args.variants.split(",")]
    rows: list[dict] = (pd.read_csv(args.work / "results.csv").to_dict("records")
                        if args.resume and (args.work / "results.csv").is_file() else [])
    done = {(r["task"], r["cell"], r["variant"], r["seed"]) for r in rows}
    probe_tables: dict[Path, SliceEmbeddings] = {}

    def embeddings(task: str, variant: Variant, checkpoint: Path) -> SliceEmbeddings | None:
        """The slice table of a study-task probe on `checkpoint` (every study, embedded on first use)."""
        if task == "segmentation" or variant.mode != "probe":
            return None  # segmentation's decoder reads token maps and skips, not one embedding per slice
        if checkpoint not in probe_tables:
            tic = time.perf_counter()
            probe_tables[checkpoint] = SliceEmbeddings(
                make_encoder("pretrained", checkpoint, 0, args.device), bags, list(table["study"]),
                StudyConfig.profile(args.profile).embed_batch)
            print(f"embedded {len(probe_tables[checkpoint].items)} slices of {checkpoint} once for every probe "
                  f"run: {time.perf_counter() - tic:.0f} s", flush=True)
        return probe_tables[checkpoint]

    def header() -> str:
        return (f"machine: {platform.node()} ({torch.get_num_threads()} threads, device {args.device}), "
                f"{time.perf_counter() - start:.0f} s, {len(centers)} centers, {table['patient'].nunique()} patients "
                f"({len(train_all)} train / {len(test)} test studies)\n"
                f"adapter profile {args.profile}, fine-tuning steps {args.finetune_steps or 'of the profile'}, "
                f"segmentation steps {args.seg_steps or 'as above'}\n"
                + (f"merged: {', '.join(map(str, args.merge))}\n" if args.merge else ""))

    def write_outputs() -> str:
        """results.csv (this run), and tables.md and retrospective.json (this run and --merge); returns tables.md."""
        current = pd.DataFrame(rows, columns=[*RUN_KEY, "value", "low", "high", "n_test_patients", "seconds"])
        current.to_csv(args.work / "results.csv", index=False)  # with its header when empty (--tasks '')
        results = merge_results(current, args.merge)
        saved = prediction_files([args.work, *(path.parent for path in args.merge)])
        provenance = {
            "command": command, "commit": commit, "date": date,
            "machine": f"{platform.node()}, {platform.processor() or platform.machine()}, "
                       f"{torch.get_num_threads()} torch threads, device {args.device}",
            "cohort": f"{args.data} ({len(centers)} centers, {table['patient'].nunique()} patients; held-out "
                      f"{test['patient'].nunique()} patients of the 7:3 downstream split); encoder {encoder_dir}, "
                      "pretrained unlabelled on every center's training patients, so leave-one-center-out holds "
                      "a center out of the adapters' labels only",
        }
        retrospective = {"label_efficiency": label_efficiency_rows(results),
                         "paired_leads": paired_rows(results, saved),
                         "leave_one_center_out": loco_rows(results), "provenance": provenance}
        (args.work / "retrospective.json").write_text(json.dumps(retrospective, indent=1) + "\n")
        tables = header() + summarise(results, saved)
        (args.work / "tables.md").write_text(tables + "\n")
        return tables

    def record(task, cell, variant, seed, scores, n, seconds=float("nan"), held_out: pd.DataFrame | None = None):
        if held_out is not None:
            folder = args.work / "predictions" / task / cell / variant
            folder.mkdir(parents=True, exist_ok=True)
            held_out.to_parquet(folder / f"seed{seed}.parquet")
        rows.extend(r | {"seconds": seconds} for r in rows_of(task, cell, variant, seed, scores, n))
        write_outputs()
        print(f"{time.perf_counter() - start:7.0f} s  {task} {cell} {variant} seed {seed}: "
              f"{PRIMARY[task]} {scores[PRIMARY[task]].format() if PRIMARY[task] in scores else 'n/a'}", flush=True)

    def cell_run(task, variant, checkpoint, train, held, seed) -> tuple[dict, pd.DataFrame, float]:
        """One cell's scores, held-out rows and seconds (the shared slice table's first embedding included)."""
        tic = time.perf_counter()
        scores, held_out = run_cell(task, variant, checkpoint, images, masks, bags, table, train, held, seed,
                                    args.profile, args.device, args.finetune_steps,
                                    embeddings(task, variant, checkpoint), args.seg_steps)
        return scores, held_out, time.perf_counter() - tic

    for task in filter(None, args.tasks.split(",")):
        for fraction in map(float, filter(None, args.fractions.split(","))):
            for seed in (int(s) for s in args.seeds.split(",")):
                subset = set(label_fraction_subset(train_all["patient"].unique(), strata, fraction, seed))
                train = train_all[train_all["patient"].isin(subset)]
                for name, ckpt in encoders.items():
                    for variant in variants:
                        if name != "hybrid" and variant.source == "scratch":
                            continue  # the scratch baseline is the hybrid's architecture
                        label = variant.name if name == "hybrid" else f"{name}-{variant.mode}"
                        if (task, f"{fraction:.0%} labels", label, seed) in done:
                            continue
                        scores, held_out, seconds = cell_run(task, variant, Path(ckpt), train, test, seed)
                        record(task, f"{fraction:.0%} labels", label, seed, scores, test["patient"].nunique(),
                               seconds, held_out)
                if fraction == 1.0 and seed == 0:
                    for name, scores in baselines(task, train, test, args.work, seed).items():
                        if (task, "100% labels", name, seed) not in done:
                            record(task, "100% labels", name, seed, scores, test["patient"].nunique())
        if args.loco and task in ("classification", "segmentation"):
            for center in centers:
                held = table[table["center"] == center]
                others = train_all[train_all["center"] != center]
                for variant in variants:
                    if (task, f"held-out {center}", variant.name, 0) in done:
                        continue
                    scores, held_out, seconds = cell_run(task, variant, encoder_dir, others, held, 0)
                    record(task, f"held-out {center}", variant.name, 0, scores, held["patient"].nunique(), seconds,
                           held_out)
    print(write_outputs())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
