"""One center against the reference centers with Evidently 0.7: per-column tests and the center's verdict.

Tests, fixed for every column whatever the sample sizes (Evidently's defaults switch family at 1,000 reference
rows, which would make centers of different sizes incomparable): two-sample Kolmogorov–Smirnov for numerical
columns (``NUM_METHOD``) and Pearson's chi-square test of the 2 × k contingency table (center vs reference
counts of each category) for categorical ones (``CAT_METHOD``); a column drifts when its p-value <
``COLUMN_P_VALUE``. Evidently's own ``chisquare`` tests the center's counts against the reference proportions
taken as exact, so one study in a category the reference lacks gives p = 0 (a false alarm at small sizes);
its exact alternative (``TVD``, 1,000 permutations in Python) takes half a minute per center.
Encoder embeddings (optional): Evidently's MMD with a bootstrap null (``EMBEDDING_QUANTILE``), so the flag
keeps its level at any size.

Verdict rule (``DriftRule``): a center is drifted when the share of drifted *voting* columns (image features
and report fields: what the encoder sees and the case mix) is ≥ ``drifted_share``, or when its embeddings drift.
Header columns (vendor, model, field strength, timing, spacing, transfer syntax) are tested and reported as
the explanation, but do not vote: each site is one point in header space, so every new site differs there
whether or not normalisation makes its images look like the reference's.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from evidently import DataDefinition, Dataset, Report

# Evidently 0.7 keeps its drift methods and the stat-test registry under evidently.legacy; the Report API is new.
from evidently.legacy.calculations.stattests.registry import StatTest, register_stattest
from evidently.legacy.core import ColumnType
from evidently.legacy.metrics.data_drift.embedding_drift_methods import mmd
from evidently.metrics import EmbeddingsDrift
from evidently.presets import DataDriftPreset
from scipy.stats import chi2_contingency

from brainfm.drift.features import COLUMNS

os.environ.setdefault("DO_NOT_TRACK", "1")  # no Evidently telemetry (read when a report runs)

NUM_METHOD = "ks"
COLUMN_P_VALUE = 0.05


def _contingency_chi2(
    reference: pd.Series, current: pd.Series, feature_type: ColumnType, threshold: float
) -> tuple[float, bool]:
    """Pearson's chi-square test of independence of side (center, reference) and category: p-value, drifted."""
    table = pd.crosstab(
        pd.concat([reference, current], ignore_index=True),
        np.repeat([0, 1], [len(reference), len(current)]),
    )
    if len(table) < 2:  # one category on both sides: nothing differs
        return 1.0, False
    p_value = float(chi2_contingency(table.to_numpy(), correction=False).pvalue)
    return p_value, p_value < threshold


CONTINGENCY_CHI2 = StatTest(
    name="chi2_contingency",
    display_name="chi-square (contingency) p_value",
    allowed_feature_types=[ColumnType.Categorical],
    default_threshold=COLUMN_P_VALUE,
)
register_stattest(CONTINGENCY_CHI2, default_impl=_contingency_chi2)
CAT_METHOD = CONTINGENCY_CHI2.name
EMBEDDING_QUANTILE = 0.95  # the MMD² flag: above this quantile of its bootstrap null
EMBEDDINGS = "encoder"
# EmbeddingsDrift draws a t-SNE map (perplexity 30), which refuses fewer rows: below, only the flag is computed.
TSNE_MIN_ROWS = 31


@dataclass(frozen=True)
class DriftRule:
    """The per-center verdict: drifted when ≥ ``drifted_share`` of the voting columns drift (p < ``p_value``
    each), or the embeddings drift. See docs/DESIGN.md "Drift monitoring" for the
    choice of 0.3 and docs/BENCHMARKS.md for its false-alarm and detection rates."""

    drifted_share: float = 0.3
    p_value: float = COLUMN_P_VALUE
    num_method: str = NUM_METHOD
    cat_method: str = CAT_METHOD
    embedding_quantile: float = EMBEDDING_QUANTILE

    def describe(self) -> str:
        return (
            f"drifted if ≥ {self.drifted_share:.0%} of the image and report columns drift (per column: "
            f"{self.num_method} for numbers, {self.cat_method} for categories, p < {self.p_value}), or the "
            f"encoder embeddings drift (MMD² above the {self.embedding_quantile:.0%} bootstrap quantile)"
        )


