"""Scheduled batch scoring: the deployed models on every study a site drops in the inbox, through the same
:class:`~brainfm.predict.run.Predictor` call as ``brainfm predict --batch``.

The inbox (``PathsResource.inbox``) holds one folder per study and, optionally, ``clinical.json``: the prognosis
head's clinical variables per study folder name, the file ``brainfm predict --batch --clinical`` reads. Results
carry the clinical identifiers a PACS needs, so they go to the untracked ``results/batch_predictions/<run id>/
<folder name>/`` (``PathsResource.results``), never into data/ or outputs/, which hold de-identified material
only. A ledger (``results/batch_predictions/ledger.json``) remembers each study
scored, keyed by a keyed hash (HMAC with the de-identification secret) of its folder's name, file names, sizes
and modification times and its clinical variables, with the md5 of the models that scored it: a study is scored
again only when its files, its clinical variables or the models changed. Nothing in the inbox is written or
deleted. Metadata and logs name a study by the first 12 hex digits of that hash, never by its folder name.
"""

# No `from __future__ import annotations` in asset modules: Dagster reads parameter annotations at runtime.

import hashlib
import json
import os
import re
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import dagster as dg
from pydantic import Field

from assets.lineage import lineage
from assets.resources import DeidSecretResource, DeviceResource, PathsResource
from brainfm.jsonl import atomic_text
from brainfm.pseudonym import Pseudonymizer

if TYPE_CHECKING:  # predict (highdicom, matplotlib) loads only when the asset runs
    from brainfm.predict.run import Predictor

# The assets whose folders `Predictor` loads (brainfm.predict.run: ENCODER_DIR, SEGMENTATION_DIR,
# STUDY_ADAPTER_DIRS, REPORT_MODEL_DIR); names, so that this module loads without predict's imports.
MODEL_ASSETS = (
    "mae_encoder", "seg_adapter", "cls_adapter", "grade_adapter", "prognosis_adapter", "instructed_vlm",
)  # fmt: skip
CLINICAL_FILE = "clinical.json"  # in the inbox, beside the study folders
RESULTS_DIR = "batch_predictions"  # under PathsResource.results
LEDGER_FILE = "ledger.json"
SHORT_KEY = 12  # hex digits of the study key shown in metadata and logs
UNEXPECTED = "unexpected"  # a failure's reason starts so when predict raised something else than StudyError
STUDY = "<study>"  # stands for the study folder's path or name in a reason shown in metadata
Status = Literal["scored", "skipped", "waiting", "failed"]
Metadata = dict[str, dg.MetadataValue | int | float | str]


class BatchScoringConfig(dg.Config):
    settle_seconds: float = Field(
        default=120.0,
        description="A study folder is scored only once none of its files changed for this long (seconds): a "
        "transfer in progress waits for the next run.",
    )


@dataclass(frozen=True)
class InboxStudy:
    """A study folder of the inbox, its key (64 hex) and the newest modification time of its files (ns)."""

    folder: Path
    key: str
    newest_ns: int
    clinical: Any  # its clinical.json entry, None without one


@dataclass(frozen=True)
class Outcome:
    """What one run did with a study; ``reason`` never holds the folder's path or name."""

    key: str
    status: Status
    seconds: float | None = None
    reason: str = ""

    @property
    def kind(self) -> str:
        """A failure's kind: its reason up to the first detail (``No readable MR image in <study>``)."""
        return re.split(r": |; |\. | \(", self.reason, maxsplit=1)[0]


def inbox_study(folder: Path, clinical: Any, pseudonymizer: Pseudonymizer) -> InboxStudy:
    """The study's key: HMAC-SHA256 (the de-identification secret) of a SHA-256 of its folder's name, every file's
    relative path, size (bytes) and modification time (ns), and its clinical variables; a file that vanishes while
    it is listed (a transfer renaming it) is left out."""
    lines = [folder.name, json.dumps(clinical, sort_keys=True, ensure_ascii=False)]
    newest = folder.stat().st_mtime_ns
    for dirpath, dirs, files in os.walk(folder):
        dirs.sort()
        for name in sorted(files):
            path = Path(dirpath, name)
            try:
                stat = path.lstat()
            except FileNotFoundError:
                continue
            lines.append(f"{path.relative_to(folder).as_posix()}\t{stat.st_size}\t{stat.st_mtime_ns}")
            newest = max(newest, stat.st_mtime_ns)
    listing = hashlib.sha256("\n".join(lines).encode("utf-8", "surrogateescape")).hexdigest()
    return InboxStudy(folder, pseudonymizer.token("batch_study", listing, 64), newest, clinical)


