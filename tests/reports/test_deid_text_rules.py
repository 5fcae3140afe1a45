"""The general rules of issue 11 ("privacy to zero"), one at a time: a name after any person-role label in any
script, a romanised name next to a name, institution lines in upper case, labelled IDs, phones by shape, ROC and
other date shapes, lists of names by department, and the precision guards (eponyms, kinship words); then the
rules of the sealed set's round: structured exports (HL7, DICOM dumps, key=value), ISO and Chinese-numeral dates,
short hospital names, beds, IDs in more forms, and Latin names with initials and particles; then the second
sealed set's round: tables, XML and JSON, addresses by shape, case and spoken numbers, more date, phone and
hospital shapes, names before a degree or a kinship word, and their guards; then the third sealed set's round:
CSV, space-aligned and YAML exports, names in other scripts and Latin names with initials after them, dates
with weekdays, AM/PM, time zones, OCR zeros or no year, more hospital, ID and phone shapes, identifiers a report
repeats, and the guard of ordinary words (drugs, eponyms, ethnic groups, shifts, languages, documents). Each
rule masks its identifier in every position it names; clinical text near each rule round-trips unchanged. Every
example is written for these tests (none is taken from the identifier sets)."""

from __future__ import annotations

import pytest

from brainfm.reports import deidentify_text
from brainfm.reports.deid_text import ADDRESS, DATE, DOCTOR, HOSPITAL, ID, NAME, PHONE, identifier_spans


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
    ("已电话通知主管医生贡布扎西（分机3302）。", [("贡布扎西", DOCTOR), ("分机3302", PHONE)]),
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
    # ISO date-times, ROC dates with a time, dates in Chinese numerals
    ("扫描开始 2024-01-09T08:05:31，结束 2024-01-09T08:21:10Z", [("2024-01-09T08:05:31", DATE), ("2024-01-09T08:21:10Z", DATE)]),
    ("檢查時間：民國112年7月3日 14時05分", [("民國112年7月3日 14時05分", DATE)]),
    ("二〇二四年三月十一日", [("二〇二四年三月十一日", DATE)]),
    # hospitals: short numbered and people's hospitals, a prior study's outside hospital in a comparison, more
    # institution words, a department of a hospital, a line that opens with the hospital's name
    ("拟转附二院神经外科治疗。", [("附二院", HOSPITAL)]),
    ("曾于市人医就诊。", [("市人医", HOSPITAL)]),
    ("对比：与2023-02-11瑞金MRI比较，病灶缩小。", [("2023-02-11", DATE), ("瑞金", HOSPITAL)]),
    ("对比：与2023-02-11头颅MRI比较，病灶缩小。", [("2023-02-11", DATE)]),  # ordinary words: no hospital
    ("送检：黄岭村卫生室", [("黄岭村卫生室", HOSPITAL)]),
    ("既往于江夏区精神卫生中心诊治。", [("江夏区精神卫生中心", HOSPITAL)]),
    ("赣州市第五人民医院体检中心", [("赣州市第五人民医院体检中心", HOSPITAL)]),
    ("于田县中医院 放射科", [("于田县中医院", HOSPITAL)]),
    ("Lotus Valley Imaging Group", [("Lotus Valley Imaging Group", HOSPITAL)]),
    ("Operated at Guangzhou Brain Research Institute in 2020.", [("Guangzhou Brain Research Institute", HOSPITAL)]),
    # beds with a prefix before 床, and a ward before the number after the label; IDs in other forms
    ("病区 内一科 加12床", [("加12", ID)]),
    ("急诊留观 B03床", [("B03", ID)]),
    ("床  号：神内CCU-2", [("神内CCU-2", ID)]),
    ("┃ 床号 Bed ┃ 心内科 11 ┃", [("心内科 11", ID)]),
    ("N.º de Utente：AB-771203", [("AB-771203", ID)]),
    ("影像号：CT/2024/03/1186", [("CT/2024/03/1186", ID)]),
    ("No. 2025-0033418", [("2025-0033418", ID)]),
    ("就诊卡号：6228 4810 2231 0097", [("6228 4810 2231 0097", ID)]),
    ("检查号　CT-2401-0566", [("CT-2401-0566", ID)]),
    ("录入：KL0821 杭雨桐", [("KL0821", ID), ("杭雨桐", NAME)]),
    ("Clinic fax: +86 731 8422 0915", [("+86 731 8422 0915", PHONE)]),
    # names: after a full-width space, with wider spaces, dotted or in Hangul after a name label
    ("审核医师　司马景仁", [("司马景仁", DOCTOR)]),
    ("报告医师：林  芳", [("林  芳", DOCTOR)]),
    ("姓  名：乌·额尔敦", [("乌·额尔敦", NAME)]),
    ("환자명/患者姓名：박서준", [("박서준", NAME)]),
    # Latin names: initials, particles, more English staff labels, a name right after a Chinese role word
    ("Reported by: Fang, L. (resident)", [("Fang, L.", DOCTOR)]),
    ("Resident: K. Marchenko, MD", [("K. Marchenko", DOCTOR)]),
    ("Radiologist: Dr. Siti Nurhaliza binti Osman", [("Siti Nurhaliza binti Osman", DOCTOR)]),
    ("医生 Médica：Dra. Maria Inês Costa", [("Maria Inês Costa", DOCTOR)]),
    ("Read remotely by: Arjun Mehta, MBBS", [("Arjun Mehta", DOCTOR)]),
    ("Electronically signed by: Lin Haoran, MD", [("Lin Haoran", DOCTOR)]),
    ("Attending radiologist: Bai Ruoxi, MD", [("Bai Ruoxi", DOCTOR)]),
    ("ORDERING PROVIDER: MUELLER, Anna, MD", [("MUELLER, Anna", DOCTOR)]),
    ("Radiographer: Ms. Cheung Wing-yan", [("Cheung Wing-yan", NAME)]),  # the title is no name
    ("检查由翻译David Morales陪同。", [("David Morales", NAME)]),
]

