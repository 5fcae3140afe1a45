"""Text de-identification: planted identifiers go, clinical content stays, the scanner agrees."""

from __future__ import annotations

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
