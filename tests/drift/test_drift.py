"""Drift monitoring on the tiny cohort ingested by the pipeline's own functions: center_d (the shifted site) is
flagged, a pseudo-center drawn from the reference's own studies is not, and the verdict follows its rule."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from brainfm.drift import COLUMNS, DriftRule, center_features, compare_center
from brainfm.drift.features import IMAGE_FEATURES, SEQUENCES

SHIFTED = "center_d"


@pytest.fixture(scope="module")
def features(raw: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, pd.DataFrame]:
    from assets.resources import DeidSecretResource
    from brainfm.ingest import ingest_center
    from brainfm.reports import structure_jsonl

    root = tmp_path_factory.mktemp("drift")
    pseudonymizer = DeidSecretResource().pseudonymizer()
    out = {}
    for center_dir in sorted((raw / "dicom").iterdir()):
        c = center_dir.name
        ingest_center(center_dir, root / "deid" / c, root / "slices" / c, root / f"{c}.jsonl", c, pseudonymizer)
        reports = root / "reports" / c / "structured.jsonl"
        reports.parent.mkdir(parents=True)
        structure_jsonl(raw / "reports" / f"{c}.jsonl", reports, pseudonymizer=pseudonymizer, center=c)
        out[c] = center_features(root / "slices" / c, root / "deid" / c, reports)
    return out


@pytest.fixture(scope="module")
def shifted_result(features: dict[str, pd.DataFrame], tmp_path_factory: pytest.TempPathFactory):
    ordinary = [c for c in features if c != SHIFTED]
    html = tmp_path_factory.mktemp("drift_report") / "report.html"
    reference = pd.concat([features[c] for c in ordinary])
    return compare_center(SHIFTED, features[SHIFTED], reference, ordinary, html=html)


def test_one_row_per_study_with_image_header_and_report_columns(features: dict[str, pd.DataFrame]) -> None:
    frame = features["center_a"]
    assert frame.index.is_unique and len(frame) == 8  # tiny cohort: 32 patients, one study each, 4 centers
    assert set(frame.columns) <= set(COLUMNS.numerical + COLUMNS.categorical)
    for sequence in SEQUENCES:
        values = frame[[f"{sequence}_{f}" for f in ("p10", "p50", "p90")]].dropna()  # a series may be missing
        assert len(values) >= 6
        assert ((values >= 0) & (values <= 255)).all().all()
        assert (values[f"{sequence}_p10"] <= values[f"{sequence}_p90"]).all()
        assert frame[f"{sequence}_foreground"].dropna().between(0, 1).all()
        assert frame[f"{sequence}_qc_excluded"].dropna().between(0, 1).all()
        assert (frame[f"{sequence}_snr"].dropna() > 0).all()
    assert set(frame["manufacturer"]) == {"SIEMENS"} and set(frame["field_strength_t"]) == {"3"}
    assert frame["pixel_spacing_mm"].gt(0).all()
    assert frame["category"].notna().all() and "no_report" not in set(frame["category"])
    # center_d's scanner: 1.5 T, 7 mm slices, RLE lossless (brainfm/synth/profiles.py)
    d = features[SHIFTED]
    assert set(d["slice_thickness_mm"]) == {7.0} and set(d["transfer_syntax"]) == {"1.2.840.10008.1.2.5"}


def test_shifted_center_is_flagged_with_per_column_verdicts(shifted_result) -> None:
    result = shifted_result
    assert result.drifted and result.drifted_share >= result.thresholds["drifted_share"]
    tested = {c.column: c for c in result.columns}
    # include_tests: a verdict for every column with values on both sides, by the fixed method of its type
    assert {"T1_snr", "FLAIR_foreground", "manufacturer", "category", "pixel_spacing_mm"} <= set(tested)
    for column in tested.values():
        assert column.method == ("chi2_contingency" if column.column in COLUMNS.categorical else "ks")
        assert column.drifted == (column.p_value < result.thresholds["column_p_value"])
        assert column.votes == (column.group != "header")
    assert tested["manufacturer"].drifted and tested["slice_thickness_mm"].drifted  # UIH, 7 mm: new to them
    image = [c for c in result.columns if c.group == "image" and c.drifted]
    assert len(image) >= 5
    assert result.html is not None and result.html.stat().st_size > 10_000
    assert "center_d: **drifted**" in result.markdown
    assert all(f"| {c} |" in result.markdown for c in result.drifted_columns)


@pytest.mark.parametrize("seed", [0, 1])
def test_pseudo_center_from_the_reference_distribution_is_not_flagged(
    features: dict[str, pd.DataFrame], seed: int
) -> None:
    pool = pd.concat([f for c, f in features.items() if c != SHIFTED])
    drawn = np.random.default_rng(seed).permutation(len(pool))
    result = compare_center("pseudo", pool.iloc[drawn[:8]], pool.iloc[drawn[8:]], ["center_a", "center_b"])
    assert not result.drifted, result.markdown
    assert result.drifted_share < result.thresholds["drifted_share"]


def test_verdict_applies_the_documented_rule(shifted_result, features: dict[str, pd.DataFrame]) -> None:
    voting = [c for c in shifted_result.columns if c.votes]
    assert shifted_result.drifted_share == pytest.approx(sum(c.drifted for c in voting) / len(voting))
    # The same comparison is flagged at the default threshold and not under one above its drifted share.
    ordinary = [c for c in features if c != SHIFTED]
    columns = [f"T1_{f}" for f in IMAGE_FEATURES] + ["manufacturer"]
    reference = pd.concat([features[c] for c in ordinary])[columns]
    loose = compare_center(SHIFTED, features[SHIFTED][columns], reference, ordinary)
    tight = compare_center(
        SHIFTED, features[SHIFTED][columns], reference, ordinary,
        rule=DriftRule(drifted_share=loose.drifted_share + 0.01),
    )  # fmt: skip
    assert loose.drifted and not tight.drifted
    assert "manufacturer" in loose.drifted_columns  # reported, though header columns do not vote


def test_embedding_drift_flags_a_shifted_embedding_cloud(features: dict[str, pd.DataFrame]) -> None:
    rng = np.random.default_rng(0)
    columns = ["T1_p50", "category"]
    current = features["center_a"][columns]
    others = ["center_b", "center_c", SHIFTED]  # 32 rows in all: enough for the report's t-SNE map
    reference = pd.concat([features[c] for c in others])[columns]
    base = rng.normal(size=(len(reference), 16))

    def compare(embeddings: np.ndarray):
        return compare_center(
            "center_a", current, reference, others,
            current_embeddings=embeddings, reference_embeddings=base,
        )  # fmt: skip

    same = compare(rng.normal(size=(len(current), 16)))
    moved = compare(rng.normal(size=(len(current), 16)) + 1.5)
    assert same.embedding_drifted is False and moved.embedding_drifted is True
    assert moved.embedding_score > same.embedding_score and moved.drifted


def test_errors_say_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="materialize the center's normalized_slices"):
        center_features(tmp_path / "slices", tmp_path / "deid")
    with pytest.raises(ValueError, match="both need studies"):
        compare_center("x", pd.DataFrame(), pd.DataFrame({"T1_p50": [1.0]}), ["y"])
