"""Per-center drift features: one row per study, from what the ingest already wrote.

Row unit: a **study** (one patient visit). The series of a study share their patient, scanner and protocol, so
per-series rows would be dependent and make every two-sample test anti-conservative (false alarms far above
its level); studies of different patients are independent. Each study's series are summarised per sequence
(T1, T2, FLAIR, DWI) in columns named ``<sequence>_<feature>``.

Columns (``FeatureColumns`` groups them):

- image, per sequence, from a bounded sample of the series' normalised slices (``slices_per_series``, spread
  evenly): ``p10``/``p50``/``p90`` foreground intensity percentiles ([0, 255]), ``foreground`` (fraction of
  pixels ≥ ``FOREGROUND_LEVEL``), ``snr`` (mean foreground / Immerkær noise sigma of the slice, median over the
  sample), ``qc_excluded`` (share of the series' slices QC excluded: ``qc.parquet`` vs ``index.parquet``);
- header, from one de-identified file per series: ``manufacturer``, ``model``, ``field_strength_t``,
  ``transfer_syntax`` (categorical, the study's most common), ``pixel_spacing_mm`` and ``slice_thickness_mm``
  (median over the study's series), ``<sequence>_tr_ms``, ``_te_ms``, ``_ti_ms``;
- report, from the structured report whose ``id`` is the study's (pseudonymised) AccessionNumber:
  ``category`` (first category, ``normal`` if none), ``laterality``, ``site`` (first location, ``none``),
  ``n_sites``, ``largest_size_mm`` (null when the report states none; ``no_report`` in the categorical columns
  of a study without report).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from statistics import median

import numpy as np
import pandas as pd
import polars as pl
from pydicom import dcmread

from brainfm.imaging.qc import noise_sigma
from brainfm.imaging.shards import INDEX_FILE, QC_FILE, open_slices
from brainfm.jsonl import read_jsonl

SEQUENCES: tuple[str, ...] = ("T1", "T2", "FLAIR", "DWI")
FOREGROUND_LEVEL = 26  # [0, 255]: ≥ 10 % of full scale is head, as in the ingest checks
IMAGE_FEATURES: tuple[str, ...] = ("p10", "p50", "p90", "foreground", "snr", "qc_excluded")
TIMING_FEATURES: tuple[str, ...] = ("tr_ms", "te_ms", "ti_ms")
HEADER_CATEGORICAL: tuple[str, ...] = ("manufacturer", "model", "field_strength_t", "transfer_syntax")
HEADER_NUMERICAL: tuple[str, ...] = ("pixel_spacing_mm", "slice_thickness_mm")
REPORT_CATEGORICAL: tuple[str, ...] = ("category", "laterality", "site")
REPORT_NUMERICAL: tuple[str, ...] = ("n_sites", "largest_size_mm")
NO_REPORT = "no_report"
_HEADER_TAGS = [
    "AccessionNumber", "Manufacturer", "ManufacturerModelName", "MagneticFieldStrength", "RepetitionTime",
    "EchoTime", "InversionTime", "PixelSpacing", "SliceThickness",
]  # fmt: skip


@dataclass(frozen=True)
class FeatureColumns:
    """The feature columns by source and type (a frame holds those of them it has values for)."""

    image: tuple[str, ...]
    header_numerical: tuple[str, ...]
    header_categorical: tuple[str, ...]
    report_numerical: tuple[str, ...]
    report_categorical: tuple[str, ...]

    @property
    def numerical(self) -> tuple[str, ...]:
        return self.image + self.header_numerical + self.report_numerical

    @property
    def categorical(self) -> tuple[str, ...]:
        return self.header_categorical + self.report_categorical


COLUMNS = FeatureColumns(
    image=tuple(f"{s}_{f}" for s in SEQUENCES for f in IMAGE_FEATURES),
    header_numerical=HEADER_NUMERICAL + tuple(f"{s}_{f}" for s in SEQUENCES for f in TIMING_FEATURES),
    header_categorical=HEADER_CATEGORICAL,
    report_numerical=REPORT_NUMERICAL,
    report_categorical=REPORT_CATEGORICAL,
)


def image_features(slices: np.ndarray) -> dict[str, float]:
    """Intensity percentiles of the foreground ([0, 255]), foreground fraction and SNR of uint8 slices
    ``(n, 256, 256)`` (the image columns but ``qc_excluded``)."""
    stack = slices.astype(np.float32)
    head = stack >= FOREGROUND_LEVEL
    values = stack[head]
    if values.size == 0:
        return {"p10": 0.0, "p50": 0.0, "p90": 0.0, "foreground": 0.0, "snr": 0.0}
    p10, p50, p90 = np.percentile(values, [10, 50, 90])
    counts = head.sum(axis=(1, 2))
    signal = np.where(counts > 0, (stack * head).sum(axis=(1, 2)) / np.maximum(counts, 1), 0.0)
    snr = signal / np.maximum(noise_sigma(stack), 1e-3)  # noise floor: 1e-3 of a grey level
    return {
        "p10": float(p10),
        "p50": float(p50),
        "p90": float(p90),
        "foreground": float(head.mean()),
        "snr": float(np.median(snr[counts > 0])) if (counts > 0).any() else 0.0,
    }


def _sample_rows(n: int, k: int) -> np.ndarray:
    """``k`` row positions spread evenly over ``n`` (all of them when ``n ≤ k``): deterministic, no seed."""
    return np.unique(np.linspace(0, n - 1, num=min(n, k)).round().astype(int)) if n else np.array([], int)


def _series_images(slices_dir: Path, slices_per_series: int) -> pl.DataFrame:
    """One row per normalised series: study, sequence and its image features."""
    store = open_slices(slices_dir)
    index = store.index.with_row_index("position")
    qc = pl.read_parquet(slices_dir / QC_FILE) if (slices_dir / QC_FILE).is_file() else None
    excluded = Counter(qc["series"].to_list()) if qc is not None else Counter()
    rows = []
    for (study, series, sequence), group in index.sort("slice_index").group_by(
        ["study", "series", "sequence"], maintain_order=True
    ):
        positions = group["position"].to_numpy()[_sample_rows(group.height, slices_per_series)]
        kept = group.height
        rows.append(
            {
                "study": study,
                "series": series,
                "sequence": sequence,
                **image_features(np.stack([store[int(i)] for i in positions])),
                "qc_excluded": excluded[series] / (kept + excluded[series]),
            }
        )
    return pl.DataFrame(rows)


def _number(value: object) -> float | None:
    try:
        return float(value) if value not in (None, "") else None  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def _series_headers(deid_dir: Path) -> pl.DataFrame:
    """One row per de-identified series (``<study>/<series>/<instance>.dcm``): its first file's header."""
    rows = []
    for series_dir in sorted(p for p in deid_dir.glob("*/*") if p.is_dir()):
        first = next(iter(sorted(series_dir.glob("*.dcm"))), None)
        if first is None:
            continue
        ds = dcmread(first, stop_before_pixels=True, specific_tags=_HEADER_TAGS)
        spacing = ds.get("PixelSpacing")
        rows.append(
            {
                "study": series_dir.parent.name,
                "series": series_dir.name,
                "accession": str(ds.get("AccessionNumber", "")) or None,
                "manufacturer": str(ds.get("Manufacturer", "")) or None,
                "model": str(ds.get("ManufacturerModelName", "")) or None,
                "field_strength_t": (f"{fs:g}" if (fs := _number(ds.get("MagneticFieldStrength"))) else None),
                "transfer_syntax": str(ds.file_meta.get("TransferSyntaxUID", "")) or None,
                "pixel_spacing_mm": _number(spacing[0]) if spacing else None,
                "slice_thickness_mm": _number(ds.get("SliceThickness")),
                "tr_ms": _number(ds.get("RepetitionTime")),
                "te_ms": _number(ds.get("EchoTime")),
                "ti_ms": _number(ds.get("InversionTime")),
            }
        )
    return pl.DataFrame(rows, infer_schema_length=None)


