"""Per-center ingestion in one pass: DICOM manifest, PS3.15 de-identification, 256×256 normalisation, each its
own asset and gated (checks in assets/ingest_checks.py)."""

# No `from __future__ import annotations` in asset modules: Dagster reads parameter annotations at runtime.

import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import dagster as dg
import numpy as np
import polars as pl

from assets.cohort import raw_cohort
from assets.figures import png_metadata
from assets.partitions import CENTERS
from assets.resources import DeidSecretResource, DvcResource, PathsResource, ProfileResource
from assets.versioning import versioned
from brainfm.imaging.shards import open_slices
from brainfm.ingest import NormalizeSummary, ingest_center
from brainfm.plots import slice_grid
from brainfm.raw_layout import RawLayout

MANIFEST_FILE = "manifest.parquet"
# The three outputs of `center_ingest`, for the assets and checks that depend on them.
DICOM_MANIFEST = dg.AssetKey("dicom_manifest")
DEIDENTIFIED_STUDIES = dg.AssetKey("deidentified_studies")
NORMALIZED_SLICES = dg.AssetKey("normalized_slices")


def _center_dir(paths: PathsResource, center: str) -> Path:
    return RawLayout(paths.raw).dicom / center


def _counts(values: pl.Series) -> dict[str, int]:
    return {str(k): int(v) for k, v in values.value_counts(sort=True).iter_rows()}


@dg.multi_asset(
    name="center_ingest",
    specs=[
        dg.AssetSpec(
            "dicom_manifest", deps=[raw_cohort], group_name="ingest",
            description="One row per input file: pseudonymous keys, sequence and where it came from (header, "
            "name, image content or none), geometry, transfer syntax, status (ok or the quarantine reason).",
        ),
        dg.AssetSpec(
            "deidentified_studies", deps=["dicom_manifest"], group_name="ingest",
            description="De-identified DICOM (PS3.15 basic profile + clean descriptors, modified dates and times, "
            "patient characteristics, safe private fields), named by new UIDs; bad files quarantined with "
            "reasons outside data/.",
        ),
        dg.AssetSpec(
            "normalized_slices", deps=["deidentified_studies", "dicom_manifest"], group_name="ingest",
            description="256×256 uint8 slices in [0,255] (RAS frame, robust window per series), QC exclusions "
            "with reasons, 8:2 split by patient; memory-mappable shards + index.parquet.",
        ),
    ],
    partitions_def=CENTERS,
)  # fmt: skip
def center_ingest(
    context: dg.AssetExecutionContext,
    paths: PathsResource,
    profile: ProfileResource,
    deid_secret: DeidSecretResource,
    dvc: DvcResource,
) -> Iterator[dg.MaterializeResult]:
    """One pass over a center's raw files (:func:`brainfm.dicom.ingest_center`, the path the benchmark measures):
    each file read and decoded once for the manifest, its de-identified copy and its normalised slices.

    Both trees are written outside ``data/`` (``quarantine/ingest/``) and enter it only if the leak gate found
    no original value of a patient in any export (:func:`publish_if_clean`)."""
    center = context.partition_key
    held = paths.quarantine / "ingest"  # untracked: trees are written and wait here until cleared
    staged = {name: held / f"{center}.{name}" for name in ("deidentified_studies", "normalized_slices")}
    summary = ingest_center(
        _center_dir(paths, center), staged["deidentified_studies"], staged["normalized_slices"],
        held / f"{center}.jsonl", center, deid_secret.pseudonymizer(), workers=profile.workers,
        seed=profile.seed, staging_dir=held, progress=_heartbeat(context, center),
    )  # fmt: skip
    context.log.info(summary.deid.line())
    manifest_dir = paths.output("dicom_manifest", center)
    manifest_dir.mkdir(parents=True, exist_ok=True)
    summary.manifest.write_parquet(manifest_dir / MANIFEST_FILE)  # pseudonymous keys only
    publish_if_clean(
        summary.deid.identifier_hits,
        [(tree, paths.output(name, center)) for name, tree in staged.items()],
        held / f"{center}.withheld",
    )
    manifest = summary.manifest
    yield dg.MaterializeResult(
        asset_key="dicom_manifest",
        metadata={
            "files": manifest.height,
            "status": dg.MetadataValue.json(_counts(manifest["status"])),
            "sequences": dg.MetadataValue.json(_counts(manifest.filter(pl.col("status") == "ok")["sequence"])),
            "sequence_sources": dg.MetadataValue.json(
                _counts(manifest.filter(pl.col("status") == "ok")["sequence_source"])
            ),
            "transfer_syntaxes": dg.MetadataValue.json(_counts(manifest["transfer_syntax"].fill_null("unknown"))),
            **versioned(manifest_dir, paths, dvc),
        },
    )
    deid = summary.deid
    yield dg.MaterializeResult(
        asset_key="deidentified_studies",
        metadata={
            "exported": deid.exported,
            "identifier_hits": deid.identifier_hits,
            "quarantined": deid.quarantined,
            "quarantine_reasons": dg.MetadataValue.json(dict(deid.reasons)),
            **versioned(paths.output("deidentified_studies", center), paths, dvc),
        },
    )
    yield _normalized_result(context, paths, profile, dvc, summary.normalize)


