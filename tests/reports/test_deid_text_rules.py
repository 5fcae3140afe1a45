"""The general rules of issue 11 ("privacy to zero"), one at a time: a name after any person-role label in any
script, a romanised name next to a name, institution lines in upper case, labelled IDs, phones by shape, ROC and
other date shapes, lists of names by department, and the precision guards (eponyms, kinship words). Each rule
masks its identifier in every position it names; clinical text near each rule round-trips unchanged. Every
example is written for these tests (none is taken from the identifier sets)."""

from __future__ import annotations

import pytest

from brainfm.reports import deidentify_text
from brainfm.reports.deid_text import DATE, DOCTOR, HOSPITAL, ID, NAME, PHONE, identifier_spans


def _masked(text: str) -> list[tuple[str, str]]:
    """Each masked string of ``text`` with its placeholder, in order."""
    return [(text[a:b], placeholder) for a, b, placeholder in identifier_spans(text)]


# (text, what is masked in it and how, in order)
CASES = [
    # a romanised name right after a name (space, parentheses, slash) or right before it (slash, parenthesis):
    # the same person, with the same placeholder
    ("姓名：罗嘉欣 LAW KA YAN　性别：女", [("罗嘉欣", NAME), ("LAW KA YAN", NAME)]),
    ("病人：鄧志明 TANG Chi-ming　男/52歲", [("鄧志明", NAME), ("TANG Chi-ming", NAME)]),
    ("報告醫師：林俊傑 (Lin Chun-chieh)", [("林俊傑", DOCTOR), ("Lin Chun-chieh", DOCTOR)]),
    ("審核醫師：張雅婷（CHANG, YA-TING）", [("張雅婷", DOCTOR), ("CHANG, YA-TING", DOCTOR)]),
    ("报告医师 Radiologist：许文静 / Xu Wenjing", [("许文静", DOCTOR), ("Xu Wenjing", DOCTOR)]),
    # the name recogniser reads no Latin script, so a Chinese name after a romanised one gets the patient's
    # placeholder whoever it names
    ("報告醫生：Maria Fernandes／何美玲", [("Maria Fernandes", DOCTOR), ("何美玲", NAME)]),
    ("Reported by: Chen Yi-ling / 陳怡伶", [("Chen Yi-ling", DOCTOR), ("陳怡伶", NAME)]),
    # Latin names: "Surname, Given Given", upper case after the comma, an English name after the comma, accents
    ("Name: WONG, Siu Fung   Sex: M", [("WONG, Siu Fung", NAME)]),
    ("Name: HO Ka-lok, Kelvin   Age: 33", [("HO Ka-lok, Kelvin", NAME)]),
    ("Patient: José Conceição   Age/Sex: 60/M", [("José Conceição", NAME)]),
    ("Referred by Dr. Ip Wai-man, Neurosurgery.", [("Ip Wai-man", DOCTOR)]),
    ("Referring: Dr. Sun Lei, ENT", [("Sun Lei", DOCTOR)]),
    # a romanised name after a Chinese role label, glossed or titled: staff or relative
    ("技师 Radiographer：Lam Wing Sze", [("Lam Wing Sze", DOCTOR)]),
    ("家属：Ana Sousa", [("Ana Sousa", NAME)]),
    # a title before a Chinese name, after a role label or in running text
    ("核对医生：Dr. 费思远", [("费思远", DOCTOR)]),
    ("Discussed with the patient's daughter Ms. 莫婉婷 today.", [("莫婉婷", NAME)]),
    # new role words: the surgeon, 覆核 (not folded to 复核), a kinship word before a relative's name
    ("既往于外院手术（术者：滕海波）。", [("滕海波", DOCTOR)]),
    ("覆核：游志豪", [("游志豪", DOCTOR)]),
    ("监护人：外婆 蔡桂英", [("蔡桂英", NAME)]),
    # after a separator a name standing alone, whatever its characters; with none, a name to the end of its run
    ("姓名 巴图其其格　性别 男", [("巴图其其格", NAME)]),
    ("记录：宝力道", [("宝力道", DOCTOR)]),
    ("已电话通知主管医生贡布扎西（分机3302）。", [("贡布扎西", DOCTOR), ("3302", PHONE)]),
    ("家属（其女刘晓雯，电话 13612345678）", [("刘晓雯", NAME), ("13612345678", PHONE)]),
    # a label written with spaces, and a name written with spaces
    ("姓  名：闵 晓 东　　性  别：男", [("闵 晓 东", NAME)]),
    # a list of names by department, across ；
    (
        "参会人员：神经内科 蔺志刚、佟丽；影像科 詹宏；病理科 庞雪梅",
        [("蔺志刚", DOCTOR), ("佟丽", DOCTOR), ("詹宏", DOCTOR), ("庞雪梅", DOCTOR)],
    ),
    # institutions in upper case or Portuguese, a word before or none
    ("PRINCESS MARGARET HOSPITAL\nDepartment of Radiology", [("PRINCESS MARGARET HOSPITAL", HOSPITAL)]),
    ("UNITED CHRISTIAN SANATORIUM & CLINIC", [("UNITED CHRISTIAN SANATORIUM & CLINIC", HOSPITAL)]),
    ("Hospital Kiang Wu - Radiologia", [("Hospital Kiang Wu", HOSPITAL)]),
    (
        "InstitutionName: Xiangya Hospital Central South University",
        [("Xiangya Hospital Central South University", HOSPITAL)],
    ),
    # any label ending in 号/No./ID
    ("转诊号：ZZ-2025-0042", [("ZZ-2025-0042", ID)]),
    ("Process No.: 3318204-7", [("3318204-7", ID)]),
    ("N.º de processo：55120938", [("55120938", ID)]),
    # phones by shape after a phone cue or in a relative's line, within the sentence
    ("Results conveyed by phone (2468 1357) at 10:05.", [("2468 1357", PHONE)]),
    ("家屬：兒子 葉志偉 0933-415-627", [("葉志偉", NAME), ("0933-415-627", PHONE)]),
    # dates: the ROC calendar, 号 for the day, a year and a month, a labelled three-digit year
    ("檢查日期：112/11/05", [("112/11/05", DATE)]),
    ("民國112年11月5日檢查", [("民國112年11月5日", DATE)]),
    ("于5月12号复查", [("5月12号", DATE)]),
    ("随访至2024-09无变化", [("2024-09", DATE)]),
]

