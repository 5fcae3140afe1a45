"""Gating checks of the per-center ingestion: manifest, de-identified export and normalised slices.

Each gate is a function of the asset's output on disk (tests/checks/ feeds them bad outputs); the checks
only find that output for the partition.
"""

# No `from __future__ import annotations` in asset modules: Dagster reads parameter annotations at runtime.

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import great_expectations as gx
import nibabel as nib
import numpy as np
import pandas as pd
import polars as pl
from great_expectations.expectations.row_conditions import Column
from pydicom import dcmread

from assets.gating import gx_asset_check
from assets.ingest import DEIDENTIFIED_STUDIES, DICOM_MANIFEST, MANIFEST_FILE, NORMALIZED_SLICES
from assets.partitions import CENTERS
from assets.resources import PathsResource
from brainfm.dicom import find_identifiers_in_tree
from brainfm.dicom.reading import SEQUENCE_TYPES
from brainfm.imaging.shards import INDEX_FILE, QC_FILE
from brainfm.raw_layout import RawLayout
from brainfm.validation import Gate

# At least this share of a center's files must be readable: the tiny cohort plants a few bad files per
# center (at most 2.6 %, center_a); more points to a broken export or a transfer still in progress.
MIN_READABLE_FILES = 0.9
# A T1/T2/FLAIR/DWI series with fewer slices is a localizer or an incomplete transfer, not a brain volume
# (7 mm slices need 14 to cover 100 mm of brain; the tiny cohort's series have 15 to 44).
MIN_SERIES_SLICES = 8
# In-plane pixel spacing of a brain MR image (mm): outside it the header is wrong (units, a scout's field of
# view) and resampling to 256×256 distorts the anatomy. Tiny cohort: 1.2 to 2.6 mm.
PIXEL_SPACING_MM = (0.2, 5.0)

# A normalised slice is a head in air: foreground (≥ 10 % of full scale) covers 1 % to 75 % of it (tiny
# cohort: 3.5 % to 46 %; uniform uint8 noise: 90 %), the 8-pixel border is dark (mean ≤ 40; tiny cohort at
# most 12.3, noise 127) and the foreground is not saturated (mean ≤ 220; tiny cohort 39 to 164).
FOREGROUND_LEVEL = 26
FOREGROUND_FRACTION = (0.01, 0.75)
BORDER_PIXELS = 8
MAX_BORDER_MEAN = 40.0
MAX_FOREGROUND_MEAN = 220.0
_STATS_CHUNK = 256  # slices per pass over a memory-mapped shard: 16 MiB at a time
_STATS = ["foreground_fraction", "foreground_mean", "border_mean"]

# A center whose QC excludes more than half of its slices has a systematic problem (wrong sequence, broken
# export, failing coil) that a person must look at before its data trains anything. The tiny cohort's worst
# center (center_d: old 1.5 T scanner, high noise) loses 40 % (noise 20 %, out of brain 21 %).
MAX_QC_EXCLUSION_RATE = 0.5

# A de-identified NIfTI file is named by pseudonymous keys only: <patient>/<study UID>/<series UID>/<sequence>.nii.
_NIFTI_NAME = re.compile(rf"P[A-Z2-7]+/2\.25\.\d+/2\.25\.\d+/({'|'.join(SEQUENCE_TYPES)})\.nii")


# -- dicom_manifest ----------------------------------------------------------------------------------------


