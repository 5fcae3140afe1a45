"""Data minimisation of the stored report text: only the clinical clauses of the findings and impression.

The structured output stores a report's findings and impression, de-identified. Sign-off lines, worklist and
log-book rows, and the clauses that notify, contact, sign or name someone carry no imaging content, and they are
where the identifiers that the de-identification misses mostly sit (names after role words, relatives, call-back
numbers). They are dropped from what is stored whatever the de-identification found in them: a structural second
line of defence (the "minimum necessary" of HIPAA and GDPR's data minimisation), not a replacement for it. A
clause is cut at ``，；。`` (and English sentence ends) outside brackets, so the finding before
"，已电话通知神经外科医生" is kept and a name with its phone number in brackets goes as one.
"""

from __future__ import annotations

import re

from brainfm.reports.deid_text import ADDRESS, DATE, DOCTOR, KNOWN, NAME, PHONE
from brainfm.reports.sections import Sections

# Words of a clause that notifies, contacts, signs, reviews or names a person (simplified and traditional).
_ADMIN_CN = (
    "通知|告知|告之|知会|转告|联系|聯繫|聯絡|电话|電話|致电|致電|来电|來電|回电|短信|簡訊|微信|沟通|溝通|交代|"
    "签署|簽署|签字|簽字|签名|簽名|签发|簽發|知情同意|陪同|翻译|翻譯|家属|家屬|家人|监护人|監護人|照顾者|照顧者|"
    "护工|護工|保姆|家傭|家佣|邻居|鄰居|其子(?!宫)|其女|其夫|其妻|儿子|兒子|女儿|女兒|配偶|丈夫|妻子|老伴|"
    "审核|審核|复核|複核|覆核|审阅|審閱|核对(?!称)|核對(?!稱)|报告人|報告人|报告者|報告者|书写|書寫|录入|錄入|打印|列印|"
    "技师|技師|技术员|技術員|阅片人|閱片人|仲裁|质控|質控|评估员|評估員|上传|上傳|记录人|記錄人|操作员|操作員|"
    "值班|接收人|接听|接聽|主持|参会|參會|监查|監查|协调员|協調員|拨打|撥打|请拨|請撥|分机|分機|总机|總機|"
    "医师|医生|醫師|醫生|护士|護士|教授|主任|老师|老師|大夫|"
    r"(?:时间|時間|日期|地点|地點|地址|住址)\s*[:：]|"
    "보호자|연락처"
)
_ADMIN_EN = (
    r"notif\w*|informed?|called|phoned?|telephon\w*|discussed|contact\w*|spoke|conveyed|communicated|"
    r"daughter|son|wife|husband|mother|father|brother|sister|caregiver|carer|guardian|relatives?|family|"
    r"interpreter|accompan\w*|helper|maid|reported|verified|approved|reviewed|dictated|transcribed|signed|typed|"
    r"prof\w*|nurse|consultant|registrar|resident|radiologist|rater|reader|assessor|evaluator|observer|tel|phone|"
    r"mobile|e-?mail|ext|(?:date|time)\s*:"
)
_TITLES = r"Dr|Mr|Mrs|Ms|Miss"  # case-sensitive: MS is multiple sclerosis
_PERSON_PLACEHOLDERS = "|".join(re.escape(p) for p in (NAME, DOCTOR, PHONE, ADDRESS, KNOWN))
_ADMIN = re.compile(
    rf"{_ADMIN_CN}|{_PERSON_PLACEHOLDERS}|(?<![A-Za-z])(?:{_TITLES}|(?i:{_ADMIN_EN}))(?![A-Za-z])"
)

_OPEN, _CLOSE = "（(【[「《", "）)】]」》"
# A bracketed aside that names or signs someone (（报告者[医师]）, (father)) goes alone; ``[]`` are placeholders'.
_ASIDE = re.compile(r"[（(【「《][^（(【「《）)】」》]*[）)】」》]")
_ASIDE_SIGNED = re.compile(r"报告|報告|report|读片|讀片", re.IGNORECASE)  # （放射科 X 报告）
# The speaker of a dated log or chat line ("[日期] 放射科-小周（X）：…").
_LOG_SPEAKER = re.compile(rf"^\s*{re.escape(DATE)}[^：:。，,]{{0,30}}[：:]")
_SENTENCE_END = "。！!？?."
_CLAUSE_END = "，,；;。！!？?"
_WORD = re.compile(r"\w")
# An English full stop ends a clause before a capital, except after a title or an abbreviation.
_NOT_SENTENCE_END = re.compile(rf"(?:\b(?:{_TITLES}|Prof|St|No|Fig|vs|e\.g|i\.e|approx)|\b[A-Z])$")

