"""Named run profiles. Each subsystem maps a profile name to its own typed settings.

``tiny``: CI and tests, minutes on 2 CPU cores. ``small``: a laptop demo. ``full``: a GPU cluster at the
design's scale (63k patients, 11M slices).
"""

from __future__ import annotations

from typing import Literal, get_args

ProfileName = Literal["tiny", "small", "full"]
PROFILES: tuple[str, ...] = get_args(ProfileName)


def check_profile(name: str) -> ProfileName:
    """Return ``name`` if it is a known profile, else raise with the valid choices."""
    if name not in PROFILES:
        raise ValueError(f"Unknown profile {name!r}; choose one of {', '.join(PROFILES)} (BRAINFM_PROFILE).")
    return name  # type: ignore[return-value]
