"""Prognosis: study embedding + standardised clinical variables → a Cox head (survival, log hazard ratio) and a
logistic head (two-year metastasis); and the clinical-variables-only model of the same form, as the baseline.

Clinical variables are standardised with the training split's statistics (scikit-learn `StandardScaler`),
kept in the head so a saved adapter standardises new patients the same way. sex enters as 1 = male, 0 = female;
comorbidity flags as 0/1.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from lifelines import CoxPHFitter
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler
from torch import nn

from models.heads.aggregate import StudyHead
from models.heads.study_data import StudyTargets, as_pandas

CLINICAL_COVARIATES: tuple[str, ...] = ("age_years", "sex", "kps", "hypertension", "diabetes", "smoking")
OUTCOME_COLUMNS: tuple[str, ...] = ("survival_months", "event", "metastasis")


def clinical_matrix(table: pd.DataFrame, covariates: Sequence[str]) -> np.ndarray:
    """Raw clinical variables (n, C) as floats: sex M → 1, F → 0; booleans → 0/1. Missing values are refused."""
    frame = as_pandas(table, ("study", *covariates))
    columns = []
    for name in covariates:
        column = frame[name]
        if name == "sex":
            unknown = sorted(set(column) - {"M", "F"})
            if unknown:
                raise ValueError(f"sex must be 'M' or 'F', got {unknown}")
            column = column == "M"
        if column.isna().any():
            raise ValueError(f"clinical variable {name!r} has missing values; impute or drop those patients first")
        columns.append(column.to_numpy(dtype=np.float64))
    return np.stack(columns, axis=1)


def cox_partial_nll(risk: torch.Tensor, time: torch.Tensor, event: torch.Tensor) -> torch.Tensor:
    """Negative Cox partial log-likelihood with Breslow's handling of ties, divided by the number of events:
    -1/E Σ_{i: event} [r_i - log Σ_{j: t_j >= t_i} exp(r_j)]. Zero (keeping the graph) without an event.

    Hand-written because no maintained torch Cox loss is among our dependencies (torchsurv is not; lifelines
    and scikit-survival fit their own linear models in numpy and give no gradient to the encoder).
    """
    if not bool(event.any()):
        return risk.sum() * 0.0
    order = torch.argsort(time, descending=True)
    t, r, e = time[order], risk[order], event[order].to(risk.dtype)
    log_cum = torch.logcumsumexp(r, dim=0)  # position i: log Σ exp(r) over times >= t_i, ties partly counted
    # Breslow: every subject tied at t_i is in the risk set, so take the cumulative value at the tie's last row.
    last_tied = torch.searchsorted(-t, -t, right=True) - 1
    return -((r - log_cum[last_tied]) * e).sum() / e.sum()


class PrognosisHead(StudyHead):
    """Linear Cox (no intercept: the baseline hazard absorbs it) and logistic heads on [study embedding,
    standardised clinical variables]."""

    kind = "prognosis"

    def __init__(
        self, dim: int, covariates: Sequence[str], mean: Sequence[float], scale: Sequence[float], hidden: int = 128
    ) -> None:
        super().__init__(dim, hidden)
        if not len(covariates) == len(mean) == len(scale):
            raise ValueError("covariates, mean and scale must have one entry per clinical variable")
        self.covariates, self.mean, self.scale = list(covariates), list(mean), list(scale)
        self.cox = nn.Linear(dim + len(covariates), 1, bias=False)
        self.metastasis = nn.Linear(dim + len(covariates), 1)

    @classmethod
    def fit_scaler(
        cls, dim: int, train: pd.DataFrame, covariates: Sequence[str] = CLINICAL_COVARIATES, hidden: int = 128
    ) -> PrognosisHead:
        """A head whose clinical standardisation uses the statistics of the training table `train`."""
        scaler = StandardScaler().fit(clinical_matrix(train, covariates))
        return cls(dim, covariates, scaler.mean_.tolist(), scaler.scale_.tolist(), hidden)

    def standardise(self, table: pd.DataFrame) -> torch.Tensor:
        """Standardised clinical variables (n, C), float32, with the training statistics."""
        raw = clinical_matrix(table, self.covariates)
        return torch.from_numpy((raw - np.asarray(self.mean)) / np.asarray(self.scale)).float()

    def predict(self, study: torch.Tensor, covariates: torch.Tensor | None) -> dict[str, torch.Tensor]:
        if covariates is None:
            raise ValueError("the prognosis head needs clinical covariates: pass StudyTargets from head.targets()")
        x = torch.cat([study, covariates.to(study)], dim=1)
        return {"risk": self.cox(x).squeeze(1), "metastasis": self.metastasis(x).squeeze(1)}

    def targets(self, table: pd.DataFrame) -> StudyTargets:
        frame = as_pandas(table, ("study", *OUTCOME_COLUMNS))
        values = {name: torch.tensor(frame[name].to_numpy(dtype=np.float32)) for name in OUTCOME_COLUMNS}
        return StudyTargets(tuple(frame["study"]), values, self.standardise(frame))

    def predictions(self, outputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """`risk` (log hazard ratio: higher = shorter survival) and `p_metastasis` (two-year probability)."""
        return {"risk": outputs["risk"], "p_metastasis": 1.0 / (1.0 + np.exp(-outputs["metastasis"]))}

    def spec(self) -> dict[str, Any]:
        return {"dim": self.dim, "hidden": self.hidden, "covariates": self.covariates, "mean": self.mean,
                "scale": self.scale}


def prognosis_loss(outputs: dict[str, torch.Tensor], targets: dict[str, torch.Tensor]) -> torch.Tensor:
    """Cox negative partial log-likelihood plus the metastasis binary cross-entropy."""
    cox = cox_partial_nll(outputs["risk"], targets["survival_months"], targets["event"])
    return cox + F.binary_cross_entropy_with_logits(outputs["metastasis"], targets["metastasis"])


@dataclass
class ClinicalBaseline:
    """The clinical-variables-only model of the same form: a linear Cox model (lifelines) and a logistic
    regression (scikit-learn) on the standardised clinical variables, without the image."""

    covariates: tuple[str, ...]
    scaler: StandardScaler
    cox: CoxPHFitter
    logistic: LogisticRegression | DummyClassifier

    @classmethod
    def fit(cls, train: pd.DataFrame, covariates: Sequence[str] = CLINICAL_COVARIATES) -> ClinicalBaseline:
        """Fit both models on a training table (clinical variables and outcomes, one row per study)."""
        frame = as_pandas(train, ("study", *covariates, *OUTCOME_COLUMNS))
        raw = clinical_matrix(frame, covariates)
        scaler = StandardScaler().fit(raw)
        x = pd.DataFrame(scaler.transform(raw), columns=list(covariates))
        cox = CoxPHFitter(penalizer=0.01).fit(  # a light ridge: converges on small or separable cohorts
            x.assign(survival_months=frame["survival_months"].to_numpy(), event=frame["event"].to_numpy()),
            duration_col="survival_months", event_col="event",
        )
        outcome = frame["metastasis"].to_numpy(dtype=int)
        # One outcome only among the training patients (a small cohort): the model is the training prevalence.
        logistic = (LogisticRegression() if len(set(outcome)) > 1 else DummyClassifier()).fit(x.to_numpy(), outcome)
        return cls(tuple(covariates), scaler, cox, logistic)

    def predict(self, table: pd.DataFrame) -> dict[str, np.ndarray]:
        """`risk` (log partial hazard) and `p_metastasis` per row, as `PrognosisHead.predictions` names them."""
        x = self.scaler.transform(clinical_matrix(table, self.covariates))
        frame = pd.DataFrame(x, columns=list(self.covariates))
        return {"risk": self.cox.predict_log_partial_hazard(frame).to_numpy(),
                "p_metastasis": self._metastasis_probability(x)}

    def _metastasis_probability(self, x: np.ndarray) -> np.ndarray:
        classes = list(self.logistic.classes_)
        return self.logistic.predict_proba(x)[:, classes.index(1)] if 1 in classes else np.zeros(len(x))
