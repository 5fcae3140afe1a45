"""The raw input layout (docs/DATA_CONTRACT.md, section 1), shared by the cohort generator and real sites."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

# Center ids become Dagster partition keys and folder names of derived data: short, ASCII, no identifiers.
CENTER_ID = re.compile(r"^[a-z][a-z0-9_]{0,31}$")


@dataclass(frozen=True)
class RawLayout:
    root: Path

    @property
    def dicom(self) -> Path:
        return self.root / "dicom"

    @property
    def reports(self) -> Path:
        return self.root / "reports"

    @property
    def tables(self) -> Path:
        return self.root / "tables"

    @property
    def masks(self) -> Path:
        return self.root / "masks"

    @property
    def manifest(self) -> Path:
        return self.root / "manifest.json"

    def centers(self) -> list[str]:
        """Center folders under ``dicom/``, sorted; a folder whose name is not a valid center id is an error."""
        if not self.dicom.is_dir():
            return []
        names = sorted(p.name for p in self.dicom.iterdir() if p.is_dir() and not p.name.startswith("."))
        bad = [n for n in names if not CENTER_ID.match(n)]
        if bad:
            raise ValueError(
                f"{len(bad)} center folder(s) under {self.dicom} are not valid center ids (lower-case ASCII letters, "
                "digits and '_', starting with a letter, at most 32 characters); rename them, e.g. center_a. "
                "They are not named here: a folder name can be a patient's (`ls` the folder to see them)."
            )
        return names

    def planted_identifiers(self) -> list[str]:
        """Every identifier a synthetic cohort planted (its manifest maps kind → values); a site's data lists none."""
        if not self.manifest.is_file():
            return []
        planted = json.loads(self.manifest.read_text(encoding="utf-8")).get("identifiers", {})
        return sorted({value for values in planted.values() for value in values})
