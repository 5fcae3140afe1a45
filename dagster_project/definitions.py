"""The brainfm code location: every asset and check in ``assets/``, with resources from the environment."""

from __future__ import annotations

import dagster as dg

import assets
from dagster_project.resources import resources_from_env

defs = dg.Definitions(
    assets=dg.load_assets_from_package_module(assets),
    asset_checks=dg.load_asset_checks_from_package_module(assets),
    resources=resources_from_env(),
)
