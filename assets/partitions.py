"""Partitions: one per center (hospital). A new folder under raw/dicom/ becomes a new partition."""

import dagster as dg

CENTERS = dg.DynamicPartitionsDefinition(name="center")
