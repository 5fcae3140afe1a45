"""Outcomes follow the stated hazard model; the manifest's oracle is what the tables give."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
from lifelines import CoxPHFitter
from lifelines.utils import concordance_index

from brainfm.synth.clinical import HazardModel, draw_outcomes, oracle_scores


def test_manifest_oracle_matches_the_tables(raw: Path, manifest: dict) -> None:
    outcomes = pl.read_parquet(raw / "tables" / "outcomes.parquet")
    assert "true_linear_predictor" not in outcomes.columns  # the truth lives apart, in oracle.parquet
    outcomes = outcomes.join(pl.read_parquet(raw / "tables" / "oracle.parquet"), on="patient_id")
    c = concordance_index(outcomes["survival_months"], -outcomes["true_linear_predictor"], outcomes["event"])
    assert round(c, 4) == manifest["oracle"]["c_index"]
    assert manifest["oracle"]["c_index"] > 0.6
    assert manifest["hazard_model"] == json.loads(json.dumps(HazardModel().describe()))


def test_drawn_outcomes_recover_the_stated_coefficients() -> None:
    rng = np.random.default_rng(0)
    n = 3000
    model = HazardModel()
    subtypes = list(rng.choice(["normal", "metastasis", "infarct", "meningioma"], n))
    sizes = rng.uniform(0, 50, n)
    ages = rng.uniform(25, 85, n)
    kps = rng.choice(np.arange(40, 101, 10), n).astype(float)
    out = draw_outcomes(model, subtypes, [None] * n, list(sizes), list(ages), list(kps), rng)
    frame = pl.DataFrame(
        {
            "risk": [model.lesion_risk(s, None) for s in subtypes],
            "size_cm": sizes / 10,
            "age_dec": (ages - 50) / 10,
            "kps_10": (kps - 80) / 10,
            "T": out.survival_months,
            "E": out.event,
        }
    ).to_pandas()
    fit = CoxPHFitter().fit(frame, "T", "E")
    expected = {
        "risk": 1.0,
        "size_cm": model.b_size_per_cm,
        "age_dec": model.b_age_per_decade,
        "kps_10": model.b_kps_per_10,
    }
    for name, value in expected.items():
        assert abs(fit.params_[name] - value) < 0.12, (name, fit.params_[name], value)
    scores = oracle_scores(out)
    assert scores["c_index"] > 0.7 and scores["auc_metastasis"] > 0.7
    assert abs(out.metastasis.mean() - out.p_metastasis.mean()) < 0.03
