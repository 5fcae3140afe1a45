"""Text de-identification: recall and precision on a labelled identifier set, and time per report.

Scores :func:`brainfm.reports.deid_text.identifier_spans` on ``--set`` (see :mod:`brainfm.reports.deid_eval`)
and times :func:`brainfm.reports.deidentify_text` over the texts of ``--time`` on one core: the first pass
over texts never seen (jieba's tagger is loaded beforehand; its per-sentence cache starts empty) and later
passes (sentences cached, as a hospital's repeated sentences are). Prints markdown, or JSON with ``--json``.

    .venv/bin/python bench/deid_text.py
    .venv/bin/python bench/deid_text.py --json --repeats 20
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

from brainfm.jsonl import read_jsonl
from brainfm.reports import deidentify_text
from brainfm.reports.deid_eval import score_deid

DATA = Path(__file__).parents[1] / "tests" / "data" / "reports"


def _ms_per_report(texts: list[str]) -> float:
    start = time.process_time()  # CPU time: the fair figure on a shared machine
    for text in texts:
        deidentify_text(text)
    return (time.process_time() - start) / len(texts) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--set", type=Path, default=DATA / "deid_identifiers.jsonl", help="labelled identifier set"
    )
    parser.add_argument("--time", type=Path, default=DATA / "handwritten.jsonl", help="reports to time")
    parser.add_argument(
        "--repeats", type=int, default=10, help="cached passes over the timed reports (default 10)"
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of markdown")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    deidentify_text("报告医师：王芳")  # load the tagger outside the timing
    texts = [r["text"] for r in read_jsonl(args.time)]
    first = _ms_per_report(texts)
    cached = min(_ms_per_report(texts) for _ in range(args.repeats))
    scores = score_deid(read_jsonl(args.set))
    timing = {
        "reports_timed": len(texts),
        "mean_characters": sum(map(len, texts)) / len(texts),
        "ms_per_report_first_pass": first,
        "ms_per_report_cached": cached,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores visible, Python {platform.python_version()}",
    }
    if args.json:
        print(
            json.dumps(
                {"set": str(args.set), "scores": scores.to_json(), "timing": timing},
                ensure_ascii=False,
                indent=1,
            )
        )
        return
    print(f"## {args.set.name}: {scores.n_reports} reports\n")
    print(scores.markdown())
    print(
        f"\nTiming on {args.time.name} ({len(texts)} reports, mean {timing['mean_characters']:.0f} characters, one core, "
        f"CPU time): {first:.2f} ms per report on first sight, {cached:.2f} ms cached ({timing['machine']})."
    )


if __name__ == "__main__":
    main()
