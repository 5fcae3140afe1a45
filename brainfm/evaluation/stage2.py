"""Stage 2 (vision–language) on held-out patients: which records train and which score, and the metrics table.

Shared by the stage-2 assets (`assets/vlm.py`) and the benchmark (`bench/vlm.py`), so both select and score
alike. Every stage-2 model trains on development records (the image–report pairs' 8:2 training side minus the
downstream test patients, `brainfm.tables.held_out_patients`) and is scored on the held-out patients' records,
as stage 3 is (docs/DESIGN.md, "One held-out test set"). Scores are `Estimate`s with patient-bootstrap 95 % CIs.
"""

from __future__ import annotations

from collections.abc import Container, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl

from brainfm.evaluation.bootstrap import Estimate, patient_bootstrap
from brainfm.evaluation.text import (
    most_frequent_report,
    nearest_report,
    qa_accuracy,
    report_metrics_table,
    retrieval_recall,
)
from brainfm.grounding import (
    GroundingResult,
    StudyEvidence,
    check_report,
    evidence_from_predictions,
    unsupported_rate,
)
from brainfm.grounding.segmentations import segmented_slices

QA_TASKS = ("qa_location", "qa_size", "qa_category")
ZERO_SHOT_PROMPT = "诊断意见：{}"  # one text prompt per subtype for zero-shot classification
MODEL, NEAREST, MOST_FREQUENT = "instructed-vlm", "nearest report", "most-frequent report"

Record = Mapping[str, Any]


def development(records: Sequence[Record], held_out: Container[str]) -> list[Record]:
    """Records of the training side whose patient is not held out for evaluation."""
    return [r for r in records if r["split"] == "train" and r["patient"] not in held_out]


def evaluation(records: Sequence[Record], held_out: Container[str]) -> list[Record]:
    """Records of the held-out patients (every reported stage-2 metric is computed on these)."""
    return [r for r in records if r["patient"] in held_out]


def corpus(pairs: Sequence[Record], instructions: Sequence[Record]) -> list[str]:
    """The LM's training texts: the reports, then every turn of the instruction records."""
    return [p["report"] for p in pairs] + [m["content"] for r in instructions for m in r["messages"]]


def link_pairs(pairs: Sequence[Record], labels: pl.DataFrame, studies: Container[str]) -> list[dict[str, Any]]:
    """The image–report pairs (`vl_pairs` records) whose ``study`` has slices in `studies` (a `StudyBags`),
    keyed for the VLM: ``image`` = the study key of the slices, the report's key (which instruction records
    carry as their ``image``) kept as ``accession``, and the study's labelled ``subtype`` (None where the
    labels lack the study)."""
    subtype = dict(zip(labels["study"].to_list(), labels["subtype"].to_list(), strict=True))
    return [{**p, "accession": p["image"], "image": p["study"], "subtype": subtype.get(p["study"])}
            for p in pairs if p.get("study") and p["study"] in studies]


def link_instructions(records: Sequence[Record], pairs: Sequence[Record]) -> list[dict[str, Any]]:
    """Instruction records re-keyed to the study of their report (`link_pairs` output); records whose report
    has no linked study are left out."""
    study_of = {p["accession"]: p["image"] for p in pairs}
    return [{**r, "image": study_of[r["image"]]} for r in records if r["image"] in study_of]


def evidence_by_study(
    predictions: pl.DataFrame, lesions: pl.DataFrame, volumes: pl.DataFrame
) -> dict[str, StudyEvidence]:
    """Per study of the classifier's `predictions` (one row per held-out study, ``p_category_<class>``
    columns), the evidence the grounding guard checks a report against: those probabilities and the
    segmenter's lesion slices (`brainfm.grounding.segmentations.lesion_slice_table`) placed by the centers'
    ``volumes.parquet`` rows."""
    segmented = segmented_slices(lesions, volumes)
    return {row["study"]: evidence_from_predictions(row, segmented.get(row["study"]))
            for row in predictions.iter_rows(named=True)}


def _mean(values: np.ndarray) -> float:
    return float(np.mean(values))


def alignment_scores(
    patients: Sequence[str], loss_before: npt.ArrayLike, loss_after: npt.ArrayLike, similarity: npt.ArrayLike,
    seed: int = 0,
) -> dict[str, Estimate]:
    """Stage-2a scores of the held-out pairs (one patient per row): caption loss (nats per report token) before
    and after alignment and its drop, and image→report retrieval R@1 and R@5 of the contrastive head
    (`similarity`: held-out images × their reports)."""
    before, after = np.asarray(loss_before, dtype=float), np.asarray(loss_after, dtype=float)
    scores = {"caption_loss_before": patient_bootstrap(_mean, patients, before, seed=seed),
              "caption_loss_after": patient_bootstrap(_mean, patients, after, seed=seed),
              "caption_loss_drop": patient_bootstrap(_mean, patients, before - after, seed=seed)}
    for k in (1, 5):
        scores[f"recall_at_{k}"] = retrieval_recall(similarity, k, patients, seed=seed)
    return scores


