"""Lineage metadata of a trained artefact: the DVC hashes of the upstream data it saw, the git revision of the
code that trained it, and its config. The weekly retrain schedule compares the same values with the current ones.

A trained asset adds ``**lineage(context, inputs, config, partitions=centers)`` to its materialization metadata;
``brainfm restore <hash> DIR`` brings back any input named there (docs/OPERATIONS.md, "Lineage").
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

# The checkout holding this code (assets/ lies directly under it).
CODE_ROOT = Path(__file__).resolve().parents[1]
# Container images are built without .git: the build sets this to the commit it was built from.
GIT_REVISION_ENV = "BRAINFM_GIT_REVISION"
UNKNOWN = "unknown"
NEVER = "never materialized"
# Metadata keys written by `lineage` (and read by dagster_project.jobs.weekly_retrain_schedule).
DATA_VERSIONS = "data_versions"
CODE_VERSION = "code_version"

# An input's version: its DVC hash, or per partition of a partitioned input.
InputVersion = str | dict[str, str]


@dataclass(frozen=True)
class CodeVersion:
    """The git revision of the code: the commit, whether the work tree differs from it, and if so a hash of
    the difference (tracked changes and the names of untracked files)."""

    commit: str
    dirty: bool | None  # None: unknown (no git checkout, or the commit came from GIT_REVISION_ENV)
    changes_sha256: str | None = None

    @property
    def label(self) -> str:
        """One comparable string: ``<commit>``, ``<commit>+dirty.<12 hex>`` or ``unknown``."""
        return (
            f"{self.commit}+dirty.{self.changes_sha256[:12]}"
            if self.dirty and self.changes_sha256
            else self.commit
        )


def _git(root: Path, *args: str) -> str:
    # --no-optional-locks: `git status` must not take the index lock a concurrent commit needs.
    proc = subprocess.run(
        ["git", "--no-optional-locks", "-C", str(root), *args], capture_output=True, text=True, check=True
    )
    return proc.stdout


def code_version(root: Path = CODE_ROOT) -> CodeVersion:
    """``git rev-parse HEAD`` of ``root`` and whether its tree is dirty; the commit in ``BRAINFM_GIT_REVISION``
    when that is set; ``unknown`` outside a git checkout (or without git)."""
    if os.environ.get(GIT_REVISION_ENV):
        return CodeVersion(os.environ[GIT_REVISION_ENV], None)
    try:
        commit = _git(root, "rev-parse", "HEAD").strip()
        status = _git(root, "status", "--porcelain=v1", "--untracked-files=all")
        diff = _git(root, "diff", "HEAD", "--binary") if status else ""
    except (OSError, subprocess.CalledProcessError):
        return CodeVersion(UNKNOWN, None)
    changes = hashlib.sha256((status + diff).encode()).hexdigest() if status else None
    return CodeVersion(commit, bool(status), changes)


def output_version(record: dg.EventLogRecord) -> str:
    """The output's DVC hash (``dvc_md5``); without versioning (BRAINFM_VERSIONING=0) the event's storage id,
    so that each new materialization counts as new data."""
    materialization = record.asset_materialization
    md5 = materialization.metadata.get("dvc_md5") if materialization else None
    return str(md5.value) if md5 is not None else f"unversioned:event-{record.storage_id}"


def _latest(
    instance: dg.DagsterInstance, key: dg.AssetKey, partition: str | None = None
) -> dg.EventLogRecord | None:
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=key, asset_partitions=[partition] if partition else None), limit=1
    ).records
    return records[0] if records else None


def input_versions(
    instance: dg.DagsterInstance, inputs: Sequence[str | dg.AssetKey], partitions: Sequence[str] | None = None
) -> dict[str, InputVersion]:
    """The DVC hash of each input's latest materialization, by input name. A partitioned input maps each of its
    materialized partitions (only those in ``partitions``, when given) to its latest hash; an input never
    materialized is ``never materialized``."""
    versions: dict[str, InputVersion] = {}
    for name in inputs:
        key = dg.AssetKey.from_coercible(name)
        latest = _latest(instance, key)
        if latest is None or latest.partition_key is None:
            versions[key.to_user_string()] = output_version(latest) if latest else NEVER
            continue
        wanted = set(partitions) if partitions is not None else None
        per_partition = {}
        for partition in sorted(instance.get_materialized_partitions(key)):
            if wanted is None or partition in wanted:
                record = _latest(instance, key, partition)
                assert record is not None  # get_materialized_partitions listed it
                per_partition[partition] = output_version(record)
        versions[key.to_user_string()] = per_partition
    return versions


def lineage(
    context: dg.AssetExecutionContext,
    inputs: Sequence[str | dg.AssetKey],
    config: Mapping[str, object],
    partitions: Sequence[str] | None = None,
) -> dict[str, dg.MetadataValue]:
    """Materialization metadata naming what a trained artefact saw: ``data_versions`` (the DVC hash of each
    input, per partition for partitioned ones, restricted to ``partitions``: the centers it read), the code's
    git commit, whether the tree was dirty, the comparable ``code_version``, and ``config`` as JSON."""
    code = code_version()
    return {
        DATA_VERSIONS: dg.MetadataValue.json(input_versions(context.instance, inputs, partitions)),
        "git_commit": dg.MetadataValue.text(code.commit),
        "git_dirty": dg.MetadataValue.text(UNKNOWN if code.dirty is None else str(code.dirty).lower()),
        CODE_VERSION: dg.MetadataValue.text(code.label),
        "config": dg.MetadataValue.json(json.loads(json.dumps(dict(config), default=str, sort_keys=True))),
    }
