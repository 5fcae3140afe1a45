"""NIfTI input for sites that export NIfTI instead of DICOM: one file → volumes ready for normalisation.

NIfTI affines already map voxels to RAS mm, so the volume goes to :func:`normalize_volume` unchanged. Header
text fields (descrip, aux_file, intent_name) and extensions are never copied anywhere.
"""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np

from brainfm.imaging.volumes import Volume


def load_nifti_volumes(path: Path) -> list[Volume]:
    """3-D volumes of a NIfTI-1/2 file (a 4-D file gives one volume per time point), float32, scaling applied."""
    image = nib.load(path)
    data = np.asarray(image.dataobj, dtype=np.float32)
    if data.ndim == 2:
        data = data[:, :, np.newaxis]
    if data.ndim == 3:
        data = data[..., np.newaxis]
    if data.ndim != 4:
        raise ValueError(f"{path.name}: expected a 3-D or 4-D image, got shape {data.shape}; split it first.")
    affine = image.affine.astype(np.float64)
    return [Volume(np.ascontiguousarray(data[..., t]), affine, phase_axis=None) for t in range(data.shape[3])]
