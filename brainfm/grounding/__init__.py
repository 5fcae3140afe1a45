"""The grounding guard: findings of a generated report checked against the stage-3 classifier and segmenter.

- :func:`evidence_from_predictions` → :class:`StudyEvidence` (abnormality, category, lesion side and
  diameter from the segmented slices; sites unverifiable);
- :func:`check_report` → :class:`GroundingResult` (one :class:`FindingVerdict` per claim, flags for invented
  lesions, unsupported claims and omissions); :func:`unsupported_rate` with a patient-bootstrap CI.
"""

from brainfm.grounding.evidence import (
    SegmentedSlice,
    SizeTolerance,
    StudyEvidence,
    Thresholds,
    evidence_from_predictions,
)
from brainfm.grounding.guard import (
    FindingVerdict,
    GroundingResult,
    check_report,
    report_subtype,
    unsupported_rate,
)

__all__ = [
    "FindingVerdict",
    "GroundingResult",
    "SegmentedSlice",
    "SizeTolerance",
    "StudyEvidence",
    "Thresholds",
    "check_report",
    "evidence_from_predictions",
    "report_subtype",
    "unsupported_rate",
]
