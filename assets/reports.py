"""Report structuring per center, and the stage-2 vision-language data built from it."""

# No `from __future__ import annotations` in asset modules: Dagster reads parameter annotations at runtime.

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import dagster as dg
import great_expectations as gx
import pandas as pd
from pydicom import dcmread

from assets.cohort import raw_cohort
from assets.gating import cleared_centers, gx_asset_check
from assets.ingest import DEIDENTIFIED_STUDIES, NORMALIZED_SLICES
from assets.ingest_checks import deidentified_no_identifiers
from assets.partitions import CENTERS
from assets.resources import DeidSecretResource, DvcResource, PathsResource, ProfileResource
from assets.versioning import versioned
from brainfm.imaging.shards import INDEX_FILE
from brainfm.jsonl import read_jsonl, write_jsonl
from brainfm.raw_layout import RawLayout
from brainfm.reports import build_instruction_data, check_no_identifiers, structure_jsonl, validate_structured
from brainfm.validation import Gate

STRUCTURED_FILE = "structured.jsonl"
PAIRS_FILE = "pairs.jsonl"
INSTRUCTIONS_FILE = "instructions.jsonl"
# Share of image-report pairs that must find their de-identified study: a report without images is
# normal now and then (an outside study, a deleted series), a low share means the keys do not link.
MIN_LINKED_PAIRS = 0.9


@dg.asset(
    partitions_def=CENTERS,
    deps=[raw_cohort],
    group_name="reports",
    description="Chinese free-text reports structured into sections, categories, laterality, locations, size, negations "
    "and ontology terms, with de-identified text; keys pseudonymised.",
)
def structured_reports(
    context: dg.AssetExecutionContext, paths: PathsResource, deid_secret: DeidSecretResource, dvc: DvcResource
) -> dg.MaterializeResult:
    center = context.partition_key
    source = RawLayout(paths.raw).reports / f"{center}.jsonl"
    out = paths.output("structured_reports", center)
    out.mkdir(parents=True, exist_ok=True)
    if not source.is_file():  # a center may send images alone: ingested, with no image-report pairs
        context.log.warning(
            f"No report table for {center} ({source}, one JSON line per report: id, text): its images are "
            "ingested without reports. Put the table there and the raw-data sensor ingests it."
        )
        write_jsonl(out / STRUCTURED_FILE, [])
        return dg.MaterializeResult(
            metadata={"reports": 0, "report_table": "none sent", **versioned(out, paths, dvc)}
        )
    summary = structure_jsonl(
        source, out / STRUCTURED_FILE, pseudonymizer=deid_secret.pseudonymizer(), center=center
    )
    quarantine = paths.quarantine / "structured_reports" / f"{center}.jsonl"
    write_jsonl(quarantine, [{"line": n, "reason": reason} for n, reason in summary.quarantined])
    return dg.MaterializeResult(
        metadata={
            "reports": summary.n_written,
            "quarantined_lines": len(summary.quarantined),
            "primary_categories": dg.MetadataValue.json(summary.categories),
            **versioned(out, paths, dvc),
        }
    )


def _accession_to_study(paths: PathsResource, centers: list[str]) -> dict[str, str]:
    """Accession pseudonym → new StudyInstanceUID, read from one de-identified file per study of `centers`."""
    links: dict[str, str] = {}
    study_dirs = (d for c in centers for d in paths.output("deidentified_studies", c).glob("*"))
    for study_dir in sorted(study_dirs):
        first = next(study_dir.rglob("*.dcm"), None)
        if first is not None:
            accession = str(
                dcmread(first, stop_before_pixels=True, specific_tags=["AccessionNumber"]).get(
                    "AccessionNumber", ""
                )
            )
            if accession:
                links[accession] = study_dir.name
    return links


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            "vl_pairs",
            deps=[structured_reports, DEIDENTIFIED_STUDIES, NORMALIZED_SLICES],
            group_name="reports",
            description="Image-report pairs (findings + impression) linked to de-identified studies, 8:2 by patient "
            "(each patient on the side of its images).",
        ),
        dg.AssetSpec(
            "instruction_pairs",
            deps=[structured_reports],
            group_name="reports",
            description="Instruction-response records: report generation, patient explanation, QA on "
            "location/size/category, multi-turn dialogue; 8:2 by patient.",
        ),
    ]
)
def vision_language_data(
    context: dg.AssetExecutionContext, paths: PathsResource, profile: ProfileResource, dvc: DvcResource
):
    centers, left_out = cleared_centers(context, [structured_reports_valid])
    records = [
        r for c in centers for r in read_jsonl(paths.output("structured_reports", c) / STRUCTURED_FILE)
    ]
    pairs, instructions = build_instruction_data(records, seed=profile.seed)
    image_centers, _ = cleared_centers(context, [deidentified_no_identifiers])
    links = _accession_to_study(paths, image_centers)
    for pair in pairs:
        pair["study"] = links.get(pair["image"])
    pairs_dir, instr_dir = paths.output("vl_pairs"), paths.output("instruction_pairs")
    write_jsonl(pairs_dir / PAIRS_FILE, pairs)
    write_jsonl(instr_dir / INSTRUCTIONS_FILE, instructions)
    yield dg.MaterializeResult(
        asset_key="vl_pairs",
        metadata={
            "pairs": len(pairs),
            "centers": dg.MetadataValue.json(centers),
            "centers_left_out": dg.MetadataValue.json(left_out),
            "linked_to_study": sum(p["study"] is not None for p in pairs),
            "split": dg.MetadataValue.json(dict(Counter(p["split"] for p in pairs))),
            **versioned(pairs_dir, paths, dvc),
        },
    )
    yield dg.MaterializeResult(
        asset_key="instruction_pairs",
        metadata={
            "records": len(instructions),
            "tasks": dg.MetadataValue.json(dict(Counter(r["task"] for r in instructions))),
            "split": dg.MetadataValue.json(dict(Counter(r["split"] for r in instructions))),
            **versioned(instr_dir, paths, dvc),
        },
    )


