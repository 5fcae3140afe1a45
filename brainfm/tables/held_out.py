"""The cohort's held-out patients: the test side of the downstream 7:3 split, which no training stage sees.

Every reported metric is computed on these patients, so the self-supervised encoder and the vision–language
model are trained without their images or reports too (docs/DESIGN.md, "One held-out test set"): each stage
splits only the remaining development patients at its own ratio.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from brainfm.tables.schemas import read_tables


def held_out_patients(tables_dir: Path) -> frozenset[str]:
    """Pseudonymous patients on the ``test`` side of the labels table in `tables_dir` (a `clinical_tables`
    output); empty when the site sent no labels, which leaves nothing to evaluate and nothing to hold out."""
    labels = read_tables(tables_dir).get("labels")
    if labels is None:
        return frozenset()
    return frozenset(labels.filter(pl.col("split") == "test")["patient"].to_list())