def manifest_gate(manifest: pl.DataFrame) -> Gate:
    """One row per input file: status, instance key, sequence, the slices of its series (frames of the
    series' readable files) and pixel spacing."""
    frame = manifest.select(
        "status",
        "instance",
        "sequence",
        pl.when(pl.col("status") == "ok")
        .then("frames")
        .otherwise(0)
        .sum()
        .over("series")
        .alias("series_slices"),
        "row_spacing_mm",
        "column_spacing_mm",
    ).to_pandas()
    low, high = PIXEL_SPACING_MM
    return Gate(
        frame,
        [
            gx.expectations.ExpectTableRowCountToBeBetween(min_value=1),
            gx.expectations.ExpectColumnValuesToBeInSet(
                column="status", value_set=["ok"], mostly=MIN_READABLE_FILES
            ),
            gx.expectations.ExpectColumnValuesToBeUnique(
                column="instance", row_condition=Column("status") == "ok"
            ),
            gx.expectations.ExpectColumnValuesToBeBetween(
                column="series_slices",
                min_value=MIN_SERIES_SLICES,
                # Brain series only: "other" (localizers, …) and "unknown" (unlabelled even by content) may be short.
                row_condition=Column("sequence").is_in(["T1", "T2", "FLAIR", "DWI"]),
            ),
            # Null spacing is not judged (GX skips nulls): absent, 1 mm is assumed; invalid, the series is not
            # normalised.
            gx.expectations.ExpectColumnValuesToBeBetween(
                column="row_spacing_mm", min_value=low, max_value=high
            ),
            gx.expectations.ExpectColumnValuesToBeBetween(
                column="column_spacing_mm", min_value=low, max_value=high
            ),
        ],
    )


# -- deidentified_studies ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class LeakGateReport:
    """What `deidentified_studies`' own leak gate reported for the published export (its metadata): files
    exported and searched, and files holding their patient's original values."""

    exported: int
    identifier_hits: int


def deid_gate(root: Path, planted: Sequence[str], leak_gate: LeakGateReport | None) -> Gate:
    """One row per file of a de-identified export: format, PatientIdentityRemoved, method codes (DICOM),
    whether it is named by its new UIDs / pseudonymous keys, the cohort's planted identifiers in it, and the
    leak gate's hit count for the export (null when the export has no leak-gate report).

    The planted identifiers are a synthetic cohort's (a site's data lists none). What holds on a hospital's
    data is the leak gate, which searched each file for its own patient's original values before publishing:
    this gate requires its report, with no hit, to cover exactly the files on disk, so a file that entered
    the folder any other way fails it.
    """
    hits = Counter(hit.path for hit in find_identifiers_in_tree(root, planted))
    rows = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root).as_posix()
        rows.append({**_file_row(path, rel), "planted_hits": hits[rel]})
    frame = pd.DataFrame(
        rows, columns=["format", "identity_removed", "method_codes", "named_by_uids", "planted_hits"]
    )
    frame["leak_gate_hits"] = None if leak_gate is None else leak_gate.identifier_hits
    return Gate(
        frame,
        [
            gx.expectations.ExpectTableRowCountToBeBetween(min_value=1),
            # No report: 0 files expected, which a non-empty export fails (an empty one fails the row above).
            gx.expectations.ExpectTableRowCountToEqual(value=leak_gate.exported if leak_gate else 0),
            gx.expectations.ExpectColumnValuesToNotBeNull(column="leak_gate_hits"),
            gx.expectations.ExpectColumnValuesToBeBetween(column="leak_gate_hits", min_value=0, max_value=0),
            gx.expectations.ExpectColumnValuesToBeInSet(column="format", value_set=["dicom", "nifti"]),
            gx.expectations.ExpectColumnValuesToBeInSet(column="identity_removed", value_set=["YES"]),
            gx.expectations.ExpectColumnValuesToBeInSet(
                column="method_codes", value_set=[True], row_condition=Column("format") == "dicom"
            ),
            gx.expectations.ExpectColumnValuesToBeInSet(column="named_by_uids", value_set=[True]),
            gx.expectations.ExpectColumnValuesToBeBetween(column="planted_hits", min_value=0, max_value=0),
        ],
    )


