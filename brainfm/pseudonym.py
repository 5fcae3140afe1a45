"""Keyed, deterministic pseudonyms for identifiers, UIDs and date and time shifts.

One secret key drives every replacement, so the same input maps to the same output across files,
centers and runs with the same key, and nobody without the key can reverse or re-link it
(HMAC-SHA256, RFC 2104). Used by DICOM de-identification, report de-identification and the
pseudonymisation of label tables, so that all three agree on a patient's pseudonym.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
from dataclasses import dataclass

# Maximum shift in days for "Retain Longitudinal Temporal Information with Modified Dates".
MAX_DATE_SHIFT_DAYS = 3650
SECONDS_PER_DAY = 86_400


@dataclass(frozen=True)
class Pseudonymizer:
    """Maps identifiers to keyed pseudonyms. ``key`` must be secret and at least 16 bytes."""

    key: bytes

    def __post_init__(self) -> None:
        if len(self.key) < 16:
            raise ValueError(
                "The pseudonymisation secret must be at least 16 bytes; set BRAINFM_DEID_SECRET "
                "(or BRAINFM_DEID_SECRET_FILE) to a long random value, e.g. `openssl rand -hex 32`."
            )

    def _digest(self, namespace: str, value: str) -> bytes:
        return _hmac(self.key, namespace, value)

    def uid(self, uid: str) -> str:
        """A DICOM UID in the ``2.25.<128-bit integer>`` form (PS3.5 B.2), at most 44 characters."""
        return "2.25." + str(int.from_bytes(self._digest("uid", uid.strip())[:16], "big"))

    def patient_id(self, patient_id: str) -> str:
        """A non-empty pseudonym such as ``PX7Q2M4K9C1ABD3EF``; same patient, same pseudonym."""
        raw = self._digest("patient", patient_id.strip())[:10]
        return "P" + base64.b32encode(raw).decode().rstrip("=")

    def token(self, namespace: str, value: str, length: int = 12) -> str:
        """A short hex pseudonym for other keys (study keys, file names)."""
        return self._digest(namespace, value.strip()).hex()[:length]

    def accession(self, accession_number: str) -> str:
        """The pseudonym of an AccessionNumber: the key that links a report to its de-identified study."""
        return self.token("accession", accession_number, 16)

    def date_shift_days(self, patient_id: str) -> int:
        """A per-patient shift in days, in [-MAX_DATE_SHIFT_DAYS, -1]: intervals within a patient stay exact."""
        raw = int.from_bytes(self._digest("date", patient_id.strip())[:8], "big")
        return -(1 + raw % MAX_DATE_SHIFT_DAYS)

    def time_shift_seconds(self, patient_id: str) -> int:
        """A per-patient shift of the time of day in seconds, in [1, 86399]: added to every time and date-time
        with :meth:`date_shift_days`, so a time of day says nothing of when the patient was scanned while the
        intervals between a patient's acquisitions stay exact."""
        raw = int.from_bytes(self._digest("time", patient_id.strip())[:8], "big")
        return 1 + raw % (SECONDS_PER_DAY - 1)


def center_patient_key(center: str, patient_id: str) -> str:
    """The identity behind a patient's pseudonym and date shift: a local patient ID is unique only within its
    center, so "1" at two centers is two patients. Every caller that pseudonymises a patient (DICOM, NIfTI
    folders, reports, label tables) must use it. IssuerOfPatientID is not part of it: report tables and label
    tables do not carry it, and within one center's export it names the same issuer."""
    return f"{center.strip()}\x1f{patient_id.strip()}"


@functools.lru_cache(maxsize=65_536)  # every file of a series repeats its patient, study and series
def _hmac(key: bytes, namespace: str, value: str) -> bytes:
    # surrogateescape: a file name that is not valid UTF-8 (os.fsdecode's lone surrogates) keys by its bytes
    return hmac.new(key, f"{namespace}\x1f{value}".encode("utf-8", "surrogateescape"), hashlib.sha256).digest()
