"""Shifting DICOM dates, times and date-times (PS3.15 Annex E with the Modified Dates option, 113107).

Every temporal value of a patient moves by one keyed amount: ``days`` (negative, from
:meth:`~brainfm.pseudonym.Pseudonymizer.date_shift_days`) plus ``seconds`` of time of day (from
:meth:`~brainfm.pseudonym.Pseudonymizer.time_shift_seconds`). A DT is shifted as one instant; a TM moves by
``seconds`` modulo a day and hands the day it crossed (0 or 1) to its DA partner (StudyTime to StudyDate,
AcquisitionTime to AcquisitionDate, …), so a date and its time still name one instant and every interval
between two acquisitions of a patient stays exact. Each value keeps the precision it was written with
(``HH``, ``HHMM``, ``HHMMSS.FFFFFF``; DT from ``YYYY`` on); its fraction of a second is kept as written. A
value that does not parse becomes empty: it cannot be shifted, so it cannot be kept.
"""

from __future__ import annotations

import datetime as dt
import functools
import re

from pydicom.datadict import DicomDictionary, dictionary_VR, tag_for_keyword

from brainfm.pseudonym import SECONDS_PER_DAY

# PS3.5 Table 6.2-1; the colons of the ACR-NEMA form (HH:MM:SS) are accepted on input.
_TM = re.compile(r"(\d\d)(?::?(\d\d)(?::?(\d\d)(\.\d{1,6})?)?)?")
_DT = re.compile(r"(\d{4})(\d\d)?(\d\d)?(\d\d)?(\d\d)?(\d\d)?(\.\d{1,6})?(?:[+-]\d{4})?")
_DT_FORMATS = ("%Y", "%Y%m", "%Y%m%d", "%Y%m%d%H", "%Y%m%d%H%M", "%Y%m%d%H%M%S")


@functools.lru_cache(maxsize=4096)  # the dates of a study repeat in every file
def shift_date(value: str, days: int) -> str:
    """A DA moved by ``days``; empty when it is not a date."""
    try:
        shifted = dt.datetime.strptime(value.strip()[:8], "%Y%m%d").date() + dt.timedelta(days=days)
    except ValueError:
        return ""
    return shifted.strftime("%Y%m%d")


@functools.lru_cache(maxsize=4096)
def shift_time(value: str, seconds: int) -> tuple[str, int]:
    """A TM moved by ``seconds`` modulo a day, and the days it crossed; ``("", 0)`` when it is not a time."""
    match = _TM.fullmatch(value.strip())
    if not match:
        return "", 0
    hh, mm, ss, fraction = match.groups()
    if int(hh) > 23 or int(mm or 0) > 59 or int(ss or 0) > 60:  # 60: a leap second
        return "", 0
    days, moved = divmod(
        int(hh) * 3600 + int(mm or 0) * 60 + min(int(ss or 0), 59) + seconds, SECONDS_PER_DAY
    )
    text = f"{moved // 3600:02d}{moved // 60 % 60:02d}{moved % 60:02d}"
    width = 2 + 2 * (mm is not None) + 2 * (ss is not None)  # the precision it was written with
    return text[:width] + (fraction or ""), days


@functools.lru_cache(maxsize=4096)
def shift_datetime(value: str, days: int, seconds: int) -> str:
    """A DT moved by ``days`` and ``seconds`` as one instant, at its own precision, without its UTC offset (a
    time zone names a place); empty when it is not a date-time."""
    match = _DT.fullmatch(value.strip())
    if not match:
        return ""
    parts = [p for p in match.groups()[:6] if p is not None]
    digits = "".join(parts)
    if len(digits) >= 14 and digits[12:14] == "60":
        digits = digits[:12] + "59"  # a leap second
    fmt = _DT_FORMATS[len(parts) - 1]
    try:
        instant = dt.datetime.strptime(digits, fmt) + dt.timedelta(days=days, seconds=seconds)
    except ValueError:
        return ""
    return instant.strftime(fmt) + (match.group(7) or "")


def _date_partners() -> dict[int, int]:
    """Each DA attribute whose TM partner is named alike (StudyDate → StudyTime): the time decides the day."""
    partners = {}
    for tag, (vr, _vm, _name, _retired, keyword) in DicomDictionary.items():
        if vr == "DA" and keyword.endswith("Date"):
            time_tag = tag_for_keyword(keyword.removesuffix("Date") + "Time")
            if time_tag is not None and dictionary_VR(time_tag) == "TM":
                partners[tag] = time_tag
    return partners


DATE_PARTNERS: dict[int, int] = _date_partners()
