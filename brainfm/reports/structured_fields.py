"""Identifiers in structured exports pasted into reports: HL7 v2 segments, DICOM tag dumps and key=value lines.

In these a field's place says what it holds, whatever its value looks like: PID-11 is the patient's address,
OBR-2 the placer's order number, every PN value of a dump a person's name, ``Approver=`` a person. The finders
here give ``(start, end, kind)`` with the identifier sets' kinds (name, id, phone, date, hospital, address);
:mod:`brainfm.reports.deid_text` turns the kinds into placeholders. :func:`coded_value` tells a caret-joined
code of these exports (``ORU^R01``, ``^^^MRN^MR``, a study description ``HEAD^ROUTINE``) from a DICOM name.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

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
_DICOM_LINE = re.compile(
    r"^[ \t]*\((?P<tag>[0-9A-Fa-f]{4},[0-9A-Fa-f]{4})\)[ \t]+(?P<vr>[A-Z]{2})[ \t]+\[(?P<v>[^\n]*?)\][ \t]*(?:#|$)",
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
_DICOM_VALUE_START = re.compile(r"[ \t]*\([0-9A-Fa-f]{4},[0-9A-Fa-f]{4}\)[ \t]+(?P<vr>[A-Z]{2})[ \t]+\[")

# key=value exports (StudyDateTime=…, Reporter=…): the key's words (CamelCase or snake_case) say the kind.
_KEY_VALUE = re.compile(r"^[ \t]*(?P<key>[A-Za-z][A-Za-z0-9_]*)[ \t]*=[ \t]*(?P<v>[^\n=]{1,80}?)[ \t]*$", re.MULTILINE)
_KEY_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+")
_PERSON_KEYS = frozenset({
    "physician", "radiologist", "reporter", "approver", "author", "operator", "operators", "technologist",
    "technician", "reader", "reviewer", "verifier", "signer", "doctor", "nurse", "requester", "referrer",
    "performer", "transcriber", "typist", "patient", "referring", "requesting", "ordering", "reading", "attending",
})  # fmt: skip
_INSTITUTION_KEYS = frozenset({"institution", "hospital", "facility"})
_NOT_ID_KEYS = frozenset({"series", "instance", "image", "acquisition", "echo", "slice", "frame", "version",
                          "temporal", "phase", "stack", "study"})  # fmt: skip


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
    if last in ("id", "mrn", "accession") or (last in ("number", "no") and not before & _NOT_ID_KEYS):
        return "id" if "station" not in before else None
    if last in ("date", "datetime", "birthdate"):
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
        kind = _DICOM_VRS.get(m.group("vr")) or _DICOM_TAGS.get(m.group("tag").upper())
        value = m.group("v").rstrip("^ \t")
        if kind is not None and value.strip():
            start = m.start("v") + len(value) - len(value.lstrip())
            yield start, m.start("v") + len(value), kind


def _key_values(text: str) -> Iterator[Found]:
    """Values of key=value export lines whose key names an identifier (Approver=…, AccessionNumber=…)."""
    if "=" not in text:
        return
    for m in _KEY_VALUE.finditer(text):
        kind = _key_kind(m.group("key"))
        if kind is not None:
            yield *m.span("v"), kind


def structured_identifiers(text: str) -> Iterator[Found]:
    """Identifiers that the fields of HL7 segments, DICOM dumps and key=value exports in ``text`` hold."""
    if "|" in text:
        yield from _hl7(text)
    if "(" in text:
        yield from _dicom(text)
    yield from _key_values(text)


def coded_value(text: str, start: int, end: int) -> bool:
    """``text[start:end]``, caret-joined letters, is a code of a structured export and no person's name: part
    of a longer token (ORU^R01, an HL7 message type), a component after another (2024004417^^^MRN^MR), or a
    DICOM dump value whose VR is not PN (LO [HEAD^ROUTINE])."""
    before, after = text[start - 1 : start], text[end : end + 1]
    if before == "^" or _ascii_alnum(before) or _ascii_alnum(after):
        return True
    line_start = text.rfind("\n", 0, start) + 1
    value = _DICOM_VALUE_START.match(text, line_start, start)
    return value is not None and value.end() == start and value.group("vr") != "PN"


def _ascii_alnum(char: str) -> bool:
    return char.isascii() and char.isalnum()
