"""Text de-identification: recall and precision on a labelled identifier set, and time per report.

Scores :func:`brainfm.reports.deid_text.identifier_spans` on ``--set`` (by default the sealed set, see
:mod:`brainfm.reports.deid_eval`) twice, with the rules alone and with the rules and the identifier tagger, and
times both over the texts of ``--time`` on one core: cold, as text never seen (jieba and the tagger are loaded
beforehand; the person-name recogniser's caches are cleared before each report), and cached (sentences cached
by an earlier pass, as a hospital's repeated sentences are), and counts the identifiers that still reach the
stored findings and impression (:func:`brainfm.reports.deid_eval.stored_leaks`). ``--cross-validate`` adds the tagger's
leave-one-set-out scores on the six sets it is trained on (a few minutes). Prints markdown, or JSON with
``--json``.

    .venv/bin/python bench/deid_text.py
    .venv/bin/python bench/deid_text.py --cross-validate --json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

from brainfm.jsonl import read_jsonl
from brainfm.reports.deid_eval import score_deid, stored_leaks
from brainfm.reports.deid_text import deidentify_text, identifier_spans
from brainfm.reports.identifier_tagger_training import DATA, TRAINING_SETS, cross_validate
from brainfm.reports.person_names import clear_caches

VARIANTS = {"rules": False, "rules + tagger": True}  # name -> learned


def _ms_per_report(spans: Callable[[str], object], texts: list[str], cold: bool = False) -> float:
    """CPU milliseconds per report (the fair figure on a shared machine); with ``cold``, the caches cleared
    (untimed) before each report."""
    seconds = 0.0
    for text in texts:
        if cold:
            clear_caches()
        start = time.process_time()
        spans(text)
        seconds += time.process_time() - start
    return seconds / len(texts) * 1e3


def _timing(spans: Callable[[str], object], texts: list[str], repeats: int) -> dict[str, float]:
    cold = _ms_per_report(spans, texts, cold=True)
    _ms_per_report(spans, texts)  # fill the caches
    return {
        "ms_per_report_cold": cold,
        "ms_per_report_cached": min(_ms_per_report(spans, texts) for _ in range(repeats)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--set", type=Path, default=DATA / "deid_identifiers_sealed.jsonl", help="labelled identifier set"
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
    parser.add_argument(
        "--cross-validate", action="store_true",
        help="also train a tagger on all but one of the training sets and score the one left out, for each",
    )  # fmt: skip
    parser.add_argument("--json", action="store_true", help="print JSON instead of markdown")
    args = parser.parse_args()
    folds = cross_validate({n: read_jsonl(DATA / n) for n in TRAINING_SETS}) if args.cross_validate else {}
    if hasattr(os, "sched_setaffinity"):  # the timings: one core
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    identifier_spans("报告医师：王芳")  # load jieba and the tagger outside the timing
    texts = [r["text"] for path in args.time for r in read_jsonl(path)]
    records = read_jsonl(args.set)
    results = {}
    for name, learned in VARIANTS.items():
        results[name] = {
            "scores": score_deid(records, spans=partial(identifier_spans, learned=learned)),
            "timing": _timing(partial(deidentify_text, learned=learned), texts, args.repeats),
        }
    stored, leaks = stored_leaks(records)
    machine = f"{platform.machine()}, {os.cpu_count()} cores visible, Python {platform.python_version()}"
    if args.json:
        out = {"set": str(args.set), "machine": machine, "reports_timed": len(texts)}
        out |= {n: {"scores": r["scores"].to_json(), "timing": r["timing"]} for n, r in results.items()}
        out["stored_leaks"] = {**stored.to_json(), "leaks": [vars(leak) for leak in leaks]}
        out["cross_validation"] = {h: {n: s.to_json() for n, s in v.items()} for h, v in folds.items()}
        print(json.dumps(out, ensure_ascii=False, indent=1))
        return
    print(f"## {args.set.name}: {len(records)} reports\n")
    for name, result in results.items():
        timing = result["timing"]
        print(f"### {name}\n\n{result['scores'].markdown()}\n")
        print(
            f"Timing on {', '.join(path.name for path in args.time)} ({len(texts)} reports, mean "
            f"{sum(map(len, texts)) / len(texts):.0f} characters, one core, CPU time): "
            f"{timing['ms_per_report_cold']:.2f} ms per report cold (never seen), "
            f"{timing['ms_per_report_cached']:.2f} ms cached ({machine}).\n"
        )
    print(
        f"### What is stored\n\nDistinct identifiers that reach the stored findings and impression (de-identified, "
        f"minimised; rules + tagger): {stored}. Leaks: {', '.join(f'{m.id} {m.kind} {m.position}' for m in leaks)}\n"
    )
    if folds:
        print("### Leave one set out: the tagger trained on the other sets\n")
        print(
            "| held-out set | variant | recall: all | recall: name | span precision |\n|---|---|---|---|---|"
        )
        for held_out, variants in folds.items():
            for name, scores in variants.items():
                print(
                    f"| {held_out} | {name} | {scores.recall['all']} | {scores.recall['name']} | "
                    f"{scores.span_precision} |"
                )


if __name__ == "__main__":
    main()
