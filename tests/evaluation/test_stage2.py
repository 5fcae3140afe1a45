"""Stage-2 record selection and held-out scoring (shared by assets/vlm.py and bench/vlm.py) on hand-made records
with known answers: who trains and who scores, how pairs and instructions find their study, and the metrics
table with its baselines and the grounding guard's rates."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from brainfm.evaluation.stage2 import (
    MOST_FREQUENT,
    NEAREST,
    alignment_scores,
    baseline_reports,
    corpus,
    development,
    evaluation,
    evidence_by_study,
    link_instructions,
    link_pairs,
    qa_scores,
    report_scores,
    zero_shot_accuracy,
)
from brainfm.grounding.segmentations import lesion_slice_table
from tests.grounding.test_evidence import GRIDS, ROW, grid_affine, segmented
from tests.grounding.test_guard import GLIOMA, NORMAL, NORMAL_PROBS, TUMOR, evidence, report

HELD_OUT = frozenset({"p3", "p4"})
RECORDS = [
    {"patient": "p1", "split": "train", "report": "r1", "messages": [{"content": "q1"}, {"content": "a1"}]},
    {"patient": "p2", "split": "test", "report": "r2", "messages": [{"content": "q2"}, {"content": "a2"}]},
    {"patient": "p3", "split": "train", "report": "r3", "messages": [{"content": "q3"}, {"content": "a3"}]},
    {"patient": "p4", "split": "test", "report": "r4", "messages": [{"content": "q4"}, {"content": "a4"}]},
]


def test_development_is_the_training_side_minus_held_out_patients_and_evaluation_is_them() -> None:
    assert [r["patient"] for r in development(RECORDS, HELD_OUT)] == ["p1"]
    assert [r["patient"] for r in evaluation(RECORDS, HELD_OUT)] == ["p3", "p4"]
    assert corpus(RECORDS[:2], RECORDS[2:]) == ["r1", "r2", "q3", "a3", "q4", "a4"]


def test_pairs_and_instructions_are_keyed_by_the_study_with_slices() -> None:
    labels = pl.DataFrame({"study": ["s1", "s2"], "subtype": ["glioma", "chiari"]})
    pairs = [{"image": "acc1", "study": "s1", "report": "r1"}, {"image": "acc2", "study": "s2", "report": "r2"},
             {"image": "acc3", "study": None, "report": "r3"}, {"image": "acc4", "study": "s4", "report": "r4"}]
    linked = link_pairs(pairs, labels, {"s1", "s2", "s3"})  # s4 has no slices, acc3 no study
    assert [(p["image"], p["accession"], p["subtype"]) for p in linked] == [
        ("s1", "acc1", "glioma"), ("s2", "acc2", "chiari")]
    records = [{"image": "acc2", "task": "qa_size"}, {"image": "acc3", "task": "qa_size"}]
    assert link_instructions(records, linked) == [{"image": "s2", "task": "qa_size"}]


def test_alignment_scores_known_values() -> None:
    scores = alignment_scores(["a", "b", "c"], [3.0, 2.0, 4.0], [1.0, 1.0, 1.0],
                              np.array([[1.0, 0.0, 0.0], [0.9, 0.5, 0.0], [0.0, 0.0, 1.0]]))
    assert scores["caption_loss_before"].value == pytest.approx(3.0)
    assert scores["caption_loss_drop"].value == pytest.approx(2.0)
    assert scores["recall_at_1"].value == pytest.approx(2 / 3)  # image b ranks text a above its own
    assert scores["recall_at_5"].value == pytest.approx(1.0)


def test_zero_shot_scores_only_the_held_out_classes() -> None:
    prompts = np.eye(3)  # one prompt per class a, b, c
    images = np.array([[1.0, 0.0, 0.0], [0.0, 0.1, 0.9], [0.0, 0.9, 0.1], [0.0, 0.0, 1.0]])
    truth = ["a", "c", "c", "b"]
    accuracy = zero_shot_accuracy(images, prompts, ["a", "b", "c"], truth, ["p1", "p2", "p3", "p4"], {"c"})
    assert accuracy is not None and accuracy.value == pytest.approx(0.5) and accuracy.n_patients == 2
    assert zero_shot_accuracy(images, prompts, ["a", "b", "c"], truth, ["p1", "p2", "p3", "p4"], {"d"}) is None


def test_baselines_nearest_and_most_frequent() -> None:
    train = [{"image": "t1", "report": "A"}, {"image": "t2", "report": report(NORMAL)},
             {"image": "t3", "report": report(NORMAL)}]
    test = [{"image": "s1"}, {"image": "s2"}]
    found = baseline_reports(train, test, np.array([[1.0, 0.0], [0.0, 1.0], [0.1, 1.0]]),
                             np.array([[0.9, 0.1], [0.0, 1.0]]))
    assert found[NEAREST] == {"s1": "A", "s2": report(NORMAL)}
    assert found[MOST_FREQUENT] == {"s1": report(NORMAL), "s2": report(NORMAL)}


def test_report_scores_catch_an_invented_lesion_and_pass_the_references() -> None:
    """A glioma study and a normal one; the model writes the glioma report for both."""
    test = [{"image": "s1", "patient": "p1", "report": report(GLIOMA)},
            {"image": "s2", "patient": "p2", "report": report(NORMAL)}]
    labels = pl.DataFrame({
        "study": ["s1", "s2"], "patient": ["p1", "p2"], "category": ["tumor", "normal"],
        "subtype": ["glioma", "normal"], "laterality": ["left", "none"], "locations": [["frontal_lobe"], []],
        "largest_size_mm": [30.0, None]}, schema_overrides={"locations": pl.List(pl.String)})
    evidence_of = {"s1": evidence(TUMOR, True, "left", 28.0), "s2": evidence(NORMAL_PROBS, False)}
    methods = {"model": {"s1": report(GLIOMA), "s2": report(GLIOMA)},
               "reference": {p["image"]: p["report"] for p in test}}
    found = report_scores(methods, test, labels, evidence_of)
    model, reference = found.scores["model"], found.scores["reference"]
    assert model["category_accuracy"].value == pytest.approx(0.5)
    assert model["hallucination_rate"].value == pytest.approx(1.0)
    assert model["unsupported_report_rate"].value == pytest.approx(0.5)
    assert found.verdicts["model"]["s2"].flags[0].startswith("invented lesion")
    assert found.verdicts["model"]["s1"].passed
    assert reference["category_accuracy"].value == pytest.approx(1.0)
    assert reference["unsupported_report_rate"].value == pytest.approx(0.0)
    assert reference["char_bleu4"].value == pytest.approx(100.0)


def test_qa_scores_per_task() -> None:
    records = [
        {"task": "qa_size", "patient": "p1", "messages": [{"content": "多大？"}, {"content": "最大径约30 mm。"}]},
        {"task": "qa_size", "patient": "p2", "messages": [{"content": "多大？"}, {"content": "最大径约12 mm。"}]},
        {"task": "dialogue", "patient": "p2", "messages": [{"content": "?"}, {"content": "!"}]},
    ]
    scores = qa_scores(records, ["约3.1cm", "约40 mm", "ignored"])
    assert set(scores) == {"qa_size_accuracy"} and scores["qa_size_accuracy"].value == pytest.approx(0.5)
    with pytest.raises(ValueError, match="one answer per record"):
        qa_scores(records, ["only one"])


def test_evidence_by_study_reads_the_stage3_tables() -> None:
    slices = segmented(grid_affine(GRIDS["lps-axial"]), [((-30.0, 0.0, 10.0), 5.0)])
    volume = {"patient": "p1", "study": "s1", "series": "se1", "volume": 0,
              "slice_index": [s.slice_index for s in slices]}
    lesions = lesion_slice_table([volume], [np.stack([s.mask.astype(np.uint8) for s in slices])])
    volumes = pl.DataFrame([{"study": "s1", "series": "se1", "volume": 0, **slices[0].volume}])
    predictions = pl.DataFrame([{"study": "s1", **ROW}, {"study": "s2", **ROW}])
    found = evidence_by_study(predictions, lesions, volumes)
    assert found["s1"].lesion_present and found["s1"].lesion_side == "left"
    assert found["s2"].lesion_present is None and found["s2"].predicted_category == "tumor"
