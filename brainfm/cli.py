"""The ``brainfm`` command line. Each stage registers its own subcommand module in ``COMMAND_MODULES``."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from brainfm import __version__

# Each module exposes ``register(subparsers)``, adding one subcommand whose handler is set with
# ``parser.set_defaults(func=handler)``; the handler takes the parsed namespace and returns an exit code.
COMMAND_MODULES: tuple[str, ...] = (
    "brainfm.versioning_cli",
    "brainfm.dicom.cli",
    "brainfm.reports.cli",
    "brainfm.synth.cli",
    "brainfm.evaluation.cli",
    "brainfm.predict.cli",
    "brainfm.tables.cli",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="brainfm",
        description="Brain-MRI foundation-model pipeline: data preparation, training and evaluation tools.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    version = sub.add_parser("version", help="print the brainfm version")
    version.set_defaults(func=lambda _args: print(f"brainfm {__version__}") or 0)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
