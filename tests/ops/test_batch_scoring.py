"""Batch scoring as a Dagster asset: a real materialisation of `batch_predictions` with the project's resources on
an inbox holding one synthetic study and one folder without images, scored by the random-weight models of
tests/predict/conftest.py. The valid study's outputs are written, the bad one is reported with its reason, a
second run skips the study already scored, studies still being copied wait, nothing in the inbox changes, and
no folder name reaches metadata, the ledger or the logs. The nightly schedule runs the scoring job alone; the
retrain never scores."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import dagster as dg
import pytest

from assets.resources import DeidSecretResource, DeviceResource, PathsResource
from assets.scoring import (
    LEDGER_FILE,
    MODEL_ASSETS,
    RESULTS_DIR,
    STUDY,
    Outcome,
    batch_predictions,
    inbox_study,
    scrub,
)
from brainfm.predict import run
from brainfm.predict.study import StudyError
from brainfm.pseudonym import Pseudonymizer
from dagster_project.definitions import defs
from dagster_project.sensors import nightly_batch_scoring_schedule
from tests.predict import conftest as predict_fixtures
from tests.predict.conftest import write_study

# Folder names as hospitals often write them: a patient's name and record number.
VALID, BAD = "ZHANG_SAN_MRN0012345", "LI_SI_MRN0067890"
IDENTIFIERS = (VALID, BAD, "ZHANG_SAN", "LI_SI", "MRN00")
AN_HOUR_AGO = 3600.0
# The session fixture of tests/predict: MODELS_DIR as the assets lay it out, tiny random-weight models.
models_dir = predict_fixtures.models_dir


def _backdate(folder: Path, seconds: float = AN_HOUR_AGO) -> None:
    """Set every file's and folder's modification time ``seconds`` in the past (a transfer long finished)."""
    past = time.time() - seconds
    for path in [folder, *folder.rglob("*")]:
        os.utime(path, (past, past))


def _inbox_state(inbox: Path) -> list[tuple[str, int, int]]:
    return sorted(
        (p.relative_to(inbox).as_posix(), p.stat().st_size, p.stat().st_mtime_ns) for p in inbox.rglob("*")
    )


def _materialize(root: Path, models: Path, instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    """batch_predictions with the real resources: the project at ``root``, MODELS_DIR (paths.data) at ``models``."""
    resources = {
        "paths": PathsResource(root=str(root), data_dir=str(models)),
        "device": DeviceResource(device="cpu"),
        "deid_secret": DeidSecretResource(),
    }
    return dg.materialize([batch_predictions], instance=instance, resources=resources, raise_on_error=False)


def _metadata(result: dg.ExecuteInProcessResult) -> dict[str, object]:
    (event,) = result.get_asset_materialization_events()
    return {k: v.value for k, v in event.materialization.metadata.items()}


def _assert_no_identifier(
    instance: dg.DagsterInstance, result: dg.ExecuteInProcessResult, *texts: str
) -> None:
    """No folder name in ``texts`` nor in any event (messages, metadata, failures) of the run."""
    events = [repr(e) for e in instance.all_logs(result.run_id)]
    for text in [*texts, *events]:
        assert not any(name in text for name in IDENTIFIERS), text[:300]


@pytest.fixture()
def site(tmp_path: Path) -> tuple[Path, Path]:
    """A project root with an inbox: VALID (one synthetic study, T1 and FLAIR) and BAD (no image), just copied."""
    root, inbox = tmp_path / "project", tmp_path / "project" / "inbox"
    study = write_study(tmp_path / "export", index=1)
    shutil.copytree(study.folder, inbox / VALID)
    (inbox / BAD).mkdir()
    (inbox / BAD / "request.txt").write_text("MRI brain please")
    return root, inbox


def test_scores_each_study_once_and_reports_the_bad_one(site: tuple[Path, Path], models_dir: Path) -> None:
    root, inbox = site
    instance = dg.DagsterInstance.ephemeral()

    # Files written seconds ago: a transfer may be going on.
    waiting = _materialize(root, models_dir, instance)
    assert waiting.success
    meta = _metadata(waiting)
    assert (meta["studies"], meta["waiting_to_settle"], meta["scored"]) == (2, 2, 0)
    assert "models_md5" not in meta and not (root / "results").exists()  # no model loaded, nothing written

    for folder in inbox.iterdir():
        _backdate(folder)
    before = _inbox_state(inbox)
    first = _materialize(root, models_dir, instance)
    assert first.success
    meta = _metadata(first)
    assert (meta["studies"], meta["scored"], meta["failed"], meta["skipped_already_scored"]) == (2, 1, 1, 0)
    assert meta["failures_by_kind"] == {f"No readable MR image in {STUDY}": 1}
    assert meta["seconds_per_study"] > 0
    predictor_versions = meta["model_versions"]
    loaded = {run.ENCODER_DIR, run.SEGMENTATION_DIR, *run.STUDY_ADAPTER_DIRS.values()}  # no report model
    assert set(predictor_versions) == loaded

    results = root / "results" / RESULTS_DIR
    out = results / first.run_id
    assert meta["results"] == str(out)
    for name in (run.PREDICTIONS_FILE, run.OUTPUT_FILES["dicom_seg"], run.OUTPUT_FILES["nifti"]):
        assert (out / VALID / name).is_file(), name
    predictions = json.loads((out / VALID / run.PREDICTIONS_FILE).read_text(encoding="utf-8"))
    assert predictions["models"]["md5"] == predictor_versions
    # batch.json as `brainfm predict --batch` writes it: folder name → ok or the error.
    status = json.loads((out / run.BATCH_FILE).read_text(encoding="utf-8"))
    assert status[VALID] == "ok" and status[BAD].startswith(f"No readable MR image in {inbox / BAD}")
    assert not (out / BAD).exists()

    ledger = json.loads((results / LEDGER_FILE).read_text(encoding="utf-8"))
    ((key, entry),) = ledger.items()
    assert len(key) == 64 and entry["models_md5"] == meta["models_md5"] and entry["run"] == first.run_id
    table = meta["studies_table"]
    assert f"| {key[:12]} | scored |" in table and f"No readable MR image in {STUDY}" in table

    second = _materialize(root, models_dir, instance)
    assert second.success
    again = _metadata(second)
    # The bad folder is tried again: the site may have fixed it.
    assert (again["scored"], again["skipped_already_scored"], again["failed"]) == (0, 1, 1)
    assert (
        f"| {key[:12]} | skipped |  | scored with these models in run {first.run_id} |"
        in again["studies_table"]
    )
    assert json.loads((results / LEDGER_FILE).read_text(encoding="utf-8")) == ledger
    assert not (results / second.run_id / VALID).exists()

    assert _inbox_state(inbox) == before  # nothing in the inbox was written, moved or deleted
    for result in (waiting, first, second):
        _assert_no_identifier(instance, result, json.dumps(_metadata(result), default=str))
    _assert_no_identifier(instance, first, (results / LEDGER_FILE).read_text(encoding="utf-8"))


def test_an_empty_inbox_is_a_successful_run_of_no_study(tmp_path: Path) -> None:
    """No inbox folder at all (and no models: none is loaded): success, 0 studies."""
    result = _materialize(tmp_path, tmp_path / "no_models", dg.DagsterInstance.ephemeral())
    assert result.success
    meta = _metadata(result)
    assert (meta["studies"], meta["scored"], meta["failed"]) == (0, 0, 0)
    assert meta["studies_table"].count("\n") == 1  # the header only


def test_an_unexpected_error_fails_the_run_without_naming_the_folder(
    site: tuple[Path, Path],
    models_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An error other than StudyError (a library bug, a full disk) on one study: the others go on, the run
    fails with the pseudonymous key, and the traceback's folder name stays out of Dagster's events."""
    root, inbox = site
    for folder in inbox.iterdir():
        _backdate(folder)

    def crash(self: run.Predictor, study_dir: Path, out_dir: Path, clinical: object = None) -> dict:
        if study_dir.name == VALID:
            raise OSError(f"No space left on device: {out_dir}")
        raise StudyError(f"No readable MR image in {study_dir}")

    monkeypatch.setattr(run.Predictor, "predict", crash)
    instance = dg.DagsterInstance.ephemeral()
    result = _materialize(root, models_dir, instance)
    assert not result.success
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    assert "hit an unexpected error" in failure.step_failure_data.error.message
    meta = {k: v.value for k, v in failure.step_failure_data.user_failure_data.metadata.items()}
    assert meta["failures_by_kind"] == {"unexpected OSError": 1, f"No readable MR image in {STUDY}": 1}
    assert not (root / "results" / RESULTS_DIR / LEDGER_FILE).exists()
    _assert_no_identifier(instance, result)


