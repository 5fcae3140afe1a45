"""Stage-2 report metrics on held-out patients, each an `Estimate` with a patient-bootstrap 95 % CI.

N-gram overlap (character BLEU-4, ROUGE-L) is reported because the literature does, but it is weak for
clinical truth: a report with the opposite side keeps a BLEU above 80 and a default-tokenised ROUGE-L of 1
(tests/evaluation/test_text.py). Clinical accuracy therefore structures each generated report with the
project's structurer (`brainfm.reports.structure_report`) and compares category, subtype, side, sites and
size with the labels (docs/SCHEMAS.md labels.parquet); QA answers are compared the same way. Retrieval recall
and two baselines (the most frequent and the nearest training report) complete the table of the docs.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import polars as pl
from rouge_score import rouge_scorer, tokenizers
from sacrebleu.metrics import BLEU

from brainfm.evaluation.bootstrap import Estimate, defined_mean, patient_bootstrap
from brainfm.evaluation.classification import macro_f1
from brainfm.grounding.evidence import SizeTolerance
from brainfm.grounding.guard import report_subtype
from brainfm.reports.instructions import CATEGORY_ZH
from brainfm.reports.locations import find_sites, laterality
from brainfm.reports.scoring import COHORT_SITES
from brainfm.reports.sizes import sizes_mm
from brainfm.reports.structure import StructuredReport, structure_report

QATask = Literal["qa_location", "qa_size", "qa_category"]

# Between a generated and a labelled size: ±5 mm or ±20 %, whichever is larger.
REPORT_SIZE_TOLERANCE = SizeTolerance(relative=0.2, absolute_mm=5.0)
# Subtypes whose labelled size the structurer never reads: tonsillar descent is skipped by design
# (brainfm/reports/sizes.py), so size agreement is scored without them.
SIZE_NOT_READ = frozenset({"chiari"})
LABEL_COLUMNS = ("patient", "category", "subtype", "laterality", "locations", "largest_size_mm")
_CATEGORY_NAMES = {name: category for category, name in CATEGORY_ZH.items()}
# effective_order only changes sentence scores and silences sacrebleu's warning; the counts are the same.
_BLEU = BLEU(tokenize="zh", effective_order=True)


class CharTokenizer(tokenizers.Tokenizer):
    """Every non-space character is a token. rouge-score's default tokenizer keeps only [a-z0-9] runs, so
    Chinese text vanishes from its scores."""

    def tokenize(self, text: str) -> list[str]:
        return [c for c in text if not c.isspace()]


_ROUGE = rouge_scorer.RougeScorer(["rougeL"], tokenizer=CharTokenizer())


def _pairs(hyps: Sequence[str], refs: Sequence[str]) -> tuple[list[str], list[str]]:
    if len(hyps) != len(refs) or not hyps:
        raise ValueError(
            f"need one reference per hypothesis and at least one pair, got {len(hyps)} and {len(refs)}"
        )
    return [str(h) for h in hyps], [str(r) for r in refs]


def _estimate(values: npt.ArrayLike, patients: npt.ArrayLike, n_boot: int, seed: int) -> Estimate:
    return patient_bootstrap(
        defined_mean, patients, np.asarray(values, dtype=float), n_boot=n_boot, seed=seed
    )


def _corpus_bleu(statistics: np.ndarray) -> float:
    """BLEU-4 of summed sentence rows [hypothesis length, reference length, matches 1–4, n-grams 1–4]."""
    total = statistics.sum(axis=0).tolist()
    return float(BLEU.compute_bleu(total[2:6], total[6:10], total[0], total[1], smooth_method="exp").score)


def char_bleu4(
    hyps: Sequence[str], refs: Sequence[str], patients: npt.ArrayLike, *, n_boot: int = 1000, seed: int = 0
) -> Estimate:
    """Corpus BLEU-4 (0–100) over Chinese characters (sacrebleu ``tokenize="zh"``; its default tokenizer
    scores Chinese 0). Each replicate sums the resampled sentences' n-gram counts, which equals
    ``sacrebleu.corpus_bleu`` on them (same smoothing) without re-tokenising."""
    hyps, refs = _pairs(hyps, refs)
    statistics = []
    for hyp, ref in zip(hyps, refs, strict=True):
        score = _BLEU.sentence_score(hyp, [ref])
        statistics.append([score.sys_len, score.ref_len, *score.counts, *score.totals])
    return patient_bootstrap(_corpus_bleu, patients, np.asarray(statistics), n_boot=n_boot, seed=seed)


def rouge_l_f(hyp: str, ref: str) -> float:
    """ROUGE-L F-measure of one pair over characters (longest common subsequence)."""
    return float(_ROUGE.score(ref, hyp)["rougeL"].fmeasure)


def rouge_l(
    hyps: Sequence[str], refs: Sequence[str], patients: npt.ArrayLike, *, n_boot: int = 1000, seed: int = 0
) -> Estimate:
    """Mean ROUGE-L F (0–1) over pairs, on characters (`CharTokenizer`)."""
    hyps, refs = _pairs(hyps, refs)
    return _estimate([rouge_l_f(h, r) for h, r in zip(hyps, refs, strict=True)], patients, n_boot, seed)


@dataclass(frozen=True)
class _Truth:
    category: str
    subtype: str
    side: str | None
    sites: frozenset[str]
    size_mm: float | None


def _truth(row: Mapping[str, Any]) -> _Truth:
    side = row["laterality"]
    return _Truth(
        category=row["category"],
        subtype=row["subtype"],
        side=None if side in (None, "none") else side,
        sites=frozenset(COHORT_SITES.get(code, code) for code in row["locations"] or ()),
        size_mm=None if row["subtype"] in SIZE_NOT_READ else row["largest_size_mm"],
    )


def _clinical_rows(report: StructuredReport, truth: _Truth, tolerance: SizeTolerance) -> dict[str, float]:
    """Per-study scores (NaN where a score does not apply to the study) and site counts."""
    nan = float("nan")
    normal_truth = truth.category == "normal"
    normal_report = report.categories == ["normal"]
    sites = set(report.locations)
    size, labelled_size = report.largest_size_mm, truth.size_mm
    size_agrees = size is not None and labelled_size is not None and tolerance.agrees(size, labelled_size)
    return {
        "category_correct": float(report.categories[0] == truth.category),
        "subtype_correct": float(report_subtype(report) == truth.subtype),
        "laterality_correct": nan if normal_truth else float(report.laterality == truth.side),
        "site_tp": len(sites & truth.sites),
        "site_fp": len(sites - truth.sites),
        "site_fn": len(truth.sites - sites),
        "size_agrees": nan if labelled_size is None else float(size_agrees),
        "omitted": nan if normal_truth else float(normal_report),
        "hallucinated": float(not normal_report) if normal_truth else nan,
    }


def _micro_f1(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> float:
    denominator = 2 * tp.sum() + fp.sum() + fn.sum()
    return float(2 * tp.sum() / denominator) if denominator else float("nan")


def clinical_accuracy(
    generated_reports: Mapping[str, str],
    labels: pl.DataFrame,
    *,
    key: str = "study",
    size_tolerance: SizeTolerance = REPORT_SIZE_TOLERANCE,
    n_boot: int = 1000,
    seed: int = 0,
) -> dict[str, Estimate]:
    """Clinical accuracy of generated reports (``key`` value → text) against ``labels`` (one row per held-out
    study, with ``key`` and `LABEL_COLUMNS`; docs/SCHEMAS.md labels.parquet).

    Each report is structured; keys of the result:
    ``category_accuracy`` and ``category_macro_f1`` (the report's primary category, all studies);
    ``subtype_accuracy`` (the subtype the report names, `report_subtype`; naming none is wrong);
    ``laterality_accuracy`` (abnormal studies); ``site_f1`` (micro F1 of site sets, all studies, so sites on
    a normal study are false positives); ``size_agreement`` (studies with a labelled size, Chiari excepted:
    within ``size_tolerance``, a missing size disagrees); ``omission_rate`` (abnormal studies with a normal
    report); ``hallucination_rate`` (normal studies with an abnormal report). A key is left out when the
    held-out set has no study it applies to.
    """
    missing_columns = [c for c in (key, *LABEL_COLUMNS) if c not in labels.columns]
    if missing_columns:
        raise ValueError(
            f"labels lack columns {missing_columns}: pass the pseudonymised labels table's test rows"
        )
    keys = labels[key].to_list()
    missing = [k for k in keys if k not in generated_reports]
    if missing:
        raise ValueError(
            f"{len(missing)} of {len(keys)} labelled studies have no generated report (first: {missing[0]})"
        )
    reports = [structure_report(generated_reports[k]) for k in keys]
    rows = [
        _clinical_rows(report, _truth(row), size_tolerance)
        for report, row in zip(reports, labels.iter_rows(named=True), strict=True)
    ]
    column = {name: np.array([r[name] for r in rows], dtype=float) for name in rows[0]}
    patients = labels["patient"].to_numpy()
    out = {
        "category_accuracy": _estimate(column["category_correct"], patients, n_boot, seed),
        "category_macro_f1": patient_bootstrap(
            macro_f1,
            patients,
            labels["category"].to_numpy(),
            np.array([r.categories[0] for r in reports]),
            n_boot=n_boot,
            seed=seed,
        ),
        "subtype_accuracy": _estimate(column["subtype_correct"], patients, n_boot, seed),
    }
    site_counts = (column["site_tp"], column["site_fp"], column["site_fn"])
    if not np.isnan(_micro_f1(*site_counts)):  # undefined when no study, labelled or reported, has a site
        out["site_f1"] = patient_bootstrap(_micro_f1, patients, *site_counts, n_boot=n_boot, seed=seed)
    for name, source in (
        ("laterality_accuracy", "laterality_correct"),
        ("size_agreement", "size_agrees"),
        ("omission_rate", "omitted"),
        ("hallucination_rate", "hallucinated"),
    ):
        if not np.isnan(column[source]).all():
            out[name] = _estimate(column[source], patients, n_boot, seed)
    return out


def _answer_category(text: str) -> str:
    """The category an answer names: the first category phrase of the instruction data (CATEGORY_ZH), else
    the primary category the structurer reads (考虑脑梗死 → cerebrovascular)."""
    found = [(text.find(name), category) for name, category in _CATEGORY_NAMES.items() if name in text]
    return min(found)[1] if found else structure_report(text).categories[0]


def _answer_location(text: str) -> tuple[frozenset[str], str | None]:
    sites = find_sites(text)
    return frozenset(s.location for s in sites if s.location), laterality(sites)


def _answer_size_mm(text: str) -> float | None:
    found = sizes_mm(text)
    return max(found) if found else None


def _qa_correct(answer: str, reference: str, task: QATask, tolerance: SizeTolerance) -> float:
    if task == "qa_category":
        return float(_answer_category(answer) == _answer_category(reference))
    if task == "qa_location":
        return float(_answer_location(answer) == _answer_location(reference))
    expected = _answer_size_mm(reference)
    if expected is None:
        raise ValueError("a qa_size reference states no size in mm or cm: check the reference answers")
    given = _answer_size_mm(answer)
    return float(given is not None and tolerance.agrees(given, expected))


def qa_accuracy(
    answers: Sequence[str],
    references: Sequence[str],
    task: QATask,
    patients: npt.ArrayLike,
    *,
    size_tolerance: SizeTolerance = REPORT_SIZE_TOLERANCE,
    n_boot: int = 1000,
    seed: int = 0,
) -> Estimate:
    """Share of correct answers to one QA task (`brainfm.reports.instructions` phrasing), compared as
    structures: ``qa_location`` the same site set and side; ``qa_size`` the largest size within
    ``size_tolerance``; ``qa_category`` the same (first-named) category."""
    if task not in ("qa_location", "qa_size", "qa_category"):
        raise ValueError(f"task must be qa_location, qa_size or qa_category, got {task!r}")
    answers, references = _pairs(answers, references)
    correct = [_qa_correct(a, r, task, size_tolerance) for a, r in zip(answers, references, strict=True)]
    return _estimate(correct, patients, n_boot, seed)


def retrieval_recall(
    similarity: npt.ArrayLike, k: int, patients: npt.ArrayLike, *, n_boot: int = 1000, seed: int = 0
) -> Estimate:
    """Image→text recall@k: ``similarity[i, j]`` scores image i against text j, text i is image i's own; a
    hit when fewer than k other texts score at least as high (ties count against the model)."""
    scores = np.asarray(similarity, dtype=float)
    if scores.ndim != 2 or scores.shape[0] != scores.shape[1] or not np.isfinite(scores).all():
        raise ValueError(
            f"similarity must be a finite square (images × texts) matrix, got shape {scores.shape}"
        )
    if k < 1:
        raise ValueError(f"k must be at least 1 (R@1, R@5), got {k}")
    own = np.diag(scores)
    rivals = (scores >= own[:, None]).sum(axis=1) - 1  # other texts scoring at least the own text's score
    return _estimate(rivals < k, patients, n_boot, seed)


def _structure_key(report: StructuredReport) -> tuple[Any, ...]:
    return tuple(report.categories), report.laterality, tuple(sorted(report.locations))


def most_frequent_report(train_reports: Sequence[str]) -> str:
    """The most-frequent baseline: among training reports (de-identified, as in the image-report pairs) with
    the most common structure (categories, side, sites), the most common text (whitespace ignored; ties go
    to the earliest), returned verbatim."""
    if not train_reports:
        raise ValueError("most_frequent_report needs at least one training report")
    keys = [_structure_key(structure_report(text)) for text in train_reports]
    modal = Counter(keys).most_common(1)[0][0]  # most_common keeps first-seen order among ties
    group = [text for text, key in zip(train_reports, keys, strict=True) if key == modal]
    normalised = Counter("".join(text.split()) for text in group).most_common(1)[0][0]
    return next(text for text in group if "".join(text.split()) == normalised)


def _unit_rows(embeddings: npt.ArrayLike, name: str) -> np.ndarray:
    rows = np.asarray(embeddings, dtype=float)
    if rows.ndim != 2 or not np.isfinite(rows).all():
        raise ValueError(f"{name} must be a finite (n, dim) matrix, got shape {rows.shape}")
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    if (norms == 0).any():
        raise ValueError(f"{name} has all-zero rows: cosine similarity is undefined for them")
    return rows / norms


def nearest_report(
    train_embeddings: npt.ArrayLike, train_reports: Sequence[str], test_embeddings: npt.ArrayLike
) -> list[str]:
    """The nearest-neighbour baseline: per test image embedding, the report of the training image with the
    highest cosine similarity (ties go to the earliest)."""
    train = _unit_rows(train_embeddings, "train_embeddings")
    test = _unit_rows(test_embeddings, "test_embeddings")
    if len(train) != len(train_reports) or train.shape[1] != test.shape[1]:
        raise ValueError(
            f"need one training report per training embedding ({len(train)} vs {len(train_reports)}) and the "
            f"same embedding size on both sides ({train.shape[1]} vs {test.shape[1]})"
        )
    return [train_reports[i] for i in np.argmax(test @ train.T, axis=1)]


@dataclass(frozen=True)
class MetricRow:
    """One cell of the report-metrics table: a method (model or baseline), a metric and its estimate."""

    method: str
    metric: str
    estimate: Estimate


def report_metrics_table(
    generated: Mapping[str, Mapping[str, str]],
    references: Mapping[str, str],
    labels: pl.DataFrame,
    *,
    similarities: Mapping[str, npt.ArrayLike] | None = None,
    key: str = "study",
    n_boot: int = 1000,
    seed: int = 0,
) -> list[MetricRow]:
    """Rows for the docs table: per method (``generated``: method → ``key`` value → report), character
    BLEU-4 and ROUGE-L against the ``references`` and every `clinical_accuracy` metric on the studies of
    ``labels``; per entry of ``similarities`` (method → images × texts matrix in ``labels`` row order), R@1
    and R@5. All with the same seed, hence the same patient resamples. Passing the reference reports as a
    method gives the ceiling the structurer allows: where report wording and label conventions differ
    (硬膜下 named as a site, no side for 小脑扁桃体, 海马 without 颞叶) even the reference loses a little."""
    keys = labels[key].to_list()
    patients = labels["patient"].to_numpy()
    missing = [k for k in keys if k not in references]
    if missing:
        raise ValueError(f"{len(missing)} labelled studies have no reference report (first: {missing[0]})")
    refs = [references[k] for k in keys]
    rows: list[MetricRow] = []
    for method, reports in generated.items():
        clinical = clinical_accuracy(reports, labels, key=key, n_boot=n_boot, seed=seed)
        hyps = [reports[k] for k in keys]
        rows += [
            MetricRow(method, "char_bleu4", char_bleu4(hyps, refs, patients, n_boot=n_boot, seed=seed)),
            MetricRow(method, "rouge_l", rouge_l(hyps, refs, patients, n_boot=n_boot, seed=seed)),
            *(MetricRow(method, name, estimate) for name, estimate in clinical.items()),
        ]
    for method, similarity in (similarities or {}).items():
        rows += [
            MetricRow(
                method, f"recall_at_{k}", retrieval_recall(similarity, k, patients, n_boot=n_boot, seed=seed)
            )
            for k in (1, 5)
        ]
    return rows
