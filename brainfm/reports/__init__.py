"""Chinese radiology report structuring, text de-identification and stage-2 vision-language data.

The asset layer calls:

- :func:`structure_report` / :func:`structure_jsonl`: free text to :class:`StructuredReport` records;
- :func:`validate_structured` and :func:`check_no_identifiers`: lists of problems for the asset checks;
- :func:`find_identifiers` / :func:`deidentify_text`: the identifier scanner and the text de-identifier;
- :func:`build_instruction_data`: image-report pairs and instruction records, split 8:2 by patient;
- :func:`score_reports`: category, laterality, location, size and identifier scores against labels.
"""

from brainfm.reports.deid_text import deidentify_text, find_identifiers
from brainfm.reports.instructions import build_instruction_data
from brainfm.reports.scoring import ReportScores, cohort_gold, score_reports
from brainfm.reports.structure import (
    StructuredReport,
    Summary,
    check_no_identifiers,
    structure_jsonl,
    structure_report,
    validate_structured,
)

__all__ = [
    "ReportScores",
    "StructuredReport",
    "Summary",
    "build_instruction_data",
    "check_no_identifiers",
    "cohort_gold",
    "deidentify_text",
    "find_identifiers",
    "score_reports",
    "structure_jsonl",
    "structure_report",
    "validate_structured",
]
