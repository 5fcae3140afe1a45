"""Clauses and their polarity: asserted, hedged, negated, normal anatomy or recommendation.

A NegEx-style rule set adapted to Chinese report prose: cues come before the finding (未见强化, 无水肿),
after it (强化不明显), or after the site they negate (双侧海马未见异常). Scope is the clause (split at
commas and colons); within a clause, text before a negation cue stays asserted when it already names a
finding (左侧颞叶见异常信号无强化). Uncertainty cues (考虑…可能, 不除外) are masked first: a hedged finding
is reported, and 不除外 must never read as a negation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from brainfm.reports.lexicon import (
    CATEGORY_KEYWORDS,
    CUE_LIKE_TERMS,
    EFFACED_STRUCTURES,
    FINDING_WORDS,
    HEDGE_WORDS,
    NEGATION_CUES,
    NORMAL_CUES,
    POST_NEGATION_CUES,
    RECOMMENDATION_CUES,
    UNCERTAINTY_CUES,
    WEAK_TUMOR_KEYWORDS,
    alternation,
)

_SENTENCE_SPLIT = re.compile(r"[。；;\n]|\s+(?=[(（]?\d{1,2}[)）.、．](?!\d))|(?=[①-⑳])")
_ITEM_MARKER = re.compile(r"^\s*(?:[(（]?\d{1,2}[)）.、．](?!\d)|[①-⑳])\s*")
_CLAUSE_SPLIT = re.compile(r"[，,：:]")
_UNCERTAIN = re.compile(alternation(UNCERTAINTY_CUES))
_NEGATION = re.compile(rf"(?!{alternation(CUE_LIKE_TERMS)})(?:{alternation(NEGATION_CUES)})")
_POST_NEGATION = re.compile(alternation(POST_NEGATION_CUES))
_EFFACEMENT = re.compile(rf"(?:{alternation(EFFACED_STRUCTURES)})[^，,：:]{{0,8}}?消失")
_NORMAL = re.compile(alternation(NORMAL_CUES))
_RECOMMENDATION = re.compile(alternation(RECOMMENDATION_CUES))
_FINDING = re.compile(
    alternation([*FINDING_WORDS, *WEAK_TUMOR_KEYWORDS, *(k for k, v in CATEGORY_KEYWORDS.items() if v)])
    + f"|{_EFFACEMENT.pattern}"
)
_HEDGE = re.compile(alternation(HEDGE_WORDS))
_PHRASE_TRIM = re.compile(r"^[\s的及和与或、]+|[\s的及和与或、.。]+$")
MAX_PHRASE_CHARS = 24


@dataclass(frozen=True)
class Clause:
    """One clause. ``asserted`` is the text reported as present (possibly hedged), ``negated`` the short
    phrase of what it explicitly denies, without the cue; either may be empty."""

    sentence: int
    asserted: str
    negated: str
    uncertain: bool
    has_finding: bool  # ``asserted`` names a finding


def _phrase(text: str) -> str:
    phrase = _PHRASE_TRIM.sub("", _HEDGE.sub("", _NEGATION.sub("", _POST_NEGATION.sub("", text))))
    return phrase if 2 <= len(phrase) <= MAX_PHRASE_CHARS else ""


def _post_cue(text: str) -> re.Match[str] | None:
    """The first post-finding cue of ``text`` that is not the 消失 of an effaced structure (脑沟消失)."""
    effaced = [m.span() for m in _EFFACEMENT.finditer(text)]
    cues = (m for m in _POST_NEGATION.finditer(text) if not any(a <= m.start() < b for a, b in effaced))
    return next(cues, None)


def _clause(sentence: int, text: str) -> Clause:
    uncertain = bool(_UNCERTAIN.search(text))
    masked = _UNCERTAIN.sub(lambda m: " " * len(m.group(0)), text) if uncertain else text
    if _RECOMMENDATION.search(masked):
        return Clause(sentence, "", "", uncertain, False)
    post = _post_cue(masked)
    if post:  # the cue negates the last finding word before it; what precedes that word may be a finding
        words = list(_FINDING.finditer(masked, 0, post.start()))
        start = words[-1].start() if words else 0
        if _FINDING.search(masked, 0, start):
            return Clause(sentence, masked[:start], _phrase(masked[start:]), uncertain, True)
        return Clause(sentence, "", _phrase(masked), uncertain, False)
    cue = _NEGATION.search(masked)
    if cue:
        prefix = masked[: cue.start()]
        if _FINDING.search(prefix):
            return Clause(sentence, prefix, _phrase(masked[cue.start() :]), uncertain, True)
        return Clause(sentence, "", _phrase(masked), uncertain, False)
    finding = bool(_FINDING.search(masked))
    if not finding and _NORMAL.search(masked):
        return Clause(sentence, "", "", uncertain, False)
    return Clause(sentence, masked, "", uncertain, finding)


def clauses(text: str, first_sentence: int = 0) -> list[Clause]:
    """Split ``text`` into sentences (。；, line breaks, numbered items) and clauses, and classify each.

    Sentence indices start at ``first_sentence`` so that several sections can share one numbering.
    """
    out: list[Clause] = []
    sentences = (_ITEM_MARKER.sub("", s) for s in _SENTENCE_SPLIT.split(text))
    for i, sentence in enumerate(s for s in sentences if s.strip()):
        out.extend(_clause(first_sentence + i, c) for c in _CLAUSE_SPLIT.split(sentence) if c.strip())
    return out
