"""The grounding guard: is each finding of a generated report backed by the stage-3 models?

The report is read with the project's structurer (`brainfm.reports.structure_report`); each abnormal claim
gets a verdict against the study's `StudyEvidence`:

- lesion: an abnormal report where the classifier (1 − p(normal) below the cut-off) and the segmenter (no
  component of ``min_lesion_pixels``) both find the study normal is an *invented lesion* (unsupported);
- category: the primary category must be predicted by the classifier or reach ``category_probability``; a
  secondary category below it is unverifiable (the classifier is single-label: a low probability for a
  second finding, such as the bleed of a cavernoma, is no evidence against it);
- side: the report's laterality against the segmented side (a one-sided claim is supported by a bilateral
  segmentation; the rest must match);
- size: the largest reported size against the largest segmented in-plane diameter, within the tolerance;
  thicknesses (subdural haematoma) and tonsillar descent (Chiari) are no diameters and are unverifiable;
- site: unverifiable (no atlas registration; `brainfm.grounding.evidence`).

A normal report where both models find a lesion is flagged as an *omission*. Verdict reasons are English
and quote numbers, never report text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from brainfm.evaluation.bootstrap import Estimate, patient_bootstrap
from brainfm.grounding.evidence import StudyEvidence, Thresholds
from brainfm.reports.structure import StructuredReport, structure_report

Verdict = Literal["supported", "unsupported", "unverifiable"]
Claim = Literal["lesion", "category", "side", "size", "site"]

# SNOMED CT codes of the report term list (brainfm/reports/terms.tsv) → the cohort's subtypes
# (docs/SCHEMAS.md labels.parquet). Hippocampal sclerosis has no confirmed code there: its category names it.
SUBTYPE_CODES: dict[str, str] = {
    "393564001": "glioma",  # Glioma
    "393563007": "glioma",  # Glioblastoma multiforme
    "302820008": "meningioma",
    "94225005": "metastasis",  # Secondary malignant neoplasm of brain
    "441806004": "abscess",
    "45170000": "encephalitis",
    "432504007": "infarct",  # Cerebral infarction
    "81037000": "infarct",  # Lacunar infarction
    "274100004": "hemorrhage",  # Cerebral hemorrhage
    "34663006": "contusion",
    "35486000": "subdural_hematoma",
    "416824008": "cavernous_malformation",  # Cavernous hemangioma
    "253184003": "chiari",
    "254956000": "pituitary_adenoma",
}
# Subtypes whose reported size is not a lesion diameter (docs/SCHEMAS.md: subdural thickness, Chiari descent).
SIZE_IS_NOT_A_DIAMETER = frozenset({"subdural_hematoma", "chiari"})


def report_subtype(report: StructuredReport) -> str | None:
    """The subtype a structured report names: the first term of the impression-first term list that maps to
    a subtype; ``normal`` for a normal report; None when it names no subtype (占位性病变 alone)."""
    if report.categories == ["normal"]:
        return "normal"
    for term in report.terms:
        if term.code in SUBTYPE_CODES:
            return SUBTYPE_CODES[term.code]
    return "hippocampal_sclerosis" if "hippocampal_sclerosis" in report.categories else None


@dataclass(frozen=True)
class FindingVerdict:
    """One claim of a report (``value`` in the structurer's vocabulary: a category, a side, a size in mm,
    a site) and whether the evidence supports it, with the reason."""

    claim: Claim
    value: str
    verdict: Verdict
    reason: str


@dataclass(frozen=True)
class GroundingResult:
    """The verdicts of one report's abnormal claims and its flags (unsupported claims, omission)."""

    verdicts: tuple[FindingVerdict, ...]
    flags: tuple[str, ...]

    @property
    def passed(self) -> bool:
        return not self.flags

    def count(self, verdict: Verdict) -> int:
        return sum(v.verdict == verdict for v in self.verdicts)


def _lesion(evidence: StudyEvidence, thresholds: Thresholds) -> FindingVerdict:
    p = evidence.abnormal_probability
    classifier = f"classifier p(abnormal) = {p:.2f}"
    segmenter = f"segmentation found {evidence.lesion_pixels} lesion pixels"
    found = [
        r
        for r, ok in (
            (classifier, p >= thresholds.abnormal_probability),
            (segmenter, evidence.lesion_present),
        )
        if ok
    ]
    if found:
        return FindingVerdict("lesion", "present", "supported", " and ".join(found))
    if evidence.lesion_present is None:
        reason = f"{classifier} < {thresholds.abnormal_probability:g} but {evidence.unverifiable['lesion']}"
        return FindingVerdict("lesion", "present", "unverifiable", reason)
    reason = (
        f"invented lesion: {classifier} < {thresholds.abnormal_probability:g} and the segmentation found no "
        f"component of {thresholds.min_lesion_pixels} pixels or more"
    )
    return FindingVerdict("lesion", "present", "unsupported", reason)


