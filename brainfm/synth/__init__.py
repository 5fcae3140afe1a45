"""The embedded synthetic multi-center brain-MRI cohort (``brainfm synth``); see docs/COHORT.md.

Public API: ``generate_cohort``, ``CohortSummary``, ``make_contact_sheet``, ``read_series`` and the
profile tables. Attributes load lazily so that ``brainfm --help`` does not import matplotlib or nilearn.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "CohortSummary": "brainfm.synth.cohort",
    "generate_cohort": "brainfm.synth.cohort",
    "make_contact_sheet": "brainfm.synth.contact_sheet",
    "read_series": "brainfm.synth.contact_sheet",
    "CATEGORIES": "brainfm.synth.profiles",
    "PROFILES": "brainfm.synth.profiles",
    "SUBTYPES": "brainfm.synth.profiles",
    "get_profile": "brainfm.synth.profiles",
}
__all__ = [
    "CATEGORIES",
    "PROFILES",
    "SUBTYPES",
    "CohortSummary",
    "generate_cohort",
    "get_profile",
    "make_contact_sheet",
    "read_series",
]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'brainfm.synth' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
