"""DICOM de-identification following PS3.15 Annex E (profile and options in ``deid_profile``).

The rule for any attribute not named in the profile is safe by construction (a whitelist):

* private elements are removed unless listed in ``SAFE_PRIVATE``, and a listed one is decoded and written back
  fresh with only its numbers (or a listed code); the Siemens CSA image header is removed after the fields the
  pipeline needs are decoded from it into a private block of our own (``CSA_FIELDS``); curves (50xx), overlays
  (60xx), group lengths and trailing padding are removed;
* text VRs (PN, LO, SH, LT, ST, UT, UC, UR, AE, AS) are removed unless ``TEXT_ACTIONS`` keeps, cleans or
  replaces them;
* UIDs are replaced by keyed ``2.25.<int>`` UIDs, except standard ones (SOP classes, transfer syntaxes),
  so every reference (referenced image/series/study sequences, SR content) maps the same way as its target;
* dates (DA), times (TM) and date-times (DT) are shifted by a keyed per-patient number of days and seconds of
  time of day, as one instant where a date has its time (``brainfm.dicom.temporal``), so no time of day
  survives and intervals within a patient stay exact;
* sequences are recursed with the same rules; coded and numeric values are kept.

Text that stays is decoded with the file's SpecificCharacterSet (GB18030, ISO 2022 IR 58, …) before cleaning,
and written back as UTF-8 (``ISO_IR 192``). Pixel Data and every other kept element stay raw bytes.
"""

from __future__ import annotations

import enum
import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from pydicom.charset import default_encoding
from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_sequence_item
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence
from pydicom.tag import BaseTag
from pydicom.uid import (
    PYDICOM_IMPLEMENTATION_UID,
    UID,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)

from brainfm.dicom.codec import Header, as_text, ascii_values, number_texts, pad_to_even
from brainfm.dicom.deid_profile import (
    CSA_CREATOR,
    CSA_FIELDS,
    CSA_GROUP,
    CSA_IMAGE_HEADER,
    DESCRIPTOR_CJK_TERMS,
    DESCRIPTOR_TOKENS,
    KEEP_UID_KEYWORDS,
    METHOD_CODES,
    METHOD_TEXT,
    REMOVE_NON_TEXT,
    SAFE_PRIVATE,
    TEXT_ACTIONS,
    Action,
    PrivateField,
)
from brainfm.dicom.private import Numbers, csa_fields, decode, stored
from brainfm.dicom.temporal import DATE_PARTNERS, shift_date, shift_datetime, shift_time
from brainfm.pseudonym import Pseudonymizer, center_patient_key

TEXT_VRS = frozenset({"PN", "LO", "SH", "LT", "ST", "UT", "UC", "UR", "AE", "AS"})
_TOKEN_SPLIT = re.compile(r"[^0-9a-z+*]+")
_CJK_TERMS = re.compile("|".join(sorted(DESCRIPTOR_CJK_TERMS, key=len, reverse=True)))
_LO_MAX_CHARS = 64
_IDENTIFYING = (
    "PatientName", "PatientID", "OtherPatientIDs", "AccessionNumber", "PatientBirthDate", "PatientAddress",
    "PatientTelephoneNumbers", "ReferringPhysicianName", "PerformingPhysicianName", "OperatorsName",
    "StationName", "DeviceSerialNumber", "InstitutionName", "InstitutionAddress", "InstitutionalDepartmentName",
)  # fmt: skip
_KEPT_EQUIPMENT = ("Manufacturer", "ManufacturerModelName", "TransmitCoilName", "ReceiveCoilName")
_VALUE_TAGS = tuple(tag_for_keyword(k) for k in ("SpecificCharacterSet", *_IDENTIFYING, *_KEPT_EQUIPMENT))
_CJK = re.compile("[\u3400-\u9fff\uf900-\ufaff]")
# Words of the text de-identification itself writes into every export (method codes and description).
_WRITTEN_WORDS = frozenset(re.findall(r"[a-z0-9.]+", " ".join([METHOD_TEXT, *(m for _, m in METHOD_CODES)]).lower()))
_EVERY_EXPORTS_WORDS = _WRITTEN_WORDS | DESCRIPTOR_TOKENS  # words any export may carry: never searched


