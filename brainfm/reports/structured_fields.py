"""Identifiers in structured exports pasted into reports: HL7 v2 segments, DICOM tag dumps, key=value lines,
JSON pairs, XML (CDA-like) elements and attributes, and the columns of pipe (Markdown) tables.

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
from itertools import chain

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

# key=value exports (StudyDateTime=…, Reporter=…): the key's words (CamelCase or snake_case) say the kind.
_KEY_VALUE = re.compile(r"^[ \t]*(?P<key>[A-Za-z][A-Za-z0-9_]*)[ \t]*=[ \t]*(?P<v>[^\n=]{1,80}?)[ \t]*$", re.MULTILINE)
_KEY_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+")
_PERSON_KEYS = frozenset({
    "physician", "radiologist", "reporter", "approver", "author", "operator", "operators", "technologist",
    "technician", "reader", "reviewer", "verifier", "signer", "doctor", "nurse", "requester", "referrer",
    "performer", "transcriber", "typist", "patient", "referring", "requesting", "ordering", "reading", "attending",
    "tech",
})  # fmt: skip
_INSTITUTION_KEYS = frozenset({"institution", "hospital", "facility", "organization", "organisation"})
_NOT_ID_KEYS = frozenset({"series", "instance", "image", "acquisition", "echo", "slice", "frame", "version",
                          "temporal", "phase", "stack", "study"})  # fmt: skip

# JSON pairs with a string value: "pid": "XW-0081926".
_JSON_PAIR = re.compile(r'"(?P<key>[A-Za-z][A-Za-z0-9_]*)"[ \t]*:[ \t]*"(?P<v>[^"\n]{1,80})"')
# XML: an element's text, with the element just before it (<representedOrganization><name>…), and attributes.
_XML_ELEMENT = re.compile(
    r"(?:<(?P<parent>[A-Za-z][\w:.-]*)[^<>]*>\s*)?<(?P<tag>[A-Za-z][\w:.-]*)>(?P<v>[^<>\n]{1,120})</(?P=tag)>"
)
_XML_ATTRIBUTE = re.compile(r'<(?P<tag>[A-Za-z][\w:.-]*)[^<>]*?[ \t](?P<attribute>extension|value|name)="(?P<v>[^"<>\n]{1,80})"')
_XML_TAGS = {"family": "name", "given": "name", "name": "name", "addr": "address", "streetAddressLine": "address"}
_ORGANISATION = re.compile(r"(?i:organi[sz]ation|institution|hospital|facility|custodian)")
# Pipe tables: a row, a rule under the header (|---|:---:|), the labels of identifier columns, and a cell's
# parenthesised part (王芳(T0123)). A cell counts with a letter or digit in it (not —).
_TABLE_ROW = re.compile(r"^[ \t]*\|[^\n]*\|[ \t]*$", re.MULTILINE)
_TAB_ROW = re.compile(r"^[^\n\t|]+(?:\t[^\n\t|]+){2,}$", re.MULTILINE)  # three cells or more
_TABLE_RULE = re.compile(r"\|?(?:[ \t]*:?-{3,}:?[ \t]*\|)+[ \t]*:?(?:-{3,}:?)?[ \t]*")
_TABLE_NAME_LABEL = re.compile(r"姓名|名字|医[师生]$|技师$|护士$|[者人]$|^(?:患者|病人|受检者)$")
_TABLE_ID_LABEL = re.compile(r"(?<![序信型层符])号$|编号$|工号|ID$|^No\.?$")
_TABLE_DATE_LABEL = re.compile(r"日期$|^时间$|^Date$")
_TABLE_PHONE_LABEL = re.compile(r"电话|手机")
_TABLE_VALUE = re.compile(r"[\w]")
_PARENTHESISED = re.compile(r"(?P<outer>[^()（）]+?)[ \t]*[(（](?P<inner>[^()（）]+)[)）]")


def _key_kind(key: str) -> str | None:
    """The kind of identifier a key=value export's key names (PatientID → id, ReferringPhysician → name,
    InstitutionName → hospital; SeriesNumber, ReportText → none)."""
    words = [w.lower() for w in _KEY_WORD.findall(key)]
    if not words:
        return None
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
    if last in _PERSON_KEYS or (last in ("name", "names") and before & _PERSON_KEYS):
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
    if _TABLE_NAME_LABEL.search(label) or label.lower() in ("name", "patient"):
        return "name"
    if _TABLE_ID_LABEL.search(label):
        return "id"
    if _TABLE_DATE_LABEL.search(label):
        return "date"
    if _TABLE_PHONE_LABEL.search(label):
        return "phone"
    return _key_kind(re.sub(r"[^A-Za-z]+", "_", label))


def _cells(line: str, at: int) -> list[tuple[int, int]]:
    """The ``(start, end)`` of each cell of a table row (pipes, or tabs) starting at ``at``, blanks stripped."""
    if "|" not in line:
        parts, start = line.split("\t"), at
    else:
        parts, start = line.strip().strip("|").split("|"), at + line.index("|") + 1
    cells = []
    for part in parts:
        lead = len(part) - len(part.lstrip())
        cells.append((start + lead, start + len(part.rstrip())))
        start += len(part) + 1
    return cells


def _tables(text: str) -> Iterator[Found]:
    """Cells of pipe (Markdown) and tab-separated tables under a header cell that names an identifier: each row's
    姓名 or 原报告医师 cell, its 检查号 cell, its 日期 cell. A header's label in parentheses names what a cell holds
    in them (责任技师(工号): 王芳(T0123), a name and an ID)."""
    kinds: list[tuple[str | None, str | None]] = []
    end = -2  # where the last row ended: a row right after it is of the same table
    rows = chain(_TABLE_ROW.finditer(text) if "|" in text else (), _TAB_ROW.finditer(text) if "\t" in text else ())
    for m in rows:
        cells = _cells(m.group(), m.start())
        if m.start() != end + 1:  # a table's first row: its header
            kinds = [_header_kinds(text[a:b]) for a, b in cells]
        elif len(cells) == len(kinds) and not _TABLE_RULE.fullmatch(m.group().strip()):
            for (a, b), (kind, inner) in zip(cells, kinds, strict=True):
                value = _PARENTHESISED.fullmatch(text, a, b) if inner else None
                if value:
                    yield from ((*value.span(g), k) for g, k in (("outer", kind), ("inner", inner)) if k)
                elif kind and _TABLE_VALUE.search(text, a, b):
                    yield a, b, kind
        end = m.end()


def _header_kinds(label: str) -> tuple[str | None, str | None]:
    """A header cell's kind, and the kind its label in parentheses names (责任技师(工号): name, id)."""
    inner = _PARENTHESISED.fullmatch(label.strip())
    if inner:
        return _table_label_kind(inner.group("outer")), _table_label_kind(inner.group("inner"))
    return _table_label_kind(label), None


