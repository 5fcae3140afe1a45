"""Imaging: series volumes, reorientation to RAS, 256×256 uint8 normalisation, QC and sharded slice storage."""
