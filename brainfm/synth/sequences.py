"""MR signal models: T1-, T2-weighted spin echo, FLAIR (inversion recovery) and trace DWI.

Each voxel holds fractions of named tissues; its signal is the fraction-weighted sum of the tissues'
signals (partial-volume mixing of magnetisation). Relaxation times are typical literature values at
1.5-3 T (ms); apparent diffusion coefficients are in 1e-3 mm^2/s.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Tissue:
    pd: float  # proton density relative to CSF
    t1_ms: float
    t2_ms: float
    adc: float  # 1e-3 mm^2/s
    t1_gd_ms: float | None = None  # T1 after gadolinium, for enhancing tissue


TISSUES: dict[str, Tissue] = {
    "csf": Tissue(1.0, 4000, 1800, 3.0),
    "gm": Tissue(0.82, 1300, 95, 0.85),
    "wm": Tissue(0.70, 800, 75, 0.75),
    "fat": Tissue(0.90, 300, 80, 0.02),
    "soft": Tissue(0.70, 1100, 45, 1.4),
    "edema": Tissue(0.88, 1600, 220, 1.6),
    "tumor": Tissue(0.85, 1500, 160, 1.1),
    "enhancing": Tissue(0.85, 1400, 130, 0.95, t1_gd_ms=320),
    "necrosis": Tissue(0.95, 2800, 900, 2.6),
    "pus": Tissue(0.92, 1400, 350, 0.45),
    "infarct": Tissue(0.86, 1500, 180, 0.35),
    "inflammation": Tissue(0.88, 1500, 170, 0.65),
    "blood": Tissue(0.85, 420, 40, 0.6),  # early subacute (intracellular methaemoglobin): T1 bright, T2 dark
    "blood_sdh": Tissue(0.90, 450, 400, 1.0),  # late subacute (extracellular methaemoglobin): bright on both
    "chronic_sdh": Tissue(0.95, 2600, 600, 2.4),  # CSF-like, not fully nulled on FLAIR
    "hemosiderin": Tissue(0.50, 600, 12, 0.5),
    "meningioma": Tissue(0.80, 1100, 100, 0.8, t1_gd_ms=350),
    "adenoma": Tissue(0.80, 1100, 110, 0.9, t1_gd_ms=650),
    "gliosis": Tissue(0.85, 1500, 150, 1.1),
    "tonsil": Tissue(0.80, 1200, 90, 0.8),
}


@dataclass(frozen=True)
class Protocol:
    """Timing of one sequence (ms) and its DICOM acquisition descriptors."""

    sequence: str
    tr_ms: float
    te_ms: float
    ti_ms: float | None
    scanning_sequence: str  # (0018,0020)
    sequence_variant: str  # (0018,0021)
    b_values: tuple[int, ...] = ()  # s/mm^2, DWI only


def protocol(sequence: str, te_scale: float = 1.0, ti_flair_ms: float = 2500.0) -> Protocol:
    """The protocol of a sequence at a site; ``te_scale`` and the FLAIR inversion time vary by site."""
    if sequence == "T1":
        return Protocol("T1", 500.0, 12.0 * te_scale, None, "SE", "SK\\SP")
    if sequence == "T2":
        return Protocol("T2", 4000.0, 100.0 * te_scale, None, "SE", "SK\\SP\\OSP")
    if sequence == "FLAIR":
        return Protocol("FLAIR", 9000.0, 120.0 * te_scale, ti_flair_ms, "SE\\IR", "SK\\SP\\MP")
    if sequence == "DWI":
        return Protocol("DWI", 5000.0, 80.0 * te_scale, None, "EP", "SK\\SP", b_values=(0, 1000))
    raise ValueError(f"Unknown sequence {sequence!r}; expected T1, T2, FLAIR or DWI.")


def signal_weights(tissues: list[Tissue], proto: Protocol, contrast: bool, b_value: int = 0) -> np.ndarray:
    """Noise-free magnitude signal of each pure tissue (unit PD, fully relaxed = 1) under ``proto``.

    A voxel's signal is these weights dotted with its tissue fractions. Spin echo:
    PD (1 - e^-TR/T1) e^-TE/T2. Inversion recovery: PD |1 - 2 e^-TI/T1 + e^-TR/T1| e^-TE/T2.
    DWI: the spin-echo EPI signal times e^(-b ADC), fat suppressed (fat PD x 0.1).
    """
    out = np.zeros(len(tissues), np.float32)
    for i, t in enumerate(tissues):
        t1 = t.t1_gd_ms if (contrast and t.t1_gd_ms is not None) else t.t1_ms
        decay = np.exp(-proto.te_ms / t.t2_ms)
        if proto.ti_ms is None:
            s = t.pd * (1 - np.exp(-proto.tr_ms / t1)) * decay
        else:
            s = t.pd * abs(1 - 2 * np.exp(-proto.ti_ms / t1) + np.exp(-proto.tr_ms / t1)) * decay
        if proto.sequence == "DWI":
            s *= np.exp(-b_value * t.adc * 1e-3) * (0.1 if t is TISSUES["fat"] else 1.0)
        out[i] = s
    return out
