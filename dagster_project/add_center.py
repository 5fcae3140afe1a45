"""``python -m dagster_project.add_center [CENTER …]`` (``make add-center``): register a new site's center
folders under raw/dicom/ as partitions, so a run can be started for them (``dagster asset materialize
--partition center_x …`` or the UI) before the raw-data sensor has seen them. Uses the instance of
``DAGSTER_HOME`` and the folders of ``BRAINFM_ROOT``/``BRAINFM_RAW_DIR``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import dagster as dg

from assets.partitions import CENTERS
from brainfm.raw_layout import RawLayout
from dagster_project.resources import resources_from_env


def add_centers(instance: dg.DagsterInstance, layout: RawLayout, names: Sequence[str] = ()) -> list[str]:
    """Register ``names`` (default: every center folder of ``layout``) not yet known; return those added.
    Raises ValueError naming what to do for a name without a center folder."""
    folders = layout.centers()  # raises for a folder that is no valid center id
    missing = [n for n in names if n not in folders]
    if missing:
        raise ValueError(
            f"No center folder for {', '.join(missing)} under {layout.dicom}: copy the center's files into "
            f"{layout.dicom}/<center id>/ first (lower-case ASCII id, e.g. center_x)."
        )
    known = set(instance.get_dynamic_partitions(CENTERS.name))
    new = [n for n in (names or folders) if n not in known]
    if new:
        instance.add_dynamic_partitions(CENTERS.name, new)
    return new


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dagster_project.add_center", description=__doc__)
    parser.add_argument("centers", nargs="*", help="center ids (default: every folder under raw/dicom/)")
    args = parser.parse_args(argv)
    paths = resources_from_env()["paths"]
    try:
        added = add_centers(dg.DagsterInstance.get(), RawLayout(paths.raw), args.centers)  # type: ignore[attr-defined]
    except ValueError as error:
        print(error, file=sys.stderr)
        return 2
    print(f"registered {', '.join(added)}" if added else "every center is registered already")
    return 0


if __name__ == "__main__":
    sys.exit(main())
