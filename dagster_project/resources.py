"""Resource instances for a deployment, configured from environment variables.

| variable | default | meaning |
|---|---|---|
| BRAINFM_ROOT | the checkout | project root (git + DVC repo) |
| BRAINFM_RAW_DIR | raw | raw input folder (identifiers; never tracked) |
| BRAINFM_INBOX_DIR | inbox | studies for batch scoring, one folder each (identifiers; never tracked) |
| BRAINFM_RESULTS_DIR | results | batch-scoring results for the hospital (identifiers; never tracked) |
| BRAINFM_PROFILE | tiny | tiny, small or full |
| BRAINFM_SEED | 0 | global seed |
| BRAINFM_WORKERS | 1 | CPU worker processes per step |
| BRAINFM_DEVICE | auto | torch device (auto, cpu, cuda, cuda:1…) |
| BRAINFM_VERSIONING | 1 | 0 turns off versioning every output with DVC (and pushing it) |
| BRAINFM_DEID_SECRET / _FILE | none | the pseudonymisation secret (never logged) |
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from assets.resources import (
    DeidSecretResource,
    DeviceResource,
    DvcResource,
    LanguageModelResource,
    PathsResource,
    ProfileResource,
)

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def resources_from_env(environ: Mapping[str, str] | None = None) -> dict[str, object]:
    """Build the resource dict from ``environ`` (defaults: ``os.environ``)."""
    env = os.environ if environ is None else environ
    return {
        "paths": PathsResource(
            root=env.get("BRAINFM_ROOT", str(PROJECT_ROOT)),
            raw_dir=env.get("BRAINFM_RAW_DIR", "raw"),
            inbox_dir=env.get("BRAINFM_INBOX_DIR", "inbox"),
            results_dir=env.get("BRAINFM_RESULTS_DIR", "results"),
        ),
        "profile": ProfileResource(
            name=env.get("BRAINFM_PROFILE", "tiny"),
            seed=int(env.get("BRAINFM_SEED", "0")),
            workers=int(env.get("BRAINFM_WORKERS", "1")),
        ),
        "device": DeviceResource(device=env.get("BRAINFM_DEVICE", "auto")),
        "deid_secret": DeidSecretResource(),
        "dvc": DvcResource(enabled=env.get("BRAINFM_VERSIONING", "1") != "0"),
        "site_lm": LanguageModelResource(checkpoint=env.get("BRAINFM_LM_CHECKPOINT", "")),
    }
