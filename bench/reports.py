"""Throughput of report structuring (de-identification + parsing) on one CPU core, cold and warm.

Times :func:`brainfm.reports.structure_report` over the reports of ``--texts`` (the hand-written test set by
default) repeated to at least ``--n`` reports, in one process pinned to one core where the OS allows it, and
prints reports per second twice. Cold: the person-name recogniser's caches are cleared before each report, so
every report is text never seen, as when a hospital's archive is first read (repeating the set then repeats no
cached work). Warm: the caches kept from a first pass over the set, as for a hospital's repeated sentences;
on a repeated set this is an upper bound.

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
from brainfm.reports.person_names import clear_caches

HANDWRITTEN = Path(__file__).parents[1] / "tests" / "data" / "reports" / "handwritten.jsonl"


def _seconds(work: list[str], cold: bool) -> tuple[float, float]:
    """Wall and CPU seconds to structure ``work``; with ``cold``, the caches cleared (untimed) per report."""
    seconds = cpu_seconds = 0.0
    for text in work:
        if cold:
            clear_caches()
        start, cpu_start = time.perf_counter(), time.process_time()
        structure_report(text)
        seconds += time.perf_counter() - start
        cpu_seconds += time.process_time() - cpu_start
    return seconds, cpu_seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--n", type=int, default=20_000, help="number of reports to structure (default 20000)"
    )
    parser.add_argument(
        "--texts", type=Path, nargs="+", default=[HANDWRITTEN], help="JSONL files of reports (a text field)"
    )
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    texts = [r["text"] for path in args.texts for r in read_jsonl(path)]
    work = texts * -(-args.n // len(texts))
    chars = sum(map(len, texts)) / len(texts)
    for text in texts:  # compile the patterns, load the tagger and fill its caches outside the timing
        structure_report(text)
    print(
        f"{len(work)} reports ({len(texts)} distinct, mean {chars:.0f} characters) on one core "
        f"({platform.machine()}, {os.cpu_count()} cores visible, Python {platform.python_version()}):"
    )
    warm = _seconds(work, cold=False)
    cold = _seconds(work, cold=True)
    # CPU time is the fair figure on a shared machine: wall time also counts waiting for the core.
    for name, (seconds, cpu_seconds) in (("cold", cold), ("warm", warm)):
        print(
            f"  {name}: {seconds:.2f} s wall, {cpu_seconds:.2f} s CPU; {len(work) / seconds:,.0f} reports/s wall, "
            f"{len(work) / cpu_seconds:,.0f} reports per CPU-second ({cpu_seconds / len(work) * 1e3:.3f} ms/report)"
        )


if __name__ == "__main__":
    main()
