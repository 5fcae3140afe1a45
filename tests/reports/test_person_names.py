"""Person names wherever a report puts them are masked; clinical text without one round-trips unchanged."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys

import pytest

from brainfm.reports import deidentify_text, find_identifiers
from brainfm.reports.deid_text import DOCTOR, NAME, identifier_kinds, identifier_spans
from brainfm.reports.person_names import find_person_names

# (text, the names in it). Names that are also words (黄河, 文静, 夏天, 方正…) stand where only a name can.
NAMED = [
    # signature and review lines
    ("报告医师：周晓明  审核医师：林海涛", ["周晓明", "林海涛"]),
    ("报告医生:孙志刚 审核医生:吴丽华", ["孙志刚", "吴丽华"]),
    ("【报告医师】何佳怡【审核医师】钱文斌", ["何佳怡", "钱文斌"]),
    ("报告/审核：郑凯/冯雪梅", ["郑凯", "冯雪梅"]),
    ("医师签名：黄志伟", ["黄志伟"]),
    ("技师：蒋红梅  报告：谢婷婷  审核：宋佳", ["蒋红梅", "谢婷婷", "宋佳"]),
    ("审核：常青 宁静", ["常青", "宁静"]),
    ("签发医师：欧阳娜娜", ["欧阳娜娜"]),
    ("诊断医师 诸葛亮明  复核医师 上官婉", ["诸葛亮明", "上官婉"]),
    ("操作技师：万俟雪、禤国维", ["万俟雪", "禤国维"]),
    ("报告医师周晓明审核医师林海涛", ["周晓明", "林海涛"]),
    # a line of names (and dates) of its own, at the end
    ("诊断意见：\n右侧额叶脑膜瘤。\n白洁\n2023-05-12", ["白洁"]),
    ("印象：脑白质轻度脱髓鞘改变。\n马德胜 2024年3月2日", ["马德胜"]),
    ("结论：颅脑MRI平扫未见明显异常。\n许文涛/韩冰", ["许文涛", "韩冰"]),
    ("影像学诊断：左侧基底节区腔隙性脑梗死。\n石磊", ["石磊"]),
    ("结论：未见异常。\n亓官勇  2022.11.03 16:20", ["亓官勇"]),
    # after role words and notifying verbs
    ("已电话通知王建华医生。", ["王建华"]),
    ("检查结果已告知其女王小红。", ["王小红"]),
    ("家属黄河签字同意增强检查。", ["黄河"]),
    ("由技师石磊操作，患者配合良好。", ["石磊"]),
    ("已联系临床医生左强，嘱其复查。", ["左强"]),
    ("危急值已通知主管医师夏天，时间14:30。", ["夏天"]),
    ("其子李文斌代诉病史。", ["李文斌"]),
    ("配偶文静陪同检查。", ["文静"]),
    ("已告知家属安康，建议尽快就诊。", ["安康"]),
    ("通知护士向东推注对比剂。", ["向东"]),
    ("已电话告知患者家属刘淑芬。", ["刘淑芬"]),
    ("危急值已电话通知临床医生宁静。", ["宁静"]),
    ("联系人：常青（其子） 电话：13800138000", ["常青"]),
    ("检查中出现过敏反应，已报告钟离春主任处理。", ["钟离春"]),
    # before titles
    ("经神经内科高明主任会诊。", ["高明"]),
    ("由王主任审核。", ["王"]),
    ("请神经内科李医生会诊。", ["李"]),
    ("方正医生已阅片。", ["方正"]),
    ("夏天女士，42岁，头痛1周。", ["夏天"]),
    ("洪涛先生于今日行头颅MRI检查。", ["洪涛"]),
    ("请白洁老师复核。", ["白洁"]),
    ("已于14:20电话通知急诊科赵立群医师。", ["赵立群"]),
    # beside the patient's sex and age
    ("王秀兰，女，46岁，头痛2周。", ["王秀兰"]),
    ("张建国 男 58岁 头颅MRI平扫", ["张建国"]),
    ("患者：石磊  性别：男  年龄：45岁", ["石磊"]),
    ("姓名 文静 性别 女 年龄 30岁", ["文静"]),
    ("陈晓（女，32岁）因癫痫发作就诊。", ["陈晓"]),
    ("万俟雪 女 29岁 门诊号：MZ0012345", ["万俟雪"]),
    ("禤国维，男，67岁。", ["禤国维"]),
    ("患者高明，男，52岁，突发言语不清3小时。", ["高明"]),
    ("司马光明/男/41岁", ["司马光明"]),
    ("钟离春 F 35Y", ["钟离春"]),
    ("患者安康，女，61岁，记忆力下降半年。", ["安康"]),
    # the tagger alone: a full name anywhere
    ("经马德胜会诊，丁一凡复核。", ["马德胜", "丁一凡"]),
    # given names that are words, notes and bars after the label, a department before the name
    ("家属（妻子）：方芳  签字同意", ["方芳"]),
    ("患者董海鹰，2023年5月头痛起病。", ["董海鹰"]),
    ("患者张子豪于今日上午行头颅MRI检查。", ["张子豪"]),
    ("病史由其子滑建平代诉。", ["滑建平"]),
    ("已与患者配偶訾红霞沟通。", ["訾红霞"]),
    ("姓名 │ 诸葛晓雪   性别 │ 女", ["诸葛晓雪"]),
    ("对照：2022年3月外院MRI（阅片：戚国华、蔺文静）", ["戚国华", "蔺文静"]),
    ("通知：心内科/鲍国强/2024-01-15 09:30", ["鲍国强"]),
    ("危急值已告知主管医师吴海燕（工号3321）。", ["吴海燕", "3321"]),
    # names without a surname (Tibetan, Uyghur, Mongolian)
    ("报告医师：卓玛央宗  审核医师：王芳", ["卓玛央宗", "王芳"]),
    ("多吉次仁，男，52岁，头痛3天。", ["多吉次仁"]),
    ("古丽娜尔·吐尔逊 女 33岁", ["古丽娜尔·吐尔逊"]),
    ("报告医生：米热古丽·阿不都", ["米热古丽·阿不都"]),
    ("由蒙古语翻译巴特尔协助问诊。", ["巴特尔"]),
    # Latin script
    ("Patient name: Chen, Xiaoming    DOB: 1975-04-02", ["Chen, Xiaoming", "1975-04-02"]),
    ("Reported: Zhou Min   Approved: Lin Feng", ["Zhou Min", "Lin Feng"]),
    ("(Mrs. Liu Fang) presented with headache since May 2021.", ["Liu Fang", "May 2021"]),
    ("患者Wang Lihua，女，40岁。", ["Wang Lihua"]),
    ("报告医师：Gao Peng / 审核医师：庹文", ["Gao Peng", "庹文"]),
    ("Referring: 孔令辉 (KONG^LINGHUI)", ["KONG^LINGHUI"]),
    # the sealed set's round: a name jieba reads as a numeral right after a title, a relative's name right after
    # the kinship word, more role words, a full-width space after a label
    ("危急值已通知急诊医生万千，通知时间10:20。", ["万千"]),
    ("陪同：其妻阿旺，电话13912345678。", ["阿旺"]),
    ("送检：村医 甘玉成", ["甘玉成"]),
    ("录入员：闻雪", ["闻雪"]),
    ("书写：霍思彤    审核：安志勇", ["霍思彤", "安志勇"]),
    ("研究协调员：华美伦", ["华美伦"]),
    ("审核医师　上官明远", ["上官明远"]),
    # the third sealed set's round: a list past a note in parentheses after each name, a dotted name right after a
    # role word, a name alone after a department and a blank, a parent's title, a patient's name closing a note
    ("鉴定人：许嘉言（主任法医师）、欧阳若晴（副主任法医师）", ["许嘉言", "欧阳若晴"]),
    ("家属：骆春梅（妻）、甘志远（女婿）", ["骆春梅", "甘志远"]),
    ("讨论：规培医生艾尔肯·吐尔逊认为考虑脱髓鞘。", ["艾尔肯·吐尔逊"]),
    ("会诊意见（神经外科 卜晓雯）：建议手术。", ["卜晓雯"]),
    ("尊敬的窦雨涵家长：您好。", ["窦雨涵"]),
    ("（门诊号 3310975，患者苗嘉树）左侧额叶软化灶。", ["苗嘉树"]),
]

# The second sealed set's round: forensic, research, handover and QC role words name staff.
STAFF_ROLES = [
    ("鉴定人：仇海涛、梁静怡", ["仇海涛", "梁静怡"]),
    ("核对人：苏子墨；PI：杭立新", ["苏子墨", "杭立新"]),
    ("交班：邵雨辰　接班：甘晓天", ["邵雨辰", "甘晓天"]),
    ("质控组长：于文博", ["于文博"]),
]

# Clinical sentences, many with surname-led words (高信号, 白质, 左侧, 马尾…) or words jieba tags as names.
CLINICAL = [
    "左侧额叶见斑片状长T1长T2信号，FLAIR呈高信号。",
    "双侧侧脑室旁白质见多发点状高信号，Fazekas 1级。",
    "黄韧带增厚，椎管稍窄。",
    "马尾神经走行自然。",
    "双侧海马对称，信号未见异常。",
    "左侧丘脑及苍白球见对称性T1高信号。",
    "余脑实质未见异常信号。",
    "周围见片状水肿信号，邻近脑室受压。",
    "常规扫描后行增强扫描。",
    "金属伪影影响局部观察。",
    "右侧顶叶见钟形异常信号。",
    "小脑扁桃体向下移位约6mm，Chiari I型。",
    "双侧基底节区见多发Virchow-Robin间隙。",
    "第四脑室扩大，考虑Dandy-Walker畸形。",
    "双侧乳头体及丘脑内侧对称性异常信号，Wernicke脑病可能。",
    "患者安静状态下完成扫描。",
    "增强扫描病灶明显强化。",
    "高血压病史10年，糖尿病史5年。",
    "外伤史2天，头痛伴呕吐。",
    "动脉期、静脉期时相显示清晰。",
    "方位：横断位、矢状位及冠状位。",
    "病灶内见石化样钙化。",
    "脑室系统未见扩大，中线结构居中。",
    "白质高信号，考虑小血管病。",
    "高龄患者，配合欠佳，图像略有运动伪影。",
    "鞍区未见异常信号，垂体高约6mm。",
    "左侧颞叶海马体积缩小，FLAIR信号增高。",
    "右侧大脑中动脉M1段管腔狭窄。",
    "上矢状窦及横窦流空信号存在。",
    "左侧小脑半球见类圆形长T2信号，边界清楚。",
    "建议结合临床及随访复查。",
    "患者高热3天，意识模糊。",
    "周边见环形强化，中心无强化。",
    "中线结构向左侧移位约5mm。",
    "全脑萎缩，脑沟增宽。",
    "单发病灶，考虑转移瘤可能。",
    "常见于老年人，临床意义不大。",
    "明显占位效应，中线结构右移。",
    "双侧颈内动脉海绵窦段管壁钙化。",
    "诊断意见：\n脑白质变性（Fazekas 2级）。",
    "印象：\n1. 左侧额叶脑梗死（亚急性期）。\n2. 老年脑改变。",
    "检查方法：常规横断位T1WI、T2WI、FLAIR、DWI序列。",
    "请按医生建议定期复诊。",
    "我不是医生，这份MRI报告是什么意思？",
    "这些需要由您的主治医生结合症状和其他检查来判断和处理，请及时复诊。",
    "管床医生已知晓，请向医生咨询。",
    "余未见明显异常。",
    "女，46岁，头痛2周。",
    "男，58岁，高血压，头晕。",
    "女 30岁 常规体检",
    "印象：\n白质病变",
    "诊断：\n左侧\n高信号",
    "医生明确诊断后通知临床。",
    "报告时间：见系统，审核时间同上。",
    "马尾终丝位置正常，时相一致。",
    "安静时头痛减轻，活动后加重。",
    "此报告需经医师签字方有效。",
    "告知程序已完成。",
    "康复科医生会诊。",
    "经皮穿刺活检术后复查。",
    "与周围组织分界清，由左侧椎动脉供血。",
    "病灶呈花环状强化，皮层下白质见点状高信号。",
    "患者，男，60岁，突发言语不清。",
    "新生儿，男，3天，黄疸。",
    "患者明天复查，患者神志清，患者常诉头晕。",
    "家属：拒绝签字",
    "请向主治医生咨询，由值班医生处理。",
    "Findings: The ventricles are normal in size. No acute infarct.",
    "Impression: Normal MRI Brain. Hospital No. not available.",
    "The Circle of Willis is patent; Sturge-Weber and Von Hippel-Lindau are excluded.",
    "发病时间不详（家属陈述）。",  # a report word, a test and drugs that hold a surname
    "建议查铜蓝蛋白。",
    "予阿司匹林抗血小板治疗，停用华法林。",
    "邻居叫她过来。",  # no name right after a kinship word
    "病人说谢谢。",  # thanks and an unknown patient's registration name are no names
    "姓名：无名氏",
    # the lexicon's words that are no identifier, though a surname opens them: drugs (listed, or a stem before an
    # ending of generic names), eponyms, ethnic groups, shifts, languages, documents; an accented word after a label
    "予贝伐珠单抗及左乙拉西坦治疗，曾用吉非替尼。",
    "韦尼克脑病可能，帕金森病史。",
    "患者为苗族，汉族配偶陪同。",
    "请白班复核，夜班已交接。",
    "中文说明已交家属。",
    "调取证据通知书",
    "医师签字后科室盖章。",
    "转介医生 Médico requisitante：待定",
]


def _masked(text: str) -> list[str]:
    return [text[a:b] for a, b, _ in identifier_spans(text)]


@pytest.mark.parametrize(("text", "names"), NAMED)
def test_names_are_masked_where_they_stand(text: str, names: list[str]) -> None:
    clean = deidentify_text(text)
    for name in names:
        assert name not in clean, clean
        assert any(name in found for found in find_identifiers(text))
    assert NAME in clean or DOCTOR in clean


@pytest.mark.parametrize(("text", "names"), STAFF_ROLES)
def test_more_role_words_name_staff(text: str, names: list[str]) -> None:
    assert [(text[n.start : n.end], n.staff) for n in find_person_names(text)] == [(name, True) for name in names]


@pytest.mark.parametrize("text", CLINICAL)
def test_clinical_text_round_trips(text: str) -> None:
    assert deidentify_text(text) == text
    assert _masked(text) == []


def test_staff_and_patients_get_their_own_placeholders() -> None:
    text = "张建国，男，58岁。\n报告医师：周晓明  审核医师：林海涛"
    assert deidentify_text(text) == "[姓名]，男，58岁。\n报告医师：[医师]  审核医师：[医师]"
    assert identifier_kinds("已电话通知王建华医生") == [DOCTOR]  # a named doctor, however notified
    assert identifier_kinds("家属黄河签字") == [NAME]


def test_english_institutions_and_dates() -> None:
    text = "Seen at Beijing Tiantan Hospital in March 2021; Hospital No. pending."
    assert deidentify_text(text) == "Seen at [医院] in [日期]; Hospital No. pending."


def test_clean_text_stays_clean() -> None:
    """The scanner finds nothing in de-identified text: placeholders never make a name context."""
    for text, _ in NAMED:
        assert find_identifiers(deidentify_text(text)) == []


def test_spans_are_sorted_disjoint_and_known_first() -> None:
    text = "姓名：王小红  报告医师：李明 2023-05-12"
    spans = identifier_spans(text, ["王小红"])
    assert [text[a:b] for a, b, _ in spans] == ["王小红", "李明", "2023-05-12"]
    assert [p for _, _, p in spans] == ["[标识]", DOCTOR, "[日期]"]
    assert all(b1 <= a2 for (_, b1, _), (a2, _, _) in itertools.pairwise(spans))


def _names(text: str) -> list[list[object]]:
    return [[n.start, n.end, n.staff] for n in find_person_names(text)]


def test_same_names_in_a_fresh_interpreter() -> None:
    """The tagger loads in a fresh interpreter (no state shared with this one) and reads the same names. A
    subprocess, not a spawned multiprocessing pool: late in the full suite such a pool's worker once hung on a
    lock until the test timed out."""
    texts = [text for text, _ in NAMED[:6]]
    script = (
        "import json, sys\n"
        "from brainfm.reports.person_names import find_person_names\n"
        "texts = json.load(sys.stdin)\n"
        "print(json.dumps([[[n.start, n.end, n.staff] for n in find_person_names(t)] for t in texts]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], input=json.dumps(texts), capture_output=True, text=True, timeout=300,
        check=True,
    )
    assert json.loads(done.stdout) == [_names(t) for t in texts]
