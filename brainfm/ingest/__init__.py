"""Ingesting one center folder in one pass: manifest, de-identification and normalisation (the path the
assets, ``brainfm ingest``, the benchmark and the tests run).

Work is split by input folder (a hospital export keeps a series in one folder) and run in a process pool
(``pool``). Each job reads a file once and, depending on the entry point, de-identifies and writes it and/or
normalises its series (``work``), so :func:`ingest_center` decodes each file once. A series found in more than
one folder is re-normalised afterwards from the de-identified tree, which groups it by new UIDs (``merge``).
Outputs are staged and swapped in whole (:func:`brainfm.imaging.shards.atomic_directory`), so a re-run after a
crash gives the same bytes and never duplicates. NIfTI files (``brainfm.dicom.nifti_input``) go through the
same jobs, one series per file. The entry points are in ``runner``.
"""

from brainfm.ingest.merge import INDEX_SCHEMA, QC_SCHEMA, VOLUMES_SCHEMA, NormalizeSummary
from brainfm.ingest.runner import (
    DeidSummary,
    IngestSummary,
    deidentify_center,
    ingest_center,
    normalize_center,
    scan_center,
)

__all__ = [
    "INDEX_SCHEMA",
    "QC_SCHEMA",
    "VOLUMES_SCHEMA",
    "DeidSummary",
    "IngestSummary",
    "NormalizeSummary",
    "deidentify_center",
    "ingest_center",
    "normalize_center",
    "scan_center",
]
