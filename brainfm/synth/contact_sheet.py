"""Contact sheet: one row per category, one column per sequence, lesion outline drawn (a visual check).

Reads only what a cohort folder holds (manifest.json, labels, DICOM and masks), so it also checks the
written files rather than the generator's memory.
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: the sheet is written to a file
import matplotlib.pyplot as plt
import nibabel as nib
import numpy as np
import polars as pl
import pydicom

from brainfm.synth.profiles import CATEGORIES, SEQUENCES


def read_series(series_dir: Path, b_value: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Frames of a classic or enhanced MR series as (slices, rows, cols) real-world values, and the
    slice positions along the patient's z axis (mm), sorted inferior to superior. Files that are not
    readable images (planted bad files) are skipped. ``b_value`` selects DWI frames."""
    frames: list[tuple[float, np.ndarray]] = []
    for path in sorted(p for p in series_dir.iterdir() if p.is_file()):
        try:
            ds = pydicom.dcmread(path)
            pixels = ds.pixel_array.astype(np.float32)
        except (pydicom.errors.InvalidDicomError, AttributeError, ValueError, EOFError, OSError):
            continue
        if "PerFrameFunctionalGroupsSequence" in ds:
            shared = ds.SharedFunctionalGroupsSequence[0]
            slope = float(shared.PixelValueTransformationSequence[0].RescaleSlope)
            for item, frame in zip(ds.PerFrameFunctionalGroupsSequence, pixels, strict=True):
                b = int(item.MRDiffusionSequence[0].DiffusionBValue)
                if b_value is None or b == b_value:
                    frames.append(
                        (float(item.PlanePositionSequence[0].ImagePositionPatient[2]), frame * slope)
                    )
        elif b_value is None or int(ds.get("DiffusionBValue", 0)) == b_value:
            frames.append((float(ds.ImagePositionPatient[2]), pixels * float(ds.get("RescaleSlope", 1.0))))
    frames.sort(key=lambda f: f[0])
    return np.stack([f for _, f in frames]), np.array([z for z, _ in frames])


def _pick_studies(raw_dir: Path, manifest: dict) -> dict[str, dict]:
    """Per category, the study with the largest lesion mask (any study for ``normal``), preferring studies
    without a burned-in series."""
    burned = set(manifest["burned_in"])
    stamped = [a for a, s in manifest["studies"].items() if any(x["dir"] in burned for x in s["series"])]
    labels = pl.read_parquet(raw_dir / "tables" / "labels.parquet").with_columns(
        stamped=pl.col("accession").is_in(stamped)
    )
    chosen = {}
    for category in CATEGORIES:
        rows = labels.filter(pl.col("category") == category).sort(
            ["stamped", "largest_size_mm"], descending=[False, True], nulls_last=True
        )
        if rows.height:
            chosen[category] = rows.row(0, named=True)
    return chosen


def make_contact_sheet(raw_dir: Path, out_png: Path) -> Path:
    """Write a PNG with one row per category and one column per sequence (DWI at its highest b-value)."""
    raw_dir, out_png = Path(raw_dir), Path(out_png)
    manifest = json.loads((raw_dir / "manifest.json").read_text(encoding="utf-8"))
    picks = _pick_studies(raw_dir, manifest)
    burned = set(manifest["burned_in"])
    fig, axes = plt.subplots(
        len(picks), len(SEQUENCES), figsize=(2.6 * len(SEQUENCES), 2.7 * len(picks)), squeeze=False
    )
    for row, (category, label) in enumerate(picks.items()):
        study = manifest["studies"][label["accession"]]
        mask = None
        if label["mask"]:
            image = nib.load(raw_dir / label["mask"])
            mask = np.asarray(image.dataobj).transpose(2, 1, 0)  # -> (slices, rows, cols)
            k = int(np.argmax((mask > 0).sum(axis=(1, 2))))
            z = float(image.affine[2, 3] + k * image.affine[2, 2])
        for col, seq in enumerate(SEQUENCES):
            ax = axes[row, col]
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(seq + (" b1000" if seq == "DWI" else ""), fontsize=10)
            series = next(s for s in study["series"] if s["sequence"] == seq)
            if series["dir"] in burned:  # a name, ID and date are stamped on its pixels: never read or drawn
                ax.text(0.5, 0.5, "withheld:\nburned-in text", ha="center", va="center", fontsize=8)
                continue
            volume, zs = read_series(
                raw_dir / series["dir"], max(series["b_values"]) if series["b_values"] else None
            )
            k_img = int(np.argmin(np.abs(zs - z))) if mask is not None else len(zs) // 2
            img = volume[k_img]
            ax.imshow(
                img,
                cmap="gray",
                extent=(0, 1, 1, 0),
                vmin=np.percentile(img, 1),
                vmax=np.percentile(img, 99.5),
            )
            if mask is not None and mask[k].any():
                ax.contour(
                    np.linspace(0, 1, mask.shape[2]),
                    np.linspace(0, 1, mask.shape[1]),
                    mask[k] > 0,
                    levels=[0.5],
                    colors="red",
                    linewidths=0.7,
                )
        axes[row, 0].set_ylabel(f"{category}\n{label['subtype']}\n{label['center']}", fontsize=8)
    fig.suptitle(
        f"synthetic cohort {manifest['profile']} seed {manifest['seed']} (red: lesion mask)", fontsize=10
    )
    fig.tight_layout()
    out_png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_png, dpi=80)
    plt.close(fig)
    return out_png
