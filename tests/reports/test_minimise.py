"""Data minimisation of the stored report text (`brainfm.reports.minimise`): the clauses that notify, sign,
contact or name someone and the rows of tables go, whether or not the de-identification found an identifier in
them; the clinical text stays as written."""

from __future__ import annotations

from pathlib import Path

import pytest

from brainfm.jsonl import read_jsonl
from brainfm.reports import structure_report
from brainfm.reports.minimise import clinical_text
from brainfm.reports.sections import split_sections

HANDWRITTEN = Path(__file__).parents[1] / "data" / "reports" / "handwritten.jsonl"


def test_notification_and_sign_off_go_and_the_finding_stays() -> None:
    impression = (
        "右侧基底节区脑出血，已电话通知神经外科值班医生刘振东，时间10:25。\n报告医师：许文博　审核医师：钱立"
    )
    assert clinical_text(impression) == "右侧基底节区脑出血。"


def test_a_contact_clause_takes_the_rest_of_its_sentence() -> None:
    text = "左侧额叶胶质瘤可能。Family contact: LAU Chi Keung (father), 6078 2213. No haemorrhage."
    assert clinical_text(text) == "左侧额叶胶质瘤可能。 No haemorrhage."


def test_a_signed_aside_goes_alone() -> None:
    text = "与2023-02-14外院MRI（报告者朱丹）比较，病灶较前增大（约32mm），新发出血。"
    assert clinical_text(text) == "与2023-02-14外院MRI比较，病灶较前增大（约32mm），新发出血。"


def test_log_speaker_and_table_rows_go() -> None:
    text = (
        "[日期] 放射科-小周（周一鸣）：右侧颞顶硬膜外血肿，最厚约21mm。\n"
        "12｜2024-08-13 01:22｜潘德荣｜CT240813004｜小脑出血｜易海鹏\n"
        "1,MR24091201,卢春燕,女,45,ZY2024-33120,头颅MRI平扫+增强\n"
        "2,MR24091202,HOU XIAOFENG,男,38,MZ0887123,颈椎MRI平扫\n"
        "双侧额叶,顶叶,颞叶,枕叶皮层下多发缺血灶。"
    )
    assert (
        clinical_text(text) == "右侧颞顶硬膜外血肿，最厚约21mm。\n双侧额叶,顶叶,颞叶,枕叶皮层下多发缺血灶。"
    )


@pytest.mark.parametrize(
    "clinical",
    [
        "双侧苍白球及齿状核对称性钙化，考虑Fahr病样钙化。",  # 核对 inside 齿状核对称
        "Periventricular lesions, consistent with MS. Dawson fingers.",  # MS is not Ms.
        "建议结合临床及实验室检查，必要时增强扫描。",
        "左侧小脑脑桥角区占位（约25mm×20mm），考虑听神经瘤，Koos 3级。",
    ],
)
def test_clinical_text_is_unchanged(clinical: str) -> None:
    assert clinical_text(clinical) == clinical


def test_stored_sections_of_the_handwritten_reports_keep_their_clinical_sentences() -> None:
    """On the 46 hand-written reports, every stored sentence is one the splitter found, and minimisation drops
    under 4 % of the characters (sign-off lines and a demographic line's name; their categories, sites and sizes
    are scored unchanged in test_structure)."""
    kept_chars = full_chars = 0
    for record in read_jsonl(HANDWRITTEN):
        structured = structure_report(record["text"])
        split = split_sections(structured.text_deid)
        for full, kept in (
            (split.findings, structured.sections.findings),
            (split.impression, structured.sections.impression),
        ):
            assert all(sentence in full for sentence in kept.replace("\n", "。").split("。"))
            kept_chars, full_chars = kept_chars + len(kept), full_chars + len(full)
    assert 0.96 < kept_chars / full_chars < 1.0