def clean_descriptor(text: str) -> str:
    """Keep only technical vocabulary from a free-text description (Clean Descriptors option).

    >>> clean_descriptor("T1_MPRAGE sag 张三 增强 Dr. Wang")
    'T1 MPRAGE SAG 增强'
    """
    tokens = [t.upper() for t in _TOKEN_SPLIT.split(text.lower()) if t in DESCRIPTOR_TOKENS]
    return " ".join(tokens + _CJK_TERMS.findall(text))[:_LO_MAX_CHARS].strip()


def patient_key(ds: Dataset | Header, center: str) -> str:
    """The original identity a pseudonym is derived from: PatientID within its center, else name
    and birth date, else study (both within the center); local IDs like "1" or "ANON" repeat across sites."""
    pid = str(ds.get("PatientID") or "").strip()
    if pid:
        return center_patient_key(center, pid)
    name = str(ds.get("PatientName") or "").strip()
    if name:
        return center_patient_key(center, f"name:{name}|{ds.get('PatientBirthDate') or ''}")
    return center_patient_key(center, f"study:{ds.get('StudyInstanceUID') or ''}")


def identifying_values(ds: Dataset | Header) -> frozenset[str]:
    """The original values that identify the patient of ``ds`` or its site (the leak check of its export looks
    for them): names, their ``=`` groups and ``^`` components, IDs, accession number, birth date, address,
    telephone numbers, the staff names, and the station name, device serial number and institution. Values
    under 4 characters match by chance and are left out, except CJK names of 2 or more characters, and so are
    words every export may carry (the method text, technical descriptor words, the file's kept manufacturer,
    model and coil names: a station named after its scanner model is no leak). Held in memory only, never
    logged or written.

    For a lean header the result is cached by the stored bytes of those attributes (and the character set): the
    files of a series repeat them, and decoding them is a per-file cost of the ingest.
    """
    if isinstance(ds, Header):
        stored = ((t, ds.elements.get(t)) for t in _VALUE_TAGS)
        return _cached_values(tuple((t, e) for t, e in stored if e is not None and isinstance(e[1], bytes)))
    return _values(ds)


@functools.lru_cache(maxsize=256)
def _cached_values(elements: tuple[tuple[int, tuple[str, Any]], ...]) -> frozenset[str]:
    header = Header()
    header.elements = dict(elements)
    return _values(header)


def _values(ds: Dataset | Header) -> frozenset[str]:
    values: set[str] = set()
    equipment = {str(ds.get(k) or "").strip().lower() for k in _KEPT_EQUIPMENT}
    for keyword in _IDENTIFYING:
        value = ds.get(keyword)
        items = value if isinstance(value, list | MultiValue) else [value]
        for text in (str(v).strip() for v in items if v):
            values.add(text)
            if keyword.endswith("Name"):
                for group in (g.strip("^ ") for g in text.split("=")):
                    values |= {group, group.replace("^", " "), group.replace("^", ""), *group.split("^")}
    return frozenset(
        v.strip() for v in values
        if (len(v.strip()) >= 4 or (len(v.strip()) >= 2 and _CJK.search(v)))
        and v.strip().lower() not in _EVERY_EXPORTS_WORDS and v.strip().lower() not in equipment
    )  # fmt: skip


@dataclass(frozen=True)
class _PatientContext:
    pseudonym: str
    shift_days: int
    shift_seconds: int


