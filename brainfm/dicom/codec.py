"""A lean reader and writer for little-endian DICOM files: the fast path of ingestion.

pydicom builds a Dataset of DataElement objects and converts every value it is asked for through its
validation hooks; reading, de-identifying and writing a file that way costs several times the pixel decode
of an MR slice, which would make de-identification, not decoding, the limit of a hospital-scale ingest.
For the files that make up nearly every MR export (a Part 10 file in a little-endian, non-deflated transfer
syntax) this module parses the data elements into a :class:`Header` (tag → VR + value bytes, sequences as
nested headers), decodes only the values that are asked for (with pydicom's character-set decoding), and
writes a header back as bytes, copying every untouched value as read.

Anything else (big endian, deflate, no DICM prefix, a value that runs past the end of the file, an undefined
length outside sequences and encapsulated Pixel Data, an invalid VR) raises :class:`Unsupported`, and the
caller reads the file with pydicom instead, so this path never decides a quarantine reason. ``tests/dicom/
test_codec.py`` checks it against pydicom value for value and file for file.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Iterator
from typing import Any

from pydicom.charset import TEXT_VR_DELIMS, convert_encodings, decode_bytes
from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.uid import UID
from pydicom.valuerep import PersonName, format_number_as_ds

UNDEFINED_LENGTH = 0xFFFFFFFF
_ITEM, _ITEM_END, _SEQUENCE_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
PIXEL_DATA = 0x7FE00010
_CHARSET = 0x00080005
_TAG_LENGTH = struct.Struct("<HHI")
_EXPLICIT = struct.Struct("<HH2sH")
SEQUENCE_DELIMITER = _TAG_LENGTH.pack(0xFFFE, 0xE0DD, 0)
_ITEM_START, _ITEM_DELIMITER = (
    _TAG_LENGTH.pack(0xFFFE, 0xE000, UNDEFINED_LENGTH),
    _TAG_LENGTH.pack(0xFFFE, 0xE00D, 0),
)
_U16, _U32 = struct.Struct("<H"), struct.Struct("<I")
# Explicit VR: these VRs have a 2-byte reserved field and a 4-byte length (PS3.5 Table 7.1-1).
LONG_LENGTH_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV"})
_VRS = {vr.encode(): vr for vr in LONG_LENGTH_VRS | {
    "AE", "AS", "AT", "CS", "DA", "DS", "DT", "FD", "FL", "IS", "LO", "LT", "PN", "SH", "SL", "SS", "ST", "TM", "UI",
    "UL", "US",
}}  # fmt: skip
NUMBER_FORMATS = {"US": "H", "SS": "h", "UL": "I", "SL": "i", "FL": "f", "FD": "d", "UV": "Q", "SV": "q"}
_SINGLE_TEXT_VRS = frozenset({"LT", "ST", "UT", "UR"})  # one value; a backslash is text, not a separator
_STRING_VRS = frozenset({"AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "PN", "SH", "TM", "UC", "UI"})
_DEFAULT_ENCODINGS = ("iso8859",)  # PS3.5 6.1.2.3: the default repertoire when SpecificCharacterSet is absent


class Unsupported(Exception):
    """The file is outside the lean path's scope: read it with pydicom."""


class Fragments(bytes):
    """The stored value of encapsulated Pixel Data (its items, PS3.5 A.4): written with undefined length."""


class Element:
    """A read view of one element (``header[keyword]``, iteration), as lookups of functional groups use it."""

    __slots__ = ("VR", "value")

    def __init__(self, vr: str, value: Any) -> None:
        self.VR, self.value = vr, value


