"""Instruction data: every task present, split by patient, deterministic, free of identifiers."""

from __future__ import annotations

import pytest

from brainfm.reports import build_instruction_data, check_no_identifiers, structure_report

TEXTS = [
    "姓名：张伟 影像所见：左侧颞叶见肿块，大小约3.2×2.5cm。诊断意见：左侧颞叶胶质瘤。",
    "影像所见：脑实质未见异常信号，中线结构居中。诊断意见：颅脑MRI未见明显异常。",
    "影像所见：右侧基底节区见血肿，大小约25mm。诊断意见：右侧基底节区脑出血。",
]


def _records(n_patients: int = 12) -> list[dict]:
    records = []
    for i in range(n_patients * 2):
        r = structure_report(TEXTS[i % 3], f"study{i:03d}").to_json()
        records.append({**r, "patient": f"P{i // 2:04d}"})  # two studies per patient
    return records


def test_tasks_split_and_determinism() -> None:
    records = _records()
    pairs, instructions = build_instruction_data(records, seed=3)
    assert len(pairs) == len(records)
    assert {r["task"] for r in instructions} == {
        "report_generation", "patient_explanation", "qa_location", "qa_size", "qa_category", "dialogue"
    }
    sides = {}
    for row in pairs + instructions:
        assert sides.setdefault(row["patient"], row["split"]) == row["split"]  # one side per patient
    assert set(sides.values()) == {"train", "val"}
    dialogue = next(r for r in instructions if r["task"] == "dialogue")
    assert len(dialogue["messages"]) >= 6 and [m["role"] for m in dialogue["messages"][:2]] == ["user", "assistant"]
    assert build_instruction_data(records, seed=3) == (pairs, instructions)
    assert check_no_identifiers(pairs + instructions, ["张伟"]) == []


def test_normal_study_gets_no_location_or_size_question() -> None:
    records = _records()
    _, instructions = build_instruction_data(records)
    normal_study = records[1]["id"]
    tasks = {r["task"] for r in instructions if r["image"] == normal_study}
    assert "qa_location" not in tasks and "qa_size" not in tasks


def test_missing_patient_pseudonym_is_an_error() -> None:
    record = structure_report(TEXTS[0], "ACC0012345").to_json()
    with pytest.raises(ValueError, match="Pseudonymizer") as error:
        build_instruction_data([record])
    assert "ACC0012345" not in str(error.value)  # an unpseudonymised id is an accession number
