"""Lesion sizes in millimetres from measurements written as 3.2×2.5cm, 25mm, 2.1cm×1.8cm×1.5cm, 0.3-0.5cm.

A unit written once applies to every number before it in the same measurement (3.2×2.5cm). Numbers
without a unit (T2WI, b=1000) are never sizes, and measurements that follow a non-lesion context in their
clause (slice thickness, midline shift, tonsillar descent, distances, oedema) are skipped, as is a width
(宽约2cm) in a clause about oedema (周围见宽约2cm的水肿带).
"""

from __future__ import annotations

import re

_NUM = r"\d+(?:\.\d+)?"
_UNIT = r"mm|cm|毫米|厘米"
_MEASUREMENT = re.compile(
    rf"(?P<a>{_NUM})\s*(?P<ua>{_UNIT})?"
    rf"(?:\s*[×xX*~～\-—至到]\s*(?P<b>{_NUM})\s*(?P<ub>{_UNIT})?)?"
    rf"(?:\s*[×xX*]\s*(?P<c>{_NUM})\s*(?P<uc>{_UNIT})?)?(?![²³\d])",
    re.IGNORECASE,
)
_NOT_A_LESION = re.compile(r"层厚|层间距|间隔|移位|偏移|右移|左移|疝|距离|距|低于|超过|高约|高度|水肿")
_WIDTH = re.compile(r"宽度?约?\s*$")  # right before the measurement
_MM_PER_UNIT = {"mm": 1.0, "毫米": 1.0, "cm": 10.0, "厘米": 10.0}


def _not_a_lesion(clause: str, start: int) -> bool:
    """Whether the measurement at ``start`` follows a non-lesion context or is a width in an oedema clause."""
    oedema_width = "水肿" in clause and _WIDTH.search(clause, 0, start)
    return bool(_NOT_A_LESION.search(clause, 0, start) or oedema_width)


def sizes_mm(clause: str) -> list[float]:
    """Every lesion dimension in ``clause``, in mm (rounded to 0.1 mm)."""
    out: list[float] = []
    for m in _MEASUREMENT.finditer(clause):
        if _not_a_lesion(clause, m.start()):
            continue
        unit = None
        for num, unit_group in (("c", "uc"), ("b", "ub"), ("a", "ua")):  # right to left: a unit carries leftwards
            unit = m.group(unit_group) or unit
            if m.group(num) and unit:
                out.append(round(float(m.group(num)) * _MM_PER_UNIT[unit.lower()], 1))
    return out
