"""``brainfm synth`` (generate the cohort) and ``brainfm synth-sheet`` (draw its contact sheet)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from brainfm.synth.profiles import PROFILES


def _synth(args: argparse.Namespace) -> int:
    from brainfm.synth.cohort import generate_cohort
    from brainfm.synth.contact_sheet import make_contact_sheet

    try:
        summary = generate_cohort(args.out, args.profile, args.seed, args.workers, args.n_patients)
    except (FileExistsError, ValueError) as err:
        print(f"brainfm synth: {err}", file=sys.stderr)
        return 2
    print(
        f"wrote {summary.n_patients} patients, {summary.n_series} series, {summary.n_dicom_files} DICOM files "
        f"({summary.n_frames} slices) to {summary.out_dir} in {summary.seconds:.1f} s"
    )
    if args.contact_sheet:
        print(f"contact sheet: {make_contact_sheet(args.out, args.contact_sheet)}")
    return 0


def _sheet(args: argparse.Namespace) -> int:
    from brainfm.synth.contact_sheet import make_contact_sheet

    print(f"contact sheet: {make_contact_sheet(args.raw, args.out)}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    synth = subparsers.add_parser(
        "synth",
        help="generate the synthetic multi-center brain-MRI cohort (DICOM, reports, tables, manifest)",
    )
    synth.add_argument("--profile", choices=sorted(PROFILES), default="tiny")
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--out", type=Path, required=True, help="output folder (must be empty or absent)")
    synth.add_argument("--workers", type=int, default=min(4, os.cpu_count() or 1), help="parallel processes")
    synth.add_argument("--n-patients", type=int, default=None, help="override the profile's patient count")
    synth.add_argument("--contact-sheet", type=Path, default=None, help="also write a contact sheet PNG here")
    synth.set_defaults(func=_synth)
    sheet = subparsers.add_parser(
        "synth-sheet", help="draw a contact sheet (category x sequence) of a raw cohort"
    )
    sheet.add_argument("--raw", type=Path, required=True, help="cohort folder written by `brainfm synth`")
    sheet.add_argument("--out", type=Path, required=True, help="PNG file to write")
    sheet.set_defaults(func=_sheet)
