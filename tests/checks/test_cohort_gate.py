"""raw_cohort's gate fails on a layout without centers, a center whose studies hold no file, or an empty
report file (a center without one is ingested without reports)."""

from __future__ import annotations

from pathlib import Path

from assets.cohort import raw_layout_gate
from brainfm.raw_layout import RawLayout

from .conftest import failures


def _layout(
    root: Path, files_in_study: bool = True, report_lines: str = '{"id": "1", "text": "未见异常"}\n'
) -> RawLayout:
    study = root / "dicom" / "center_a" / "P1" / "S1"
    study.mkdir(parents=True)
    if files_in_study:
        (study / "series").mkdir()
        (study / "series" / "1.dcm").write_bytes(b"\0" * 132)
    (root / "reports").mkdir()
    (root / "reports" / "center_a.jsonl").write_text(report_lines, encoding="utf-8")
    return RawLayout(root)


def test_a_center_with_studies_and_reports_passes(tmp_path: Path) -> None:
    assert failures(raw_layout_gate(_layout(tmp_path))) == set()


def test_no_center_fails(tmp_path: Path) -> None:
    assert failures(raw_layout_gate(RawLayout(tmp_path))) == {"expect_table_row_count_to_be_between"}


def test_study_folders_without_files_fail(tmp_path: Path) -> None:
    layout = _layout(tmp_path, files_in_study=False)
    assert failures(raw_layout_gate(layout)) == {"expect_column_values_to_be_between(studies)"}


def test_an_empty_report_file_fails_and_a_center_without_one_passes(tmp_path: Path) -> None:
    layout = _layout(tmp_path, report_lines="\n")
    assert failures(raw_layout_gate(layout)) == {"expect_column_values_to_not_be_in_set(reports)"}
    (layout.reports / "center_a.jsonl").unlink()  # images alone: a site's choice, ingested without reports
    assert failures(raw_layout_gate(layout)) == set()
