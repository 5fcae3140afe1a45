"""The raw layout refuses folders that are not valid center ids, without repeating their names."""

from __future__ import annotations

from pathlib import Path

import pytest

from brainfm.raw_layout import RawLayout


def test_invalid_center_folders_are_counted_not_named(tmp_path: Path) -> None:
    for name in ("center_a", "张三", "2nd"):
        (tmp_path / "dicom" / name).mkdir(parents=True)
    with pytest.raises(ValueError, match=r"2 center folder\(s\)") as err:
        RawLayout(tmp_path).centers()
    assert "张三" not in str(err.value) and "2nd" not in str(err.value)
