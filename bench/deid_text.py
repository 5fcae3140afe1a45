"""Text de-identification: recall and precision on a labelled identifier set, and time per report.

Scores :func:`brainfm.reports.deid_text.identifier_spans` on ``--set`` (see :mod:`brainfm.reports.deid_eval`)
and times :func:`brainfm.reports.deidentify_text` over the texts of ``--time`` on one core: cold, as text never
seen (jieba's tagger is loaded beforehand; the person-name recogniser's caches are cleared before each report),
and cached (sentences cached by an earlier pass, as a hospital's repeated sentences are). Prints markdown, or
JSON with ``--json``.

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
from brainfm.reports.person_names import clear_caches

DATA = Path(__file__).parents[1] / "tests" / "data" / "reports"


def _ms_per_report(texts: list[str], cold: bool = False) -> float:
    """CPU milliseconds per report (the fair figure on a shared machine); with ``cold``, the caches cleared
    (untimed) before each report."""
    seconds = 0.0
    for text in texts:
        if cold:
            clear_caches()
        start = time.process_time()
        deidentify_text(text)
        seconds += time.process_time() - start
    return seconds / len(texts) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--set", type=Path, default=DATA / "deid_identifiers.jsonl", help="labelled identifier set"
    )
    parser.add_argument(
        "--time",
        type=Path,
        nargs="+",
        default=[DATA / "handwritten.jsonl", DATA / "deid_identifiers.jsonl"],
        help="JSONL files of reports to time",
    )
    parser.add_argument(
        "--repeats", type=int, default=10, help="cached passes over the timed reports (default 10)"
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of markdown")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    deidentify_text("报告医师：王芳")  # load the tagger outside the timing
    texts = [r["text"] for path in args.time for r in read_jsonl(path)]
    cold = _ms_per_report(texts, cold=True)
    _ms_per_report(texts)  # fill the caches
    cached = min(_ms_per_report(texts) for _ in range(args.repeats))
    scores = score_deid(read_jsonl(args.set))
    timing = {
        "reports_timed": len(texts),
        "mean_characters": sum(map(len, texts)) / len(texts),
        "ms_per_report_cold": cold,
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
        f"\nTiming on {', '.join(path.name for path in args.time)} ({len(texts)} reports, mean "
        f"{timing['mean_characters']:.0f} characters, one core, CPU time): {cold:.2f} ms per report cold "
        f"(never seen), {cached:.2f} ms cached ({timing['machine']})."
    )


if __name__ == "__main__":
    main()