class Header:
    """A parsed data set: elements by tag, read through the same ``get``/``in``/``[]`` calls as a pydicom
    Dataset (values as pydicom returns them); de-identification edits it with :meth:`put` and :meth:`delete`.

    ``elements`` maps a tag to (VR, stored value bytes), or to (``"SQ"``, items) for a parsed sequence: plain
    tuples, since a file has about a hundred elements and most are only copied.
    """

    def __init__(self, parent: Header | None = None) -> None:
        self.elements: dict[int, tuple[str, bytes | list[Header]]] = {}
        self.parent = parent
        self.file_meta: Header | None = None
        self.implicit = False  # the data set's encoding (top level; items are written in their parent's)

    def get(self, keyword: str, default: Any = None) -> Any:
        tag = _tag(keyword)
        return self.value(tag) if tag in self.elements else default

    def __contains__(self, keyword: str) -> bool:
        return _tag(keyword) in self.elements

    def __getitem__(self, keyword: str) -> Element:
        tag = _tag(keyword)
        return Element(self.elements[tag][0], self.value(tag))

    def __iter__(self) -> Iterator[Element]:
        return (Element(self.elements[t][0], self.value(t)) for t in sorted(self.elements))

    def __len__(self) -> int:
        return len(self.elements)

    def value(self, tag: int) -> Any:
        """The value as pydicom gives it: a number or string (a list when multi-valued), items, or bytes."""
        vr, raw = self.elements[tag]
        if not isinstance(raw, bytes):
            return raw
        if vr == "UN":
            vr = _implicit_vr(
                tag
            )  # a known attribute stored as UN is read by its dictionary VR, as pydicom does
        if not raw:
            return "" if (vr in _STRING_VRS or vr in _SINGLE_TEXT_VRS) and vr not in ("DS", "IS") else None
        if vr in NUMBER_FORMATS:
            size = struct.calcsize(NUMBER_FORMATS[vr])
            n = len(raw) // size
            values = struct.unpack(f"<{n}{NUMBER_FORMATS[vr]}", raw[: n * size])
            return None if n == 0 else values[0] if n == 1 else list(values)
        if vr in _SINGLE_TEXT_VRS:
            return self.decode(raw).rstrip("\0 ")
        if vr in _STRING_VRS:
            values = [_string(vr, v) for v in self.decode(raw).rstrip("\0 ").split("\\")]
            return values[0] if len(values) == 1 else values
        return raw

    @functools.cached_property
    def encodings(self) -> list[str]:
        """Python codecs of this item's SpecificCharacterSet, else its parent's (PS3.5 6.1.2.5)."""
        if _CHARSET in self.elements:
            terms = ascii_values(self.raw(_CHARSET))
            return convert_encodings([t.strip() for t in terms] if any(terms) else None)
        return self.parent.encodings if self.parent is not None else list(_DEFAULT_ENCODINGS)

    def decode(self, raw: bytes) -> str:
        """Text bytes → str in this header's character set (ASCII needs no codec look-up)."""
        if raw.isascii() and b"\x1b" not in raw:
            return raw.decode("ascii")
        return decode_bytes(raw, self.encodings, TEXT_VR_DELIMS)

    def raw(self, tag: int) -> bytes:
        """The stored value bytes of a non-sequence element."""
        raw = self.elements[tag][1]
        assert isinstance(raw, bytes)
        return raw

    def put(self, tag: int, vr: str, value: str | list[str] | bytes) -> None:
        """Set an element; text is stored as ASCII where it is ASCII, else UTF-8 (ISO_IR 192), padded to even."""
        if isinstance(value, bytes):
            data = value
        else:
            text = "\\".join(value) if isinstance(value, list) else value
            data = pad_to_even(text.encode("ascii" if text.isascii() else "utf-8"), vr)
        self.elements[tag] = (vr, data)
        if tag == _CHARSET:
            self._forget_encodings()

    def put_numbers(self, tag: int, vr: str, numbers: list[int] | list[float]) -> None:
        """Set a numeric element: binary VRs packed little endian, IS and DS written as text."""
        self.put(tag, vr, number_bytes(vr, numbers))

    def delete(self, tag: int) -> None:
        del self.elements[tag]
        if tag == _CHARSET:
            self._forget_encodings()

    def _forget_encodings(self) -> None:
        """Drop the cached decoding of this item and of the nested items that inherit it (SpecificCharacterSet
        changed); values are decoded again on their next read."""
        self.__dict__.pop("encodings", None)
        for _vr, value in self.elements.values():
            if isinstance(value, list):
                for item in value:
                    if _CHARSET not in item.elements:
                        item._forget_encodings()

    # The de-identification walker's interface (brainfm.dicom.deid._Store).
    def tags(self) -> list[int]:
        return list(self.elements)

    def vr(self, tag: int) -> str:
        return self.elements[tag][0]

    def text(self, tag: int) -> str:
        return as_text(self.value(tag))

    def values(self, tag: int) -> list[str]:
        return ascii_values(self.raw(tag))

    def stored(self, tag: int) -> tuple[str, bytes, bool]:
        """The stored VR (``UN`` for a private element read in implicit VR), value bytes and little-endianness."""
        return self.vr(tag), self.raw(tag), True

    def items(self, tag: int) -> list[Header] | None:
        """The items of a parsed sequence; None for a value kept as bytes (the walker then removes it)."""
        items = self.elements[tag][1]
        return items if isinstance(items, list) else None


def _string(vr: str, text: str) -> Any:
    """One value of a multi-valued string VR, converted and stripped as pydicom does (``pydicom.values``)."""
    if vr == "AE":
        text = text.strip()
    elif vr in ("LO", "SH", "UC"):
        text = text.rstrip("\0 ")
    elif vr == "PN":
        return str(PersonName(text))
    if not text or vr not in ("DS", "IS"):
        return text
    try:
        return float(text) if vr == "DS" else int(text)
    except ValueError:
        return text


