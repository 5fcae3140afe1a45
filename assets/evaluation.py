"""Evaluation reports (docs/DESIGN.md, "Evaluation reports"): the prospective reader study, the controlled trial
and the retrospective technical validation, each one self-contained HTML file with its JSON and a Markdown
summary; the statistics and the report layout live in `brainfm.evaluation`, these assets only read and write."""

# No `from __future__ import annotations` in asset modules: Dagster reads parameter annotations at runtime.

import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path

import dagster as dg
import great_expectations as gx
import pandas as pd
import polars as pl
from pydantic import Field

from assets.adapters import PREDICTIONS_FILE
from assets.gating import gx_asset_check
from assets.resources import DvcResource, PathsResource, ProfileResource
from assets.tables import clinical_tables
from assets.versioning import versioned
from brainfm.evaluation.controlled import CONTROLLED_SECTIONS
from brainfm.evaluation.html_report import (
    JSON_FILE,
    Provenance,
    ReportFiles,
    missing_sections,
    numbers_without_ci,
)
from brainfm.evaluation.prospective import PROSPECTIVE_SECTIONS
from brainfm.evaluation.retrospective import RETROSPECTIVE_SECTIONS
from brainfm.tables import read_oracle, read_tables, study_table
from brainfm.validation import Gate

CLS_ADAPTER = dg.AssetKey("cls_adapter")
DEPLOYED_NOTE = "the deployed pretrained probe, on its held-out patients"


def provenance(paths: PathsResource, profile: ProfileResource, simulated: bool) -> Provenance:
    """Synthetic when the tables say so (the cohort's oracle or simulated rows), else the site's real data."""
    synthetic = simulated or read_oracle(paths.output("clinical_tables")) is not None
    source = f"synthetic cohort (brainfm synth), profile {profile.profile}, seed {profile.seed}" if synthetic \
        else f"site data under {paths.raw}"
    return Provenance(synthetic, source)


def report_metadata(files: ReportFiles, out: Path, paths: PathsResource, dvc: DvcResource) -> dict[str, object]:
    """The report's summary in the UI, links that open the HTML, and the DVC hashes of the folder."""
    return {
        "summary": dg.MetadataValue.md(files.markdown.read_text()),
        "report": dg.MetadataValue.path(str(files.html)),
        "open_report": dg.MetadataValue.url(files.html.resolve().as_uri()),
        "render": dg.MetadataValue.md(f"`brainfm render-report {files.html}`: the report as a PNG"),
        **versioned(out, paths, dvc),
    }


def report_gate(out: Path, required: Sequence[str]) -> Gate:
    """One row per required section: present (with content), and the count of measured numbers without a 95 %
    confidence interval anywhere in the report (must be 0)."""
    document = json.loads((out / JSON_FILE).read_text())
    missing, bare = set(missing_sections(document, required)), numbers_without_ci(document)
    frame = pd.DataFrame({"section": list(required), "present": [s not in missing for s in required],
                          "numbers_without_ci": len(bare)})
    return Gate(frame, [
        gx.expectations.ExpectColumnValuesToBeInSet(column="present", value_set=[True]),
        gx.expectations.ExpectColumnValuesToBeBetween(column="numbers_without_ci", min_value=0, max_value=0),
    ])


def report_check(asset: dg.AssetsDefinition | str, required: Sequence[str]) -> dg.AssetChecksDefinition:
    """The check of one report asset: every section present, no number without its CI."""
    name = asset if isinstance(asset, str) else asset.key.to_user_string()
    return gx_asset_check(
        asset=asset,
        name="complete_with_intervals",
        description=f"Every section of the {name} report ({', '.join(required)}) is present and every measured "
        "number carries its 95 % CI.",
        gate=lambda context: report_gate(context.resources.paths.output(name), required),
        required_resource_keys={"paths"},
    )


def site_table(paths: PathsResource, name: str) -> pl.DataFrame:
    """One of the pseudonymised clinical tables, or a clear error when the site sent none."""
    table = read_tables(paths.output("clinical_tables")).get(name)
    if table is None:
        raise FileNotFoundError(f"no {name} table in {paths.output('clinical_tables')}: the site sent none "
                                f"(docs/SCHEMAS.md, {name}.parquet); leave this asset out of the run")
    return table


def held_out_classifications(paths: PathsResource) -> pl.DataFrame | None:
    """The deployed stage-3 classifier's predictions on its held-out studies, as the reader-study analysis
    takes them (accession, predicted subtype, P(abnormal) = 1 − P(category normal)); None before it ran."""
    path = paths.output("cls_adapter") / PREDICTIONS_FILE
    if not path.is_file():
        return None
    predictions = pl.read_parquet(path)
    return predictions.select(
        "accession",
        pl.col("pred_subtype").alias("predicted_subtype"),
        (1.0 - pl.col("p_category_normal")).clip(0.0, 1.0).alias("abnormality_probability"),
    )