class Deidentifier:
    """Applies the profile in place; the same key gives the same UIDs, pseudonyms and shifts in every run.

    Works on a :class:`~brainfm.dicom.codec.Header` (the lean path) or a pydicom Dataset (every other file)
    through one walker. Elements are decided by tag and VR from precomputed sets, so only the few values that
    must be rewritten (UIDs, dates, the named text attributes, private creators, sequences) are ever decoded;
    every other kept element, Pixel Data included, is written back byte for byte.
    """

    def __init__(self, pseudonymizer: Pseudonymizer, center: str) -> None:
        self.pseudonymizer = pseudonymizer
        self.center = center  # part of every patient key (see patient_key)
        self._uids: dict[str, str] = {}  # study/series UIDs repeat in every file of a series

    def new_uid(self, uid: str) -> str:
        """The replacement of a non-standard UID (standard ones, e.g. SOP classes, are returned as is)."""
        if uid not in self._uids:
            self._uids[uid] = uid if not uid or UID(uid).keyword else self.pseudonymizer.uid(uid)
        return self._uids[uid]

    def __call__(self, ds: Dataset | Header) -> Dataset | Header:
        """De-identify ``ds`` in place (file meta rebuilt) and return it."""
        key = patient_key(ds, self.center)
        p = self.pseudonymizer
        ctx = _PatientContext(p.patient_id(key), p.date_shift_days(key), p.time_shift_seconds(key))
        transfer_syntax = _transfer_syntax(ds)
        store = ds if isinstance(ds, Header) else _DatasetStore(ds)
        self._clean(store, ctx)
        for keyword, vr, value in (
            ("PatientID", "LO", ctx.pseudonym),
            ("PatientName", "PN", ctx.pseudonym),
            ("SpecificCharacterSet", "CS", "ISO_IR 192"),
            ("PatientIdentityRemoved", "CS", "YES"),
            ("LongitudinalTemporalInformationModified", "CS", "MODIFIED"),
            ("DeidentificationMethod", "LO", METHOD_TEXT),
        ):
            store.put(tag_for_keyword(keyword), vr, value)  # type: ignore[arg-type]
        meta = (
            ("MediaStorageSOPClassUID", ds.get("SOPClassUID")),
            ("MediaStorageSOPInstanceUID", ds.get("SOPInstanceUID")),
            ("TransferSyntaxUID", transfer_syntax),
            ("ImplementationClassUID", PYDICOM_IMPLEMENTATION_UID),
        )
        if isinstance(ds, Header):
            ds.put(_METHOD_CODES_TAG, "SQ", _method_code_items(ds.implicit))
            ds.file_meta = Header()
            ds.file_meta.put(0x00020001, "OB", b"\0\1")
            for keyword, value in meta:
                ds.file_meta.put(tag_for_keyword(keyword), "UI", "" if value is None else str(value))  # type: ignore[arg-type]
            return ds
        implicit, little = ds.original_encoding
        if little:
            items = _method_code_items(implicit)
            ds[_METHOD_CODES_TAG] = RawDataElement(
                _METHOD_CODES_TAG, "SQ", len(items), items, 0, implicit, little
            )
        else:
            ds.DeidentificationMethodCodeSequence = Sequence(
                [_code(v, meaning) for v, meaning in METHOD_CODES]
            )
        ds.file_meta = FileMetaDataset()
        for keyword, value in meta:
            setattr(ds.file_meta, keyword, value)
        ds.preamble = b"\0" * 128  # a preamble may hold a TIFF header or anything else; never copy it
        return ds

    def _clean(self, ds: _Store, ctx: _PatientContext) -> None:
        tags = ds.tags()
        creators = {  # private creator tag → its decoded value
            tag: ds.text(tag).strip() for tag in tags if tag >> 16 & 1 and 0x10 <= tag & 0xFFFF <= 0xFF
        }
        kept_creators: set[int] = set()
        csa: dict[int, Numbers] = {}
        original_times: dict[int, list[str]] = {}  # TM values before their shift: their dates need them
        for tag in tags:
            if tag >> 16 & 1:  # private: odd group
                if tag in creators:
                    continue
                creator = tag & 0xFFFF0000 | (tag & 0xFFFF) >> 8
                key = (creators.get(creator, "").upper(), tag >> 16, tag & 0xFF)
                field = SAFE_PRIVATE.get(key) if tag & 0xFFFF >= 0x1000 else None
                value = decode(ds.stored(tag), field) if field else None
                if key == CSA_IMAGE_HEADER and tag & 0xFFFF >= 0x1000:
                    csa = csa_fields(ds.stored(tag)[1])
                if value is None:
                    ds.delete(tag)
                else:
                    _put_private(ds, tag, field, value)  # type: ignore[arg-type]
                    kept_creators.add(creator)
                continue
            rule, vr = _public_rule(tag, ds.vr(tag))
            if rule is _KEEP:  # the most frequent rule first: this loop runs for every element of every file
                continue
            if rule is _Rule.REMOVE:
                ds.delete(tag)
            elif rule is _Rule.RECURSE:
                items = ds.items(tag)
                if items is None:
                    ds.delete(tag)  # a sequence that could not be parsed cannot be checked: never kept
                for item in items or []:
                    self._clean(item, ctx)
            elif rule is _Rule.TEXT:
                ds.put(tag, vr, self._apply(ds, tag, _TEXT_ACTIONS[tag], ctx))
            elif rule is _Rule.UID:
                ds.put(tag, vr, _mapped(ds.values(tag), self.new_uid))
            elif rule is _Rule.TIME:
                original_times[tag] = ds.values(tag)
                ds.put(tag, vr, _mapped(original_times[tag], lambda v: shift_time(v, ctx.shift_seconds)[0]))
            elif rule is _Rule.DATETIME:
                ds.put(
                    tag,
                    vr,
                    _mapped(ds.values(tag), lambda v: shift_datetime(v, ctx.shift_days, ctx.shift_seconds)),
                )
            elif rule is _Rule.DATE:
                days = ctx.shift_days + _crossed_days(ds, tag, tags, original_times, ctx.shift_seconds)
                ds.put(tag, vr, _mapped(ds.values(tag), functools.partial(shift_date, days=days)))
        for tag, creator in creators.items():
            if tag in kept_creators:
                ds.put(tag, "LO", creator)  # decoded, so written in the new character set
            else:
                ds.delete(tag)
        if csa:
            _put_private_block(ds, CSA_GROUP, CSA_CREATOR, csa)
        if _CHARSET_TAG in tags:  # last: every text of the item was decoded with it; kept text is now UTF-8
            ds.delete(_CHARSET_TAG)

    def _apply(self, ds: _Store, tag: int, action: Action, ctx: _PatientContext) -> str:
        """The new value of a named text attribute (its old value is decoded only when the action reads it)."""
        if action is Action.PSEUDONYM:
            return ctx.pseudonym
        if action is Action.EMPTY:
            return ""
        text = ds.text(tag)
        if action is Action.TOKEN:
            return self.pseudonymizer.accession(text) if text.strip() else ""
        if action is Action.CLEAN:
            return clean_descriptor(text)
        return text