def number_texts(vr: str, numbers: list[int] | list[float]) -> list[str]:
    """IS or DS values as PS3.5 writes them (an IS at most 12, a DS at most 16 characters)."""
    return [str(int(n)) if vr == "IS" else format_number_as_ds(float(n)) for n in numbers]


def number_bytes(vr: str, numbers: list[int] | list[float]) -> bytes:
    """The stored value of a numeric element: binary VRs packed little endian, IS and DS as padded text."""
    if vr in NUMBER_FORMATS:
        return struct.pack(f"<{len(numbers)}{NUMBER_FORMATS[vr]}", *numbers)
    return pad_to_even("\\".join(number_texts(vr, numbers)).encode("ascii"), vr)


def pad_to_even(data: bytes, vr: str) -> bytes:
    """A value padded to even length as PS3.5 6.2 asks: a NUL for UI, else a space."""
    return data + (b"\0" if vr == "UI" else b" ") if len(data) % 2 else data


def as_text(value: Any) -> str:
    """A decoded text value as one string (multiple values joined by the DICOM separator ``\\``)."""
    if value is None or isinstance(value, bytes):
        return ""
    if isinstance(value, (str, PersonName)):
        return str(value)
    return "\\".join(str(v) for v in value)


def ascii_values(raw: bytes) -> list[str]:
    """The values of a UI, DA, DT or other default-repertoire element from its stored bytes."""
    text = raw.decode("ascii", "replace").rstrip("\0 ")
    return [v.strip("\0 ") for v in text.split("\\")] if text else []


@functools.cache
def _tag(keyword: str) -> int:
    tag = tag_for_keyword(keyword)
    return -1 if tag is None else tag


@functools.cache
def _implicit_vr(tag: int) -> str:
    """The VR of an element read in implicit VR (from the dictionary, as pydicom does)."""
    if tag & 0xFFFF == 0:
        return "UL"
    if tag >> 16 & 1:
        return "LO" if 0x10 <= tag & 0xFFFF <= 0xFF else "UN"  # private creator, else unknown
    try:
        vr = dictionary_VR(tag)
    except KeyError:
        return "UN"
    return vr.split(" or ")[0] if " or " in vr else vr  # ambiguous VRs only matter for values never decoded


def parse(data: bytes) -> Header:
    """The data set of a Part 10 file in a little-endian, non-deflated transfer syntax, else Unsupported."""
    if len(data) < 132 or data[128:132] != b"DICM":
        raise Unsupported("no DICM prefix")
    meta = Header()
    pos = _elements(data, 132, len(data), False, meta, group=0x0002)
    syntax = meta.get("TransferSyntaxUID")
    try:
        uid = UID(syntax or "")
        little, deflated, implicit = uid.is_little_endian, uid.is_deflated, uid.is_implicit_VR
    except ValueError:
        raise Unsupported("transfer syntax not known") from None
    if not little or deflated:
        raise Unsupported("big endian or deflated")
    header = Header()
    header.file_meta, header.implicit = meta, implicit
    _elements(data, pos, len(data), implicit, header)
    return header


def _elements(
    data: bytes, pos: int, end: int, implicit: bool, header: Header, *, group: int | None = None,
    delimited: bool = False,
) -> int:  # fmt: skip
    """Parse elements from ``pos`` into ``header``; return where parsing stopped.

    Stops at ``end``, after an item delimiter (``delimited``), or before the first element outside ``group``.
    """
    elements = header.elements
    while pos < end:
        if pos + 8 > end:
            raise Unsupported("element header past the end")
        start = pos
        if implicit:
            number_group, number, length = _TAG_LENGTH.unpack_from(data, pos)
            tag = number_group << 16 | number
            vr = _implicit_vr(tag)
            pos += 8
        else:
            number_group, number, vr_bytes, length = _EXPLICIT.unpack_from(data, pos)
            tag = number_group << 16 | number
            vr = _VRS.get(vr_bytes)
            if vr in LONG_LENGTH_VRS:
                length = _U32.unpack_from(data, pos + 8)[0]
                pos += 12
            else:
                pos += 8
        if group is not None and number_group != group:
            return start
        if tag == _ITEM_END:
            if not delimited:
                raise Unsupported("item delimiter outside an item")
            return start + 8
        if vr is None:
            raise Unsupported("invalid VR")
        if length == UNDEFINED_LENGTH:
            if vr == "SQ" or vr == "UN":  # UN of undefined length: a sequence in implicit VR (PS3.5 6.2.2)
                elements[tag], pos = _items(data, pos, None, implicit or vr == "UN", header)
            elif tag == PIXEL_DATA:
                first, pos = pos, _fragments_end(data, pos)
                elements[tag] = (vr, Fragments(data[first : pos - 8]))
            else:
                raise Unsupported("undefined length outside a sequence")
            continue
        if pos + length > end:
            raise Unsupported("value past the end")
        if vr == "SQ" or (vr == "UN" and _implicit_vr(tag) == "SQ"):  # a known sequence as UN: implicit VR
            elements[tag] = _items(data, pos, pos + length, implicit or vr == "UN", header)[0]
        else:
            elements[tag] = (vr, data[pos : pos + length])
        pos += length
    if delimited:
        raise Unsupported("item without its delimiter")
    return pos


