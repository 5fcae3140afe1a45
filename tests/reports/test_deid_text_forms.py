"""Report forms besides mainland simplified Chinese with surname-led names: traditional characters (Hong Kong,
Macau, Taiwan), romanised names, names without a Han surname, lists of names, and further hospital, phone and
ID forms. Identifiers in them are masked; clinical text in them round-trips unchanged. Every example is written
for these tests."""

from __future__ import annotations

import pytest

from brainfm.reports import deidentify_text, find_identifiers
from brainfm.reports.deid_text import DOCTOR, NAME, identifier_spans
from brainfm.reports.lexicon import simplified

TAIWAN_HEADER = (
    "臺中榮民總醫院 放射線部\n姓名：陳志明  性別：男  病歷號：TC0012345\n檢查日期：2023年4月6日\n"
    "報告醫師：黃怡君　審核醫師：張家豪"
)
# (text, the identifiers in it)
FORMS = [
    # traditional characters: surnames, labels and hospital suffixes as the simplified vocabularies have them
    (TAIWAN_HEADER, ["臺中榮民總醫院", "陳志明", "TC0012345", "2023年4月6日", "黃怡君", "張家豪"]),
    (
        "澳門仁伯爵綜合醫院 影像科\n病人：鄭詠詩 女 41歲\n主診醫生：區志強",
        ["澳門仁伯爵綜合醫院", "鄭詠詩", "區志強"],
    ),
    ("已電話通知神經外科劉國棟醫師，外院（聖保祿醫院）CT示出血。", ["劉國棟", "聖保祿醫院"]),
    ("放射科醫師：謝佩珊／簡志偉", ["謝佩珊", "簡志偉"]),
    ("已通知專科護理師賴雅雯", ["賴雅雯"]),
    # romanised names: hyphenated given names, "Surname, Given-Name", English staff labels, HKID and case numbers
    ("Patient: LEUNG Chi-wai   Sex/Age: F/64   HKID: Y765432(1)", ["LEUNG Chi-wai", "Y765432(1)"]),
    ("Referred by Dr. Fung Siu-ming, Neurosurgery.", ["Fung Siu-ming"]),
    ("Verified by: Dr. Szeto Ka-yan, Consultant", ["Szeto Ka-yan"]),
    ("Vetted by: Dr. Mak Hoi-yan", ["Mak Hoi-yan"]),
    ("Name: Tsai, Mei-Ling    Case No.: HK20012345(A)", ["Tsai, Mei-Ling", "HK20012345(A)"]),
    (
        "Date of exam: 17-Aug-2022 09:15. Results conveyed to Dr. Tang Wai-keung by phone.",
        ["17-Aug-2022 09:15", "Tang Wai-keung"],
    ),
    (
        "姓名：Lin, Yi-Hsuan（林宜萱）  報告醫師：Dr. Kuo Chih-Wei（郭志偉）",
        ["Lin, Yi-Hsuan", "林宜萱", "Kuo Chih-Wei", "郭志偉"],
    ),
    ("Prince of Wales Hospital, The Chinese University of Hong Kong", ["Prince of Wales Hospital"]),
    (
        "Seen at Ruttonjee Hospital, Hong Kong University Medical School.",
        ["Ruttonjee Hospital, Hong Kong University"],
    ),
    # names without a Han surname after role words, alone or in lists
    ("报告医师：艾合买提·吐尔逊  审核医生：阿不都热依木", ["艾合买提·吐尔逊", "阿不都热依木"]),
    ("记录员：古再丽努尔", ["古再丽努尔"]),
    ("陪同家属：巴图孟和", ["巴图孟和"]),
    ("翻译：旺堆次仁", ["旺堆次仁"]),
    ("医师：其其格/央金拉姆", ["其其格", "央金拉姆"]),
    # lists of names with rare surnames, and names written with spaces
    (
        "参加人员：缪文涛、邝志坚、晏红、瞿亮、郗美玲\n记录：谯丽",
        ["缪文涛", "邝志坚", "晏红", "瞿亮", "郗美玲", "谯丽"],
    ),
    ("会诊专家：笪国强，操海燕", ["笪国强", "操海燕"]),
    ("姓 名：孙 杰    性 别：女", ["孙 杰"]),
    ("审核医师：崔 明 哲", ["崔 明 哲"]),
    # a name said again without a context of its own, after a department, or holding a clinical word
    ("（本报告由住院医师方舟书写，方舟的初稿已由上级医师核对。）", ["方舟", "方舟"]),
    ("已通知心内科罗振宇、护士长孔丽等，罗振宇已复述。", ["罗振宇", "孔丽", "罗振宇"]),
    ("其母韦秀英曾因脑出血住院。", ["韦秀英"]),
    ("经麻醉科医生滕浩然镇静后完成检查。", ["滕浩然"]),
    ("建议至神经内科安静怡主任门诊复诊。", ["安静怡"]),
    ("技师全志高 审核冯涛", ["全志高", "冯涛"]),
    # hospitals, phone extensions and labelled IDs
    ("苏州大学附属儿童医疗中心 放射科", ["苏州大学附属儿童医疗中心"]),
    ("外院（嘉禾诊所）MRI提示脑膜瘤。", ["嘉禾诊所"]),
    ("已电话通知值班医生（电话0512-66778899转2105）。", ["0512-66778899转2105"]),
    ("危急值已通知主管护士（分机5127）。", ["5127"]),
    ("内线021-64041990-3366", ["021-64041990-3366"]),
    ("会诊编号：HZ-22-0815\n受试者编号：SZ-0042", ["HZ-22-0815", "SZ-0042"]),
]