# The second sealed set's round.
ROUND_FIVE = [
    # addresses after 住/地址 with spaces inside, after an English label, and an English street address by shape
    ("家属住湖南省岳阳市岳阳楼区金鹗中路 58 号 7 栋 302 室，电话已留。", [("湖南省岳阳市岳阳楼区金鹗中路 58 号 7 栋 302 室", ADDRESS)]),
    ("Address: Flat 3, 27 Mill Lane, Leeds\nAge: 60", [("Flat 3, 27 Mill Lane, Leeds", ADDRESS)]),
    ("GP surgery at 9 Oak Street, Bristol BS1 4DJ.", [("9 Oak Street, Bristol BS1 4DJ", ADDRESS)]),
    # a court or forensic file number; IDs read out as digit words; a staff number after a name; ACC label
    ("案号：（2024）粤0305民初2231号", [("（2024）粤0305民初2231号", ID)]),
    ("检查号 幺三零七 五五八二 头颅平扫", [("幺三零七 五五八二", ID)]),
    ("medical record number four one one nine zero two exam", [("four one one nine zero two", ID)]),
    ("责任技师：柴雨桐(K0922)", [("柴雨桐", DOCTOR), ("K0922", ID)]),
    ("ACC : XR-5520178", [("XR-5520178", ID)]),
    ("床号：骨科3病区-07", [("骨科3病区-07", ID)]),
    # dates: a weekday, a month name with a two-digit year or none, a time of day in Chinese, a two-digit
    # year before a time or a study
    ("Sent: Wed 14 Feb 2024 08:10", [("Wed 14 Feb 2024 08:10", DATE)]),
    ("复查日期：03-Apr-21　结论：稳定", [("03-Apr-21", DATE)]),
    ("随访MRI：07MAR2022", [("07MAR2022", DATE)]),
    ("The scan on Feb 9 was normal.", [("Feb 9", DATE)]),
    ("检查时间：2024年6月2日 下午3:40", [("2024年6月2日 下午3:40", DATE)]),
    ("于6月3日09:20签发", [("6月3日09:20", DATE)]),
    ("21.03.14 头颅CT：未见出血。", [("21.03.14", DATE)]),
    ("上传时间：24/02/19 23:05", [("24/02/19 23:05", DATE)]),
    ("比较：与3.12外院MRI对比，病灶缩小。", [("3.12", DATE)]),
    # phones: an extension with a hyphen or after "extension", a North American and an international number
    ("Called ext. 3-4410 at noon.", [("ext. 3-4410", PHONE)]),
    ("by telephone (extension 71204)", [("extension 71204", PHONE)]),
    ("Reach me at (415) 555-0172.", [("(415) 555-0172", PHONE)]),
    ("Mobile abroad +33 6 1234 5678 only", [("+33 6 1234 5678", PHONE)]),
    # hospitals: a campus or branch after the name, a short 附院, an English name after a hospital label, St.
    ("浙江省台州医院（恩泽院区）放射科", [("浙江省台州医院（恩泽院区）", HOSPITAL)]),
    ("建议至丽水市中心医院南院区复查。", [("丽水市中心医院南院区", HOSPITAL)]),
    ("转至浙大二附院治疗。", [("浙大二附院", HOSPITAL)]),
    ("原报告医院：Lakeside Clinic, Denver", [("Lakeside Clinic, Denver", HOSPITAL)]),
    ("Seen at St. Brigid's General Hospital today.", [("St. Brigid's General Hospital", HOSPITAL)]),
    # names: before a degree, after From:, after "patient" in English; a Hangul, kinship or Chinese form next to
    # a name; a pinyin gloss on the name label; a numbered reader
    ("Signed: Laura M. Quinn, M.D.", [("Laura M. Quinn", DOCTOR)]),
    ("Also paged: Omar Haddad, RN.", [("Omar Haddad", DOCTOR)]),
    ("From: Chloe Park (niece)", [("Chloe Park", NAME)]),
    ("Second opinion for patient Lu Haoyu today.", [("Lu Haoyu", NAME)]),
    ("报告医师：尹秀珍（윤수진）", [("尹秀珍", DOCTOR), ("윤수진", DOCTOR)]),
    ("Radiologist 报告医师: Dr. Tan Yue 谭悦", [("Tan Yue", DOCTOR), ("谭悦", DOCTOR)]),
    ("联系人：鲍德林（父，电话 13577776666）", [("鲍德林", NAME), ("13577776666", PHONE)]),
    ("姓名（拼音）：QIANGBA", [("QIANGBA", NAME)]),
    ("阅片者2：MA Yutong", [("MA Yutong", DOCTOR)]),
    ("申请医师：蒋立群主治医师　申请日期：2023-09-01", [("蒋立群", DOCTOR), ("2023-09-01", DATE)]),  # no 申请日
]

