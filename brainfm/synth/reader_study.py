"""Simulated reader study and controlled trial (documented in docs/SCHEMAS.md; every row has simulated=True).

Readers: every combination of seniority (low/mid/high), hospital tier (primary/tertiary) and specialty
(general/neuro). A reader's chance of a correct diagnosis is logistic:
  logit = SENIORITY + TIER + SPECIALTY + reader effect N(0, 0.2) + case difficulty
and with model assistance the logit moves by +ASSIST_GAIN * (1 + junior/primary/general boosts) when the
model is right, and by -AUTOMATION_BIAS (larger for juniors) when it is wrong, so assistance helps
junior, primary-hospital and general readers most. Reading time is lognormal around a median by seniority,
shortened by assistance. The model's suggestion is right with probability MODEL_ACCURACY (lower for rare
subtypes).

In the controlled trial the doctor also predicts the patient's prognosis from the patient's true risk
(brainfm/synth/clinical.py): the predicted metastasis risk is expit(true logit + e) and the predicted median
survival is the Weibull median at (true linear predictor + e'), e and e' independent N(0, sd²) with sd by
seniority (PROGNOSIS_NOISE_SD), multiplied by MODEL_PROGNOSIS_NOISE_FACTOR with the model.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import product

import numpy as np

from brainfm.synth.clinical import HazardModel, Outcomes, oracle_scores
from brainfm.synth.profiles import CATEGORY_OF, RARE_SUBTYPES

SENIORITY = {"low": 0.2, "mid": 0.9, "high": 1.6}
TIER = {"primary": -0.3, "tertiary": 0.3}
SPECIALTY = {"general": -0.3, "neuro": 0.4}
ASSIST_GAIN = 1.0
ASSIST_BOOST = {"low": 0.6, "primary": 0.3, "general": 0.3}  # relative extra gain
AUTOMATION_BIAS = {"low": 0.9, "mid": 0.6, "high": 0.3}
MODEL_ACCURACY = {"common": 0.88, "rare": 0.55}
MEDIAN_TIME_S = {"low": 240.0, "mid": 180.0, "high": 130.0}
ASSISTED_TIME_FACTOR = 0.8
TIME_SIGMA = 0.35  # log-scale sd of reading time
CRITICAL_SUBTYPES = frozenset({"hemorrhage", "infarct", "subdural_hematoma", "abscess"})
TRIAL_ARMS = ("doctor_plus_model", "doctor_alone")  # the treated arm first
# sd of the doctor's error on the metastasis logit and on the Cox linear predictor, doctor alone
PROGNOSIS_NOISE_SD = {"low": 2.0, "mid": 1.5, "high": 1.0}
MODEL_PROGNOSIS_NOISE_FACTOR = 0.4  # with the model's risk estimate shown, the doctor's error sd × 0.4


@dataclass(frozen=True)
class Reader:
    reader_id: str
    seniority: str
    hospital_tier: str
    specialty: str
    effect: float  # reader-level random effect on the logit

    def base_logit(self) -> float:
        return SENIORITY[self.seniority] + TIER[self.hospital_tier] + SPECIALTY[self.specialty] + self.effect

    def assist_gain(self) -> float:
        boost = sum(ASSIST_BOOST.get(v, 0.0) for v in (self.seniority, self.hospital_tier, self.specialty))
        return ASSIST_GAIN * (1 + boost)


@dataclass(frozen=True)
class Case:
    accession: str
    patient_id: str
    center: str
    subtype: str
    size_mm: float | None


def draw_readers(rng: np.random.Generator) -> list[Reader]:
    combos = product(SENIORITY, TIER, SPECIALTY)
    return [
        Reader(f"R{i:02d}", s, t, sp, float(rng.normal(0, 0.2))) for i, (s, t, sp) in enumerate(combos, 1)
    ]


def _difficulty(case: Case) -> float:
    if case.subtype == "normal":
        return 0.8
    return -1.0 * (case.subtype in RARE_SUBTYPES) - 0.5 * ((case.size_mm or 0) < 10)


def model_suggestion(case: Case, subtypes: list[str], rng: np.random.Generator) -> str:
    p = MODEL_ACCURACY["rare" if case.subtype in RARE_SUBTYPES else "common"]
    return case.subtype if rng.random() < p else str(rng.choice([s for s in subtypes if s != case.subtype]))


def read_case(
    reader: Reader, case: Case, suggestion: str | None, subtypes: list[str], rng: np.random.Generator
) -> dict[str, object]:
    """One read; ``suggestion`` is the model's output when assisted, else None."""
    logit = reader.base_logit() + _difficulty(case)
    if suggestion is not None:
        logit += reader.assist_gain() if suggestion == case.subtype else -AUTOMATION_BIAS[reader.seniority]
    correct = rng.random() < 1 / (1 + np.exp(-logit))
    if correct:
        diagnosis = case.subtype
    elif suggestion is not None and suggestion != case.subtype and rng.random() < 0.5:
        diagnosis = suggestion
    else:
        same = [s for s in subtypes if s != case.subtype and CATEGORY_OF[s] == CATEGORY_OF[case.subtype]]
        others = [s for s in subtypes if s != case.subtype]
        diagnosis = str(rng.choice(same if same and rng.random() < 0.6 else others))
    confidence = int(
        np.clip(
            np.round(
                2.5
                + 1.2 * correct
                + 0.4 * (suggestion is not None)
                + 0.3 * SENIORITY[reader.seniority]
                + rng.normal(0, 0.7)
            ),
            1,
            5,
        )
    )
    median = MEDIAN_TIME_S[reader.seniority] * (ASSISTED_TIME_FACTOR if suggestion is not None else 1.0)
    median *= 1.2 if case.subtype in RARE_SUBTYPES else 1.0
    return {
        "diagnosis": diagnosis,
        "correct": bool(diagnosis == case.subtype),
        "confidence": confidence,
        "reading_time_s": round(float(median * np.exp(rng.normal(0, TIME_SIGMA))), 1),
    }