# Clinical text in the same forms, and near the new rules: role words before ordinary words, departments
# before no name, surnames that are everyday words (后, 都, 经, 家), English ranks and hyphenated terms.
CLINICAL = [
    "左側顳葉見長T2信號，考慮膠質瘤可能。",
    "雙側腦室旁白質多發點狀高信號，請結合臨床。",
    "印象：右側大腦中動脈供血區急性腦梗死。",
    "已通知神經外科，建議急診手術。",
    "其父曾有高血压病史，其母也有偏头痛。",
    "通知临床科室主任及护士长。",
    "经治医生已知晓，家庭医生随访。",
    "患者家属（其女）拒绝增强检查。",
    "申请：神内",
    "送检：放射科",
    "翻译：维吾尔语",
    "陪同家属：丈夫",
    "参加人员：神经外科、神经内科、放射科",
    "医生常规复查，也可随访。",
    "平扫后增强，后方静脉窦通畅，都属正常变异。",
    "与周围组织分界清，由神经内科会诊后决定。",
    "MRI Post-contrast T1-weighted images show ring enhancement. Follow-up in 3-6 months.",
    "Vetted by: Consultant Neuroradiologist",
    "Re-scan in the next 24 hours if symptoms worsen.",
]


def _covered(text: str, identifier: str) -> bool:
    """Every occurrence of ``identifier`` in ``text`` lies inside masked spans."""
    masked = {i for a, b, _ in identifier_spans(text) for i in range(a, b)}
    at = text.find(identifier)
    while at >= 0:
        if not masked.issuperset(range(at, at + len(identifier))):
            return False
        at = text.find(identifier, at + 1)
    return True


@pytest.mark.parametrize(("text", "identifiers"), FORMS)
def test_identifiers_in_other_forms_are_masked(text: str, identifiers: list[str]) -> None:
    for identifier in identifiers:
        assert identifier in text
        assert _covered(text, identifier), (identifier, deidentify_text(text))
    assert find_identifiers(deidentify_text(text)) == []


@pytest.mark.parametrize("text", CLINICAL)
def test_clinical_text_in_other_forms_round_trips(text: str) -> None:
    assert identifier_spans(text) == []
    assert deidentify_text(text) == text


def test_traditional_text_keeps_its_characters() -> None:
    """The finders read simplified characters, but only the identifiers of the original text are replaced."""
    text = "報告醫師：黃怡君　審核醫師：張家豪\n診斷：左側顳葉膠質瘤。"
    assert deidentify_text(text) == f"報告醫師：{DOCTOR}　審核醫師：{DOCTOR}\n診斷：左側顳葉膠質瘤。"
    assert deidentify_text("病人：鄭詠詩 女 41歲") == f"病人：{NAME} 女 41歲"


def test_simplified_folds_one_character_for_one() -> None:
    text = "臺北榮民總醫院 報告醫師 病歷號 左側顳葉"
    assert simplified(text) == "台北荣民总医院 报告医师 病历号 左侧颞叶"
    assert len(simplified(text)) == len(text)
    # Simplified text is left as it is, and so are characters simplified text writes too (乾, 於, 著).
    assert simplified("左侧颞叶见结节，显著强化。乾隆於著") == "左侧颞叶见结节，显著强化。乾隆於著"


def test_no_name_is_read_into_a_hospital() -> None:
    """于 is a surname too, but 于 before a hospital opens a place (于|海军军医大学…), not a name."""
    text = "患者2022年5月于海军军医大学第一附属医院手术。"
    assert [text[a:b] for a, b, _ in identifier_spans(text)] == ["2022年5月", "海军军医大学第一附属医院"]


def test_a_department_is_no_hospital() -> None:
    text = "北京天坛医院 神经影像中心"
    assert [text[a:b] for a, b, _ in identifier_spans(text)] == ["北京天坛医院"]
