"""Evaluation reports (docs/DESIGN.md, "Evaluation reports"): the prospective reader study, the controlled trial
and the retrospective technical validation, each one self-contained HTML file with its JSON and a Markdown
summary; the statistics and the report layout live in `brainfm.evaluation`, these assets only read and write."""

# No `from __future__ import annotations` in asset modules: Dagster reads parameter annotations at runtime.

import json
from collections.abc import Sequence
from pathlib import Path

import dagster as dg
import great_expectations as gx
import pandas as pd
import polars as pl

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
from brainfm.tables import read_oracle, read_tables
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
