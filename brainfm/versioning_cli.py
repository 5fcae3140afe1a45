"""``brainfm restore HASH DEST``: fetch any version recorded in Dagster metadata from the DVC cache or remote."""

from __future__ import annotations

import argparse
from pathlib import Path

from brainfm.versioning import DvcRepo


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("restore", help="restore a DVC-versioned output by its content hash")
    p.add_argument("md5", help="the dvc_md5 (or dvc_data_md5) from an asset's materialization metadata")
    p.add_argument("dest", type=Path, help="a new folder to restore into")
    p.add_argument("--repo", type=Path, default=Path("."), help="the project's DVC repository (default: .)")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    dest = DvcRepo(args.repo).restore(args.md5, args.dest)
    print(f"restored {args.md5} into {dest}")
    return 0
