"""The grounding guard on reports written by the synthetic cohort's report generator for known facts, judged
against hand-set evidence: planted unsupported findings are flagged, supported ones pass, invented lesions and
omissions are caught, and unverifiable claims are never counted as supported."""

from __future__ import annotations

import re

import numpy as np
import pytest

from brainfm.grounding import GroundingResult, StudyEvidence, check_report, unsupported_rate
from brainfm.grounding.evidence import NO_ATLAS, NO_LESION_SEGMENTED
from brainfm.synth.identities import draw_identity
from brainfm.synth.reports import ReportFacts, write_report

IDENTITY = draw_identity(np.random.default_rng(0), "a", 1, "010", 52)
GLIOMA = ReportFacts("glioma", "left", ("frontal_lobe",), "WHO 4", (30.0, 25.0), 1, True, False, "M", 52)
NORMAL = ReportFacts("normal", "none", (), None, None, 0, False, False, "F", 40)
CAVERNOMA = ReportFacts(
    "cavernous_malformation", "left", ("temporal_lobe",), None, (9.0, 7.0), 1, False, False, "F", 33
)
SUBDURAL = ReportFacts(
    "subdural_hematoma",
    "right",
    ("frontal_lobe", "temporal_lobe", "parietal_lobe"),
    "chronic",
    (9.0, 9.0),
    1,
    False,
    False,
    "M",
    71,
)
CJK = re.compile(r"[\u3000-\u9fff\uff00-\uffef]")


def report(facts: ReportFacts, center: str = "center_b", seed: int = 0) -> str:
    """A report as the cohort writes it (center_b: sizes in mm; center_a: in cm)."""
    return write_report(facts, IDENTITY, center, "示例市第一人民医院", np.random.default_rng(seed))


def evidence(
    probs: dict[str, float], lesion: bool | None, side: str | None = None, diameter_mm: float | None = None
) -> StudyEvidence:
    """Evidence as `evidence_from_predictions` gives it (tested in tests/grounding/test_evidence.py)."""
    unverifiable = {"sites": NO_ATLAS}
    if not lesion:
        unverifiable |= {"side": NO_LESION_SEGMENTED, "size": NO_LESION_SEGMENTED}
    return StudyEvidence(
        category_probabilities=probs,
        abnormal_probability=1.0 - probs["normal"],
        predicted_category=max(probs, key=probs.__getitem__),
        lesion_present=lesion,
        lesion_pixels=900 if lesion else 0,
        lesion_side=side,
        largest_diameter_mm=diameter_mm,
        unverifiable=unverifiable,
    )


TUMOR = {"normal": 0.05, "tumor": 0.85, "infection": 0.1}
NORMAL_PROBS = {"normal": 0.92, "tumor": 0.05, "infection": 0.03}


def verdicts(result: GroundingResult) -> dict[str, str]:
    return {f"{v.claim}:{v.value}": v.verdict for v in result.verdicts}


@pytest.mark.parametrize("center", ["center_a", "center_b"])
def test_a_supported_report_passes_and_its_sites_stay_unchecked(center: str) -> None:
    """左侧额叶 glioma of 30 mm (3.0cm at center_a) against a left 28 mm lesion and a tumour classifier."""
    result = check_report(report(GLIOMA, center), evidence(TUMOR, True, "left", 28.0))
    assert result.passed and result.flags == ()
    assert verdicts(result) == {
        "lesion:present": "supported", "category:tumor": "supported", "side:left": "supported",
        "size:30 mm": "supported", "site:额叶": "unverifiable",
    }  # fmt: skip
    assert all(not CJK.search(v.reason) for v in result.verdicts)


def test_a_planted_wrong_side_and_size_are_flagged() -> None:
    """The report says left frontal, 30 mm; the segmentation finds a right-sided lesion of 10 mm."""
    result = check_report(report(GLIOMA), evidence(TUMOR, True, "right", 10.0))
    assert not result.passed
    assert verdicts(result)["side:left"] == "unsupported" and verdicts(result)["size:30 mm"] == "unsupported"
    assert verdicts(result)["category:tumor"] == "supported" and len(result.flags) == 2
    assert "report says left, segmentation is right" in result.flags[0]
    assert "report says 30 mm, segmentation 10.0 mm" in result.flags[1]
    assert all(not CJK.search(flag) for flag in result.flags)


