"""Text de-identification: planted identifiers go, clinical content stays, the scanner agrees."""

from __future__ import annotations

import pytest

from brainfm.reports import deidentify_text, find_identifiers

TEXT = (
    "温州医科大学附属第一医院 MRI报告单\n"
    "姓名：诸葛明  住院号：ZY20230512  电话：0577-88001234  检查日期：2023年5月12日 14:30\n"
    "王小红，女，45岁。左侧颞叶见结节，大小约3.2×2.5cm，b=1000。建议至上级医院复查。\n"
    "报告医师：李明  审核医师：王芳  Radiologist: Dr. Xu Ming"
)
PLANTED = ["温州医科大学附属第一医院", "诸葛明", "ZY20230512", "0577-88001234", "2023年5月12日", "王小红", "李明", "王芳", "Xu Ming"]


def test_planted_identifiers_are_removed_and_content_kept() -> None:
    clean = deidentify_text(TEXT)
    assert find_identifiers(clean, PLANTED) == []
    for kept in ("左侧颞叶见结节，大小约3.2×2.5cm，b=1000", "上级医院", "女，45岁", "MRI报告单"):
        assert kept in clean
    assert "[姓名]" in clean and "[医院]" in clean and "[医师]" in clean


def test_scanner_finds_what_is_left() -> None:
    found = find_identifiers(TEXT)
    for planted in ("ZY20230512", "0577-88001234", "李明", "温州医科大学附属第一医院"):
        assert planted in found


def test_known_identifiers_in_their_dicom_renderings() -> None:
    text = "患者ZHANG WEI于2021-03-04检查，复查2021年3月4日。"
    clean = deidentify_text(text, ["ZHANG^WEI", "20210304"])
    assert "ZHANG" not in clean and "2021" not in clean
    assert find_identifiers(text, ["20210304"], patterns=False) == ["2021-03-04", "2021年3月4日"]


@pytest.mark.parametrize(
    ("text", "identifier", "placeholder"),
    [
        ("患者王伟因头痛3天入院", "王伟", "[姓名]"),
        ("患者陈晓（女，32岁）", "陈晓", "[姓名]"),
        ("姓名欧阳娜娜，女", "欧阳娜娜", "[姓名]"),
        ("Patient: ZHANG^WEI", "ZHANG^WEI", "[姓名]"),
        ("pt zhang^wei^^", "zhang^wei", "[姓名]"),
        ("手机号：138-1234-5678", "138-1234-5678", "[电话]"),
        ("请联系138-1234-5678复诊", "138-1234-5678", "[电话]"),
        ("请联系138 1234 5678复诊", "138 1234 5678", "[电话]"),
        ("科室010-12345678", "010-12345678", "[电话]"),
        ("住院号 123456", "123456", "[编号]"),
        ("病理号：123456", "123456", "[编号]"),
        ("门诊号 4567", "4567", "[编号]"),
        ("病案号5678", "5678", "[编号]"),
        ("影像号 5678", "5678", "[编号]"),
        ("检查号：12345", "12345", "[编号]"),
        ("检查日期：23-05-12", "23-05-12", "[日期]"),
        ("患者王伟于2023年5月入院", "王伟", "[姓名]"),
        ("检查于05/12/2023复查", "05/12/2023", "[日期]"),
        ("检查于2023年5月12日", "2023年5月12日", "[日期]"),
        ("检查于2023.05.12", "2023.05.12", "[日期]"),
    ],
)
def test_unlabelled_and_loosely_labelled_identifiers(text: str, identifier: str, placeholder: str) -> None:
    clean = deidentify_text(text)
    assert identifier not in clean and placeholder in clean
    assert identifier in find_identifiers(text)  # the gate sees what the de-identifier removes


@pytest.mark.parametrize(
    "text",
    [
        "患者左侧额叶见结节，大小约1.2×1.5cm。",
        "患者高热3天，MRI示右侧颞叶异常信号。",
        "患者高龄，配合欠佳。",
        "请给患者简单说明检查结果。",
        "多发结节，直径约0.3-0.8cm，b=1000，T2WI。",
        "病灶约10.5-12mm。",
        "患者于我院就诊，于今日来院。",
        "病人于昨晚入院，患者于昨日因头痛入院。",
        "患者高血压，患者高血压因未规律服药。",
        "患者曾就诊于我院。",
        "结节大小12-10-15mm，另见12.10.20mm病灶。",
        "见于10/11/12层面，第23-05-12层，软件V10.1.12。",
    ],
)
def test_medical_text_is_kept(text: str) -> None:
    assert deidentify_text(text) == text
    assert find_identifiers(text) == []