def zero_shot_accuracy(
    image_embeddings: npt.ArrayLike, prompt_embeddings: npt.ArrayLike, classes: Sequence[str],
    truth: Sequence[str | None], patients: Sequence[str], among: Container[str], seed: int = 0,
) -> Estimate | None:
    """Zero-shot accuracy on the held-out studies whose true class is in `among` (the rare subtypes, kept out
    of the head's training): each study gets the class whose prompt embedding (one row per class, in
    `classes` order) is most similar to its image embedding. None when no held-out study is of those classes;
    chance is 1 / len(classes)."""
    rows = [i for i, t in enumerate(truth) if t in among]
    if not rows:
        return None
    similarity = np.asarray(image_embeddings)[rows] @ np.asarray(prompt_embeddings).T
    hits = np.asarray(classes)[similarity.argmax(1)] == np.asarray([truth[i] for i in rows])
    return patient_bootstrap(_mean, [patients[i] for i in rows], hits.astype(float), seed=seed)


def baseline_reports(
    train: Sequence[Record], test: Sequence[Record], train_embeddings: npt.ArrayLike,
    test_embeddings: npt.ArrayLike,
) -> dict[str, dict[str, str]]:
    """The two baselines' report per held-out study (``image``): the training report of the nearest image
    embedding, and the most frequent training report."""
    studies = [p["image"] for p in test]
    reports = [p["report"] for p in train]
    nearest = nearest_report(train_embeddings, reports, test_embeddings)
    return {NEAREST: dict(zip(studies, nearest, strict=True)),
            MOST_FREQUENT: dict.fromkeys(studies, most_frequent_report(reports))}


@dataclass(frozen=True)
class ReportScores:
    """Per method (the model or a baseline), metric → estimate; the guard's verdict per grounded study and
    method (a study is grounded when the stage-3 evidence covers it)."""

    scores: dict[str, dict[str, Estimate]]
    verdicts: dict[str, dict[str, GroundingResult]]


def report_scores(
    methods: Mapping[str, Mapping[str, str]], test: Sequence[Record], labels: pl.DataFrame,
    evidence: Mapping[str, StudyEvidence], seed: int = 0,
) -> ReportScores:
    """Scores of each method's held-out reports (``methods``: method → study → report): char BLEU-4, ROUGE-L
    and clinical accuracy against the references and labels (`report_metrics_table`), and the unsupported
    finding and report rates of the grounding guard on the studies `evidence` covers."""
    studies, patients = [p["image"] for p in test], [p["patient"] for p in test]
    test_labels = labels.filter(pl.col("study").is_in(studies)).unique("study").sort("study")
    table = report_metrics_table(methods, {p["image"]: p["report"] for p in test}, test_labels, seed=seed)
    scores: dict[str, dict[str, Estimate]] = {m: {} for m in methods}
    for row in table:
        scores[row.method][row.metric] = row.estimate
    grounded = [(s, p) for s, p in zip(studies, patients, strict=True) if s in evidence]
    verdicts: dict[str, dict[str, GroundingResult]] = {}
    for method, reports in methods.items():
        verdicts[method] = {s: check_report(reports[s], evidence[s]) for s, _ in grounded}
        results = list(verdicts[method].values())
        checked = sum(r.count("supported") + r.count("unsupported") for r in results)
        # Per claim only where some claim could be checked (a method writing only normal reports claims nothing).
        for unit in ("finding", "report") if checked else ("report",):
            scores[method][f"unsupported_{unit}_rate"] = unsupported_rate(
                results, [p for _, p in grounded], unit=unit, seed=seed)
    return ReportScores(scores, verdicts)


def qa_scores(records: Sequence[Record], answers: Sequence[str], seed: int = 0) -> dict[str, Estimate]:
    """``<task>_accuracy`` per QA task of `QA_TASKS` present in the held-out instruction `records`, each
    answered by the matching entry of `answers` (the reference is the record's first assistant turn)."""
    if len(records) != len(answers):
        raise ValueError(f"got {len(answers)} answers for {len(records)} QA records; pass one answer per record")
    scores = {}
    for task in QA_TASKS:
        rows = [i for i, r in enumerate(records) if r["task"] == task]
        if rows:
            scores[f"{task}_accuracy"] = qa_accuracy(
                [answers[i] for i in rows], [records[i]["messages"][1]["content"] for i in rows], task,
                [records[i]["patient"] for i in rows], seed=seed)
    return scores