@dataclass(frozen=True)
class ColumnDrift:
    """One column's test: its group (image, header, report), method, p-value, whether it drifts and votes."""

    column: str
    group: str
    method: str
    p_value: float
    drifted: bool
    votes: bool


@dataclass(frozen=True)
class CenterDrift:
    """The comparison of one center with the reference centers."""

    center: str
    reference: list[str]
    drifted: bool
    rule: str
    thresholds: dict[str, float]
    n_current: int  # rows (studies) of the center
    n_reference: int
    drifted_share: float  # of the voting columns
    columns: list[ColumnDrift]
    embedding_score: float | None = None  # MMD²
    embedding_drifted: bool | None = None
    html: Path | None = None

    @property
    def drifted_columns(self) -> list[str]:
        return [c.column for c in self.columns if c.drifted]

    @property
    def markdown(self) -> str:
        """The verdict, its rule, and the drifted columns (p-values) by group, for the UI."""
        verdict = "**drifted**" if self.drifted else "not drifted"
        lines = [
            f"### {self.center}: {verdict}",
            "",
            f"{self.n_current} studies against {self.n_reference} of {', '.join(self.reference)}.",
            "",
            f"Rule: {self.rule}.",
            "",
            (
                f"- drifted share of image and report columns: {self.drifted_share:.0%} "
                f"(threshold {self.thresholds['drifted_share']:.0%})"
            ),
        ]
        if self.embedding_score is not None:
            lines.append(
                f"- encoder embeddings: MMD² {self.embedding_score:.4f}, "
                f"{'drifted' if self.embedding_drifted else 'not drifted'}"
            )
        lines += ["", "| column | group | method | p-value | votes |", "|---|---|---|---|---|"]
        lines += [
            f"| {c.column} | {c.group} | {c.method} | {c.p_value:.2g} | {'yes' if c.votes else 'no'} |"
            for c in sorted(self.columns, key=lambda c: (c.group, c.p_value))
            if c.drifted
        ]
        if not self.drifted_columns:
            lines.append("| (none) | | | | |")
        return "\n".join(lines)

    def as_json(self) -> dict[str, object]:
        out = asdict(self)
        out["html"] = str(self.html) if self.html else None
        out["drifted_columns"] = self.drifted_columns
        return out


def _group(column: str) -> str:
    if column in COLUMNS.image:
        return "image"
    if column in COLUMNS.report_numerical + COLUMNS.report_categorical:
        return "report"
    return "header"


def _tested(current: pd.DataFrame, reference: pd.DataFrame) -> tuple[list[str], list[str]]:
    """Numerical and categorical columns with at least one value on each side (a sequence a site never
    acquires cannot be tested)."""

    def usable(c: str) -> bool:
        return c in current and c in reference and current[c].notna().any() and reference[c].notna().any()

    return [c for c in COLUMNS.numerical if usable(c)], [c for c in COLUMNS.categorical if usable(c)]


