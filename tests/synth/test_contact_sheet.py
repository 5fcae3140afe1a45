"""The contact sheet command draws every category with lesion outlines, and never a burned-in series."""

from __future__ import annotations

import argparse
import os
import shutil
from pathlib import Path

import matplotlib.image as mpimg
import polars as pl

from brainfm.synth import cli
from brainfm.synth.contact_sheet import _pick_studies, make_contact_sheet


def test_synth_sheet_command_draws_outlines(raw: Path, tmp_path: Path) -> None:
    out = tmp_path / "sheet.png"
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers())
    args = parser.parse_args(["synth-sheet", "--raw", str(raw), "--out", str(out)])
    assert args.func(args) == 0
    image = mpimg.imread(out)
    assert image.shape[0] > 1.5 * image.shape[1]  # 8 category rows x 4 sequence columns
    red = (image[..., 0] > 0.8) & (image[..., 1] < 0.3) & (image[..., 2] < 0.3)
    assert red.sum() > 200


def _view(raw: Path, manifest: dict, dst: Path, drop: list[str]) -> Path:
    """A cohort folder linking to ``raw``'s files, less the burned-in series (reading one fails) and the
    label rows of the ``drop`` accessions."""
    shutil.copytree(raw / "dicom", dst / "dicom", copy_function=os.symlink)
    for series in manifest["burned_in"]:
        shutil.rmtree(dst / series)
    (dst / "masks").symlink_to(raw / "masks")
    shutil.copy(raw / "manifest.json", dst / "manifest.json")
    (dst / "tables").mkdir()
    labels = pl.read_parquet(raw / "tables" / "labels.parquet")
    labels.filter(~pl.col("accession").is_in(drop)).write_parquet(dst / "tables" / "labels.parquet")
    return dst


def test_the_sheet_never_reads_a_series_with_burned_in_identifiers(
    raw: Path, manifest: dict, tmp_path: Path
) -> None:
    burned = set(manifest["burned_in"])
    stamped = next(a for a, s in manifest["studies"].items() if any(x["dir"] in burned for x in s["series"]))
    labels = pl.read_parquet(raw / "tables" / "labels.parquet")
    row = labels.filter(pl.col("accession") == stamped).row(0, named=True)
    same = labels.filter((pl.col("category") == row["category"]) & (pl.col("accession") != stamped))
    larger = same.filter(pl.col("largest_size_mm") > row["largest_size_mm"])["accession"].to_list()
    assert 0 < len(larger) < same.height  # the tiny cohort has studies on both sides of the stamped one

    # The stamped study has the largest lesion of its category: a clean study is drawn instead.
    preferred = _view(raw, manifest, tmp_path / "preferred", larger)
    assert _pick_studies(preferred, manifest)[row["category"]]["accession"] != stamped
    make_contact_sheet(preferred, tmp_path / "preferred.png")

    # The stamped study is the only one of its category: drawn with its burned-in series withheld.
    only = _view(raw, manifest, tmp_path / "only", same["accession"].to_list())
    assert _pick_studies(only, manifest)[row["category"]]["accession"] == stamped
    make_contact_sheet(only, tmp_path / "only.png")
    assert (tmp_path / "only.png").stat().st_size > 0