# The third sealed set's round.
ROUND_SIX = [
    # Latin names: a Malay or Tamil particle, initials after the surname or before it, after Mdm, a next of kin
    # with the kinship, an English name in parentheses, more role words
    ("Reported by: Dr Kavitha d/o Subramaniam", [("Kavitha d/o Subramaniam", DOCTOR)]),
    ("As reported by Dr. Cheung K.W. last year.", [("Cheung K.W.", DOCTOR)]),
    ("（报告：J.P. Liang）", [("J.P. Liang", DOCTOR)]),
    ("Wife (Mdm Teo Siew Hoon) reports memory loss.", [("Teo Siew Hoon", NAME)]),
    ("NOK son Lim Jun Hao tel 016-328 4471.", [("Lim Jun Hao", NAME), ("016-328 4471", PHONE)]),
    ("Contact family member Ng Wai Kit, nephew.", [("Ng Wai Kit", NAME)]),
    # …and an English name again where the report repeats it
    ("From: Sun Yue (Sophie)\nReply: Hi Sophie, the scan is normal.", [("Sun Yue", NAME), ("Sophie", NAME), ("Sophie", NAME)]),
    ("Reply (ward nurse Grace Ho, 14/03/2023)", [("Grace Ho", DOCTOR), ("14/03/2023", DATE)]),
    ("This is doctor Fang Ling dictating.", [("Fang Ling", DOCTOR)]),
    ("Dr. Lo Ka Wai (MED) was informed.", [("Lo Ka Wai", DOCTOR)]),  # a unit in parentheses is no English name
    ("Transcriptionist: K. Osei", [("K. Osei", DOCTOR)]),
    ("exported by 闫书航", [("闫书航", DOCTOR)]),
    # a name's form in Tibetan, Uyghur or Japanese kana after it
    ("姓名：格桑卓玛（སྐལ་བཟང་སྒྲོལ་མ）", [("格桑卓玛", NAME), ("སྐལ་བཟང་སྒྲོལ་མ", NAME)]),
    ("姓名：吐尔洪·买买提（تۇرغۇن مەمەت）", [("吐尔洪·买买提", NAME), ("تۇرغۇن مەمەت", NAME)]),
    # dates: AM/PM, a time zone, a weekday before the time, OCR's O for zero, wrapped at a line break, no year
    # after a day or before a time or study, a list of them after a study
    ("Date of exam: 09.05.2023 11:20 PM", [("09.05.2023 11:20 PM", DATE)]),
    ("Acquired: 2024-01-07 08:45 UTC", [("2024-01-07 08:45 UTC", DATE)]),
    ("时间：2024年3月5日 星期二 09:30", [("2024年3月5日 星期二 09:30", DATE)]),
    ("检查日期: 2O24-O3-15 1O:O5", [("2O24-O3-15 1O:O5", DATE)]),
    ("检查日期：2024-03-\n18", [("2024-03-\n18", DATE)]),
    ("I had a scan on 4 March (booking ref XR-CT-301245).", [("4 March", DATE), ("XR-CT-301245", ID)]),
    ("请阅头颅CT（3/12、3/15两次），3/15 CT示水肿加重，较3/12进展。", [("3/12", DATE), ("3/15", DATE), ("3/15", DATE), ("3/12", DATE)]),
    ("危急值：4/2 凌晨2:10 已通知", [("4/2 凌晨2:10", DATE)]),
    # IDs: a court's serial alone, a number issued on a certificate, a Portuguese label in lower case, a
    # staff number repeated under a log
    ("（2024）沪0105民初3321号", [("（2024）沪0105民初3321号", ID)]),
    ("执业证书 沪卫医字第00812号", [("沪卫医字第00812号", ID)]),
    ("Processo n.º: MC-4410237", [("MC-4410237", ID)]),
    ("工号：HX20917\n备注：HX20917 已培训", [("HX20917", ID), ("HX20917", ID)]),
    # addresses and phones: a state and postcode, a second number after a slash
    ("New address: 8 Wattle Rd, Ryde NSW 2112 please note.", [("8 Wattle Rd, Ryde NSW 2112", ADDRESS)]),
    ("电话：(0571)8702-3311 / 0913-552-117", [("(0571)8702-3311", PHONE), ("0913-552-117", PHONE)]),
    # hospitals: an NHS trust, an initial in the name, a Korean name, a chain's branch, a campus or medical centre
    # after a blank, a prevention and treatment centre, an English site label
    ("Eastbrook NHS Foundation Trust", [("Eastbrook NHS Foundation Trust", HOSPITAL)]),
    ("Referral from Louis K. Tanner Community Health Center", [("Louis K. Tanner Community Health Center", HOSPITAL)]),
    ("부산대학교병원 영상의학과", [("부산대학교병원", HOSPITAL)]),
    ("患者于5月在康合体检（杭州西湖分院）完成检查。", [("康合体检（杭州西湖分院）", HOSPITAL)]),
    ("杭州市第一人民医院 城北院区 放射科", [("杭州市第一人民医院 城北院区", HOSPITAL)]),
    ("复旦大学肿瘤防治中心 影像科", [("复旦大学肿瘤防治中心", HOSPITAL)]),
    ("Facility: Greenhill Imaging", [("Greenhill Imaging", HOSPITAL)]),
]

