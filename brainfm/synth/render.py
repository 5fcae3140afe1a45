"""Render one study: tissue fractions on the acquisition grids, sequence images, lesion and brain masks."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from brainfm.synth.anatomy import SubjectGeometry, Template, scanner_to_template_index, trilinear
from brainfm.synth.centers import AcquisitionGrid, BiasField, to_stored
from brainfm.synth.lesions import MASK_LABELS, Lesion
from brainfm.synth.profiles import SEQUENCES, CenterSpec
from brainfm.synth.sequences import TISSUES, protocol, signal_weights

_CORTICAL_THINNING = 0.25  # fraction of GM turned to CSF at atrophy = 1
RENDER_PIXEL_MM = 2.0  # in-plane pixel of the anatomy sampling grid (the template's own resolution)


@dataclass(frozen=True)
class GridFractions:
    """Tissue fractions of every voxel of one grid, after lesions displaced normal tissue."""

    names: tuple[str, ...]  # tissue names (keys of sequences.TISSUES)
    values: np.ndarray  # (T, slices, rows, cols) float32
    lesion: np.ndarray  # (K, slices, rows, cols) fractions of the lesion's components
    brain: np.ndarray  # bool
    intracranial: np.ndarray  # bool


@dataclass(frozen=True)
class RenderedStudy:
    """Stored-value images per sequence (DWI: one volume per b-value) and masks on the main grid."""

    images: dict[
        str, dict[int, np.ndarray]
    ]  # sequence -> b-value (0 if not DWI) -> uint16 (slices, rows, cols)
    lesion_mask: np.ndarray  # uint8 labels on the main grid (see lesions.MASK_LABELS)
    brain_mask: np.ndarray  # bool, template brain mask on the main grid
    intracranial_mask: np.ndarray  # bool, brain plus subarachnoid space on the main grid


def _sample_components(lesion: Lesion, index: np.ndarray) -> np.ndarray:
    """(K, N) lesion component fractions, sampled only inside the components' bounding box (speed)."""
    stack = np.stack(list(lesion.components.values()), axis=-1)
    nonzero = np.argwhere(stack.max(axis=-1) > 0)
    out = np.zeros((stack.shape[-1], index.shape[1]), np.float32)
    if nonzero.size == 0:
        return out
    lo, hi = nonzero.min(axis=0), nonzero.max(axis=0) + 1
    near = np.all((index >= lo[:, None] - 1) & (index <= hi[:, None]), axis=0)
    box = stack[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]]
    out[:, near] = trilinear(np.ascontiguousarray(box), index[:, near] - lo[:, None])
    return out


def tissue_fractions(
    template: Template, geometry: SubjectGeometry, lesion: Lesion, grid: AcquisitionGrid
) -> GridFractions:
    """Sample the subject's anatomy and lesion on ``grid``; lesion components replace normal tissue."""
    index = scanner_to_template_index(grid.points_ras(), geometry, template, lesion.warp)
    sampled = dict(zip(template.channel_names, trilinear(template.channels, index), strict=True))
    brain, intracranial = sampled.pop("brain") >= 0.5, sampled.pop("intracranial") >= 0.5
    thin = _CORTICAL_THINNING * geometry.atrophy * sampled["gm"]
    sampled["gm"] -= thin
    sampled["csf"] += thin
    names = list(sampled)
    values = np.stack(list(sampled.values()))
    comps = np.zeros((0, index.shape[1]), np.float32)
    if lesion.components:
        comps = _sample_components(lesion, index)
        total = comps.sum(axis=0)
        comps /= np.maximum(total, 1.0)
        values *= 1.0 - np.minimum(total, 1.0)
        extra = [n for n in lesion.components if n not in names]
        values = np.concatenate([values, np.zeros((len(extra), values.shape[1]), np.float32)])
        names += extra
        for name, frac in zip(lesion.components, comps, strict=True):
            values[names.index(name)] += frac
    shape = grid.shape
    return GridFractions(
        tuple(names),
        values.reshape(-1, *shape),
        comps.reshape(-1, *shape),
        brain.reshape(shape),
        intracranial.reshape(shape),
    )


