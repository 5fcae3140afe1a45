"""What ``brainfm predict`` writes: lesion measurements, the label volume as NIfTI, a DICOM SEG and a TID 1500
measurement report (highdicom), an overlay PNG and predictions.json.

The DICOM objects reference the study's *original* instances (UIDs, patient and study modules copied from
them by highdicom), so that the hospital's PACS files them with the study and a viewer lays the segmentation
over the series it was drawn on. They therefore identify the patient, like the study they came from: they go
back to the hospital that owns the data, never into ``data/``. Their own UIDs are derived from the source
series and the model versions (``pydicom.uid.generate_uid`` with entropy sources), so the same study and
models give the same objects.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import highdicom as hd
import nibabel as nib
import numpy as np
from matplotlib.figure import Figure
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes
from pydicom.uid import generate_uid
from scipy.spatial import ConvexHull
from scipy.spatial.distance import pdist

from brainfm import __version__
from brainfm.imaging.masks import MASK_LABELS

# SNOMED CT codes of the label values (docs/DATA_CONTRACT.md §1: 1 lesion, 2 oedema, 3 necrosis or pus).
SEGMENT_CODES = {1: codes.SCT.Lesion, 2: codes.SCT.Edema, 3: codes.SCT.Necrosis}
OVERLAY_COLOURS = {1: "red", 2: "yellow", 3: "cyan"}
_MILLILITRE = hd.sr.CodedConcept("ml", "UCUM", "milliliter")
_MM3_PER_ML = 1000.0
MANUFACTURER = "brainfm"


def lesion_measurements(labels: np.ndarray, affine: np.ndarray) -> dict[str, dict[str, float]]:
    """Per label present in a label volume (voxel → RAS mm ``affine``): its volume in ml and its largest
    diameter in mm, the greatest distance between two of its voxel centres (so up to one voxel shorter than
    the extent of the voxels themselves). Labels named by :data:`brainfm.imaging.masks.MASK_LABELS`."""
    voxel_ml = abs(float(np.linalg.det(affine[:3, :3]))) / _MM3_PER_ML
    out = {}
    for value, name in MASK_LABELS.items():
        voxels = np.argwhere(labels == value)
        if len(voxels):
            points = nib.affines.apply_affine(affine, voxels)
            out[name] = {
                "volume_ml": len(voxels) * voxel_ml,
                "largest_diameter_mm": _largest_distance(points),
            }
    return out


def _largest_distance(points: np.ndarray) -> float:
    """The diameter of a point set (mm): the farthest pair lies on its convex hull (scipy's Qhull; joggled, so
    points on one slice, which span no volume, are handled too), which keeps the pairwise search small."""
    if len(points) > 4:
        points = points[ConvexHull(points, qhull_options="QJ").vertices]
    return float(pdist(points).max()) if len(points) > 1 else 0.0


def write_json(path: Path, data: Mapping[str, Any]) -> Path:
    """UTF-8 JSON, indented, non-ASCII kept; refuses NaN and infinities (not JSON)."""
    path.write_text(json.dumps(data, indent=1, ensure_ascii=False, allow_nan=False) + "\n", encoding="utf-8")
    return path


def write_nifti(path: Path, labels: np.ndarray, affine: np.ndarray) -> Path:
    """A uint8 label volume with its voxel → RAS mm affine (sform and qform) as NIfTI-1 (``.nii.gz``)."""
    image = nib.Nifti1Image(labels.astype(np.uint8), affine)
    image.set_qform(affine, code=1)  # scanner coordinates, as the source series
    image.set_sform(affine, code=1)
    image.header.set_xyzt_units("mm")
    nib.save(image, path)
    return path


@dataclass(frozen=True)
class Algorithm:
    """The model that made an object: its name and version (e.g. a content hash of its weights)."""

    name: str
    version: str

    def seg_identification(self) -> hd.AlgorithmIdentificationSequence:
        return hd.AlgorithmIdentificationSequence(
            self.name, codes.cid7162.ArtificialIntelligence, self.version
        )

    def sr_identification(self) -> hd.sr.AlgorithmIdentification:
        return hd.sr.AlgorithmIdentification(self.name, self.version)


def _uid(*parts: str) -> str:
    """A ``2.25.`` UID drawn from ``parts`` (the same parts give the same UID)."""
    return generate_uid(prefix=None, entropy_srcs=[__version__, *parts])


def segmentation_dicom(
    sources: Sequence[Dataset], frames: np.ndarray, algorithm: Algorithm
) -> hd.seg.Segmentation:
    """A binary DICOM SEG of the label values in ``frames`` (one (rows, columns) label frame per frame of
    ``sources``, in order: the original instances of one series) with one segment per label of
    :data:`SEGMENT_CODES`. Empty frames are left out unless every frame is empty."""
    series = str(sources[0].SeriesInstanceUID)
    descriptions = [
        hd.seg.SegmentDescription(
            segment_number=value, segment_label=MASK_LABELS[value],
            segmented_property_category=codes.SCT.MorphologicallyAbnormalStructure,
            segmented_property_type=code, algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
            algorithm_identification=algorithm.seg_identification(),
        )
        for value, code in SEGMENT_CODES.items()
    ]  # fmt: skip
    return hd.seg.Segmentation(
        source_images=list(sources), pixel_array=frames.astype(np.uint8),
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY, segment_descriptions=descriptions,
        series_instance_uid=_uid(series, algorithm.version, "seg series"), series_number=901,
        sop_instance_uid=_uid(series, algorithm.version, "seg instance"), instance_number=1,
        manufacturer=MANUFACTURER, manufacturer_model_name="brainfm predict", software_versions=__version__,
        device_serial_number=algorithm.version[:16], content_label="LESIONS",
        content_description="Automatic lesion segmentation (research use, not verified)",
        omit_empty_frames=bool(frames.any()),
    )  # fmt: skip


def measurement_report(
    seg: hd.seg.Segmentation, sources: Sequence[Dataset], measurements: Mapping[str, Mapping[str, float]],
    algorithm: Algorithm,
) -> hd.sr.Comprehensive3DSR:  # fmt: skip
    """A TID 1500 measurement report (Comprehensive 3D SR): one volumetric ROI group per segment of ``seg``
    that ``measurements`` (from :func:`lesion_measurements`) has, with its volume (ml) and largest diameter
    (mm), referencing the segment and its source images. Marked complete, unverified."""
    numbers = {name: value for value, name in MASK_LABELS.items()}
    groups = [
        hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations(
            tracking_identifier=hd.sr.TrackingIdentifier(
                uid=_uid(seg.SOPInstanceUID, name, "tracking"), identifier=f"{name} (automatic)"
            ),
            referenced_segment=hd.sr.ReferencedSegment.from_segmentation(seg, numbers[name]),
            finding_type=SEGMENT_CODES[numbers[name]],
            finding_category=codes.SCT.MorphologicallyAbnormalStructure,
            algorithm_id=algorithm.sr_identification(),
            measurements=[
                hd.sr.Measurement(
                    name=codes.SCT.Volume,
                    value=values["volume_ml"],
                    unit=_MILLILITRE,
                    algorithm_id=algorithm.sr_identification(),
                ),
                hd.sr.Measurement(
                    name=codes.SCT.Diameter,
                    value=values["largest_diameter_mm"],
                    unit=codes.UCUM.Millimeter,
                    derivation=codes.SCT.Maximum,
                    algorithm_id=algorithm.sr_identification(),
                ),
            ],
        )
        for name, values in measurements.items()
    ]
    observer = hd.sr.ObserverContext(
        observer_type=codes.DCM.Device,
        observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
            uid=_uid(algorithm.name, algorithm.version, "device"), name=algorithm.name,
            manufacturer_name=MANUFACTURER, model_name="brainfm predict",
        ),
    )  # fmt: skip
    report = hd.sr.MeasurementReport(
        observation_context=hd.sr.ObservationContext(observer_device_context=observer),
        procedure_reported=codes.LN.BrainMRI, imaging_measurements=groups or None,
    )  # fmt: skip
    series = str(sources[0].SeriesInstanceUID)
    return hd.sr.Comprehensive3DSR(
        evidence=[*sources, seg], content=report,
        series_instance_uid=_uid(series, algorithm.version, "sr series"), series_number=902,
        sop_instance_uid=_uid(series, algorithm.version, "sr instance"), instance_number=1,
        manufacturer=MANUFACTURER, is_complete=True, is_final=False, is_verified=False,
    )  # fmt: skip


def save_segmentation_overlay(path: Path, image: np.ndarray, labels: np.ndarray, title: str) -> Path:
    """A PNG of a normalised slice (uint8, (H, W)) in grey with the outline of each label drawn on it
    (:data:`OVERLAY_COLOURS`: lesion red, oedema yellow, necrosis cyan)."""
    fig = Figure(figsize=(4, 4), dpi=100)  # no pyplot: no global backend or figure registry
    ax = fig.subplots()
    ax.imshow(image, cmap="gray", vmin=0, vmax=255)
    for value, colour in OVERLAY_COLOURS.items():
        if (labels == value).any():
            ax.contour(labels == value, levels=[0.5], colors=colour, linewidths=1.0)
    ax.set_title(title, fontsize=9)
    ax.set_axis_off()
    fig.savefig(path, bbox_inches="tight")
    return path
