"""``brainfm held-out-patients``: the downstream test patients, one pseudonym per line, for training runs
outside Dagster (``python -m models.train --exclude-patients FILE``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from brainfm.tables.held_out import held_out_patients


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("held-out-patients", help="list the held-out (downstream test) patients of a clinical_tables "
                       "output, which no training stage may see")
    p.add_argument("tables", type=Path, help="the clinical_tables output folder (data/clinical_tables)")
    p.add_argument("--out", type=Path, help="write to this file instead of standard output")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    if not (args.tables / "labels.parquet").is_file():
        print(f"error: {args.tables} holds no labels.parquet: pass the clinical_tables output folder", file=sys.stderr)
        return 2
    text = "".join(f"{p}\n" for p in sorted(held_out_patients(args.tables)))
    if args.out:
        args.out.write_text(text)
    else:
        sys.stdout.write(text)
    return 0
