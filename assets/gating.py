"""Great Expectations suites as blocking Dagster asset checks.

A gating check describes an asset's output as a DataFrame (one row per file, slice, report…) and names the
expectations it must meet. It runs GX in-process (ephemeral context) and reports a summary table in the
check's metadata. Checks are ``blocking=True`` with ERROR severity: when one fails, Dagster skips every
downstream asset in the same run, so bad data never reaches training.
"""

from collections.abc import Callable, Sequence
from typing import Any

import dagster as dg
import pandas as pd
from dagster import AssetCheckExecutionContext

from brainfm.validation import validate_frame

FrameLoader = Callable[[dg.AssetCheckExecutionContext], pd.DataFrame]


def gx_asset_check(
    *,
    asset: dg.AssetsDefinition | dg.AssetKey | str,
    name: str,
    description: str,
    frame: FrameLoader,
    expectations: Callable[[], Sequence[Any]],
    required_resource_keys: set[str] | None = None,
    partitions_def: dg.PartitionsDefinition | None = None,
) -> dg.AssetChecksDefinition:
    """Build a blocking asset check that validates ``frame(context)`` against ``expectations()``.

    ``expectations`` is a factory so each run builds fresh GX expectation objects (GX attaches ids to them).
    """
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
        data = frame(context)
        summary = validate_frame(
            data, expectations(), suite_name=f"{asset_key.to_python_identifier()}__{name}"
        )
        return dg.AssetCheckResult(
            passed=summary.success,
            severity=dg.AssetCheckSeverity.ERROR,
            description=None if summary.success else f"{len(summary.failed)} expectation(s) failed",
            metadata={
                "rows_validated": summary.n_rows,
                "expectations": len(summary.outcomes),
                "failed": [o.expectation + (f"({o.column})" if o.column else "") for o in summary.failed],
                "results": dg.MetadataValue.md(summary.as_markdown()),
            },
        )

    return _check
