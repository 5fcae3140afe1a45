"""Clinical table and outcomes drawn from a stated hazard model, with the oracle C-index and AUC.

Survival: Cox proportional hazards with a Weibull baseline, h(t|x) = lam k t^(k-1) exp(lp), t in months,
lp = subtype/grade risk + b_size * size_cm + b_age * (age - 50)/10 + b_kps * (KPS - 80)/10.
Censoring is independent: administrative end of follow-up U(12, 60) months and loss to follow-up
Exp(mean 120 months). Metastasis (dissemination within two years): logistic in the same features.
The oracle scores use the true linear predictor / probability, so no model fitted on the images or
tables can beat them (up to sampling noise).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from lifelines.utils import concordance_index
from scipy.stats import mannwhitneyu

SUBTYPE_RISK: dict[str, float] = {  # log-hazard of the lesion relative to a normal study
    "normal": 0.0,
    "meningioma": 0.2,
    "metastasis": 2.0,
    "abscess": 0.6,
    "encephalitis": 0.8,
    "infarct": 0.9,
    "hemorrhage": 1.0,
    "contusion": 0.5,
    "subdural_hematoma": 0.6,
    "cavernous_malformation": 0.2,
    "chiari": 0.1,
    "pituitary_adenoma": 0.2,
    "hippocampal_sclerosis": 0.1,
}
GLIOMA_RISK: dict[str, float] = {"WHO 2": 0.8, "WHO 3": 1.5, "WHO 4": 2.3}
METASTASIS_LOGIT: dict[str, float] = {"metastasis": 2.0, "glioma": 1.0}  # other subtypes: 0

SYMPTOMS: dict[str, tuple[str, ...]] = {  # likely presenting symptoms per subtype (Chinese, as charted)
    "normal": ("头晕", "头痛", "体检"),
    "glioma": ("头痛", "癫痫发作", "肢体无力", "言语障碍"),
    "meningioma": ("头痛", "癫痫发作", "体检"),
    "metastasis": ("头痛", "恶心呕吐", "肢体无力"),
    "abscess": ("发热", "头痛", "意识障碍"),
    "encephalitis": ("发热", "意识障碍", "癫痫发作", "精神行为异常"),
    "infarct": ("肢体无力", "言语障碍", "口角歪斜"),
    "hemorrhage": ("头痛", "肢体无力", "意识障碍"),
    "contusion": ("外伤后头痛", "意识障碍"),
    "subdural_hematoma": ("外伤后头痛", "肢体无力", "意识障碍"),
    "cavernous_malformation": ("癫痫发作", "头痛"),
    "chiari": ("枕部头痛", "肢体麻木"),
    "pituitary_adenoma": ("视力下降", "月经紊乱", "头痛"),
    "hippocampal_sclerosis": ("癫痫发作", "记忆力下降"),
}
AGE_RANGE: dict[str, tuple[float, float]] = {  # mean and sd of age (years) per subtype
    "normal": (48, 15),
    "glioma": (52, 13),
    "meningioma": (58, 11),
    "metastasis": (62, 10),
    "abscess": (45, 15),
    "encephalitis": (40, 18),
    "infarct": (66, 10),
    "hemorrhage": (60, 11),
    "contusion": (42, 17),
    "subdural_hematoma": (68, 12),
    "cavernous_malformation": (38, 14),
    "chiari": (32, 12),
    "pituitary_adenoma": (44, 12),
    "hippocampal_sclerosis": (30, 10),
}


@dataclass(frozen=True)
class HazardModel:
    """The generating model of the outcomes (written to manifest.json as ``hazard_model``)."""

    weibull_scale: float = 0.006  # lam, per month^k
    weibull_shape: float = 1.3  # k
    b_size_per_cm: float = 0.15
    b_age_per_decade: float = 0.3
    b_kps_per_10: float = -0.25
    admin_censor_months: tuple[float, float] = (12.0, 60.0)
    loss_to_follow_up_mean_months: float = 120.0
    logit_intercept: float = -3.0
    logit_size_per_cm: float = 0.3
    logit_kps_per_10: float = -0.2

    def lesion_risk(self, subtype: str, grade: str | None) -> float:
        return GLIOMA_RISK[grade] if subtype == "glioma" else SUBTYPE_RISK[subtype]

    def linear_predictor(
        self, subtype: str, grade: str | None, size_mm: float, age: float, kps: float
    ) -> float:
        return (
            self.lesion_risk(subtype, grade)
            + self.b_size_per_cm * size_mm / 10
            + self.b_age_per_decade * (age - 50) / 10
            + self.b_kps_per_10 * (kps - 80) / 10
        )

    def metastasis_probability(self, subtype: str, size_mm: float, kps: float) -> float:
        z = (
            self.logit_intercept
            + METASTASIS_LOGIT.get(subtype, 0.0)
            + self.logit_size_per_cm * size_mm / 10
            + self.logit_kps_per_10 * (kps - 80) / 10
        )
        return float(1 / (1 + np.exp(-z)))

    def describe(self) -> dict[str, object]:
        return {
            "form": "Cox PH, Weibull baseline h0(t)=lam*k*t^(k-1), t in months; "
            "lp = lesion_risk + b_size*size_cm + b_age*(age-50)/10 + b_kps*(kps-80)/10",
            "metastasis_form": "logit p = intercept + metastasis_logit[subtype] + size*size_cm + kps*(kps-80)/10",
            "parameters": asdict(self),
            "lesion_risk": SUBTYPE_RISK | {f"glioma {g}": v for g, v in GLIOMA_RISK.items()},
            "metastasis_logit": METASTASIS_LOGIT,
        }


def draw_clinical(subtype: str, grade: str | None, rng: np.random.Generator) -> dict[str, object]:
    """Age, sex, symptoms, KPS and comorbidities of one patient (before imaging)."""
    mean, sd = AGE_RANGE[subtype]
    age = int(np.clip(rng.normal(mean, sd), 18, 92))
    sex = "F" if rng.random() < (0.7 if subtype in ("meningioma", "pituitary_adenoma") else 0.48) else "M"
    pool = SYMPTOMS[subtype]
    symptoms = [
        pool[int(i)]
        for i in sorted(rng.choice(len(pool), size=int(rng.integers(1, len(pool) + 1)), replace=False))
    ]
    burden = {"WHO 4": 25, "WHO 3": 15}.get(grade or "", 0) + (
        15 if subtype in ("metastasis", "hemorrhage") else 0
    )
    kps = int(np.clip(np.round((rng.normal(88, 8) - burden - max(age - 60, 0) * 0.4) / 10) * 10, 30, 100))
    return {
        "age_years": age,
        "sex": sex,
        "symptoms": "；".join(symptoms),
        "symptom_duration_days": int(rng.integers(1, 400)),
        "kps": kps,
        "hypertension": bool(rng.random() < (0.6 if subtype in ("infarct", "hemorrhage") else 0.25)),
        "diabetes": bool(rng.random() < 0.12),
        "smoking": bool(rng.random() < (0.35 if sex == "M" else 0.05)),
    }


@dataclass(frozen=True)
class Outcomes:
    lp: np.ndarray  # true linear predictor
    p_metastasis: np.ndarray
    metastasis: np.ndarray  # 0/1
    survival_months: np.ndarray
    event: np.ndarray  # 1 death observed, 0 censored


def draw_outcomes(
    model: HazardModel,
    subtypes: list[str],
    grades: list[str | None],
    sizes_mm: list[float],
    ages: list[float],
    kps: list[float],
    rng: np.random.Generator,
) -> Outcomes:
    """Survival, censoring and metastasis for patients with these features (sizes 0 for normal)."""
    lp = np.array(
        [model.linear_predictor(*x) for x in zip(subtypes, grades, sizes_mm, ages, kps, strict=True)]
    )
    p = np.array(
        [model.metastasis_probability(s, z, k) for s, z, k in zip(subtypes, sizes_mm, kps, strict=True)]
    )
    n = len(lp)
    t_event = (-np.log(rng.random(n)) / (model.weibull_scale * np.exp(lp))) ** (1 / model.weibull_shape)
    c_admin = rng.uniform(*model.admin_censor_months, n)
    c_loss = rng.exponential(model.loss_to_follow_up_mean_months, n)
    censor = np.minimum(c_admin, c_loss)
    months = np.round(np.minimum(t_event, censor), 2)
    return Outcomes(lp, p, (rng.random(n) < p).astype(np.int8), months, (t_event <= censor).astype(np.int8))


def oracle_scores(out: Outcomes) -> dict[str, float | int | None]:
    """C-index of the true lp against the drawn times, AUC of the true probability against metastasis."""
    c = concordance_index(out.survival_months, -out.lp, out.event)
    pos, neg = out.p_metastasis[out.metastasis == 1], out.p_metastasis[out.metastasis == 0]
    auc = float(mannwhitneyu(pos, neg).statistic / (len(pos) * len(neg))) if len(pos) and len(neg) else None
    return {
        "c_index": round(float(c), 4),
        "auc_metastasis": None if auc is None else round(auc, 4),  # None: only one class was drawn
        "n_events": int(out.event.sum()),
        "n_metastasis": int(out.metastasis.sum()),
    }