def compare_center(
    center: str,
    current: pd.DataFrame,
    reference: pd.DataFrame,
    reference_centers: list[str],
    *,
    rule: DriftRule | None = None,
    current_embeddings: np.ndarray | None = None,
    reference_embeddings: np.ndarray | None = None,
    html: Path | None = None,
) -> CenterDrift:
    """Compare ``current`` (the center's rows, :func:`brainfm.drift.features.center_features`) with
    ``reference`` (the reference centers' rows, concatenated) and apply ``rule``.

    Embeddings, when given, are one vector per row of each frame, in row order. ``html`` saves Evidently's
    report there.
    """
    rule = rule or DriftRule()
    if current.empty or reference.empty:
        raise ValueError(
            f"{center}: {len(current)} current and {len(reference)} reference rows; both need studies. "
            "Ingest the center, and at least one other center, first."
        )
    if (current_embeddings is None) != (reference_embeddings is None):
        raise ValueError("Pass embeddings for both the center and the reference, or for neither.")
    numerical, categorical = _tested(current, reference)
    frames = [current.reset_index(drop=True), reference.reset_index(drop=True)]
    embeddings: dict[str, list[str]] = {}
    if current_embeddings is not None and reference_embeddings is not None:
        names = [f"embedding_{i}" for i in range(current_embeddings.shape[1])]
        embeddings = {EMBEDDINGS: names}
        frames = [
            pd.concat([f, pd.DataFrame(e, columns=names)], axis=1)
            for f, e in zip(frames, [current_embeddings, reference_embeddings], strict=True)
        ]
    for frame in frames:
        frame[categorical] = frame[categorical].astype("string").fillna("missing")
    definition = DataDefinition(
        numerical_columns=numerical, categorical_columns=categorical, embeddings=embeddings or None
    )
    method = mmd(bootstrap=True, quantile_probability=rule.embedding_quantile)
    metrics: list = [
        DataDriftPreset(
            columns=numerical + categorical, num_method=rule.num_method, cat_method=rule.cat_method,
            threshold=rule.p_value, drift_share=rule.drifted_share,
        )
    ]  # fmt: skip
    if embeddings and len(frames[0]) + len(frames[1]) >= TSNE_MIN_ROWS:
        metrics.append(EmbeddingsDrift(embeddings_name=EMBEDDINGS, drift_method=method))
    cur, ref = (Dataset.from_pandas(f, data_definition=definition) for f in frames)
    with warnings.catch_warnings():  # chi-square of a category the reference lacks divides by zero: p = 0
        warnings.simplefilter("ignore", RuntimeWarning)
        snapshot = Report(metrics, include_tests=True).run(cur, ref)
    columns = _column_results(snapshot.dict(), rule)
    voting = [c for c in columns if c.votes]
    share = sum(c.drifted for c in voting) / len(voting) if voting else 0.0
    score = flag = None
    if embeddings:
        # The metric reports MMD² only; its flag (score above the bootstrap quantile) is the same method's.
        value, flagged, _ = method(frames[0][embeddings[EMBEDDINGS]], frames[1][embeddings[EMBEDDINGS]])
        score, flag = float(value), bool(flagged)
    if html is not None:
        html.parent.mkdir(parents=True, exist_ok=True)
        snapshot.save_html(str(html))
    return CenterDrift(
        center=center,
        reference=sorted(reference_centers),
        drifted=share >= rule.drifted_share or bool(flag),
        rule=rule.describe(),
        thresholds={
            "drifted_share": rule.drifted_share,
            "column_p_value": rule.p_value,
            "embedding_quantile": rule.embedding_quantile,
        },
        n_current=len(current),
        n_reference=len(reference),
        drifted_share=share,
        columns=columns,
        embedding_score=score,
        embedding_drifted=flag,
        html=html,
    )


def _column_results(report: dict, rule: DriftRule) -> list[ColumnDrift]:
    """Per-column results from the snapshot: each ``ValueDrift`` metric's p-value and its test's verdict."""
    p_values = {
        m["config"]["column"]: (float(m["value"]), m["config"]["method"])
        for m in report["metrics"]
        if m["config"]["type"].endswith(":ValueDrift")
    }
    failed = {
        t["metric_config"]["params"]["column"]: t["status"] == "FAIL"
        for t in report["tests"]
        if t["metric_config"]["params"]["type"].endswith(":ValueDrift")
    }
    missing = set(p_values) - set(failed)
    if missing:
        raise RuntimeError(f"Evidently returned no test for {sorted(missing)}: is include_tests=True?")
    return [
        ColumnDrift(column, _group(column), method, p, failed[column], _group(column) != "header")
        for column, (p, method) in p_values.items()
    ]
