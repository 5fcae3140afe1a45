"""Named settings profiles of the training configs: ``tiny`` (CI on the CPU), ``small`` (one GPU) and ``full``
(the cluster)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, ClassVar, Self


class Profiled:
    """Mixin of a config dataclass: ``PROFILES`` maps each profile name to the fields it changes from the
    dataclass defaults (``tiny`` changes none)."""

    PROFILES: ClassVar[Mapping[str, Mapping[str, Any]]] = {"tiny": {}}

    @classmethod
    def profile(cls, name: str, **overrides: Any) -> Self:
        """The settings of profile ``name``, with ``overrides``."""
        if name not in cls.PROFILES:
            raise KeyError(f"unknown profile {name!r}; choose one of {sorted(cls.PROFILES)}")
        return cls(**{**cls.PROFILES[name], **overrides})

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[call-overload]  # subclasses are dataclasses
