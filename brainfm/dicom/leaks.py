"""Scanning a tree for planted or known identifiers in file names and file bytes (the blocking leak check).

Each identifier is searched case-insensitively in the UTF-8 and GB18030 encodings, and also with spaces
written as the DICOM PN component separator ``^``. Matches lying inside a keyed ``2.25.<decimal>`` UID (the
form every de-identified UID takes) are chance digit runs of a random 128-bit number, not leaks, and are
skipped. The numeric payload of a ``.npy`` file (the slice store's uint8 pixels) and a DICOM file's PixelData
are not scanned, only their headers: pixels hold no encoded text, and a 4-byte identifier (a two-character Chinese name in GB18030) matches
noisy pixel bytes by chance about once per 2**32 / size scanned per variant, which made the check fail on
clean stores of some 50 MB. Report hit counts in metadata, never the values.
"""

from __future__ import annotations

import io
import os
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydicom import dcmread

from brainfm.dicom.codec import PIXEL_DATA, Header, Unsupported, parse

_ENCODINGS = ("utf-8", "gb18030")
_MIN_BYTES = 4  # UTF-8 bytes: shorter strings (a sex code) match random bytes; a 2-character Chinese name has 6
_PREFIX = 3  # bytes: candidate positions are found by their first three bytes (see _Matcher)
_KEYED_UID = re.compile(rb"2\.25\.[0-9]+")
_ALNUM = frozenset(b"abcdefghijklmnopqrstuvwxyz0123456789")  # of lower-cased bytes
MIN_ID_DIGITS = 6  # shorter digit-only IDs equal numbers a de-identified header keeps (TR 2000, matrix 512)


@dataclass(frozen=True)
class Hit:
    """An identifier found under the scanned root: in a file's relative path or in its bytes."""

    path: str
    identifier: str
    where: str  # "name" or "content"


def _variants(identifier: str) -> set[bytes]:
    forms = {identifier, identifier.replace(" ", "^")}
    # Encoded first, then lower-cased as bytes, exactly as file bytes are: str.lower() leaves 華 (GB18030
    # C8 41) as it is, while bytes.lower() turns a trail byte in 0x41-0x5A into 0x61-0x7A.
    return {f.encode(enc).lower() for f in forms for enc in _ENCODINGS}


class _Matcher:
    """Finds every occurrence of many byte strings at once.

    Written here because Python's ``re`` runs an alternation of hundreds of literals at a few MB/s (the
    output of a center is hundreds of MB) and the core takes no Aho-Corasick dependency: numpy marks the
    positions whose first three bytes start some variant (a lookup in a 2**24-entry table), and only those
    few positions are compared in Python.
    """

    def __init__(self, owner: dict[bytes, str]) -> None:
        self.owner = owner
        self.by_prefix: dict[int, list[bytes]] = defaultdict(list)
        for variant in sorted(owner, key=len, reverse=True):
            self.by_prefix[int.from_bytes(variant[:_PREFIX], "big")].append(variant)
        self.table = np.zeros(1 << 24, dtype=bool)
        self.table[list(self.by_prefix)] = True

    def find(self, data: bytes) -> list[tuple[int, int, str]]:
        """(start, end, identifier) of every match in ``data`` (already lower-cased)."""
        if len(data) < _PREFIX:
            return []
        b = np.frombuffer(data, dtype=np.uint8).astype(np.uint32)
        keys = b[:-2] << 16 | b[1:-1] << 8 | b[2:]
        hits = []
        for start in np.flatnonzero(self.table[keys]).tolist():
            for variant in self.by_prefix[int(keys[start])]:
                if data.startswith(variant, start):
                    hits.append((start, start + len(variant), self.owner[variant]))
        if hits:
            uids = [m.span() for m in _KEYED_UID.finditer(data)]
            hits = [h for h in hits if not any(s <= h[0] and h[1] <= e for s, e in uids)]
        return hits


def find_identifiers_in_tree(root: Path, identifiers: Iterable[str]) -> list[Hit]:
    """Every occurrence of an identifier (at least 4 UTF-8 bytes) in names or bytes of files under ``root``."""
    wanted = sorted({i.strip() for i in identifiers if len(i.strip().encode()) >= _MIN_BYTES})
    if not wanted:
        return []
    matcher = _Matcher({v: ident for ident in wanted for v in _variants(ident)})
    hits: set[Hit] = set()
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            path = Path(dirpath, name)
            rel = str(path.relative_to(root))
            hits |= {Hit(rel, ident, "name") for _, _, ident in matcher.find(rel.encode("utf-8").lower())}
            hits |= {Hit(rel, ident, "content") for _, _, ident in matcher.find(_text_bytes(path).lower())}
    return sorted(hits, key=lambda h: (h.path, h.identifier, h.where))


