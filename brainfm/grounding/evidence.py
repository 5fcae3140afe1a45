"""What the stage-3 models say about one study, in the terms a report is checked against.

The classifier gives category probabilities (the ``p_category_<class>`` columns of
`models.heads.classification.ClassificationHead.predictions`); the segmenter gives binary lesion masks on the
normalised 256 × 256 slices (docs/DATA_CONTRACT.md §3), which the volume geometry of ``volumes.parquet``
takes back to RAS mm (`brainfm.imaging.masks.slice_to_ras`). From them: whether there is a lesion, its side
and its largest in-plane diameter.

Sites are not derived. Naming the lobe of a voxel needs the study registered to an anatomical atlas, which
the pipeline does not do: scanner RAS coordinates are the patient's, placed within centimetres and tilted by
degrees, and brains differ in size. So every site a report names is *unverifiable* (reported as not
checked), never counted as supported.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from brainfm.imaging.masks import slice_to_ras, volume_geometry

CATEGORY_PREFIX = "p_category_"  # the classification head's probability columns
NO_ATLAS = (
    "sites are not checked: no atlas registration maps segmented voxels to anatomical sites, so a site "
    "claim is neither supported nor contradicted"
)
NO_SEGMENTATION = "no segmentation was given for this study"
NO_LESION_SEGMENTED = "the segmentation found no lesion to measure"


@dataclass(frozen=True)
class SizeTolerance:
    """Two sizes agree when they differ by at most ``absolute_mm`` or ``relative`` × the reference size,
    whichever is larger (the absolute part keeps small lesions from failing on a pixel or two)."""

    relative: float = 0.2
    absolute_mm: float = 5.0

    def __post_init__(self) -> None:
        if self.relative < 0 or self.absolute_mm < 0:
            raise ValueError(f"size tolerances must be non-negative, got {self}")

    def agrees(self, claimed_mm: float, reference_mm: float) -> bool:
        """Whether ``claimed_mm`` lies within the tolerance of ``reference_mm`` (False for NaN)."""
        return abs(claimed_mm - reference_mm) <= max(self.absolute_mm, self.relative * reference_mm)

    def describe(self) -> str:
        return f"±{self.absolute_mm:g} mm or ±{100 * self.relative:g} %, whichever is larger"


@dataclass(frozen=True)
class Thresholds:
    """Cut-offs of the grounding guard.

    abnormal_probability: the classifier finds a study abnormal when 1 − p(normal) reaches it (0.5: the
    abnormal classes together outweigh normal). category_probability: a reported category is supported when
    the classifier predicts it or gives it at least this probability (0.2: a second opinion the classifier
    still entertains, about twice the 1/8 of an uninformed 8-class guess). min_lesion_pixels: segmented
    connected components (8-connected, per slice) smaller than this are noise (20 pixels at 0.7–0.9 mm per
    pixel is 10–16 mm², a 4 mm disc; the cohort's smallest lesions are 6–7 mm across). midline_margin_mm: a
    component whose centroid lies within this of the field-of-view centre along RAS x is on the midline
    (heads sit within about 8 mm of the centre: the synthetic cohort places them ±8 mm, technologists centre
    the field of view on the head). size: a reported size against the segmented diameter; looser than
    between reports (30 %), since the segmentation is measured on 256-pixel slices of possibly thick or
    non-axial series while the report measures on the acquisition grid.
    """

    abnormal_probability: float = 0.5
    category_probability: float = 0.2
    min_lesion_pixels: int = 20
    midline_margin_mm: float = 10.0
    size: SizeTolerance = field(default_factory=lambda: SizeTolerance(relative=0.3, absolute_mm=5.0))

    def __post_init__(self) -> None:
        for name in ("abnormal_probability", "category_probability"):
            if not 0.0 < getattr(self, name) < 1.0:
                raise ValueError(f"{name} must lie in (0, 1), got {getattr(self, name)}")
        if self.min_lesion_pixels < 1 or self.midline_margin_mm < 0:
            raise ValueError(
                f"min_lesion_pixels must be at least 1 and midline_margin_mm non-negative, got {self}"
            )


@dataclass(frozen=True)
class SegmentedSlice:
    """One normalised slice of the segmenter's output: ``mask`` (256, 256) bool lesion pixels, ``volume`` its
    ``volumes.parquet`` row (``affine``, ``shape``; docs/DATA_CONTRACT.md §3) and ``slice_index``."""

    mask: npt.NDArray[np.bool_]
    volume: Mapping[str, Any]
    slice_index: int


@dataclass(frozen=True)
class StudyEvidence:
    """The models' findings for one study.

    category_probabilities: classifier probability per category. abnormal_probability: 1 − p(normal).
    lesion_present: whether the segmentation holds a component of at least ``min_lesion_pixels`` (None: no
    segmentation). lesion_pixels: pixels in those components. lesion_side: left, right, bilateral or midline,
    from the RAS x of the components' centroids (RAS: +x points to the patient's right, so x < 0 is left;
    LPS, DICOM's frame, is the one where +x is left), None without a lesion. largest_diameter_mm: the
    largest in-plane extent of a component, in mm. unverifiable: item
    (``sites``, ``side``, ``size``, ``lesion``) → why the models cannot speak to it for this study.
    """

    category_probabilities: Mapping[str, float]
    abnormal_probability: float
    predicted_category: str
    lesion_present: bool | None
    lesion_pixels: int
    lesion_side: str | None
    largest_diameter_mm: float | None
    unverifiable: Mapping[str, str]


@dataclass(frozen=True)
class _Component:
    pixels: int
    side: str  # left, right or midline
    diameter_mm: float


def category_probabilities(class_probs: Mapping[str, float]) -> dict[str, float]:
    """The ``p_category_<class>`` entries of a predictions row as {class: probability}; validated."""
    probs = {
        k[len(CATEGORY_PREFIX) :]: float(v) for k, v in class_probs.items() if k.startswith(CATEGORY_PREFIX)
    }
    if "normal" not in probs or len(probs) < 2:
        raise ValueError(
            f"class_probs needs the classification head's {CATEGORY_PREFIX}<class> probabilities, 'normal' "
            f"among them (a row of ClassificationHead.predictions); got keys {sorted(class_probs)[:10]}"
        )
    values = np.array(list(probs.values()))
    if not (
        np.isfinite(values).all() and (values >= 0).all() and math.isclose(values.sum(), 1.0, abs_tol=1e-3)
    ):
        raise ValueError(
            f"category probabilities must be finite, non-negative and sum to 1 (softmax outputs), got {probs}"
        )
    return probs


def _components(piece: SegmentedSlice, thresholds: Thresholds) -> list[_Component]:
    """The slice's 8-connected lesion components of at least ``min_lesion_pixels``."""
    mask = np.asarray(piece.mask, dtype=bool)
    if mask.ndim != 2:
        raise ValueError(f"a segmented slice must be a 2-D (256, 256) mask, got shape {mask.shape}")
    labelled, n = ndimage.label(mask, structure=np.ones((3, 3), dtype=bool))
    if n == 0:
        return []
    index = np.arange(1, n + 1)
    sizes = ndimage.sum_labels(mask, labelled, index)
    centroids = ndimage.center_of_mass(mask, labelled, index)
    geometry = volume_geometry(piece.volume)
    centre_voxel = (np.asarray(geometry.shape, dtype=float) - 1.0) / 2.0
    fov_x = float((geometry.affine @ [*centre_voxel, 1.0])[0])  # RAS x of the field-of-view centre
    out: list[_Component] = []
    for pixels, (row, column), box in zip(sizes, centroids, ndimage.find_objects(labelled), strict=True):
        if pixels < thresholds.min_lesion_pixels:
            continue
        x = float(slice_to_ras(piece.volume, piece.slice_index, row, column)[0]) - fov_x
        side = "midline" if abs(x) <= thresholds.midline_margin_mm else ("right" if x > 0 else "left")
        # Extent along rows and columns in pixels, as the cohort measures its labels (synth/cohort.py).
        extent = max(s.stop - s.start for s in box)
        out.append(_Component(int(pixels), side, extent * geometry.pixel_mm))
    return out


def _side(components: Sequence[_Component]) -> str:
    """Both sides → bilateral; one side → it (a midline component beside it does not change that, as in a
    report's laterality); only midline components → midline."""
    sides = {c.side for c in components} - {"midline"}
    if len(sides) == 2:
        return "bilateral"
    return sides.pop() if sides else "midline"


def evidence_from_predictions(
    class_probs: Mapping[str, float],
    seg_masks: Sequence[SegmentedSlice] | None,
    thresholds: Thresholds | None = None,
) -> StudyEvidence:
    """The evidence of one study from its classifier probabilities (a predictions row with
    ``p_category_<class>`` keys; other keys such as ``p_subtype_*`` are ignored) and its segmented slices,
    normally every slice of the one series the segmenter read (None or empty: no segmentation, so lesion,
    side and size are unverifiable)."""
    thresholds = thresholds or Thresholds()
    probs = category_probabilities(class_probs)
    unverifiable = {"sites": NO_ATLAS}
    components = [c for piece in seg_masks or () for c in _components(piece, thresholds)]
    if not seg_masks:
        unverifiable |= dict.fromkeys(("lesion", "side", "size"), NO_SEGMENTATION)
    elif not components:
        unverifiable |= dict.fromkeys(("side", "size"), NO_LESION_SEGMENTED)
    return StudyEvidence(
        category_probabilities=probs,
        abnormal_probability=1.0 - probs["normal"],
        predicted_category=max(probs, key=probs.__getitem__),
        lesion_present=bool(components) if seg_masks else None,
        lesion_pixels=sum(c.pixels for c in components),
        lesion_side=_side(components) if components else None,
        largest_diameter_mm=max(c.diameter_mm for c in components) if components else None,
        unverifiable=unverifiable,
    )
