"""Private elements read field by field: the decoding that de-identification keeps values by (``SAFE_PRIVATE``,
``CSA_FIELDS`` in ``deid_profile``) and that the readers look values up with (mosaic slice counts, b-values),
on an original header or a de-identified one alike."""

from __future__ import annotations

import math
import struct
import warnings
from typing import Any

from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

from brainfm.dicom.codec import NUMBER_FORMATS, Header, ascii_values
from brainfm.dicom.deid_profile import CSA_CREATOR, CSA_FIELDS, CSA_GROUP, CSA_IMAGE_HEADER, PrivateField

with warnings.catch_warnings():  # nibabel.nicom warns on import that its DICOM readers are experimental
    warnings.simplefilter("ignore", UserWarning)
    from nibabel.nicom import csareader

Numbers = list[int] | list[float]
_NUMERIC_VRS = frozenset({*NUMBER_FORMATS, "IS", "DS"})
_INTEGER_VRS = frozenset({"IS", "US", "SS", "UL", "SL", "UV", "SV"})
_IS_LIMIT = 2**31 - 1  # PS3.5 Table 6.2-1


def stored(ds: Header | Dataset, tag: int) -> tuple[str, Any, bool]:
    """The stored VR (``UN`` where the file states none), value and little-endianness of an element; the
    value is bytes unless pydicom has already converted it."""
    if isinstance(ds, Header):
        return ds.stored(tag)
    elem = ds.get_item(tag)
    if isinstance(elem, RawDataElement):
        return elem.VR or "UN", elem.value or b"", elem.is_little_endian is not False
    return elem.VR, elem.value, ds.original_encoding[1] is not False


def decode(value: tuple[str, Any, bool], field: PrivateField) -> Numbers | str | None:
    """A private value (:func:`stored`) decoded as ``field`` says: the numbers (or the code) it holds, None
    when it holds anything else. The stored VR decides the decoding where it is a numeric VR or CS; otherwise
    (``UN``, ``OB``, implicit VR) the field's."""
    vr, raw, little = value
    vr = vr if vr in _NUMERIC_VRS or vr == "CS" else field.vr
    items = None if isinstance(raw, bytes) else list(raw) if isinstance(raw, list | MultiValue) else [raw]
    texts = None
    if vr in ("IS", "DS", "CS"):
        texts = ascii_values(raw) if items is None else [str(v).strip() for v in items]
    if field.codes:
        code = texts[0].upper() if vr == "CS" and texts and len(texts) == 1 else None
        return code if code in field.codes else None
    if vr == "CS":
        return None
    try:
        if texts is not None:
            numbers = [float(t) for t in texts]
        elif items is None:
            fmt = NUMBER_FORMATS[vr]
            numbers = list(struct.unpack(f"{'<' if little else '>'}{len(raw) // struct.calcsize(fmt)}{fmt}", raw))
        else:
            numbers = [float(v) for v in items]
    except (ValueError, TypeError, struct.error):
        return None
    return _checked(numbers, field)


def _checked(numbers: list[float], field: PrivateField) -> Numbers | None:
    """``numbers`` if there are as many as ``field`` holds, all finite (and integers within IS range for an
    integer VR), as ints or floats by the field's VR; else None."""
    if not numbers or (field.vm is not None and len(numbers) != field.vm) or not all(map(math.isfinite, numbers)):
        return None
    if field.vr not in _INTEGER_VRS:
        return [float(n) for n in numbers]
    if any(n != int(n) or abs(n) > _IS_LIMIT for n in numbers):
        return None
    return [int(n) for n in numbers]


def csa_fields(blob: Any) -> dict[int, Numbers]:
    """The ``CSA_FIELDS`` of a Siemens CSA image header (read with nibabel's CSA reader), by element offset;
    fields absent, empty or not numbers of the listed count are left out (a damaged header gives nothing)."""
    if not isinstance(blob, bytes):
        return {}
    try:
        tags = csareader.read(blob)["tags"]
    except Exception:  # noqa: BLE001 (nibabel raises several kinds on damaged headers; nothing is kept)
        return {}
    fields = {}
    for offset, field in CSA_FIELDS.items():
        try:
            numbers = _checked([float(v) for v in tags.get(field.name, {}).get("items") or []], field)
        except (TypeError, ValueError):
            continue
        if numbers is not None:
            fields[offset] = numbers
    return fields


def _element(ds: Header | Dataset, group: int, creator: str, offset: int) -> int | None:
    """The tag of ``creator``'s element ``offset`` in ``group``, if the data set holds it."""
    tags = ds.elements if isinstance(ds, Header) else ds
    for block in range(0x10, 0x100):
        tag = group << 16 | block
        if tag in tags and (ds.text(tag) if isinstance(ds, Header) else str(ds[tag].value)).strip().upper() == creator:
            element = group << 16 | block << 8 | offset
            return element if element in tags else None
    return None


def private_value(ds: Header | Dataset, key: tuple[str, int, int], field: PrivateField) -> Numbers | str | None:
    """The value of the private element ``key`` = (creator, group, offset), decoded as ``field``; None when
    absent or not of the field's kind."""
    tag = _element(ds, key[1], key[0], key[2])
    return None if tag is None else decode(stored(ds, tag), field)


def csa_value(ds: Header | Dataset, offset: int) -> Numbers | None:
    """A ``CSA_FIELDS`` value: from the block de-identification writes, else from an original CSA image
    header; None when neither holds it."""
    value = private_value(ds, (CSA_CREATOR, CSA_GROUP, offset), CSA_FIELDS[offset])
    if value is None:
        tag = _element(ds, CSA_IMAGE_HEADER[1], CSA_IMAGE_HEADER[0], CSA_IMAGE_HEADER[2])
        value = csa_fields(stored(ds, tag)[1]).get(offset) if tag is not None else None
    return value if not isinstance(value, str) else None
