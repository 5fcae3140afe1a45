"""De-identification of report text, and the scanner that proves none is left.

Identifiers are found in four passes: the known identifiers of the study (names, IDs and dates taken from
the DICOM header or the hospital system, in their common renderings), labelled fields (姓名：, 住院号：, any
label ending in 号 or No., 报告医师：, 电话：…, and a romanised name after any role label), free patterns (dates
in the common and the ROC calendars, phone numbers, by shape after a phone, relative or notification word too,
long ID numbers, hospital names, institution lines in English or Portuguese, a name right after 患者 or before
the patient's sex and age, names alone in a table's cells) and person names wherever they stand (:mod:`brainfm.reports.person_names`); a
romanised name right next to a name found is the same person's, a phone number listed after one found is one
too, and an identifier found once is one wherever the report repeats it. Then the identifier tagger
(:mod:`brainfm.reports.identifier_tagger`), learned from the labelled sets, adds what the rules left uncovered of
what it reads, where that could be an identifier on its own. The finders read the text with traditional
characters folded to simplified ones (:func:`brainfm.reports.lexicon.simplified`, one for one), so that Hong
Kong, Macau and Taiwan reports meet the same vocabularies while the spans stand on the original text, and with
a letter O among digits read as the zero OCR took it for (and an l as a one). A line OCR spaced out character
by character (门 诊 号 ： 2O23O9O4 1 l 7) is read again with its single blanks dropped.
:func:`identifier_spans` is the single source: an earlier pass wins where two overlap, a later one keeps only
what is left uncovered. :func:`deidentify_text` replaces each span by a bracketed placeholder such as
``[姓名]`` (``[医师]`` for a member of staff), so the text keeps its shape; :func:`find_identifiers`, the check
that training text is clean, and :func:`identifier_kinds`, what may be reported about its hits, list them. The
checks read with the rules and the known identifiers, not the tagger: a gate must give a string the same verdict
wherever it was cut from (a whole report, a section, a generated instruction), and the tagger reads context.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from itertools import chain

from brainfm.reports.identifier_tagger import PLACEHOLDER, IdentifierTagger, could_be, shipped_tagger
from brainfm.reports.lexicon import DRUG_ENDINGS, NOT_IDENTIFIER_WORDS, alternation, simplified
from brainfm.reports.person_names import (
    COMPOUND_SURNAMES,
    KIN_ROLES,
    STAFF_LABELS,
    STAFF_ROLES,
    SURNAMES,
    WORD_SURNAMES,
    all_ordinary_words,
    find_person_names,
    holds_clinical_word,
    one_common_word,
    reads_as_words,
)
from brainfm.reports.structured_fields import coded_value, hl7_code, structured_identifiers

NAME, ID, HOSPITAL, PHONE, DATE, DOCTOR, ADDRESS = "[姓名]", "[编号]", "[医院]", "[电话]", "[日期]", "[医师]", "[地址]"
KNOWN = "[标识]"  # a known identifier of the study, whatever its kind
# The placeholder of each kind of identifier (the identifier sets' and the tagger's kinds).
PLACEHOLDERS = {"name": NAME, "id": ID, "phone": PHONE, "date": DATE, "hospital": HOSPITAL, "address": ADDRESS}

# A surname and one or two characters; not a surname that is an everyday word too (王建华医生 通知时间).
_PLAIN_SURNAMES = "".join(c for c in SURNAMES if c not in WORD_SURNAMES)
_CJK_NAME = rf"(?:{alternation(COMPOUND_SURNAMES)}|[{_PLAIN_SURNAMES}])[\u4e00-\u9fff]{{1,2}}"
# Any surname and one or two characters, where the context says a name stands (影像科 普建新 主任医师).
_ANY_CJK_NAME = rf"(?:{alternation(COMPOUND_SURNAMES)}|[{SURNAMES}])[\u4e00-\u9fff]{{1,2}}"
# Latin letters, accented ones included (António, São, JANUÁRIO).
_UPPER, _LETTER = "A-ZÀ-ÖØ-Þ", "A-Za-zÀ-ÖØ-öø-ÿ\u0100-\u017f\u01cd-\u01dc"  # and pinyin's tones: Xiùzhēn, Lǚ
# Words of a line that are no part of a name, in any case: degrees, ranks, departments, imaging, form and report
# words, and the lexicon's words that are no identifier (drugs, languages: Cantonese, Mrs. Kwok).
_NOT_NAME_WORDS = (
    "MD", "PhD", "FRCR", "FRCP", "MBBS", "Consultant", "Resident", "Registrar", "Fellow", "Professor", "Associate",
    "Senior", "Chief", "Specialist", "Attending", "Trainee", "Intern", "Officer", "Nurse", "Radiographer",
    "Technologist", "Department", "Dept", "Hospital", "Clinic", "Klinik", "Klinikum", "Ospedale", "Università",
    "Ward", "Unit", "Medicine", "Emergency", "MRI",
    "MRA", "MR", "CT", "CTA", "DSA", "DWI", "SWI", "PET", "FLAIR", "ADC", "ENT", "ICU", "NICU", "PICU", "CCU", "HDU",
    "AED", "ED", "OPD", "GP", "NS", "Sex", "Age", "DOB", "Date", "Exam", "Case", "Chart", "MRN", "HKID", "ID", "No",
    "Tel", "Phone", "Male", "Female", "M", "F", "Y", "Normal", "Abnormal", "Finding", "Findings", "Impression",
    "Conclusion", "Report", "Study", "Brain", "Head", "Spine", "Neck", "Plain", "Contrast", "Enhanced", "Left",
    "Right", "Bilateral", "Acute", "Chronic", "Subacute", "See", "Above", "Same", "Pending", "Nil", "None", "Not",
    "Unremarkable", "Protocol", "Stroke", "Routine", "Follow", "Hemisphere", "Lobe", "Lesion", "Mass", "Tumour",
    "Tumor", "Infarct", "Haemorrhage", "Hemorrhage", "Scan", "Sequence", "Series", "Image", "Slice", "Clinical",
    "History", "Indication", "Technique", "Comparison", "Result", "Results", "Urgent", "Critical", "Please", "The",
    "And", "With", "For", "From", "Name", "PN", "RN", "NP", *(w for w in NOT_IDENTIFIER_WORDS if w.isascii()),
)  # fmt: skip
# Institution words (in title case or upper case) after an institution's name.
_INSTITUTION = (
    r"(?:Hospitalar|Hospitals?|Sanatorium|Infirmary|Clinic|Cl[ií]nica|Poly[cC]linic|Policl[ií]nica|Centre|Center"
    r"|Institute|(?:Imaging|Medical|Health(?:care)?|Diagnostic) Group|Trust"
    r"|HOSPITALAR|HOSPITALS?|SANATORIUM|INFIRMARY|CLINIC|CL[IÍ]NICA|POLYCLINIC|CENTRE|CENTER|INSTITUTE|TRUST)\b"
)
_CAP_WORD = rf"[{_UPPER}][{_LETTER}'’\-]*"
# A word of a name: capitalised or upper case, a given name maybe hyphenated (Cantonese, Wade-Giles: Tai-man,
# Ming-chung); none of the words above (…ology, …surgery and …iatrics included, and generic drug names by
# their ending: Bevacizumab, Levetiracetam), no label (Sex:), no initial (the S. of Leung S.K.).
_INITIAL = rf"[{_UPPER}]\."  # O. Petrenko, Qin, Y.
_NOT_NAME_ENDINGS = ("ology", "ologist", "surgery", "iatrics", *(e for e in DRUG_ENDINGS if e.isascii()))
_LATIN_WORD = (
    rf"(?!(?i:{alternation(_NOT_NAME_WORDS)}|[a-z]*(?:{alternation(_NOT_NAME_ENDINGS)}))\b"
    rf"|[{_LETTER}'’\-]*[:：]|{_INITIAL})[{_UPPER}][{_LETTER}'’]*(?:-[{_LETTER}]+)*(?![\d{_LETTER}'’])"
)
# "Surname, Given" (Huang, Mingyu; LI, CHIH-WEI; LEI, Sio Ian), and after a name its English name (LEE Wing-yee,
# Vivian); not the degree in "Li Wei, MD", nor the rank in "Yip Kwok-wah, Resident".
_NO_MD = r"(?!M\.D\.)"  # initials that are a degree
_GIVEN_AFTER_COMMA = (
    rf", (?:{_NO_MD}{_INITIAL}(?:[ \-]?{_INITIAL})*|(?=[{_UPPER}]){_LATIN_WORD}(?: {_LATIN_WORD})?)"
)
# Lower-case particles inside a name (Nur Aisyah binte Rahman, Ana da Silva, Jan van Dijk, and Sharmila d/o
# Rajendran: daughter of).
_PARTICLE = r"(?:bin|binti|binte|bte|van|von|der|de|da|do|dos|das|di|del|al|el|[ds]/o|a/[lp]|BIN|BINTI|BINTE|BTE|[DS]/O|A/[LP])"
# Not the first words of an institution (InstitutionName: Zhongshan Hospital).
_NO_INSTITUTION_NEXT = rf"(?![ ](?:{_CAP_WORD} )*{_INSTITUTION})"
_INITIALS_AFTER = rf"[ ]{_NO_MD}{_INITIAL}(?:[ ]?{_INITIAL}){{0,2}}"  # after a surname: Leung S.K.
# A Latin name: one to three words (Zhang Wei, ZHANG^WEI, Chan Tai-man, Au Yeung Wing-sze, Laura M. Quinn),
# maybe with a given name after a comma or initials; _LATIN_NAMES: two words or more, initials and a word
# (W.H. Song), or a comma, where a single capitalised word is as likely no name (after a Chinese label, next
# to a Chinese name: 王芳 MRI).
_LATIN_NAME = (
    rf"(?!Dr\b)(?:{_INITIAL}[ ]?){{0,2}}{_LATIN_WORD}(?:[ ^](?:{_PARTICLE} |{_INITIAL} )?{_LATIN_WORD}){{0,2}}"
    rf"(?:{_GIVEN_AFTER_COMMA}|{_INITIALS_AFTER})?{_NO_INSTITUTION_NEXT}"
)
_LATIN_NAMES = (
    rf"(?!Dr\b)(?:(?:{_INITIAL}[ ]?){{1,2}}{_LATIN_WORD}|{_LATIN_WORD}(?:(?:[ ^]{_LATIN_WORD}){{1,3}}"
    rf"(?:{_GIVEN_AFTER_COMMA})?|{_GIVEN_AFTER_COMMA}|{_INITIALS_AFTER}))"
    rf"{_NO_INSTITUTION_NEXT}"
)
# Parts of a name joined by a middle dot (包·巴雅尔, 热依拉·艾买提).
_DOTTED_NAME = r"[\u4e00-\u9fff]{1,8}(?:[·•・][\u4e00-\u9fff]{1,8})+"
# A name written with spaces between its characters (刘 洋, 朴 成 浩, 王  莉), before a wider gap or the line's end.
_SPACED_NAME = rf"[{SURNAMES}](?:[ \t]{{1,3}}[\u4e00-\u9fff]){{1,3}}(?![ \t]?[\u4e00-\u9fff])"
_PINYIN_NAME = r"[A-Z][a-z]+(?: [A-Z][a-z]+){1,2}"  # two or three title-case words: Zhu Lin
# A romanised name next to a name (梁國雄 LEONG KUOK HONG, 謝明中 (Hsieh Ming-chung), 吳佳蓉 / Wu Chia-jung,
# António Ribeiro／高慧敏): the same person's.
# A name's form in another script in parentheses is the same person's too: Korean, Japanese kana, Tibetan,
# Uyghur, Mongolian (崔美兰（최미란）, 才让卓玛（ཚེ་རིང་སྒྲོལ་མ）).
_OTHER_SCRIPT = "\uac00-\ud7a3\u30a0-\u30ff\u0f00-\u0fff\u0600-\u06ff\u1820-\u18af"
_ROMAN_AFTER = re.compile(
    rf"[ \t\u3000]*(?:(?P<open>[（(])|[/／,，])?[ \t]*(?P<v>{_LATIN_NAMES}"
    rf"|(?<=[（(])[{_OTHER_SCRIPT}][{_OTHER_SCRIPT} ]{{1,40}}(?=[)）]))(?(open)[ \t]*[)）,，])"
)
# An English name in parentheses right after a Latin name (Zhao Jing (Jenny); not a unit: (MED)): the same
# person's.
_ENGLISH_NAME_AFTER = re.compile(rf"[ \t]*[（(](?P<v>(?=[{_UPPER}][a-z]){_LATIN_WORD})[)）]")
# A Latin name before a degree (Jane K. Doe, MD; E. Smith, RN): searched from the degree backwards on its line.
_DEGREE = re.compile(r",[ \t]*(?:M\.D\.|MD|RN|PhD|Ph\.D\.|DO|MBBS|FRCR|NP|PA-C)(?![A-Za-z])")
_NAME_BEFORE_DEGREE = re.compile(
    rf"(?<![{_LETTER}'’.\-])(?P<v>(?:{_INITIAL}[ ]?){{0,2}}{_LATIN_WORD}(?:[ ](?:{_INITIAL}|{_PARTICLE}|{_LATIN_WORD})){{0,3}})$"
)
_ROMAN_BEFORE = re.compile(rf"(?P<v>{_LATIN_NAMES})[ \t]*(?:[/／]|[（(])[ \t]*$")
# A Chinese name right after a romanised name (Dr. Wen Jing 文静, Tsering Lhamo / 次仁拉姆), before a blank or the
# line's end: the same person.
_CHINESE_AFTER = re.compile(
    r"[ \t]*(?:[/／][ \t]*)?(?P<v>[\u4e00-\u9fff]{2,4}(?:·[\u4e00-\u9fff]{1,8})?)(?=[ \t\u3000]|$)", re.MULTILINE
)
_LONGEST_ROMAN = 60  # characters before a name searched for its romanised form
# A gloss of a Chinese label (报告医师 Radiologist：, 姓名 Nome：) and a title before a name (Dr. 黎少华).
_GLOSS = rf"(?:[ \t]+[A-Z][{_LETTER}.'’ ]{{0,30}}?)?"
_TITLE_WORD = r"(?:Dra|Dr|Prof|Mr|Mrs|Ms|Miss|Mdm|Madam|Sra|Sr)\b"
_HONORIFIC = rf"(?:{_TITLE_WORD}\.?[ \t]*)?"
# A DICOM person name in any case: ZHANG^WEI, zhang^wei, LI^^MING; not an HL7 name's type code (LI^MING^^^^^L).
_CARET_NAME = r"[A-Za-z]+(?:\^{1,2}[A-Za-z]+)+"
# What an unidentified patient is registered as: no name (姓名：无名氏（男）).
_NO_NAME = r"(?:无名氏|无名|不详|未知|匿名)(?![\u4e00-\u9fff])"
# Words that open a report's account of the patient, and what may follow the name right after one.
_PATIENT_WORDS = alternation(("患者", "病人", "患儿", "病员", "姓名", "受检者", "被检者", "就诊者"))
# Only strong name contexts follow: a bare comma or 就诊/入院 also follow 患者高血压 or 患者于我院.
_AFTER_NAME = r"[（(]|[，,][ \t]*(?:男|女)|因|主诉|自诉|男|女|性别|年龄|于(?=\d)"
# Surname-led words that follow 患者 in clinical text; 于 (a surname too) mostly opens a time or place.
_NOT_NAMES = alternation(("于", "高龄", "高热", "高烧", "高血", "左侧", "常规", "明显", "安静", "配合", "周身"))
# A colon, 【label】 or a table's bar (┃ 住院号 ┃ …); never across a line break ([] is a placeholder).
_SEP = r"[ \t]*(?:[:：┃│║]|】[:：]?)[ \t]*"
# Labels of ID numbers; 编号 covers 会诊编号, 受试者编号, 原报告编号…
_ID_LABELS = [
    "住院号", "门诊号", "急诊号", "病历号", "病案号", "检查号", "影像号", "登记号", "放射编号", "检查编号", "申请单号",
    "流水号", "床号", "卡号", "病理号", "病理编号", "放射号", "影像编号", "身份证号", "身份证", "ID号", "ID", "PID",
    "MRN", "Accession No.", "Accession No", "Accession", "工号", "编号", "HKID", "Case No.", "Case No", "Hospital No.",
    "Hospital No", "Ref No.", "Ref No", "ACC", "Acc", "NRIC",
]
_CHECK_DIGIT = r"(?:\([0-9A]\))?"
_CARD_NUMBER = r"\d{4}(?:[ ]\d{4}){2,4}(?:[ ]\d{1,4})?(?!\d)"  # a card number in groups: 6217 0033 1809 4526  # a Hong Kong check digit in parentheses: K512338(6), HN19034421(7)
# An ID value: letters, digits and hyphens with a digit among them (HZ-2024-0318, 2011873-4, K512338(6)), maybe
# in three parts or more between slashes (MR/2023/10/0417; not 12/24, a slice).
_ID_VALUE = (
    rf"(?=[A-Za-z\-/]*\d)[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?(?:(?:/[A-Za-z0-9\-]*[A-Za-z0-9]){{2,}})?"
    rf"{_CHECK_DIGIT}"
)
# Any label ending in 号 (会诊号, 登记号…), but not a word that does (信号, 型号, 序号, 层号, 符号…); in English
# and Portuguese No./ID/Number (Process No., Patient ID, N.º de utente), which need a colon.
# A file or case number of a court, police or forensic office: a year in brackets and a serial before 号
# (（2023）京0105民初1234号, 某鉴〔2024〕临鉴字第56号); the serial alone is one wherever it stands.
_CASE_SERIAL = r"[〔（(\[](?:19|20)\d{2}[〕）)\]][\u4e00-\u9fff\dA-Za-z]{0,12}?\d+号"
_CASE_NUMBER = rf"[\u4e00-\u9fff（）()]{{0,10}}{_CASE_SERIAL}"
# A number issued on a document (a licence or certificate: 京卫字第0512号), with the characters before 字第.
_ISSUED_NUMBER = re.compile(r"字第\d{2,}号")
_ISSUED_HEAD = re.compile(r"[\u4e00-\u9fff〔〕\[\]\d]{1,16}$")
# An ID read out in digit words by speech recognition (住院号 幺五零三 三七七二, 检查号ct二零二三…).
_SPOKEN_ID = r"[A-Za-z]{0,3}[零〇一二三四五六七八九幺]{4,}(?:[ \t]+[零〇一二三四五六七八九幺]{2,})*"
_SPOKEN_EN = r"(?:zero|oh|one|two|three|four|five|six|seven|eight|nine)"
_NUMBER_LABEL = r"号(?<![信型序层符括句问记称口字暗年几等逗引顿分冒加减乘星番月日]号)"
_ENGLISH_NUMBER_LABEL = r"No\.?|NO\.?|no\.?|Number|NUMBER|ID|[Nn]\.?º(?:[ \t]+[A-Za-zÀ-ÿ]+){0,3}"
_PHONE_LABELS = [
    "联系电话", "电话号码", "电话", "手机号码", "手机号", "手机", "联系方式", "内线", "联络电话", "联络", "传真", "Tel", "TEL", "Fax", "fax",
    "FAX",
]  # fmt: skip
# An extension after a phone number (028-85422286转3301, 0755-86913333-8602, ext. 215), and its own labels.
_EXTENSION = r"(?:[ \t]*(?:转|-|分机|[Ee]xt\.?|x|#)[ \t]*\d{1,6}(?!\d))?"
_EXTENSION_LABELS = ["分机号", "分机", "Ext.", "ext.", "extension", "Extension", "内线"]
# Words in a sentence that a phone number may follow at some distance: phone words, relatives, notifications.
_PHONE_CUES = [
    *_PHONE_LABELS, "致电", "电告", "来电", "回电", "phone", "Phone", "PHONE", "mobile", "Mobile", "call", "Call",
    "contact", "Contact", "tel", "通知", "告知", *(w for w in KIN_ROLES if not w.isascii()),
    *(w for k in ("wife", "husband", "mother", "father", "daughter", "son", "sister", "brother") for w in (f"({k})", f"（{k}）")),
]  # fmt: skip
# Units after a number that is no phone number (b值 1000 2000 s/mm²).
_UNIT = r"[ \t]*(?:s/mm|mm|cm|ms|ml|mg|Hz|T\b|%|℃|次|岁|分|秒|天|周|月|年)"
# A phone number's shape: groups of digits (6287 1043, 0912-338-451, (852) 2958 6888, +853 2837 1333), or 7 to
# 11 digits at once; no digit or hyphen before it.
_PHONE_SHAPE = (
    r"(?<![\d\-])(?:\+\d{1,3}[ \t\-]?)?(?:[(（]\d{2,4}[)）][ \t\-]?)?(?:\d{2,4}(?:[ \t\-]\d{3,4}){1,2}|\d{7,11})"
)
# English labels of the patient's name in every case they are written in (literals, for speed: see below).
_ENGLISH_LABELS = alternation(f for w in ("patient", "name", "pt") for f in (w, w.title(), w.upper()))
_HOSPITAL_SUFFIXES = (
    "附属医院", "人民医院", "中心医院", "医院", "医学中心", "医疗中心", "卫生院", "保健院", "影像中心", "卫生服务中心",
    "诊所", "门诊部", "疗养院", "体检中心", "卫生室", "卫生中心", "护老院", "养老院", "敬老院", "防治中心", "防治院",
    "防治所", "鉴定中心", "鉴定所", "指挥中心", "养老服务中心", "医药中心", "医务中心", "眼科中心",
    "医阮",  # 医阮: OCR's 院
    "병원", "의원", "의료원",  # and in Korean: 부산대학교병원
)  # fmt: skip
# Short forms: a numbered hospital (湘雅二院, 市一院, 附一院) and a provincial or city people's hospital (省人医).
_SHORT_HOSPITAL = r"[一二三四五六七八九十]院|人医(?<=[省市县区]人医)|附院(?<=[一二三四五六七八九]附院)"
# A campus or branch after a hospital's name: （天府院区）, （深圳福田分院）, （温江区）, 东院区.
# A branch in parentheses ends a chain's name of its own too (美年大健康（长沙芙蓉分院）). After a blank, a campus
# or a medical centre of the hospital (仁爱院区, 第一医学中心) that ends its word.
_BRANCH = r"[（(][\u4e00-\u9fff]{2,10}(?:院区|分院)[)）]"
_CAMPUS = re.compile(
    r"[（(][\u4e00-\u9fff\w]{1,10}(?:院区|分院|院|店|区|分部|分中心)[)）]|[东西南北中新老本]?院区"
    r"|[ \t\u3000]+[\u4e00-\u9fff]{1,8}(?:院区|分院|医学中心|医疗中心)(?![\u4e00-\u9fff])"
)
# English staff labels before a Latin name; a bare participle needs a colon (Reported: Lu Jie).
_ENGLISH_STAFF = (
    r"Radiologist|radiologist|RADIOLOGIST|Reported by|Reviewed by|Physician(?![A-Za-z])|Dra?\.?"
    r"|(?:Consultant|Technologist|Reported|Reviewed|Verified|Approved|Checked|Dictated|Signed|Vetted|Requested"
    r"|Authori[sz]ed|Supervised|Transcribed|Transcriptionist|Typed|Resident|Fellow|Registrar|Technician"
    r"|Radiographer|Interpreter|Translator|Provider|PROVIDER|Ordering|ORDERING)[ \t]*:"
    # maybe with an adverb: Read remotely by, Electronically signed by
    r"|(?:Verified|Approved|Checked|Dictated|Signed|Read|Referred|Requested|Performed|Seen|Treated|Vetted"
    r"|Authori[sz]ed|Supervised|Transcribed|Typed|Interpreted)(?: [a-z]+ly)? by"
    r"|(?:Electronically|Digitally) (?:signed|verified|approved|reviewed|reported|authori[sz]ed) by"
)
_MONTHS_UPPER = "JAN|FEB|MAR|APR|MAY|JUN|JUL|AUG|SEP|OCT|NOV|DEC"
_MONTHS = (
    "January|February|March|April|May|June|July|August|September|October|November|December"
    "|Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sept|Sep|Oct|Nov|Dec"
)
# A time after a date: 10:41, 10:41:07, ISO 8601's T10:41:07(.5)(Z, +08:00), 03时18分; a clock time maybe after
# a weekday, with AM/PM and a time zone (2023年9月27日 星期三 16:18, 11.07.2023 03:55 AM, 2023-10-21 01:12 CST).
_TIME_ZONES = (
    "UTC", "GMT", "CST", "HKT", "SGT", "JST", "KST", "AEST", "AEDT", "EST", "EDT", "PST", "PDT", "BST", "CET",
)  # fmt: skip
_TIME = (
    rf"(?:,?[ \t]*(?:[（(]?(?:星期|周|礼拜)[一二三四五六日天][)）]?[ \t]*)?(?:上午|下午|晚上|凌晨|中午)?[ \t]*"
    rf"\d{{1,2}}[:：]\d{{2}}"
    rf"(?:[:：]\d{{2}})?(?:[ \t]*[-–~至][ \t]*\d{{1,2}}[:：]\d{{2}})?(?:[ \t]*(?:AM|PM|am|pm|a\.m\.|p\.m\.)(?![A-Za-z]))?"
    rf"(?:[ \t]+(?:{alternation(_TIME_ZONES)})(?:[+\-]\d{{1,2}}(?::?\d{{2}})?)?(?![A-Za-z]))?"
    r"|T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+\-]\d{2}:?\d{2})?"
    r"|[ \t]*\d{1,2}[ \t]*时(?:[ \t]*\d{1,2}[ \t]*分)?"
    r"|[ \t]*(?:上午|下午|晚上|凌晨|中午)(?:[ \t]*\d{1,2}[ \t]*点(?:[ \t]*\d{1,2}[ \t]*分|半)?)?)"
)
# A day, a month's name and a year: 3 March 2022, 08-Nov-22 and 18SEP2023 (a two-digit year only between
# hyphens), or no year after a day and a month's name (on 12 June; not 3 May, a verb too); one rule, for speed.
_DAY_MONTH_YEAR = (
    rf"\d(?<![\d.]\d)\d?(?:(?:st|nd|rd|th)?[ \t\-]+(?:{_MONTHS})"
    rf"(?:\.?[ \t,\-]+(?:19|20)\d{{2}}|(?<!May)\b\.?(?![ \t,\-]*\d))"
    rf"|(?:-(?:{_MONTHS}|{_MONTHS_UPPER})-(?:19|20)?\d{{2}}|(?:{_MONTHS_UPPER}|{_MONTHS})(?:19|20)\d{{2}})"
    rf"(?![\d{_LETTER}]))"
)
_CN_DIGIT, _CN_NUMBER = "〇零一二三四五六七八九", "一二三四五六七八九十"  # 二〇二三年五月二十七日
# A clock time in Chinese numerals after a date in them (上午十点零七分).
_CN_TIME = rf"(?:[ \t]*(?:上午|下午|晚上|凌晨|中午)?[{_CN_NUMBER}零〇两]{{1,3}}点(?:[{_CN_NUMBER}零〇]{{1,3}}分|半)?)?"
# A date dictated in English words (January nine, twenty twenty four; October twenty twenty two).
_UNITS = "one|two|three|four|five|six|seven|eight|nine"
_ORDINALS = "first|second|third|fourth|fifth|sixth|seventh|eighth|ninth"
_TEENS = "ten|eleven|twelve|thirteen|fourteen|fifteen|sixteen|seventeen|eighteen|nineteen"
_SPOKEN_DAY = (
    rf"(?:(?:the[ \t]+)?(?:(?:twenty|thirty)(?:[ \-](?:{_UNITS}|{_ORDINALS}))?|twentieth|thirtieth|{_TEENS}"
    rf"|(?:tenth|eleventh|twelfth|(?:thir|four|fif|six|seven|eigh|nine)teenth)|{_ORDINALS}|{_UNITS}),?[ \t]+)"
)
_SPOKEN_YEAR = (
    rf"(?:(?:nineteen|twenty)[ \t]+(?:(?:twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety)(?:[ \-](?:{_UNITS}))?"
    rf"|{_TEENS}|oh[ \t]+(?:{_UNITS}))|two thousand(?:[ \t]+and)?(?:[ \t]+(?:{_TEENS}|{_UNITS}))?)"
)
# An institution in English or Portuguese, in title case or upper case: capitalised words and initials (and
# of, de, &…) before Hospital, Clinic, Centre, Trust… (Prince of Wales Hospital, HONG KONG SANATORIUM &
# HOSPITAL, John C. Lincoln Health Center), any after it (of
# Shandong University, Conde de São Januário), and the university after a comma (Ruijin Hospital, Shanghai Jiao
# Tong University…); or, with no word before, Hospital/Centro Hospitalar and its name after (Hospital Kiang Wu).
_CONNECTOR = r"(?:of|the|for|de|da|do|dos|das|du|del|and|OF|THE|FOR|DE|DA|DO|DOS|DAS|AND|&)"
_INSTITUTION_NAME = (
    rf"(?:(?:[ ]{_CONNECTOR})*[ ](?!(?i:No|ID|Number|Department|Dept)\b|{_CAP_WORD}[:：]){_CAP_WORD})"
)
_UNIVERSITY = rf"(?:, (?:{_CAP_WORD} ){{0,6}}(?:University|College|Institute)(?:(?: of| the)* {_CAP_WORD})*)"
# Words that alone name no institution (Refer to Stroke Centre, Memory Clinic, MEDICAL CENTRE).
_GENERIC_INSTITUTION_WORDS = (
    "Stroke", "Memory", "Imaging", "Medical", "Cancer", "Health", "Day", "Eye", "Pain", "Trauma", "Rehabilitation",
    "Sleep", "Epilepsy", "Dialysis", "Emergency", "Community", "General", "District", "Regional", "Private", "Local",
    "Specialist", "Specialty", "Outpatient", "Diagnostic", "Radiology", "Neuroscience", "Neurology", "Children's",
    "Women's", "Maternity", "Psychiatric", "Mental", "Dental", "Teaching", "University", "Referral", "Tertiary",
    "Primary", "Care", "The", "A", "An", "This", "That", "Our", "Your", "Same", "Other", "Another", "Nearest",
    "Neuroimaging",
)  # fmt: skip
_GENERIC_INSTITUTION = re.compile(
    rf"(?:(?:(?i:{alternation(_GENERIC_INSTITUTION_WORDS)})|{_CONNECTOR}) )+{_INSTITUTION}"
)
_ENGLISH_HOSPITAL = (
    rf"(?:[{_UPPER}](?<![{_LETTER}\-][{_UPPER}])(?<![{_LETTER}]['’][{_UPPER}])[{_LETTER}'’\-]* "  # not in a word: 'Jinan
    rf"(?:(?:{_CAP_WORD}|{_INITIAL}|{_CONNECTOR}) ){{0,6}}"
    rf"{_INSTITUTION}{_INSTITUTION_NAME}*"
    rf"|(?:Centro Hospital|CENTRO HOSPITAL|Hospital|HOSPITAL)(?:ar|AR)?{_INSTITUTION_NAME}+){_UNIVERSITY}?"
    rf"(?:[ ]\([{_UPPER}]+\)|,[ ][{_UPPER}]{{4,}}(?=[ \t]*(?:\n|$)))?"  # NATIONAL NEUROSCIENCE INSTITUTE (SINGAPORE)
)
# An institution named first in Italian, German, French, Spanish or Malay, its name after (Università di Padova,
# Klinik Keluarga Ng).
_FOREIGN_INSTITUTION = (
    r"(?:Universit(?:à|ät|é|y)|Universidad|Universidade|Ospedale|Policlinico|Klinikum|Klinik|Hôpital|Rumah Sakit)"
    rf"(?:[ ](?:di|del|della|degli|dei|der|des|de|du|la|le|y)){{0,2}}(?:[ ](?!{_CONNECTOR}\b){_CAP_WORD}){{1,4}}"
)

# A bed number: 加3, +2, A06, NS1-31, ICU-5.
_BED = r"(?:加|\+)?(?:[A-Za-z]{1,5}\d{0,2}-?)?\d{1,3}(?:-\d{1,3})?"
# A ward before a bed number: 神外ICU-5, 老年科 09, 神内-12, 神外2病区-18.
_WARD = r"[\u4e00-\u9fff](?:[\u4e00-\u9fff\d]{0,7}[\u4e00-\u9fff])?[ \t\-]?"
# A bed number right before 床, with a prefix (加3床, A06床; a bare 3床 of ward talk is left to the 床号 label).
_BED_BEFORE = re.compile(rf"(?<![A-Za-z0-9+\-])(?=[加+A-Za-z]){_BED}$")
_MODALITY = r"(?:MRI|MRA|CTA|CT|MR|DSA|PET)"
# A month and a day with a slash and no year (11/28), no letter, digit, slash or point around it (not C5/6).
_MONTH_DAY = r"\d(?<![A-Za-z\d/.]\d)\d?/\d\d?(?![\d/])"
_MONTH_DAY_PARTS = re.compile(r"(\d+)/(\d+)")
# Months and days listed in parentheses right after a study (头颅CT（11/28、11/30两次）).
_STUDY_DATES = re.compile(rf"{_MODALITY}[（(](?P<v>{_MONTH_DAY}(?:[、，,]{_MONTH_DAY})*)")
_CN_ADDRESS = (
    r"[\u4e00-\u9fff]{2,8}?[省市](?=[\u4e00-\u9fff])[^\n，。；,;：:（(]{0,50}"
    r"(?:\d[ \t]*(?:号楼|号院|号|室|单元|组|栋|幢|楼|弄|层)|\d{3,4}(?![\d号]))"
)
# The rest of an address after its place or street, up to a house, building or room number.
_HOUSE = r"[^\n，。；,;：:（(]{0,30}?\d+[ \t]*(?:号楼|号院|号|室|栋|幢|楼|弄)"
# A road and house number, maybe a building, floor and flat after (黄泥涌道31号嘉兰阁12楼B室, 东风中路318号9栋502), and
# the road's name before it, searched from the number backwards.
_ROAD_NUMBER = re.compile(
    r"(?:道|路|街|巷)\d{1,4}(?:弄\d{1,4})?号(?:[\u4e00-\u9fff]{0,6}?[A-Z\d]{1,5}(?:号楼|栋|幢|单元|楼|层|座|室)){0,3}(?:\d{2,5}(?![\d.]))?"
)
_ROAD_NAME = re.compile(r"[\u4e00-\u9fff]{1,20}$")
_STREET_WORD = re.compile(r"(?:Road|Street|Avenue|Lane|Drive|Boulevard|Highway|Crescent|Way|Rd|St|Ave|Hwy|Blvd|Cres)\b")
_NAME_BEFORE = re.compile(rf"{_CJK_NAME}$")
# A FHIR element that refers to people, its object or list, and a display name in it.
_FHIR_PERSON_KEY = re.compile(
    r'"(?:subject|patient|performer|resultsInterpreter|interpreter|requester|author|attester|practitioner'
    r'|recorder|asserter|informant|participant|individual|actor)"[ \t]*:[ \t]*(?P<open>[\[{])'
)
_FHIR_DISPLAY = re.compile(r'"display"[ \t]*:[ \t]*"(?P<v>[^"\d\n]{2,40})"')
# A romanised name in parentheses (Sato Misaki), and a name in Chinese characters with a blank inside before it.
_ROMAN_IN_PARENTHESES = re.compile(rf"[（(](?=[A-Z][a-z]){_LATIN_WORD}[ ](?=[A-Z][a-z]){_LATIN_WORD}[)）,，]")
_SPACED_NAME_BEFORE = re.compile(r"(?<![\u4e00-\u9fff])(?P<v>[\u4e00-\u9fff]{1,3}[ ][\u4e00-\u9fff]{1,2})[ \t]*$")
# The sex and age in a worklist's columns, and the romanised name apart before them.
_SEX_COLUMN = re.compile(r"[ \t]{2,}(?:男|女|M|F)[ \t]+\d{1,3}(?!\d)")
_LATIN_NAME_BEFORE = re.compile(rf"(?<![{_LETTER}])(?P<v>(?=[{_UPPER}]){_LATIN_WORD}(?:,?[ ]{_LATIN_WORD}){{1,2}})$")
# A physician's rank apart after a name, and a name apart before it (not the end of a word: 神经内科 主任医师).
_RANK_APART = re.compile(r"[ \t\u3000]+(?:主任医师|副主任医师|主治医师|住院医师|副教授|教授)")
_ANY_NAME_BEFORE = re.compile(rf"(?<![\u4e00-\u9fff]){_ANY_CJK_NAME}$")
# A signature's role in parentheses after the name (某某（诊断）　某某（审核）).
_ROLE_IN_PARENTHESES = re.compile(r"[（(](?:诊断|审核|报告|复核|初审|终审|审阅|签发|书写|记录|录入|初诊|复诊)[)）]")
# A name whose parts are joined by a middle dot, before the sex or a table's next cell (某某·某某某，男).
_DOTTED_BEFORE_SEX = re.compile(
    rf"(?<![\u4e00-\u9fff·•・])(?P<v>{_DOTTED_NAME})(?=[，,][ \t]*(?:男|女)|[ \t\u3000]{{2,}}|[ \t]*[|｜,])"
)
# A cell of a table's row: between bars, commas or wide gaps (| 某某 |, ｜某某（急诊科）｜, 头颅MRI　　某某　　某某).
_CELL_GAP = r"[ \t]*[|｜,][ \t]*|[ \t\u3000]{2,}"
_NAME_CELL_ROW = re.compile(
    rf"(?:(?<=\n)|^|{_CELL_GAP})(?P<v>{_ANY_CJK_NAME})(?:[（(][\u4e00-\u9fff]{{1,8}}[)）])?(?={_CELL_GAP}|[ \t]*(?:\n|$))",
    re.MULTILINE,
)
_CELL_GAPS = re.compile(_CELL_GAP)
_ROLE_ENDINGS = ("人", "员", "者")  # a header's role (申请人, 经办人), no name
# A hospital's other name in parentheses after it (某市第一医院（某市公共卫生救治中心）).
_HOSPITAL_ALIAS = re.compile(r"[（(](?P<v>[\u4e00-\u9fff]{2,20}(?:中心|医院|研究所|研究院))[)）]")
_KIN_IN_PARENTHESES = re.compile(r"[（(](?:父|母|夫|妻|子|女|兄|弟|姐|妹|配偶|丈夫|妻子|儿子|女儿|本人)[，,、)）]")
# A street address in English: a house number, a street (maybe numbered: South 4th Ring West Road), then the
# district, city and a UK postcode or a state and its postcode (14 Elm Road, Cambridge CB1 2AB; No. 88 Huaihai
# Road (M), Huangpu District; 5 Gum Rd, Ryde NSW 2112).
_STREET_ADDRESS = (
    r"(?:No\.[ ]?)?\d(?<![\d.]\d)\d{0,4}[A-Za-z]?,?(?:[ ][A-Z0-9][A-Za-z0-9'’]*){1,5}[ ]"
    r"(?:Road|Street|Avenue|Lane|Drive|Boulevard|Highway|Crescent|Way|Rd|St|Ave|Hwy|Blvd|Cres)\b\.?(?:[ ]\([A-Z]\))?"
    r"(?:,[ ][A-Z][a-z]+(?:[ ][A-Z][a-z]+){0,2}){0,3}"
    r"(?:[ ][A-Z]{1,2}\d[A-Z\d]?[ ]\d[A-Z]{2}|[ ][A-Z]{2,3}[ ]\d{4,5}|,?[ ][A-Z]{2}[ ][A-Z]\d[A-Z][ ]?\d[A-Z]\d)?"
)
_STREET = re.compile(_STREET_ADDRESS)
_OWN_HOSPITAL = frozenset({"本院", "我院", "外院", "他院", "院外"})
Reject = Callable[[str, int, int], bool]  # whether a match's text[start:end] is no identifier after all



_ROLE_BEFORE = re.compile(rf"(?:{alternation(STAFF_ROLES)}){_SEP}$")


def _after_role(text: str, start: int, end: int) -> bool:
    """No staff role label and separator end right before ``start``."""
    return not _ROLE_BEFORE.search(text, max(0, start - 16), start)


# A pinyin syllable: an initial and a final (zhang, wei, ou, yang, xue), and a word of two to four.
_PINYIN_SYLLABLE = (
    r"(?:[zcs]h|[bpmfdtnlgkhjqxrzcsyw])?"
    r"(?:iang|iong|uang|ang|eng|ing|ong|uai|uan|ian|iao|ai|ei|ao|ou|an|en|in|un|ia|ie|iu|ua|uo|ue|ui|er|a|o|e|i|u|v)"
)
_PINYIN_WORD = re.compile(rf"(?:{_PINYIN_SYLLABLE}){{2,4}}")
# Kinship words in English, not the end of a longer word (person, Madison): a name may follow one.
_ENGLISH_KIN = "|".join(
    f"{w[0]}(?<![A-Za-z]{w[0]}){w[1:]}"
    for w in ("wife", "husband", "mother", "father", "daughter", "son", "sister", "brother", "spouse", "partner")
)
# A trial's protocol or site number names no person (方案编号：ATTENTION-IA-2023, 中心编号：07, Protocol No. X-1).
_TRIAL_LABEL = re.compile(rf"(?:(?:方案|中心)编号{_SEP}|Protocol(?: No\.?| ID| [Nn]umber)?[ \t:：]*)$")


def _trial_number(text: str, start: int, end: int) -> bool:
    """``text[start:end]`` follows a trial's protocol or site number label."""
    return bool(_TRIAL_LABEL.search(text, max(0, start - 16), start))


