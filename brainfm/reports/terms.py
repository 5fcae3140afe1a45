"""Professional terms: asserted findings and abnormal sites mapped to ontology concepts (SNOMED CT).

The term list (``terms.tsv``) is small and audited: every code was checked against a published value set
(DICOM CID 12105 for vessels; SNOMED CT disorder concepts as used by the MR-RATE pathology map). Concepts
without a confirmed code (hippocampal sclerosis, for one) are left out rather than guessed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from importlib import resources

from brainfm.reports.lexicon import LOCATIONS, alternation


@dataclass(frozen=True)
class Concept:
    system: str
    code: str
    concept: str

    def to_json(self) -> dict[str, str]:
        return {"concept": self.concept, "system": self.system, "code": self.code}


@dataclass(frozen=True)
class TermList:
    findings: dict[str, Concept]  # surface form -> concept
    sites: dict[str, Concept]  # location name -> concept
    pattern: re.Pattern[str]

    @property
    def concepts(self) -> frozenset[Concept]:
        return frozenset([*self.findings.values(), *self.sites.values()])


@cache
def term_list() -> TermList:
    """Load ``terms.tsv``; a site row must name a location of the vocabulary."""
    findings: dict[str, Concept] = {}
    sites: dict[str, Concept] = {}
    text = resources.files("brainfm.reports").joinpath("terms.tsv").read_text(encoding="utf-8")
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        kind, system, code, name, forms = line.split("\t")
        concept = Concept(system, code, name)
        for form in forms.split("|"):
            if kind == "site" and form not in LOCATIONS:
                raise ValueError(f"terms.tsv: site {form!r} is not in the location vocabulary; fix the row.")
            (sites if kind == "site" else findings)[form] = concept
    return TermList(findings, sites, re.compile(alternation(findings)))


def map_terms(asserted: Iterable[str], locations: Iterable[str]) -> list[Concept]:
    """Concepts for the findings named in ``asserted`` texts, then for the abnormal ``locations``."""
    terms = term_list()
    found: list[Concept] = []
    for text in asserted:
        found.extend(terms.findings[m.group(0)] for m in terms.pattern.finditer(text))  # longest form wins
    found.extend(terms.sites[loc] for loc in locations if loc in terms.sites)
    return list(dict.fromkeys(found))
