"""A failing blocking GX check stops the downstream asset in the same run, and keeps its partition out of later
cross-partition runs; a passing one lets them run."""

from __future__ import annotations

import dagster as dg
import great_expectations as gx
import pandas as pd

from assets.gating import gx_asset_check, passed_partitions
from brainfm.validation import Gate


def _intensity_gate(values: list[int]) -> Gate:
    frame = pd.DataFrame({"intensity": values})
    return Gate(
        frame, [gx.expectations.ExpectColumnValuesToBeBetween(column="intensity", min_value=0, max_value=255)]
    )


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
        gate=lambda _ctx: _intensity_gate(values),
    )
    return [slices, encoder, check]


def test_failing_blocking_check_stops_downstream() -> None:
    result = dg.materialize(_graph([0, 12, 300]), raise_on_error=False)
    assert not result.success
    checks = result.get_asset_check_evaluations()
    assert len(checks) == 1 and not checks[0].passed
    assert checks[0].metadata["failed"].value == ["expect_column_values_to_be_between(intensity)"]
    materialized = {m.asset_key for m in result.get_asset_materialization_events()}
    assert dg.AssetKey("slices") in materialized
    assert dg.AssetKey("encoder") not in materialized


def test_passing_check_lets_downstream_run() -> None:
    result = dg.materialize(_graph([0, 12, 255]))
    assert result.success
    assert result.get_asset_check_evaluations()[0].passed
    assert result.output_for_node("encoder") == "trained"


def test_later_runs_read_only_partitions_whose_checks_passed() -> None:
    """A failed check on one center keeps that center out of a cross-center asset run afterwards."""
    centers = dg.StaticPartitionsDefinition(["good", "bad", "never_checked"])
    values = {"good": [0, 255], "bad": [0, 300], "never_checked": [1]}
    broken: set[str] = set()  # partitions whose next materialization fails before writing

    @dg.asset(partitions_def=centers)
    def slices(context) -> None:
        if context.partition_key in broken:
            raise RuntimeError("the scanner export is unreadable")
        context.log.info(f"wrote {context.partition_key}")

    check = gx_asset_check(
        asset=slices,
        name="intensity_range",
        description="intensities lie in [0, 255]",
        gate=lambda ctx: _intensity_gate(values[ctx.partition_key]),
        partitions_def=centers,
    )

    @dg.asset(deps=[slices])
    def encoder(context) -> list[str]:
        return passed_partitions(context.instance, [check], centers.get_partition_keys())[0]

    with dg.instance_for_test() as instance:
        for center in ("good", "bad"):
            dg.materialize([slices, check], partition_key=center, instance=instance, raise_on_error=False)
        dg.materialize([slices], partition_key="never_checked", instance=instance, selection=[slices])
        result = dg.materialize([slices, check, encoder], instance=instance, selection=[encoder])
        assert result.output_for_node("encoder") == ["good"]
        _, refused = passed_partitions(instance, [check], centers.get_partition_keys())
        assert refused == {
            "bad": "intensity_range failed",
            "never_checked": "intensity_range never evaluated",
        }
        # A later run that fails before writing (its check only planned) leaves the last checked data cleared.
        broken.add("good")
        dg.materialize([slices, check], partition_key="good", instance=instance, raise_on_error=False)
        assert passed_partitions(instance, [check], ["good"]) == (["good"], {})
        broken.clear()
        # Re-materialized without its check: the old pass no longer vouches for the new data.
        dg.materialize([slices], partition_key="good", instance=instance, selection=[slices])
        assert passed_partitions(instance, [check], ["good"]) == (
            [],
            {"good": "intensity_range not evaluated on the latest materialization"},
        )