_NOT_IDENTIFIERS = frozenset(NOT_IDENTIFIER_WORDS)
_LABEL_NEXT = re.compile(r"[\u4e00-\u9fff]{0,3}[:：]")


def _label_next(text: str, start: int, end: int) -> bool:
    """``text[start:end]`` runs into a label (医师　申请日期：): the label's first characters, no name; or it is
    a word that is no identifier (技师：早班 王芳)."""
    return bool(_LABEL_NEXT.match(text, end)) or text[start:end] in _NOT_IDENTIFIERS


def _clinical_name(text: str, start: int, end: int) -> bool:
    """``text[start:end]`` holds a clinical word: no name (病灶-周围：)."""
    return holds_clinical_word(text[start:end])


def _no_pinyin(text: str, start: int, end: int) -> bool:
    """``text[start:end]`` is not two to four pinyin syllables (zhangwei, ouyangxue)."""
    return not _PINYIN_WORD.fullmatch(text, start, end)


def _no_month_day(text: str, start: int, end: int) -> bool:
    """``text[start:end]`` holds a pair of numbers with a slash that is no month and day (13/5, 2/40)."""
    pairs = _MONTH_DAY_PARTS.findall(text, start, end)
    return any(not (1 <= int(month) <= 12 and 1 <= int(day) <= 31) for month, day in pairs)


