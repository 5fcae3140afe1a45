"""JSON-lines files: one JSON object per line, UTF-8, non-ASCII text written as is."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO


def read_jsonl(path: Path | str) -> list[dict[str, Any]]:
    """All non-empty lines of a JSONL file."""
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def write_jsonl(path: Path | str, records: Iterable[Mapping[str, Any]]) -> None:
    """Write ``records`` one per line (keys sorted, so the same records give the same bytes)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.writelines(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in records)


@contextmanager
def atomic_text(path: Path | str) -> Iterator[TextIO]:
    """A UTF-8 text file that replaces ``path`` only when the block succeeds (a temp file beside it, then
    ``os.replace``): an interrupted write leaves the previous file, never a partial one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            yield f
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
