"""Report structuring: one free-text report in, one structured, de-identified record out.

The engine is rules over a lexicon (fast, and every decision can be traced to a cue or keyword): the text
is de-identified first and parsed only in its de-identified form, split into sections, then into clauses
whose polarity decides what counts. Categories, sites and sizes come from asserted (or hedged) clauses of
sentences that report something abnormal; negated clauses give ``negated_findings``; statements of normal
anatomy (中线结构居中) give nothing.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from brainfm.jsonl import atomic_text
from brainfm.pseudonym import Pseudonymizer, center_patient_key
from brainfm.reports.categories import find_categories
from brainfm.reports.deid_text import deidentify_text, identifier_kinds
from brainfm.reports.lexicon import CATEGORIES, LATERALITIES, LOCATIONS
from brainfm.reports.locations import SiteMention, find_sites, laterality
from brainfm.reports.minimise import clinical_sections
from brainfm.reports.negation import clauses
from brainfm.reports.sections import Sections, split_sections
from brainfm.reports.sizes import sizes_mm
from brainfm.reports.terms import Concept, map_terms, term_list

# What a stored record keeps: the findings and impression and what was read from them, never the rest of the
# report (headers, demographics, signatures, notifications), which holds most identifiers and which nothing
# downstream reads. Data minimisation on top of de-identification: on a hand-written set of unseen formats,
# storing the sections alone halved the identifiers the masking missed (docs/BENCHMARKS.md).
OUTPUT_KEYS = (
    "id", "sections", "categories", "laterality", "locations", "largest_size_mm", "negated_findings", "terms",
)


@dataclass(frozen=True)
class StructuredReport:
    """A parsed report; ``text_deid`` (the whole de-identified text, for inspection) is not stored."""

    id: str
    sections: Sections
    categories: list[str]
    laterality: str | None
    locations: list[str]
    largest_size_mm: float | None
    negated_findings: list[str]
    text_deid: str
    terms: list[Concept] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The output line as a JSON-ready mapping (keys in ``OUTPUT_KEYS`` order)."""
        return {
            "id": self.id,
            "sections": {"findings": self.sections.findings, "impression": self.sections.impression},
            "categories": self.categories,
            "laterality": self.laterality,
            "locations": self.locations,
            "largest_size_mm": self.largest_size_mm,
            "negated_findings": self.negated_findings,
            "terms": [t.to_json() for t in self.terms],
        }


def structure_report(text: str, report_id: str = "", identifiers: Iterable[str] = ()) -> StructuredReport:
    """Structure one report. ``identifiers`` are known identifying strings of the study (patient name, IDs,
    dates from the DICOM header), removed on top of the pattern-based de-identification."""
    text_deid = deidentify_text(text, identifiers)
    sections = clinical_sections(split_sections(text_deid))
    # The impression is read first: the primary category is the one the radiologist concludes with.
    impression = clauses(sections.impression)
    findings = clauses(sections.findings, first_sentence=impression[-1].sentence + 1 if impression else 0)
    parsed = impression + findings
    abnormal = {c.sentence for c in parsed if c.has_finding}
    asserted = [c.asserted for c in parsed if c.asserted and c.sentence in abnormal]
    sites: list[SiteMention] = [s for text_ in asserted for s in find_sites(text_)]
    locations = list(dict.fromkeys(s.location for s in sites if s.location))
    sizes = [mm for text_ in asserted for mm in sizes_mm(text_)]
    return StructuredReport(
        id=report_id,
        sections=sections,
        categories=find_categories(asserted),
        laterality=laterality(sites),
        locations=locations,
        largest_size_mm=max(sizes) if sizes else None,
        negated_findings=list(dict.fromkeys(c.negated for c in parsed if c.negated)),
        text_deid=text_deid,
        terms=map_terms(asserted, locations),
    )


@dataclass
class Summary:
    """What :func:`structure_jsonl` did: lines read, records written, and quarantined lines with reasons."""

    n_read: int = 0
    n_written: int = 0
    quarantined: list[tuple[int, str]] = field(default_factory=list)  # (1-based line number, reason)
    categories: dict[str, int] = field(default_factory=dict)  # primary category -> count


def structure_jsonl(
    in_path: Path | str, out_path: Path | str, pseudonymizer: Pseudonymizer | None = None, center: str | None = None
) -> Summary:
    """Structure every ``{"id", "text"}`` line of ``in_path`` into ``out_path``.

    Optional input keys: ``patient_id`` (added to the known identifiers) and ``identifiers`` (a list of known
    identifying strings). With a ``pseudonymizer`` the output ``id`` is the keyed token of the input id and a
    ``patient`` key holds the pseudonym of ``patient_id`` within ``center`` (required then: the one the
    center's images get, `brainfm.pseudonym.center_patient_key`); without one the id is copied as is and no
    patient key is written. Lines that are not UTF-8 JSON objects with fields of these types (a non-empty string ``text``
    and ``id``) are quarantined with a reason, never written, and the run goes on. ``out_path`` is replaced
    whole (`brainfm.jsonl.atomic_text`), so an interrupted run leaves the previous output.
    """
    if pseudonymizer is not None and not center:
        raise ValueError("pseudonymising reports needs the center they come from, so patients link to its images")
    summary = Summary()
    with open(in_path, "rb") as src, atomic_text(out_path) as dst:
        for number, line in enumerate(src, start=1):
            if not line.strip():
                continue
            summary.n_read += 1
            out = _structure_line(line, pseudonymizer, center or "")
            if isinstance(out, str):
                summary.quarantined.append((number, out))
                continue
            dst.write(json.dumps(out, ensure_ascii=False) + "\n")
            summary.n_written += 1
            summary.categories[out["categories"][0]] = summary.categories.get(out["categories"][0], 0) + 1
    return summary