_FIELD_LABEL = re.compile(r"性别|年龄|[\u4e00-\u9fff]*(?:号|日期|时间|科室|科别|部位|类型|项目|医生|医师|方式|结果|诊断)")


def _field_label(text: str, start: int, end: int) -> bool:
    """``text[start:end]`` is a field's label (a table's header: 性别, 检查号, 检查日期), no name."""
    return bool(_FIELD_LABEL.fullmatch(text, start, end))


def _words_only(text: str, start: int, end: int) -> bool:
    """``text[start:end]`` reads as words, no name: a clinical word, or a verb, adverb or conjunction (查看,
    进一步处理, 及家属)."""
    return reads_as_words(text[start:end])


def _ordinary_place(text: str, start: int, end: int) -> bool:
    """``text[start:end]`` names no outside hospital: ordinary words (头颅, 复查) or our own hospital."""
    return text[start:end] in _OWN_HOSPITAL or all_ordinary_words(text[start:end])


# Every pattern starts with a literal or a character class and is case-sensitive, so that Python's regex
# engine can skip positions by their first character (a leading lookbehind, or re.IGNORECASE with ASCII
# alternatives, makes a rule several times slower). The identifier is group "v".
_PATTERNS: tuple[tuple[str, str] | tuple[str, str, Reject], ...] = (
    (rf"(?:姓[ \t\u3000]*名(?:[（(][\u4e00-\u9fff]{{1,4}}[)）])?|病人姓名|患者姓名|受检者|病人|患者|Name|NAME|Patient(?: [Nn]ame)?|PATIENT(?: NAME)?){_SEP}(?!{_NO_NAME})(?P<v>{_DOTTED_NAME}|[\u4e00-\u9fff]{{2,4}}|{_SPACED_NAME}|{_LATIN_NAME}|[\uac00-\ud7a3]{{2,5}})", NAME),
    (rf"(?:{_PATIENT_WORDS})[ \t]*(?P<v>{_PINYIN_NAME}|{_CARET_NAME})", NAME),  # 患者Zhao Liping
    # The name in a table's cell after its label's (| 姓名 | 某某 |), not the header's next label (| 姓名 | 性别 |).
    (rf"(?:姓[ \t\u3000]*名|Name|NAME)[ \t]*[|｜][ \t]*(?P<v>[\u4e00-\u9fff·]{{2,8}}|{_LATIN_NAME})(?=[ \t]*[|｜])", NAME, _field_label),
    # A staff member at the end of a notification sentence, after the role (已电话通知神经外科值班医生某某。).
    (r"(?:通知|告知|联系|电告|转告|交代|汇报)[^\n。；;]{0,24}?(?:医生|医师|大夫)(?P<v>[\u4e00-\u9fff]{2,5}?)(?=[。；;，,]|[ \t]*(?:\n|$))", DOCTOR, _words_only),
    # An interpreter or carer named before what they do (由翻译某某某协助沟通, 护工某某陪同).
    (r"(?:翻译|护工|陪护|照顾者|家佣|保姆)(?P<v>[\u4e00-\u9fff]{2,5}?)(?=协助|陪同|在场|签字|到场|代诉|代述|口译)", NAME, _words_only),
    # A name in capitals in a CSV row, before the sex's cell (3,MR0012,WONG KA MING,男,41).
    (r",(?P<v>[A-Z]{2,}(?:[ ][A-Z]{2,}){1,3}),(?=(?:男|女|M|F),)", NAME),
    # The sender of a chat message after its date ([03/10/2023, 21:15] Winnie Ho:, [2024-01-08 19:55] 庄严（…）：).
    (rf"\[[\d/\-., :]{{8,22}}\][ \t]*(?P<v>{_CAP_WORD}(?:[ ]{_CAP_WORD}){{1,3}}|{_CJK_NAME})(?=[ \t]*[:：（(])", NAME),
    # A name after its department or role and a hyphen, before a colon (22:05 影像科-温宁：, 急诊-鲍振华：).
    (rf"-(?<=[\u4e00-\u9fff]-)(?P<v>{_ANY_CJK_NAME})(?=[ \t]*[:：])", NAME, _clinical_name),
    # Initials of a trial's subject (受试者姓名缩写：DJH, Subject initials: L-Y-Q), a nickname (小名"乐乐").
    (r"(?:姓名缩写|[Ii]nitials)[ \t]*[:：][ \t]*(?P<v>[A-Z](?:[\-.]?[A-Z]){1,3})(?![A-Za-z])", NAME),
    (r"(?:小名|乳名|昵称)[ \t:：]*[\"“「]?(?P<v>[\u4e00-\u9fff]{1,3})[\"”」]", NAME),
    # A user name in pinyin: after an account label, or before the name in Chinese (lihong（李红）).
    (r"(?:账号|账户|用户名|登录名|[Uu]ser(?:name)?)[ \t:：]*(?P<v>[a-z]{3,20})(?![A-Za-z0-9])", NAME, _no_pinyin),
    (rf"(?P<v>[a-z](?<![A-Za-z0-9_.@][a-z])[a-z]{{3,19}})(?=[（(]{_CJK_NAME}[，,)）])", NAME, _no_pinyin),
    # A relative named after the kinship in English (contact wife Lv Na, her mother, Grace Wu, her son 王伟).
    (rf"(?:{_ENGLISH_KIN}),?[ \t]+{_HONORIFIC}(?!{_TITLE_WORD})(?P<v>{_LATIN_NAME}|{_ANY_CJK_NAME}(?![\u4e00-\u9fff]))", NAME),
    # A Korean name after a title or before its romanised form (Dr. 권민호, 박지현（PARK JIHYUN）).
    (r"(?:Dr|Prof|友人|同事|朋友)\.?[ \t]*(?P<v>[\uac00-\ud7a3]{2,4})(?![\uac00-\ud7a3])", NAME),
    (r"(?P<v>[\uac00-\ud7a3]{2,4})(?=[（(][A-Z]{2,}[ ][A-Z])", NAME),
    # After a title or a next of kin, maybe with the kinship (Mdm Ong Mei Lan, NOK son Tan Wei Ming).
    (rf"(?:(?:Mr|Mrs|Ms|Miss|Mdm|Madam)\.?|(?:NOK|next of kin|Next of kin|family member|Family member)(?:[ \t]*:|[ \t]+[a-z]+)?)[ \t]+(?P<v>{_LATIN_NAME})", NAME),
    # 患者王伟因头痛…, 患者陈晓（女…: a surname and one or two characters, then punctuation or a usual next word.
    (rf"(?:{_PATIENT_WORDS})(?:{_SEP}|[ \t]*)(?!{_NOT_NAMES})(?P<v>{_CJK_NAME})(?={_AFTER_NAME})", NAME),
    (rf"(?:{_ENGLISH_LABELS})[ \t]*(?:name|Name|NAME)?[ \t]*[:：]?[ \t]*(?P<v>{_CARET_NAME})", NAME),
    # After a colon a name, two or three characters alone or a spaced name (黄 韬); after a space only a
    # surname-led one (not 报告 姓名).
    # Alone, not a department (申请医生：产科 杨晓菲).
    (rf"(?:{alternation(STAFF_LABELS)})(?:{_SEP}|[ \t\u3000]+(?={_CJK_NAME}))(?P<v>{_CJK_NAME}|(?![\u4e00-\u9fff]{{1,2}}[科室](?![\u4e00-\u9fff]))[\u4e00-\u9fff]{{2,3}}(?=\s|$)|{_SPACED_NAME})", DOCTOR, _label_next),
    # After a role label, a department or rank and a blank, a name before a parenthesis, a list's separator or
    # the line's end (首诊医生：急诊科 时光（…）, 调取人：民警 舒畅（警号…）, 复核：理赔二部 段然).
    (rf"(?:{alternation(STAFF_ROLES)}){_SEP}[\u4e00-\u9fff]{{1,6}}[ \t\u3000]+(?P<v>{_ANY_CJK_NAME})(?=[（(、，,/／;；]|[ \t]*(?:\n|$)|[ \t]{{2,}})", DOCTOR, _clinical_name),
    # …and after a relative's or contact's (单位联系人：指导员 某某（电话…）, 陪同：交警 某某（警号…）).
    (rf"(?:{alternation(KIN_ROLES)}){_SEP}[\u4e00-\u9fff]{{1,6}}[ \t\u3000]+(?P<v>{_ANY_CJK_NAME})(?=[（(、，,/／;；]|[ \t]*(?:\n|$)|[ \t]{{2,}})", NAME, _clinical_name),
    # A romanised name after any role label, maybe glossed and titled (報告醫生 Médico：Dr. António Ribeiro), or
    # right after a Chinese one (翻译Emily Zhang).
    (rf"(?:{alternation(STAFF_ROLES)})\d?(?:{_GLOSS}{_SEP}|[ \t]+|(?<=[\u4e00-\u9fff])(?=[A-Z])){_HONORIFIC}(?P<v>{_LATIN_NAMES})", DOCTOR),  # 阅片者1：
    (rf"(?:{alternation(KIN_ROLES)})(?:{_GLOSS}{_SEP}|[ \t]+|(?<=[\u4e00-\u9fff])(?=[A-Z])){_HONORIFIC}(?P<v>{_LATIN_NAMES})", NAME),
    # A staff member's code before the name (录入：YY0317 聂小芸), after a role label (checked after the match).
    (r"(?P<v>[A-Za-z](?<![A-Za-z0-9][A-Za-z])[A-Za-z]{0,3}\d{2,8})(?=[ \t]+[\u4e00-\u9fff])", ID, _after_role),
    (rf"(?:{_ENGLISH_STAFF})[ \t]*:?[ \t]*{_HONORIFIC}(?P<v>{_LATIN_NAME})", DOCTOR),
    # A staff number in parentheses right after a Chinese name (王芳(T0123), 李强（工号 E0456）).
    (r"[（(](?<=[\u4e00-\u9fff][（(])(?:工号[ \t:：]*)?(?P<v>[A-Za-z]{1,3}\d{3,6})[)）]", ID),
    # A correspondent's name in a message header (From: Jane Doe (daughter), cc: …).
    (rf"(?:From|FROM|To|TO|Cc|CC|cc|Attn|ATTN|[Aa]uthors?|AUTHORS?)[ \t]*:[ \t]*{_HONORIFIC}(?P<v>{_LATIN_NAMES}|{_ANY_CJK_NAME}(?![\u4e00-\u9fff]))", NAME),
    # A Chinese name after English "by" (exported by 王芳, Signed by 李明).
    (rf"(?:b(?<![A-Za-z]b)|B(?<![A-Za-z]B))y[ \t]+(?P<v>{_CJK_NAME})(?![\u4e00-\u9fff])", DOCTOR),
    # The patient named in English running text (second opinion, patient Zhou Anping).
    (rf"(?:patient|Patient)[ \t]+(?P<v>{_LATIN_NAMES})", NAME),
    # A label in Latin letters runs into no word (IDH1 is a gene).
    (rf"(?:{alternation(_ID_LABELS)})(?:{_GLOSS}{_SEP}|[ \t\u3000]+|(?![A-Za-z])|(?<![A-Za-z]))(?P<v>{_CARD_NUMBER}|{_ID_VALUE})", ID, _trial_number),
    # A bed after its label: a ward before the number (床号：神外ICU-5, 床号 Bed ┃ 老年科 09).
    (rf"(?:床[ \t]*号|床位号?)(?:{_GLOSS}{_SEP}|[ \t]+)(?P<v>(?:{_WARD})?{_BED})(?![\dA-Za-z])", ID),
    (rf"(?:{alternation(_PHONE_LABELS)})(?:{_SEP}|[ \t]*)(?P<v>\+?[\d\- ]{{7,16}}\d{_EXTENSION})", PHONE),
    # An extension with its label (ext. 4-5521, 内线 3321).
    (rf"(?P<v>(?:{alternation(_EXTENSION_LABELS)})(?:{_SEP}|[ \t]*)\d(?:-?\d){{1,6}})(?!\d)", PHONE),
    # A phone number by its shape after a phone, relative or notification word in its sentence (by phone (6287
    # 1043), 家屬：配偶 方國樑 0912-338-451), but not before a unit.
    (rf"(?:{alternation(_PHONE_CUES)})[^\n。；;]{{0,30}}?(?P<v>{_PHONE_SHAPE}{_EXTENSION})(?![\d\-]|{_UNIT})", PHONE),
    # …its words apart too (香港某某道9號 某某安老院), but not the next field's label (住址：某市  电话：…).
    (rf"(?:地址|住址|现住址){_SEP}(?P<v>[^\s，。；,;]+(?:[ ](?![^\s，。；,;]*[:：])(?=[^\s，。；,;]{{3}})[^\s，。；,;]+)*)", ADDRESS),
    # An address in Latin letters after a Chinese label, up to a wide gap or the line's end (住址：No. 8, Jalan …).
    (rf"(?:地址|住址|现住址){_SEP}(?P<v>(?=[A-Za-z0-9])[^\n\t\u3000]*?[^\s.,;])(?=[ \t]*(?:$|\n|\t|[ ]{{2}})|\u3000)", ADDRESS),
    # A Chinese address after 住/住址/地址, spaces inside (住长沙市岳麓区…路 22 号 3 栋): a province or city first,
    # up to the last house, building or room number of the clause.
    (rf"(?:地址|住址|住所|家住|现住|住(?![院址所]))(?:{_SEP}|[ \t]*)(?P<v>{_CN_ADDRESS})", ADDRESS),
    # …or a town, village, district or street first, after where one lives (家在院东头镇桃花坪村12号).
    (rf"(?:家在|家住|住在|现居|居住在|居住于)(?P<v>[\u4e00-\u9fff]{{1,12}}?[镇乡村县区路街道]{_HOUSE})", ADDRESS),
    (r"(?:Address|ADDRESS|Addr\.)[ \t]*:[ \t]*(?P<v>[^\n\t]*?[^\s.,;])(?=[ \t]*(?:$|\n|\t|[ ]{2}))", ADDRESS),
    # Any label ending in 号/No./ID (会诊号：, Process No.:, N.º de utente：): the number after it, four characters
    # or more (not Series No.: 4), but not a house number (5号3楼).
    (rf"(?:{_NUMBER_LABEL})(?:{_SEP}|[ \t]*)(?P<v>{_CASE_NUMBER}|{_SPOKEN_ID}|(?=[A-Za-z0-9\-]{{4}}){_ID_VALUE})(?![\u4e00-\u9fff])", ID, _trial_number),
    # A medical record number read out in English words (record number seven seven three one…).
    (rf"(?:number|Number|NUMBER|MRN|ID)[ \t]+(?:is[ \t]+)?(?P<v>{_SPOKEN_EN}(?:[ \t]+{_SPOKEN_EN}){{3,}})\b", ID),
    (rf"(?:{_ENGLISH_NUMBER_LABEL}){_SEP}(?P<v>(?=[A-Za-z0-9\-]{{4}}){_ID_VALUE})", ID),
    # …or in a table's next cell (| 住院号 | NM2023-000123 |).
    (rf"(?:{_NUMBER_LABEL}|ID)[ \t]*[|｜][ \t]*(?P<v>(?=[A-Za-z0-9\-]{{4}}){_ID_VALUE})(?=[ \t]*[|｜])", ID),
    (rf"(?:No|NO)\.[ \t]+(?P<v>(?=[A-Za-z0-9\-]{{4}}){_ID_VALUE})", ID, _trial_number),  # No. 2024-0056731
    # A reference number (booking ref XR-MR-40218, Reference: 5520331), three digits in a row in it.
    (rf"(?:r(?<![A-Za-z]r)|R(?<![A-Za-z]R))ef(?:erence)?\.?(?:[ \t]*(?:[Nn]o\.?|#))?[ \t:：#]+(?P<v>(?=[A-Za-z\-]*\d{{3}}){_ID_VALUE})", ID),
    (rf"(?P<v>{_CASE_SERIAL})", ID),
    # The value of a hospital or unit label, in Chinese or English: the words of an English name too
    # (报告医院：Mercy Clinic, Leeds; Facility: Ridgeview Imaging).
    (rf"(?:送检单位|检查单位|扫描单位|委托单位|转出单位|转入单位|出车单位|就诊医院|报告医院|申请医院|转出医院|医院名称|Imaging site|Facility|Institution){_SEP}(?P<v>[^\s，。；,;]+(?:,?[ ][A-Za-z][^\s，。；,;]*)*)", HOSPITAL),
    (rf"(?P<v>{_ENGLISH_HOSPITAL})", HOSPITAL, lambda text, a, b: bool(_GENERIC_INSTITUTION.fullmatch(text, a, b))),
    (rf"(?P<v>St\.[ ]{_ENGLISH_HOSPITAL})", HOSPITAL),  # St. Brigid's Hospital (a rule of its own, for speed)
    (rf"(?P<v>{_FOREIGN_INSTITUTION})", HOSPITAL),
    (r"(?P<v>[A-Z](?<![A-Za-z0-9][A-Z])[A-Z]{1,5})(?=[ \t]+(?:MRN|URN|MR#|MR No))", HOSPITAL),  # MGH MRN 7743-1190
    # A Korean hospital's name of several words (칭다오대학 부속병원).
    (r"(?P<v>[\uac00-\ud7a3]{2,}(?:[ ][\uac00-\ud7a3]+){1,3}(?<=병원|의원))", HOSPITAL),
    # A code of capitals joined by hyphens to six digits or more (NNI-MRA-230908-0112, WHU-P-2211087).
    (r"(?P<v>[A-Z](?<![A-Za-z0-9\-][A-Z])[A-Z]{0,4}(?:-[A-Z]{1,5})*-\d{6,}(?:-[A-Za-z0-9]+)*)(?![A-Za-z0-9])", ID),
    # …or capitals and a year before a serial (ZY2023-04417, NM2022-000815).
    (r"(?P<v>[A-Z](?<![A-Za-z0-9\-][A-Z])[A-Z]{0,3}(?:19|20)\d{2}-\d{4,})(?![\d\-])", ID),
    # …or of three groups or more, the last of three digits or more (a subject's code PDX-B-017, a site's record
    # number KLX-23-0091822, SX-RMH-23-1102).
    (r"(?P<v>[A-Z](?<![A-Za-z0-9\-][A-Z])[A-Z]{1,4}(?:-(?:[A-Z]{1,5}|\d{2,4})){1,3}-\d{3,}(?:-[A-Za-z0-9]+)*)(?![A-Za-z0-9\-])", ID, _trial_number),
    # A user's code in a log's column before a name (2024-01-03 09:40:21  N2231    符洁).
    (r"(?P<v>[A-Z](?<![A-Za-z0-9\-][A-Z])[A-Z]{0,2}\d{4,6})(?=[ \t]{2,}[\u4e00-\u9fff])", ID),
    # A FHIR reference to a patient or practitioner: its id ("reference": "Patient/GZ-7720135").
    (r'"reference"[ \t]*:[ \t]*"(?:Patient|Practitioner|RelatedPerson|Person)/(?P<v>[^"/\s]+)"', ID),
    # An outside hospital's short name between a prior study's date and its modality, in a comparison
    # (与2022-05-17华西MRI对比): a name or place, not ordinary words (头颅, 复查) nor 本院/外院.
    (rf"\d[日号]?[“\"]?(?P<v>[\u4e00-\u9fff]{{2,6}}?)(?=[”\"]?{_MODALITY}[^\n。]{{0,20}}?(?:对比|比较|相比))", HOSPITAL, _ordinary_place),
    # …maybe wrapped at a line break after its second separator (2023-08-⏎30).
    (rf"(?P<v>(?:19|20)\d{{2}}[ \t]*[-/.年][ \t]*\d{{1,2}}[ \t]*(?:[-/.]\n?|月)[ \t]*\d{{1,2}}(?:[ \t]*日)?{_TIME}?)", DATE),
    (rf"(?P<v>(?:{_MONTHS})\.?(?:[ \t]+\d{{1,2}}(?:st|nd|rd|th)?,?)?[ \t]+(?:19|20)\d{{2}}{_TIME}?)(?!\d)", DATE),  # March 2022
    (rf"(?P<v>{_DAY_MONTH_YEAR}{_TIME}?)(?!\d)", DATE),
    # A month and a day without the year (on Jan 8, March 14th); not May, a verb too.
    (rf"(?P<v>(?:{_MONTHS})(?<!May)\.?[ \t]+\d{{1,2}}(?:st|nd|rd|th)?)(?![\d:.]|,?[ \t]*(?:19|20)\d\d|[ \t]*(?:mm|cm|ms))", DATE),
    # A weekday before a date (Tue 09 Jan 2024, Monday, March 4, 2024): the weekday too.
    (rf"(?P<v>(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)[a-z]*\.?,?[ \t]+)(?=\d{{1,2}}[ \t\-]+(?:{_MONTHS})|(?:{_MONTHS})\.?[ \t]+\d)", DATE),
    (r"(?P<v>(?:19|20)\d{2}[ \t]*年[ \t]*\d{1,2}[ \t]*月)", DATE),
    # Taiwan's ROC calendar (year 113 is 2024): 民國113年2月18日, 113年2月18日, 113/02/18.
    (rf"(?P<v>(?:中华)?民国[ \t]*\d{{1,3}}[ \t]*年(?:[ \t]*\d{{1,2}}[ \t]*月(?:[ \t]*\d{{1,2}}[ \t]*[日号]{_TIME}?)?)?)", DATE),
    (rf"(?P<v>[一二][{_CN_DIGIT}]{{3}}[ \t]*年[ \t]*[{_CN_NUMBER}]{{1,2}}[ \t]*月(?:[ \t]*[{_CN_NUMBER}]{{1,3}}[ \t]*[日号]{_CN_TIME})?)", DATE),
    # …and its years in Chinese numerals (民國一一二年三月五日).
    (rf"(?P<v>民国[{_CN_DIGIT}十]{{2,4}}年[{_CN_NUMBER}]{{1,2}}月(?:[{_CN_NUMBER}]{{1,3}}[日号])?)", DATE),
    (rf"(?P<v>(?:{_MONTHS})[ \t]+{_SPOKEN_DAY}?{_SPOKEN_YEAR})(?![A-Za-z])", DATE),
    # A month and a year (compared with 09/2023), no digit or slash around.
    (r"(?P<v>(?:0(?<![\d/.]0)[1-9]|1(?<![\d/.]1)[0-2])/(?:19|20)\d\d)(?![\d/])", DATE),
    (rf"(?P<v>1(?<![\d.]1)[01]\d(?:[ \t]*年[ \t]*\d{{1,2}}[ \t]*月[ \t]*\d{{1,2}}[ \t]*[日号]|(?P<s>[-/.])(?:0[1-9]|1[0-2])(?P=s)(?:[0-2]\d|3[01])(?![\d.])){_TIME}?)", DATE),
    # A two-digit year (ROC or short: 77年9月14日), a year in digits and the rest in Chinese numerals (2023年三月二十日).
    (rf"(?P<v>\d(?<![\d.]\d)\d[ \t]*年[ \t]*\d{{1,2}}[ \t]*月[ \t]*\d{{1,2}}[ \t]*[日号]{_TIME}?)", DATE),
    (rf"(?P<v>(?:19|20)\d{{2}}[ \t]*年[ \t]*[{_CN_NUMBER}]{{1,2}}[ \t]*月(?:[ \t]*[{_CN_NUMBER}]{{1,3}}[ \t]*[日号])?)", DATE),
    (rf"(?P<v>\d{{1,2}}[ \t]*月[ \t]*\d{{1,2}}[ \t]*[日号]{_TIME}?)", DATE),
    # A year and a month: 2023-08, 2023/8 (not a range of years: 2019-2021, nor part of a code: TNK-2023-01).
    (rf"(?P<v>(?:1(?<![A-Za-z\d.]1)(?<![A-Za-z]-1)9|2(?<![A-Za-z\d.]2)(?<![A-Za-z]-2)0)\d{{2}}(?P<s>[-/.])(?:0?[1-9]|1[0-2]))(?![\d.]|(?P=s)\d|{_UNIT})", DATE),
    # 23-05-12 only after a date label (unlabelled, it is as likely a size 12-10-15mm or slices 10/11/12);
    # 05/12/2023 anywhere, but not before a unit. One separator twice, no digit or point around.
    (r"(?:日期|时间|Date|DATE|DOB|入院|出院|比较|对比)[ \t]*[:：]?[ \t]*(?P<v>\d{2,3}(?P<s>[-/.])(?:0?[1-9]|1[0-2])(?P=s)(?:[0-2]?\d|3[01]))(?!\.?\d)", DATE),
    # Eight digits after a date label, maybe with the time ([检查时间]20230412 10:05, Date: 20230412).
    (r"(?:日期|时间|Date|DATE)[\]】]?[ \t]*[:：]?[ \t]*(?P<v>(?:19|20)\d{2}(?:0[1-9]|1[0-2])(?:[0-2]\d|3[01])(?:[ \t]+\d{1,2}:\d{2}(?::\d{2})?)?)(?!\d)", DATE),
    # A year, a month's name and a day (2023-Apr-12), and a month and day with a time (04-12 02:30).
    (rf"(?P<v>(?:19|20)\d{{2}}-(?:{_MONTHS})-\d{{1,2}}{_TIME}?)(?!\d)", DATE),
    (r"(?P<v>0(?<![\d\-./:]0)[1-9]-(?:[0-2]\d|3[01])[ \t]+\d{1,2}:\d{2}|1(?<![\d\-./:]1)[0-2]-(?:[0-2]\d|3[01])[ \t]+\d{1,2}:\d{2})(?![\d:])", DATE),
    # A month and day with no year, between 与/较 and a prior study (与3.12外院MRI比较).
    (rf"(?:与|较)(?P<v>(?:0?[1-9]|1[0-2])[./](?:[0-2]?\d|3[01]))(?=[\u4e00-\u9fff]{{0,4}}{_MODALITY}[^\n。]{{0,20}}?(?:对比|比较|相比))", DATE),
    # A month and day with a slash before a clock time or a study (3/5 凌晨1:32, 11/30 CT示); not a spinal level
    # (C5/6) nor a fraction (2/3).
    (rf"(?P<v>{_MONTH_DAY}(?:{_TIME}|(?=[ \t]*{_MODALITY})))", DATE, _no_month_day),
    # …or zero-padded before a time or a study (23/11/05 02:14, 22.09.13 术后CT).
    (rf"(?P<v>\d(?<![\d.]\d)\d(?P<s>[-/.])(?:0[1-9]|1[0-2])(?P=s)(?:[0-2]\d|3[01])(?=[ \t]+(?:\d{{1,2}}:\d{{2}}|[\u4e00-\u9fff]{{0,4}}{_MODALITY}))(?:[ \t]+\d{{1,2}}:\d{{2}})?)(?![\d.])", DATE),
    (rf"(?P<v>\d(?<![\d.]\d)\d?(?P<s>[-/.])\d{{1,2}}(?P=s)(?:19|20)\d{{2}}{_TIME}?)(?!\.?\d|[ \t]*(?:mm|cm|层))", DATE),
    # (?<!\dX) after the first character X: no digit before the number, without a leading lookbehind.
    (rf"(?P<v>1(?<!\d1)[3-9]\d(?:[- ]?\d{{4}}){{2}}|0(?<!\d0)\d{{2,3}}[- ]\d{{7,8}}(?!\d){_EXTENSION})(?!\d)", PHONE),
    # A North American number with its area code in parentheses, and an international one: (617) 555-0199,
    # +44 20 7946 0958.
    (r"(?P<v>\(\d{3}\)[ \t]?\d{3}-\d{4}|\+(?<![\w+]\+)\d{1,3}[ \t\-]\d{1,4}(?:[ \t\-]\d{2,4}){1,3})(?!\d)", PHONE),
    # …and one written 778-555-0142 (no digit, hyphen or point around).
    (r"(?P<v>\d(?<![\d\-.]\d)\d{2}-\d{3}-\d{4})(?![\d\-])", PHONE),
    # A Malaysian identity card number (MyKad: 710203-08-5531): birth date, place code, serial.
    (r"(?P<v>\d(?<![\d\-.]\d)\d{5}-\d{2}-\d{4})(?![\d\-])", ID),
    # A date of eight digits in a file's name (export_20231107.csv, 某某_MRI_20230305.dcm).
    (r"_(?P<v>(?:19|20)\d{2}(?:0[1-9]|1[0-2])(?:[0-2]\d|3[01]))(?=\.[A-Za-z]{2,5}(?![A-Za-z]))", DATE),
    # A long number, maybe with a prefix, a suffix after a hyphen (CT240314-1127) or a check digit; not a code of
    # an HL7 message header (its message control ID).
    (rf"(?P<v>[A-Za-z0-9](?<![\d.][A-Za-z0-9])[A-Za-z]{{0,3}}\d{{6,}}[A-Za-z0-9]*(?:-[A-Za-z0-9]+)*{_CHECK_DIGIT})(?![\d.])", ID, hl7_code),
    (rf"[（(](?P<v>{_LATIN_NAME})[)）](?=[，, \t]*(?:男|女))", NAME),  # 郭雨萱（GUO YUXUAN），男
    # A name in Chinese characters, its parts apart, in parentheses after its romanised form (TANAKA Hiroshi（田中 浩）).
    (r"[（(](?<=[a-z][（(])(?P<v>[\u4e00-\u9fff]{1,2}[ ][\u4e00-\u9fff]{1,2})[)）,，]", NAME),
    # A romanised name listed after 、 before a note (娄 平、Wolf Schneider（德国进修医师）).
    (rf"、[ \t]*(?P<v>{_LATIN_WORD}[ ]{_LATIN_WORD})(?=[（(，,、；;])", NAME),
    # A ward's bed at the start of a row before the patient's name (NICU-03 | 解红梅 女 45岁).
    (rf"(?P<v>[A-Z](?<![A-Za-z0-9\-][A-Z])[A-Z]{{1,4}}-\d{{1,3}})(?=[ \t]*\|[ \t]*{_CJK_NAME})", ID),
    (rf"(?P<v>{_CARET_NAME})", NAME, coded_value),  # a DICOM person name anywhere: (MENG^FANYU), not a code
    (rf"(?P<v>{_CJK_NAME})(?=(?:[（(][^（）()\n]{{1,30}}[)）])?[，, \t]*(?:男|女|先生|女士))", NAME),
)
_HOSPITAL_SUFFIX = re.compile(f"{alternation(_HOSPITAL_SUFFIXES)}|{_SHORT_HOSPITAL}|{_BRANCH}")
# The name before a hospital suffix: up to 20 name characters (Chinese, Korean, Latin) ending at the suffix.
_HOSPITAL_HEAD = re.compile(r"[\u4e00-\u9fff\uac00-\ud7a3A-Za-z0-9（）()·]{2,20}$")
# Words a hospital match may swallow before the name (患者于北京协和医院, 建议至上级医院): cut after the last.
_HOSPITAL_LEAD = re.compile(r".*(?:患者|病人|建议|曾|已|在|于|到|至|自(?!治)|转|从|往|与|后经|\d日|\d\d(?<=[:：]\d\d)|（|\()")
# Hospital words that name no institution (建议至上级医院).
_GENERIC_HOSPITALS = frozenset({
    "", "上级", "专科", "综合", "当地", "基层", "其他", "其它", "正规", "该", "外", "上述", "大", "私人", "个体", "社区",
    "乡镇", "村", "神经", "放射", "医学", "核医学", "介入", "司法",  # then departments (神经影像中心)
    "同", "单", "两",  # and the words before a numbered 院 that is none (同一院区)
    "贵", "县", "乡", "镇", "区域",  # an unnamed county or regional hospital (县医院, 区域影像中心)
    "接诊", "首诊", "收治", "转诊", "转入", "转出",  # a hospital by its part in the patient's path (接诊医院回告)
    "一级", "二级", "三级", "二甲", "三甲",  # a hospital by its grade (最高诊断单位：三级医院)
})  # fmt: skip
# Words that end a hospital match's head and name a party or channel, not a hospital (请问你们医院, 原告认为被告医院),
# or a stamp's (本证明加盖医院诊断证明专用章).
_PARTY_WORDS = ("你们", "我们", "他们", "互联网", "网上", "被告", "原告", "加盖")