def test_a_one_sided_claim_is_supported_by_a_bilateral_segmentation_but_not_the_reverse() -> None:
    assert check_report(report(GLIOMA), evidence(TUMOR, True, "bilateral", 30.0)).passed
    bilateral = ReportFacts(
        "metastasis", "bilateral", ("frontal_lobe",), None, (12.0, 9.0), 3, True, False, "F", 60
    )
    result = check_report(report(bilateral), evidence(TUMOR, True, "left", 12.0))
    assert verdicts(result)["side:bilateral"] == "unsupported"


def test_a_normal_report_on_a_normal_study_passes() -> None:
    result = check_report(report(NORMAL), evidence(NORMAL_PROBS, False))
    assert result.passed and result.verdicts == ()


def test_an_invented_lesion_on_a_normal_study_is_flagged() -> None:
    result = check_report(report(GLIOMA), evidence(NORMAL_PROBS, False))
    assert not result.passed and result.flags[0].startswith("invented lesion: classifier p(abnormal) = 0.08")
    found = verdicts(result)
    assert found["lesion:present"] == "unsupported" and found["category:tumor"] == "unsupported"
    # Nothing was segmented, so side and size cannot be measured: unverifiable, not supported.
    assert found["side:left"] == "unverifiable" and found["size:30 mm"] == "unverifiable"


def test_one_model_finding_a_lesion_is_enough_to_support_one() -> None:
    """The segmenter finds a left 30 mm lesion the classifier misses: no invented lesion, but the tumour
    category it does not predict is unsupported."""
    result = check_report(report(GLIOMA), evidence(NORMAL_PROBS, True, "left", 30.0))
    assert verdicts(result)["lesion:present"] == "supported"
    assert [v.claim for v in result.verdicts if v.verdict == "unsupported"] == ["category"]


def test_a_normal_report_on_a_study_both_models_find_abnormal_is_an_omission() -> None:
    result = check_report(report(NORMAL), evidence(TUMOR, True, "left", 30.0))
    assert result.verdicts == () and len(result.flags) == 1 and result.flags[0].startswith("omission")
    # One model alone does not make an omission.
    assert check_report(report(NORMAL), evidence(TUMOR, False)).passed


def test_a_secondary_category_below_the_cut_off_is_unverifiable_not_unsupported() -> None:
    """A cavernoma report also reads as a bleed (不除外小出血灶 → cerebrovascular); the single-label classifier
    that says malformation cannot rule the bleed out."""
    probs = {"normal": 0.02, "malformation": 0.9, "cerebrovascular": 0.05, "tumor": 0.03}
    result = check_report(report(CAVERNOMA), evidence(probs, True, "left", 9.0))
    found = verdicts(result)
    assert (
        found["category:malformation"] == "supported" and found["category:cerebrovascular"] == "unverifiable"
    )
    assert result.passed


def test_a_subdural_thickness_is_not_checked_against_a_diameter() -> None:
    result = check_report(report(SUBDURAL), evidence({"normal": 0.1, "trauma": 0.9}, True, "right", 110.0))
    assert verdicts(result)["size:9 mm"] == "unverifiable" and result.passed


def test_unsupported_rate_pools_checked_claims_by_patient() -> None:
    results = [
        check_report(report(GLIOMA), evidence(TUMOR, True, "left", 28.0)),  # 4 checked, 0 unsupported
        check_report(report(GLIOMA), evidence(TUMOR, True, "right", 10.0)),  # 4 checked, 2 unsupported
        check_report(report(NORMAL), evidence(NORMAL_PROBS, False)),  # nothing to check
        check_report(report(NORMAL), evidence(TUMOR, True, "left", 30.0)),  # an omission
    ]
    patients = ["p1", "p2", "p3", "p4"]
    by_finding = unsupported_rate(results, patients, n_boot=200)
    assert by_finding.value == pytest.approx(2 / 8) and by_finding.low <= 0.25 <= by_finding.high
    assert by_finding.n_patients == 4
    assert unsupported_rate(results, patients, unit="report", n_boot=200).value == pytest.approx(2 / 4)
    with pytest.raises(ValueError, match="no claim"):
        unsupported_rate(results[2:3], patients[2:3])
