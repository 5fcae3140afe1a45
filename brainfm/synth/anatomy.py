"""Subject anatomy: MNI152 tissue maps deformed per subject and sampled onto an acquisition grid.

The MNI152 2009 templates ship inside the nilearn wheel (no download). They are block-averaged once to
a 2 mm working grid and cached in memory. A subject is the template under a random affine (head size
and position in the scanner), a smooth elastic displacement and age-related atrophy (ventricular
enlargement, cortical thinning). Every coordinate here is RAS world millimetres.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property, lru_cache

import numpy as np
from scipy import ndimage
from scipy.spatial.transform import Rotation

WORK_MM = 2.0  # working grid spacing of the template (mm)
BRAIN_CENTER_MNI = np.array([0.0, -18.0, 12.0])  # roughly the centre of the cerebrum (MNI mm)
_ELASTIC_TERMS = 4  # random low-frequency cosine terms per displacement component
_ELASTIC_WAVELENGTH_MM = 90.0  # typical wavelength: smooth over lobes, not within a gyrus
_VENTRICLE_CENTER = np.array([0.0, -12.0, 14.0])


def apply_affine(matrix: np.ndarray, offset: np.ndarray, points: np.ndarray) -> np.ndarray:
    """``matrix @ points + offset`` for (3, N) points, element-wise rather than through BLAS, whose
    blocking depends on the thread count and would change the last bits (and so the cohort's bytes)."""
    m = np.asarray(matrix, np.float64)
    return np.stack(
        [m[i, 0] * points[0] + m[i, 1] * points[1] + m[i, 2] * points[2] + offset[i] for i in range(3)]
    )


@dataclass(frozen=True, eq=False)
class Template:
    """MNI152 tissue fractions on the working grid (each map in [0, 1]; they sum to at most 1)."""

    affine: np.ndarray  # voxel index -> MNI RAS mm
    tissues: dict[str, np.ndarray]  # csf, gm, wm, fat, soft (muscle/skin); bone and air are the rest
    brain: np.ndarray  # float fraction of the MNI brain mask
    intracranial: np.ndarray  # bool: brain plus the surrounding subarachnoid space

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.brain.shape

    @property
    def channel_names(self) -> tuple[str, ...]:
        """Names of the channels of ``channels``: the tissues, then "brain" and "intracranial"."""
        return (*self.tissues, "brain", "intracranial")

    @cached_property
    def channels(self) -> np.ndarray:
        """(X, Y, Z, C) float32 stack of ``channel_names``, for sampling all of them in one pass."""
        return np.stack([*self.tissues.values(), self.brain, self.intracranial.astype(np.float32)], axis=-1)

    def world_to_index(self, xyz_mm: np.ndarray) -> np.ndarray:
        """(3, N) MNI mm -> (3, N) fractional voxel indices."""
        inv = np.linalg.inv(self.affine)
        return apply_affine(inv[:3, :3], inv[:3, 3], xyz_mm)

    @cached_property
    def xyz_mm(self) -> np.ndarray:
        """(3, X, Y, Z) MNI mm of every working-grid voxel."""
        idx = np.indices(self.shape, dtype=np.float32).reshape(3, -1)
        xyz = apply_affine(self.affine[:3, :3], self.affine[:3, 3], idx)
        return xyz.reshape((3, *self.shape)).astype(np.float32)

    @cached_property
    def depth_mm(self) -> np.ndarray:
        """Distance (mm) of each intracranial voxel from the skull's inner table (0 outside)."""
        return (ndimage.distance_transform_edt(self.intracranial) * WORK_MM).astype(np.float32)


def _block_mean(volume: np.ndarray, factor: int = 2) -> np.ndarray:
    shape = tuple(s // factor * factor for s in volume.shape)
    v = volume[: shape[0], : shape[1], : shape[2]].astype(np.float32)
    return v.reshape(shape[0] // factor, factor, shape[1] // factor, factor, shape[2] // factor, factor).mean(
        axis=(1, 3, 5)
    )


SELLA_MNI = np.array([0.0, -2.0, -34.0])  # centre of the pituitary fossa (MNI mm)


def _ellipsoid(template_xyz: np.ndarray, center: np.ndarray, radii: np.ndarray) -> np.ndarray:
    rel = (template_xyz - center[:, None, None, None]) / radii[:, None, None, None]
    return np.sum(rel**2, axis=0) <= 1.0


@lru_cache(maxsize=1)
def load_template() -> Template:
    """Load nilearn's MNI152 GM, WM and brain mask (1 mm) and derive 2 mm tissue fractions of a whole head.

    CSF is what the brain mask holds beyond GM and WM, plus a 4 mm subarachnoid shell. The nilearn
    templates are skull-stripped, so skull and scalp are drawn as layers at fixed distances outside the
    intracranial space (bone 0-6 mm with marrow fat, then muscle and skin, then subcutaneous fat), and a
    pituitary gland sits in the sella, so that images look like whole-head clinical MRI.
    """
    from nilearn import datasets  # imported lazily: nilearn's import costs seconds

    images = {
        "gm": datasets.load_mni152_gm_template(resolution=1),
        "wm": datasets.load_mni152_wm_template(resolution=1),
        "mask": datasets.load_mni152_brain_mask(resolution=1),
    }
    affine = images["mask"].affine.copy()
    affine[:3, :3] *= WORK_MM
    affine[:3, 3] += 0.5 * (WORK_MM - 1.0) * np.diag(images["mask"].affine[:3, :3])
    maps = {k: np.clip(_block_mean(np.asarray(im.dataobj)), 0.0, 1.0) for k, im in images.items()}
    brain = maps["mask"]
    gm = maps["gm"] * brain
    wm = maps["wm"] * brain
    total = gm + wm
    over = total > 1.0
    gm[over] /= total[over]
    wm[over] /= total[over]
    template = Template(affine=affine, tissues={}, brain=brain, intracranial=np.zeros(brain.shape, bool))
    xyz = template.xyz_mm
    gland = _ellipsoid(xyz, SELLA_MNI, np.array([6.0, 5.0, 4.0]))
    intracranial = ndimage.binary_dilation(brain > 0.5, iterations=2) | _ellipsoid(
        xyz, SELLA_MNI, np.array([8.0, 7.0, 6.0])
    )
    gm = np.where(gland, 1.0, gm)
    wm = np.where(gland, 0.0, wm)
    csf = np.where(intracranial, 1.0 - gm - wm, 0.0).clip(0.0, 1.0)
    outside_mm = (
        ndimage.distance_transform_edt(~intracranial) * WORK_MM
    )  # distance outside the skull's inner table
    diploe = (outside_mm > 2.0) & (outside_mm <= 4.0)
    fat = np.where(diploe, 0.35, 0.0) + np.where((outside_mm > 8.0) & (outside_mm <= 11.0), 0.9, 0.0)
    soft = np.where((outside_mm > 6.0) & (outside_mm <= 8.0), 0.9, 0.0) + np.where(
        (outside_mm > 11.0) & (outside_mm <= 12.5), 0.8, 0.0
    )
    tissues = {
        "csf": csf.astype(np.float32),
        "gm": gm.astype(np.float32),
        "wm": wm.astype(np.float32),
        "fat": fat.astype(np.float32),
        "soft": soft.astype(np.float32),
    }
    return Template(affine=affine, tissues=tissues, brain=brain.astype(np.float32), intracranial=intracranial)


@dataclass(frozen=True)
class SubjectGeometry:
    """How one subject's head differs from the template and sits in the scanner."""

    scanner_to_mni: np.ndarray  # 4x4 affine, scanner RAS mm -> MNI mm (before the elastic field)
    elastic_waves: np.ndarray  # (3, _ELASTIC_TERMS, 3) wave vectors (rad/mm) per displacement component
    elastic_phase_amp: np.ndarray  # (3, _ELASTIC_TERMS, 2) phase (rad) and amplitude (mm) of each term
    atrophy: float  # 0 (none) .. 1 (severe): ventricular enlargement and cortical thinning


def draw_geometry(rng: np.random.Generator, age_years: float) -> SubjectGeometry:
    """A random head: size ±7 %, tilt (pitch ±8°, roll ±4°, yaw ±5°), position ±8 mm, elastic field σ 2.5 mm.

    The elastic field is a sum of random low-frequency cosines (a cheap smooth random field that can be
    evaluated at any point, unlike a spline on control points that must be interpolated per voxel).
    """
    angles = rng.uniform([-8.0, -4.0, -5.0], [8.0, 4.0, 5.0])  # pitch (x), roll (y), yaw (z) in degrees
    rotation = Rotation.from_euler("xyz", angles, degrees=True).as_matrix()
    scale = np.diag(rng.uniform(0.93, 1.07) * rng.uniform(0.97, 1.03, size=3))
    shift = rng.uniform(-8.0, 8.0, size=3)
    mni_to_scanner = np.eye(4)
    mni_to_scanner[:3, :3] = rotation @ scale
    mni_to_scanner[:3, 3] = shift
    waves = rng.normal(0.0, 2 * np.pi / _ELASTIC_WAVELENGTH_MM, size=(3, _ELASTIC_TERMS, 3))
    phase_amp = np.stack(
        [
            rng.uniform(0, 2 * np.pi, (3, _ELASTIC_TERMS)),
            rng.normal(0, 2.5 / _ELASTIC_TERMS**0.5, (3, _ELASTIC_TERMS)),
        ],
        axis=-1,
    )
    atrophy = float(np.clip((age_years - 45.0) / 45.0, 0.0, 1.0) * rng.uniform(0.5, 1.0))
    return SubjectGeometry(np.linalg.inv(mni_to_scanner), waves, phase_amp, atrophy)


def scanner_to_template_index(
    points_scanner: np.ndarray, geometry: SubjectGeometry, template: Template, extra_warp=None
) -> np.ndarray:
    """(3, N) scanner mm -> (3, N) fractional template indices, through affine, elastic field and atrophy.

    ``extra_warp`` maps (3, N) MNI mm to an additional (3, N) displacement in mm (lesion mass effects).
    A positive displacement samples the template further along, so content appears moved the other way.
    """
    a = geometry.scanner_to_mni
    mni = apply_affine(a[:3, :3], a[:3, 3], points_scanner)
    disp = np.zeros_like(mni)
    for c in range(3):
        for (kx, ky, kz), (phase, amp) in zip(
            geometry.elastic_waves[c], geometry.elastic_phase_amp[c], strict=True
        ):
            disp[c] += np.float32(amp) * np.cos(
                np.float32(kx) * mni[0]
                + np.float32(ky) * mni[1]
                + np.float32(kz) * mni[2]
                + np.float32(phase)
            )
    # Atrophy: sample from nearer the ventricles' centre, so the ventricles appear larger.
    rel = mni - _VENTRICLE_CENTER[:, None]
    weight = np.exp(-np.sum(rel**2, axis=0) / (2 * 22.0**2))
    disp -= 0.3 * geometry.atrophy * rel * weight
    if extra_warp is not None:
        disp += extra_warp(mni)
    return template.world_to_index(mni + disp)


def trilinear(channels: np.ndarray, index: np.ndarray) -> np.ndarray:
    """Sample a channel-last volume (X, Y, Z, C) at (3, N) fractional indices -> (C, N); outside is 0.

    Hand-written because scipy.ndimage.map_coordinates interpolates one channel per call; gathering all
    channels of the 8 corner voxels at once is several times faster for the ~10 tissue channels here.
    """
    shape = np.asarray(channels.shape[:3])
    inside = np.all((index >= 0) & (index <= (shape - 1)[:, None]), axis=0)
    base = np.clip(np.floor(index).astype(np.int64), 0, (shape - 2)[:, None])
    frac = np.clip(index - base, 0.0, 1.0).astype(np.float32)
    flat = channels.reshape(-1, channels.shape[3])
    strides = np.array([shape[1] * shape[2], shape[2], 1])
    offset = strides @ base
    out = np.zeros((index.shape[1], channels.shape[3]), np.float32)
    for dx in (0, 1):
        wx = frac[0] if dx else 1 - frac[0]
        for dy in (0, 1):
            wxy = wx * (frac[1] if dy else 1 - frac[1])
            for dz in (0, 1):
                w = wxy * (frac[2] if dz else 1 - frac[2])
                out += w[:, None] * flat[offset + dx * strides[0] + dy * strides[1] + dz]
    out[~inside] = 0.0
    return out.T