Span = tuple[int, int, str]  # start, end and the placeholder that replaces text[start:end]
_DITTO = frozenset({"同上", "同前", "同左"})  # a field's value that repeats another's
# A letter O among digits, where OCR reads a zero (2O23-1O-12, 16:O4).
_OCR_ZERO = re.compile(r"[Oo](?:(?<=\d[Oo])(?![A-Za-z])|(?<![A-Za-z][Oo])(?=\d))")
_OCR_ONE = re.compile(r"l(?:(?<=\dl)(?![A-Za-z])|(?<![A-Za-z]l)(?=\d))")  # a letter l among digits: 1l2, 3l5-2860
_OCR_DAY = re.compile(r"月[ \t]*[\dlI]{1,2}[ \t]*[日号]")  # a day misread with letters l: 4月ll日, 5月l2日
_OCR_O = re.compile(r"0(?<=[A-Z]0)(?=[A-Z])")  # a zero between capitals of a spaced-out name (G U 0 Y I N G)
# A line OCR spaced out character by character (l D No: 0 0 5 5 7 2 1 9): six single characters between blanks
# or more, most of its tokens.
_SPACED_TOKEN = re.compile(r"[^ \t\n]+")
_BLANKS = re.compile(r"[ ]+")
_MIN_SPACED = 6
# What a report repeats of the identifiers found, by the shortest that counts: IDs and hospitals of five
# characters or more, dates of three (3/5), names of four (Jenny) or of two Chinese characters.
_REPEATED_LENGTHS = {ID: 5, HOSPITAL: 5, DATE: 3, NAME: 4, DOCTOR: 4}
_CHINESE_NAME = re.compile(r"[\u4e00-\u9fff·]{2,}")
_WORD_CHAR = re.compile(r"[A-Za-z0-9]")
# HL7 segments that name places, a department's code after its hospital's (ZJPH_RAD; a code alone, RAD or
# NORTHWARD, may be a system's or a ward's) and an ID repeated after ~ in a field.
_HL7_PLACES = re.compile(r"^(?P<segment>MSH|PID|PV1)\|[^\n]*", re.MULTILINE)
_FACILITY_CODE = re.compile(r"(?P<v>[A-Z][A-Z0-9]{2,9})_[A-Z]{2,8}")
_HL7_REPEAT = re.compile(r"~(?P<v>[^\^~]+)")
# A hospital's code in capitals, which a report repeats (HL7's ZJPH, MGH MRN …, diagnosed at MGH).
_HOSPITAL_CODE = re.compile(r"[A-Z]{3,5}")
# A romanised name listed after another (, or and), and the letter a romanised name ends with.
_NEXT_NAME = re.compile(rf"(?:,[ ]|,?[ ]and[ ])(?P<v>{_LATIN_NAMES})")
_LATIN_END = re.compile(rf"[{_LETTER}]")
# A row of a CSV export with its values quoted, a cell, a header that names a person and a name's shape.
_CSV_ROW = re.compile(r'^"[^\n]*"$', re.MULTILINE)
_CSV_CELL = re.compile(r'"(?P<v>[^"\n]*)"')
_PERSON_HEADER = re.compile(r"(?i)(?:^|_)(?:dr|doctor|physician|radiologist|technologist|nurse|name)$")
_NAME_CELL = re.compile(rf"{_LATIN_NAME}|[\u4e00-\u9fff·]{{2,8}}")
# A phone number listed after another, after a slash or 、 (电话：(0571)8702-3311 / 0913-552-117).
_NEXT_PHONE = re.compile(rf"[ \t]*[/／、][ \t]*(?P<v>{_PHONE_SHAPE}{_EXTENSION})(?![\d\-]|{_UNIT})")


