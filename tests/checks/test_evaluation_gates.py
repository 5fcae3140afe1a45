"""The report gate passes a complete report and fails a missing section or a number without its interval."""

from __future__ import annotations

from pathlib import Path

from assets.evaluation import report_gate
from brainfm.evaluation.bootstrap import Estimate
from brainfm.evaluation.html_report import Count, Provenance, Report

from .conftest import failures

REQUIRED = ("design", "results")


def _report(bare_number: bool, with_results: bool) -> Report:
    report = Report("test", Provenance(True, "synthetic test cohort"))
    report.section("design", "Design").key_number("patients", Count(12))
    if with_results:
        accuracy = 0.8 if bare_number else Estimate(0.8, 0.6, 0.9, 12, 200)
        report.section("results", "Results").table([["accuracy", accuracy]], ["metric", "value"], "Results.")
    return report


def test_a_complete_report_passes(tmp_path: Path) -> None:
    _report(bare_number=False, with_results=True).write(tmp_path)
    assert failures(report_gate(tmp_path, REQUIRED)) == set()


def test_a_missing_section_or_a_bare_number_fails(tmp_path: Path) -> None:
    _report(bare_number=False, with_results=False).write(tmp_path / "missing")
    assert failures(report_gate(tmp_path / "missing", REQUIRED)) == {"expect_column_values_to_be_in_set(present)"}
    _report(bare_number=True, with_results=True).write(tmp_path / "bare")
    assert failures(report_gate(tmp_path / "bare", REQUIRED)) == {"expect_column_values_to_be_between(numbers_without_ci)"}
