"""DICOM reading, PS3.15 de-identification, quarantine, manifest and the leak scan (one center's ingest, which
uses them, is :mod:`brainfm.ingest`)."""

from brainfm.dicom.leaks import Hit, find_identifiers_in_tree
from brainfm.dicom.manifest import series_sequences

__all__ = ["Hit", "find_identifiers_in_tree", "series_sequences"]
