"""Great Expectations suites as blocking Dagster asset checks.

A gating check builds a `Gate` from an asset's output: a DataFrame describing it (one row per file, slice,
report…) and the expectations it must meet. Each asset module keeps that as a plain function of the output
(tested on bad outputs in tests/checks/), which the check calls with the paths of the context. GX runs
in-process (ephemeral context) and the check reports a summary table in its metadata.

Checks are ``blocking=True`` with ERROR severity: when one fails, Dagster skips every downstream asset in
the same run; assets that read every partition in later runs take only the partitions whose checks passed
(`passed_partitions`), so bad data never reaches training.
"""

from collections.abc import Callable, Sequence

import dagster as dg
from dagster import AssetCheckExecutionContext
from dagster._core.event_api import PartitionKeyFilter
from dagster._core.storage.asset_check_execution_record import (
    COMPLETED_ASSET_CHECK_EXECUTION_RECORD_STATUSES,
    AssetCheckExecutionRecordStatus,
)

from brainfm.validation import Gate

GateLoader = Callable[[dg.AssetCheckExecutionContext], Gate]


def gx_asset_check(
    *,
    asset: dg.AssetsDefinition | dg.AssetKey | str,
    name: str,
    description: str,
    gate: GateLoader,
    required_resource_keys: set[str] | None = None,
    partitions_def: dg.PartitionsDefinition | None = None,
) -> dg.AssetChecksDefinition:
    """Build a blocking asset check that validates ``gate(context)``: the frame describing the asset's output
    against its expectations."""
    asset_key = asset.key if isinstance(asset, dg.AssetsDefinition) else dg.AssetKey.from_coercible(asset)

    @dg.asset_check(
        asset=asset,
        name=name,
        description=description,
        blocking=True,
        required_resource_keys=required_resource_keys,
        partitions_def=partitions_def,
    )
    def _check(context: AssetCheckExecutionContext) -> dg.AssetCheckResult:
        summary = gate(context).validate(f"{asset_key.to_python_identifier()}__{name}")
        return dg.AssetCheckResult(
            passed=summary.success,
            severity=dg.AssetCheckSeverity.ERROR,
            description=None if summary.success else f"{len(summary.failed)} expectation(s) failed",
            metadata={
                "rows_validated": summary.n_rows,
                "expectations": len(summary.outcomes),
                "failed": summary.failed_names,
                "results": dg.MetadataValue.md(summary.as_markdown()),
            },
        )

    return _check


def passed_partitions(
    instance: dg.DagsterInstance, checks: Sequence[dg.AssetChecksDefinition], partitions: Sequence[str]
) -> tuple[list[str], dict[str, str]]:
    """Split `partitions` into those whose latest completed evaluation of every check in `checks` passed and
    targeted the partition's latest materialization, and the others with the reason.

    Blocking checks stop downstream assets within a run only; a cross-partition asset that runs later reads
    whatever lies on disk, so it asks the instance which partitions are cleared. A check only planned (its run
    failed upstream, or is still going) does not count: the data on disk is still the one last evaluated,
    unless a newer materialization replaced it. (Dagster has no public per-partition query of check results
    yet; this reads the event log storage's, pinned with dagster.)
    """
    passed, refused = [], {}
    for partition in partitions:
        refusals = (
            f"{key.name} {reason}"
            for check_def in checks
            for key in check_def.check_keys
            if (reason := _refusal(instance, key, partition))
        )
        first = next(refusals, None)
        if first:
            refused[partition] = first
        else:
            passed.append(partition)
    return passed, refused


def _refusal(instance: dg.DagsterInstance, key: dg.AssetCheckKey, partition: str) -> str | None:
    """Why the check `key` does not clear `partition` (None: it does)."""
    done = instance.event_log_storage.get_asset_check_execution_history(
        key, limit=1, status=COMPLETED_ASSET_CHECK_EXECUTION_RECORD_STATUSES,
        partition_filter=PartitionKeyFilter(key=partition),
    )  # fmt: skip
    if not done:
        return "never evaluated"
    if done[0].status != AssetCheckExecutionRecordStatus.SUCCEEDED:
        return "failed"
    target = done[0].evaluation.target_materialization_data if done[0].evaluation else None
    latest = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=key.asset_key, asset_partitions=[partition]), limit=1
    ).records
    if target is None or not latest or latest[0].storage_id != target.storage_id:
        return "not evaluated on the latest materialization"
    return None


def cleared_centers(
    context: dg.AssetExecutionContext, checks: Sequence[dg.AssetChecksDefinition]
) -> tuple[list[str], dict[str, str]]:
    """The centers (partitions of `assets.partitions.CENTERS`) a cross-center asset may read: those whose
    `checks` passed on their latest data (`passed_partitions`). Logs each center left out with its reason;
    raises when none is left."""
    from assets.partitions import CENTERS

    centers = context.instance.get_dynamic_partitions(CENTERS.name)
    passed, refused = passed_partitions(context.instance, checks, centers)
    for center, reason in refused.items():
        context.log.warning(f"center {center} left out: {reason}")
    if not passed:
        raise dg.Failure(
            f"No center has passed its checks ({refused or 'no center registered'}); materialize the centers' "
            "upstream assets with their checks and fix what fails first."
        )
    return passed, refused