# -- gating checks -----------------------------------------------------------------------------------------


def structured_gate(records: Sequence[Mapping[str, Any]], planted: Sequence[str], sent: bool = True) -> Gate:
    """One row per structured report: schema/vocabulary problems, and identifiers left in it (the patterns a
    report may carry, such as phone or ID numbers, and a synthetic cohort's planted values). At least one
    record unless the center sent no report table (``sent`` False)."""
    frame = pd.DataFrame(
        {
            "problems": [len(validate_structured([r])) for r in records],
            "identifiers": [len(check_no_identifiers([r], planted)) for r in records],
        }
    )
    return Gate(
        frame,
        [
            gx.expectations.ExpectTableRowCountToBeBetween(min_value=1 if sent else 0),
            gx.expectations.ExpectColumnValuesToBeBetween(column="problems", min_value=0, max_value=0),
            gx.expectations.ExpectColumnValuesToBeBetween(column="identifiers", min_value=0, max_value=0),
        ],
    )


def training_text_gate(
    records: Sequence[Mapping[str, Any]], planted: Sequence[str], image_sides: Mapping[str, str] | None = None
) -> Gate:
    """One row per training record: patient, split, identifiers found, on how many sides its patient lies.

    With ``image_sides`` (patient → split side of its normalised slices), the records are image-report
    pairs: also whether each is linked to a study and lies on the side of its patient's images.
    """
    frame = pd.DataFrame(
        {
            "patient": [r["patient"] for r in records],
            "split": [r["split"] for r in records],
            "identifiers": [len(check_no_identifiers([r], planted)) for r in records],
        }
    )
    frame["sides"] = frame.groupby("patient")["split"].transform("nunique")
    expectations = [
        gx.expectations.ExpectTableRowCountToBeBetween(min_value=1),
        gx.expectations.ExpectColumnValuesToBeBetween(column="identifiers", min_value=0, max_value=0),
        gx.expectations.ExpectColumnValuesToBeBetween(column="sides", min_value=1, max_value=1),
        gx.expectations.ExpectColumnValuesToBeInSet(column="split", value_set=["train", "val"]),
    ]
    if image_sides is not None:
        frame["linked"] = [r["study"] is not None for r in records]
        frame["image_side_agrees"] = [
            image_sides.get(r["patient"], r["split"]) == r["split"] for r in records
        ]
        expectations += [
            gx.expectations.ExpectColumnValuesToBeInSet(
                column="linked", value_set=[True], mostly=MIN_LINKED_PAIRS
            ),
            gx.expectations.ExpectColumnValuesToBeInSet(column="image_side_agrees", value_set=[True]),
        ]
    return Gate(frame, expectations)


def _image_sides(paths: PathsResource) -> dict[str, str]:
    """Patient pseudonym → split side of its normalised slices, over all centers."""
    sides: dict[str, str] = {}
    for index in sorted(paths.output("normalized_slices").glob(f"*/{INDEX_FILE}")):
        frame = pd.read_parquet(index, columns=["patient", "split"]).drop_duplicates()
        sides.update(zip(frame["patient"], frame["split"], strict=True))
    return sides


def _planted(context: dg.AssetCheckExecutionContext) -> list[str]:
    return RawLayout(context.resources.paths.raw).planted_identifiers()


structured_reports_valid = gx_asset_check(
    asset=structured_reports,
    name="schema_vocabulary_identifiers",
    description="Every record has the documented schema and vocabulary, and no identifier (patterns such as "
    "phone and ID numbers, a synthetic cohort's planted values) in its text.",
    gate=lambda context: structured_gate(
        read_jsonl(
            context.resources.paths.output("structured_reports", context.partition_key) / STRUCTURED_FILE
        ),
        _planted(context),
        sent=(RawLayout(context.resources.paths.raw).reports / f"{context.partition_key}.jsonl").is_file(),
    ),
    required_resource_keys={"paths"},
    partitions_def=CENTERS,
)
vl_pairs_valid = gx_asset_check(
    asset="vl_pairs",
    name="no_identifiers_split_linked",
    description=f"No identifier in any training text, no patient on both sides (nor on another side than its "
    f"images), ≥{MIN_LINKED_PAIRS:.0%} linked to a study.",
    gate=lambda context: training_text_gate(
        read_jsonl(context.resources.paths.output("vl_pairs") / PAIRS_FILE),
        _planted(context),
        _image_sides(context.resources.paths),
    ),
    required_resource_keys={"paths"},
)
instruction_pairs_valid = gx_asset_check(
    asset="instruction_pairs",
    name="no_identifiers_split",
    description="No identifier in any instruction or response, no patient on both sides of the split.",
    gate=lambda context: training_text_gate(
        read_jsonl(context.resources.paths.output("instruction_pairs") / INSTRUCTIONS_FILE), _planted(context)
    ),
    required_resource_keys={"paths"},
)
