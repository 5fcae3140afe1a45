"""Abnormal sites: surface forms onto the location vocabulary, each with the side the text gives it.

Lobes are matched by a pattern rather than a list, so compounds split into their lobes (额顶部 → 额叶 +
顶叶, 左颞顶 → 颞叶 + 顶叶) without enumerating every combination; every other site comes from
``LOCATION_FORMS``. A side word (左侧, 右, 双侧…) applies to the sites after it in the same clause until the
next side word (左侧颞叶、岛叶 → both left); a side right after a site applies to it (脑桥左侧).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from brainfm.reports.lexicon import (
    LOBES,
    LOCATION_FORMS,
    MIDLINE_FORMS,
    MIDLINE_LOCATIONS,
    SIDE_WORDS,
    alternation,
)

_FORM_TO_LOCATION: dict[str, str] = {form: loc for loc, forms in LOCATION_FORMS.items() for form in (*forms, loc) if form}
_LOBE_CHARS = "".join(LOBES)
# One alternation whose every branch starts with a literal character, so that Python's regex engine can
# skip positions by their first character (named groups or lookbehinds at the start would lose that, about
# 5 times slower). Branches: a listed form; lobes + a region suffix (额顶部); a side + bare lobes (左额颞).
_LOCATION = re.compile(
    alternation(_FORM_TO_LOCATION)
    + "".join(f"|{c}[{_LOBE_CHARS}]{{0,4}}(?:叶|部|区|极|[上中下]回|底|盖)(?!头皮|皮下|软组织)" for c in _LOBE_CHARS)
    + "".join(f"|{side}[{_LOBE_CHARS[:-1]}]{{1,4}}(?![骨窦肌池大叶部区极回底盖{_LOBE_CHARS}])" for side in "左右双")
)
_SIDE = re.compile(alternation(SIDE_WORDS))
_POST_SIDE = re.compile(r"偏?(左|右)(?:侧|份)?")


@dataclass(frozen=True)
class SiteMention:
    location: str
    side: str | None  # "left" | "right" | "bilateral" | None
    midline: bool  # the site, as written, lies on the midline


def _names(text: str) -> list[str]:
    if text in _FORM_TO_LOCATION:
        return [_FORM_TO_LOCATION[text]]
    return [LOBES[c] for c in dict.fromkeys(text) if c in LOBES]


def find_sites(clause: str) -> list[SiteMention]:
    """Sites named in one clause, in order, with their side (anchors such as 大脑半球 have location "")."""
    out: list[SiteMention] = []
    side: str | None = None
    end = 0
    for match in _LOCATION.finditer(clause):
        text = match.group(0)
        sides = _SIDE.findall(clause, end, match.start() + (text[0] in "左右双"))  # 左额: the side is in the match
        if sides:
            side = SIDE_WORDS[sides[-1]]
        elif side is None:
            post = _POST_SIDE.match(clause, match.end())
            side = SIDE_WORDS[post.group(1)] if post else None
        midline = text in MIDLINE_FORMS
        out.extend(SiteMention(name, side, midline or name in MIDLINE_LOCATIONS) for name in _names(text))
        end = match.end()
    return out


def laterality(sites: Iterable[SiteMention]) -> str | None:
    """The laterality over all abnormal sites: bilateral when both sides (or 双侧) occur, midline when no
    site has a side and one lies on the midline, else None."""
    sites = list(sites)
    sides = {s.side for s in sites if s.side}
    if "bilateral" in sides or {"left", "right"} <= sides:
        return "bilateral"
    if sides:
        return sides.pop()
    return "midline" if any(s.midline for s in sites) else None