def _file_row(path: Path, rel: str) -> dict[str, object]:
    """The profile flags of one exported file. A NIfTI file has no method codes; it counts as de-identified
    when its free-text header fields are empty and it carries no extensions."""
    if path.suffix == ".dcm":
        ds = dcmread(path, stop_before_pixels=True)
        return {
            "format": "dicom",
            "identity_removed": str(ds.get("PatientIdentityRemoved", "")),
            "method_codes": "DeidentificationMethodCodeSequence" in ds,
            "named_by_uids": rel.split("/")[0] == str(ds.get("StudyInstanceUID"))
            and path.stem == str(ds.get("SOPInstanceUID")),
        }
    if path.suffix == ".nii":
        header = nib.load(path).header
        text = b"".join(
            bytes(header[k].tobytes()).strip(b"\0 ") for k in ("descrip", "aux_file", "intent_name")
        )
        return {
            "format": "nifti",
            "identity_removed": "NO" if text or header.extensions else "YES",
            "method_codes": None,
            "named_by_uids": _NIFTI_NAME.fullmatch(rel) is not None,
        }
    return {"format": "other", "identity_removed": None, "method_codes": None, "named_by_uids": False}


def _leak_gate_report(context: dg.AssetCheckExecutionContext) -> LeakGateReport | None:
    """The leak gate's counts from the latest materialization of the partition (None when it has none)."""
    records = context.instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=DEIDENTIFIED_STUDIES, asset_partitions=[context.partition_key]),
        limit=1,
    ).records
    event = records[0].asset_materialization if records else None
    meta = event.metadata if event else {}
    if "exported" not in meta or "identifier_hits" not in meta:
        return None
    return LeakGateReport(int(meta["exported"].value), int(meta["identifier_hits"].value))  # type: ignore[arg-type]


# -- normalized_slices -------------------------------------------------------------------------------------


def slice_format_gate(root: Path) -> Gate:
    """One row per stored slice: its shard's slice shape and dtype, foreground fraction and mean, border mean."""
    frames = []
    for shard in sorted(root.glob("shard-*.npy")):
        arr = np.load(shard, mmap_mode="r")
        stats = _slice_stats(arr)
        stats["shape"] = "×".join(map(str, arr.shape[1:]))
        stats["dtype"] = str(arr.dtype)
        frames.append(stats)
    frame = (
        pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=[*_STATS, "shape", "dtype"])
    )
    low, high = FOREGROUND_FRACTION
    return Gate(
        frame,
        [
            gx.expectations.ExpectTableRowCountToBeBetween(min_value=1),
            gx.expectations.ExpectColumnValuesToBeInSet(column="shape", value_set=["256×256"]),
            gx.expectations.ExpectColumnValuesToBeInSet(column="dtype", value_set=["uint8"]),
            gx.expectations.ExpectColumnValuesToBeBetween(
                column="foreground_fraction", min_value=low, max_value=high
            ),
            gx.expectations.ExpectColumnValuesToBeBetween(column="border_mean", max_value=MAX_BORDER_MEAN),
            # NaN (no foreground pixel) would pass the range: GX skips it as null.
            gx.expectations.ExpectColumnValuesToNotBeNull(column="foreground_mean"),
            gx.expectations.ExpectColumnValuesToBeBetween(
                column="foreground_mean", max_value=MAX_FOREGROUND_MEAN
            ),
        ],
    )


def _slice_stats(arr: np.ndarray) -> pd.DataFrame:
    """Foreground fraction and mean (NaN without foreground) and border mean of each slice of ``arr[n, h, w]``."""
    b, parts = BORDER_PIXELS, []
    for start in range(0, len(arr), _STATS_CHUNK):
        chunk = np.asarray(arr[start : start + _STATS_CHUNK])
        n = len(chunk)
        foreground = chunk >= FOREGROUND_LEVEL
        count = np.count_nonzero(foreground, axis=(1, 2))
        total = (chunk * foreground).sum(axis=(1, 2), dtype=np.float64)
        border = [chunk[:, :b], chunk[:, -b:], chunk[:, b:-b, :b], chunk[:, b:-b, -b:]]
        border_sum = sum(part.reshape(n, -1).sum(axis=1, dtype=np.float64) for part in border)
        with np.errstate(invalid="ignore"):
            foreground_mean = total / count  # NaN without foreground
        parts.append(
            pd.DataFrame(
                {
                    "foreground_fraction": count / foreground[0].size,
                    "foreground_mean": foreground_mean,
                    "border_mean": border_sum / sum(part[0].size for part in border),
                }
            )
        )
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=_STATS)


