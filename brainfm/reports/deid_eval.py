"""Scoring text de-identification against a set of reports with their planted identifiers labelled.

A record is ``{"id", "style", "text", "identifiers": [{"text", "kind", "position"}]}``. The predictions are
:func:`brainfm.reports.deid_text.identifier_spans` of the text (patterns only: no known identifiers given).

- Recall, per kind and over all: each listed entry counts once. Entries of one text (case-insensitively) are
  paired, in order, with its occurrences in the report when there are as many of each (a set that lists
  every occurrence); otherwise each entry needs every occurrence covered (one leak anywhere is a miss). An
  occurrence is recalled when predicted spans cover all its characters.
- Precision: a predicted span is correct when it overlaps an occurrence of a listed identifier (span
  level); at character level, the predicted characters that lie inside such occurrences.

- Stored leaks (:func:`stored_leaks`): the share of a report's distinct identifiers that still reach what the
  pipeline stores of it (the findings and impression of :func:`brainfm.reports.structure.structure_report`,
  de-identified and minimised): the residual risk, as opposed to recall over the whole text.

Each rate carries a 95% Wilson score interval. Misses (id, kind, position) and false positives (id, the
masked string) are listed for debugging; the set's identifiers are fictional.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from scipy.stats import binomtest

from brainfm.reports.deid_text import Span, identifier_spans
from brainfm.reports.structure import structure_report


@dataclass(frozen=True)
class Rate:
    """``hits`` of ``total``, with a 95% Wilson score interval (NaN when ``total`` is 0)."""

    hits: int
    total: int

    @property
    def value(self) -> float:
        return self.hits / self.total if self.total else math.nan

    @property
    def ci95(self) -> tuple[float, float]:
        if not self.total:
            return math.nan, math.nan
        ci = binomtest(self.hits, self.total).proportion_ci(confidence_level=0.95, method="wilson")
        return float(ci.low), float(ci.high)

    def to_json(self) -> dict[str, Any]:
        return {"hits": self.hits, "total": self.total, "value": self.value, "ci95": list(self.ci95)}

    def __str__(self) -> str:
        low, high = self.ci95
        return f"{self.value:.3f} ({self.hits}/{self.total}; 95% CI {low:.3f}–{high:.3f})"


@dataclass(frozen=True)
class Miss:
    id: str
    kind: str
    position: str


@dataclass(frozen=True)
class FalsePositive:
    id: str
    masked: str


@dataclass(frozen=True)
class DeidScores:
    n_reports: int
    recall: dict[str, Rate]  # per kind, and "all"
    span_precision: Rate
    char_precision: Rate
    misses: list[Miss] = field(default_factory=list)
    false_positives: list[FalsePositive] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "n_reports": self.n_reports,
            "recall": {kind: rate.to_json() for kind, rate in self.recall.items()},
            "span_precision": self.span_precision.to_json(),
            "char_precision": self.char_precision.to_json(),
            "misses": [vars(m) for m in self.misses],
            "false_positives": [vars(f) for f in self.false_positives],
        }

    def markdown(self) -> str:
        """The scores as a markdown table, then the misses and false positives."""
        rows = [("recall: " + kind, rate) for kind, rate in self.recall.items()]
        rows += [("precision: spans", self.span_precision), ("precision: characters", self.char_precision)]
        lines = ["| measure | value | hits / total | 95% CI (Wilson) |", "|---|---|---|---|"]
        for name, rate in rows:
            low, high = rate.ci95
            lines.append(f"| {name} | {rate.value:.3f} | {rate.hits} / {rate.total} | {low:.3f}–{high:.3f} |")
        lines.append("")
        lines.append(
            "Misses (id, kind, position): "
            + (", ".join(f"{m.id} {m.kind} {m.position}" for m in self.misses) or "none")
        )
        lines.append(
            "False positives (id, masked): "
            + (", ".join(f"{f.id} {f.masked}" for f in self.false_positives) or "none")
        )
        return "\n".join(lines)


def occurrences(text: str, needle: str) -> list[range]:
    """Where ``needle`` occurs in ``text``, case-insensitively (how a listed identifier is found)."""
    return [range(*m.span()) for m in re.finditer(re.escape(needle), text, re.IGNORECASE)]


def _entry_occurrences(rid: str, text: str, entries: list[Mapping[str, Any]]) -> list[list[range]]:
    """For each entry, the occurrences it must have covered (see the module)."""
    by_text: dict[str, list[int]] = {}
    for i, entry in enumerate(entries):
        by_text.setdefault(entry["text"].lower(), []).append(i)
    needed: list[list[range]] = [[] for _ in entries]
    for indices in by_text.values():
        found = occurrences(text, entries[indices[0]]["text"])
        if not found:
            entry = entries[indices[0]]
            raise ValueError(
                f"record {rid}: a {entry['kind']} identifier ({entry.get('position', '?')}) is not in its text; "
                "fix the label so that it quotes the text exactly."
            )
        paired = len(found) == len(indices)
        for k, i in enumerate(indices):
            needed[i] = [found[k]] if paired else found
    return needed


def score_deid(
    records: Iterable[Mapping[str, Any]], spans: Callable[[str], list[Span]] = identifier_spans
) -> DeidScores:
    """Recall per kind and precision of ``spans`` (by default :func:`identifier_spans`) on labelled ``records``
    (see the module)."""
    recalled: dict[str, list[int]] = {}  # kind -> [hits, total]
    span_hits = span_total = char_hits = char_total = n = 0
    misses: list[Miss] = []
    false_positives: list[FalsePositive] = []
    for record in records:
        n += 1
        rid, text = str(record["id"]), record["text"]
        predicted = spans(text)
        masked = {i for a, b, _ in predicted for i in range(a, b)}
        entries = list(record["identifiers"])
        gold: set[int] = set()
        for entry, occurrences in zip(entries, _entry_occurrences(rid, text, entries), strict=True):
            gold.update(i for occurrence in occurrences for i in occurrence)
            hit = all(set(occurrence) <= masked for occurrence in occurrences)
            counts = recalled.setdefault(entry["kind"], [0, 0])
            counts[0] += hit
            counts[1] += 1
            if not hit:
                misses.append(Miss(rid, entry["kind"], str(entry.get("position", ""))))
        for a, b, _ in predicted:
            correct = any(i in gold for i in range(a, b))
            span_hits += correct
            if not correct:
                false_positives.append(FalsePositive(rid, text[a:b]))
        char_hits += len(masked & gold)
        char_total += len(masked)
        span_total += len(predicted)
    if n == 0:
        raise ValueError("No records to score: check the identifier set file.")
    recall = {kind: Rate(*counts) for kind, counts in sorted(recalled.items())}
    recall["all"] = Rate(sum(r.hits for r in recall.values()), sum(r.total for r in recall.values()))
    return DeidScores(
        n, recall, Rate(span_hits, span_total), Rate(char_hits, char_total), misses, false_positives
    )


def stored_leaks(records: Iterable[Mapping[str, Any]]) -> tuple[Rate, list[Miss]]:
    """Of each record's distinct listed identifiers (case-insensitively), those whose text occurs in the stored
    findings or impression of its structured report; a string that is also an ordinary word of the stored text
    counts as a leak too (an upper bound). Returns the rate and the leaks (id, kind, position)."""
    leaks: list[Miss] = []
    total = 0
    for record in records:
        sections = structure_report(record["text"], str(record["id"])).sections
        stored = f"{sections.findings}\n{sections.impression}".lower()
        distinct = {str(entry["text"]).lower(): entry for entry in record["identifiers"]}
        total += len(distinct)
        leaks += [
            Miss(str(record["id"]), entry["kind"], str(entry.get("position", "")))
            for lowered, entry in distinct.items()
            if lowered in stored
        ]
    return Rate(len(leaks), total), leaks
