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
    # names spaced out: after a role word, glued to it or to the next word, in a worklist's row, in a list
    ("已告知其妻杨 小 梅（电话另附）。", ["杨 小 梅"]),
    ("被鉴定人邴 强驾驶电动车受伤。", ["邴 强"]),
    ("推荐至神经外科海 明副主任医师门诊。", ["海 明"]),
    ("阅片人：本中心 司马 瑜", ["司马 瑜"]),
    ("02   07:50 0003720015  金 华             男   45", ["金 华"]),
    ("操作技师：早班 尉 晓 娟、施 凯", ["尉 晓 娟", "施 凯"]),
    # a line OCR spaced out, read without its single blanks (O and l among digits read as 0 and 1)
    ("年 龄 ： 6 8    门 诊 号 ： 2O23O9O4 1 l 7", ["2O23O9O4 1 l 7"]),
    ("Pa tient: L I U  G U 0 Y I N G     Sex: F   A ge: 7O", ["L I U  G U 0 Y I N G"]),
    ("Date: 1 2 / 0 8 / 2 0 1 9\nDr: W A N G  Y A N", ["1 2 / 0 8 / 2 0 1 9", "W A N G  Y A N"]),
    ("出生日期：民國 5 8 年 1 O 月 2 3 日", ["民國 5 8 年 1 O 月 2 3 日"]),
    ("转诊医师：许 文 彬   电话：(07)3l5-2860 分机 7 5 2 3", ["(07)3l5-2860 分机 7 5 2 3"]),
    # chat logs, a name after its department and a hyphen, user names in pinyin
    ("[03/10/2023, 21:15] Winnie Ho: 我哋到咗", ["03/10/2023, 21:15", "Winnie Ho"]),
    ("[2024-01-08 19:55] 庄严（临沂市人民医院 神经外科）：收到", ["2024-01-08 19:55", "庄严"]),
    ("22:05 影像科-温宁：CT平扫未见出血", ["温宁"]),
    ("账号：zhangwei（张伟，放射科）", ["zhangwei", "张伟"]),
    ("电话通知信息科值班 lihong（李红）", ["lihong", "李红"]),
    # dates: a comma or weekday before the clock, short labelled years, ROC and Chinese numerals, dictated English
    ("检查时间为2024年6月8日（周六）14:20。", ["2024年6月8日（周六）14:20"]),
    ("检查日期：23.5.6", ["23.5.6"]),
    ("申請日期：中華民國112年11月10日", ["中華民國112年11月10日"]),
    ("檢查日：民國一一二年三月五日", ["民國一一二年三月五日"]),
    ("口述时间：二零二四年四月二十五日 上午十点零七分", ["二零二四年四月二十五日 上午十点零七分"]),
    ("Date of service: January nine, twenty twenty four.", ["January nine, twenty twenty four"]),
    ("Stable compared with 09/2023.", ["09/2023"]),
    # IDs: hyphenated codes, a log's user codes, FHIR references, issued numbers, a ward's bed in a row
    ("on the enclosed CD (study NNI-MRA-230908-0112).", ["NNI-MRA-230908-0112"]),
    ("2024-01-03 09:40:21  N2231    符洁     NEU-PC", ["N2231", "符洁"]),
    ('"subject": {"reference": "Patient/GZ-7720135", "display": "司徒嘉怡"}', ["GZ-7720135", "司徒嘉怡"]),
    ('"resultsInterpreter": [{"display": "利文强"}, {"display": "Li Wenqiang"}]', ["利文强", "Li Wenqiang"]),
    ("鄂同济司鉴中心[2023]临鉴字第1187号", ["鄂同济司鉴中心[2023]临鉴字第1187号"]),
    ("NICU-03 | 解红梅 女 45岁", ["NICU-03", "解红梅"]),
    # hospitals: English, Italian, Malay and Korean names, forensic and dispatch centres, codes that recur
    ("National Hospital for Neurology and Neurosurgery, London", ["National Hospital for Neurology and Neurosurgery"]),
    ("NATIONAL NEUROSCIENCE INSTITUTE (SINGAPORE)", ["NATIONAL NEUROSCIENCE INSTITUTE (SINGAPORE)"]),
    ("To: Prof. Marco Bianchi (Università di Padova)", ["Marco Bianchi", "Università di Padova"]),
    ("To: Dr. Ng Siew Lan, Klinik Keluarga Ng, Petaling Jaya", ["Ng Siew Lan", "Klinik Keluarga Ng"]),
    ("国际门诊 / 칭다오대학 부속병원 국제진료", ["칭다오대학 부속병원"]),
    ("湖北同济法医学司法鉴定中心\n出车单位：成都市急救指挥中心", ["湖北同济法医学司法鉴定中心", "成都市急救指挥中心"]),
    ("转出单位：江西省赣州市于都县人民医院", ["江西省赣州市于都县人民医院"]),
    ("(0008, 0080) Institution Name  LO: 'Jinan Central Hospital'", ["Jinan Central Hospital"]),
    ("DOB 11/23/1990, MGH MRN 7743-1190. Diagnosed at MGH in 2019.", ["MGH", "7743-1190"]),
    (
        (
            "MSH|^~\\&|RIS|ZJPH_RAD|HIS|ZJPH|20240115093512||ORU^R01|1|P|2.4\n"
            "PID|1||0042871953^^^ZJPH^MR~YB3301-0087712^^^CHN^SS||SHANGGUAN^YAN\nPV1|1|I|NS2^12^01^ZJPH||||"
        ),
        ["ZJPH", "0042871953", "YB3301-0087712", "NS2^12^01", "SHANGGUAN^YAN"],
    ),
    # names: initials, nicknames, kin in English, Korean, Japanese, worklists, lists, CSV columns, ranks
    ("受试者姓名缩写：DJH   Subject initials: L-Y-Q", ["DJH", "L-Y-Q"]),
    ('姓名：卢 乐（小名"乐乐"）', ["卢 乐", "乐乐"]),
    ("wife in Hong Kong; contact wife Lv Na 188 6401 2297", ["Lv Na", "188 6401 2297"]),
    ("Please contact her mother, Grace Wu, at the clinic.", ["Grace Wu"]),
    ("陪同：友人 박지현（PARK JIHYUN）   审核：Dr. 권민호（交流医师）", ["박지현", "PARK JIHYUN", "권민호"]),
    ("Patient: TANAKA Hiroshi（田中 浩）, M, 66 y", ["TANAKA Hiroshi", "田中 浩"]),
    ("Interpreter 翻译: 佐藤 美咲 (Sato Misaki), 电话另附", ["佐藤 美咲", "Sato Misaki"]),
    ("05   09:10 0003696214  Sokolova, Anna    女   38   颈椎MRI", ["Sokolova, Anna", "0003696214"]),
    ("成员 娄 平、Wolf Schneider（德国进修医师）", ["娄 平", "Wolf Schneider"]),
    ("首诊医生：急诊科 时光（开具头颅CT）\n调取人：民警 舒畅（警号 011287）", ["时光", "舒畅"]),
    ("会诊专家：影像科 普建新 主任医师", ["普建新"]),
    ("Authors: Yuxin LIU, Hao ZHOU and Jianguo Huang* (Department of Radiology)", ["Yuxin LIU", "Hao ZHOU", "Jianguo Huang"]),
    ("his mother, Hu Xiuzhen (胡秀珍, Hú Xiùzhēn), on 2 August", ["Hu Xiuzhen", "胡秀珍", "Hú Xiùzhēn"]),
    ('"exam_id","referring_dr"\n"CT001","Liang Fei"\n"CT002","次旦"', ["Liang Fei", "次旦"]),
    ("22:03 急诊-鲍振华：@神经内科\n22:42 护士长-阎红：导管室已准备", ["鲍振华", "阎红"]),
    ("复核：理赔二部 段然\n打印人：登记处 戚文", ["段然", "戚文"]),
    ("出生日期：77年9月14日   比较：22.11.15", ["77年9月14日", "22.11.15"]),
    ("比较：2023年三月二十日外院MRI", ["2023年三月二十日"]),
    ("Corresponding author: Jianguo Huang, tel. +86 27 8572 6413", ["Jianguo Huang", "+86 27 8572 6413"]),
    ("NRIC: 650814-10-5531", ["650814-10-5531"]),
    ("温岭市第一人民医阮；南京市秦淮区夕阳红养老服务中心", ["温岭市第一人民医阮", "南京市秦淮区夕阳红养老服务中心"]),
    # addresses: a town first after where one lives, a road's house number and flat
    ("家在院东头镇桃花坪村12号，儿子在外地。", ["院东头镇桃花坪村12号"]),
    ("喺屋企，跑馬地黃泥涌道31號嘉蘭閣12樓B室", ["跑馬地黃泥涌道31號嘉蘭閣12樓B室"]),
    ("her grandmother, at 上海市黄浦区瑞金二路150弄7号302室.", ["上海市黄浦区瑞金二路150弄7号302室"]),
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
    # near the seventh round's rules: words apart in dictation, a week before a department, a hospital's grade
    # or stamp, a trial's protocol number, a ward without its facility, a ditto
    "检查 头颅 CT 平扫 加 CTA\n所见 蛛网膜下腔 弥漫性高密度 鞍上池 环池 外侧裂池 均可见",
    "结论 中线移位 医生 复核",
    "### 第24周 神经肿瘤MDT病例清单",
    "头 晕 加 重 伴 走 路 不 稳 。",
    "生前主要疾病最高诊断单位：三级医院",
    "（本证明加盖医院诊断证明专用章后有效）",
    "Protocol No. TASTE2-CN-005 (not a personal number)",
    "PV1|1|I|NEURO^12^B",
    "NK1|1||FTH|同上",
    "病灶-周围：未见水肿",
    "审核：神经内科 会诊",
    "行颅骨修补术，入院后予亚低温治疗，母亲为越南籍。",
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
