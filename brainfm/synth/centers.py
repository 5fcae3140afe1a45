"""Acquisition geometry and scanner effects of a center: grid, bias field, Rician noise, stored integers.

Axial slices, DICOM patient coordinates (LPS mm) in headers, RAS mm inside the generator. A grid's
voxel (k, r, c) is slice k (inferior to superior), row r (anterior to posterior) and column c
(patient right to left), i.e. ImageOrientationPatient = [1, 0, 0, 0, 1, 0].
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from brainfm.synth.anatomy import SubjectGeometry
from brainfm.synth.profiles import CenterSpec

LPS_FROM_RAS = np.diag([-1.0, -1.0, 1.0])
_SLAB_CENTER_MNI = np.array([0.0, -18.0, 4.0])  # where the axial slab is centred (MNI mm)
MAX_STORED = 4095  # 12-bit stored values, as most MR scanners write


@dataclass(frozen=True)
class AcquisitionGrid:
    """An axial stack: ``shape`` = (slices, rows, columns); square pixels."""

    shape: tuple[int, int, int]
    origin_lps: np.ndarray  # LPS mm of the centre of pixel (0, 0) of slice 0
    pixel_mm: float
    slice_spacing_mm: float
    slice_thickness_mm: float

    def position_lps(self, k: int) -> np.ndarray:
        """ImagePositionPatient of slice k."""
        return self.origin_lps + np.array([0.0, 0.0, k * self.slice_spacing_mm])

    @property
    def affine_ras(self) -> np.ndarray:
        """NIfTI affine for arrays indexed (column, row, slice): voxel -> RAS mm."""
        a = np.zeros((4, 4))
        a[:3, 0] = LPS_FROM_RAS @ np.array([self.pixel_mm, 0, 0])
        a[:3, 1] = LPS_FROM_RAS @ np.array([0, self.pixel_mm, 0])
        a[:3, 2] = [0, 0, self.slice_spacing_mm]
        a[:3, 3] = LPS_FROM_RAS @ self.origin_lps
        a[3, 3] = 1.0
        return a

    def with_matrix(self, matrix: int) -> AcquisitionGrid:
        """The same field of view and slices with another in-plane matrix (pixel edges aligned)."""
        fov = self.shape[1] * self.pixel_mm
        pixel = fov / matrix
        edge = self.origin_lps - np.array([self.pixel_mm / 2, self.pixel_mm / 2, 0.0])
        origin = edge + np.array([pixel / 2, pixel / 2, 0.0])
        return AcquisitionGrid(
            (self.shape[0], matrix, matrix), origin, pixel, self.slice_spacing_mm, self.slice_thickness_mm
        )

    def points_ras(self) -> np.ndarray:
        """(3, N) RAS mm of every voxel, in (slice, row, column) C order."""
        k, r, c = np.indices(self.shape, dtype=np.float32).reshape(3, -1)
        lps = self.origin_lps[:, None] + np.stack(
            [c * self.pixel_mm, r * self.pixel_mm, k * self.slice_spacing_mm]
        )
        return np.stack([-lps[0], -lps[1], lps[2]]).astype(np.float32)  # LPS -> RAS


def make_grids(
    center: CenterSpec, geometry: SubjectGeometry, rng: np.random.Generator
) -> dict[str, AcquisitionGrid]:
    """The study's grids: ``main`` (T1, T2, FLAIR) and ``dwi``: same field of view and slices, own matrix.

    The field of view is centred on the head with a ±5 mm positioning error, as a technologist would.
    """
    inv = np.linalg.inv(geometry.scanner_to_mni)
    slab_ras = (
        inv[:3, :3] @ _SLAB_CENTER_MNI + inv[:3, 3] + np.append(rng.uniform(-5, 5, 2), rng.uniform(-4, 4))
    )
    slab_lps = LPS_FROM_RAS @ slab_ras
    pixel = center.pixel_spacing_mm
    half = (center.matrix - 1) / 2 * pixel
    origin = slab_lps - np.array([half, half, (center.n_slices - 1) / 2 * center.slice_spacing_mm])
    main = AcquisitionGrid(
        (center.n_slices, center.matrix, center.matrix),
        origin,
        pixel,
        center.slice_spacing_mm,
        center.slice_thickness_mm,
    )
    return {"main": main, "dwi": main.with_matrix(center.dwi_matrix)}


@dataclass(frozen=True)
class BiasField:
    """A smooth multiplicative receive-coil field exp(a f(x)), a quadratic in scanner mm around ``origin``."""

    origin_ras: np.ndarray
    coefficients: np.ndarray  # 9 terms: x, y, z, x^2, y^2, z^2, xy, xz, yz (x in units of 100 mm)
    amplitude: float

    @classmethod
    def draw(cls, center: CenterSpec, origin_ras: np.ndarray, rng: np.random.Generator) -> BiasField:
        coef = rng.normal(size=9)
        return cls(origin_ras, coef / np.abs(coef).sum(), center.bias_amplitude)

    def gain(self, points_ras: np.ndarray) -> np.ndarray:
        x, y, z = (points_ras - self.origin_ras[:, None]) / 100.0
        basis = np.stack([x, y, z, x * x, y * y, z * z, x * y, x * z, y * z])
        field = sum(c * b for c, b in zip(self.coefficients, basis, strict=True))  # element-wise: no BLAS
        return np.exp(self.amplitude * field).astype(np.float32)


def to_stored(signal: np.ndarray, center: CenterSpec, rng: np.random.Generator, scale: float) -> np.ndarray:
    """Add Rician noise (sigma relative to unit PD) and apply the site's intensity scale -> uint16.

    ``scale`` multiplies the site's ``intensity_scale`` (the per-series receiver gain); values are
    clipped to 12 bits.
    """
    s = signal
    sigma = center.noise_sigma
    real = s + sigma * rng.standard_normal(s.shape, dtype=np.float32)
    noisy = np.hypot(real, sigma * rng.standard_normal(s.shape, dtype=np.float32))
    return np.clip(np.rint(noisy * center.intensity_scale * scale), 0, MAX_STORED).astype(np.uint16)