# Clinical text near each rule: nothing to mask.
CLINICAL = [
    "查体：双侧霍夫曼征阴性，左侧巴宾斯基征阳性，克氏征阴性。",  # eponyms that read as names
    "韦克斯勒评分正常。",
    "监护人：祖母",  # kinship words alone
    "陪同：外婆",
    "患者高热（Left Hemisphere）",  # report words in parentheses
    "申请：Brain MRI",
    "记录：Normal Findings",
    "审核 Brain Stem Study",
    "Refer to Stroke Centre if symptoms recur.",
    "Memory Clinic follow-up recommended.",
    "MEDICAL CENTRE",
    "IDH1 R132H突变，Ki-67约30%。",  # ID is no label inside a word
    "Series No.: 4  Image No.: 12",  # short numbers after No. are no ID
    "T2WI高信号 3处，型号：Skyra 3.0T",  # 信号 and 型号 are no ID labels
    "家属陪同下检查，b值 1000 2000 s/mm2。",  # numbers before a unit are no phone
    "已告知家属。复查间隔 3 6 12 个月。",  # a cue acts within its sentence
    "2019-2021年间多次复查。",  # a range of years is no year and month
    "报告医师：同上；余脑实质未见异常。",
    "参加人员：神经外科、神经内科；放射科",
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_each_rule_masks_its_identifier(text: str, expected: list[tuple[str, str]]) -> None:
    assert _masked(text) == expected, deidentify_text(text)


@pytest.mark.parametrize("text", CLINICAL)
def test_clinical_text_near_the_rules_round_trips(text: str) -> None:
    assert identifier_spans(text) == [], _masked(text)
    assert deidentify_text(text) == text


def test_a_header_line_becomes_placeholders_only() -> None:
    """A bilingual Macau header: the Chinese and the Portuguese hospital name, the name in both scripts, the
    number after a Portuguese label."""
    text = "鏡湖醫院 CENTRO HOSPITALAR KIANG WU\n姓名 Nome：歐陽嘉慧 AU YEUNG KA WAI　N.º de utente：7730215"
    assert deidentify_text(text) == f"{HOSPITAL} {HOSPITAL}\n姓名 Nome：{NAME} {NAME}　N.º de utente：{ID}"
