"""Throughput of report structuring (de-identification + parsing) on one CPU core.

Times :func:`brainfm.reports.structure_report` over the hand-written test set repeated to at least
``--n`` reports, in one process pinned to one core where the OS allows it, and prints reports per second.

    .venv/bin/python bench/reports.py --n 20000
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

from brainfm.jsonl import read_jsonl
from brainfm.reports import structure_report

HANDWRITTEN = Path(__file__).parents[1] / "tests" / "data" / "reports" / "handwritten.jsonl"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20_000, help="number of reports to structure (default 20000)")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    texts = [r["text"] for r in read_jsonl(HANDWRITTEN)]
    reps = -(-args.n // len(texts))
    work = texts * reps
    structure_report(texts[0])  # compile the patterns outside the timing
    start, cpu_start = time.perf_counter(), time.process_time()
    for text in work:
        structure_report(text)
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    chars = sum(map(len, work)) / len(work)
    # CPU time is the fair figure on a shared machine: wall time also counts waiting for the core.
    print(f"{len(work)} reports (mean {chars:.0f} characters) on one core: {seconds:.2f} s wall, {cpu_seconds:.2f} s CPU; "
          f"{len(work) / seconds:,.0f} reports/s wall, {len(work) / cpu_seconds:,.0f} reports/s per CPU-second "
          f"({platform.machine()}, {os.cpu_count()} cores visible, Python {platform.python_version()})")


if __name__ == "__main__":
    main()