HEARTBEAT_SECONDS = 60.0  # raw_data_sensor fails a started ingest silent for 30 minutes: log well within it


def _heartbeat(context: dg.AssetExecutionContext, center: str) -> Callable[[int, int], None]:
    """A progress callback that logs at most once a minute (and at the end): a running ingest of a large center
    keeps writing events, so the raw-data sensor never takes it for a dead one."""
    last = time.monotonic()

    def log(done: int, total: int) -> None:
        nonlocal last
        if done == total or time.monotonic() - last >= HEARTBEAT_SECONDS:
            context.log.info(f"{center}: {done} of {total} folders ingested")
            last = time.monotonic()

    return log


def publish_if_clean(identifier_hits: int, staged: Sequence[tuple[Path, Path]], withheld: Path) -> None:
    """Move each staged tree (``staging``, ``out``) from outside ``data/`` to its place in it when the leak gate
    found no identifying value (``identifier_hits`` 0); otherwise move them under ``withheld`` and fail. A
    leaking export never enters ``data/`` (which DVC snapshots whole, also for other assets), and the previous
    outputs stay published until clean ones replace them."""
    if identifier_hits:
        shutil.rmtree(withheld, ignore_errors=True)
        withheld.mkdir(parents=True)
        for staging, out in staged:
            staging.rename(withheld / out.parent.name)
        raise dg.Failure(
            f"{identifier_hits} de-identified file(s) still hold identifying values of their patient or site; "
            f"the export was moved to {withheld} (untracked), the previous export is kept and nothing was "
            "versioned. Find the attributes that carry them (e.g. `brainfm deid` on one file, then a text "
            "search) and extend the de-identification profile."
        )
    for staging, out in staged:
        previous = staging.with_name(staging.name + ".previous")
        shutil.rmtree(previous, ignore_errors=True)
        if out.exists():
            shutil.move(out, previous)
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(staging, out)
        shutil.rmtree(previous, ignore_errors=True)


def _normalized_result(
    context: dg.AssetExecutionContext, paths: PathsResource, profile: ProfileResource, dvc: DvcResource,
    summary: NormalizeSummary,
) -> dg.MaterializeResult:  # fmt: skip
    """The normalised slices' metadata, with a preview of random slices."""
    center = context.partition_key
    out = paths.output("normalized_slices", center)
    store = open_slices(out)
    rng = np.random.default_rng(profile.seed)
    picks = (
        sorted(rng.choice(len(store), size=min(8, len(store)), replace=False).tolist()) if len(store) else []
    )
    index = store.index
    titles = [f"{index['sequence'][i]} {index['split'][i]}" for i in picks]
    grid = slice_grid(
        [store[i] for i in picks], titles, paths.outputs / "normalized_slices" / f"{center}.png"
    )
    return dg.MaterializeResult(
        asset_key="normalized_slices",
        metadata={
            "slices": summary.slices,
            "series": summary.series,
            "excluded": summary.excluded,
            "exclusion_reasons": dg.MetadataValue.json(dict(summary.exclusion_reasons)),
            "patients_per_split": dg.MetadataValue.json(dict(summary.patients)),
            "preview": png_metadata(grid, f"{center}: random normalised slices"),
            **versioned(out, paths, dvc),
        },
    )