def _category(
    category: str, primary: bool, evidence: StudyEvidence, thresholds: Thresholds
) -> FindingVerdict:
    probs = evidence.category_probabilities
    if category not in probs:
        return FindingVerdict(
            "category", category, "unverifiable", f"the classifier has no class {category!r}"
        )
    predicted = evidence.predicted_category
    said = f"classifier p({category}) = {probs[category]:.2f}, predicts {predicted} ({probs[predicted]:.2f})"
    if category == predicted or probs[category] >= thresholds.category_probability:
        return FindingVerdict("category", category, "supported", said)
    if primary:
        return FindingVerdict(
            "category", category, "unsupported", f"{said}; cut-off {thresholds.category_probability:g}"
        )
    reason = f"secondary category below the cut-off ({said}); a single-label classifier cannot rule it out"
    return FindingVerdict("category", category, "unverifiable", reason)


def _side(side: str, evidence: StudyEvidence) -> FindingVerdict:
    found = evidence.lesion_side
    if found is None:
        return FindingVerdict("side", side, "unverifiable", evidence.unverifiable["side"])
    agrees = side == found or (found == "bilateral" and side in ("left", "right"))
    return FindingVerdict(
        "side", side, "supported" if agrees else "unsupported", f"report says {side}, segmentation is {found}"
    )


def _size(
    size_mm: float, subtype: str | None, evidence: StudyEvidence, thresholds: Thresholds
) -> FindingVerdict:
    value = f"{size_mm:g} mm"
    if subtype in SIZE_IS_NOT_A_DIAMETER:
        reason = f"a {subtype} is sized by a thickness or a descent, which no segmented diameter measures"
        return FindingVerdict("size", value, "unverifiable", reason)
    found = evidence.largest_diameter_mm
    if found is None:
        return FindingVerdict("size", value, "unverifiable", evidence.unverifiable["size"])
    agrees = thresholds.size.agrees(size_mm, found)
    reason = (
        f"report says {size_mm:g} mm, segmentation {found:.1f} mm (tolerance {thresholds.size.describe()})"
    )
    return FindingVerdict("size", value, "supported" if agrees else "unsupported", reason)


def check_report(
    report_text: str, evidence: StudyEvidence, thresholds: Thresholds | None = None
) -> GroundingResult:
    """Structure ``report_text`` and judge each abnormal claim against ``evidence`` (see the module doc)."""
    thresholds = thresholds or Thresholds()
    report = structure_report(report_text)
    if report.categories == ["normal"]:
        p = evidence.abnormal_probability
        if p < thresholds.abnormal_probability or evidence.lesion_present is not True:
            return GroundingResult((), ())
        omission = (
            f"omission: the report is normal but classifier p(abnormal) = {p:.2f} and the segmentation found "
            f"{evidence.lesion_pixels} lesion pixels"
        )
        return GroundingResult((), (omission,))
    verdicts = [_lesion(evidence, thresholds)]
    verdicts += [_category(c, i == 0, evidence, thresholds) for i, c in enumerate(report.categories)]
    if report.laterality is not None:
        verdicts.append(_side(report.laterality, evidence))
    if report.largest_size_mm is not None:
        verdicts.append(_size(report.largest_size_mm, report_subtype(report), evidence, thresholds))
    verdicts += [
        FindingVerdict("site", site, "unverifiable", evidence.unverifiable["sites"])
        for site in report.locations
    ]
    flags = tuple(
        v.reason if v.claim == "lesion" else f"unsupported {v.claim} {v.value}: {v.reason}"
        for v in verdicts
        if v.verdict == "unsupported"
    )
    return GroundingResult(tuple(verdicts), flags)


def _ratio(unsupported: np.ndarray, checked: np.ndarray) -> float:
    total = checked.sum()
    return float(unsupported.sum() / total) if total else float("nan")


def unsupported_rate(
    results: Sequence[GroundingResult],
    patients: npt.ArrayLike,
    *,
    unit: Literal["finding", "report"] = "finding",
    n_boot: int = 1000,
    seed: int = 0,
) -> Estimate:
    """Share of checked claims (supported or unsupported; unverifiable ones are not counted) that are
    unsupported, pooled over reports (``unit="finding"``), or share of reports with any flag, omissions
    included (``unit="report"``); with a patient-bootstrap 95 % CI (``patients``: one key per result)."""
    if unit == "report":
        flagged = np.array([not r.passed for r in results], dtype=float)
        return patient_bootstrap(lambda f: float(f.mean()), patients, flagged, n_boot=n_boot, seed=seed)
    if unit != "finding":
        raise ValueError(f"unit must be 'finding' or 'report', got {unit!r}")
    unsupported = np.array([r.count("unsupported") for r in results])
    checked = unsupported + np.array([r.count("supported") for r in results])
    if not checked.sum():
        raise ValueError("no claim of these reports could be checked: every one was normal or unverifiable")
    return patient_bootstrap(_ratio, patients, unsupported, checked, n_boot=n_boot, seed=seed)