def test_the_key_changes_with_the_files_and_clinical_variables_only(tmp_path: Path) -> None:
    """The ledger key is keyed (another secret, another key) and changes when a file's size or time changes or
    the clinical variables do, not when nothing does."""
    folder = tmp_path / VALID
    (folder / "series").mkdir(parents=True)
    (folder / "series" / "IM1").write_bytes(b"x" * 10)
    _backdate(folder)
    site, other = Pseudonymizer(b"s" * 32), Pseudonymizer(b"o" * 32)
    key = inbox_study(folder, None, site).key
    assert inbox_study(folder, None, site).key == key and inbox_study(folder, None, other).key != key
    assert inbox_study(folder, {"age_years": 61}, site).key != key
    assert VALID not in key and len(key) == 64
    (folder / "series" / "IM1").write_bytes(b"x" * 11)
    assert inbox_study(folder, None, site).key != key


def test_reasons_name_no_folder() -> None:
    folder = Path("/srv/inbox") / VALID
    reason = scrub(f"No readable MR image in {folder}: 1 file(s) quarantined; {VALID} again", folder)
    assert reason == f"No readable MR image in {STUDY}: 1 file(s) quarantined; {STUDY} again"
    assert Outcome("k", "failed", reason=reason).kind == f"No readable MR image in {STUDY}"