def _regex_finder(pattern: str, placeholder: str, reject: Reject | None = None) -> Callable[[str], Iterator[Span]]:
    """The spans of group "v" of ``pattern``'s matches, but none that ``reject`` rejects (checked after the
    match, as a leading lookahead would keep the engine from skipping positions)."""
    compiled = re.compile(pattern)
    return lambda text: (
        (*m.span("v"), placeholder)
        for m in compiled.finditer(text)
        if reject is None or not reject(text, *m.span("v"))
    )


def _structured(text: str) -> Iterator[Span]:
    """Identifiers by their place in HL7 segments, DICOM dumps and key=value exports
    (:mod:`brainfm.reports.structured_fields`), but no ditto (NK1 address 同上)."""
    return ((a, b, PLACEHOLDERS[kind]) for a, b, kind in structured_identifiers(text) if text[a:b] not in _DITTO)


def _hl7_places(text: str) -> Iterator[Span]:
    """Places and further IDs in HL7 segments: the hospital of a sending or receiving department (MSH-4, MSH-6:
    ZJPH of ZJPH_RAD), the patient's location (PV1-3: NS2^12^01 and its facility ZJPH) and the patient's IDs
    after the first (PID-3: ~YB3301-0087712^^^CHN^SS)."""
    if "MSH|" not in text and "PV1|" not in text:
        return
    for line in _HL7_PLACES.finditer(text):
        at, segment = line.start(), line.group("segment")
        for number, value in enumerate(line.group().split("|")):
            if segment == "MSH" and number in (3, 5):  # MSH-1 is the separator: field n is item n - 1
                code = _FACILITY_CODE.fullmatch(value)
                if code:
                    yield at + code.start("v"), at + code.end("v"), HOSPITAL
            elif segment == "PV1" and number == 3:
                yield from _hl7_location(value, at)
            elif segment == "PID" and number == 3:
                for repeat in _HL7_REPEAT.finditer(value):
                    yield at + repeat.start("v"), at + repeat.end("v"), ID
            at += len(value) + 1