def _structure_line(line: bytes, pseudonymizer: Pseudonymizer | None, center: str) -> dict[str, Any] | str:
    """The output record of one input line, or the reason to quarantine it (never quoting the line)."""
    try:
        record = json.loads(line.decode("utf-8"))
    except UnicodeDecodeError:
        return "not UTF-8"
    except json.JSONDecodeError as exc:
        return f"not JSON: {exc.msg}"
    problem = _input_problem(record)
    if problem:
        return problem
    report_id, patient = str(record["id"]), str(record.get("patient_id") or "")
    known = [*(record.get("identifiers") or []), report_id, *([patient] if patient else [])]
    out = structure_report(record["text"], report_id, known).to_json()
    if pseudonymizer is not None:
        out["id"] = pseudonymizer.accession(report_id)
        if patient:
            out["patient"] = pseudonymizer.patient_id(center_patient_key(center, patient))
    return out


def _is_key(value: Any) -> bool:
    """A usable id: a non-empty string or an integer (not a bool)."""
    return isinstance(value, str | int) and not isinstance(value, bool) and bool(str(value).strip())


def _input_problem(record: Any) -> str | None:
    if not isinstance(record, dict):
        return "line is not a JSON object"
    if not _is_key(record.get("id")):
        return "missing or empty 'id' (a string or integer)"
    if not isinstance(record.get("text"), str) or not record["text"].strip():
        return "missing or empty 'text' (a string)"
    if record.get("patient_id") is not None and not _is_key(record["patient_id"]):
        return "'patient_id' is not a string or integer"
    identifiers = [] if record.get("identifiers") is None else record["identifiers"]
    if not isinstance(identifiers, list) or not all(isinstance(i, str) for i in identifiers):
        return "'identifiers' is not a list of strings"
    return None


def validate_structured(records: Iterable[Mapping[str, Any]], identifiers: Iterable[str] = ()) -> list[str]:
    """Every schema, vocabulary and de-identification problem in structured records ([] when valid)."""
    records = list(records)
    problems: list[str] = []
    codes = {c.code for c in term_list().concepts}
    for i, r in enumerate(records):
        where = f"record {i}"  # never the id: unpseudonymised, it is an accession number
        missing = [k for k in OUTPUT_KEYS if k not in r]
        if missing:
            problems.append(f"{where}: missing keys {missing}")
            continue
        sections = r["sections"]
        if not isinstance(sections, Mapping) or not all(isinstance(sections.get(k), str) for k in ("findings", "impression")):
            problems.append(f"{where}: sections must hold string 'findings' and 'impression'")
        cats = r["categories"]
        if not isinstance(cats, list) or not cats or any(c not in CATEGORIES for c in cats):
            problems.append(f"{where}: categories {cats!r} must be a non-empty subset of {list(CATEGORIES)}")
        elif "normal" in cats and len(cats) > 1:
            problems.append(f"{where}: 'normal' must stand alone, got {cats}")
        if r["laterality"] not in LATERALITIES:
            problems.append(f"{where}: laterality {r['laterality']!r} not in {list(LATERALITIES)}")
        bad = [x for x in r["locations"] if x not in LOCATIONS] if isinstance(r["locations"], list) else [r["locations"]]
        if bad:
            problems.append(f"{where}: locations {bad} not in the location vocabulary")
        size = r["largest_size_mm"]
        if size is not None and not (isinstance(size, int | float) and math.isfinite(size) and size > 0):
            problems.append(f"{where}: largest_size_mm must be null or a positive number of mm, got {size!r}")
        if not isinstance(r["negated_findings"], list) or not all(isinstance(x, str) for x in r["negated_findings"]):
            problems.append(f"{where}: negated_findings must be a list of strings")
        unknown = [t for t in r["terms"] if not isinstance(t, Mapping) or t.get("code") not in codes]
        if unknown:
            problems.append(f"{where}: terms {unknown} are not in the term list")
    problems += check_no_identifiers(records, identifiers)
    return problems


# Keys hold pseudonyms (hex or base32 tokens) and terms hold ontology codes: digit patterns would flag them,
# so only known identifiers are looked for there.
_NOT_FREE_TEXT = re.compile(r"^\.(?:id|image|patient)$|\.code$")


def check_no_identifiers(records: Iterable[Mapping[str, Any]], identifiers: Iterable[str] = ()) -> list[str]:
    """A problem for every identifier found in any string of any record (structured reports, image-report
    pairs and instruction records alike), searching nested lists and mappings. A problem names the record,
    the identifier's kind and the field path, never the identifier."""
    known = list(identifiers)
    problems: list[str] = []
    for i, record in enumerate(records):
        for path, text in _strings(record, ""):
            for kind in identifier_kinds(text, known, patterns=not _NOT_FREE_TEXT.search(path)):
                problems.append(f"record {i}: {kind} identifier left in {path or 'text'}")
    return problems


def _strings(value: Any, path: str) -> Iterable[tuple[str, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, Mapping):
        for k, v in value.items():
            yield from _strings(v, f"{path}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _strings(v, f"{path}[{i}]")
