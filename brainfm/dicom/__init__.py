"""DICOM ingestion: reading, PS3.15 de-identification, quarantine, manifest and per-center processing.

Entry points for the asset layer: :func:`scan_center`, :func:`deidentify_center`, :func:`normalize_center`,
:func:`ingest_center`, :func:`find_identifiers_in_tree`, :func:`series_sequences` (the manifest's labels for
``normalize_center``); slices are read back with
:func:`brainfm.imaging.shards.open_slices`.
"""

from brainfm.dicom.center import (
    DeidSummary,
    IngestSummary,
    NormalizeSummary,
    deidentify_center,
    ingest_center,
    normalize_center,
    scan_center,
)
from brainfm.dicom.leaks import Hit, find_identifiers_in_tree
from brainfm.dicom.manifest import series_sequences

__all__ = [
    "DeidSummary",
    "Hit",
    "IngestSummary",
    "NormalizeSummary",
    "deidentify_center",
    "find_identifiers_in_tree",
    "ingest_center",
    "normalize_center",
    "scan_center",
    "series_sequences",
]
