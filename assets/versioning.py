"""Dagster metadata for DVC snapshots: what an asset wrote, its content hash, and how to restore it."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from assets.resources import DvcResource, PathsResource


def versioned(output: Path, paths: PathsResource, dvc: DvcResource) -> dict[str, dg.RawMetadataValue]:
    """Snapshot ``output`` with DVC and return materialization metadata naming its hashes."""
    meta: dict[str, dg.RawMetadataValue] = {"output": dg.MetadataValue.path(str(output))}
    snap = dvc.snapshot(paths, output)
    if snap is None:
        meta["dvc"] = "disabled"
        return meta
    meta.update(
        {
            "dvc_md5": snap.output_md5,
            "dvc_data_md5": snap.data_md5,
            "dvc_files": snap.n_files,
            "dvc_bytes": snap.n_bytes,
            "restore": dg.MetadataValue.md(f"`brainfm restore {snap.output_md5} RESTORED_DIR`"),
        }
    )
    return meta