def lesion_labels(lesion: Lesion, comps: np.ndarray) -> np.ndarray:
    """uint8 mask: where lesion components hold at least half the voxel, the label of the largest."""
    if comps.shape[0] == 0:
        return np.zeros(comps.shape[1:], np.uint8)
    labels = np.array([MASK_LABELS.get(n, 1) for n in lesion.components], np.uint8)
    return np.where(comps.sum(axis=0) >= 0.5, labels[comps.argmax(axis=0)], 0).astype(np.uint8)


@lru_cache(maxsize=64)
def _resize_taps(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray]:
    """Left neighbour and its weight for linear interpolation between pixel centres over one field of view."""
    x = np.clip((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0, n_in - 1)
    lo = np.minimum(np.floor(x).astype(int), n_in - 2)
    return lo, (1 - (x - lo)).astype(np.float32)


def _to_matrix(volume: np.ndarray, matrix: int) -> np.ndarray:
    """Resize (slices, rows, cols) in-plane to ``matrix`` x ``matrix``, linear, pixel edges aligned.

    Written as element-wise gathers (separable linear interpolation): several times faster than
    scipy.ndimage.zoom on stacks of small slices, and bit-identical whatever the BLAS threading.
    """
    n = volume.shape[1]
    if n == matrix:
        return volume
    lo, w = _resize_taps(n, matrix)
    v = volume.astype(np.float32, copy=False)
    rows = v[:, lo, :] * w[None, :, None] + v[:, lo + 1, :] * (1 - w)[None, :, None]
    return rows[:, :, lo] * w[None, None, :] + rows[:, :, lo + 1] * (1 - w)[None, None, :]


def render_study(
    template: Template,
    geometry: SubjectGeometry,
    lesion: Lesion,
    center: CenterSpec,
    grids: dict[str, AcquisitionGrid],
    rng: np.random.Generator,
) -> RenderedStudy:
    """Images of every sequence with this site's bias field, noise and per-series receiver gain.

    Anatomy is sampled once on a grid of about RENDER_PIXEL_MM pixels (the template holds no finer
    detail) and each noise-free image is resized to its series' matrix; noise is then added per pixel.
    """
    main = grids["main"]
    render = main.with_matrix(
        min(main.shape[1], int(np.ceil(main.shape[1] * main.pixel_mm / RENDER_PIXEL_MM)))
    )
    f = tissue_fractions(template, geometry, lesion, render)
    bias = BiasField.draw(center, render.points_ras().mean(axis=1), rng)
    gain = bias.gain(render.points_ras()).reshape(render.shape)
    images: dict[str, dict[int, np.ndarray]] = {}
    for seq in SEQUENCES:
        matrix = grids["dwi" if seq == "DWI" else "main"].shape[1]
        proto = protocol(seq, center.te_scale, center.ti_flair_ms)
        receiver_gain = rng.uniform(0.85, 1.15)
        images[seq] = {}
        for b in proto.b_values or (0,):
            weights = signal_weights([TISSUES[n] for n in f.names], proto, lesion.contrast, b)
            # Element-wise sum rather than a BLAS product: identical bytes in any process or thread count.
            mixed = sum(w * v for w, v in zip(weights, f.values, strict=True))
            clean = _to_matrix(mixed * gain, matrix)
            images[seq][b] = to_stored(clean, center, rng, receiver_gain)
    comps = (
        np.stack([_to_matrix(c, main.shape[1]) for c in f.lesion])
        if len(f.lesion)
        else f.lesion[:, :, :0, :0]
    )
    brain = _to_matrix(f.brain.astype(np.float32), main.shape[1]) >= 0.5
    intracranial = _to_matrix(f.intracranial.astype(np.float32), main.shape[1]) >= 0.5
    return RenderedStudy(images, lesion_labels(lesion, comps), brain, intracranial)