def _most_common(values: Iterable[object]) -> object:
    present = [v for v in values if v is not None]
    return Counter(present).most_common(1)[0][0] if present else None


def _median(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return median(present) if present else None


def _report_fields(record: dict | None) -> dict[str, object]:
    if record is None:
        return {"category": NO_REPORT, "laterality": NO_REPORT, "site": NO_REPORT, "n_sites": None,
                "largest_size_mm": None}  # fmt: skip
    sites = record.get("locations") or []
    return {
        "category": (record.get("categories") or ["normal"])[0],
        "laterality": record.get("laterality") or "none",
        "site": sites[0] if sites else "none",
        "n_sites": float(len(sites)),
        "largest_size_mm": _number(record.get("largest_size_mm")),
    }


def center_features(
    slices_dir: Path, deid_dir: Path, reports_path: Path | None = None, *, slices_per_series: int = 8
) -> pd.DataFrame:
    """The drift features of one center, one row per study (index ``study``, the new StudyInstanceUID).

    ``slices_dir``: its ``normalized_slices`` folder; ``deid_dir``: its ``deidentified_studies`` folder;
    ``reports_path``: its ``structured.jsonl`` (None or absent: the report columns say ``no_report``).
    ``slices_per_series`` bounds the slices read per series (evenly spaced, so the result is deterministic).
    """
    if not (slices_dir / INDEX_FILE).is_file():
        raise FileNotFoundError(
            f"No {INDEX_FILE} in {slices_dir}: materialize the center's normalized_slices first."
        )
    images = _series_images(slices_dir, slices_per_series)
    headers = _series_headers(deid_dir)
    if images.is_empty() or headers.is_empty():
        raise ValueError(
            f"No normalised series in {slices_dir} or no de-identified series in {deid_dir}: a center needs "
            "both to be compared; check its ingest (quarantine list, QC exclusions)."
        )
    series = images.join(headers.drop("study"), on="series", how="left")
    reports = {}
    if reports_path is not None and reports_path.is_file():
        reports = {r["id"]: r for r in read_jsonl(reports_path)}
    rows = []
    for (study,), group in series.group_by(["study"], maintain_order=True):
        row: dict[str, object] = {"study": study}
        for column in HEADER_CATEGORICAL:
            row[column] = _most_common(group[column].to_list())
        for column in HEADER_NUMERICAL:
            row[column] = _median(group[column].to_list())
        for sequence in SEQUENCES:
            of_sequence = group.filter(pl.col("sequence") == sequence)
            for feature in IMAGE_FEATURES + TIMING_FEATURES:
                row[f"{sequence}_{feature}"] = _median(of_sequence[feature].to_list())
        row.update(_report_fields(reports.get(_most_common(group["accession"].to_list()))))
        rows.append(row)
    frame = pd.DataFrame(rows).set_index("study").sort_index()
    numerical = [c for c in COLUMNS.numerical if c in frame.columns]
    frame[numerical] = frame[numerical].astype("float64")  # absent values: NaN
    return frame[[c for c in COLUMNS.categorical if c in frame.columns] + numerical]
