"""Report metrics against known answers: character BLEU and ROUGE-L (and the tokenizer traps that score
Chinese wrongly), clinical accuracy of hand-written reports against their labels, structured QA, retrieval
recall and the two baselines. Reports are written by the synthetic cohort's generator for known facts."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import sacrebleu
from rouge_score import rouge_scorer

from brainfm.evaluation.text import (
    QATask,
    char_bleu4,
    clinical_accuracy,
    most_frequent_report,
    nearest_report,
    qa_accuracy,
    report_metrics_table,
    retrieval_recall,
    rouge_l,
    rouge_l_f,
)
from brainfm.synth.identities import draw_identity
from brainfm.synth.reports import ReportFacts, write_report

IDENTITY = draw_identity(np.random.default_rng(1), "b", 7, "021", 61)
LEFT_GLIOMA = ReportFacts("glioma", "left", ("frontal_lobe",), "WHO 4", (30.0, 25.0), 1, True, False, "M", 61)
RIGHT_GLIOMA = ReportFacts(
    "glioma", "right", ("frontal_lobe",), "WHO 4", (30.0, 25.0), 1, True, False, "M", 61
)
MENINGIOMA = ReportFacts(
    "meningioma", "right", ("parietal_lobe",), "WHO 1", (22.0, 18.0), 1, True, False, "F", 58
)
NORMAL = ReportFacts("normal", "none", (), None, None, 0, False, False, "F", 35)
N_BOOT = 200


def report(facts: ReportFacts, seed: int = 0, center: str = "center_b") -> str:
    return write_report(facts, IDENTITY, center, "示例市中心医院", np.random.default_rng(seed))


def test_char_bleu4_scores_chinese_and_equals_sacrebleus_corpus_bleu() -> None:
    hyp, ref = "左侧额叶见团块状异常信号，大小约3.0cm。", "右侧额叶见团块状异常信号，大小约3.2cm。"
    assert sacrebleu.corpus_bleu([hyp], [[ref]]).score == 0.0  # the default 13a tokenizer sees one word each
    assert 0.0 < char_bleu4([hyp], [ref], ["p1"], n_boot=N_BOOT).value < 100.0
    assert char_bleu4([ref], [ref], ["p1"], n_boot=N_BOOT).value == pytest.approx(100.0)
    hyps = [report(LEFT_GLIOMA, 0), report(MENINGIOMA, 1), report(NORMAL, 2)]
    refs = [report(LEFT_GLIOMA, 3), report(MENINGIOMA, 4), report(NORMAL, 5)]
    estimate = char_bleu4(hyps, refs, ["p1", "p2", "p3"], n_boot=N_BOOT)
    assert estimate.value == pytest.approx(sacrebleu.corpus_bleu(hyps, [refs], tokenize="zh").score)
    assert estimate.low <= estimate.value <= estimate.high and estimate.n_patients == 3


def test_rouge_l_counts_characters_where_the_default_tokenizer_drops_them() -> None:
    # LCS(额叶占位性病变, 左侧额叶占位) = 额叶占位 (4): P = 4/7, R = 4/6, F = 2PR / (P + R) = 32/52.
    assert rouge_l_f("额叶占位性病变", "左侧额叶占位") == pytest.approx(32 / 52)
    # One character of 18 differs (左/右): F = 17/18. The default tokenizer keeps only "3" and "0cm" and
    # calls the opposite side identical.
    hyp, ref = "左侧额叶见异常信号，大小约3.0cm", "右侧额叶见异常信号，大小约3.0cm"
    assert rouge_l_f(hyp, ref) == pytest.approx(17 / 18)
    assert rouge_scorer.RougeScorer(["rougeL"]).score(ref, hyp)["rougeL"].fmeasure == 1.0
    estimate = rouge_l([hyp, "额叶占位性病变"], [ref, "左侧额叶占位"], ["p1", "p2"], n_boot=N_BOOT)
    assert estimate.value == pytest.approx((17 / 18 + 32 / 52) / 2)


def labels(rows: list[tuple[str, str, str, str, str, list[str], float | None]]) -> pl.DataFrame:
    columns = ("patient", "study", "category", "subtype", "laterality", "locations", "largest_size_mm")
    return pl.DataFrame([dict(zip(columns, row, strict=True)) for row in rows])


HELD_OUT = labels([
    ("p1", "s1", "tumor", "glioma", "left", ["frontal_lobe"], 30.0),
    ("p2", "s2", "tumor", "meningioma", "right", ["parietal_lobe"], 22.0),
    ("p3", "s3", "normal", "normal", "none", [], None),
    ("p4", "s4", "cerebrovascular", "infarct", "left", ["frontal_lobe", "insula", "temporal_lobe"], 40.0),
])  # fmt: skip
GENERATED = {
    "s1": report(LEFT_GLIOMA),  # right in every respect
    "s2": "影像所见：左侧顶叶见半圆形异常信号，大小约4.0cm×3.2cm，增强扫描呈明显均匀强化。\n诊断意见：左侧顶叶脑外占位，考虑脑膜瘤。",
    "s3": "影像所见：左侧额叶见团块状异常信号，周围见片状水肿。\n诊断意见：左侧额叶占位性病变，考虑胶质瘤。",  # hallucinated
    "s4": "影像所见：颅内未见明确异常信号。脑室系统未见扩张，中线结构居中。\n诊断意见：头颅MRI平扫未见明显异常。",  # omission
}


def test_clinical_accuracy_of_hand_written_reports() -> None:
    scores = {k: v.value for k, v in clinical_accuracy(GENERATED, HELD_OUT, n_boot=N_BOOT).items()}
    assert scores == pytest.approx({
        "category_accuracy": 2 / 4,  # s3 reads tumor, s4 normal
        # Macro F1 over tumor (TP 2, FP 1: 4/5), normal (0) and cerebrovascular (0).
        "category_macro_f1": (4 / 5) / 3,
        "subtype_accuracy": 2 / 4,
        "laterality_accuracy": 1 / 3,  # abnormal studies: s2 says left, s4 says nothing
        # Sites: TP 2 (额叶, 顶叶), FP 1 (额叶 on the normal study), FN 3 (the infarct's): 4 / (4 + 1 + 3).
        "site_f1": 4 / 8,
        "size_agreement": 1 / 3,  # s1 30 = 30; s2 40 vs 22 (tolerance 5 mm); s4 states none
        "omission_rate": 1 / 3,
        "hallucination_rate": 1 / 1,
    })  # fmt: skip


def test_ngram_scores_miss_the_opposite_side_that_clinical_accuracy_catches() -> None:
    """FIELD_NOTES: n-gram overlap is weak for clinical truth. The same report with the side flipped keeps a
    high BLEU while its laterality is wrong."""
    flipped = {"s1": report(RIGHT_GLIOMA)}
    assert char_bleu4([flipped["s1"]], [report(LEFT_GLIOMA)], ["p1"], n_boot=N_BOOT).value > 80.0
    assert clinical_accuracy(flipped, HELD_OUT[:1], n_boot=N_BOOT)["laterality_accuracy"].value == 0.0


def test_clinical_accuracy_tells_what_is_missing() -> None:
    with pytest.raises(ValueError, match="no generated report"):
        clinical_accuracy({"s1": GENERATED["s1"]}, HELD_OUT)
    with pytest.raises(ValueError, match="lack columns"):
        clinical_accuracy(GENERATED, HELD_OUT.drop("subtype"))


@pytest.mark.parametrize(
    ("task", "reference", "answers", "expected"),
    [
        (
            "qa_location",
            "病变位于左侧额叶。",
            ["病灶位于左侧额叶", "病变位于右侧额叶。", "病变位于左侧额叶、顶叶。"],
            1 / 3,
        ),
        (
            "qa_size",
            "最大径约30 mm（3.0 cm）。",
            ["最大径约3.2cm。", "最大径约45 mm。", "未见明确病灶。"],
            1 / 3,
        ),
        (
            "qa_category",
            "肿瘤性病变。诊断意见：左侧额叶占位性病变，考虑胶质瘤",
            ["肿瘤性病变。", "考虑胶质瘤。", "脑血管病。"],
            2 / 3,
        ),
    ],
)
def test_qa_answers_are_compared_as_structures(
    task: QATask, reference: str, answers: list[str], expected: float
) -> None:
    estimate = qa_accuracy(answers, [reference] * 3, task, ["p1", "p2", "p3"], n_boot=N_BOOT)
    assert estimate.value == pytest.approx(expected)


def test_retrieval_recall_on_a_toy_similarity_matrix() -> None:
    """Own text ranks: image 0 first, image 1 second, image 2 tied with one rival (counts as second),
    images 3 to 5 sixth."""
    similarity = np.full((6, 6), 0.0)
    np.fill_diagonal(similarity, 0.5)
    similarity[1, 0] = 0.9
    similarity[2, 4] = 0.5
    similarity[3:, :] = np.where(np.eye(6, dtype=bool)[3:], 0.1, 0.2)
    patients = ["p0", "p1", "p2", "p3", "p4", "p5"]
    assert retrieval_recall(similarity, 1, patients, n_boot=N_BOOT).value == pytest.approx(1 / 6)
    assert retrieval_recall(similarity, 2, patients, n_boot=N_BOOT).value == pytest.approx(3 / 6)
    assert retrieval_recall(similarity, 5, patients, n_boot=N_BOOT).value == pytest.approx(3 / 6)
    with pytest.raises(ValueError, match="square"):
        retrieval_recall(similarity[:5], 1, patients[:5])


def test_most_frequent_report_takes_the_modal_structure_then_its_modal_text() -> None:
    normal_a, normal_b = report(NORMAL, 0), report(NORMAL, 1)
    assert normal_a != normal_b
    train = [
        report(LEFT_GLIOMA, 0),
        normal_a,
        report(LEFT_GLIOMA, 1),
        normal_b,
        normal_b.replace("\n", "\n  "),
    ]
    assert most_frequent_report(train) == normal_b  # three normal reports, two of them the same text


def test_nearest_report_uses_cosine_similarity() -> None:
    train = np.array([[1.0, 0.0], [0.0, 1.0], [10.0, 10.0]])
    found = nearest_report(
        train, ["a", "b", "c"], np.array([[3.0, 0.2], [0.1, 5.0], [2.0, 2.1], [-1.0, 0.0]])
    )
    assert found == ["a", "b", "c", "b"]  # [-1, 0] is orthogonal to b and opposite to a
    with pytest.raises(ValueError, match="zero rows"):
        nearest_report(train, ["a", "b", "c"], np.zeros((1, 2)))


def test_report_metrics_table_has_every_metric_for_every_method() -> None:
    sites = ("frontal_lobe", "insula", "temporal_lobe")
    infarct = ReportFacts("infarct", "left", sites, None, (40.0, 30.0), 1, False, False, "M", 70)
    facts = {"s1": LEFT_GLIOMA, "s2": MENINGIOMA, "s3": NORMAL, "s4": infarct}
    references = {study: report(f, seed=5) for study, f in facts.items()}
    rows = report_metrics_table(
        {"model": GENERATED, "reference": references}, references, HELD_OUT,
        similarities={"model": np.eye(4)}, n_boot=N_BOOT,
    )  # fmt: skip
    table = {(r.method, r.metric): r.estimate.value for r in rows}
    assert len(table) == len(rows) == 2 * 10 + 2
    assert (
        table["reference", "char_bleu4"] == pytest.approx(100.0)
        and table["reference", "category_accuracy"] == 1.0
    )
    assert table["model", "category_accuracy"] == 0.5 and table["model", "recall_at_1"] == 1.0
