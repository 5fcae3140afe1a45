"""``brainfm deid INPUT_DIR OUTPUT_DIR [--quarantine-dir Q]``: de-identification only, for sites that want it."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from brainfm.dicom.center import deidentify_center
from brainfm.pseudonym import Pseudonymizer
from brainfm.secrets import load_secret


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "deid",
        help="de-identify a folder of DICOM files (PS3.15 Annex E); bad files are quarantined",
        description=(
            "De-identify every DICOM file under INPUT_DIR into OUTPUT_DIR, named "
            "<study>/<series>/<instance>.dcm by new UIDs. The secret key comes from BRAINFM_DEID_SECRET or "
            "BRAINFM_DEID_SECRET_FILE. Files that cannot be read or may show burned-in text are listed in "
            "Q/quarantine.jsonl (which names original paths and therefore never goes into OUTPUT_DIR)."
        ),
    )
    p.add_argument("input_dir", type=Path, metavar="INPUT_DIR")
    p.add_argument("output_dir", type=Path, metavar="OUTPUT_DIR")
    p.add_argument("--quarantine-dir", type=Path, default=None, metavar="Q",
                   help="folder for quarantine.jsonl (default: OUTPUT_DIR's sibling OUTPUT_DIR.quarantine)")
    p.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    out: Path = args.output_dir
    quarantine_dir = args.quarantine_dir or out.with_name(out.name + ".quarantine")
    summary = deidentify_center(
        args.input_dir, out, quarantine_dir / "quarantine.jsonl", Pseudonymizer(load_secret()), args.workers
    )
    print(summary.line())
    if summary.identifier_hits:
        print(
            f"{summary.identifier_hits} exported file(s) still hold identifying values of their patient: do not "
            f"share {out}; find the attributes that carry them and extend the de-identification profile.",
            file=sys.stderr,
        )
        return 2
    return 0