def structured_identifiers(text: str) -> Iterator[Found]:
    """Identifiers that the fields of HL7 segments, DICOM dumps, key=value exports, JSON, XML and pipe tables in
    ``text`` hold."""
    if "|" in text:
        yield from _hl7(text)
    yield from _tables(text)
    if "(" in text:
        yield from _dicom(text)
    yield from _keyed_values(text, "=", _KEY_VALUE)
    yield from _keyed_values(text, '":', _JSON_PAIR)
    if "<" in text:
        yield from _xml(text)


def coded_value(text: str, start: int, end: int) -> bool:
    """``text[start:end]``, caret-joined letters, is a code of a structured export and no person's name: part
    of a longer token (ORU^R01, an HL7 message type), a component after another (2024004417^^^MRN^MR), or a
    DICOM dump value whose VR is not PN (LO [HEAD^ROUTINE])."""
    before, after = text[start - 1 : start], text[end : end + 1]
    if before == "^" or _ascii_alnum(before) or _ascii_alnum(after):
        return True
    line_start = text.rfind("\n", 0, start) + 1
    value = _DICOM_VALUE_START.match(text, line_start, start)
    if value is None or value.end() != start:
        return False
    keyword = value.group("keyword")
    return value.group("vr") != "PN" if keyword is None else _key_kind(keyword) != "name"


def _ascii_alnum(char: str) -> bool:
    return char.isascii() and char.isalnum()