@dg.asset(
    deps=[clinical_tables, CLS_ADAPTER],
    group_name="evaluation",
    description="Prospective evaluation (clinical efficacy): the reader study, doctors with vs without the model, "
    "by Obuchowski–Rockette MRMC overall and per subgroup, paired tests, automation bias, and the stage-3 "
    "classifier against the doctors on its held-out cases; one HTML report with every number's 95 % CI.",
)
def prospective_evaluation(
    context: dg.AssetExecutionContext, paths: PathsResource, profile: ProfileResource, dvc: DvcResource
) -> dg.MaterializeResult:
    from brainfm.evaluation.prospective import prospective_report
    from brainfm.evaluation.reader_study import analyse_reader_study

    reads = site_table(paths, "reader_study")
    model = held_out_classifications(paths)
    result = analyse_reader_study(reads, model, seed=profile.seed)
    out = paths.output("prospective_evaluation")
    source = f"cls_adapter ({DEPLOYED_NOTE})" if model is not None else "no classifier predictions available"
    files = prospective_report(result, provenance(paths, profile, result.simulated), source).write(out)
    context.log.info(f"reader study: {result.n_readers} readers, {result.n_cases} cases, report {files.html}")
    return dg.MaterializeResult(metadata={
        "readers": result.n_readers, "cases": result.n_cases,
        "model_cases": 0 if not result.model_vs_readers else result.model_vs_readers[0].n_cases,
        **report_metadata(files, out, paths, dvc),
    })


prospective_evaluation_complete = report_check(prospective_evaluation, PROSPECTIVE_SECTIONS)


@dg.asset(
    deps=[clinical_tables],
    group_name="evaluation",
    description="Controlled evaluation (clinical value): doctor + model vs doctor alone, randomised — metastasis AUC "
    "and survival C-index with their difference, calibration, Kaplan–Meier by arm and by predicted risk with numbers "
    "at risk, log-rank, Cox HR with a proportional-hazards check, accuracy and time to diagnosis, balance; one HTML "
    "report with every number's 95 % CI.",
)
def controlled_evaluation(
    context: dg.AssetExecutionContext, paths: PathsResource, profile: ProfileResource, dvc: DvcResource
) -> dg.MaterializeResult:
    from brainfm.evaluation.controlled import controlled_report
    from brainfm.evaluation.trial import analyse_trial

    trial = site_table(paths, "controlled_trial")
    result = analyse_trial(trial, seed=profile.seed)
    out = paths.output("controlled_evaluation")
    simulated = bool(trial["simulated"].all())
    files = controlled_report(result, trial, provenance(paths, profile, simulated)).write(out)
    context.log.info(f"controlled trial: {result.n_participants} participants, report {files.html}")
    return dg.MaterializeResult(metadata={
        "participants": dg.MetadataValue.json(result.n_participants),
        "auc_difference": result.auc_metastasis.difference.format(),
        **report_metadata(files, out, paths, dvc),
    })


controlled_evaluation_complete = report_check(controlled_evaluation, CONTROLLED_SECTIONS)


# The tasks of the multi-task table and where their rows come from: (asset, metric filter or None for all).
TASK_SOURCES: dict[str, tuple[str, Callable[[str], bool]]] = {
    "segmentation": ("seg_adapter", lambda m: True),
    "classification": ("cls_adapter", lambda m: True),
    "grading": ("grade_adapter", lambda m: True),
    "prognosis": ("prognosis_adapter", lambda m: True),
    "report generation": ("instructed_vlm", lambda m: not m.startswith("qa_")),
    "question answering": ("instructed_vlm", lambda m: m.startswith("qa_")),
    "retrieval": ("aligned_vlm", lambda m: m.startswith("recall_at_")),
}
DEPLOYED_VARIANTS = {"report generation": "instructed-vlm", "question answering": "instructed-vlm",
                     "retrieval": "aligned-vlm"}


def _finite_rows(rows: Sequence[dict], where: str, context: dg.AssetExecutionContext) -> list[dict]:
    kept = [r for r in rows if all(isinstance(r[k], int | float) and math.isfinite(r[k]) for k in ("value", "low", "high"))]
    if len(kept) < len(rows):
        context.log.warning(f"{where}: {len(rows) - len(kept)} metric rows undefined on the held-out set left out")
    return kept


