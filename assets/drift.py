"""Drift monitoring per center: Evidently comparison of the center with the centers the encoder was trained on,
the verdict and its rule in the metadata, and a non-blocking warning check the UI shows when it is flagged."""

# No `from __future__ import annotations` in asset modules: Dagster reads parameter annotations at runtime.

import json
from collections.abc import Iterator

import dagster as dg
import pandas as pd

from assets.gating import cleared_centers
from assets.ingest import DEIDENTIFIED_STUDIES, NORMALIZED_SLICES
from assets.ingest_checks import (
    deidentified_no_identifiers,
    normalized_format,
    normalized_qc_rate,
    normalized_split,
)
from assets.partitions import CENTERS
from assets.reports import STRUCTURED_FILE, structured_reports, structured_reports_valid
from assets.resources import DvcResource, PathsResource
from assets.versioning import versioned
from brainfm.drift import CenterDrift, center_features, compare_center

ENCODER = dg.AssetKey("mae_encoder")
VERDICT_FILE = "verdict.json"
FEATURES_FILE = "features.parquet"
REPORT_FILE = "report.html"
# Tag of a per-center asset that reads the other centers' outputs: `dagster_project.pipeline` runs it after
# every center and the cross-center assets.
READS_OTHER_CENTERS = "brainfm/reads_other_centers"
# The checks a center must have passed to serve as reference (the ones pretraining reads centers by).
REFERENCE_CHECKS = [
    normalized_format, normalized_split, normalized_qc_rate, deidentified_no_identifiers, structured_reports_valid,
]  # fmt: skip


def _trained_centers(context: dg.AssetExecutionContext) -> list[str] | None:
    """The centers of the latest encoder (its ``centers`` metadata); None before the first encoder."""
    event = context.instance.get_latest_materialization_event(ENCODER)
    materialization = event.asset_materialization if event else None
    if materialization is None or "centers" not in materialization.metadata:
        return None
    return list(materialization.metadata["centers"].value)  # type: ignore[arg-type]


def reference_centers(context: dg.AssetExecutionContext, center: str) -> list[str]:
    """The centers the current encoder was trained on (all cleared centers before there is one), minus
    ``center``, kept only while their ingest checks still pass."""
    cleared, _ = cleared_centers(context, REFERENCE_CHECKS)
    trained = _trained_centers(context)
    reference = [c for c in (trained if trained is not None else cleared) if c in cleared and c != center]
    if not reference:
        raise dg.Failure(
            f"No reference center for {center}: the encoder's centers ({trained}) and the centers that passed "
            f"their checks ({cleared}) leave none besides it. Ingest at least one more center first."
        )
    return sorted(reference)


def _features(paths: PathsResource, center: str) -> pd.DataFrame:
    return center_features(
        paths.output("normalized_slices", center),
        paths.output("deidentified_studies", center),
        paths.output("structured_reports", center) / STRUCTURED_FILE,
    )


@dg.asset(
    partitions_def=CENTERS,
    deps=[NORMALIZED_SLICES, DEIDENTIFIED_STUDIES, structured_reports],
    group_name="operations",
    tags={READS_OTHER_CENTERS: "true"},
    check_specs=[dg.AssetCheckSpec("no_drift", asset="center_drift", blocking=False)],
    description="Evidently drift report of the center against the centers the current encoder was trained on "
    "(one row per study: image features, header fields, report fields); the verdict, its rule and thresholds, "
    "the drifted columns and the HTML report.",
)
def center_drift(
    context: dg.AssetExecutionContext, paths: PathsResource, dvc: DvcResource
) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
    center = context.partition_key
    reference = reference_centers(context, center)
    current = _features(paths, center)
    out = paths.output("center_drift", center)
    out.mkdir(parents=True, exist_ok=True)
    result = compare_center(
        center, current, pd.concat([_features(paths, c) for c in reference]), reference, html=out / REPORT_FILE
    )
    current.to_parquet(out / FEATURES_FILE)
    (out / VERDICT_FILE).write_text(json.dumps(result.as_json(), indent=1, ensure_ascii=False))
    context.log.info(f"{center}: {'drifted' if result.drifted else 'not drifted'} ({result.drifted_share:.0%})")
    yield dg.MaterializeResult(metadata={**_metadata(result), **versioned(out, paths, dvc)})
    yield dg.AssetCheckResult(
        check_name="no_drift",
        passed=not result.drifted,
        severity=dg.AssetCheckSeverity.WARN,
        description=f"{result.center} flagged: {result.rule}" if result.drifted else None,
        metadata={"drifted_columns": dg.MetadataValue.json(result.drifted_columns)},
    )


def _metadata(result: CenterDrift) -> dict[str, object]:
    return {
        "drifted": result.drifted,
        "drifted_share": result.drifted_share,
        "rule": result.rule,
        "thresholds": dg.MetadataValue.json(result.thresholds),
        "drifted_columns": dg.MetadataValue.json(result.drifted_columns),
        "reference_centers": dg.MetadataValue.json(result.reference),
        "studies": result.n_current,
        "reference_studies": result.n_reference,
        "summary": dg.MetadataValue.md(result.markdown),
        "report": dg.MetadataValue.path(str(result.html)),
    }
