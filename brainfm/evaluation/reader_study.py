"""Reader-study analysis: doctors reading with and without the model's suggestion, and the model against them.

The input is the pseudonymised ``reader_study`` table (docs/SCHEMAS.md, "Clinical tables"): one row per
read, every reader reading every case once unaided and once aided (crossover). A *case* is a study
(``accession``). Two kinds of interval:

* MRMC (Obuchowski–Rockette–Hillis, ``brainfm.evaluation.mrmc``): readers and cases both random; used for the
  aided-vs-unaided effect on AUC and accuracy, overall and per reader subgroup.
* Patient bootstrap (``brainfm.evaluation.bootstrap``): cases resampled by patient, readers fixed; used for
  rates (sensitivity, specificity, automation bias), reading time and the model-vs-readers comparison.

Every result is a plain frozen dataclass of numbers; each estimate is an ``Estimate`` (value, low, high at
the requested confidence, 95 % by default). ``analyse_reader_study`` gathers everything.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, fields, is_dataclass
from itertools import combinations
from typing import cast

import numpy as np
import numpy.typing as npt
import polars as pl
from scipy import stats
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.proportion import proportion_confint

from brainfm.evaluation.bootstrap import Estimate, patient_bootstrap
from brainfm.evaluation.mrmc import (
    ORHResult,
    ReaderFoms,
    obuchowski_rockette,
    proportion_correct,
    reader_foms,
    wilcoxon_auc,
)
from brainfm.synth.profiles import CATEGORY_OF, RARE_SUBTYPES

NORMAL = "normal"
SESSIONS = ("aided", "unaided")  # MRMC modality order: differences are aided minus unaided
# Reader subgroups, levels in their natural order (contrasts are earlier minus later level).
SUBGROUP_LEVELS: dict[str, tuple[str, ...]] = {
    "seniority": ("low", "mid", "high"),
    "hospital_tier": ("primary", "tertiary"),
    "specialty": ("general", "neuro"),
}
READ_COLUMNS = (
    "reader_id",
    "seniority",
    "hospital_tier",
    "specialty",
    "accession",
    "patient",
    "truth_category",
    "truth_subtype",
    "session",
    "model_suggestion",
    "diagnosis",
    "confidence",
    "reading_time_s",
    "simulated",
)
PREDICTION_COLUMNS = ("accession", "predicted_subtype", "abnormality_probability")


def abnormality_rating(diagnosis: npt.ArrayLike, confidence: npt.ArrayLike) -> np.ndarray:
    """A 10-point abnormality rating per read: abnormal diagnosis -> 5 + confidence, normal -> 6 − confidence.

    Readers give a subtype and a confidence (1–5), not a probability of disease; ROC analysis needs an
    ordinal score for "abnormal" (truth: ``truth_category != "normal"``). Confident normal is 1, unsure
    normal 5, unsure abnormal 6, confident abnormal 10: the usual way to fold a binary call and its
    confidence into one scale, so that the trapezoidal AUC uses the confidence as well as the call.
    """
    calls = np.asarray(diagnosis).astype(str)
    levels = np.asarray(confidence)
    if levels.shape != calls.shape:
        raise ValueError(
            f"diagnosis and confidence need one entry per read; got {calls.shape}, {levels.shape}"
        )
    if not np.isin(levels, [1, 2, 3, 4, 5]).all():
        raise ValueError(f"confidence must be an integer 1–5; got values {sorted(set(levels.tolist()))}")
    return np.where(calls != NORMAL, 5 + levels, 6 - levels).astype(int)


def _check_reads(reads: pl.DataFrame) -> None:
    missing = [c for c in READ_COLUMNS if c not in reads.columns]
    if missing:
        raise ValueError(
            f"the reader-study table lacks {missing}: pass the pseudonymised reader_study table "
            "(docs/SCHEMAS.md, Clinical tables)"
        )
    sessions = set(reads["session"].unique().to_list())
    if sessions != set(SESSIONS):
        raise ValueError(f"session must take both values {list(SESSIONS)}; got {sorted(map(str, sessions))}")


def _share(hits: np.ndarray) -> float:
    """Mean of a 0/1 array; NaN for an empty one (a bootstrap replicate without such a read is skipped)."""
    return float(hits.mean()) if hits.size else math.nan


def _n_patients(reads: pl.DataFrame) -> int:
    return reads["patient"].n_unique()


def _levels(reads: pl.DataFrame, factor: str) -> list[str]:
    known = SUBGROUP_LEVELS[factor]
    present = set(reads[factor].unique().to_list())
    return [v for v in known if v in present] + sorted(present - set(known))


def _readers_by_group(reads: pl.DataFrame) -> dict[str, list[str]]:
    """``{"all": every reader, "seniority=low": ..., ...}``; raises if a reader has two levels of a factor."""
    profile = reads.select("reader_id", *SUBGROUP_LEVELS).unique()
    if profile["reader_id"].is_duplicated().any():
        raise ValueError("a reader has two seniorities, tiers or specialties: one profile per reader_id")
    groups = {"all": sorted(profile["reader_id"].to_list())}
    for factor in SUBGROUP_LEVELS:
        for level in _levels(reads, factor):
            groups[f"{factor}={level}"] = sorted(
                profile.filter(pl.col(factor) == level)["reader_id"].to_list()
            )
    return groups


# --- MRMC: aided vs unaided, overall and per subgroup ------------------------------------------------------


@dataclass(frozen=True)
class AssistanceEffect:
    """Aided vs unaided by MRMC (random readers and cases) for one reader group and figure of merit.

    fom: ``"auc"`` (abnormal vs normal, on ``abnormality_rating``) or ``"accuracy"`` (subtype correct).
    unaided, aided: mean FOM over the group's readers with the single-modality interval; effect: aided
    minus unaided with its interval, Hillis df and p-value. ``analysis`` holds the full ORH tables.
    """

    group: str
    fom: str
    readers: tuple[str, ...]
    unaided: Estimate
    aided: Estimate
    effect: Estimate
    df: float
    p_value: float
    analysis: ORHResult


def _reader_foms(reads: pl.DataFrame) -> dict[str, ReaderFoms]:
    """Per reader × session AUC and accuracy with their jackknife (computed once, sliced per subgroup)."""
    rating = abnormality_rating(reads["diagnosis"].to_numpy(), reads["confidence"].to_numpy())
    common = (reads["session"].to_numpy(), reads["reader_id"].to_numpy(), reads["accession"].to_numpy())
    abnormal = reads["truth_category"].to_numpy() != NORMAL
    subtype, call = reads["truth_subtype"].to_numpy(), reads["diagnosis"].to_numpy()
    return {
        "auc": reader_foms(*common, abnormal, rating, wilcoxon_auc, SESSIONS),
        "accuracy": reader_foms(*common, subtype, call, proportion_correct, SESSIONS),
    }


def _assistance_effects(
    foms: Mapping[str, ReaderFoms], groups: Mapping[str, Sequence[str]], n_patients: int, confidence: float
) -> tuple[AssistanceEffect, ...]:
    out = []
    for group, readers in groups.items():
        for name, table in foms.items():
            result = obuchowski_rockette(table.select(readers), confidence)
            aided, unaided = (
                Estimate(m.value, m.low, m.high, n_patients, n_boot=0) for m in result.modality_intervals
            )
            diff = result.differences[0]
            effect = Estimate(diff.value, diff.low, diff.high, n_patients, n_boot=0)
            out.append(
                AssistanceEffect(
                    group, name, tuple(readers), unaided, aided, effect, diff.df, diff.p_value, result
                )
            )
    return tuple(out)


def assistance_effects(reads: pl.DataFrame, confidence: float = 0.95) -> tuple[AssistanceEffect, ...]:
    """MRMC aided-vs-unaided effect on AUC and accuracy, for all readers and each subgroup (factor=level)."""
    _check_reads(reads)
    return _assistance_effects(_reader_foms(reads), _readers_by_group(reads), _n_patients(reads), confidence)


@dataclass(frozen=True)
class SubgroupInteraction:
    """Subgroup × session interaction: (aided − unaided in ``level_a``) − (aided − unaided in ``level_b``).

    Method: each reader's effect d_j = FOM_aided − FOM_unaided. Under the Obuchowski–Rockette model the
    d_j of different readers share cases and so covary by the same 2(Cov2 − Cov3) whatever their group;
    that covariance cancels from a difference of two disjoint groups' means, leaving the within-group
    spread of d_j (reader × session interaction plus case noise) as its only variance. Hence a pooled
    two-sample t-test on d_j (df = n_a + n_b − 2) is valid with readers and cases random. Intervals are not
    adjusted for the several contrasts reported.
    """

    fom: str
    factor: str
    level_a: str
    level_b: str
    effect: Estimate
    df: float
    p_value: float


def _interactions(
    foms: Mapping[str, ReaderFoms], groups: Mapping[str, Sequence[str]], n_patients: int, confidence: float
) -> tuple[SubgroupInteraction, ...]:
    out = []
    for name, table in foms.items():
        gain = dict(zip(table.readers, table.fom[0] - table.fom[1], strict=True))  # aided − unaided
        for factor in SUBGROUP_LEVELS:
            levels = [g.split("=", 1)[1] for g in groups if g.startswith(f"{factor}=")]
            for a, b in combinations(levels, 2):
                gains_a = [gain[r] for r in groups[f"{factor}={a}"]]
                gains_b = [gain[r] for r in groups[f"{factor}={b}"]]
                if min(len(gains_a), len(gains_b)) < 2:
                    continue  # one reader: no spread, no interval
                test = stats.ttest_ind(gains_a, gains_b, equal_var=True)
                low, high = test.confidence_interval(confidence)
                value = float(np.mean(gains_a) - np.mean(gains_b))
                effect = Estimate(value, float(low), float(high), n_patients, n_boot=0)
                out.append(
                    SubgroupInteraction(name, factor, a, b, effect, float(test.df), float(test.pvalue))
                )
    return tuple(out)


def subgroup_interactions(reads: pl.DataFrame, confidence: float = 0.95) -> tuple[SubgroupInteraction, ...]:
    """Every pairwise subgroup × session interaction on AUC and accuracy; see ``SubgroupInteraction``."""
    _check_reads(reads)
    return _interactions(_reader_foms(reads), _readers_by_group(reads), _n_patients(reads), confidence)


# --- Sensitivity and specificity per subtype group ---------------------------------------------------------


@dataclass(frozen=True)
class SessionRates:
    """A rate unaided and aided, and aided minus unaided (same patient resamples for all three)."""

    unaided: Estimate
    aided: Estimate
    difference: Estimate


def _session_rates(
    hits: np.ndarray, aided: np.ndarray, patients: np.ndarray, n_boot: int, seed: int, confidence: float
) -> SessionRates:
    metrics: tuple[Callable[[np.ndarray, np.ndarray], float], ...] = (
        lambda h, a: _share(h[~a]),
        lambda h, a: _share(h[a]),
        lambda h, a: _share(h[a]) - _share(h[~a]),
    )
    return SessionRates(
        *(
            patient_bootstrap(m, patients, hits, aided, n_boot=n_boot, seed=seed, confidence=confidence)
            for m in metrics
        )
    )


@dataclass(frozen=True)
class GroupRates:
    """One-vs-rest sensitivity and specificity of the reader's call for a group of subtypes.

    sensitivity: P(diagnosis in group | truth in group); specificity: P(diagnosis not in group | truth not
    in group), over every read (readers fixed, patients resampled).
    """

    group: str
    subtypes: tuple[str, ...]
    sensitivity: SessionRates
    specificity: SessionRates


def _subtype_groups(
    reads: pl.DataFrame, rare_subtypes: Collection[str], category_of: Mapping[str, str]
) -> dict[str, tuple[str, ...]]:
    subtypes = set(reads["truth_subtype"].to_list()) | set(reads["diagnosis"].to_list())
    unknown = sorted(subtypes - set(category_of))
    if unknown:
        raise ValueError(f"subtypes {unknown} have no category: pass category_of mapping every subtype")
    pairs = reads.select("truth_subtype", "truth_category").unique().rows()
    wrong = [(s, c) for s, c in pairs if category_of[s] != c]
    if wrong:
        raise ValueError(
            f"(truth_subtype, truth_category) {wrong} disagree with category_of; pass the site's"
        )
    abnormal = sorted(s for s, c in category_of.items() if c != NORMAL)
    groups = {"abnormal": abnormal}
    for category in sorted(set(category_of.values()) - {NORMAL}):
        groups[f"category={category}"] = sorted(s for s in abnormal if category_of[s] == category)
    groups["rare subtypes"] = sorted(s for s in abnormal if s in rare_subtypes)
    groups["common subtypes"] = sorted(s for s in abnormal if s not in rare_subtypes)
    truths = set(reads["truth_subtype"].to_list())
    # A group needs cases inside and outside it to have both rates.
    return {name: tuple(g) for name, g in groups.items() if truths & set(g) and truths - set(g)}


def detection_rates(
    reads: pl.DataFrame,
    *,
    rare_subtypes: Collection[str] = RARE_SUBTYPES,
    category_of: Mapping[str, str] = CATEGORY_OF,
    n_boot: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> tuple[GroupRates, ...]:
    """Sensitivity and specificity, unaided vs aided, for abnormal studies, each category, rare and common
    subtypes (the project's taxonomy by default); groups without a case inside or outside are left out."""
    _check_reads(reads)
    aided = reads["session"].to_numpy() == "aided"
    patients = reads["patient"].to_numpy()
    out = []
    for name, subtypes in _subtype_groups(reads, rare_subtypes, category_of).items():
        truth_in = reads["truth_subtype"].is_in(subtypes).to_numpy()
        call_in = reads["diagnosis"].is_in(subtypes).to_numpy()
        sensitivity, specificity = (
            _session_rates(hits[rows], aided[rows], patients[rows], n_boot, seed, confidence)
            for hits, rows in ((call_in, truth_in), (~call_in, ~truth_in))
        )
        out.append(GroupRates(name, subtypes, sensitivity, specificity))
    return tuple(out)


# --- Paired tests: correctness (McNemar) and reading time (Wilcoxon) ---------------------------------------


def _pairs(reads: pl.DataFrame) -> pl.DataFrame:
    """One row per (reader, case): its unaided and aided read side by side (columns suffixed)."""
    keys = ["reader_id", "accession", "patient"]
    unaided, aided = (reads.filter(pl.col("session") == s) for s in ("unaided", "aided"))
    try:
        return unaided.join(aided, on=keys, how="inner", suffix="_aided", validate="1:1")
    except pl.exceptions.ComputeError as error:
        raise ValueError(
            f"a reader read a case twice in one session: one read per session ({error})"
        ) from None


@dataclass(frozen=True)
class McNemarResult:
    """McNemar's test of paired correctness, unaided vs aided.

    Counts of pairs: both correct, correct only unaided, only aided, both wrong. odds_ratio: of the
    discordant pairs, aided-only over unaided-only, with the exact conditional (Clopper–Pearson) interval.
    ``exact``: binomial test (few discordant pairs) rather than chi-square.
    """

    n_pairs: int
    both_correct: int
    unaided_only: int
    aided_only: int
    both_wrong: int
    statistic: float
    p_value: float
    exact: bool
    odds_ratio: Estimate


def mcnemar_test(
    correct_unaided: npt.ArrayLike,
    correct_aided: npt.ArrayLike,
    *,
    exact: bool | None = None,
    correction: bool = True,
    confidence: float = 0.95,
    n_patients: int | None = None,
) -> McNemarResult:
    """McNemar (``statsmodels``) on paired 0/1 correctness; ``exact`` defaults to fewer than 25 discordant.

    ``correction``: continuity correction of the chi-square form. The pairs are treated as independent:
    a reader-study's pairs share readers and cases, so the MRMC analysis is the primary inference.
    """
    before = np.asarray(correct_unaided, dtype=bool)
    after = np.asarray(correct_aided, dtype=bool)
    if before.shape != after.shape or before.ndim != 1:
        raise ValueError(f"need two 1-D arrays of equal length; got {before.shape} and {after.shape}")
    table = np.array(
        [
            [np.sum(before & after), np.sum(before & ~after)],
            [np.sum(~before & after), np.sum(~before & ~after)],
        ]
    )
    unaided_only, aided_only = int(table[0, 1]), int(table[1, 0])
    discordant = unaided_only + aided_only
    if discordant == 0:
        raise ValueError(
            "no discordant pair: aided and unaided correctness agree everywhere, nothing to test"
        )
    use_exact = discordant < 25 if exact is None else exact
    result = mcnemar(table, exact=use_exact, correction=correction)
    # Exact conditional interval: the aided-only share of discordant pairs is binomial; OR = p / (1 − p).
    low, high = proportion_confint(aided_only, discordant, alpha=1.0 - confidence, method="beta")
    odds = [p / (1.0 - p) if p < 1.0 else math.inf for p in (aided_only / discordant, low, high)]
    return McNemarResult(
        n_pairs=len(before),
        both_correct=int(table[0, 0]),
        unaided_only=unaided_only,
        aided_only=aided_only,
        both_wrong=int(table[1, 1]),
        statistic=float(result.statistic),
        p_value=float(result.pvalue),
        exact=use_exact,
        odds_ratio=Estimate(*odds, n_patients=n_patients, n_boot=0),
    )


def paired_correctness(reads: pl.DataFrame, confidence: float = 0.95) -> McNemarResult:
    """McNemar's test on per-(reader, case) correctness, unaided vs aided."""
    _check_reads(reads)
    pairs = _pairs(reads)
    unaided = pairs["truth_subtype"] == pairs["diagnosis"]
    aided = pairs["truth_subtype"] == pairs["diagnosis_aided"]
    return mcnemar_test(
        unaided.to_numpy(), aided.to_numpy(), confidence=confidence, n_patients=_n_patients(pairs)
    )


@dataclass(frozen=True)
class ReadingTime:
    """Reading time (seconds) per (reader, case) pair, unaided vs aided.

    Medians per session; median_ratio: median over pairs of aided / unaided time; rank_biserial: the
    matched-pairs rank-biserial correlation of aided − unaided (−1: every aided read faster, +1: slower);
    intervals from the patient bootstrap. statistic, p_value: Wilcoxon signed-rank test (two-sided).
    """

    n_pairs: int
    unaided_median_s: Estimate
    aided_median_s: Estimate
    median_ratio: Estimate
    rank_biserial: Estimate
    statistic: float
    p_value: float


def rank_biserial(differences: npt.ArrayLike) -> float:
    """Matched-pairs rank-biserial correlation (Kerby 2014): (T+ − T−) / (T+ + T−), zero differences dropped.

    scipy's ``wilcoxon`` gives the test but no effect size; this is its standard companion, written here.
    NaN when every difference is zero.
    """
    d = np.asarray(differences, dtype=float)
    d = d[d != 0]
    if not d.size:
        return math.nan
    ranks = stats.rankdata(np.abs(d))
    return float((ranks[d > 0].sum() - ranks[d < 0].sum()) / ranks.sum())


def reading_time(
    reads: pl.DataFrame, *, n_boot: int = 1000, seed: int = 0, confidence: float = 0.95
) -> ReadingTime:
    """Wilcoxon signed-rank test on paired reading times with medians, median ratio and rank-biserial."""
    _check_reads(reads)
    pairs = _pairs(reads)
    unaided = pairs["reading_time_s"].to_numpy()
    aided = pairs["reading_time_s_aided"].to_numpy()
    if not (np.all(unaided > 0) and np.all(aided > 0)):
        raise ValueError(
            "reading_time_s must be positive seconds; fix or drop reads with a zero/negative time"
        )
    patients = pairs["patient"].to_numpy()
    test = stats.wilcoxon(aided, unaided)

    def boot(metric: Callable[..., float]) -> Estimate:
        return patient_bootstrap(
            metric, patients, unaided, aided, n_boot=n_boot, seed=seed, confidence=confidence
        )

    return ReadingTime(
        n_pairs=len(pairs),
        unaided_median_s=boot(lambda u, a: float(np.median(u))),
        aided_median_s=boot(lambda u, a: float(np.median(a))),
        median_ratio=boot(lambda u, a: float(np.median(a / u))),
        rank_biserial=boot(lambda u, a: rank_biserial(a - u)),
        statistic=float(test.statistic),
        p_value=float(test.pvalue),
    )


# --- Automation bias ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AutomationBias:
    """Aided reads shown a wrong suggestion, for one reader group.

    adoption: share of them whose diagnosis equals the wrong suggestion; adoption_among_errors: the same
    share among those of them the reader got wrong (None when there is none). Patient bootstrap intervals.
    """

    group: str
    n_reads: int
    n_errors: int
    adoption: Estimate
    adoption_among_errors: Estimate | None


def automation_bias(
    reads: pl.DataFrame, *, n_boot: int = 1000, seed: int = 0, confidence: float = 0.95
) -> tuple[AutomationBias, ...]:
    """Adoption of wrong model suggestions, for all readers and per seniority; groups without one are left out."""
    _check_reads(reads)
    misled = reads.filter(
        (pl.col("session") == "aided") & (pl.col("model_suggestion") != pl.col("truth_subtype"))
    )
    out = []
    groups = [("all", misled)] + [
        (f"seniority={level}", misled.filter(pl.col("seniority") == level))
        for level in _levels(reads, "seniority")
    ]
    for group, rows in groups:
        if rows.is_empty():
            continue
        adopted = (rows["diagnosis"] == rows["model_suggestion"]).to_numpy()
        wrong = (rows["diagnosis"] != rows["truth_subtype"]).to_numpy()
        patients = rows["patient"].to_numpy()
        adoption = patient_bootstrap(
            _share, patients, adopted, n_boot=n_boot, seed=seed, confidence=confidence
        )
        among_errors = (
            patient_bootstrap(
                _share, patients[wrong], adopted[wrong], n_boot=n_boot, seed=seed, confidence=confidence
            )
            if wrong.any()
            else None
        )
        out.append(AutomationBias(group, len(rows), int(wrong.sum()), adoption, among_errors))
    return tuple(out)


# --- The model against the doctors -------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelVsReaders:
    """The model's own row beside one reader group, on the same held-out cases read unaided.

    Accuracy: subtype correct (the model's ``predicted_subtype``; the readers' mean over their reads).
    AUC: abnormal vs normal (the model's ``abnormality_probability``; the readers' mean per-reader AUC of
    ``abnormality_rating``), None when those cases lack a normal or an abnormal study. *_difference: model
    minus readers. Intervals: patient bootstrap over the cases (readers fixed), the same resamples for all.
    simulated: the group's reads are simulated (``simulated`` column), not real doctors.
    """

    group: str
    simulated: bool
    n_readers: int
    n_cases: int
    readers_accuracy: Estimate
    model_accuracy: Estimate
    accuracy_difference: Estimate
    readers_auc: Estimate | None
    model_auc: Estimate | None
    auc_difference: Estimate | None


def _case_matrix(reads: pl.DataFrame, column: str, cases: Sequence[str]) -> np.ndarray:
    """(cases, readers) float matrix of ``column``; raises unless every reader read every case once."""
    wide = pl.DataFrame({"accession": list(cases)}).join(
        reads.pivot(on="reader_id", index="accession", values=column), on="accession", how="left"
    )
    matrix = wide.drop("accession").to_numpy().astype(float)
    if np.isnan(matrix).any():
        raise ValueError(
            "some reader did not read some held-out case unaided: the comparison needs all of them"
        )
    return matrix


def model_vs_readers(
    reads: pl.DataFrame,
    model_predictions: pl.DataFrame,
    *,
    n_boot: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> tuple[ModelVsReaders, ...]:
    """Doctors vs the model on cases held out from the model's training: all readers and each subgroup.

    ``model_predictions``: one row per held-out study with ``accession`` (pseudonymised, as in the reads),
    ``predicted_subtype`` and ``abnormality_probability`` (probability in [0, 1] that the study is not
    normal, e.g. 1 − P(category normal)). Reads are restricted to those cases and to the unaided session.
    """
    _check_reads(reads)
    missing = [c for c in PREDICTION_COLUMNS if c not in model_predictions.columns]
    if missing:
        raise ValueError(f"model_predictions lacks {missing}; it needs {list(PREDICTION_COLUMNS)}")
    if model_predictions["accession"].is_duplicated().any():
        raise ValueError("model_predictions has several rows for one accession: one prediction per study")
    probability = model_predictions["abnormality_probability"]
    if probability.is_null().any() or not probability.is_between(0.0, 1.0).all():
        raise ValueError("abnormality_probability must be a probability in [0, 1] for every study")
    held_out = reads.filter(
        (pl.col("session") == "unaided") & pl.col("accession").is_in(model_predictions["accession"].implode())
    )
    if held_out.is_empty():
        raise ValueError(
            "no read is of a predicted study: predictions must use the reader table's (pseudonymised) accessions"
        )
    held_out = held_out.with_columns(
        (pl.col("diagnosis") == pl.col("truth_subtype")).alias("_correct"),
        pl.Series("_rating", abnormality_rating(held_out["diagnosis"], held_out["confidence"])),
    )
    cases = (
        held_out.select("accession", "patient", "truth_category", "truth_subtype")
        .unique()
        .sort("accession")
        .join(model_predictions.select(PREDICTION_COLUMNS), on="accession", how="left")
    )
    if cases["accession"].is_duplicated().any():
        raise ValueError("an accession has two patients or truths in the reads: one reference per study")
    patients = cases["patient"].to_numpy()
    abnormal = (cases["truth_category"] != NORMAL).to_numpy()
    model_correct = (cases["predicted_subtype"] == cases["truth_subtype"]).to_numpy()
    model_prob = cases["abnormality_probability"].to_numpy()
    case_ids = cases["accession"].to_list()
    has_auc = 0 < abnormal.sum() < len(abnormal)

    def boot(metric: Callable[..., float], *arrays: np.ndarray) -> Estimate:
        return patient_bootstrap(metric, patients, *arrays, n_boot=n_boot, seed=seed, confidence=confidence)

    model_accuracy = boot(_share, model_correct)
    model_auc = boot(lambda t, p: float(wilcoxon_auc(t, p)), abnormal, model_prob) if has_auc else None
    out = []
    for group, readers in _readers_by_group(held_out).items():
        rows = held_out.filter(pl.col("reader_id").is_in(readers))
        correct = _case_matrix(rows, "_correct", case_ids)
        rating = _case_matrix(rows, "_rating", case_ids)
        auc = (
            (
                boot(lambda t, r: float(wilcoxon_auc(t, r).mean()), abnormal, rating),
                boot(
                    lambda t, p, r: float(wilcoxon_auc(t, p)) - float(wilcoxon_auc(t, r).mean()),
                    abnormal,
                    model_prob,
                    rating,
                ),
            )
            if has_auc
            else (None, None)
        )
        out.append(
            ModelVsReaders(
                group=group,
                simulated=bool(rows["simulated"].all()),
                n_readers=len(readers),
                n_cases=len(case_ids),
                readers_accuracy=boot(lambda c: float(c.mean()), correct),
                model_accuracy=model_accuracy,
                accuracy_difference=boot(lambda m, c: float(m.mean() - c.mean()), model_correct, correct),
                readers_auc=auc[0],
                model_auc=model_auc,
                auc_difference=auc[1],
            )
        )
    return tuple(out)


# --- Everything together -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReaderStudyResult:
    """Every reader-study analysis of one table; ``to_json`` gives plain numbers."""

    n_readers: int
    n_cases: int
    n_patients: int
    simulated: bool
    assistance: tuple[AssistanceEffect, ...]
    interactions: tuple[SubgroupInteraction, ...]
    detection: tuple[GroupRates, ...]
    mcnemar: McNemarResult
    reading_time: ReadingTime
    automation_bias: tuple[AutomationBias, ...]
    model_vs_readers: tuple[ModelVsReaders, ...]

    def to_json(self) -> dict[str, object]:
        """A JSON-able dict: every estimate as {value, low, high, n_patients, n_boot, ...}; p-values, dfs
        and counts as plain numbers; non-finite numbers as None. The ORH tables (``analysis``) stay out."""
        return cast(dict[str, object], _plain(self))


def _plain(value: object) -> object:
    if is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: _plain(getattr(value, f.name))
            for f in fields(value)
            if not isinstance(getattr(value, f.name), ORHResult)
        }
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    return value


def analyse_reader_study(
    reads: pl.DataFrame,
    model_predictions: pl.DataFrame | None = None,
    *,
    n_boot: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
    rare_subtypes: Collection[str] = RARE_SUBTYPES,
    category_of: Mapping[str, str] = CATEGORY_OF,
) -> ReaderStudyResult:
    """Every analysis of a reader-study table; ``model_predictions`` (see ``model_vs_readers``) is optional.

    Deterministic under ``seed`` (every bootstrap uses it). MRMC needs at least two readers and each truth
    class (normal, abnormal) in at least two cases.
    """
    _check_reads(reads)
    foms = _reader_foms(reads)
    groups = _readers_by_group(reads)
    n_patients = _n_patients(reads)
    return ReaderStudyResult(
        n_readers=len(groups["all"]),
        n_cases=reads["accession"].n_unique(),
        n_patients=n_patients,
        simulated=bool(reads["simulated"].all()),
        assistance=_assistance_effects(foms, groups, n_patients, confidence),
        interactions=_interactions(foms, groups, n_patients, confidence),
        detection=detection_rates(
            reads,
            rare_subtypes=rare_subtypes,
            category_of=category_of,
            n_boot=n_boot,
            seed=seed,
            confidence=confidence,
        ),
        mcnemar=paired_correctness(reads, confidence),
        reading_time=reading_time(reads, n_boot=n_boot, seed=seed, confidence=confidence),
        automation_bias=automation_bias(reads, n_boot=n_boot, seed=seed, confidence=confidence),
        model_vs_readers=()
        if model_predictions is None
        else model_vs_readers(reads, model_predictions, n_boot=n_boot, seed=seed, confidence=confidence),
    )