def split_gate(root: Path) -> Gate:
    """One row per patient of the index: on how many sides of the split its slices lie."""
    index = pl.read_parquet(root / INDEX_FILE)
    frame = index.group_by("patient").agg(pl.col("split").n_unique().alias("sides")).to_pandas()
    return Gate(
        frame,
        [
            gx.expectations.ExpectTableRowCountToBeBetween(min_value=1),
            gx.expectations.ExpectColumnValuesToBeBetween(column="sides", min_value=1, max_value=1),
        ],
    )


def qc_gate(root: Path) -> Gate:
    """One row: the share of slices QC excluded, and the slices kept."""
    kept, excluded = pl.read_parquet(root / INDEX_FILE).height, pl.read_parquet(root / QC_FILE).height
    frame = pd.DataFrame({"exclusion_rate": [excluded / max(kept + excluded, 1)], "kept": [kept]})
    return Gate(
        frame,
        [
            gx.expectations.ExpectColumnValuesToBeBetween(
                column="exclusion_rate", min_value=0, max_value=MAX_QC_EXCLUSION_RATE
            ),
            gx.expectations.ExpectColumnValuesToBeBetween(column="kept", min_value=1),
        ],
    )


# -- the checks --------------------------------------------------------------------------------------------


def _output(context: dg.AssetCheckExecutionContext, asset: str) -> Path:
    paths: PathsResource = context.resources.paths
    return paths.output(asset, context.partition_key)


_CHECKS = {"required_resource_keys": {"paths"}, "partitions_def": CENTERS}
dicom_manifest_readable = gx_asset_check(
    asset=DICOM_MANIFEST,
    name="files_readable_series_complete",
    description=f"≥{MIN_READABLE_FILES:.0%} of files readable, unique instance keys, ≥{MIN_SERIES_SLICES} slices "
    f"in every T1/T2/FLAIR/DWI series, pixel spacing within {PIXEL_SPACING_MM} mm.",
    gate=lambda context: manifest_gate(pl.read_parquet(_output(context, "dicom_manifest") / MANIFEST_FILE)),
    **_CHECKS,
)
deidentified_no_identifiers = gx_asset_check(
    asset=DEIDENTIFIED_STUDIES,
    name="no_identifiers",
    description="The leak gate searched exactly the files on disk and found no original value of their "
    "patients; every file says PatientIdentityRemoved=YES (DICOM: with method codes), is named by its new "
    "UIDs or pseudonymous keys, and holds none of the identifiers a synthetic cohort planted.",
    gate=lambda context: deid_gate(
        _output(context, "deidentified_studies"),
        RawLayout(context.resources.paths.raw).planted_identifiers(),
        _leak_gate_report(context),
    ),
    **_CHECKS,
)
normalized_format = gx_asset_check(
    asset=NORMALIZED_SLICES,
    name="slice_format",
    description=f"Every slice is 256×256 uint8 and looks like a head in air: foreground on "
    f"{FOREGROUND_FRACTION[0]:.0%}–{FOREGROUND_FRACTION[1]:.0%} of it, a dark border (mean ≤ {MAX_BORDER_MEAN:.0f}), "
    f"a foreground that is not saturated (mean ≤ {MAX_FOREGROUND_MEAN:.0f}).",
    gate=lambda context: slice_format_gate(_output(context, "normalized_slices")),
    **_CHECKS,
)
normalized_split = gx_asset_check(
    asset=NORMALIZED_SLICES,
    name="split_by_patient",
    description="The index has patients, and none has slices on both sides of the 8:2 split.",
    gate=lambda context: split_gate(_output(context, "normalized_slices")),
    **_CHECKS,
)
normalized_qc_rate = gx_asset_check(
    asset=NORMALIZED_SLICES,
    name="qc_exclusion_rate",
    description=f"QC excludes at most {MAX_QC_EXCLUSION_RATE:.0%} of a center's slices, and some slices are kept.",
    gate=lambda context: qc_gate(_output(context, "normalized_slices")),
    **_CHECKS,
)
