"""De-identification throughput: DICOM files per second for parse → PS3.15 de-identification → encode, in
memory on one core, for this tree and (``--against REV``) for an earlier commit in the same run.

    taskset -c 0 .venv/bin/python bench/deid.py --input DIR [--against REV] [--rounds 5]

Files are read into memory once; only the lean path's files are timed (little-endian, non-deflated transfer
syntaxes: nearly every MR export), so disk speed and pixel decoding stay out of the figure. With ``--against``
the commit is checked out in a temporary git worktree and both trees run in alternating rounds (each round a
fresh process, this tree first on odd rounds), because this shared VM's speed drifts within a minute; the
medians and their ratio are printed as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _one_round(folder: Path, seconds: float) -> dict[str, float]:
    """Files per second over ``folder`` for the ``brainfm`` on ``sys.path``, repeated for at least ``seconds``."""
    from brainfm.dicom.codec import Unsupported, encode, parse
    from brainfm.dicom.deid import Deidentifier
    from brainfm.pseudonym import Pseudonymizer

    blobs = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        data = path.read_bytes()
        try:
            parse(data)
        except Unsupported:
            continue
        blobs.append(data)
    deidentifier = Deidentifier(Pseudonymizer(b"bench-deid-secret-0123456789"), "bench")
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for data in blobs:
            encode(deidentifier(parse(data)))
        done += len(blobs)
    return {"files": len(blobs), "files_per_s": done / (time.perf_counter() - start)}


def _run(tree: Path, folder: Path, seconds: float) -> float:
    """One round in a fresh process whose ``brainfm`` is the one in ``tree``."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    code = (
        f"import sys, json; sys.path.insert(0, {str(tree)!r}); sys.path.insert(1, {str(ROOT / 'bench')!r}); "
        f"import deid; print(json.dumps(deid._one_round(__import__('pathlib').Path({str(folder)!r}), {seconds})))"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])["files_per_s"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input", type=Path, required=True, help="a folder of DICOM files (e.g. a cohort center)")
    parser.add_argument("--against", help="an earlier commit to time in the same run")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=5.0, help="timed seconds per round")
    args = parser.parse_args()
    trees = {"this": ROOT}
    with tempfile.TemporaryDirectory() as tmp:
        if args.against:
            trees[args.against] = Path(tmp) / "against"
            subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(trees[args.against]),
                            args.against], check=True, capture_output=True)  # fmt: skip
        try:
            rates: dict[str, list[float]] = {name: [] for name in trees}
            for r in range(args.rounds):
                for name in list(trees) if r % 2 == 0 else list(trees)[::-1]:
                    rates[name].append(_run(trees[name], args.input, args.seconds))
        finally:
            if args.against:
                subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(trees[args.against])],
                               check=True)  # fmt: skip
    medians = {name: statistics.median(v) for name, v in rates.items()}
    result = {"input": str(args.input), "rounds": rates, "median_files_per_s": medians}
    if args.against:
        result["ratio_this_over_against"] = medians["this"] / medians[args.against]
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