def _reader_columns(r: Reader) -> dict[str, object]:
    return {
        "reader_id": r.reader_id,
        "seniority": r.seniority,
        "hospital_tier": r.hospital_tier,
        "specialty": r.specialty,
    }


def _case_columns(c: Case) -> dict[str, object]:
    return {
        "accession": c.accession,
        "patient_id": c.patient_id,
        "center": c.center,
        "truth_category": CATEGORY_OF[c.subtype],
        "truth_subtype": c.subtype,
    }


def simulate_reader_study(
    cases: list[Case], subtypes: list[str], rng: np.random.Generator
) -> list[dict[str, object]]:
    """Every reader reads every case twice (crossover: half the cases assisted first, 4-week washout)."""
    readers = draw_readers(rng)
    suggestions = {c.accession: model_suggestion(c, subtypes, rng) for c in cases}
    rows = []
    for reader in readers:
        for case in cases:
            aided_first = rng.random() < 0.5
            for session in ("unaided", "aided"):
                aided = session == "aided"
                read = read_case(reader, case, suggestions[case.accession] if aided else None, subtypes, rng)
                rows.append(
                    _reader_columns(reader)
                    | _case_columns(case)
                    | {
                        "session": session,
                        "model_assisted": aided,
                        "reading_order": 1 if aided == aided_first else 2,
                        "model_suggestion": suggestions[case.accession] if aided else None,
                    }
                    | read
                    | {"simulated": True}
                )
    return rows


def simulate_trial(
    cases: list[Case], subtypes: list[str], n_participants: int, rng: np.random.Generator
) -> list[dict[str, object]]:
    """A randomised controlled trial: participants (cases drawn with replacement) randomised 1:1 in
    permuted blocks of 4 within each center to doctor + model vs doctor alone; one reader each."""
    readers = draw_readers(rng)
    drawn = [cases[int(i)] for i in rng.integers(0, len(cases), n_participants)]
    arms: dict[str, list[str]] = {}
    rows = []
    for i, case in enumerate(drawn, 1):
        queue = arms.setdefault(case.center, [])
        if not queue:
            queue.extend(
                rng.permutation(["doctor_plus_model", "doctor_plus_model", "doctor_alone", "doctor_alone"])
            )
        arm = str(queue.pop(0))
        reader = readers[int(rng.integers(len(readers)))]
        suggestion = model_suggestion(case, subtypes, rng) if arm == "doctor_plus_model" else None
        read = read_case(reader, case, suggestion, subtypes, rng)
        critical = case.subtype in CRITICAL_SUBTYPES
        rows.append(
            {"participant_id": f"T{i:05d}", "arm": arm}
            | _case_columns(case)
            | _reader_columns(reader)
            | {
                "diagnosis": read["diagnosis"],
                "correct_diagnosis": read["correct"],
                "time_to_diagnosis_min": round(float(read["reading_time_s"]) / 60 * 12, 1),  # incl. queueing
                "critical_case": critical,
                "critical_finding_missed": bool(critical and not read["correct"]),
                "simulated": True,
            }
        )
    return rows