# Exports of the second sealed set's round: tables by their header, XML and JSON by their fields.
EXPORTS = [
    (
        "| 日期 | 检查号 | 技师(工号) | 备注 |\n|---|---|---|---|\n| 03/14 | CT2403140021 | 伍思远(R0215) | — |",
        [("03/14", DATE), ("CT2403140021", ID), ("伍思远", NAME), ("R0215", ID)],
    ),
    (
        "| 序号 | 编号 | 原报告医师 | 评分 |\n| 1 | QC-0012 | 桑晓光 | 2a |",
        [("QC-0012", ID), ("桑晓光", NAME)],
    ),
    ("ID\tNAME\tSEX\tTECH\nK0091\tLIU Ke-an\tM\t欧雨晴", [("K0091", ID), ("LIU Ke-an", NAME), ("欧雨晴", NAME)]),
    (
        "<patient><name><family>Duan</family><given>Xinyi</given></name></patient>\n<addr>兰州市城关区某路 9 号</addr>",
        [("Duan", NAME), ("Xinyi", NAME), ("兰州市城关区某路 9 号", ADDRESS)],
    ),
    (
        '<id extension="QD-55012" root="1.2.3"/>\n<effectiveTime value="20230102101500+0800"/>',
        [("QD-55012", ID), ("20230102101500+0800", DATE)],
    ),
    ("<representedOrganization><name>青岛市市立医院</name></representedOrganization>", [("青岛市市立医院", HOSPITAL)]),
    ('<patient name="滕雅琪" sex="女"/>', [("滕雅琪", NAME)]),
    ('{"pid": "QZ-772013", "exam_date": "2023-11-02"}', [("QZ-772013", ID), ("2023-11-02", DATE)]),
    ("(0010,1040) PatientAddress   [温州市鹿城区某路 12 号]", [("温州市鹿城区某路 12 号", ADDRESS)]),
    # the third sealed set's round: CSV (a quoted cell), space-aligned and tab tables (a date column's cell
    # without a digit is none), YAML (a name key with a language suffix), an element with attributes, a pair
    # among other words of a line
    (
        "run_id,patient_name,site,reader\nRK-0091,\"Chan, Siu Ming\",lakeview_general,蒲思远",
        [("RK-0091", ID), ("Chan, Siu Ming", NAME), ("lakeview_general", HOSPITAL), ("蒲思远", NAME)],
    ),
    (
        "登记号    患者        电话            记录员\nR0412-07  司徒嘉欣    139 0011 2233   麦 青",
        [("R0412-07", ID), ("司徒嘉欣", NAME), ("139 0011 2233", PHONE), ("麦 青", NAME)],
    ),
    ("编号\t复查日期\t技师\nQ-3307\t未到检\t宁可欣", [("Q-3307", ID), ("宁可欣", NAME)]),
    ('name: "Lau, Ka Yan"\nname_cn: 刘嘉欣\n  - operator: 邝一鸣', [("Lau, Ka Yan", NAME), ("刘嘉欣", NAME), ("邝一鸣", NAME)]),
    ('<Reader role="second">谭雪琪</Reader>', [("谭雪琪", NAME)]),
    ("# export: scans.csv  created_by=qiuyue  rows=40", [("qiuyue", NAME)]),
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
    "申请医生：儿科",  # a department after a staff label
    # the second sealed set's round: no name for an unknown patient, a trial's protocol and site numbers, a party
    # or channel before 医院, a label after a staff label, a marker, a department, thanks
    "姓名：无名氏（女）",
    "方案编号：ROSE-IA-2024　中心编号：12",
    "请问你们医院几点上班？",
    "原告认为被告医院存在过错。",
    "Ki-67约15%，IL-6升高。",
    "Neuroimaging Center",
    "好的，谢谢。",
    "| 序号 | 评分 | 备注 |\n| 1 | 2a | — |",  # a table with no identifier column
    "患者住院期间头痛缓解。",
    "与2.5倍对照组CT值相近。",  # a number before a study with no comparison is no date
    "会诊医生：影像科 ",
    "扫描参数：TR/TE 2000/9 ms",  # a year and a month's shape before a unit
    "同一院区复查。",  # a numbered 院 after a word that names no hospital
    "12床患者血压平稳。",  # a bare number before 床
    "MSH|^~\\&|HIS|WARD|RIS|WARD|||ADT^A08|1|P|2.5",  # HL7 codes and a DICOM code are no caret names
    "(0008,1030) LO [BRAIN^ROUTINE]  # StudyDescription",
    # the third sealed set's round: an HL7 header's control ID and a study code, a code that holds a year and a
    # month, unnamed or generic hospitals, numbers with a slash that are no month and day, tables and YAML with
    # no identifier column, a department before a clinical word, "May" the verb
    "MSH|^~\\&|RIS|RAD|HIS|HIS|||ORU^R01|MSG0012345|P|2.4\nOBR|1|||MRBRAIN^MR Brain plain",
    "方案编号：ABC-TRIAL-2024-02",
    "之前在县医院做过CT，乡卫生院未复查。",
    "远程影像诊断报告（区域影像中心）",
    "补记（接诊医院回告）：CT示出血。",
    "C5/6椎间盘突出，MMSE 21/30，MoCA 18/30。",
    "The lesion may 3 May represent gliosis.",
    "sequence,thickness,gap\nT1WI,5mm,1mm",
    "序列  层厚  间隔\nT1WI  5mm  1mm",
    "findings: 左侧额叶小片状高信号",
    "b=1000 s/mm2, TR=3000",
    "神经内科 高血压病史",
    "H2O, SpO2 98%, CO2 35",
    "Reference: T2WI",
]

