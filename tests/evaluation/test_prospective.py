"""The prospective (reader-study) report: every section present, every measured number with its CI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl

from brainfm.evaluation.html_report import Provenance, missing_sections, numbers_without_ci
from brainfm.evaluation.prospective import PROSPECTIVE_SECTIONS, prospective_report
from brainfm.evaluation.reader_study import analyse_reader_study
from brainfm.synth.profiles import SUBTYPES
from brainfm.synth.reader_study import Case, simulate_reader_study

SUBTYPE_NAMES = [s for _, s, _ in SUBTYPES]


def test_report_has_every_section_and_no_number_without_its_interval(tmp_path: Path) -> None:
    cases = [Case(f"ACC{i:03d}", f"PAT{i:03d}", "center_a", s, None if s == "normal" else 12.0)
             for i, s in enumerate(SUBTYPE_NAMES * 3)]
    reads = pl.DataFrame(simulate_reader_study(cases, SUBTYPE_NAMES, np.random.default_rng(0)),
                         infer_schema_length=None).rename({"patient_id": "patient"})
    held_out = pl.DataFrame({"accession": [c.accession for c in cases[::2]],
                             "predicted_subtype": [c.subtype for c in cases[::2]],
                             "abnormality_probability": [0.1 if c.subtype == "normal" else 0.9 for c in cases[::2]]})
    result = analyse_reader_study(reads, held_out, n_boot=50)
    files = prospective_report(result, Provenance(True, "synthetic test cohort"), "a perfect oracle").write(tmp_path)
    document = json.loads(files.json.read_text())
    assert missing_sections(document, PROSPECTIVE_SECTIONS) == []
    assert numbers_without_ci(document) == []
    html = files.html.read_text()
    assert "simulated readers" in html and "data:image/png;base64," in html
    assert "Synthetic cohort" in files.markdown.read_text()