def prognosis_noise_sd(arm: str, seniority: str) -> float:
    """The sd of the doctor's prognostic error (on the logit and the log-hazard scale) in ``arm``."""
    return PROGNOSIS_NOISE_SD[seniority] * (MODEL_PROGNOSIS_NOISE_FACTOR if arm == TRIAL_ARMS[0] else 1.0)


def weibull_median_months(model: HazardModel, lp: np.ndarray) -> np.ndarray:
    """Median survival (months) under ``model`` at linear predictor ``lp``: S(t) = exp(-lam t^k e^lp) = 1/2."""
    return (np.log(2.0) / (model.weibull_scale * np.exp(lp))) ** (1.0 / model.weibull_shape)


def _noisy_prognosis(
    outcomes: Outcomes, rows: np.ndarray, sd: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """The doctor's (metastasis logit, linear predictor) for patients ``rows`` with error sd ``sd`` each."""
    p = outcomes.p_metastasis[rows]
    noise = rng.normal(size=(len(rows), 2)) * sd[:, None]
    return np.log(p) - np.log1p(-p) + noise[:, 0], outcomes.lp[rows] + noise[:, 1]


def add_prognosis(
    trial: list[dict[str, object]],
    patient_ids: list[str],
    outcomes: Outcomes,
    model: HazardModel,
    rng: np.random.Generator,
) -> list[dict[str, object]]:
    """The trial's rows (``simulate_trial``) with the doctor's prognosis and the patient's outcomes added.

    ``patient_ids[i]`` is the patient of ``outcomes`` entry i (the cohort's outcome draw). Adds
    ``predicted_metastasis_risk`` (probability), ``predicted_survival_months`` (predicted median survival,
    months) and the patient's ``metastasis``, ``survival_months`` and ``event``.
    """
    index = {patient: i for i, patient in enumerate(patient_ids)}
    unknown = {str(r["patient_id"]) for r in trial} - index.keys()
    if unknown:
        raise ValueError(
            f"{len(unknown)} trial patient(s) are not in patient_ids: pass the outcomes of every cohort patient"
        )
    rows = np.array([index[str(r["patient_id"])] for r in trial], dtype=int)
    sd = np.array([prognosis_noise_sd(str(r["arm"]), str(r["seniority"])) for r in trial])
    logit, lp = _noisy_prognosis(outcomes, rows, sd, rng)
    risk, median = 1.0 / (1.0 + np.exp(-logit)), weibull_median_months(model, lp)
    return [
        row
        | {
            "predicted_metastasis_risk": round(float(risk[j]), 6),
            "predicted_survival_months": round(float(median[j]), 4),
            "metastasis": int(outcomes.metastasis[i]),
            "survival_months": float(outcomes.survival_months[i]),
            "event": int(outcomes.event[i]),
        }
        for j, (row, i) in enumerate(zip(trial, rows, strict=True))
    ]


def expected_prognosis_scores(
    outcomes: Outcomes, draws: int = 100, seed: int = 0
) -> dict[str, dict[str, float | int | None]]:
    """Per arm, the AUC of the predicted metastasis risk and the C-index of the predicted survival that a trial
    on these patients estimates (Monte Carlo over the doctor's error, ``draws`` predictions per patient).

    Participants are drawn uniformly from the patients and the doctor's seniority is low, mid or high with
    probability 1/3 each (4 of the 12 reader profiles each), as in ``simulate_trial``. Same keys as
    ``oracle_scores`` (``c_index``, ``auc_metastasis``, ...), the noise-free reference (docs/SCHEMAS.md).
    """
    rng = np.random.default_rng(seed)
    rows = np.tile(np.arange(len(outcomes.lp)), draws)
    seniority = rng.choice(list(PROGNOSIS_NOISE_SD), size=len(rows))
    scores = {}
    for arm in TRIAL_ARMS:
        sd = np.array([prognosis_noise_sd(arm, s) for s in seniority])
        logit, lp = _noisy_prognosis(outcomes, rows, sd, rng)
        drawn = Outcomes(
            lp, 1.0 / (1.0 + np.exp(-logit)), outcomes.metastasis[rows], outcomes.survival_months[rows],
            outcomes.event[rows],
        )  # fmt: skip
        scores[arm] = oracle_scores(drawn)
    return scores