class _Store(Protocol):
    """What the walker needs of a data set; :class:`Header` has it, :class:`_DatasetStore` adapts a Dataset."""

    def tags(self) -> list[int]: ...
    def vr(self, tag: int) -> str | None: ...
    def text(self, tag: int) -> str: ...
    def values(self, tag: int) -> list[str]: ...
    def items(self, tag: int) -> list[Any] | None: ...
    def stored(self, tag: int) -> tuple[str, Any, bool]: ...
    def delete(self, tag: int) -> None: ...
    def put(self, tag: int, vr: str, value: str | list[str]) -> None: ...
    def put_numbers(self, tag: int, vr: str, numbers: list[int] | list[float]) -> None: ...


class _DatasetStore:
    """The walker's view of a pydicom Dataset (files outside the lean codec's scope)."""

    def __init__(self, ds: Dataset) -> None:
        self.ds = ds

    def tags(self) -> list[int]:
        return list(self.ds.keys())

    def vr(self, tag: int) -> str | None:
        return self.ds.get_item(tag).VR

    def text(self, tag: int) -> str:
        return as_text(self.ds[tag].value)

    def values(self, tag: int) -> list[str]:
        value = self.ds.get_item(tag).value
        if isinstance(value, bytes):
            return ascii_values(value)
        if value is None or value == "":
            return []
        return [str(value)] if isinstance(value, str) else [str(v) for v in value]

    def items(self, tag: int) -> list[_DatasetStore]:
        return [_DatasetStore(item) for item in self.ds[tag].value]

    def stored(self, tag: int) -> tuple[str, Any, bool]:
        return stored(self.ds, tag)

    def put_numbers(self, tag: int, vr: str, numbers: list[int] | list[float]) -> None:
        if self.ds.original_encoding[1] is False:  # big endian: pydicom encodes the element
            value = number_texts(vr, numbers) if vr in ("IS", "DS") else numbers
            self.ds[tag] = DataElement(tag, vr, value[0] if len(value) == 1 else value)
        else:
            header = Header()
            header.put_numbers(tag, vr, numbers)
            data = header.raw(tag)
            self.ds[tag] = RawDataElement(BaseTag(tag), vr, len(data), data, 0, *self.ds.original_encoding)

    def delete(self, tag: int) -> None:
        del self.ds[tag]

    def put(self, tag: int, vr: str, value: str | list[str]) -> None:
        """Set an element; a value in the default (ASCII) repertoire is stored already encoded.

        Most values set here are UIDs, dates, pseudonyms and codes, whose encoding is their ASCII bytes padded
        to even length (PS3.5 6.2); storing them encoded skips pydicom's per-element validation and
        re-encoding. Other text goes through a validated DataElement.
        """
        implicit, little = self.ds.original_encoding
        text = "\\".join(value) if isinstance(value, list) else value
        if not little or not text.isascii():
            self.ds[tag] = DataElement(tag, vr, value)
            return
        data = pad_to_even(text.encode("ascii"), vr)
        self.ds[tag] = RawDataElement(BaseTag(tag), vr, len(data), data, 0, implicit, little)


