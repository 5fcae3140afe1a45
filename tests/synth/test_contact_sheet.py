"""The contact sheet command draws every category with lesion outlines."""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib.image as mpimg

from brainfm.synth import cli


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
