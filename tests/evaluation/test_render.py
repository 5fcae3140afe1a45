"""Rendering a report to a full-page PNG with headless Chromium, and the ``brainfm render-report`` command."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
import pytest
from matplotlib.figure import Figure
from PIL import Image

from brainfm.evaluation import cli
from brainfm.evaluation.bootstrap import Estimate
from brainfm.evaluation.html_report import Count, Provenance, Report
from brainfm.evaluation.render import CHROMIUM_ENV, find_chromium, page_height, render_png


def _has_chromium() -> bool:
    try:
        find_chromium()
    except FileNotFoundError:
        return False
    return True


# CI sets BRAINFM_REQUIRE_BROWSER and installs Chromium: there a missing browser fails instead of skipping.
needs_browser = pytest.mark.skipif(
    not os.environ.get("BRAINFM_REQUIRE_BROWSER") and not _has_chromium(),
    reason="no Chromium (install Debian's `chromium`, or set BRAINFM_CHROMIUM)",
)

RED_INCHES = (3.0, 1.0)  # figure size; saved with matplotlib's 0.1 inch padding, shown at 96 CSS px per inch
RED_PX = (round(3.2 * 96), round(1.2 * 96))  # 307 x 115


def _report_ending_in_a_red_figure(folder: Path) -> Path:
    """A report taller than a default window whose last block is a solid red 307 x 115 px figure."""
    report = Report("Render check", Provenance(synthetic=True, source="synthetic cohort, profile tiny"))
    section = report.section("results", "Results", "Numbers with their intervals.")
    rows = [[f"model {i}", Estimate(0.8, 0.7, 0.9, 50, 200), Count(50)] for i in range(30)]
    section.key_number("AUC", Estimate(0.8, 0.7, 0.9, 50, 200)).table(
        rows, ["Model", "AUC", "Patients"], "Many rows"
    )
    red = Figure(figsize=RED_INCHES, facecolor="red")
    red.add_axes((0, 0, 1, 1)).set_axis_off()
    section.figure(red, "A solid red block", source={"colour": "red"})
    return report.write(folder).html


@needs_browser
def test_render_png_captures_the_whole_page_at_the_requested_width(tmp_path: Path) -> None:
    html = _report_ending_in_a_red_figure(tmp_path)
    png = render_png(html, tmp_path / "out" / "report.png", width=900)
    with Image.open(png) as image:
        pixels = np.asarray(image.convert("RGB")).astype(int)
    height = page_height(html, width=900)
    assert pixels.shape == (height, 900, 3)
    assert height > 1200  # 30 table rows: taller than any default window
    assert pixels.std() > 20  # not blank
    assert (pixels[0, 0] == 255).all()  # white page background
    banner = (np.abs(pixels - [0xFF, 0xF4, 0xD6]).sum(axis=2) <= 6).sum()  # the amber synthetic banner
    assert banner > 900 * 20
    # The last block is on the image whole: a 307 x 115 px red rectangle (anti-aliased edges aside).
    red = (pixels[..., 0] > 200) & (pixels[..., 1] < 60) & (pixels[..., 2] < 60)
    rows = np.flatnonzero(red.any(axis=1))
    assert red.sum() == pytest.approx(RED_PX[0] * RED_PX[1], rel=0.03)
    assert np.ptp(rows) + 1 == pytest.approx(RED_PX[1], abs=2)
    assert rows.max() < height - 20  # with its caption and the page padding below it


@needs_browser
def test_cli_writes_the_png_beside_the_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    html = _report_ending_in_a_red_figure(tmp_path)
    parser = argparse.ArgumentParser(prog="brainfm")
    cli.register(parser.add_subparsers())
    args = parser.parse_args(["render-report", str(html), "--width", "640"])
    assert args.func(args) == 0
    png = html.with_suffix(".png")
    assert f"wrote {png.resolve()}" in capsys.readouterr().out
    with Image.open(png) as image:
        assert image.width == 640


def test_a_missing_browser_is_explained(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv(CHROMIUM_ENV, raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="apt-get install chromium"):
        find_chromium()
    monkeypatch.setenv(CHROMIUM_ENV, str(tmp_path / "no-such-chromium"))
    html = _report_ending_in_a_red_figure(tmp_path)
    parser = argparse.ArgumentParser(prog="brainfm")
    cli.register(parser.add_subparsers())
    args = parser.parse_args(["render-report", str(html), "--out", str(tmp_path / "x.png")])
    assert args.func(args) == 2
    assert f"{CHROMIUM_ENV}=" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()


def test_a_missing_report_is_explained(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no HTML file"):
        render_png(tmp_path / "absent.html", tmp_path / "absent.png")
