"""``brainfm structure-reports``, ``brainfm score-reports`` and ``brainfm build-instructions``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from brainfm.pseudonym import Pseudonymizer
from brainfm.secrets import load_secret


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("structure-reports", help="structure and de-identify free-text reports (JSONL in, JSONL out)")
    p.add_argument("input", type=Path, help='JSONL, one {"id", "text"} per line (optional "patient_id", "identifiers")')
    p.add_argument("output", type=Path, help="JSONL of structured, de-identified reports")
    p.add_argument(
        "--pseudonymize",
        metavar="CENTER",
        help="replace ids by keyed tokens and add patient pseudonyms of this center's patients, the same as its "
        "images get (secret from BRAINFM_DEID_SECRET[_FILE])",
    )
    p.set_defaults(func=_structure)

    p = sub.add_parser("score-reports", help="score structured reports against labelled ones and print a table")
    p.add_argument("pred", type=Path, help="JSONL written by structure-reports")
    p.add_argument("gold", type=Path, help="JSONL with id, categories, laterality, locations, largest_size_mm, identifiers")
    p.set_defaults(func=_score)

    p = sub.add_parser("build-instructions", help="image-report pairs and instruction data from structured reports")
    p.add_argument("input", type=Path, help="JSONL written by structure-reports --pseudonymize")
    p.add_argument("outdir", type=Path, help="folder for pairs.jsonl and instructions.jsonl")
    p.add_argument("--seed", type=int, default=0, help="seed of the patient split and the phrasings (default 0)")
    p.set_defaults(func=_instructions)


def _structure(args: argparse.Namespace) -> int:
    from brainfm.reports.structure import structure_jsonl

    pseudonymizer = Pseudonymizer(load_secret()) if args.pseudonymize else None
    summary = structure_jsonl(args.input, args.output, pseudonymizer, center=args.pseudonymize)
    print(f"structured {summary.n_written} of {summary.n_read} reports into {args.output}; primary categories: {summary.categories}")
    for line, reason in summary.quarantined:
        print(f"quarantined line {line}: {reason}", file=sys.stderr)
    return 0 if summary.n_written or not summary.n_read else 1


def _score(args: argparse.Namespace) -> int:
    from brainfm.jsonl import read_jsonl
    from brainfm.reports.scoring import score_reports

    print(score_reports(read_jsonl(args.pred), read_jsonl(args.gold)).as_table())
    return 0


def _instructions(args: argparse.Namespace) -> int:
    from brainfm.jsonl import read_jsonl, write_jsonl
    from brainfm.reports.instructions import build_instruction_data
    from brainfm.reports.structure import check_no_identifiers

    pairs, instructions = build_instruction_data(read_jsonl(args.input), args.seed)
    problems = check_no_identifiers(pairs + instructions)
    if problems:
        print("\n".join(problems[:20]), file=sys.stderr)
        print(f"{len(problems)} identifiers found in the training text; nothing written.", file=sys.stderr)
        return 1
    for name, rows in (("pairs.jsonl", pairs), ("instructions.jsonl", instructions)):
        write_jsonl(args.outdir / name, rows)
    print(f"wrote {len(pairs)} pairs and {len(instructions)} instruction records into {args.outdir}")
    return 0
