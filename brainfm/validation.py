"""Run a Great Expectations 1.x expectation suite on a DataFrame, in-process, and summarise the result.

The pipeline's gating checks build a :class:`Gate` from an asset's output: a DataFrame describing it (one row
per file, slice, report…) and the expectations it must meet, validated by :func:`validate_frame`. GX runs
with an ephemeral context: nothing is written to disk and no data docs are built, so checks are fast and
side-effect free. GX treats NaN as null and skips nulls in value expectations (a NaN passes
``ExpectColumnValuesToBeBetween``): a gate whose numbers can be NaN pairs each range with
``ExpectColumnValuesToNotBeNull``.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import pandas as pd


@dataclass(frozen=True)
class ExpectationOutcome:
    """One expectation's verdict, with the few result fields a reviewer needs (never the raw rows)."""

    expectation: str
    column: str | None
    success: bool
    observed: Any = None
    unexpected_count: int | None = None
    unexpected_percent: float | None = None


@dataclass(frozen=True)
class ValidationSummary:
    suite: str
    success: bool
    n_rows: int
    outcomes: list[ExpectationOutcome] = field(default_factory=list)

    @property
    def failed(self) -> list[ExpectationOutcome]:
        return [o for o in self.outcomes if not o.success]

    @property
    def failed_names(self) -> list[str]:
        """``expectation(column)`` of every failed expectation, e.g. ``expect_column_values_to_be_between(max)``."""
        return [o.expectation + (f"({o.column})" if o.column else "") for o in self.failed]

    def as_markdown(self) -> str:
        """A table for Dagster metadata: expectation, column, verdict, observed value, unexpected rows."""
        lines = ["| expectation | column | ok | observed | unexpected |", "|---|---|---|---|---|"]
        for o in self.outcomes:
            unexpected = (
                ""
                if o.unexpected_count is None
                else f"{o.unexpected_count} ({o.unexpected_percent or 0:.1f}%)"
            )
            observed = "" if o.observed is None else str(o.observed)[:60]
            lines.append(
                f"| {o.expectation} | {o.column or ''} | {'✅' if o.success else '❌'} | {observed} | {unexpected} |"
            )
        return "\n".join(lines)


@dataclass(frozen=True)
class Gate:
    """What a gating check validates: a frame describing an output and the GX expectations it must meet
    (instances of ``gx.expectations.*``)."""

    frame: pd.DataFrame
    expectations: list[Any]

    def validate(self, suite_name: str) -> ValidationSummary:
        return validate_frame(self.frame, self.expectations, suite_name)


@lru_cache(maxsize=1)
def _context() -> Any:
    import great_expectations as gx

    # GX logs its own progress bars and info lines at INFO level; checks report through their metadata.
    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    from great_expectations.data_context.types.base import ProgressBarsConfig

    ctx = gx.get_context(mode="ephemeral")
    ctx.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    return ctx


def validate_frame(frame: pd.DataFrame, expectations: Sequence[Any], suite_name: str) -> ValidationSummary:
    """Validate ``frame`` against GX ``expectations`` (instances of ``gx.expectations.*``)."""
    import great_expectations as gx

    ctx = _context()
    source = ctx.data_sources.add_or_update_pandas(name=f"brainfm_{suite_name}")
    asset = next((a for a in source.assets if a.name == suite_name), None) or source.add_dataframe_asset(
        suite_name
    )
    batch_def = next(iter(asset.batch_definitions), None) or asset.add_batch_definition_whole_dataframe(
        "whole"
    )
    batch = batch_def.get_batch(batch_parameters={"dataframe": frame})
    suite = gx.ExpectationSuite(name=suite_name, expectations=[copy.deepcopy(e) for e in expectations])
    result = batch.validate(suite, result_format="SUMMARY")
    outcomes = [
        ExpectationOutcome(
            expectation=r.expectation_config.type,
            column=r.expectation_config.kwargs.get("column"),
            success=bool(r.success),
            observed=r.result.get("observed_value"),
            unexpected_count=r.result.get("unexpected_count"),
            unexpected_percent=r.result.get("unexpected_percent"),
        )
        for r in result.results
    ]
    return ValidationSummary(
        suite=suite_name, success=bool(result.success), n_rows=len(frame), outcomes=outcomes
    )
