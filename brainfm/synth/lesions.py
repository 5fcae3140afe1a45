"""Lesion models: each disease subtype as tissue-component fraction maps on the template grid.

A lesion is built in template (MNI) space at an anatomically plausible site and then travels with the
subject's deformation, so its mask lands where the anatomy is. Components are named tissues with their
own relaxation and diffusion properties (see ``sequences.TISSUES``); where a component is present it
replaces the normal tissue. Masks use three labels: 1 lesion (solid, enhancing, blood, gliosis...),
2 perilesional oedema, 3 necrosis or pus (cavity).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from brainfm.synth.anatomy import BRAIN_CENTER_MNI, SELLA_MNI, WORK_MM, Template, apply_affine

MASK_LABELS: dict[str, int] = {"edema": 2, "necrosis": 3, "pus": 3}  # every other component: 1

# Anatomical sites: code -> (Chinese name used in reports, MNI centre of the LEFT-sided site in mm).
# Lateralised sites are mirrored (x -> -x) for the right side; x == 0 marks a midline site.
SITES: dict[str, tuple[str, tuple[float, float, float]]] = {
    "frontal_lobe": ("额叶", (-30.0, 32.0, 28.0)),
    "parietal_lobe": ("顶叶", (-34.0, -50.0, 44.0)),
    "temporal_lobe": ("颞叶", (-46.0, -16.0, -10.0)),
    "occipital_lobe": ("枕叶", (-22.0, -82.0, 10.0)),
    "insula": ("岛叶", (-37.0, 2.0, 2.0)),
    "basal_ganglia": ("基底节区", (-24.0, 4.0, 4.0)),
    "thalamus": ("丘脑", (-12.0, -18.0, 8.0)),
    "cerebellum": ("小脑半球", (-28.0, -64.0, -34.0)),
    "pons": ("脑桥", (0.0, -26.0, -32.0)),
    "hippocampus": ("海马", (-28.0, -22.0, -14.0)),
    "sella": ("鞍区", tuple(SELLA_MNI)),
    "cerebellar_tonsil": ("小脑扁桃体", (0.0, -48.0, -52.0)),
}
LOBES = ("frontal_lobe", "parietal_lobe", "temporal_lobe", "occipital_lobe")


@dataclass
class Lesion:
    """One planted lesion: component fraction maps on the template grid plus its ground truth."""

    subtype: str
    laterality: str  # left | right | bilateral | midline | none
    locations: tuple[str, ...]  # site codes (keys of SITES)
    grade: str | None = None
    contrast: bool = False  # gadolinium given: enhancing components are bright on T1
    components: dict[str, np.ndarray] = field(default_factory=dict)
    warp: Callable[[np.ndarray], np.ndarray] | None = None  # MNI mm (3, N) -> displacement (3, N)
    reported_size_mm: float | None = None  # size a radiologist reports when not the mask's extent
    sized: bool = True  # False where radiologists report no size (hippocampal sclerosis)
    n_lesions: int = 1


def _site(code: str, side: int) -> np.ndarray:
    """MNI centre of a site; side -1 left, +1 right."""
    x, y, z = SITES[code][1]
    return np.array([x if side < 0 else -x, y, z])


def _side_name(side: int) -> str:
    return "left" if side < 0 else "right"


class _Builder:
    """Draws soft-edged irregular blobs on the template grid (within a bounding box, for speed)."""

    def __init__(self, template: Template, rng: np.random.Generator) -> None:
        self.t = template
        self.rng = rng
        self.xyz = template.xyz_mm

    def blob(self, center: np.ndarray, radii: np.ndarray | float, roughness: float = 0.15) -> np.ndarray:
        """Fraction map of an ellipsoid whose radius wobbles by ``roughness`` (smooth random harmonics)."""
        radii = np.broadcast_to(np.asarray(radii, dtype=np.float64), (3,))
        out = np.zeros(self.t.shape, np.float32)
        lo = np.floor(self.t.world_to_index((center - radii * 1.4 - 2)[:, None])[:, 0]).astype(int)
        hi = np.ceil(self.t.world_to_index((center + radii * 1.4 + 2)[:, None])[:, 0]).astype(int) + 1
        lo = np.clip(lo, 0, np.asarray(self.t.shape))
        hi = np.clip(hi, 0, np.asarray(self.t.shape))
        box = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
        if any(b <= a for a, b in zip(lo, hi, strict=True)):
            return out
        rel = self.xyz[(slice(None), *box)] - center[:, None, None, None]
        dist = np.sqrt(np.sum((rel / radii[:, None, None, None]) ** 2, axis=0))
        if roughness > 0:
            unit = rel / (np.linalg.norm(rel, axis=0) + 1e-6)
            k = self.rng.normal(size=(6, 3))
            phase = self.rng.uniform(0, 2 * np.pi, size=6)
            wobble = (
                sum(
                    np.cos((k[i, 0] * unit[0] + k[i, 1] * unit[1] + k[i, 2] * unit[2]) * 2.0 + phase[i])
                    for i in range(6)
                )
                / 6**0.5
            )
            dist = dist / (1.0 + roughness * wobble)
        edge_mm = WORK_MM
        out[box] = np.clip(0.5 - (dist - 1.0) * float(radii.mean()) / edge_mm, 0.0, 1.0)
        return out

    def tissue(self, *names: str) -> np.ndarray:
        return sum(self.t.tissues[n] for n in names)

    def junction_points(self, n: int, side: int | None = None) -> list[np.ndarray]:
        """Random grey/white-matter junction points in the cerebrum or cerebellum (metastasis seeds)."""
        gm, wm = self.t.tissues["gm"], self.t.tissues["wm"]
        cand = np.argwhere((gm > 0.35) & (wm > 0.35) & (self.t.brain > 0.9))
        pts = apply_affine(self.t.affine[:3, :3], self.t.affine[:3, 3], cand.T.astype(np.float64))
        if side is not None:
            pts = pts[:, np.sign(pts[0]) == side]
        pts = pts[:, np.abs(pts[0]) > 8]
        chosen = self.rng.choice(pts.shape[1], size=n, replace=False)
        return [pts[:, i] for i in chosen]

    def surface_point(self, direction: np.ndarray) -> np.ndarray:
        """Where a ray from the brain centre leaves the intracranial space (MNI mm)."""
        direction = direction / np.linalg.norm(direction)
        for r in np.arange(10.0, 120.0, 1.0):
            p = BRAIN_CENTER_MNI + r * direction
            idx = np.round(self.t.world_to_index(p[:, None])[:, 0]).astype(int)
            if np.any(idx < 0) or np.any(idx >= self.t.shape) or not self.t.intracranial[tuple(idx)]:
                return p
        raise ValueError("Ray never left the intracranial mask; direction must point outward.")


def _nearest_lobe(p: np.ndarray) -> str:
    codes = (*LOBES, "insula", "basal_ganglia", "thalamus", "cerebellum")
    return min(codes, key=lambda c: np.linalg.norm(_site(c, int(np.sign(p[0]) or -1)) - p))


def _glioma(b: _Builder, side: int) -> Lesion:
    grade = int(b.rng.choice([2, 3, 4], p=[0.3, 0.25, 0.45]))
    site = str(b.rng.choice(["frontal_lobe", "temporal_lobe", "parietal_lobe", "insula"]))
    c = _site(site, side) + b.rng.uniform(-5, 5, 3)
    r = b.rng.uniform(10, 16) + 3 * (grade - 2)
    radii = r * b.rng.uniform(0.8, 1.2, 3)
    outer = b.blob(c, radii, 0.2)
    white = np.clip(b.tissue("wm") + 0.3 * b.tissue("gm"), 0, 1)
    edema = np.clip(b.blob(c, radii * (1.3 + 0.3 * (grade - 2)), 0.3) - outer, 0, 1) * white
    comps = {"edema": edema}
    if grade == 4:
        necrosis = b.blob(c, radii * 0.5, 0.2)
        rim = np.clip(b.blob(c, radii * 0.8, 0.1) - necrosis, 0, 1)
        comps |= {"necrosis": necrosis, "enhancing": rim, "tumor": np.clip(outer - rim - necrosis, 0, 1)}
    elif grade == 3:
        nodule = b.blob(c + b.rng.uniform(-0.4, 0.4, 3) * radii, radii * 0.35, 0.2)
        comps |= {"enhancing": nodule, "tumor": np.clip(outer - nodule, 0, 1)}
    else:
        comps |= {"tumor": outer}
    return Lesion("glioma", _side_name(side), (site,), f"WHO {grade}", True, comps)


def _meningioma(b: _Builder, side: int) -> Lesion:
    site = str(b.rng.choice(["frontal_lobe", "parietal_lobe", "temporal_lobe"]))
    direction = _site(site, side) - BRAIN_CENTER_MNI
    parasagittal = b.rng.random() < 0.3 and site != "temporal_lobe"
    if parasagittal:
        direction = np.array([side * 0.15, direction[1] / 60, 1.0])
    surface = b.surface_point(direction)
    r = b.rng.uniform(9, 22)
    inward = -direction / np.linalg.norm(direction)
    tumor = b.blob(surface + inward * 0.55 * r, r, 0.05) * b.t.intracranial
    edema = np.clip(b.blob(surface + inward * 0.6 * r, r * 1.5, 0.3) - tumor, 0, 1) * b.tissue("wm")
    grade = "WHO 1" if b.rng.random() < 0.8 else "WHO 2"
    return Lesion(
        "meningioma", _side_name(side), (site,), grade, True, {"meningioma": tumor, "edema": 0.6 * edema}
    )


def _metastasis(b: _Builder, side: int) -> Lesion:
    n = int(b.rng.integers(1, 6))
    points = b.junction_points(n)
    enhancing, necrosis, edema = (np.zeros(b.t.shape, np.float32) for _ in range(3))
    white = np.clip(b.tissue("wm") + 0.2 * b.tissue("gm"), 0, 1)
    for p in points:
        r = b.rng.uniform(3.5, 11.0)
        core = b.blob(p, r * 0.55, 0.1) if r > 6 else np.zeros_like(enhancing)
        nod = b.blob(p, r, 0.1)
        necrosis = np.maximum(necrosis, core)
        enhancing = np.maximum(enhancing, nod - core)
        edema = np.maximum(edema, b.blob(p, r * 2.4, 0.3) * white)
    edema = np.clip(edema - enhancing - necrosis, 0, 1)
    sides = {int(np.sign(p[0])) for p in points}
    laterality = "bilateral" if len(sides) > 1 else _side_name(sides.pop())
    locations = tuple(dict.fromkeys(_nearest_lobe(p) for p in points))
    comps = {"enhancing": enhancing, "necrosis": necrosis, "edema": edema}
    return Lesion("metastasis", laterality, locations, None, True, comps, n_lesions=n)


def _abscess(b: _Builder, side: int) -> Lesion:
    site = str(b.rng.choice(["frontal_lobe", "parietal_lobe", "temporal_lobe"]))
    c = _site(site, side) + b.rng.uniform(-4, 4, 3)
    r = b.rng.uniform(9, 17)
    pus = b.blob(c, r * 0.72, 0.03)
    rim = np.clip(b.blob(c, r, 0.03) - pus, 0, 1)
    edema = np.clip(b.blob(c, r * 2.0, 0.3) - pus - rim, 0, 1) * np.clip(
        b.tissue("wm") + 0.3 * b.tissue("gm"), 0, 1
    )
    return Lesion(
        "abscess", _side_name(side), (site,), None, True, {"pus": pus, "enhancing": rim, "edema": edema}
    )


def _encephalitis(b: _Builder, side: int) -> Lesion:
    sides = (-1, 1) if b.rng.random() < 0.35 else (side,)
    inflam = np.zeros(b.t.shape, np.float32)
    for s in sides:
        temporal = b.blob(_site("hippocampus", s) + np.array([-s * 6, 8, -4]), np.array([14, 26, 14]), 0.2)
        insula = b.blob(_site("insula", s), np.array([8, 16, 16]), 0.2)
        inflam = np.maximum(inflam, np.maximum(temporal, insula))
    inflam *= np.clip(b.tissue("gm") + 0.4 * b.tissue("wm"), 0, 1)
    laterality = "bilateral" if len(sides) == 2 else _side_name(side)
    return Lesion(
        "encephalitis",
        laterality,
        ("temporal_lobe", "hippocampus", "insula"),
        None,
        False,
        {"inflammation": inflam},
    )


_TERRITORIES = {  # arterial territory -> (site centres on the left, locations)
    "MCA": ((-44.0, 0.0, 14.0), ("frontal_lobe", "insula", "temporal_lobe")),
    "MCA_posterior": ((-46.0, -38.0, 26.0), ("parietal_lobe", "temporal_lobe")),
    "ACA": ((-9.0, 22.0, 44.0), ("frontal_lobe",)),
    "PCA": ((-16.0, -80.0, 6.0), ("occipital_lobe",)),
}


def _infarct(b: _Builder, side: int) -> Lesion:
    name = str(b.rng.choice(list(_TERRITORIES), p=[0.4, 0.25, 0.15, 0.2]))
    center, locations = _TERRITORIES[name]
    c = np.array([center[0] if side < 0 else -center[0], center[1], center[2]])
    r = b.rng.uniform(12, 24) * b.rng.uniform(0.8, 1.2, 3)
    infarct = b.blob(c + b.rng.uniform(-4, 4, 3), r, 0.25) * np.clip(b.tissue("gm", "wm"), 0, 1)
    return Lesion("infarct", _side_name(side), locations, None, False, {"infarct": infarct})


def _hemorrhage(b: _Builder, side: int) -> Lesion:
    site = str(
        b.rng.choice(["basal_ganglia", "thalamus", "frontal_lobe", "parietal_lobe"], p=[0.5, 0.25, 0.15, 0.1])
    )
    c = _site(site, side) + b.rng.uniform(-3, 3, 3)
    r = b.rng.uniform(6, 16) * b.rng.uniform(0.8, 1.2, 3)
    blood = b.blob(c, r, 0.15)
    edema = np.clip(b.blob(c, r * 1.45, 0.2) - blood, 0, 1) * np.clip(b.tissue("gm", "wm"), 0, 1)
    return Lesion("hemorrhage", _side_name(side), (site,), None, False, {"blood": blood, "edema": edema})


def _contusion(b: _Builder, side: int) -> Lesion:
    site = str(b.rng.choice(["frontal_lobe", "temporal_lobe"]))
    base = _site(site, side) + (
        np.array([0, 22, -22]) if site == "frontal_lobe" else np.array([side * -2, 14, -14])
    )
    brain = np.clip(b.tissue("gm", "wm"), 0, 1)
    blood = np.zeros(b.t.shape, np.float32)
    for _ in range(int(b.rng.integers(2, 5))):
        blood = np.maximum(blood, b.blob(base + b.rng.uniform(-8, 8, 3), b.rng.uniform(3, 7), 0.2))
    blood *= brain
    edema = np.clip(b.blob(base, b.rng.uniform(13, 20), 0.3) * brain - blood, 0, 1)
    return Lesion("contusion", _side_name(side), (site,), None, False, {"blood": blood, "edema": edema})


def _subdural(b: _Builder, side: int) -> Lesion:
    thickness = float(b.rng.uniform(5, 12))
    depth = b.t.depth_mm
    x, y, z = b.xyz
    crescent = (
        (depth <= thickness * np.clip(1 - ((y + 15) / 75) ** 2, 0, 1)) & (np.sign(x) == side) & (z > -10)
    )
    crescent &= b.t.intracranial & (np.abs(x) > 12)
    component = "blood_sdh" if b.rng.random() < 0.5 else "chronic_sdh"
    comps = {component: ndimage.gaussian_filter(crescent.astype(np.float32), 0.6)}
    grade = "subacute" if component == "blood_sdh" else "chronic"
    return Lesion(
        "subdural_hematoma",
        _side_name(side),
        ("frontal_lobe", "temporal_lobe", "parietal_lobe"),
        grade,
        False,
        comps,
        reported_size_mm=round(thickness, 1),
    )


def _cavernous(b: _Builder, side: int) -> Lesion:
    site = str(
        b.rng.choice(["pons", "frontal_lobe", "temporal_lobe", "cerebellum"], p=[0.25, 0.35, 0.25, 0.15])
    )
    c = _site(site, side) + b.rng.uniform(-3, 3, 3)
    r = b.rng.uniform(4, 11)
    core = b.blob(c, r, 0.3)
    speckle = ndimage.gaussian_filter(b.rng.random(b.t.shape).astype(np.float32), 0.8) > 0.5
    rim = np.clip(b.blob(c, r * 1.35, 0.3) - core, 0, 1)
    laterality = "midline" if site == "pons" else _side_name(side)
    comps = {"blood_sdh": core * speckle, "blood": core * ~speckle, "hemosiderin": rim}
    return Lesion("cavernous_malformation", laterality, (site,), None, False, comps)


def _chiari(b: _Builder, side: int) -> Lesion:
    descent = float(b.rng.uniform(6, 14))
    tonsils = _site("cerebellar_tonsil", -1)
    tonsil = sum(b.blob(tonsils + np.array([s * 7, 0, 0]), np.array([5.0, 8.0, 8.0]), 0.05) for s in (-1, 1))
    tonsil = np.clip(tonsil, 0, 1) * b.tissue("gm", "wm")
    sigma = np.array([[16.0], [18.0], [14.0]])

    def warp(mni: np.ndarray) -> np.ndarray:
        w = np.exp(-0.5 * np.sum(((mni - (tonsils - [0, 0, 6])[:, None]) / sigma) ** 2, axis=0))
        return np.stack([np.zeros_like(w), np.zeros_like(w), descent * w])

    return Lesion(
        "chiari",
        "midline",
        ("cerebellar_tonsil",),
        "Chiari I",
        False,
        {"tonsil": tonsil},
        warp,
        reported_size_mm=round(descent, 1),
    )


def _pituitary(b: _Builder, side: int) -> Lesion:
    r = float(b.rng.uniform(3, 13))
    c = SELLA_MNI + np.array([side * min(r, 5) * 0.3, 0.0, max(r - 5.0, 0.0) * 0.9])
    adenoma = b.blob(c, np.array([r, r * 0.9, r * 1.15]), 0.05) * b.t.intracranial  # bounded by the fossa
    grade = "macroadenoma" if 2 * r >= 10 else "microadenoma"
    return Lesion("pituitary_adenoma", "midline", ("sella",), grade, True, {"adenoma": adenoma})


def _hippocampal_sclerosis(b: _Builder, side: int) -> Lesion:
    sides = (-1, 1) if b.rng.random() < 0.1 else (side,)
    gliosis = np.zeros(b.t.shape, np.float32)
    for s in sides:
        gliosis = np.maximum(
            gliosis, b.blob(_site("hippocampus", s) + [0, -2, 0], np.array([5.5, 17.0, 6.5]), 0.1)
        )
    gliosis *= np.clip(b.tissue("gm", "wm"), 0, 1)
    laterality = "bilateral" if len(sides) == 2 else _side_name(side)
    # Atrophy: a third of the hippocampus becomes CSF (temporal horn enlargement), the rest is gliotic.
    return Lesion(
        "hippocampal_sclerosis",
        laterality,
        ("hippocampus", "temporal_lobe"),
        None,
        False,
        {"gliosis": 0.65 * gliosis, "csf": 0.35 * gliosis},
        sized=False,
    )


_MODELS: dict[str, Callable[[_Builder, int], Lesion]] = {
    "glioma": _glioma,
    "meningioma": _meningioma,
    "metastasis": _metastasis,
    "abscess": _abscess,
    "encephalitis": _encephalitis,
    "infarct": _infarct,
    "hemorrhage": _hemorrhage,
    "contusion": _contusion,
    "subdural_hematoma": _subdural,
    "cavernous_malformation": _cavernous,
    "chiari": _chiari,
    "pituitary_adenoma": _pituitary,
    "hippocampal_sclerosis": _hippocampal_sclerosis,
}


def build_lesion(subtype: str, template: Template, rng: np.random.Generator) -> Lesion:
    """The lesion of one subtype at a random plausible site (``normal`` has no components)."""
    if subtype == "normal":
        return Lesion("normal", "none", ())
    side = -1 if rng.random() < 0.5 else 1
    return _MODELS[subtype](_Builder(template, rng), side)
