"""Drift monitoring per center: features from the ingest's outputs (``features``) and the Evidently comparison
with the reference centers, with the center's verdict (``compare``). docs/DESIGN.md, "Drift monitoring"."""

from brainfm.drift.compare import CenterDrift, ColumnDrift, DriftRule, compare_center
from brainfm.drift.features import COLUMNS, FeatureColumns, center_features

__all__ = [
    "COLUMNS",
    "CenterDrift",
    "ColumnDrift",
    "DriftRule",
    "FeatureColumns",
    "center_features",
    "compare_center",
]
