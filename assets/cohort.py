"""The raw cohort: a site's own DICOM folders and tables, or the embedded synthetic cohort by default."""

# No `from __future__ import annotations` in asset modules: Dagster reads parameter annotations at runtime.

import json
from pathlib import Path

import dagster as dg
import great_expectations as gx
import pandas as pd

from assets.figures import png_metadata
from assets.gating import gx_asset_check
from assets.resources import PathsResource, ProfileResource
from brainfm.raw_layout import RawLayout
from brainfm.synth import generate_cohort, make_contact_sheet
from brainfm.validation import Gate

# Pipeline profile -> synthetic cohort profile. `full` is meant for a site's own data; when none is given
# it falls back to the throughput-sized synthetic cohort.
SYNTH_PROFILE = {"tiny": "tiny", "small": "small", "full": "bench"}


@dg.asset(
    group_name="data",
    description="Raw DICOM, reports and tables per center (raw/; identifiers inside, never tracked). "
    "Generates the synthetic multi-center cohort when raw/ is empty.",
)
def raw_cohort(
    context: dg.AssetExecutionContext, paths: PathsResource, profile: ProfileResource
) -> dg.MaterializeResult:
    layout = RawLayout(paths.raw)
    wanted = {"profile": SYNTH_PROFILE[profile.profile], "seed": profile.seed}
    if layout.manifest.is_file():
        manifest = json.loads(layout.manifest.read_text(encoding="utf-8"))
        found = {"profile": manifest.get("profile"), "seed": manifest.get("seed")}
        if manifest.get("simulated") and found != wanted:
            raise dg.Failure(
                f"{paths.raw} holds a synthetic cohort for {found}, but this run asks for {wanted}. "
                "Move or delete that folder (raw data is never deleted automatically), or set BRAINFM_RAW_DIR."
            )
        context.log.info(f"Using the existing cohort in {paths.raw}")
    elif layout.centers():
        manifest = {"simulated": False}
        context.log.info(f"Using the site's own data in {paths.raw}")
    else:
        summary = generate_cohort(paths.raw, wanted["profile"], profile.seed, workers=profile.workers)
        context.log.info(
            f"Generated a {summary.profile} cohort: {summary.n_dicom_files} DICOM files in {summary.seconds} s"
        )
        manifest = json.loads(layout.manifest.read_text(encoding="utf-8"))

    meta: dict[str, dg.RawMetadataValue] = {
        "simulated": bool(manifest.get("simulated")),
        "centers": layout.centers(),
        "studies_per_center": dg.MetadataValue.json(_studies_per_center(layout)),
    }
    if manifest.get("simulated"):
        meta["categories"] = dg.MetadataValue.json(manifest["categories"])
        meta["oracle"] = dg.MetadataValue.json(manifest.get("oracle", {}))
        sheet = make_contact_sheet(paths.raw, paths.outputs / "raw_cohort" / "contact_sheet.png")
        meta["contact_sheet"] = png_metadata(sheet, "One slice per sequence per category (lesion outlined)")
    return dg.MaterializeResult(metadata=meta)


def _studies_per_center(layout: RawLayout) -> dict[str, int]:
    """Patient/study folders (two levels under the center folder) holding at least one file, per center,
    counted without their names."""
    return {
        c: sum(1 for p in (layout.dicom / c).glob("*/*") if p.is_dir() and _holds_a_file(p))
        for c in layout.centers()
    }


def _holds_a_file(folder: Path) -> bool:
    return any(p.is_file() for p in folder.rglob("*"))


def raw_layout_gate(layout: RawLayout) -> Gate:
    """One row per center: studies with files, and report lines (-1 without a report file: a center may send
    images alone, and is then ingested without reports)."""
    studies = _studies_per_center(layout)
    reports = {c: _report_lines(layout.reports / f"{c}.jsonl") for c in studies}
    frame = pd.DataFrame({"studies": list(studies.values()), "reports": list(reports.values())})
    return Gate(
        frame,
        [
            gx.expectations.ExpectTableRowCountToBeBetween(min_value=1),
            gx.expectations.ExpectColumnValuesToBeBetween(column="studies", min_value=1),
            # A report file without a report is an export that went wrong (no file at all is a choice).
            gx.expectations.ExpectColumnValuesToNotBeInSet(column="reports", value_set=[0]),
        ],
    )


def _report_lines(path: Path) -> int:
    if not path.is_file():
        return -1
    with path.open("rb") as lines:
        return sum(1 for line in lines if line.strip())


raw_cohort_layout = gx_asset_check(
    asset=raw_cohort,
    name="raw_layout",
    description="At least one center; every center has a study with files and a non-empty report file.",
    gate=lambda context: raw_layout_gate(RawLayout(context.resources.paths.raw)),
    required_resource_keys={"paths"},
)
