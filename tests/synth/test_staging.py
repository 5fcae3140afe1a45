"""The generator writes into a staging folder and renames it into place: an interrupted run leaves no
partial cohort where the pipeline would take it for a site's own data."""

from __future__ import annotations

from pathlib import Path

import pytest

from brainfm.raw_layout import RawLayout
from brainfm.synth import cohort, generate_cohort

N = 5  # the smallest cohort a profile allows


def _interrupt(*_args: object) -> dict[str, str]:
    raise KeyboardInterrupt  # Ctrl-C after DICOM, masks, reports and tables were written


def test_an_interrupted_run_leaves_nothing_at_the_target_and_the_next_run_cleans_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out, staging = tmp_path / "raw", tmp_path / "raw.partial"
    with monkeypatch.context() as patch:
        patch.setattr(cohort, "plant_bad_files", _interrupt)
        with pytest.raises(KeyboardInterrupt):
            generate_cohort(out, "tiny", 0, n_patients=N)
    assert not out.exists()
    assert RawLayout(out).centers() == []  # raw_cohort would generate again, not use "the site's own data"
    assert any((staging / "dicom").rglob("*.dcm")) and (staging / "reports").is_dir()

    out.mkdir()  # an empty target folder is replaced
    summary = generate_cohort(out, "tiny", 0, n_patients=N)
    assert summary.out_dir == out and summary.n_patients == N
    assert RawLayout(out).manifest.is_file() and len(RawLayout(out).centers()) > 1
    assert not staging.exists()


def test_a_staging_folder_with_foreign_files_is_refused(tmp_path: Path) -> None:
    staging = tmp_path / "raw.partial"
    (staging / "dicom").mkdir(parents=True)
    (staging / "notes.txt").write_text("not the generator's")
    with pytest.raises(FileExistsError, match="did not write"):
        generate_cohort(tmp_path / "raw", "tiny", 0, n_patients=N)
    assert (staging / "notes.txt").is_file()