def models_md5(versions: Mapping[str, Mapping[str, str]]) -> str:
    """One md5 over `Predictor.versions` (model folder → file → md5): what the ledger compares."""
    return hashlib.md5(json.dumps(versions, sort_keys=True).encode()).hexdigest()


def scrub(message: str, folder: Path) -> str:
    """``message`` with the study folder's path and name replaced by ``<study>``: folder names at hospitals are
    often patient names or record numbers."""
    message = message.replace(str(folder), STUDY)
    return re.sub(rf"(?<!\w){re.escape(folder.name)}(?!\w)", STUDY, message)


def read_ledger(path: Path) -> dict[str, dict[str, str]]:
    """Study key → {models_md5, run, scored_utc}; empty before the first study is scored."""
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def write_ledger(path: Path, ledger: Mapping[str, Mapping[str, str]]) -> None:
    """The ledger replacing ``path`` whole (`brainfm.jsonl.atomic_text`), keys sorted."""
    with atomic_text(path) as f:
        f.write(json.dumps(ledger, indent=1, sort_keys=True) + "\n")


def outcomes_markdown(outcomes: list[Outcome]) -> str:
    """One row per study, by key (not by folder name): key, status, seconds, reason."""
    lines = ["| study key | status | seconds | reason |", "|---|---|---|---|"]
    for o in sorted(outcomes, key=lambda o: o.key):
        seconds = "" if o.seconds is None else f"{o.seconds:.1f}"
        lines.append(f"| {o.key} | {o.status} | {seconds} | {o.reason.replace('|', '/')} |")
    return "\n".join(lines)


def outcome_metadata(outcomes: list[Outcome]) -> Metadata:
    """Counts per status, failures by kind, mean seconds per scored study and the per-study table."""
    counts = Counter(o.status for o in outcomes)
    seconds = [o.seconds for o in outcomes if o.status == "scored" and o.seconds is not None]
    meta: Metadata = {
        "studies": len(outcomes),
        "scored": counts["scored"],
        "skipped_already_scored": counts["skipped"],
        "waiting_to_settle": counts["waiting"],
        "failed": counts["failed"],
        "failures_by_kind": dg.MetadataValue.json(
            dict(sorted(Counter(o.kind for o in outcomes if o.status == "failed").items()))
        ),
        "studies_table": dg.MetadataValue.md(outcomes_markdown(outcomes)),
    }
    if seconds:
        meta["seconds_per_study"] = dg.MetadataValue.float(round(sum(seconds) / len(seconds), 3))
    return meta


def _check_inbox(paths: PathsResource) -> None:
    """The inbox must not hold the pipeline's own folders (they would be scored as studies)."""
    folders = (("outputs_dir", paths.outputs), ("data_dir", paths.data), ("raw_dir", paths.raw),
               ("results_dir", paths.results))
    for name, folder in folders:
        if folder.is_relative_to(paths.inbox):
            raise ValueError(
                f"{name} ({folder}) lies inside the inbox {paths.inbox}: set inbox_dir to a folder of its own."
            )


