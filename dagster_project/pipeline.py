"""Materialize the whole asset graph in order: the unpartitioned head, every center, then the rest, then the
per-center assets that compare a center with the others (tagged `assets.drift.READS_OTHER_CENTERS`).

Used by ``make demo`` and the end-to-end test. Centers found under the raw folder are registered as
dynamic partitions first (the same step the new-data sensor performs in a deployment).
"""

from __future__ import annotations

from collections.abc import Callable

import dagster as dg

from assets.drift import READS_OTHER_CENTERS
from assets.partitions import CENTERS
from assets.resources import PathsResource
from brainfm.raw_layout import RawLayout
from dagster_project.sensors import center_partitions

# Step events at INFO, not DEBUG: progress stays readable; the full event log is in the Dagster instance.
_QUIET = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}


def register_centers(instance: dg.DagsterInstance, paths: PathsResource) -> list[str]:
    """Add every center folder of the raw layout as a partition; return the full sorted list."""
    centers, new = center_partitions(instance, RawLayout(paths.raw))
    if new:
        instance.add_dynamic_partitions(CENTERS.name, new)
    return centers


def materialize_all(
    defs: dg.Definitions, instance: dg.DagsterInstance, log: Callable[[str], None] = print
) -> list[dg.ExecuteInProcessResult]:
    """Run every asset and check of ``defs``; stop at the first failed run and return all results."""
    graph = defs.resolve_asset_graph()
    keys = set(graph.get_all_asset_keys())
    partitioned = {k for k in keys if graph.get(k).partitions_def is not None}
    after = dg.AssetSelection.assets(*partitioned).downstream().resolve(graph) if partitioned else set()
    late = {k for k in partitioned if graph.get(k).tags.get(READS_OTHER_CENTERS)}  # e.g. center_drift
    partitioned -= late
    head, tail = keys - partitioned - late - after, after - partitioned - late
    nodes = [*defs.assets, *defs.asset_checks]  # type: ignore[list-item]
    resources = dict(defs.resources or {})

    def run(selection: set[dg.AssetKey], partition: str | None = None) -> dg.ExecuteInProcessResult:
        log(f"materializing {len(selection)} asset(s)" + (f" for center {partition}" if partition else ""))
        return dg.materialize(
            nodes,
            selection=dg.AssetSelection.assets(*selection),
            instance=instance,
            resources=resources,
            partition_key=partition,
            raise_on_error=False,
            run_config=_QUIET,
        )

    results = [run(head)] if head else []
    if partitioned and all(r.success for r in results):
        for center in register_centers(instance, resources["paths"]):  # type: ignore[arg-type]
            results.append(run(partitioned, center))
            if not results[-1].success:
                break
    if tail and all(r.success for r in results):
        results.append(run(tail))
    if late and all(r.success for r in results):
        for center in register_centers(instance, resources["paths"]):  # type: ignore[arg-type]
            results.append(run(late, center))
    return results