def _hl7_location(value: str, at: int) -> Iterator[Span]:
    """A PV1-3 location at ``at`` that names its facility: its ward, room and bed an ID, the facility a
    hospital (a ward alone, NEURO^12^B, is none)."""
    parts = value.split("^")
    if len(parts) > 3 and parts[3]:
        place = "^".join(parts[:3]).rstrip("^")
        yield at, at + len(place), ID
        start = at + len("^".join(parts[:3])) + 1
        yield start, start + len(parts[3]), HOSPITAL


def _beds(text: str) -> Iterator[Span]:
    """Bed numbers right before 床 (加3床, +2床, A06床, NS1-31床), searched from 床 backwards."""
    at = text.find("床")
    while at >= 0:
        bed = _BED_BEFORE.search(text, max(0, at - 12), at)
        if bed:
            yield *bed.span(), ID
        at = text.find("床", at + 1)


def _study_dates(text: str) -> Iterator[Span]:
    """Months and days listed in parentheses right after a study (CT（11/28、11/30）), each a date of its own."""
    for dates in _STUDY_DATES.finditer(text):
        for date in _MONTH_DAY_PARTS.finditer(text, *dates.span("v")):
            if not _no_month_day(text, *date.span()):
                yield *date.span(), DATE


def _issued_numbers(text: str) -> Iterator[Span]:
    """Numbers issued on a document (京卫字第0512号), with the characters before 字第, searched from it backwards."""
    for number in _ISSUED_NUMBER.finditer(text):
        head = _ISSUED_HEAD.search(text, max(0, number.start() - 16), number.start())
        yield head.start() if head else number.start(), number.end(), ID


