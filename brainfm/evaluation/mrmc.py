"""Multi-reader multi-case (MRMC) analysis: Obuchowski–Rockette with Hillis (2007) degrees of freedom.

Every reader reads every case in every modality (a fully crossed design). A figure of merit (FOM: ROC AUC,
proportion correct, ...) is computed per reader × modality; its case-sampling covariance is estimated by
the leave-one-case-out jackknife, and the Obuchowski–Rockette ANOVA with Hillis' denominator degrees of
freedom tests modality differences treating readers and cases as random (Analysis 1), or readers as fixed
and cases random (Analysis 2), as the Iowa OR-DBM MRMC software does with jackknife covariance;
``tests/evaluation/test_mrmc.py`` reproduces its published Van Dyke output.

No maintained Python package implements MRMC analysis (the maintained implementations are the R packages
RJafroc and MRMCaov and the Iowa OR-DBM MRMC program), so the method is written here on numpy/scipy.
References: Obuchowski & Rockette, Commun Stat Simul Comput 1995;24:285–308;
Hillis, Stat Med 2007;26:596–619; Hillis et al., Acad Radiol 2008;15:647–661.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path

import numpy as np
import numpy.typing as npt
from scipy import stats

FigureOfMerit = Callable[[np.ndarray, np.ndarray], np.ndarray]
"""``fom(truth, scores)``: truth (n_cases,), scores (n_cases, k) -> one figure of merit per column, (k,)."""


def wilcoxon_auc(truth: npt.ArrayLike, scores: npt.ArrayLike) -> np.ndarray:
    """Trapezoidal (Wilcoxon–Mann–Whitney) ROC AUC of each column of ``scores``; ties count one half.

    ``truth`` is True (or 1) for an abnormal case; a larger score means more suspicion of abnormality.
    Equal to ``sklearn.metrics.roc_auc_score`` column by column, but vectorised over columns (the
    jackknife and the bootstrap call it thousands of times). NaN where a class is absent.
    """
    positive = np.asarray(truth).astype(bool)
    values = np.asarray(scores, dtype=float)
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        return np.full(values.shape[1:], np.nan)
    # Mann–Whitney U from the rank sum of the abnormal cases (midranks for ties), over the number of pairs.
    # scipy's mannwhitneyu gives the same U but also p-values, about 7× slower; the jackknife and the
    # bootstrap call this thousands of times.
    rank_sum = stats.rankdata(values, axis=0)[positive].sum(axis=0)
    return np.asarray((rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg), dtype=float)


def proportion_correct(truth: npt.ArrayLike, scores: npt.ArrayLike) -> np.ndarray:
    """Share of cases where each column of ``scores`` (a reader's call) equals ``truth`` (any labels)."""
    labels = np.asarray(truth)
    calls = np.asarray(scores)
    return (calls == labels.reshape((-1,) + (1,) * (calls.ndim - 1))).mean(axis=0)


@dataclass(frozen=True)
class ReaderFoms:
    """Figure of merit of every reader in every modality, with its leave-one-case-out jackknife.

    fom: (modalities, readers). jackknife: (modalities, readers, cases), entry k computed without case k.
    """

    modalities: tuple[str, ...]
    readers: tuple[str, ...]
    cases: tuple[str, ...]
    fom: np.ndarray
    jackknife: np.ndarray

    def covariance(self) -> np.ndarray:
        """Jackknife covariance of the FOMs, (t·r, t·r), index modality·r + reader: (c−1)/c Σ_k dev dev'."""
        flat = self.jackknife.reshape(-1, len(self.cases))
        return np.cov(flat, bias=True) * (len(self.cases) - 1)

    def select(self, readers: Sequence[str]) -> ReaderFoms:
        """The same study restricted to ``readers`` (a subgroup); the jackknife is reused, not recomputed."""
        missing = sorted(set(readers) - set(self.readers))
        if missing:
            raise ValueError(f"readers {missing} are not in this study; choose among {list(self.readers)}")
        index = [self.readers.index(r) for r in readers]
        return ReaderFoms(
            self.modalities, tuple(readers), self.cases, self.fom[:, index], self.jackknife[:, index]
        )


def reader_foms(
    modality: npt.ArrayLike,
    reader: npt.ArrayLike,
    case: npt.ArrayLike,
    truth: npt.ArrayLike,
    score: npt.ArrayLike,
    fom: FigureOfMerit = wilcoxon_auc,
    modalities: Sequence[str] | None = None,
) -> ReaderFoms:
    """FOMs and their jackknife from a long table: one row per read (modality, reader, case, truth, score).

    ``modalities`` fixes their order (differences are earlier minus later); by default sorted. Readers and
    cases are sorted. Raises ValueError unless every reader reads every case exactly once per modality and
    each case has one truth.
    """
    columns = {
        "modality": np.asarray(modality).astype(str).tolist(),
        "reader": np.asarray(reader).astype(str).tolist(),
        "case": np.asarray(case).astype(str).tolist(),
    }
    truths, scores = np.asarray(truth), np.asarray(score)
    n_rows = len(columns["case"])
    lengths = {name: len(v) for name, v in columns.items()} | {"truth": len(truths), "score": len(scores)}
    if set(lengths.values()) != {n_rows}:
        raise ValueError(f"every input needs one entry per read; got lengths {lengths}")
    order = (
        tuple(str(m) for m in modalities)
        if modalities is not None
        else tuple(sorted(set(columns["modality"])))
    )
    if set(order) != set(columns["modality"]) or len(set(order)) != len(order):
        raise ValueError(
            f"modalities {list(order)} must list each modality of the table once: "
            f"{sorted(set(columns['modality']))}"
        )
    readers = tuple(sorted(set(columns["reader"])))
    cases = tuple(sorted(set(columns["case"])))
    t, r, c = len(order), len(readers), len(cases)
    if n_rows != t * r * c:
        raise ValueError(
            f"{n_rows} reads for {t} modalities × {r} readers × {c} cases: MRMC needs every reader to read "
            "every case once in every modality; drop incomplete readers or cases first"
        )
    i, j, k = (
        np.array([position[v] for v in columns[name]], dtype=int)
        for name, position in (
            ("modality", {m: n for n, m in enumerate(order)}),
            ("reader", {m: n for n, m in enumerate(readers)}),
            ("case", {m: n for n, m in enumerate(cases)}),
        )
    )
    filled = np.zeros((t, r, c), dtype=int)
    np.add.at(filled, (i, j, k), 1)
    if not (filled == 1).all():
        raise ValueError(
            "some (modality, reader, case) is read twice and another never: remove duplicate reads"
        )
    case_truth = np.empty(c, dtype=truths.dtype)
    case_truth[k] = truths
    if not (case_truth[k] == truths).all():
        raise ValueError("a case has different truths in different reads: the reference standard is per case")
    grid = np.empty((t, r, c), dtype=scores.dtype)
    grid[i, j, k] = scores
    columns_by_case = grid.reshape(t * r, c).T  # (cases, modality·reader)
    value = np.asarray(fom(case_truth, columns_by_case), dtype=float).reshape(t, r)
    keep = ~np.eye(c, dtype=bool)
    jackknife = np.stack(
        [np.asarray(fom(case_truth[keep[m]], columns_by_case[keep[m]]), dtype=float) for m in range(c)],
        axis=-1,
    ).reshape(t, r, c)
    if not (np.isfinite(value).all() and np.isfinite(jackknife).all()):
        raise ValueError(
            "the figure of merit is undefined for some reader or jackknife sample (e.g. an AUC with one "
            "class): each truth class needs at least two cases"
        )
    return ReaderFoms(order, readers, cases, value, jackknife)


@dataclass(frozen=True)
class Comparison:
    """Mean FOM of ``modality_a`` minus that of ``modality_b``, with its interval and test.

    df is inf for the fixed-reader analysis (normal approximation); p_value is two-sided.
    """

    modality_a: str
    modality_b: str
    value: float
    std_error: float
    low: float
    high: float
    df: float
    p_value: float


@dataclass(frozen=True)
class ModalityInterval:
    """Mean FOM of one modality over readers with its random-reader, random-case interval (Hillis df)."""

    modality: str
    value: float
    std_error: float
    low: float
    high: float
    df: float


@dataclass(frozen=True)
class ORHResult:
    """Obuchowski–Rockette–Hillis analysis of one MRMC study (names as in the OR-DBM MRMC output).

    reader_fom: (modalities, readers); mean_fom: per modality. ms_*: ANOVA mean squares of the FOMs;
    var_error, cov1 (same reader, different modality), cov2 (different reader, same modality), cov3
    (different reader and modality): jackknife error covariances. Analysis 1 (random readers and cases):
    f_statistic on (ndf, ddf) with Hillis ddf, p_value, ``differences`` and ``modality_intervals``.
    Analysis 2 (fixed readers, random cases): chi-square ``fixed_readers_chi2`` on ndf, its p-value and
    ``fixed_readers_differences``.
    """

    modalities: tuple[str, ...]
    readers: tuple[str, ...]
    n_cases: int
    confidence: float
    reader_fom: np.ndarray
    mean_fom: np.ndarray
    ms_t: float
    ms_r: float
    ms_tr: float
    var_error: float
    cov1: float
    cov2: float
    cov3: float
    f_statistic: float
    ndf: int
    ddf: float
    p_value: float
    differences: tuple[Comparison, ...]
    modality_intervals: tuple[ModalityInterval, ...]
    fixed_readers_chi2: float
    fixed_readers_p: float
    fixed_readers_differences: tuple[Comparison, ...]


def _mean_where(matrix: np.ndarray, mask: np.ndarray) -> float:
    return float(matrix[mask].mean())


@np.errstate(divide="ignore", invalid="ignore")
def obuchowski_rockette(foms: ReaderFoms, confidence: float = 0.95) -> ORHResult:
    """Obuchowski–Rockette ANOVA with Hillis (2007) ddf on jackknife covariances; see ``ORHResult``.

    Needs at least two modalities and two readers. Negative Cov2 − Cov3 (or Cov2 for one modality) is
    truncated at 0, as in Hillis (2007). A degenerate study without reader or case variation (e.g. every
    reader perfect) gives infinite or NaN statistics rather than an error, so that a report still runs.
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie in (0, 1), e.g. 0.95; got {confidence}")
    theta = foms.fom
    t, r = theta.shape
    if t < 2 or r < 2:
        raise ValueError(f"an MRMC comparison needs at least 2 modalities and 2 readers; got {t} and {r}")
    cov = foms.covariance()
    modality_of = np.repeat(np.arange(t), r)
    reader_of = np.tile(np.arange(r), t)
    same_m = modality_of[:, None] == modality_of[None, :]
    same_r = reader_of[:, None] == reader_of[None, :]
    var_error = float(np.diag(cov).mean())
    cov1 = _mean_where(cov, ~same_m & same_r)
    cov2 = _mean_where(cov, same_m & ~same_r)
    cov3 = _mean_where(cov, ~same_m & ~same_r)

    mean_t, mean_r, grand = theta.mean(axis=1), theta.mean(axis=0), float(theta.mean())
    ms_t = r * float(((mean_t - grand) ** 2).sum()) / (t - 1)
    ms_r = t * float(((mean_r - grand) ** 2).sum()) / (r - 1)
    residual = theta - mean_t[:, None] - mean_r[None, :] + grand
    ms_tr = float((residual**2).sum()) / ((t - 1) * (r - 1))

    # Analysis 1: random readers, random cases.
    ndf = t - 1
    denominator = np.float64(ms_tr + r * max(cov2 - cov3, 0.0))
    f_statistic = float(ms_t / denominator)
    ddf = float(denominator**2 / (ms_tr**2 / ((t - 1) * (r - 1)))) if ms_tr > 0 else math.inf
    # scipy's F has no infinite ddf; its limit is chi-square(ndf) / ndf.
    p_value = float(
        stats.f.sf(f_statistic, ndf, ddf) if math.isfinite(ddf) else stats.chi2.sf(f_statistic * ndf, ndf)
    )
    alpha = 1.0 - confidence
    differences = _comparisons(foms.modalities, mean_t, float(np.sqrt(2.0 * denominator / r)), ddf, alpha)

    intervals = []
    for i, name in enumerate(foms.modalities):
        block = cov[np.ix_(modality_of == i, modality_of == i)]
        cov2_i = float(block[~np.eye(r, dtype=bool)].mean())
        ms_r_i = float(theta[i].var(ddof=1))
        denominator_i = np.float64(ms_r_i + r * max(cov2_i, 0.0))
        df_i = float(denominator_i**2 / (ms_r_i**2 / (r - 1))) if ms_r_i > 0 else math.inf
        se_i = float(np.sqrt(denominator_i / r))
        half = float(stats.t.ppf(1.0 - alpha / 2, df_i)) * se_i
        intervals.append(
            ModalityInterval(
                name, float(mean_t[i]), se_i, float(mean_t[i] - half), float(mean_t[i] + half), df_i
            )
        )

    # Analysis 2: fixed readers, random cases.
    denominator_fixed = np.float64(var_error - cov1 + (r - 1) * max(cov2 - cov3, 0.0))
    chi2 = float(ndf * ms_t / denominator_fixed)
    return ORHResult(
        modalities=foms.modalities,
        readers=foms.readers,
        n_cases=len(foms.cases),
        confidence=confidence,
        reader_fom=theta,
        mean_fom=mean_t,
        ms_t=ms_t,
        ms_r=ms_r,
        ms_tr=ms_tr,
        var_error=var_error,
        cov1=cov1,
        cov2=cov2,
        cov3=cov3,
        f_statistic=f_statistic,
        ndf=ndf,
        ddf=ddf,
        p_value=p_value,
        differences=differences,
        modality_intervals=tuple(intervals),
        fixed_readers_chi2=chi2,
        fixed_readers_p=float(stats.chi2.sf(chi2, ndf)),
        fixed_readers_differences=_comparisons(
            foms.modalities, mean_t, float(np.sqrt(2.0 * denominator_fixed / r)), math.inf, alpha
        ),
    )


def _comparisons(
    modalities: tuple[str, ...], means: np.ndarray, std_error: float, df: float, alpha: float
) -> tuple[Comparison, ...]:
    """Every pairwise difference (earlier minus later modality) with a t (or normal, df = inf) interval."""
    quantile = float(stats.t.ppf(1.0 - alpha / 2, df))
    out = []
    for a, b in combinations(range(len(modalities)), 2):
        value = float(means[a] - means[b])
        p = float(2.0 * stats.t.sf(abs(value) / np.float64(std_error), df))
        half = quantile * std_error
        out.append(
            Comparison(modalities[a], modalities[b], value, std_error, value - half, value + half, df, p)
        )
    return tuple(out)


def mrmc_analysis(
    modality: npt.ArrayLike,
    reader: npt.ArrayLike,
    case: npt.ArrayLike,
    truth: npt.ArrayLike,
    score: npt.ArrayLike,
    fom: FigureOfMerit = wilcoxon_auc,
    modalities: Sequence[str] | None = None,
    confidence: float = 0.95,
) -> ORHResult:
    """``obuchowski_rockette(reader_foms(...))``: the whole analysis from a long table of reads."""
    return obuchowski_rockette(reader_foms(modality, reader, case, truth, score, fom, modalities), confidence)


@dataclass(frozen=True)
class LrcStudy:
    """An ROC reader study read from a LABMRMC ``.lrc`` file, as a long table (one entry per read).

    truth: True for an abnormal case. score: the rating, oriented so that larger means more abnormal.
    """

    title: str
    modality: np.ndarray
    reader: np.ndarray
    case: np.ndarray
    truth: np.ndarray
    score: np.ndarray


def read_lrc(path: Path) -> LrcStudy:
    """Parse a LABMRMC ``.lrc`` file (the format of the Iowa OR-DBM MRMC software's examples).

    Line 1 is a title. Then one block per reader: a line with the reader id; in the first block (optionally
    in any) a line of quoted modality names and a line of one orientation letter per modality (``L``: a
    larger rating means more likely abnormal; ``S``: smaller); the normal cases' rows (one rating per
    modality, then the case id), a line ``*``; the abnormal cases' rows, a line ``*``. ``#`` ends the file.
    """
    lines = [line.strip() for line in Path(path).read_text().splitlines()]
    lines = [line for line in lines if line]
    if "#" not in lines:
        raise ValueError(f"{path} has no closing '#' line: not a LABMRMC .lrc file, or truncated")
    lines = lines[: lines.index("#")]
    names: list[str] = []
    signs = np.empty(0)
    records: list[tuple[str, str, str, bool, float]] = []
    pos = 1  # line 0 is the title
    try:
        while pos < len(lines):
            reader = lines[pos]
            pos += 1
            if lines[pos].startswith('"'):
                names = [token.strip('"') for token in lines[pos].split()]
                pos += 1
            letters = lines[pos].split()
            if names and len(letters) == len(names) and set(letters) <= {"L", "S"}:
                signs = np.array([1.0 if letter == "L" else -1.0 for letter in letters])
                pos += 1
            if len(signs) != len(names) or not names:
                raise ValueError(f"{path}: the first reader block needs modality names and L/S orientations")
            for abnormal in (False, True):
                while lines[pos] != "*":
                    *ratings, case = lines[pos].split()
                    if len(ratings) != len(names):
                        raise ValueError(
                            f"{path}: reader {reader}: row {lines[pos]!r} should hold {len(names)} ratings "
                            "and a case id"
                        )
                    oriented = signs * np.array(ratings, dtype=float)
                    records.extend((m, reader, case, abnormal, float(v)) for m, v in zip(names, oriented))
                    pos += 1
                pos += 1
    except IndexError:
        raise ValueError(f"{path}: a reader block is not closed by two '*' lines before '#'") from None
    if not records:
        raise ValueError(f"{path} holds no ratings")
    modality, reader_ids, case_ids, truth, score = (np.array(column) for column in zip(*records))
    return LrcStudy(lines[0], modality, reader_ids, case_ids, truth, score)