class OwnIdentifierSearch:
    """One patient's original identifying values (`brainfm.dicom.deid.identifying_values`), compiled once to
    search each of that patient's exports for them as whole tokens (`in_file`).

    Every hit withholds a whole center, so chance matches must not count: where an identifier begins or ends
    with an ASCII letter or digit, the byte beside it must be neither (a name part ``LONG`` is not found in the
    method text "Retain Longitudinal…", nor ``ding`` in "Encoding", nor an ID inside a longer number), and
    digit-only values shorter than ``MIN_ID_DIGITS`` are not searched (an ID ``2000`` equals a kept repetition
    time of 2000 ms). The planted-identifier check (:func:`find_identifiers_in_tree`) matches anywhere.
    """

    def __init__(self, identifiers: Iterable[str]) -> None:
        wanted = {
            i.strip() for i in identifiers
            if len(i.strip().encode()) >= _MIN_BYTES and not (i.strip().isdigit() and len(i.strip()) < MIN_ID_DIGITS)
        }  # fmt: skip
        # Built once per patient: the matcher's prefix table costs milliseconds, a search of one file less.
        self._matcher = _Matcher({v: i for i in wanted for v in _variants(i)}) if wanted else None

    def in_file(self, path: Path) -> bool:
        """Whether the text bytes of the file at ``path`` hold any of the values as a whole token."""
        return self._matcher is not None and self.in_text(_text_bytes(path))

    def in_text(self, text: bytes) -> bool:
        """Whether ``text`` (a file's text bytes, e.g. :func:`dicom_text`) holds any of the values."""
        if self._matcher is None:
            return False
        data = text.lower()
        return any(_whole_token(data, start, end) for start, end, _ in self._matcher.find(data))


def _whole_token(data: bytes, start: int, end: int) -> bool:
    """No ASCII letter or digit continues the match data[start:end] (lower-cased) on a side where it has one."""
    before = start > 0 and data[start] in _ALNUM and data[start - 1] in _ALNUM
    after = end < len(data) and data[end - 1] in _ALNUM and data[end] in _ALNUM
    return not (before or after)


def _text_bytes(path: Path) -> bytes:
    """The bytes of a file that may hold text: all of them, except the array payload of a numeric ``.npy``,
    the tensor payload of a ``.safetensors`` file (its JSON header is searched) and the PixelData of a DICOM file
    (compressed pixel bytes are as random as noise; text burned into pixels is handled by quarantining
    BurnedInAnnotation images, not by a byte scan). Model weights are noise to a byte search: a 4-byte GB18030
    name matched the float weights of a 1.8 MB checkpoint by chance."""
    data = path.read_bytes()
    if data[128:132] == b"DICM":
        return _dicom_without_pixels(data)
    if path.suffix == ".safetensors" and len(data) >= 8:
        return data[: 8 + int.from_bytes(data[:8], "little")]  # u64 header length, then the JSON header
    if path.suffix != ".npy":
        return data
    fp = io.BytesIO(data)
    try:
        version = np.lib.format.read_magic(fp)
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        _shape, _fortran, dtype = read_header(fp)
    except ValueError:
        return data  # not a valid .npy: scan it whole
    return data[: fp.tell()] if dtype.kind in "biufc" else data


def _dicom_without_pixels(data: bytes) -> bytes:
    """A DICOM file's text: its preamble and the values of every element but the top-level Pixel Data, one per
    line, read by the lean codec; where the codec declines, the bytes before Pixel Data as pydicom finds them;
    the whole file if neither parses (which can only over-report).

    De-identification removes what could follow Pixel Data (trailing padding), so that is all the text.
    """
    try:
        header = parse(data)
    except Unsupported:
        fp = io.BytesIO(data)
        try:
            dcmread(fp, stop_before_pixels=True)
        except Exception:  # noqa: BLE001 (any parse failure: scan the file whole)
            return data
        return data[: fp.tell()]
    return dicom_text(header, preamble=data[:128])


def dicom_text(header: Header, preamble: bytes = b"") -> bytes:
    """The text of a Part 10 file as the codec holds it: ``preamble``, then the values of its file meta and of
    every element but the top-level Pixel Data, one per line. For a header about to be encoded (zero
    preamble) this is the text of the file :func:`brainfm.dicom.codec.encode` writes, without reading it."""
    meta = _values(header.file_meta) if header.file_meta is not None else ()
    return b"\n".join([preamble, *meta, *_values(header, skip=PIXEL_DATA)])


def _values(header: Header, skip: int | None = None) -> Iterator[bytes]:
    """The value bytes of every element of ``header`` (items of sequences included) but the tag ``skip``."""
    for tag, (_vr, value) in header.elements.items():
        if tag == skip:
            continue
        if isinstance(value, list):
            for item in value:
                yield from _values(item)
        else:
            yield value
