"""The diffusion weighting (b-value, s/mm²) of each frame, from the standard attribute or a vendor's field.

Looked up in this order: DiffusionBValue (0018,9087) in the frame's MR Diffusion functional group, then at the
top level (Philips, GE and Siemens XA classic images carry it there), then the vendor fields that
de-identification keeps (``SAFE_PRIVATE``): Siemens B_value (0019,xx0C) or the CSA image header's, GE
slop_int_6 (0043,xx39, whose first value is the b-value, plus 10⁹ on some software versions) and Philips
(2001,xx03). None when nothing says: the image is then not diffusion-weighted as far as the header tells.
"""

from __future__ import annotations

from pydicom.dataset import Dataset

from brainfm.dicom.codec import Header
from brainfm.dicom.deid_profile import SAFE_PRIVATE
from brainfm.dicom.private import csa_value, private_value
from brainfm.dicom.reading import functional_value

_GE_OFFSET = 1_000_000_000  # GE adds 10⁹ to the b-value in slop_int_6 on some software versions
_VENDOR_FIELDS = (
    ("SIEMENS MR HEADER", 0x0019, 0x0C),
    ("GEMS_PARM_01", 0x0043, 0x39),
    ("PHILIPS IMAGING DD 001", 0x2001, 0x03),
)
_CSA_B_VALUE = 0x01  # offset in CSA_FIELDS


def b_values(ds: Header | Dataset) -> list[float | None]:
    """The b-value of every frame of ``ds`` (s/mm²), None where the header does not say."""
    n = int(ds.get("NumberOfFrames") or 1)
    shared = _header_b_value(ds)
    return [_number(functional_value(ds, i, "MRDiffusionSequence", "DiffusionBValue"), shared) for i in range(n)]


def _header_b_value(ds: Header | Dataset) -> float | None:
    top = _number(ds.get("DiffusionBValue"), None)
    if top is not None:
        return top
    for key in _VENDOR_FIELDS:
        value = private_value(ds, key, SAFE_PRIVATE[key])
        if isinstance(value, list):
            b = float(value[0])
            return b - _GE_OFFSET if b >= _GE_OFFSET else b
    value = csa_value(ds, _CSA_B_VALUE)
    return float(value[0]) if value else None


def _number(value: object, default: float | None) -> float | None:
    try:
        return default if value is None or value == "" else float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return default
