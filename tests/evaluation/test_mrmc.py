"""Obuchowski–Rockette–Hillis MRMC analysis against the published Van Dyke output and hand-checkable cases."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from brainfm.evaluation.mrmc import (
    ORHResult,
    mrmc_analysis,
    proportion_correct,
    read_lrc,
    reader_foms,
    wilcoxon_auc,
)

VANDYKE = Path(__file__).parent / "data" / "vandyke" / "VanDyke.lrc"


@pytest.fixture(scope="module")
def vandyke() -> ORHResult:
    study = read_lrc(VANDYKE)
    return mrmc_analysis(study.modality, study.reader, study.case, study.truth, study.score)


def test_the_lrc_file_parses_into_five_readers_two_modalities_114_cases() -> None:
    study = read_lrc(VANDYKE)
    assert len(study.score) == 2 * 5 * 114
    assert sorted(set(study.modality.tolist())) == ["0", "1"]
    assert sorted(set(study.reader.tolist())) == ["0", "1", "2", "3", "4"]
    cases = dict(zip(study.case.tolist(), study.truth.tolist(), strict=True))
    assert len(cases) == 114 and sum(cases.values()) == 45  # 69 normal, 45 abnormal
    assert set(study.score.tolist()) == {1.0, 2.0, 3.0, 4.0, 5.0}


def test_reader_and_mean_aucs_match_or_dbm_mrmc(vandyke: ORHResult) -> None:
    assert vandyke.modalities == ("0", "1")
    assert np.round(vandyke.reader_fom, 8).tolist() == [
        [0.91964573, 0.85877617, 0.90386473, 0.97310789, 0.82979066],
        [0.94782609, 0.90531401, 0.92173913, 0.99935588, 0.92995169],
    ]
    assert np.round(vandyke.mean_fom, 8).tolist() == [0.89703704, 0.94083736]
    assert round(vandyke.differences[0].value, 8) == -0.04380032


def test_variance_components_match_or_dbm_mrmc(vandyke: ORHResult) -> None:
    printed = {
        "ms_t": 0.00479617,
        "ms_r": 0.00383620,
        "ms_tr": 0.00055103,
        "var_error": 0.00080229,
        "cov1": 0.00034661,
        "cov2": 0.00034407,
        "cov3": 0.00023903,
    }
    assert {name: round(getattr(vandyke, name), 8) for name in printed} == printed


def test_random_reader_random_case_analysis_matches_or_dbm_mrmc(vandyke: ORHResult) -> None:
    assert (round(vandyke.f_statistic, 2), vandyke.ndf, round(vandyke.ddf, 2)) == (4.46, 1, 15.26)
    assert round(vandyke.p_value, 4) == 0.0517
    difference = vandyke.differences[0]
    assert (difference.modality_a, difference.modality_b) == ("0", "1")
    assert round(difference.std_error, 5) == 0.02075
    assert (round(difference.low, 5), round(difference.high, 5)) == (-0.08796, 0.00036)
    assert difference.p_value == pytest.approx(vandyke.p_value)  # two modalities: t² = F
    first, second = vandyke.modality_intervals
    assert (round(first.low, 8), round(first.high, 8), round(first.df, 2)) == (0.82522360, 0.96885048, 12.74)
    assert (round(second.low, 8), round(second.high, 8), round(second.df, 2)) == (
        0.89413783,
        0.98753689,
        12.71,
    )


def test_fixed_reader_analysis_matches_or_dbm_mrmc(vandyke: ORHResult) -> None:
    assert round(vandyke.fixed_readers_chi2, 5) == 5.47595
    assert round(vandyke.fixed_readers_p, 4) == 0.0193
    difference = vandyke.fixed_readers_differences[0]
    assert (round(difference.low, 5), round(difference.high, 5)) == (-0.08049, -0.00711)
    assert difference.df == np.inf


def test_vectorised_auc_equals_sklearn_with_ties() -> None:
    rng = np.random.default_rng(3)
    truth = rng.random(40) < 0.4
    scores = rng.integers(1, 6, size=(40, 3)).astype(float)  # 5-point ratings: many ties
    expected = [roc_auc_score(truth, scores[:, j]) for j in range(3)]
    assert wilcoxon_auc(truth, scores) == pytest.approx(expected, abs=1e-12)
    assert np.isnan(wilcoxon_auc(np.zeros(5, dtype=bool), scores[:5])).all()


def test_proportion_correct_as_the_figure_of_merit_has_the_binomial_jackknife() -> None:
    # 2 modalities × 2 readers × 6 cases; a reader's call is the label it gives each case.
    truth = np.array(["a", "b", "a", "b", "a", "b"])
    calls = {
        ("A", "r1"): "abaaab",  # 5/6 correct
        ("A", "r2"): "abbbab",  # 5/6
        ("B", "r1"): "bbaaaa",  # 3/6
        ("B", "r2"): "aaaaab",  # 4/6
    }
    rows = [(m, r, str(k), truth[k], call[k]) for (m, r), call in calls.items() for k in range(6)]
    modality, reader, case, labels, score = (np.array(column) for column in zip(*rows, strict=True))
    foms = reader_foms(modality, reader, case, labels, score, fom=proportion_correct)
    np.testing.assert_allclose(foms.fom, [[5 / 6, 5 / 6], [3 / 6, 4 / 6]])
    # The jackknife variance of a proportion is s²/c (s² with ddof=1), and covariances likewise.
    hits = np.array([[c == t for c, t in zip(call, truth, strict=True)] for call in calls.values()], float)
    np.testing.assert_allclose(foms.covariance(), np.cov(hits) / 6, atol=1e-15)
    result = mrmc_analysis(modality, reader, case, labels, score, fom=proportion_correct)
    assert result.differences[0].value == pytest.approx(5 / 6 - 7 / 12)
    assert result.var_error == pytest.approx(np.var(hits, axis=1, ddof=1).mean() / 6)
    # Readers 1 and 2 differ by 1/6 in modality B only: MS(T*R) = Σ residual² = 4 × (1/24)².
    assert result.ms_tr == pytest.approx(4 * (1 / 24) ** 2)


def test_an_incomplete_design_is_refused_with_a_reason() -> None:
    with pytest.raises(ValueError, match="every reader to read every case"):
        reader_foms(["A", "A", "B"], ["r", "r", "r"], ["1", "2", "1"], [0, 1, 0], [0.1, 0.9, 0.2])