def _streets(text: str) -> Iterator[Span]:
    """English street addresses (14 Elm Road, Cambridge CB1 2AB), looked for only where a street word stands."""
    if _STREET_WORD.search(text):
        yield from ((*m.span(), ADDRESS) for m in _STREET.finditer(text))


def _roads(text: str) -> Iterator[Span]:
    """Chinese addresses from a road's name to its house number and flat (跑马地黄泥涌道31号嘉兰阁12楼B室), the
    words before the name that are none cut off as before a hospital's (家在|…)."""
    for number in _ROAD_NUMBER.finditer(text):
        name = _ROAD_NAME.search(text, max(0, number.start() - 20), number.start())
        if name:
            lead = _HOSPITAL_LEAD.match(text, name.start(), number.start())
            yield lead.end() if lead else name.start(), number.end(), ADDRESS


def _fhir_people(text: str) -> Iterator[Span]:
    """The display names of the people a FHIR resource refers to ("resultsInterpreter": [{"display": "…"}])."""
    if '"display"' not in text:
        return
    for key in _FHIR_PERSON_KEY.finditer(text):
        close = "]" if key.group("open") == "[" else "}"
        end = text.find(close, key.end())
        for display in _FHIR_DISPLAY.finditer(text, key.end(), end if end >= 0 else len(text)):
            yield *display.span("v"), NAME


def _csv_people(text: str) -> Iterator[Span]:
    """The cells of a CSV export's columns whose header names a person (referring_dr, reporting_dr,
    patient_name), where shaped as a name."""
    if '","' not in text:
        return
    rows = [list(_CSV_CELL.finditer(text, *row.span())) for row in _CSV_ROW.finditer(text)]
    people = {i for i, cell in enumerate(rows[0] if rows else []) if _PERSON_HEADER.search(cell.group("v"))}
    for row in rows[1:]:
        for i, cell in enumerate(row):
            if i in people and _NAME_CELL.fullmatch(cell.group("v")):
                yield *cell.span("v"), NAME


def _found_before(text: str, marks: re.Pattern[str], name: re.Pattern[str], reach: int) -> Iterator[re.Match[str]]:
    """``name`` (a pattern anchored at its end) ending right before each match of ``marks``, searched from the mark
    backwards within ``reach`` characters: a name pattern run over the whole text would be tried at every position."""
    for mark in marks.finditer(text):
        found = name.search(text, max(0, mark.start() - reach), mark.start())
        if found:
            yield found


def _before_romanised(text: str) -> Iterator[Span]:
    """A name in Chinese characters, its parts apart, before its romanised form in parentheses (佐藤 美咲 (Sato
    Misaki)), searched from the parenthesis backwards; no clinical word."""
    for name in _found_before(text, _ROMAN_IN_PARENTHESES, _SPACED_NAME_BEFORE, 8):
        if not holds_clinical_word(name.group("v").replace(" ", "")):
            yield *name.span("v"), NAME


def _before_sex_columns(text: str) -> Iterator[Span]:
    """A romanised name in a worklist's row, apart before the sex and age (Sokolova, Anna    女   38; MAIMAITI
    ALIM     M   41), searched from the sex backwards."""
    yield from ((*name.span("v"), NAME) for name in _found_before(text, _SEX_COLUMN, _LATIN_NAME_BEFORE, _LONGEST_ROMAN))


def _before_ranks(text: str) -> Iterator[Span]:
    """A name standing apart before a physician's rank (影像科 普建新 主任医师), searched from the rank backwards."""
    yield from ((*name.span(), DOCTOR) for name in _found_before(text, _RANK_APART, _ANY_NAME_BEFORE, 4))


def _before_kin(text: str) -> Iterator[Span]:
    """A name right before its kinship or 本人 in parentheses (王芳（母，电话…）, 李强（本人接听）), searched from the
    parenthesis backwards."""
    yield from ((*name.span(), NAME) for name in _found_before(text, _KIN_IN_PARENTHESES, _NAME_BEFORE, 4))


def _before_role_notes(text: str) -> Iterator[Span]:
    """A name right before its role in parentheses, standing apart (签名：某某（诊断）　某某（审核）), searched from
    the parenthesis backwards; no clinical word."""
    for name in _found_before(text, _ROLE_IN_PARENTHESES, _ANY_NAME_BEFORE, 4):
        if not holds_clinical_word(name.group()):
            yield *name.span(), DOCTOR


def _dotted_names(text: str) -> Iterator[Span]:
    """A name of parts joined by a middle dot before the sex (某某·某某某，男), looked for only where a dot stands."""
    if "·" in text or "•" in text or "・" in text:
        yield from ((*m.span("v"), NAME) for m in _DOTTED_BEFORE_SEX.finditer(text))


def _table_names(text: str) -> Iterator[Span]:
    """Names alone in the cells of a table's rows (a worklist, a register): a surname-led name, maybe with a
    department in parentheses, between bars or wide gaps, in a line of three such gaps or more; no clinical
    word, no verb, no role (申请人) nor a word of the dictionary that is no name (a header's 项目, 来源)."""
    at = 0
    for line in text.split("\n"):
        start, at = at, at + len(line) + 1
        if len(_CELL_GAPS.findall(line)) < 3:
            continue
        for cell in _NAME_CELL_ROW.finditer(text, start, at - 1):
            name = cell.group("v")
            if not (reads_as_words(name) or one_common_word(name) or name.endswith(_ROLE_ENDINGS)):
                yield *cell.span("v"), NAME


def _hospitals(text: str) -> Iterator[Span]:
    """Hospital names: a suffix (医院, 医学中心…) and the name characters right before it.

    Searched from the suffix backwards rather than by one regex: a pattern that opens with a class of all
    CJK characters would be tried at every position of the text.
    """
    for suffix in _HOSPITAL_SUFFIX.finditer(text):
        head = _HOSPITAL_HEAD.search(text, max(0, suffix.start() - 20), suffix.start())
        start = head.start() if head else suffix.start()
        # A lead word opening a line is the name's first character (于都县中医院).
        line_start = start == 0 or text[start - 1] == "\n"
        lead = _HOSPITAL_LEAD.match(text, start + line_start, suffix.start())
        start = lead.end() if lead else start
        label = text[suffix.end() : suffix.end() + 1] in (":", "：")  # 申请医院：, 转出医院：
        head = text[start : suffix.start()]
        named = head not in _GENERIC_HOSPITALS and head not in _OWN_HOSPITAL  # not 本院（东院区）
        if named and not head.endswith(_PARTY_WORDS) and not label:
            campus = _CAMPUS.match(text, suffix.end())
            end = campus.end() if campus else suffix.end()
            yield start, end, HOSPITAL
            alias = _HOSPITAL_ALIAS.match(text, end)
            if alias:
                yield *alias.span("v"), HOSPITAL


