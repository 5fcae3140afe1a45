"""``brainfm render-report``: a full-page PNG of an HTML report, drawn by headless Chromium."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _render_report(args: argparse.Namespace) -> int:
    from brainfm.evaluation.render import render_png

    out = args.out or args.report.with_suffix(".png")
    try:
        png = render_png(args.report, out, width=args.width, timeout_s=args.timeout)
    except (FileNotFoundError, ValueError, RuntimeError, TimeoutError) as err:
        print(f"brainfm render-report: {err}", file=sys.stderr)
        return 2
    print(f"wrote {png}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "render-report", help="draw an HTML report as a full-page PNG with headless Chromium"
    )
    parser.add_argument("report", type=Path, metavar="REPORT.html", help="the HTML file to draw")
    parser.add_argument("--out", type=Path, default=None, help="PNG to write (default: REPORT.png beside it)")
    parser.add_argument("--width", type=int, default=1280, help="page width in pixels (default 1280)")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds allowed per Chromium run")
    parser.set_defaults(func=_render_report)
