"""Cohort profiles (tiny / small / bench) and the scanner conventions of each synthetic center.

A profile fixes how many patients, which centers and which disease mix; a center fixes everything a
scanner and its PACS do to the images (vendor, header style, resolution, intensity scale, bias field,
noise, transfer syntax). ``center_d`` is the deliberately shifted site: older 1.5 T scanner, coarse
matrix, thick slices, strong bias field, high noise, different contrast timing and compression.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from pydicom.uid import (
    UID,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    RLELossless,
)

SEQUENCES: tuple[str, ...] = ("T1", "T2", "FLAIR", "DWI")


@dataclass(frozen=True)
class CenterSpec:
    """One synthetic site: scanner, acquisition geometry and the effects its images carry."""

    center_id: str
    vendor: str  # "siemens" | "ge" | "philips" | "uih": selects header conventions
    manufacturer: str
    model: str
    field_strength_t: float
    institution: str  # fictional hospital name (Chinese), planted as an identifier
    address: str
    phone_prefix: str
    matrix: int  # in-plane matrix (pixels) of T1/T2/FLAIR; DWI uses ``dwi_matrix``
    dwi_matrix: int
    fov_mm: float  # square in-plane field of view
    slice_thickness_mm: float
    slice_gap_mm: float
    n_slices: int
    intensity_scale: float  # stored value of a unit-PD, fully relaxed signal
    bias_amplitude: float  # peak-to-peak log-gain of the smooth multiplicative bias field
    noise_sigma: float  # Rician noise sigma relative to a unit-PD signal
    te_scale: float = 1.0  # multiplies the echo times: contrast differences between sites
    ti_flair_ms: float = 2500.0
    inferior_first: bool = True  # slice order of InstanceNumber
    transfer_syntax: UID = ExplicitVRLittleEndian
    special_series: tuple[tuple[str, str], ...] = ()  # (sequence, "enhanced" | "jpeg2000")
    shifted: bool = False  # the deliberately shifted site (drift monitoring must flag it)

    @property
    def pixel_spacing_mm(self) -> float:
        return self.fov_mm / self.matrix

    @property
    def slice_spacing_mm(self) -> float:
        return self.slice_thickness_mm + self.slice_gap_mm

    def special(self, sequence: str) -> str | None:
        return dict(self.special_series).get(sequence)

    def effects(self) -> dict[str, object]:
        """The scanner effects written into manifest.json (JSON-safe)."""
        return {
            "vendor": self.vendor,
            "manufacturer": self.manufacturer,
            "model": self.model,
            "field_strength_t": self.field_strength_t,
            "matrix": self.matrix,
            "dwi_matrix": self.dwi_matrix,
            "pixel_spacing_mm": round(self.pixel_spacing_mm, 4),
            "slice_thickness_mm": self.slice_thickness_mm,
            "slice_spacing_mm": self.slice_spacing_mm,
            "n_slices": self.n_slices,
            "intensity_scale": self.intensity_scale,
            "bias_amplitude": self.bias_amplitude,
            "noise_sigma": self.noise_sigma,
            "te_scale": self.te_scale,
            "ti_flair_ms": self.ti_flair_ms,
            "transfer_syntax": str(self.transfer_syntax),
            "special_series": dict(self.special_series),
            "shifted": self.shifted,
        }


CENTERS: tuple[CenterSpec, ...] = (
    CenterSpec(
        "center_a",
        "siemens",
        "SIEMENS",
        "Skyra",
        3.0,
        "滨江市第一人民医院",
        "滨江市中山路88号",
        "0571",
        matrix=192,
        dwi_matrix=128,
        fov_mm=230.0,
        slice_thickness_mm=5.0,
        slice_gap_mm=1.0,
        n_slices=22,
        intensity_scale=2000.0,
        bias_amplitude=0.15,
        noise_sigma=0.012,
    ),
    CenterSpec(
        "center_b",
        "ge",
        "GE MEDICAL SYSTEMS",
        "DISCOVERY MR750",
        3.0,
        "华东医科大学附属第二医院",
        "云阳市解放路1号",
        "021",
        matrix=160,
        dwi_matrix=128,
        fov_mm=240.0,
        slice_thickness_mm=5.0,
        slice_gap_mm=1.5,
        n_slices=20,
        intensity_scale=3000.0,
        bias_amplitude=0.2,
        noise_sigma=0.015,
        te_scale=1.1,
        inferior_first=False,
        transfer_syntax=ImplicitVRLittleEndian,
    ),
    CenterSpec(
        "center_c",
        "philips",
        "Philips Medical Systems",
        "Ingenia",
        1.5,
        "南山县中医医院",
        "南山县人民路56号",
        "0755",
        matrix=176,
        dwi_matrix=112,
        fov_mm=230.0,
        slice_thickness_mm=6.0,
        slice_gap_mm=1.0,
        n_slices=18,
        intensity_scale=1500.0,
        bias_amplitude=0.25,
        noise_sigma=0.02,
        special_series=(("DWI", "enhanced"), ("FLAIR", "jpeg2000")),
    ),
    CenterSpec(
        "center_d",
        "uih",
        "UIH",
        "uMR 560",
        1.5,
        "西岭市妇幼保健院",
        "西岭市建设大道300号",
        "028",
        matrix=128,
        dwi_matrix=96,
        fov_mm=250.0,
        slice_thickness_mm=7.0,
        slice_gap_mm=1.5,
        n_slices=16,
        intensity_scale=800.0,
        bias_amplitude=0.6,
        noise_sigma=0.035,
        te_scale=1.35,
        ti_flair_ms=2200.0,
        transfer_syntax=RLELossless,
        shifted=True,
    ),
    CenterSpec(
        "center_e",
        "siemens",
        "SIEMENS",
        "Aera",
        1.5,
        "东湖区人民医院",
        "东湖区湖滨路12号",
        "027",
        matrix=176,
        dwi_matrix=128,
        fov_mm=220.0,
        slice_thickness_mm=5.0,
        slice_gap_mm=1.5,
        n_slices=20,
        intensity_scale=1200.0,
        bias_amplitude=0.2,
        noise_sigma=0.02,
    ),
    CenterSpec(
        "center_f",
        "ge",
        "GE MEDICAL SYSTEMS",
        "SIGNA Explorer",
        1.5,
        "北岭市第三医院",
        "北岭市长江路9号",
        "0311",
        matrix=160,
        dwi_matrix=128,
        fov_mm=240.0,
        slice_thickness_mm=6.0,
        slice_gap_mm=1.0,
        n_slices=18,
        intensity_scale=2500.0,
        bias_amplitude=0.25,
        noise_sigma=0.022,
        inferior_first=False,
    ),
)

# Disease subtypes: (category, subtype, relative frequency). Encephalitis, cavernous malformation and
# Chiari malformation are rare on purpose (about 1 %: a handful of cases in ``small``) so that
# zero-shot and few-shot evaluation has genuinely unseen / barely seen classes.
SUBTYPES: tuple[tuple[str, str, float], ...] = (
    ("normal", "normal", 0.305),
    ("tumor", "glioma", 0.14),
    ("tumor", "meningioma", 0.08),
    ("tumor", "metastasis", 0.08),
    ("infection", "abscess", 0.03),
    ("infection", "encephalitis", 0.01),
    ("cerebrovascular", "infarct", 0.10),
    ("cerebrovascular", "hemorrhage", 0.07),
    ("trauma", "contusion", 0.04),
    ("trauma", "subdural_hematoma", 0.04),
    ("malformation", "cavernous_malformation", 0.01),
    ("malformation", "chiari", 0.01),
    ("endocrine", "pituitary_adenoma", 0.04),
    ("hippocampal_sclerosis", "hippocampal_sclerosis", 0.04),
)
RARE_SUBTYPES: frozenset[str] = frozenset({"encephalitis", "cavernous_malformation", "chiari"})
CATEGORIES: tuple[str, ...] = tuple(dict.fromkeys(c for c, _, _ in SUBTYPES))
CATEGORY_OF: dict[str, str] = {s: c for c, s, _ in SUBTYPES}


@dataclass(frozen=True)
class SynthProfile:
    """Size of one generated cohort."""

    name: str
    n_patients: int
    n_centers: int
    n_trial_participants: int  # simulated controlled trial

    @property
    def centers(self) -> tuple[CenterSpec, ...]:
        return CENTERS[: self.n_centers]


PROFILES: dict[str, SynthProfile] = {
    "tiny": SynthProfile("tiny", n_patients=32, n_centers=4, n_trial_participants=160),
    "small": SynthProfile("small", n_patients=300, n_centers=5, n_trial_participants=600),
    "bench": SynthProfile("bench", n_patients=480, n_centers=6, n_trial_participants=2000),
}


def get_profile(name: str, n_patients: int | None = None) -> SynthProfile:
    """The named profile, optionally with another patient count (tests use reduced cohorts).

    With fewer patients than subtypes, only the most frequent subtypes appear; at least one patient
    more than there are centers is needed (one bad-file patient per center plus the burned-in series).
    """
    if name not in PROFILES:
        raise ValueError(f"Unknown synth profile {name!r}; choose one of {sorted(PROFILES)}.")
    profile = PROFILES[name]
    if n_patients is not None:
        if n_patients <= profile.n_centers:
            raise ValueError(
                f"n_patients={n_patients} is too small for {profile.n_centers} centers; "
                f"use at least {profile.n_centers + 1}."
            )
        profile = replace(profile, n_patients=n_patients)
    return profile