def model_card(paths: PathsResource, centers: Sequence[str]) -> dict[str, object]:
    """The model card's facts: data per split, label counts, and the versions (git revision, DVC-style md5 of
    every deployed weights file) behind the report."""
    from assets.lineage import code_version
    from brainfm.versioning import file_md5
    from models.checkpoint import WEIGHTS_FILE

    table = study_table(paths.output("clinical_tables"))
    per_split = {side: {"patients": int(g["patient"].nunique()), "studies": len(g)}
                 for side, g in table.groupby("split")}
    weights = {name: paths.output(name) / folder / WEIGHTS_FILE for name, folder in (
        ("mae_encoder", "checkpoint"), ("seg_adapter", "adapter"), ("cls_adapter", "adapter"),
        ("grade_adapter", "adapter"), ("prognosis_adapter", "adapter"), ("instructed_vlm", "vlm"))}
    versions: dict[str, str] = {"code (git)": code_version().label}
    versions |= {f"{name} weights (md5)": file_md5(path)
                 for name, path in weights.items() if path.is_file()}
    return {"data": {"centers": list(centers), "per_split": per_split,
                     "label_counts": {str(k): int(v) for k, v in table["category"].value_counts().items()}},
            "versions": versions}


class RetrospectiveConfig(dg.Config):
    """Label efficiency and leave-one-center-out train dozens of adapters (every share of labels, seed and
    center), which is a benchmark's budget rather than a pipeline run's: `bench/adapters.py` measures them on
    the site's data and its ``WORK/retrospective.json`` fills those two sections, each marked with its source."""

    benchmark_results: str = Field(
        default="", description="bench/adapters.py's WORK/retrospective.json; empty: those sections say "
        "'not measured in this run'."
    )


@dg.asset(
    deps=["seg_adapter", CLS_ADAPTER, "grade_adapter", "prognosis_adapter", "aligned_vlm", "instructed_vlm",
          clinical_tables],
    group_name="evaluation",
    description="Retrospective evaluation (technical efficacy): the multi-task table (segmentation, classification, "
    "grading, prognosis, report generation, question answering, retrieval) on held-out patients against scratch, "
    "most-frequent, clinical-only and oracle baselines, zero-shot accuracy on rare subtypes, calibration, a Grad-CAM "
    "gallery with pointing scores, and the model card; one HTML report with every number's 95 % CI.",
)
def retrospective_evaluation(
    context: dg.AssetExecutionContext,
    config: RetrospectiveConfig,
    paths: PathsResource,
    profile: ProfileResource,
    dvc: DvcResource,
) -> dg.MaterializeResult:
    from brainfm.evaluation.bootstrap import Estimate
    from brainfm.evaluation.retrospective import RetrospectiveInputs, read_benchmark, retrospective_report

    metrics = {name: json.loads((paths.output(name) / "metrics.json").read_text())
               for name in {source for source, _ in TASK_SOURCES.values()}}
    task_metrics = {task: _finite_rows([r for r in metrics[source]["rows"] if keep(r["metric"])], task, context)
                    for task, (source, keep) in TASK_SOURCES.items()}
    aligned = metrics["aligned_vlm"]
    zero_shot = [{"subtype": "rare subtypes, pooled (" + ", ".join(aligned["excluded_subtypes"]) + ")",
                  "value": r["value"], "low": r["low"], "high": r["high"], "n_patients": r["n_patients"],
                  "chance": aligned["chance_zero_shot"]}
                 for r in aligned["rows"] if r["metric"] == "zero_shot_rare_accuracy"]
    gradcam_path = paths.output("cls_adapter") / "gradcam.json"
    gradcam = json.loads(gradcam_path.read_text()) if gradcam_path.is_file() else None
    inputs = RetrospectiveInputs(
        task_metrics={t: rows for t, rows in task_metrics.items() if rows},
        model_card=model_card(paths, metrics["cls_adapter"]["centers"]),
        zero_shot=_finite_rows(zero_shot, "zero-shot", context) or None,
        calibration=pl.read_parquet(paths.output("cls_adapter") / PREDICTIONS_FILE),
        gradcam=[{"png": Path(gradcam["png"]), "caption": gradcam["caption"]}] if gradcam else (),
        gradcam_scores={k: Estimate(**v) for k, v in gradcam["scores"].items()} if gradcam else {},
        deployed=DEPLOYED_VARIANTS,
        seed=profile.seed,
        **(read_benchmark(Path(config.benchmark_results)) if config.benchmark_results else {}),
    )
    out = paths.output("retrospective_evaluation")
    files = retrospective_report(inputs, provenance(paths, profile, simulated=False)).write(out)
    context.log.info(f"retrospective report: {sum(map(len, task_metrics.values()))} metric rows, {files.html}")
    return dg.MaterializeResult(metadata={
        "tasks": dg.MetadataValue.json(sorted(inputs.task_metrics)),
        **report_metadata(files, out, paths, dvc),
    })


retrospective_evaluation_complete = report_check(retrospective_evaluation, RETROSPECTIVE_SECTIONS)
