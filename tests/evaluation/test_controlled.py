"""The controlled-trial report: every section present, every measured number with its CI, figures inline."""

from __future__ import annotations

import json
from pathlib import Path

from brainfm.evaluation.controlled import CONTROLLED_SECTIONS, controlled_report
from brainfm.evaluation.html_report import Provenance, missing_sections, numbers_without_ci
from brainfm.evaluation.trial import analyse_trial

from .test_trial import simulated_trial


def test_report_has_every_section_and_no_number_without_its_interval(tmp_path: Path) -> None:
    trial = simulated_trial(80, 160, seed=3).trial
    result = analyse_trial(trial, n_boot=50)
    files = controlled_report(result, trial, Provenance(True, "synthetic test trial")).write(tmp_path)
    document = json.loads(files.json.read_text())
    assert missing_sections(document, CONTROLLED_SECTIONS) == []
    assert numbers_without_ci(document) == []
    html = files.html.read_text()
    assert html.count("data:image/png;base64,") == 2  # calibration and Kaplan–Meier
    assert "simulated" in html
