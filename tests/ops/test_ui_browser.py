"""The Dagster UI in a real browser: dagster-webserver on a fresh instance holding center_drift materializations
for two of three centers (Markdown summary) and an encoder figure (an image in Markdown), opened in headless
Chromium: the asset graph lists the assets, center_drift shows its status per center, the Markdown and the
image render; the screenshots are PNG files of the window's size."""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import numpy as np
import pytest

from assets.figures import png_metadata
from brainfm.plots import slice_grid
from dagster_project.definitions import defs
from dagster_project.screenshots import PAGES, WINDOW, Shot, find_chromium, take_screenshots, webserver

REQUIRE_ENV = "BRAINFM_REQUIRE_BROWSER"
SUMMARY = "### center_b: **drifted**\n\nRule: drifted if ≥ 30 % of the image and report columns drift.\n\n| column | p-value |\n|---|---|\n| T1_p50 | 0.001 |"


@pytest.fixture(scope="module")
def chromium() -> str:
    found = find_chromium()
    if found is None:
        if os.environ.get(REQUIRE_ENV):
            pytest.fail(f"{REQUIRE_ENV} is set but no Chromium was found: `apt-get install chromium`.")
        pytest.skip(f"no Chromium (set {REQUIRE_ENV}=1 to make this a failure)")
    return found


def _seed(home: Path) -> int:
    """A fresh instance: centers a, b, c registered; center_drift of a and b; an encoder figure. Returns the
    figure's width in pixels."""
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")  # as `make dev` configures it
    figure = slice_grid(
        [np.tile(np.arange(64, dtype=np.uint8) * 4, (64, 1))], ["gradient"], home / "figure.png", columns=1
    )
    with dg.DagsterInstance.from_config(str(home)) as instance:
        instance.add_dynamic_partitions("center", ["center_a", "center_b", "center_c"])
        for center, drifted in (("center_a", False), ("center_b", True)):
            summary = SUMMARY if drifted else f"### {center}: not drifted"
            instance.report_runless_asset_event(
                dg.AssetMaterialization(
                    "center_drift",
                    partition=center,
                    metadata={"drifted": drifted, "summary": dg.MetadataValue.md(summary)},
                )
            )
        instance.report_runless_asset_event(
            dg.AssetMaterialization(
                "mae_encoder",
                metadata={"reconstruction": png_metadata(figure, "Held-out slices: reconstruction")},
            )
        )
    return int(struct.unpack(">I", figure.read_bytes()[16:20])[0])  # PNG IHDR width


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", path
    return struct.unpack(">II", data[16:24])


@pytest.fixture(scope="module")
def shots(chromium: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dict[str, Shot], int]]:
    home = tmp_path_factory.mktemp("dagster_home")
    width = _seed(home)
    out = tmp_path_factory.mktemp("screenshots")
    with webserver(home, env={"BRAINFM_ROOT": str(home)}) as base_url:
        taken = take_screenshots(base_url, out, chromium=chromium)
    yield {s.page.name: s for s in taken}, width


def test_every_page_is_saved_as_a_png_of_the_window(shots: tuple[dict[str, Shot], int]) -> None:
    taken, _ = shots
    assert list(taken) == [p.name for p in PAGES]
    for shot in taken.values():
        assert _png_size(shot.png) == WINDOW and shot.png.stat().st_size > 10_000, shot.page.name


def test_the_asset_graph_lists_the_groups_and_a_groups_assets(shots: tuple[dict[str, Shot], int]) -> None:
    taken, _ = shots
    graph = defs.resolve_asset_graph()
    groups = {graph.get(k).group_name for k in graph.get_all_asset_keys()}
    assert all(g in taken["lineage"].text for g in groups)
    ingest = {k.to_user_string() for k in graph.get_all_asset_keys() if graph.get(k).group_name == "ingest"}
    assert ingest >= {"dicom_manifest", "deidentified_studies", "normalized_slices"}
    assert all(name in taken["ingest_graph"].text for name in ingest)


def test_a_partitioned_asset_shows_its_status_per_center(shots: tuple[dict[str, Shot], int]) -> None:
    text = shots[0]["center_drift_partitions"].text
    assert all(c in text for c in ("center_a", "center_b", "center_c"))
    assert "Materialized (2)" in text and "Missing (1)" in text


def test_markdown_metadata_and_its_image_render(shots: tuple[dict[str, Shot], int]) -> None:
    taken, width = shots
    summary = taken["center_drift_summary"]
    assert "center_b: drifted" in summary.text  # the latest materialization; Markdown rendered, not source
    assert "**" not in summary.text and "T1_p50" in summary.text and "|---|" not in summary.text
    figure = taken["mae_encoder_reconstruction"]
    assert "Held-out slices: reconstruction" in figure.text
    assert figure.image_widths == [width]  # the inlined PNG decoded at its own size