def _before_degrees(text: str) -> Iterator[Span]:
    """Latin names right before a degree (Jane K. Doe, MD): staff."""
    for degree in _DEGREE.finditer(text):
        start = max(text.rfind("\n", 0, degree.start()) + 1, degree.start() - _LONGEST_ROMAN)
        name = _NAME_BEFORE_DEGREE.search(text, start, degree.start())
        if name:
            yield *name.span("v"), DOCTOR


def _person_names(text: str) -> Iterator[Span]:
    """Person names (:mod:`brainfm.reports.person_names`), but none that runs into a hospital's name, of which
    it is a misreading (2021年6月于陆军军医大学…: 于陆军)."""
    hospitals = [(a, b) for a, b, _ in _hospitals(text)]
    for n in find_person_names(text):
        if not any(a < n.end and n.start < b for a, b in hospitals):
            yield n.start, n.end, DOCTOR if n.staff else NAME


# In priority order: where two finders' spans overlap, the earlier one's placeholder stands.
_FINDERS: tuple[Callable[[str], Iterator[Span]], ...] = (
    _structured,
    _hl7_places,
    *(_regex_finder(*pattern) for pattern in _PATTERNS[:-2]),
    _beds,
    _study_dates,
    _issued_numbers,
    _hospitals,
    # after hospitals: a hospital name may end in a surname-like character
    *(_regex_finder(*pattern) for pattern in _PATTERNS[-2:]),
    _before_degrees,
    _before_sex_columns,
    _before_ranks,
    _before_kin,
    _before_role_notes,
    _dotted_names,
    _table_names,
    _streets,
    _roads,
    _fhir_people,
    _csv_people,
    _before_romanised,
    _person_names,
)


def _renderings(identifier: str) -> list[str]:
    """Ways a known identifier is written in text: DICOM dates as 2023-05-12 / 2023年5月12日, PN as Zhang San."""
    ident = identifier.strip()
    forms = [ident]
    if re.fullmatch(r"(?:19|20)\d{6}", ident):
        y, m, d = ident[:4], ident[4:6], ident[6:]
        forms += [f"{y}{s}{m}{s}{d}" for s in "-/."]
        forms += [f"{y}-{int(m)}-{int(d)}", f"{y}/{int(m)}/{int(d)}", f"{y}年{m}月{d}日", f"{y}年{int(m)}月{int(d)}日"]
    if "^" in ident:
        forms.append(" ".join(p for p in ident.split("^") if p))
    return [f for f in forms if len(f) >= 2]


def _known_pattern(identifiers: Iterable[str]) -> re.Pattern[str] | None:
    forms = sorted({f for i in identifiers for f in _renderings(i)}, key=len, reverse=True)
    return re.compile("|".join(re.escape(f) for f in forms), re.IGNORECASE) if forms else None


def _uncovered(start: int, end: int, taken: list[Span]) -> Iterator[tuple[int, int]]:
    """The parts of ``[start, end)`` that no span in ``taken`` (sorted) covers."""
    for a, b, _ in taken:
        if b <= start or a >= end:
            continue
        if a > start:
            yield start, a
        start = max(start, b)
    if start < end:
        yield start, end


def _taken(text: str, taken: list[Span], spans: Iterable[Span]) -> list[Span]:
    """``taken`` (sorted) with the parts of ``spans`` it leaves uncovered, but no placeholder already in ``text``
    masked again."""
    for a, b, placeholder in list(spans):
        if a < b and not (placeholder != KNOWN and PLACEHOLDER.fullmatch(text, a, b)):
            parts = [(x, y, placeholder) for x, y in _uncovered(a, b, taken)]
            taken = sorted([*taken, *parts]) if parts else taken
    return taken


def _folded(text: str) -> str:
    """``text`` as the finders read it, character for character: traditional characters as simplified ones,
    and a letter O among digits as a zero (OCR)."""
    folded = _OCR_ONE.sub("1", _OCR_ZERO.sub("0", simplified(text)))
    if "l" in folded or "I" in folded:
        folded = _OCR_DAY.sub(lambda m: m.group().replace("l", "1").replace("I", "1"), folded)
    return folded


def _spaced_out(line: str) -> bool:
    """``line`` is spaced out: most of its tokens are single characters, six or more."""
    tokens = _SPACED_TOKEN.findall(line)
    singles = sum(len(token) == 1 for token in tokens)
    return singles >= _MIN_SPACED and 2 * singles > len(tokens)


def _despaced(folded: str) -> Iterator[Span]:
    """Identifiers in spaced-out lines (Date: 1 2 / 0 8 / 2 0 1 9, 门 诊 号 ： 2O23O9O4 1 l 7), found by the
    finders in each such line read with one blank fewer in every run of blanks (single blanks dropped, column
    gaps kept), and put back in place."""
    at = 0
    for line in folded.split("\n"):
        if line.count(" ") >= _MIN_SPACED and _spaced_out(line):
            kept = [at + i for i, char in enumerate(line) if char != " " or line[i + 1 : i + 2] == " "]
            packed = _OCR_O.sub("O", _folded(_BLANKS.sub(lambda m: m.group()[1:], line)))
            for a, b, placeholder in chain.from_iterable(finder(packed) for finder in _FINDERS):
                yield kept[a], kept[b - 1] + 1, placeholder
        at += len(line) + 1


def _repeats(text: str, taken: list[Span]) -> Iterator[Span]:
    """Every other place an identifier found stands (a log's staff number again in a note under it, a name of
    a table's row again in its conclusion, an English name again in a reply), long enough to be one there
    (:data:`_REPEATED_LENGTHS`) and standing apart from Latin letters and digits."""
    found: dict[str, str] = {}
    places = {(a, b) for a, b, _ in taken}
    for a, b, placeholder in taken:
        value = text[a:b]
        if (
            b - a >= _REPEATED_LENGTHS.get(placeholder, len(text) + 1)
            or (placeholder in (NAME, DOCTOR) and _CHINESE_NAME.fullmatch(value))
            or (placeholder == HOSPITAL and _HOSPITAL_CODE.fullmatch(value))
        ):
            found.setdefault(value, placeholder)
    for value, placeholder in found.items():
        at = text.find(value)
        while at >= 0:
            end = at + len(value)
            edges = text[max(0, at - 1) : at] + text[end : end + 1]
            if (at, end) not in places and not _WORD_CHAR.search(edges):
                yield at, end, placeholder
            at = text.find(value, end)


def _listed(
    text: str, taken: list[Span], heads: Callable[[int, str], bool], following: re.Pattern[str]
) -> Iterator[Span]:
    """The identifiers listed after each one found that ``heads`` accepts (by its end and placeholder), one
    after another as ``following`` matches group "v", with the found one's placeholder."""
    for _, end, placeholder in taken:
        listed = following.match(text, end) if heads(end, placeholder) else None
        while listed:
            yield *listed.span("v"), placeholder
            listed = following.match(text, listed.end())


def _listed_names(text: str, taken: list[Span]) -> Iterator[Span]:
    """The romanised names listed after each one found (Hao ZHOU, WEI ZHANG and Jianguo Huang)."""
    def latin(end: int, placeholder: str) -> bool:
        return placeholder in (NAME, DOCTOR) and bool(_LATIN_END.match(text, end - 1))

    return _listed(text, taken, latin, _NEXT_NAME)


def _listed_phones(text: str, taken: list[Span]) -> Iterator[Span]:
    """The phone numbers listed after each phone number found (… / 0913-552-117)."""
    return _listed(text, taken, lambda _, placeholder: placeholder == PHONE, _NEXT_PHONE)


def _romanised(text: str, names: list[Span]) -> Iterator[Span]:
    """The romanised form written right after or before each of ``names`` (梁國雄 LEONG KUOK HONG, 謝明中
    (Hsieh Ming-chung), António Ribeiro／高慧敏, Zhao Jing (Jenny)), with its placeholder: the same person."""
    for a, b, placeholder in names:
        after = _ROMAN_AFTER.match(text, b)
        if after:
            yield *after.span("v"), placeholder
        if text[b - 1 : b].isascii():
            chinese = _CHINESE_AFTER.match(text, b)
            if chinese and not all_ordinary_words(chinese.group("v")):
                yield *chinese.span("v"), placeholder
            english = _ENGLISH_NAME_AFTER.match(text, b)
            if english:
                yield *english.span("v"), placeholder
        # Searched only after a slash or parenthesis: the search tries every position of the line before.
        if text[max(0, a - _LONGEST_ROMAN) : a].rstrip(" \t")[-1:] in ("/", "／", "(", "（"):
            line_start = text.rfind("\n", 0, a) + 1
            before = _ROMAN_BEFORE.search(text, max(line_start, a - _LONGEST_ROMAN), a)
            if before:
                yield *before.span("v"), placeholder


def identifier_spans(
    text: str,
    identifiers: Iterable[str] = (),
    patterns: bool = True,
    learned: bool = True,
    tagger: IdentifierTagger | None = None,
) -> list[Span]:
    """Every identifier in ``text`` as sorted, non-overlapping ``(start, end, placeholder)`` spans: the known
    ``identifiers`` (in their common renderings, placeholder ``[标识]``) and, with ``patterns``, every
    identifier pattern and person name, the romanised form next to a name and, with ``learned``, what the
    identifier tagger reads (``tagger``, by default the shipped one). Where spans overlap, the known
    identifiers and then the earlier finder win and the later one keeps its uncovered parts, so every character
    any finder flags is covered."""
    known = _known_pattern(identifiers)
    found = (m.span() + (KNOWN,) for m in known.finditer(text)) if known else iter(())
    folded = _folded(text)  # traditional characters read as simplified ones, at the same places
    taken = _taken(text, [], chain(found, *(finder(folded) for finder in _FINDERS if patterns)))
    taken = _taken(text, taken, _despaced(folded) if patterns else ())
    if patterns:
        taken = _taken(text, taken, _romanised(text, [span for span in taken if span[2] in (NAME, DOCTOR)]))
        taken = _taken(text, taken, chain(_repeats(folded, taken), _listed_phones(folded, taken)))
    if patterns and learned:
        # The tagger adds what the rules left of its spans where that stands as an identifier on its own, and
        # leaves the edges of the rules' spans to them (患者|陈晓, 138-1234-5678|复诊); a trial's protocol or site
        # number is no ID for it either.
        tagged = (tagger or shipped_tagger()).spans(folded)
        added = [(x, y, PLACEHOLDERS[kind]) for a, b, kind in tagged for x, y in _uncovered(a, b, taken)
                 if could_be(folded, x, y, kind) and not (kind == "id" and _trial_number(folded, x, y))]  # fmt: skip
        taken = _taken(text, taken, added)
    if patterns:  # names listed after names found, by the rules or the tagger
        taken = _taken(text, taken, _listed_names(folded, taken))
    joined: list[Span] = []
    for a, b, placeholder in taken:  # touching parts of one kind are one identifier: [姓名][姓名] -> [姓名]
        if joined and joined[-1][1] == a and joined[-1][2] == placeholder:
            a = joined.pop()[0]
        joined.append((a, b, placeholder))
    return joined


def deidentify_text(text: str, identifiers: Iterable[str] = (), learned: bool = True) -> str:
    """``text`` with known ``identifiers`` and every identifier pattern (with ``learned``, and every identifier
    the tagger reads) replaced by placeholders."""
    parts, at = [], 0
    for a, b, placeholder in identifier_spans(text, identifiers, learned=learned):
        parts += [text[at:a], placeholder]
        at = b
    return "".join(parts) + text[at:]


def _found(text: str, identifiers: Iterable[str], patterns: bool) -> dict[str, str]:
    """Each identifier left in ``text`` -> its kind, the placeholder that replaces it (known ones first)."""
    spans = identifier_spans(text, identifiers, patterns, learned=False)
    found = {text[a:b]: placeholder for a, b, placeholder in spans if placeholder == KNOWN}
    for a, b, placeholder in spans:
        found.setdefault(text[a:b], placeholder)
    return found


def find_identifiers(text: str, identifiers: Iterable[str] = (), patterns: bool = True) -> list[str]:
    """Identifiers left in ``text``: any known ``identifiers`` (in their common renderings) and, with
    ``patterns``, any string the de-identification patterns would still replace. Empty for clean text."""
    return list(_found(text, identifiers, patterns))


def identifier_kinds(text: str, identifiers: Iterable[str] = (), patterns: bool = True) -> list[str]:
    """The kind (placeholder, such as ``[电话]``) of each identifier :func:`find_identifiers` finds: what may be
    logged about a hit, which never shows the identifier itself."""
    return list(_found(text, identifiers, patterns).values())