_TEXT_ACTIONS: dict[int, Action] = {tag_for_keyword(k): a for k, a in TEXT_ACTIONS.items()}  # type: ignore[misc]
_REMOVE_TAGS = frozenset(tag_for_keyword(k) for k in REMOVE_NON_TEXT)
_CHARSET_TAG = 0x00080005  # SpecificCharacterSet: removed after its item is cleaned (see Deidentifier._clean)
_KEEP_UID_TAGS = frozenset(tag_for_keyword(k) for k in KEEP_UID_KEYWORDS)
_METHOD_CODES_TAG = BaseTag(tag_for_keyword("DeidentificationMethodCodeSequence"))  # type: ignore[arg-type]


@functools.cache
def _method_code_items(implicit: bool) -> bytes:
    """The DeidentificationMethodCodeSequence items, encoded once (little endian): the same in every file."""
    fp = DicomBytesIO()
    fp.is_little_endian, fp.is_implicit_VR = True, implicit
    for value, meaning in METHOD_CODES:
        write_sequence_item(fp, _code(value, meaning), [default_encoding])
    return fp.getvalue()


class _Rule(enum.Enum):
    """What happens to a public element; a function of its tag and stored VR only."""

    KEEP = enum.auto()
    REMOVE = enum.auto()
    RECURSE = enum.auto()  # a sequence: its items are cleaned by the same rules
    TEXT = enum.auto()  # the profile's action for a named text attribute
    UID = enum.auto()  # replaced by a keyed UID
    DATE = enum.auto()  # DA: shifted by the patient's days (and the day its time crosses)
    TIME = enum.auto()  # TM: shifted by the patient's seconds, modulo a day
    DATETIME = enum.auto()  # DT: shifted by the patient's days and seconds


