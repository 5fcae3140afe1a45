"""NIfTI input for sites that export NIfTI instead of DICOM: one file → volumes ready for normalisation, and
its de-identified rewrite.

NIfTI affines already map voxels to RAS mm, so the volume goes to :func:`normalize_volume` unchanged (which
reorients to RAS with nibabel.orientations). Header text fields (descrip, aux_file, intent_name, db_name) and
extensions are never copied anywhere: a rewrite keeps the voxel array and the affine only.
"""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np

from brainfm.imaging.volumes import Volume

NIFTI_SUFFIXES = (".nii", ".nii.gz")


def is_nifti(name: str) -> bool:
    """Whether a file name is a single-file NIfTI-1/2 image (``.nii`` or ``.nii.gz``, any case)."""
    return name.lower().endswith(NIFTI_SUFFIXES)


def nifti_stem(name: str) -> str:
    """The file name without its NIfTI suffix."""
    lower = name.lower()
    return name[: -len(next(s for s in sorted(NIFTI_SUFFIXES, key=len, reverse=True) if lower.endswith(s)))]


def load_nifti(path: Path) -> nib.Nifti1Image:
    """A NIfTI-1 or NIfTI-2 image (data not yet read); raises TypeError for any other image type (CIFTI …)."""
    image = nib.load(path)
    if not isinstance(image, nib.Nifti1Image):  # Nifti2Image subclasses Nifti1Image; CIFTI and others do not
        raise TypeError(f"{path.name}: a {type(image).__name__}, not a NIfTI-1/2 volume; convert it to NIfTI first.")
    return image


def nifti_volumes(image: nib.Nifti1Image) -> list[Volume]:
    """3-D volumes of an image (a 4-D image gives one volume per time point), float32, scaling applied."""
    data = np.asarray(image.dataobj, dtype=np.float32)
    if data.ndim == 2:
        data = data[:, :, np.newaxis]
    if data.ndim == 3:
        data = data[..., np.newaxis]
    if data.ndim != 4:
        raise ValueError(f"expected a 3-D or 4-D image, got shape {data.shape}; split it first.")
    affine = image.affine.astype(np.float64)
    return [Volume(np.ascontiguousarray(data[..., t]), affine, phase_axis=None) for t in range(data.shape[3])]


def load_nifti_volumes(path: Path) -> list[Volume]:
    """:func:`nifti_volumes` of the file at ``path``."""
    return nifti_volumes(load_nifti(path))


def rewrite_nifti(image: nib.Nifti1Image) -> bytes:
    """An uncompressed single-file NIfTI of the same class built from the voxel array and affine only (no
    header text, no extensions). Uncompressed so that a byte-level leak scan sees every byte."""
    data = np.asanyarray(image.dataobj)  # stored dtype when unscaled, else float with scaling applied
    clean = type(image)(data, image.affine)
    clean.header.set_xyzt_units(*image.header.get_xyzt_units())  # units are codes, not text
    return clean.to_bytes()