def test_the_model_assets_are_those_predict_loads() -> None:
    loaded = [run.ENCODER_DIR, run.SEGMENTATION_DIR, *run.STUDY_ADAPTER_DIRS.values(), run.REPORT_MODEL_DIR]
    assert set(MODEL_ASSETS) == {folder.split("/")[0] for folder in loaded}
    assert set(defs.resolve_asset_graph().get(batch_predictions.key).parent_keys) == {
        dg.AssetKey(a) for a in MODEL_ASSETS
    }


def test_the_nightly_schedule_runs_only_batch_scoring_and_the_retrain_never_scores() -> None:
    scoring, retrain = defs.resolve_job_def("batch_scoring"), defs.resolve_job_def("retrain")
    assert scoring.asset_layer.selected_asset_keys == {batch_predictions.key}
    assert batch_predictions.key not in retrain.asset_layer.selected_asset_keys
    assert dg.AssetKey("mae_encoder") in retrain.asset_layer.selected_asset_keys
    schedule = defs.resolve_schedule_def("nightly_batch_scoring")
    assert schedule.job_name == "batch_scoring" and schedule.cron_schedule == "0 1 * * *"
    assert schedule.default_status == dg.DefaultScheduleStatus.STOPPED

    with dg.instance_for_test() as instance:  # schedule contexts need a persistent instance
        tick = nightly_batch_scoring_schedule.evaluate_tick(dg.build_schedule_context(instance=instance))
        assert len(tick.run_requests or []) == 1 and tick.skip_message is None
        instance.add_run(dg.DagsterRun(job_name="batch_scoring", status=dg.DagsterRunStatus.STARTED))
        tick = nightly_batch_scoring_schedule.evaluate_tick(dg.build_schedule_context(instance=instance))
        assert not tick.run_requests and "in progress" in (tick.skip_message or "")
