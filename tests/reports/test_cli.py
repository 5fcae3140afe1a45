"""The three subcommands, end to end through ``brainfm.cli.main``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from brainfm.cli import main
from brainfm.jsonl import read_jsonl

HANDWRITTEN = Path(__file__).parents[1] / "data" / "reports" / "handwritten.jsonl"


def test_structure_score_and_build_instructions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("BRAINFM_DEID_SECRET", "test-secret-of-at-least-16-bytes")
    structured = tmp_path / "structured.jsonl"
    assert main(["structure-reports", str(HANDWRITTEN), str(structured)]) == 0
    assert main(["score-reports", str(structured), str(HANDWRITTEN)]) == 0
    table = capsys.readouterr().out
    assert "| category_micro_f1 |" in table and "| identifiers_left | 0 |" in table

    with_patients = tmp_path / "with_patients.jsonl"
    rows = read_jsonl(HANDWRITTEN)
    with_patients.write_text(
        "".join(json.dumps({"id": r["id"], "patient_id": f"MRN{i % 20:05d}", "text": r["text"]}, ensure_ascii=False) + "\n" for i, r in enumerate(rows)),
        encoding="utf-8",
    )
    pseudonymized = tmp_path / "pseudonymized.jsonl"
    assert main(["structure-reports", str(with_patients), str(pseudonymized), "--pseudonymize", "center_a"]) == 0
    assert main(["build-instructions", str(pseudonymized), str(tmp_path / "vl"), "--seed", "1"]) == 0
    pairs = read_jsonl(tmp_path / "vl" / "pairs.jsonl")
    instructions = read_jsonl(tmp_path / "vl" / "instructions.jsonl")
    assert len(pairs) == len(rows) and len(instructions) > 4 * len(rows)
    assert not any(p["patient"].startswith("MRN") for p in pairs)


def test_problems_name_the_kind_and_place_never_the_identifier(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("BRAINFM_DEID_SECRET", "test-secret-of-at-least-16-bytes")
    src = tmp_path / "in.jsonl"
    lines = [
        {"id": "ACC1", "patient_id": "PID1", "text": "印象：左侧颞叶胶质瘤。"},
        {"id": "ACC2", "text": "印象：胶质瘤。", "identifiers": [778899]},
    ]
    src.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in lines), encoding="utf-8")
    structured = tmp_path / "structured.jsonl"
    assert main(["structure-reports", str(src), str(structured), "--pseudonymize", "center_a"]) == 0
    (record,) = read_jsonl(structured)
    record["sections"]["findings"] = "患者王伟，男，电话13812345678。"  # planted after de-identification
    structured.write_text(json.dumps(record, ensure_ascii=False) + "\n", encoding="utf-8")
    assert main(["build-instructions", str(structured), str(tmp_path / "vl")]) == 1
    err = capsys.readouterr().err
    assert "quarantined line 2: 'identifiers' is not a list of strings" in err
    assert "[电话] identifier left in .findings" in err and "[姓名] identifier left in .findings" in err
    for identifier in ("778899", "13812345678", "王伟", "ACC", "PID1"):
        assert identifier not in err
