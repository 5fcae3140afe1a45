"""Disease categories from the asserted (or hedged) text of a report, primary first.

Keyword rules, explainable line by line: the longest keyword at a position wins (硬膜下血肿 is trauma,
血肿 alone cerebrovascular; 占位效应 is no mass); bleeding counts as trauma when the report also reports an
injury; mass words (占位, 肿块) say tumor only when nothing more specific is reported; a report with no
category is ``normal``. The primary category is the first one met, reading the impression before the
findings.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from brainfm.reports.lexicon import (
    BLEED_KEYWORDS,
    CATEGORY_KEYWORDS,
    WEAK_TUMOR_KEYWORDS,
    WITHIN_LESION_CUES,
    alternation,
)

# Patterns are case-sensitive on purpose: a case-insensitive alternation loses the first-character scan of
# Python's regex engine and runs about 7 times slower; English forms are listed as radiologists write them.
_WEAK = frozenset(WEAK_TUMOR_KEYWORDS)
_KEYWORD = re.compile(alternation([*CATEGORY_KEYWORDS, *WEAK_TUMOR_KEYWORDS]))
_WITHIN = re.compile(alternation(WITHIN_LESION_CUES))


def find_categories(asserted: Iterable[str]) -> list[str]:
    """Categories reported in ``asserted`` texts (impression clauses first), primary first; ["normal"] if none."""
    hits: list[tuple[str, str, bool]] = []  # (keyword, category, inside another lesion)
    mass = False
    for text in asserted:
        within = bool(_WITHIN.search(text))
        for m in _KEYWORD.finditer(text):
            keyword = m.group(0)
            if keyword in _WEAK:
                mass = True
            elif category := CATEGORY_KEYWORDS[keyword]:
                hits.append((keyword, category, within and keyword in BLEED_KEYWORDS))
    injured = any(category == "trauma" for _, category, _ in hits)
    others = any(not inside and k not in BLEED_KEYWORDS for k, _, inside in hits)
    found = dict.fromkeys(
        "trauma" if injured and k in BLEED_KEYWORDS else c for k, c, inside in hits if not (inside and others)
    )
    if not found and mass:
        return ["tumor"]
    return list(found) or ["normal"]
