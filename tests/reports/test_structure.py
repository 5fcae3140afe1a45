"""Report structuring on the hand-written test set and on the rules it relies on."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from brainfm.jsonl import read_jsonl
from brainfm.reports import score_reports, structure_jsonl, structure_report, validate_structured
from brainfm.reports.negation import clauses

HANDWRITTEN = Path(__file__).parents[1] / "data" / "reports" / "handwritten.jsonl"


@pytest.fixture(scope="module")
def gold() -> list[dict]:
    return read_jsonl(HANDWRITTEN)


@pytest.fixture(scope="module")
def predictions(gold: list[dict]) -> list[dict]:
    return [structure_report(g["text"], g["id"]).to_json() for g in gold]


def test_handwritten_set_meets_the_targets(gold: list[dict], predictions: list[dict]) -> None:
    assert len(gold) >= 40
    scores = score_reports(predictions, gold)
    assert scores.category_micro_f1 >= 0.95
    assert scores.location_micro_f1 >= 0.9
    assert scores.laterality_accuracy >= 0.9
    assert scores.size_within_1mm >= 0.9
    assert scores.identifiers_left == 0


def test_structured_records_pass_the_schema_and_identifier_checks(gold: list[dict], predictions: list[dict]) -> None:
    assert validate_structured(predictions, [i for g in gold for i in g["identifiers"]]) == []


def test_validator_names_each_problem() -> None:
    good = structure_report("影像所见：左侧颞叶见结节。", "r1").to_json()
    bad = {
        **good,
        "categories": ["normal", "tumor"],
        "laterality": "up",
        "locations": ["颞叶", "肝脏"],
        "largest_size_mm": -3,
        "sections": {"findings": "患者电话13812345678", "impression": ""},
    }
    problems = validate_structured([bad, {"id": "r2"}])
    joined = "\n".join(problems)
    for expected in ("must stand alone", "laterality 'up'", "['肝脏']", "largest_size_mm", "missing keys"):
        assert expected in joined
    assert "record 0: [电话] identifier left in .sections.findings" in problems  # the kind and where, never the value
    assert "13812345678" not in joined and "r2" not in joined


@pytest.mark.parametrize(
    ("text", "categories", "negated"),
    [
        ("诊断意见：左侧额叶占位，不除外转移瘤。", ["tumor"], []),  # 不除外 hedges, never negates
        ("诊断意见：未见脑梗死及脑出血。", ["normal"], ["脑梗死及脑出血"]),
        ("所见：右侧小脑见片状长T2信号，强化不明显。", ["normal"], ["强化"]),  # post-negation cue
        ("所见：左侧颞叶见异常信号无强化。印象：病毒性脑炎可能。", ["infection"], ["强化"]),
        ("印象：左侧颞叶挫裂伤，左侧额颞部硬膜下血肿。", ["trauma"], []),  # bleeding with an injury
        ("印象：左侧颞叶病变，内见少许出血，考虑脑脓肿。", ["infection"], []),  # bleeding inside a lesion
        ("印象：左侧额叶占位效应明显的血肿。", ["cerebrovascular"], []),  # 占位效应 is no mass
        ("印象：建议增强扫描除外肿瘤。", ["normal"], []),  # a recommendation reports nothing
        ("印象：无脑回畸形。", ["malformation"], []),  # 无脑回 is a malformation, not 无 + 脑回
        ("印象：无功能垂体腺瘤。", ["endocrine"], []),
        ("印象：未除外脑梗死。", ["cerebrovascular"], []),  # 未除外 hedges like 不除外
        ("印象：未排除脑梗死。", ["cerebrovascular"], []),
        ("印象：左侧额叶团块影强化不明显。", ["tumor"], ["强化"]),  # the cue negates the enhancement only
        ("印象：左侧额颞叶大片梗死，脑沟消失。", ["cerebrovascular"], []),  # effacement is a finding
    ],
)
def test_polarity_and_categories(text: str, categories: list[str], negated: list[str]) -> None:
    report = structure_report(text)
    assert report.categories == categories
    assert report.negated_findings == negated


def test_post_finding_cue_keeps_the_finding_before_the_negated_attribute() -> None:
    report = structure_report("印象：左侧额叶团块影强化不明显。")
    assert (report.locations, report.laterality) == (["额叶"], "left")


def test_effaced_sulci_are_an_abnormal_finding() -> None:
    report = structure_report("所见：左侧额颞叶脑沟消失，灰白质分界消失。")
    assert (report.locations, report.laterality, report.negated_findings) == (["额叶", "颞叶"], "left", [])


@pytest.mark.parametrize("text", ["未排除多发硬化", "未除外脱髓鞘", "不除外脱髓鞘"])
def test_not_excluded_is_uncertain_not_negated(text: str) -> None:
    (clause,) = clauses(text)
    assert (clause.negated, clause.uncertain, clause.has_finding) == ("", True, True)


def test_normal_anatomy_statements_are_not_findings() -> None:
    text = "中线结构居中，脑室系统未见扩大，双侧海马对称，信号未见异常。垂体高约6mm。"
    report = structure_report(text)
    assert (report.categories, report.locations, report.laterality, report.largest_size_mm) == (["normal"], [], None, None)
    assert "脑室系统扩大" in report.negated_findings


@pytest.mark.parametrize(
    ("text", "locations", "laterality"),
    [
        ("左额顶部见异常信号。", ["额叶", "顶叶"], "left"),
        ("右侧颞叶、岛叶见异常信号。", ["颞叶", "岛叶"], "right"),
        ("左侧颞叶及右侧枕叶见结节。", ["颞叶", "枕叶"], "bilateral"),
        ("脑桥见梗死灶。", ["脑干"], "midline"),
        ("垂体右侧份见结节。", ["鞍区"], "right"),
        ("小脑蚓部见肿块。", ["小脑"], "midline"),
        ("左侧大脑中动脉供血区梗死。", ["大脑中动脉"], "left"),
        ("右侧额部头皮血肿，左侧颞叶挫伤。", ["颞叶"], "left"),  # the scalp is not a brain site
    ],
)
def test_sites_and_sides(text: str, locations: list[str], laterality: str) -> None:
    report = structure_report(text)
    assert report.locations == locations
    assert report.laterality == laterality


@pytest.mark.parametrize(
    ("text", "size_mm"),
    [
        ("左侧颞叶见肿块，大小约3.2×2.5cm。", 32.0),
        ("左侧颞叶见肿块，大小约2.1cm×1.8cm×1.5cm。", 21.0),
        ("右侧额叶结节，直径约25mm。", 25.0),
        ("多发结节，直径约0.3-0.8cm。", 8.0),
        ("左侧额叶肿块约2cm，中线结构右移约25mm。", 20.0),  # midline shift is no lesion size
        ("小脑扁桃体下疝约8mm。", None),
        ("左侧颞叶未见直径大于5mm的结节。", None),
        ("左侧颞叶病灶约12×15mm，周围水肿带宽约2cm。", 15.0),  # the oedema is no lesion
        ("左侧颞叶病灶约12×15mm，周围见宽约2cm的水肿带。", 15.0),
        ("左侧额叶肿块约2cm，中线移位约8mm。", 20.0),
    ],
)
def test_sizes(text: str, size_mm: float | None) -> None:
    assert structure_report(text).largest_size_mm == size_mm


def test_headings_of_different_templates() -> None:
    for text in (
        "【影像所见】左侧颞叶见结节。\n【诊断意见】胶质瘤。",
        "MRI所见：左侧颞叶见结节。\n印象：胶质瘤。",
        "检查所见:左侧颞叶见结节。结论:胶质瘤。",
        "头颅MRI平扫：左侧颞叶见结节。考虑胶质瘤。",
    ):
        sections = structure_report(text).sections
        assert "左侧颞叶见结节" in sections.findings and "胶质瘤" not in sections.findings, text
        assert "胶质瘤" in sections.impression and "结节" not in sections.impression, text


def test_structure_jsonl_quarantines_bad_lines_and_pseudonymizes(tmp_path: Path) -> None:
    from brainfm.pseudonym import Pseudonymizer, center_patient_key

    src = tmp_path / "in.jsonl"
    src.write_text(
        "\n".join([
            json.dumps({"id": "ACC0012345", "patient_id": "PID778899", "text": "姓名：张伟。印象：左侧颞叶胶质瘤，ID PID778899。"}, ensure_ascii=False),
            "{not json",
            json.dumps({"id": "A2", "text": "  "}),
        ]),
        encoding="utf-8",
    )
    key = Pseudonymizer(b"k" * 32)
    with pytest.raises(ValueError, match="center"):
        structure_jsonl(src, tmp_path / "out.jsonl", key)
    summary = structure_jsonl(src, tmp_path / "out.jsonl", key, center="center_a")
    assert (summary.n_read, summary.n_written) == (3, 1)
    assert [line for line, _ in summary.quarantined] == [2, 3]
    (record,) = read_jsonl(tmp_path / "out.jsonl")
    assert record["id"] == key.accession("ACC0012345")
    assert record["patient"] == key.patient_id(center_patient_key("center_a", "PID778899"))  # as its images
    assert "text_deid" not in record and "张伟" not in str(record) and "PID778899" not in str(record)
    assert validate_structured([record], ["张伟", "PID778899", "ACC0012345"]) == []


def test_structure_jsonl_quarantines_lines_of_wrong_types_and_goes_on(tmp_path: Path) -> None:
    good = {"id": "A1", "text": "印象：左侧颞叶胶质瘤。"}
    bad = [
        {"id": "A2", "text": "印象：胶质瘤。", "identifiers": [123456]},
        {"id": "A3", "text": "印象：胶质瘤。", "identifiers": "张伟"},
        {"id": "A4", "text": "印象：胶质瘤。", "patient_id": ["PID1"]},
        {"id": True, "text": "印象：胶质瘤。"},
        {"id": "A6", "text": 42},
    ]
    src = tmp_path / "in.jsonl"
    lines = [json.dumps(r, ensure_ascii=False) for r in [*bad, {"id": 7, "text": "印象：脑膜瘤。"}, good]]
    src.write_bytes(("\n".join(lines) + "\n").encode() + b"\xff\xfe{bad bytes}\n")
    out = tmp_path / "out.jsonl"
    out.write_text("stale\n", encoding="utf-8")
    summary = structure_jsonl(src, out)
    assert (summary.n_read, summary.n_written) == (8, 2)
    assert [line for line, _ in summary.quarantined] == [1, 2, 3, 4, 5, 8]
    assert not any("123456" in reason or "张伟" in reason for _, reason in summary.quarantined)
    assert [r["id"] for r in read_jsonl(out)] == ["7", "A1"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl", "out.jsonl"]  # no temp file left


def test_structure_jsonl_leaves_no_partial_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from brainfm.reports import structure

    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps({"id": f"A{i}", "text": "印象：胶质瘤。"}) + "\n" for i in range(3)))
    out = tmp_path / "out.jsonl"
    out.write_text("previous\n", encoding="utf-8")
    real, calls = structure.structure_report, []

    def interrupted_at_the_third(*args: Any) -> structure.StructuredReport:
        calls.append(args)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*args)

    monkeypatch.setattr(structure, "structure_report", interrupted_at_the_third)
    with pytest.raises(KeyboardInterrupt):
        structure_jsonl(src, out)
    assert out.read_text(encoding="utf-8") == "previous\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl", "out.jsonl"]
