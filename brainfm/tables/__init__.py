"""Clinical tables: the cohort's label, clinical, outcome, reader-study and trial tables pseudonymised with
the DICOM key (so they join images and reports), their schemas and checks, and the downstream 7:3 split."""

from brainfm.tables.checks import (
    DIRECT_IDENTIFIER_COLUMNS,
    identifier_hits,
    index_join,
    layout_report,
    original_identifiers,
    split_report,
)
from brainfm.tables.held_out import held_out_patients
from brainfm.tables.pseudonymise import TablesSummary, mask_paths, patient_strata, pseudonymise_tables
from brainfm.tables.schemas import (
    ORACLE_DIR,
    ORACLE_MARKER,
    SPLIT_NAMES,
    TABLE_SCHEMAS,
    Column,
    read_oracle,
    read_tables,
    schema_report,
    study_table,
)

__all__ = [
    "DIRECT_IDENTIFIER_COLUMNS",
    "ORACLE_DIR",
    "ORACLE_MARKER",
    "SPLIT_NAMES",
    "TABLE_SCHEMAS",
    "Column",
    "TablesSummary",
    "held_out_patients",
    "identifier_hits",
    "index_join",
    "layout_report",
    "mask_paths",
    "original_identifiers",
    "patient_strata",
    "pseudonymise_tables",
    "read_oracle",
    "read_tables",
    "schema_report",
    "split_report",
    "study_table",
]