_KEEP = _Rule.KEEP


@functools.cache
def _public_rule(tag: int, stored_vr: str | None) -> tuple[_Rule, str]:
    """The rule for a public element and the VR it is judged by, decided once per (tag, VR): headers of a
    series (and of a scanner) repeat the same elements, so every file after the first only looks it up."""
    if tag & 0xFFFF == 0 or (tag >> 16) & 0xFF00 in (0x5000, 0x6000) or tag in _REMOVE_TAGS:
        return _Rule.REMOVE, stored_vr or "UN"
    vr = _vr(tag, stored_vr)
    if vr == "SQ":
        return _Rule.RECURSE, vr
    if tag in _TEXT_ACTIONS:
        return _Rule.TEXT, vr
    if vr in TEXT_VRS or vr == "UN":
        return _Rule.REMOVE, vr
    if vr == "UI" and tag not in _KEEP_UID_TAGS:
        return _Rule.UID, vr
    return _TEMPORAL_RULES.get(vr, _KEEP), vr


_TEMPORAL_RULES = {"DA": _Rule.DATE, "TM": _Rule.TIME, "DT": _Rule.DATETIME}


@functools.cache
def _vr(tag: int, stored: str | None) -> str:
    """The VR a public element is judged by: the dictionary's for a known tag (whatever the file claims, so a
    mislabelled text element is still treated as text), else the stored one; "UN" when neither is known."""
    try:
        return dictionary_VR(tag)
    except KeyError:
        return stored or "UN"


def _crossed_days(ds: _Store, tag: int, tags: list[int], times: dict[int, list[str]], seconds: int) -> int:
    """The days a DA's TM partner crosses when shifted by ``seconds`` (0 or 1; 0 without a partner): read from
    its value before the shift (``times``) when the walker has already shifted it."""
    partner = DATE_PARTNERS.get(tag)
    if partner is None or (partner not in times and partner not in tags):
        return 0
    first = next((v for v in times.get(partner) or ds.values(partner) if v), "")
    return shift_time(first, seconds)[1] if first else 0


def _put_private_block(ds: _Store, group: int, creator: str, values: dict[int, Numbers]) -> None:
    """Write ``values`` (element offset → numbers of ``CSA_FIELDS``) as a private block of ``creator`` in the
    first free block of ``group``."""
    tags = set(ds.tags())
    block = next(b for b in range(0x10, 0x100) if (group << 16 | b) not in tags)
    ds.put(group << 16 | block, "LO", creator)
    for offset, numbers in values.items():
        ds.put_numbers(group << 16 | block << 8 | offset, CSA_FIELDS[offset].vr, numbers)


def _put_private(ds: _Store, tag: int, field: PrivateField, value: Numbers | str) -> None:
    if isinstance(value, str):
        ds.put(tag, field.vr, value)
    else:
        ds.put_numbers(tag, field.vr, value)


def _mapped(values: list[str], fn: Callable[[str], str]) -> str | list[str]:
    """``fn`` applied to each non-empty value of a UI, DA or DT element; one value as a string."""
    mapped = [fn(v) if v else v for v in values]
    return mapped[0] if len(mapped) == 1 else mapped if mapped else ""


def _code(value: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue = value
    item.CodingSchemeDesignator = "DCM"
    item.CodeMeaning = meaning
    return item


def _transfer_syntax(ds: Dataset) -> UID:
    """The file's transfer syntax, or the one implied by how a file without file meta was read."""
    uid = ds.file_meta.get("TransferSyntaxUID") if hasattr(ds, "file_meta") else None
    if uid:
        return UID(uid)
    implicit, little = ds.original_encoding
    if implicit:
        return ImplicitVRLittleEndian
    return ExplicitVRLittleEndian if little else ExplicitVRBigEndian
