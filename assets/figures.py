"""Figures as Dagster metadata: a PNG embedded in markdown, so the UI shows the image itself."""

from __future__ import annotations

import base64
from pathlib import Path

import dagster as dg


def png_metadata(path: Path, title: str) -> dg.MetadataValue:
    """Markdown with the PNG inlined as a data URI (the Dagster UI renders it in the asset's metadata)."""
    data = base64.b64encode(Path(path).read_bytes()).decode()
    return dg.MetadataValue.md(f"**{title}**\n\n![{title}](data:image/png;base64,{data})")