def _items(
    data: bytes, pos: int, end: int | None, implicit: bool, parent: Header
) -> tuple[tuple[str, list[Header]], int]:
    """Items of a sequence of defined (``end``) or undefined length, and the position after it."""
    items: list[Header] = []
    limit = len(data) if end is None else end
    while pos + 8 <= limit:
        group, number, length = _TAG_LENGTH.unpack_from(data, pos)
        tag = group << 16 | number
        pos += 8
        if tag == _SEQUENCE_END and end is None:
            return ("SQ", items), pos
        if tag != _ITEM:
            raise Unsupported("not an item")
        item = Header(parent)
        if length == UNDEFINED_LENGTH:
            pos = _elements(data, pos, len(data), implicit, item, delimited=True)
        elif pos + length > limit:
            raise Unsupported("item past the end")
        else:
            _elements(data, pos, pos + length, implicit, item)
            pos += length
        items.append(item)
    if end is None or pos != end:
        raise Unsupported("sequence without its end")
    return ("SQ", items), pos


def _fragments_end(data: bytes, pos: int) -> int:
    """The position after the sequence delimiter that ends encapsulated Pixel Data (PS3.5 A.4)."""
    while pos + 8 <= len(data):
        group, number, length = _TAG_LENGTH.unpack_from(data, pos)
        pos += 8
        if group << 16 | number == _SEQUENCE_END:
            return pos
        if group << 16 | number != _ITEM or length == UNDEFINED_LENGTH:
            raise Unsupported("not a pixel data item")
        pos += length
    raise Unsupported("pixel data without its delimiter")


def encode(header: Header) -> bytes:
    """A Part 10 file: zero preamble, ``header.file_meta`` (explicit VR LE, with its group length), then the
    data set in its own encoding."""
    assert header.file_meta is not None
    meta: list[bytes] = []
    _encode(header.file_meta, False, meta)
    body = b"".join(meta)
    out = [b"\0" * 128, b"DICM", element_header(0x00020000, "UL", 4, False), _U32.pack(len(body)), body]
    _encode(header, header.implicit, out)
    return b"".join(out)


def _encode(header: Header, implicit: bool, out: list[bytes]) -> None:
    for tag in sorted(header.elements):
        if tag & 0xFFFF == 0:
            continue  # group lengths: the file meta's is written by encode, others are retired (PS3.5 7.2)
        vr, value = header.elements[tag]
        if isinstance(value, list):
            # Undefined lengths: in implicit VR a reader recognises an unknown (private) sequence only by them.
            out.append(element_header(tag, "SQ", UNDEFINED_LENGTH, implicit))
            for item in value:
                out.append(_ITEM_START)
                _encode(item, implicit, out)
                out.append(_ITEM_DELIMITER)
            out.append(SEQUENCE_DELIMITER)
        elif isinstance(value, Fragments):
            out += [element_header(tag, vr, UNDEFINED_LENGTH, implicit), value, SEQUENCE_DELIMITER]
        else:
            if not implicit and vr not in LONG_LENGTH_VRS and len(value) > 0xFFFF:
                vr = "UN"  # a value too long for a 2-byte length (PS3.5 6.2.2 note)
            out += [element_header(tag, vr, len(value), implicit), value]


def element_header(tag: int, vr: str, length: int, implicit: bool) -> bytes:
    """A data element's tag, VR (explicit) and value length, little endian (PS3.5 7.1)."""
    if implicit:
        return _TAG_LENGTH.pack(tag >> 16, tag & 0xFFFF, length)
    if vr in LONG_LENGTH_VRS:
        return struct.pack("<HH2sHI", tag >> 16, tag & 0xFFFF, vr.encode(), 0, length)
    return _EXPLICIT.pack(tag >> 16, tag & 0xFFFF, vr.encode(), length)
