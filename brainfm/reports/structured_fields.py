"""Identifiers in structured exports pasted into reports: HL7 v2 segments, DICOM tag dumps, key=value lines,
JSON and YAML pairs, XML (CDA-like) elements and attributes, and the columns of pipe (Markdown), tab-separated,
CSV and space-aligned tables.

In these a field's place says what it holds, whatever its value looks like: PID-11 is the patient's address,
OBR-2 the placer's order number, every PN value of a dump a person's name, ``Approver=`` a person, ``<family>``
a surname, a table's 姓名 column names. The finders
here give ``(start, end, kind)`` with the identifier sets' kinds (name, id, phone, date, hospital, address);
:mod:`brainfm.reports.deid_text` turns the kinds into placeholders. :func:`coded_value` tells a caret-joined
code of these exports (``ORU^R01``, ``^^^MRN^MR``, a study description ``HEAD^ROUTINE``) from a DICOM name.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import NamedTuple

Found = tuple[int, int, str]  # start, end and the kind of identifier

# HL7 v2 fields that hold identifiers, by segment and field number (MSH-1 is the field separator itself).
# IDs (CX) keep only their first component: the rest names the scheme (^^^MRN^MR).
_HL7_FIELDS: dict[str, dict[int, str]] = {
    "MSH": {7: "date"},
    "PID": {2: "id", 3: "id", 4: "id", 5: "name", 6: "name", 7: "date", 9: "name", 11: "address", 13: "phone",
            14: "phone", 18: "id", 19: "id", 20: "id", 21: "id"},
    "NK1": {2: "name", 4: "address", 5: "phone", 6: "phone", 30: "name", 31: "phone", 32: "address"},
    "PV1": {7: "name", 8: "name", 9: "name", 17: "name", 19: "id", 44: "date", 45: "date", 50: "id"},
    "ORC": {2: "id", 3: "id", 4: "id", 9: "date", 10: "name", 11: "name", 12: "name", 15: "date"},
    "OBR": {2: "id", 3: "id", 6: "date", 7: "date", 8: "date", 14: "date", 16: "name", 22: "date", 28: "name",
            32: "name", 33: "name", 34: "name", 35: "name", 36: "date"},
}  # fmt: skip
_HL7_SEGMENT = re.compile(rf"^(?:{'|'.join(_HL7_FIELDS)})\|[^\n]*", re.MULTILINE)
_COMPONENT = re.compile(r"[^\^~&|\n]+")

# A line of a DICOM dump: (0010,1040) LO [value], up to the last bracket (a placeholder may stand inside). Values under a PN or date VR are names and dates; other
# identifying tags by number (the attributes of DICOM PS3.15's de-identification profile that reports show).
# A dump may name the attribute instead of its VR: (0010,1040) PatientAddress [value].
_DICOM_LINE = re.compile(
    r"^[ \t]*\((?P<tag>[0-9A-Fa-f]{4},[0-9A-Fa-f]{4})\)[ \t]+(?:(?P<vr>[A-Z]{2})|(?P<keyword>[A-Za-z]{3,}))[ \t]+"
    r"\[(?P<v>[^\n]*?)\][ \t]*(?:#|$)",
    re.MULTILINE,
)
_DICOM_VRS = {"PN": "name", "DA": "date", "DT": "date"}
_DICOM_TAGS = {
    "0008,0050": "id",  # Accession Number
    "0008,0080": "hospital",  # Institution Name
    "0008,0081": "address",  # Institution Address
    "0008,0092": "address",  # Referring Physician's Address
    "0008,0094": "phone",  # Referring Physician's Telephone Numbers
    "0008,1010": "id",  # Station Name
    "0010,0020": "id",  # Patient ID
    "0010,1000": "id",  # Other Patient IDs
    "0010,1040": "address",  # Patient's Address
    "0010,2154": "phone",  # Patient's Telephone Numbers
    "0020,0010": "id",  # Study ID
    "0040,0253": "id",  # Performed Procedure Step ID
    "0040,1001": "id",  # Requested Procedure ID
    "0040,2016": "id",  # Placer Order Number
    "0040,2017": "id",  # Filler Order Number
}
# The VR of the dump line a position is in, up to the value's opening bracket.
_DICOM_VALUE_START = re.compile(
    r"[ \t]*\([0-9A-Fa-f]{4},[0-9A-Fa-f]{4}\)[ \t]+(?:(?P<vr>[A-Z]{2})|(?P<keyword>[A-Za-z]{3,}))[ \t]+\["
)

# key=value exports (StudyDateTime=…, Reporter=…): the key's words (CamelCase or snake_case) say the kind. A
# line of one pair, or pairs among other words of a line, a value without blanks or quotes (# export: a.csv
# exported_by=liqian; not an XML attribute).
_KEY_VALUE = re.compile(r"^[ \t]*(?P<key>[A-Za-z][A-Za-z0-9_]*)[ \t]*=[ \t]*(?P<v>[^\n=]{1,80}?)[ \t]*$", re.MULTILINE)
_KEY_VALUE_WORD = re.compile(
    r"(?:^|(?<=[ \t]))(?P<key>[A-Za-z][A-Za-z0-9_]*)=(?P<v>[^\s=\"'<>]{1,80})(?=\s|$)", re.MULTILINE
)
# YAML pairs, lower-case keys (name: "Ren, Jia", name_cn: 任佳, - operator: 郝宇): the value in its quotes.
_YAML_PAIR = re.compile(
    r"^[ \t]*(?:-[ \t]+)?(?P<key>[a-z][a-z0-9_]*):[ \t]+(?P<q>[\"']?)(?P<v>[^\n\"']{1,80}?)(?P=q)[ \t]*$", re.MULTILINE
)
_KEY_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+")
_PERSON_KEYS = frozenset({
    "physician", "radiologist", "reporter", "approver", "author", "operator", "operators", "technologist",
    "technician", "reader", "reviewer", "verifier", "signer", "doctor", "nurse", "requester", "referrer",
    "performer", "transcriber", "typist", "patient", "referring", "requesting", "ordering", "reading", "attending",
    "tech", "user", "rater", "pi", "by",  # exported_by, created_by
})  # fmt: skip
# Language suffixes of a key (name_cn, NameEN, name_pinyin): the key's kind is that of the words before.
_LANGUAGE_KEYS = frozenset({"cn", "zh", "en", "py", "pinyin", "chinese", "english", "local"})
_INSTITUTION_KEYS = frozenset({"institution", "hospital", "facility", "organization", "organisation"})
_NOT_ID_KEYS = frozenset({"series", "instance", "image", "acquisition", "echo", "slice", "frame", "version",
                          "temporal", "phase", "stack", "study"})  # fmt: skip

# JSON pairs with a string value: "pid": "XW-0081926".
_JSON_PAIR = re.compile(r'"(?P<key>[A-Za-z][A-Za-z0-9_]*)"[ \t]*:[ \t]*"(?P<v>[^"\n]{1,80})"')
# XML: an element's text (its tag maybe with attributes: <Doctor role="audit">), with the element just before
# it (<representedOrganization><name>…), and attributes.
_XML_ELEMENT = re.compile(
    r"(?:<(?P<parent>[A-Za-z][\w:.-]*)[^<>]*>\s*)?<(?P<tag>[A-Za-z][\w:.-]*)(?:[ \t][^<>]*)?>(?P<v>[^<>\n]{1,120})"
    r"</(?P=tag)>"
)
_XML_ATTRIBUTE = re.compile(r'<(?P<tag>[A-Za-z][\w:.-]*)[^<>]*?[ \t](?P<attribute>extension|value|name)="(?P<v>[^"<>\n]{1,80})"')
_XML_TAGS = {"family": "name", "given": "name", "name": "name", "addr": "address", "streetAddressLine": "address"}
_ORGANISATION = re.compile(r"(?i:organi[sz]ation|institution|hospital|facility|custodian)")


class _TableFormat(NamedTuple):
    """A way of writing a table: what a text without one lacks, its header row, its other rows and a cell
    (group ``v``, without its blanks and quotes)."""

    marker: str
    header: re.Pattern[str]
    row: re.Pattern[str]
    cell: re.Pattern[str]


_PIPE_ROW = re.compile(r"^[ \t]*\|[^\n]*\|[ \t]*$", re.MULTILINE)
_TAB_ROW = re.compile(r"^[^\n\t|]+(?:\t[^\n\t|]+){2,}$", re.MULTILINE)
# A header's label where a line of its format is as often prose (CSV, space-aligned): a key or Chinese.
_LABEL = r"(?:[A-Za-z][A-Za-z0-9_]*|[\u4e00-\u9fff]+)"
# Pipe (Markdown), tab-separated, comma-separated (CSV, cells maybe quoted: case_id,name,site) and
# space-aligned (cells two spaces or more apart: 预约号  患者  电话) tables, three cells or more.
_TABLE_FORMATS = (
    _TableFormat("|", _PIPE_ROW, _PIPE_ROW, re.compile(r"(?<=\|)[ \t]*(?P<v>[^|\n]*?)[ \t]*(?=\|)")),
    _TableFormat(
        "\t", _TAB_ROW, _TAB_ROW, re.compile(r"(?:^|(?<=\t))[ ]*(?P<v>[^\t\n]*?)[ ]*(?=\t|$)", re.MULTILINE)
    ),
    _TableFormat(
        ",",
        re.compile(rf"^[ \t]*{_LABEL}(?:[ \t]*,[ \t]*{_LABEL}){{2,}}[ \t]*$", re.MULTILINE),
        re.compile(r"^[^\n,]*,[^\n,]*,[^\n]*$", re.MULTILINE),
        re.compile(r'(?:^|(?<=,))[ \t]*(?P<q>")?(?P<v>(?(q)[^"\n]*|[^,\n]*?))(?(q)")[ \t]*(?=,|$)', re.MULTILINE),
    ),
    _TableFormat(
        "  ",
        re.compile(rf"^[ ]*{_LABEL}(?: {{2,}}{_LABEL}){{2,}}[ ]*$", re.MULTILINE),
        re.compile(r"^[ ]*[^\s|]+(?: [^\s|]+)*(?: {2,}[^\s|]+(?: [^\s|]+)*){2,}[ ]*$", re.MULTILINE),
        re.compile(r"(?P<v>[^\s|]+(?: [^\s|]+)*)"),
    ),
)
_TABLE_RULE = re.compile(r"\|?(?:[ \t]*:?-{3,}:?[ \t]*\|)+[ \t]*:?(?:-{3,}:?)?[ \t]*")  # under a header: |---|:---:|
# The labels of identifier columns, and a cell's parenthesised part (王芳(T0123)). A cell counts with a letter or
# digit in it (not —), and under an ID, date or phone column with a digit (not 未完成).
_TABLE_NAME_LABEL = re.compile(r"姓名|名字|医[师生]$|技师$|护士$|[者人员]$|^(?:患者|病人|受检者)$")
_TABLE_ID_LABEL = re.compile(r"(?<![序信型层符])号$|编号$|工号|ID$|^No\.?$")
_TABLE_DATE_LABEL = re.compile(r"日期$|^时间$|^Date$")
_TABLE_PHONE_LABEL = re.compile(r"电话|手机")
_TABLE_VALUE = re.compile(r"[\w]")
_NUMBER_KINDS = frozenset({"id", "date", "phone"})
_DIGIT = re.compile(r"\d")
_PARENTHESISED = re.compile(r"(?P<outer>[^()（）]+?)[ \t]*[(（](?P<inner>[^()（）]+)[)）]")


def _key_kind(key: str) -> str | None:
    """The kind of identifier a key=value export's key names (PatientID → id, ReferringPhysician → name,
    InstitutionName → hospital, name_cn → name, exported_by → name, site → hospital; SeriesNumber,
    ReportText → none)."""
    words = [w.lower() for w in _KEY_WORD.findall(key)]
    if len(words) > 1 and words[-1] in _LANGUAGE_KEYS:
        words = words[:-1]
    if not words:
        return None
    if words == ["site"]:  # a registry's enrolling hospital; a lesion's is lesion_site
        return "hospital"
    last, before = words[-1], set(words[:-1])
    if last == "address":
        return "address"
    if last in ("phone", "telephone", "tel", "mobile", "fax"):
        return "phone"
    if last in ("id", "pid", "mrn", "acc", "accession") or (last in ("number", "no") and not before & _NOT_ID_KEYS):
        return "id" if "station" not in before else None
    if last in ("date", "datetime", "birthdate", "dob"):
        return "date"
    if last in _INSTITUTION_KEYS or (last == "name" and before & _INSTITUTION_KEYS):
        return "hospital"
    if last in _PERSON_KEYS or (last in ("name", "names") and (not before or before & _PERSON_KEYS)):
        return "name"
    return None


def _hl7(text: str) -> Iterator[Found]:
    """Identifiers in HL7 v2 segments, by field: an ID's first component, a name's components up to the first
    empty one (LUO^GUIZHEN^^^^^L), a date, phone or address whole."""
    for line in _HL7_SEGMENT.finditer(text):
        fields = _HL7_FIELDS[line.group()[:3]]
        at, number = line.start(), 1 if line.group().startswith("MSH") else 0
        for value in line.group().split("|"):
            kind = fields.get(number)
            if kind is not None and value.strip("^~ "):
                components = list(_COMPONENT.finditer(value))
                if kind == "name":
                    run = [components[0]]
                    for c in components[1:]:
                        if c.start() != run[-1].end() + 1:  # an empty component ends the name
                            break
                        run.append(c)
                    if len(run) > 1 or not run[0].group().isdigit():
                        yield at + run[0].start(), at + run[-1].end(), kind
                elif kind == "address":
                    yield at + components[0].start(), at + components[-1].end(), kind
                elif value[:1] not in ("^", "~"):  # an ID, phone or date: its first component
                    yield at + components[0].start(), at + components[0].end(), kind
            at, number = at + len(value) + 1, number + 1


def _dicom(text: str) -> Iterator[Found]:
    """Identifiers in a DICOM tag dump: every PN, DA and DT value, and the values of identifying tags."""
    for m in _DICOM_LINE.finditer(text):
        keyword = m.group("keyword")
        kind = (_DICOM_VRS.get(m.group("vr") or "") or _DICOM_TAGS.get(m.group("tag").upper())
                or (keyword and _key_kind(keyword)))  # fmt: skip
        value = m.group("v").rstrip("^ \t")
        if kind is not None and value.strip():
            start = m.start("v") + len(value) - len(value.lstrip())
            yield start, m.start("v") + len(value), kind


def _keyed_values(text: str, marker: str, pairs: re.Pattern[str]) -> Iterator[Found]:
    """Values of key/value pairs (`pairs` with groups ``key`` and ``v``: key=value lines, JSON "key": "value")
    whose key names an identifier (Approver=…, "exam_date": "…"); none without `marker` in the text."""
    if marker not in text:
        return
    for m in pairs.finditer(text):
        kind = _key_kind(m.group("key"))
        if kind is not None:
            yield *m.span("v"), kind


def _xml(text: str) -> Iterator[Found]:
    """Identifiers in XML (HL7 CDA and the like): the text of a name, family, given or address element (a name
    under an organisation element is a hospital's) or of one whose tag names an identifier, an ``<id>``'s
    extension, a ``…Time`` element's value, and a ``name`` attribute (``<patient name="…">``)."""
    if "</" not in text and "=\"" not in text:
        return
    for m in _XML_ELEMENT.finditer(text):
        tag = m.group("tag")
        kind = _XML_TAGS.get(tag) or _key_kind(tag)
        if kind == "name" and _ORGANISATION.search(m.group("parent") or ""):
            kind = "hospital"
        if kind is not None and m.group("v").strip():
            yield *m.span("v"), kind
    for m in _XML_ATTRIBUTE.finditer(text):
        tag, attribute = m.group("tag"), m.group("attribute")
        if attribute == "extension" and tag == "id":
            yield *m.span("v"), "id"
        elif attribute == "value" and tag.endswith("Time"):
            yield *m.span("v"), "date"
        elif attribute == "name":
            yield *m.span("v"), "hospital" if _key_kind(tag) == "hospital" else "name"


def _table_label_kind(label: str) -> str | None:
    """The kind of identifier a table column's header names (姓名, 检查号, 原报告医师, 日期, Patient ID…)."""
    label = label.strip(" *`")
    if _TABLE_NAME_LABEL.search(label):
        return "name"
    if _TABLE_ID_LABEL.search(label):
        return "id"
    if _TABLE_DATE_LABEL.search(label):
        return "date"
    if _TABLE_PHONE_LABEL.search(label):
        return "phone"
    return _key_kind(re.sub(r"[^A-Za-z]+", "_", label))


def _cells(table: _TableFormat, text: str, row: re.Match[str]) -> list[tuple[int, int]]:
    """The ``(start, end)`` of each cell of a table's ``row``, without its blanks and quotes."""
    return [m.span("v") for m in table.cell.finditer(text, *row.span())]


def _tables(text: str) -> Iterator[Found]:
    """Cells of tables (pipe, tab-separated, CSV and space-aligned) under a header cell that names an
    identifier: each row's 姓名 or 原报告医师 cell, its 检查号 cell, its 日期 cell. A header's label in parentheses
    names what a cell holds in them (责任技师(工号): 王芳(T0123), a name and an ID)."""
    for table in _TABLE_FORMATS:
        if table.marker in text:
            yield from _table_cells(table, text)


def _table_cells(table: _TableFormat, text: str) -> Iterator[Found]:
    """The identifier cells of the tables of one format in ``text`` (:func:`_tables`): under each header, the
    rows right after it with as many cells."""
    end = -1  # where the last table ended
    for header in table.header.finditer(text):
        if header.start() <= end:  # a row of the table before
            continue
        kinds = [_header_kinds(text[a:b]) for a, b in _cells(table, text, header)]
        end = header.end()
        while end < len(text) and (row := table.row.match(text, end + 1)) is not None:
            cells, end = _cells(table, text, row), row.end()
            if len(cells) != len(kinds) or _TABLE_RULE.fullmatch(row.group().strip()):
                continue
            for (a, b), (kind, inner) in zip(cells, kinds, strict=True):
                value = _PARENTHESISED.fullmatch(text, a, b) if inner else None
                if value:
                    yield from ((*value.span(g), k) for g, k in (("outer", kind), ("inner", inner)) if k)
                elif kind and (_DIGIT if kind in _NUMBER_KINDS else _TABLE_VALUE).search(text, a, b):
                    yield a, b, kind


def _header_kinds(label: str) -> tuple[str | None, str | None]:
    """A header cell's kind, and the kind its label in parentheses names (责任技师(工号): name, id)."""
    inner = _PARENTHESISED.fullmatch(label.strip())
    if inner:
        return _table_label_kind(inner.group("outer")), _table_label_kind(inner.group("inner"))
    return _table_label_kind(label), None


def structured_identifiers(text: str) -> Iterator[Found]:
    """Identifiers that the fields of HL7 segments, DICOM dumps, key=value exports, JSON, YAML, XML and tables
    in ``text`` hold."""
    if "|" in text:
        yield from _hl7(text)
    yield from _tables(text)
    if "(" in text:
        yield from _dicom(text)
    yield from _keyed_values(text, "=", _KEY_VALUE)
    yield from _keyed_values(text, "=", _KEY_VALUE_WORD)
    yield from _keyed_values(text, '":', _JSON_PAIR)
    yield from _keyed_values(text, ": ", _YAML_PAIR)
    if "<" in text:
        yield from _xml(text)


def _hl7_field(text: str, start: int, end: int) -> tuple[str, int] | None:
    """The segment and field number of the HL7 field ``text[start:end]`` lies in, if any."""
    line_start = text.rfind("\n", 0, start) + 1
    segment = _HL7_SEGMENT.match(text, line_start)
    if segment is None or end > segment.end():
        return None
    name = segment.group()[:3]
    return name, text.count("|", line_start, start) + (name == "MSH")  # MSH-1 is the field separator itself


def hl7_code(text: str, start: int, end: int) -> bool:
    """``text[start:end]`` is a code of an HL7 message header, whatever it looks like: a field of MSH but its
    date (MSH-10's message control ID MSG0012345)."""
    field = _hl7_field(text, start, end)
    return field is not None and field[0] == "MSH" and field[1] not in _HL7_FIELDS["MSH"]


def coded_value(text: str, start: int, end: int) -> bool:
    """``text[start:end]``, caret-joined letters, is a code of a structured export and no person's name: part
    of a longer token (ORU^R01, an HL7 message type), a component after another (2024004417^^^MRN^MR), a value
    in an HL7 segment's field that holds no name (OBR-4's CTHEAD^CT), or a DICOM dump value whose VR is not PN
    (LO [HEAD^ROUTINE])."""
    before, after = text[start - 1 : start], text[end : end + 1]
    if before == "^" or _ascii_alnum(before) or _ascii_alnum(after):
        return True
    field = _hl7_field(text, start, end)
    if field is not None:
        return _HL7_FIELDS[field[0]].get(field[1]) != "name"
    line_start = text.rfind("\n", 0, start) + 1
    value = _DICOM_VALUE_START.match(text, line_start, start)
    if value is None or value.end() != start:
        return False
    keyword = value.group("keyword")
    return value.group("vr") != "PN" if keyword is None else _key_kind(keyword) != "name"


def _ascii_alnum(char: str) -> bool:
    return char.isascii() and char.isalnum()
