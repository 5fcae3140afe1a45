"""Named sizes of the hybrid encoder and its MAE decoder (`tiny` for CI on CPU, `small`/`base`/`large` for GPUs).

Like timm's registry: one name selects a whole architecture, and `register_size` adds new ones. Each hybrid
size also comes as the branch ablations of issue 13: `<size>-vit` (the ViT alone, a plain MAE) and
`<size>-convnext` (the ConvNeXt alone), with the same ViT, ConvNeXt and decoder as `<size>`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Literal, get_args

Branches = Literal["hybrid", "vit", "convnext"]
BRANCHES: tuple[str, ...] = get_args(Branches)


@dataclass(frozen=True)
class HybridSpec:
    """One size of the hybrid encoder (timm ViT + timm ConvNeXt) and of its light MAE decoder.

    ``vit``/``convnext`` are timm model names; the ``*_kwargs`` override their architecture arguments
    (timm merges them into the variant's defaults), which is how the `tiny` size shrinks them. ``branches``
    selects what is built: both (``hybrid``), the ViT alone (``vit``) or the ConvNeXt alone (``convnext``,
    whose tokens keep the ViT's width, so heads and decoder are the same size in every variant).
    """

    vit: str
    convnext: str
    vit_kwargs: dict[str, Any] = field(default_factory=dict)
    convnext_kwargs: dict[str, Any] = field(default_factory=dict)
    decoder_dim: int = 512
    decoder_depth: int = 4
    decoder_heads: int = 8
    projector_dim: int = 128
    branches: Branches = "hybrid"

    def __post_init__(self) -> None:
        if self.branches not in BRANCHES:
            raise ValueError(f"branches must be one of {BRANCHES}, got {self.branches!r}")


_SIZES: dict[str, HybridSpec] = {
    # CI: trains on 2 CPU cores in seconds at the full 256x256 input.
    "tiny": HybridSpec(
        vit="vit_tiny_patch16_224",
        vit_kwargs={"embed_dim": 64, "depth": 2, "num_heads": 2},
        convnext="convnext_tiny",
        convnext_kwargs={"depths": (1, 1, 1, 1), "dims": (16, 32, 64, 128)},
        decoder_dim=64,
        decoder_depth=1,
        decoder_heads=2,
        projector_dim=32,
    ),
    "small": HybridSpec(
        vit="vit_small_patch16_224", convnext="convnext_nano", decoder_dim=256, decoder_depth=2, decoder_heads=4
    ),
    # Comparable to the reference MAE (ViT-B/16 encoder) plus a ConvNeXt-T detail branch.
    "base": HybridSpec(vit="vit_base_patch16_224", convnext="convnext_tiny"),
    "large": HybridSpec(
        vit="vit_large_patch16_224", convnext="convnext_small", decoder_dim=512, decoder_depth=8, decoder_heads=8
    ),
}
_SIZES.update({
    f"{name}-{branch}": replace(spec, branches=branch)
    for name, spec in list(_SIZES.items()) for branch in BRANCHES if branch != "hybrid"
})


def register_size(name: str, spec: HybridSpec) -> None:
    """Add a named size; refuses to overwrite an existing one."""
    if name in _SIZES:
        raise ValueError(f"size {name!r} is already registered; pick another name")
    _SIZES[name] = spec


def get_spec(name: str) -> HybridSpec:
    """The spec of a registered size."""
    try:
        return _SIZES[name]
    except KeyError:
        raise KeyError(f"unknown encoder size {name!r}; choose one of {sorted(_SIZES)}") from None


def list_sizes() -> list[str]:
    """Registered size names."""
    return sorted(_SIZES)