# Ordinary words that a surname opens or that a Latin name reader would take: none is an identifier.
ORDINARY = [
    "既往予贝伐珠单抗联合替莫唑胺治疗，现口服左乙拉西坦。",  # drugs, listed or by their ending
    "曾用奥希替尼、卡瑞利珠单抗，加用布瓦西坦后发作减少。",
    "予甘露醇脱水、地塞米松减轻水肿，静推钆布醇后增强扫描。",
    "长期服用利伐沙班，近期改用阿哌沙班。",
    "Started Bevacizumab and Levetiracetam last month.",
    "拟诊韦尼克脑病，需与科萨科夫综合征鉴别。",  # eponyms
    "桥本脑病及川崎病史，莫亚莫亚病待排。",
    "吉兰-巴雷综合征，亦称格林-巴利综合征。",
    "患者系壮族，既往体健。",  # an ethnic group
    "请白班在8点前出报告，夜班已交接。",  # shifts
    "已电话通知神经外科二线。",
    "中文说明已交家属，英文版另附。",  # languages
    "患者仅会粤语，由家属翻译为普通话。",
    "Interpreter: Cantonese, via phone.",
    "调取证据通知书",  # documents
    "签署知情同意书后行增强扫描。",
]


# Structured exports: each field holds what its place says, whatever the value looks like.
STRUCTURED = [
    (
        "PID|1||A55012345^^^MRN^MR||FENG^LIMEI^^^||19720305|F|||江西省九江市濂溪区十里大道56号||0792-8123456",
        [("A55012345", ID), ("FENG^LIMEI", NAME), ("19720305", DATE), ("江西省九江市濂溪区十里大道56号", ADDRESS),
         ("0792-8123456", PHONE)],
    ),
    (
        "NK1|1|XU^JIANPING^^^^^L|HUS^丈夫|江西省九江市濂溪区十里大道56号|13607921234",
        [("XU^JIANPING", NAME), ("江西省九江市濂溪区十里大道56号", ADDRESS), ("13607921234", PHONE)],
    ),
    ("OBR|1|PL230415-0007|FL230415-0112|头颅MRI平扫", [("PL230415-0007", ID), ("FL230415-0112", ID)]),
    ("MSH|^~\\&|RIS|RAD|HIS|HIS|20230415101500||ORU^R01|7|P|2.4", [("20230415101500", DATE)]),
    ("(0010,1040) LO [福建省莆田市城厢区梅园路8号]   # PatientAddress", [("福建省莆田市城厢区梅园路8号", ADDRESS)]),
    ("(0008,1060) PN [安然]   # NameOfPhysiciansReadingStudy", [("安然", NAME)]),
    ("(0008,0080) LO [Riverside Imaging]   # InstitutionName", [("Riverside Imaging", HOSPITAL)]),
    (
        "Approver=龚晓岚\nScanDateTime=2024-01-09T08:05:31\nSeriesNumber=5\nReportText=右侧额叶见高信号。",
        [("龚晓岚", NAME), ("2024-01-09T08:05:31", DATE)],
    ),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_each_rule_masks_its_identifier(text: str, expected: list[tuple[str, str]]) -> None:
    assert _masked(text) == expected, deidentify_text(text)


@pytest.mark.parametrize(("text", "expected"), ROUND_FIVE)
def test_each_rule_of_the_fifth_round_masks_its_identifier(text: str, expected: list[tuple[str, str]]) -> None:
    assert _masked(text) == expected, deidentify_text(text)


@pytest.mark.parametrize(("text", "expected"), ROUND_SIX)
def test_each_rule_of_the_sixth_round_masks_its_identifier(text: str, expected: list[tuple[str, str]]) -> None:
    assert _masked(text) == expected, deidentify_text(text)


@pytest.mark.parametrize(("text", "expected"), EXPORTS)
def test_tables_xml_and_json_mask_what_their_fields_hold(text: str, expected: list[tuple[str, str]]) -> None:
    assert _masked(text) == expected, deidentify_text(text)


@pytest.mark.parametrize(("text", "expected"), STRUCTURED)
def test_structured_fields_mask_what_their_place_holds(text: str, expected: list[tuple[str, str]]) -> None:
    assert _masked(text) == expected, deidentify_text(text)


@pytest.mark.parametrize("text", CLINICAL)
def test_clinical_text_near_the_rules_round_trips(text: str) -> None:
    assert identifier_spans(text) == [], _masked(text)
    assert deidentify_text(text) == text


@pytest.mark.parametrize("text", ORDINARY)
def test_ordinary_words_of_the_lexicon_are_no_identifiers(text: str) -> None:
    assert identifier_spans(text) == [], _masked(text)


def test_a_branch_of_our_own_hospital_is_no_hospital_to_the_rules() -> None:
    """A branch in parentheses names a hospital after its name, not after 本院 (the tagger may still read the
    campus's name as one)."""
    assert identifier_spans("本院（城东院区）复查。", learned=False) == []


def test_a_name_beside_an_ordinary_word_is_still_found() -> None:
    """The guard stops at its words: the patient before their ethnic group, the doctor before the department's
    stamp."""
    text = "姓名：韦阿妹（苗族）\n医师：郝振宇    科室盖章"
    assert _masked(text) == [("韦阿妹", NAME), ("郝振宇", DOCTOR)]


def test_a_header_line_becomes_placeholders_only() -> None:
    """A bilingual Macau header: the Chinese and the Portuguese hospital name, the name in both scripts, the
    number after a Portuguese label."""
    text = "鏡湖醫院 CENTRO HOSPITALAR KIANG WU\n姓名 Nome：歐陽嘉慧 AU YEUNG KA WAI　N.º de utente：7730215"
    assert deidentify_text(text) == f"{HOSPITAL} {HOSPITAL}\n姓名 Nome：{NAME} {NAME}　N.º de utente：{ID}"


# The eighth round (the fifth sealed set's): worklists, CSV exports and registers, role words of trials and MDT
# minutes, notification sentences, carers and interpreters, signature notes, Malay names and numbers, codes,
# damaged or ranged dates, Malaysian, Canadian and Hong Kong addresses, and hospital aliases. Each case is masked
# by the rules alone (no tagger).
ROUND_EIGHT = [
    # a name alone in a table's cell, after a bar, a comma or a wide gap, in a row of three gaps or more
    ("| 姓名 | 巴特尔 | 性别 | 男 |", [("巴特尔", NAME)]),
    ("07　　2023-03-02　　头颅CT　　　　韩丽君　　谭永安\n", [("2023-03-02", DATE), ("韩丽君", NAME), ("谭永安", NAME)]),
    ("5｜CT230301017｜左侧基底节出血｜潘伟民｜祝晓燕（急诊科）｜否", [("CT230301017", ID), ("潘伟民", NAME), ("祝晓燕", NAME)]),
    ("4,MR23030104,石玉兰,女,58,头颅MRI平扫,09:10,郝建业,神经内科", [("MR23030104", ID), ("石玉兰", NAME), ("郝建业", NAME)]),
    # a name in capitals in a CSV row before the sex's cell
    ("6,CT23030106,LIANG MEIQI,女,29,头颅CT", [("CT23030106", ID), ("LIANG MEIQI", NAME)]),
    # role words of trials, MDT minutes and contacts
    ("影像评估员：乔雪松　　仲裁：范立群", [("乔雪松", DOCTOR), ("范立群", DOCTOR)]),
    ("（随访人：宋佳怡）", [("宋佳怡", DOCTOR)]),
    ("单位联系人：辅导员 邵明辉（电话 021-5523871）", [("邵明辉", NAME), ("021-5523871", PHONE)]),
    # a staff member at the end of a notification sentence, after the role word
    ("已电话告知神经内科值班医生戴远航。", [("戴远航", DOCTOR)]),
    ("于14:05电话通知卒中医生乌兰图雅。", [("乌兰图雅", DOCTOR)]),
    # an interpreter or carer before what they do; a carer's or contact's romanised name after the role
    ("由翻译阿依努尔协助问诊。", [("阿依努尔", NAME)]),
    ("照顧者：印尼籍家傭 Siti Rahayu（電話 6123 4455）", [("Siti Rahayu", NAME), ("6123 4455", PHONE)]),
    # a name before its role in parentheses in a signature, an ordinary word too
    ("电子签名：柳青（诊断）　文静（审核）", [("柳青", DOCTOR), ("文静", DOCTOR)]),
    # names: Malay particles in capitals, a name of dotted parts before the sex, capitals after a full-width blank,
    # a Latin name in parentheses before a comma, and a Chinese one after To:
    ("Name: NOR AZIZAH BINTI ISMAIL   NRIC: S7712345D", [("NOR AZIZAH BINTI ISMAIL", NAME), ("S7712345D", ID)]),
    ("Name: RAJESH A/L KUMAR", [("RAJESH A/L KUMAR", NAME)]),
    ("【病例2】买买提·艾力，男，47岁", [("买买提·艾力", NAME)]),
    ("姓名：梁家輝　LEUNG KA FAI　性別：男", [("梁家輝", NAME), ("LEUNG KA FAI", NAME)]),
    ("her daughter 陳家明 (Kelvin Chan, 604-555-0187) will", [("陳家明", NAME), ("Kelvin Chan", NAME), ("604-555-0187", PHONE)]),
    ("To: 邓嘉欣 (Deng Jiaxin), Guangzhou", [("邓嘉欣", NAME), ("Deng Jiaxin", NAME)]),
    # a relative's phone after the kinship in English
    ("NOK: WONG Siu Ming (son), 9123 8876.", [("WONG Siu Ming", NAME), ("9123 8876", PHONE)]),
    # numbers: MyKad, a police report, codes of three groups, capitals and a year, labels in a table or lower case
    ("MyKad: 680415-10-5521", [("680415-10-5521", ID)]),
    ("Police report no.: BRICKFIELDS/004512/23", [("BRICKFIELDS/004512/23", ID)]),
    ("受试者：PDX-B-017｜RN: KLX-23-0091822｜SX-RMH-23-1102", [("PDX-B-017", ID), ("KLX-23-0091822", ID), ("SX-RMH-23-1102", ID)]),
    ("| 住院号 | QD2023-004417 |", [("QD2023-004417", ID)]),
    ("Case no: SGH23-551207", [("SGH23-551207", ID)]),
    # dates: a day misread with letters, a time range, an ROC date-time, a date in a file's name
    ("检查日期：2023年5月l1日", [("2023年5月l1日", DATE)]),
    ("时间：2023年3月8日 09:30-11:00　　地点：示教室", [("2023年3月8日 09:30-11:00", DATE)]),
    ("簽發時間：112/09/03 08:12", [("112/09/03 08:12", DATE)]),
    ("附件：PACS导出_CT1号机_20230611.xlsx", [("20230611", DATE)]),
    # phones: an extension with its label or after #, a phone label 联络, one written 778-555-0142
    ("Fellow (ext. 3378)", [("ext. 3378", PHONE)]),
    ("聯絡：0922-118-305／(07)3312-4400", [("0922-118-305", PHONE), ("(07)3312-4400", PHONE)]),
    ("聯絡電話：(05)2771-8890 #36", [("(05)2771-8890 #36", PHONE)]),
    # dates: a half of the day and its hour, eight digits after a date label, a month's name between numbers, a
    # month and day with a time
    ("申请时间：2023年4月2日上午9点", [("2023年4月2日上午9点", DATE)]),
    ("[检查时间]20230412 10:05", [("20230412 10:05", DATE)]),
    ("Exam Date: 2023-Apr-12", [("2023-Apr-12", DATE)]),
    ("由民警于04-12 02:30送入急诊。", [("04-12 02:30", DATE)]),
    # addresses in Latin letters after a Chinese label, in Canada, and in Hong Kong with the home's name
    ("住址：No. 7, Jalan Ampang 3, 50450 Kuala Lumpur", [("No. 7, Jalan Ampang 3, 50450 Kuala Lumpur", ADDRESS)]),
    ("4151 Hazelbridge Way, Richmond, BC V6X 4J7", [("4151 Hazelbridge Way, Richmond, BC V6X 4J7", ADDRESS)]),
    ("住址：香港柴灣道88號 康和護老院（院舍）\n", [("香港柴灣道88號 康和護老院（院舍）", ADDRESS)]),
    # hospitals: an alias in parentheses, an institution in capitals with its country, more suffixes
    ("岳阳市第二医院（岳阳市传染病防治中心）", [("岳阳市第二医院", HOSPITAL), ("岳阳市传染病防治中心", HOSPITAL)]),
    ("NATIONAL CANCER CENTRE, SINGAPORE\n", [("NATIONAL CANCER CENTRE, SINGAPORE", HOSPITAL)]),
    ("转自槟城华人医务中心。", [("槟城华人医务中心", HOSPITAL)]),
]
# Clinical text near the eighth round's rules: none of it is masked.
ROUND_EIGHT_CLINICAL = [
    "| 项目 | 内容 |\n|---|---|\n| 来源 | 门诊 |",
    "| 日期 | 申请人 | 经办人 | 终端 |",
    "左侧额叶,顶叶,颞叶,枕叶,丘脑见异常信号",
    "已通知临床医生进一步处理。",
    "已电话通知主管医生查看。",
    "由翻译协助沟通。",
    "影像诊断（报告）：右侧基底节区腔隙性梗死。",
    "T2-FLAIR示白质高信号，Fazekas 2级；WHO-CNS5分级。",
    "扫描时间 08:00-08:30，层厚 5 mm。",
    "方案编号：STROKE-TNK-2022-01",
    "层厚5 mm，间隔 1-2 mm，于上午完成扫描。",
]


@pytest.mark.parametrize(("text", "expected"), ROUND_EIGHT)
def test_each_rule_of_the_eighth_round_masks_its_identifier(text: str, expected: list[tuple[str, str]]) -> None:
    assert [(text[a:b], p) for a, b, p in identifier_spans(text, learned=False)] == expected, deidentify_text(text)


@pytest.mark.parametrize("text", ROUND_EIGHT_CLINICAL)
def test_clinical_text_near_the_eighth_round_round_trips(text: str) -> None:
    assert identifier_spans(text) == [], _masked(text)