# Cells of a worklist, log-book or CSV row: pipes, tabs, ASCII commas without a following space, or a run of
# spaces holding an ideographic space or two ordinary ones.
_CELL_SEPARATORS = (
    re.compile(r"[|｜]"),
    re.compile(r"\t"),
    re.compile(r",(?! )"),
    re.compile(r" *\u3000[\u3000 ]*| {2,}"),
)
_MIN_CELLS = 4


def _clauses(line: str) -> list[str]:
    """``line`` cut after each clause end outside brackets; the pieces join back to ``line``."""
    pieces, depth, start = [], 0, 0
    for i, char in enumerate(line):
        if char in _OPEN:
            depth += 1
        elif char in _CLOSE:
            depth = max(depth - 1, 0)
        elif depth == 0 and (
            char in _CLAUSE_END
            or (
                char == "."
                and line[i + 1 : i + 3][:1] == " "
                and line[i + 2 : i + 3].isupper()
                and not _NOT_SENTENCE_END.search(line[start:i])
            )
        ):
            pieces.append(line[start : i + 1])
            start = i + 1
    return [*pieces, line[start:]] if start < len(line) else pieces


def _row_kind(line: str) -> int | None:
    """The index of the cell separator that splits ``line`` into at least ``_MIN_CELLS`` cells, if any; a line
    with a full stop is a sentence, not a row, unless its cells are piped."""
    for kind, separator in enumerate(_CELL_SEPARATORS):
        if len(separator.findall(line.strip())) >= _MIN_CELLS - 1 and (kind == 0 or "。" not in line):
            return kind
    return None


def _table_rows(lines: list[str]) -> set[int]:
    """Indices of the lines that are rows of a table: a pipe row on its own, other separators two rows running."""
    kinds = [_row_kind(line) for line in lines]
    rows = {i for i, kind in enumerate(kinds) if kind == 0}
    for i in range(len(lines) - 1):
        if kinds[i] is not None and kinds[i] == kinds[i + 1]:
            rows |= {i, i + 1}
    return rows


def _unsigned(aside: re.Match[str]) -> str:
    """A bracketed aside, or "" where it names, signs or contacts someone."""
    return "" if _ADMIN.search(aside.group(0)) or _ASIDE_SIGNED.search(aside.group(0)) else aside.group(0)


def _clinical_line(line: str) -> str:
    """``line`` without its administrative clauses and the rest of their sentence (a number or a time after a
    name goes with it); the sentence end of a dropped clause is kept."""
    kept, dropping = "", False
    for clause in _clauses(_LOG_SPEAKER.sub("", line)):
        clause = _ASIDE.sub(_unsigned, clause)
        end = clause.rstrip()[-1:] in _SENTENCE_END
        if dropping or _ADMIN.search(clause):
            dropping = not end
            if end and kept.rstrip()[-1:] in "，,；;":
                kept = kept.rstrip()[:-1] + clause.rstrip()[-1]
        else:
            kept += clause
    kept = kept.strip().lstrip(_CLAUSE_END + " ")
    return kept if _WORD.search(kept) else ""


def clinical_text(text: str) -> str:
    """The clinical part of a findings or impression ``text``: table rows and administrative clauses removed."""
    lines = text.split("\n")
    rows = _table_rows(lines)
    kept = (_clinical_line(line) for i, line in enumerate(lines) if i not in rows)
    return "\n".join(line for line in kept if line)


def clinical_sections(sections: Sections) -> Sections:
    """``sections`` with :func:`clinical_text` applied to the findings and to the impression."""
    return Sections(findings=clinical_text(sections.findings), impression=clinical_text(sections.impression))
