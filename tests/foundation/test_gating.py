"""A failing blocking GX check stops the downstream asset in the same run; a passing one lets it run."""

from __future__ import annotations

import dagster as dg
import great_expectations as gx
import pandas as pd

from assets.gating import gx_asset_check


def _graph(values: list[int]) -> list[object]:
    @dg.asset
    def slices() -> pd.DataFrame:
        return pd.DataFrame({"intensity": values})

    @dg.asset(deps=[slices])
    def encoder() -> str:
        return "trained"

    check = gx_asset_check(
        asset=slices,
        name="intensity_range",
        description="intensities lie in [0, 255]",
        frame=lambda _ctx: pd.DataFrame({"intensity": values}),
        expectations=lambda: [
            gx.expectations.ExpectColumnValuesToBeBetween(column="intensity", min_value=0, max_value=255)
        ],
    )
    return [slices, encoder, check]


def test_failing_blocking_check_stops_downstream() -> None:
    result = dg.materialize(_graph([0, 12, 300]), raise_on_error=False)
    assert not result.success
    checks = result.get_asset_check_evaluations()
    assert len(checks) == 1 and not checks[0].passed
    assert checks[0].metadata["failed"].value == ["expect_column_values_to_be_between(intensity)"]
    materialized = {m.asset_key for m in result.get_asset_materialization_events()}
    assert dg.AssetKey("slices") in {e.asset_key for e in result.get_asset_materialization_events()}
    assert dg.AssetKey("encoder") not in materialized


def test_passing_check_lets_downstream_run() -> None:
    result = dg.materialize(_graph([0, 12, 255]))
    assert result.success
    assert result.get_asset_check_evaluations()[0].passed
    assert result.output_for_node("encoder") == "trained"