def _score(
    context: dg.AssetExecutionContext, predictor: "Predictor", studies: list[InboxStudy], run_dir: Path
) -> tuple[dict[str, Outcome], Metadata]:
    """Score each study the ledger (beside ``run_dir``) lacks with these models into ``run_dir/<folder name>/``
    through `Predictor.predict`, the call `predict_batch` makes; returns the outcome per study key and the
    metadata of the models, the ledger and the results."""
    from brainfm.predict.run import write_batch_status
    from brainfm.predict.study import StudyError

    md5 = models_md5(predictor.versions)
    ledger_path = run_dir.parent / LEDGER_FILE
    ledger, outcomes, status = read_ledger(ledger_path), {}, {}
    for study in studies:
        short = study.key[:SHORT_KEY]
        if ledger.get(study.key, {}).get("models_md5") == md5:
            earlier = ledger[study.key]["run"]
            outcomes[study.key] = Outcome(
                short, "skipped", reason=f"scored with these models in run {earlier}"
            )
            continue
        start = time.perf_counter()
        try:
            if study.clinical is not None and not isinstance(study.clinical, Mapping):
                raise StudyError(
                    f"{CLINICAL_FILE} maps this study to a {type(study.clinical).__name__}: give a JSON object of "
                    "its clinical variables"
                )
            predictor.predict(study.folder, run_dir / study.folder.name, study.clinical)
        # Any error, not only StudyError: one study must not stop the night's scoring, and an exception's message
        # or traceback may name the folder, which must not reach Dagster's logs.
        except Exception as e:  # noqa: BLE001
            status[study.folder.name] = str(e)
            reason = scrub(str(e), study.folder)
            if not isinstance(e, StudyError):
                reason = f"{UNEXPECTED} {type(e).__name__}: {reason}"
            outcomes[study.key] = Outcome(short, "failed", reason=reason)
            context.log.warning(f"study {short} failed: {reason}")
            continue
        seconds = round(time.perf_counter() - start, 3)
        status[study.folder.name] = "ok"
        ledger[study.key] = {
            "models_md5": md5,
            "run": context.run.run_id,
            "scored_utc": datetime.now(UTC).isoformat(),
        }
        write_ledger(ledger_path, ledger)  # after each study: a killed run keeps what it scored
        outcomes[study.key] = Outcome(short, "scored", seconds)
        context.log.info(f"study {short} scored in {seconds:.1f} s")
    meta: Metadata = {
        "ledger": dg.MetadataValue.path(str(ledger_path)),
        "model_load_seconds": predictor.load_seconds,
        "models_md5": md5,
        "model_versions": dg.MetadataValue.json(predictor.versions),
    }
    if status:
        write_batch_status(run_dir, status)  # as predict_batch writes it: folder → ok / error
        meta["results"] = dg.MetadataValue.path(str(run_dir))
    return outcomes, meta


@dg.asset(
    deps=list(MODEL_ASSETS),
    group_name="inference",
    pool="gpu",
    description="Every study folder of the inbox scored by the deployed models (classification, grade, prognosis, "
    "segmentation as NIfTI, DICOM SEG and SR, overlays, the report when instructed_vlm exists), as `brainfm "
    "predict --batch` does, into results/batch_predictions/<run id>/ (untracked: the results identify the "
    "patient). A study already scored with the same models and unchanged files is skipped; a bad study is "
    "reported with its reason and the others go on.",
)
def batch_predictions(
    context: dg.AssetExecutionContext,
    config: BatchScoringConfig,
    paths: PathsResource,
    device: DeviceResource,
    deid_secret: DeidSecretResource,
) -> dg.MaterializeResult:
    from brainfm.predict.run import BATCH_FILE, Predictor, read_clinical, study_folders

    _check_inbox(paths)
    inbox = paths.inbox
    if not inbox.is_dir():
        context.log.info(
            f"no inbox folder at {inbox}: nothing to score (a site drops one folder per study there)"
        )
    clinical = read_clinical(inbox / CLINICAL_FILE) if (inbox / CLINICAL_FILE).is_file() else {}
    pseudonymizer = deid_secret.pseudonymizer()
    studies = [inbox_study(f, clinical.get(f.name), pseudonymizer) for f in study_folders(inbox)]
    now_ns = time.time_ns()
    settled = [s for s in studies if now_ns - s.newest_ns >= config.settle_seconds * 1e9]
    waiting = f"files changed less than {config.settle_seconds:g} s ago"
    outcomes = {s.key: Outcome(s.key[:SHORT_KEY], "waiting", reason=waiting) for s in studies}
    run_dir = paths.results / RESULTS_DIR / context.run.run_id
    meta: Metadata = {"inbox": dg.MetadataValue.path(str(inbox))}
    if settled:  # the models load only when a study may need them
        scored, run_meta = _score(context, Predictor(paths.data, device.resolve()), settled, run_dir)
        outcomes |= scored
        meta |= run_meta
    meta |= outcome_metadata([outcomes[s.key] for s in studies])
    meta |= lineage(context, MODEL_ASSETS, config.model_dump())
    context.log.info(f"{meta['scored']} of {len(studies)} studies scored, {meta['failed']} failed")
    unexpected = [o.key for o in outcomes.values() if o.reason.startswith(UNEXPECTED)]
    if unexpected:
        raise dg.Failure(
            f"studies {', '.join(unexpected)} hit an unexpected error (the others went on): {BATCH_FILE} in "
            f"{run_dir} names their folders; run `brainfm predict <folder> --out <dir>` on one to see "
            "the traceback, and report it.",
            metadata=meta,
        )
    return dg.MaterializeResult(metadata=meta)
