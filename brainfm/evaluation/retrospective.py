"""The retrospective (technical efficacy) report: the foundation model on every task, on held-out patients.

Builds a :class:`~brainfm.evaluation.html_report.Report` from :class:`RetrospectiveInputs`: the model card
(data, splits, versions, intended use), the multi-task table against scratch, the baselines and the synthetic
oracle, label-efficiency curves, the deployed model's paired leads over scratch and the encoder ablations,
zero-shot accuracy on rare subtypes, the leave-one-center-out matrix, the
calibration of the classifier's P(abnormal), and a Grad-CAM gallery with its localisation scores. Inputs that a
run did not measure (None, or empty) give a section that says so instead of numbers.

Rows are the long format of the adapters' ``metrics.json`` (``{variant, metric, value, low, high,
n_patients}``): each becomes an :class:`Estimate`, and a row without a finite interval is refused rather than
shown bare. Rows carry no replicate count: `N_BOOT` (1000, the assets' `patient_bootstrap` default) is assumed
unless a row states its own ``n_boot``.
"""

from __future__ import annotations

import math
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib.image as mpimg
import matplotlib.pyplot as plt
import numpy as np

from brainfm.evaluation.bootstrap import Estimate, patient_bootstrap
from brainfm.evaluation.classification import brier, calibration
from brainfm.evaluation.html_report import Cell, Count, Provenance, Report, Section, Setting
from brainfm.plots import forest_figure

if TYPE_CHECKING:
    import pandas as pd
    import polars as pl

RETROSPECTIVE_SECTIONS: tuple[str, ...] = (
    "model-card", "multi-task", "label-efficiency", "paired-leads", "zero-shot", "cross-center", "calibration", "explainability",
)
DEPLOYED = "pretrained-probe"  # the stage-3 assets' deployed variant (assets/adapters.py)
N_BOOT = 1000  # bootstrap replicates behind a row that does not state its own (patient_bootstrap's default)
# The headline metric of each task; a task not named here, or whose rows lack it, uses its first metric.
PRIMARY_METRICS: dict[str, str] = {
    "segmentation": "dice_whole",
    "classification": "category_accuracy",
    "grading": "grade_accuracy",
    "prognosis": "harrell_c",
    "report generation": "category_macro_f1",  # clinical accuracy of the report's category, not n-gram overlap
    "question answering": "qa_accuracy",
    "retrieval": "recall_at_1",
    "zero-shot": "accuracy",
}
# Metrics where lower is better, matched as substrings of the metric name; every other metric is higher-better.
LOWER_IS_BETTER: tuple[str, ...] = ("hd95", "fp_rate", "brier", "omission_rate", "hallucination_rate")
NOT_MEASURED = "Not measured in this run"
BENCHMARKS = 'docs/BENCHMARKS.md, section "Stage-3 adapters"'
DEFAULT_SPLITS: dict[str, str] = {
    "held-out test set": "the downstream test side (30 % of patients), held out of every training stage, "
    "labelled or not; every number of this report is computed on it",
    "pretraining (MAE encoder)": "8:2 train/validation by patient hash, over the patients outside the held-out "
    "test set",
    "vision–language (stage 2)": "8:2 train/validation of the image–report pairs by patient, held-out test "
    "patients excluded from training",
    "downstream (stage 3)": "7:3 train/test by patient, stratified by (center, category); label fractions are "
    "nested stratified subsets of the training side",
}
DEFAULT_INTENDED_USE: dict[str, str] = {
    "intended use": "Research on brain-MRI foundation models: method development, benchmarking and validation "
    "studies under an approved protocol, by people who can judge the outputs.",
    "not a medical device": "Not a medical device and not cleared for clinical use: no output may guide the "
    "diagnosis or treatment of a patient. Generated reports and answers can state findings that are not there.",
    "synthetic-cohort numbers": "Numbers measured on the synthetic cohort test the pipeline: the cohort's "
    "effects were put in by its simulator, so they are not findings about patients or about clinical "
    "performance.",
    "population": "Validated only on the centers, scanners and protocols listed in this card; check a new "
    "center (leave-one-center-out, drift monitoring) before using the model there.",
    "uncertainty": "Intervals reflect the sampling of held-out patients (patient bootstrap) or of training "
    "seeds, not shifts in population, scanner or protocol.",
    "explanations": "Grad-CAM maps show where the classifier's evidence lies, not why; a map inside the lesion "
    "does not make a prediction correct.",
}
_CARD_KEYS = frozenset({"data", "versions", "splits", "intended_use"})
_DATA_KEYS = ("centers", "per_split", "label_counts")


@dataclass(frozen=True)
class RetrospectiveInputs:
    """Everything the retrospective report shows; None (or empty) means "not measured in this run".

    task_metrics: task name ("segmentation", "classification", ...) → long rows {variant, metric, value, low,
        high, n_patients} (``metrics.json`` of an adapter asset; optional ``n_boot``).
    model_card: {"data": {"centers": [names], "per_split": {split: {"patients": int, "studies": int}},
        "label_counts": {label: studies}}, "versions": {component: version (git revision, DVC md5, config)},
        optional "splits": {set: rule} (default `DEFAULT_SPLITS`), optional "intended_use": {aspect: statement}
        (default `DEFAULT_INTENDED_USE`)}; the data's provenance is the report's.
    label_efficiency: rows {task, fraction (share of training labels in (0, 1]), variant, metric, value, low,
        high, n_seeds (≥ 2: a t-interval over seeds)}.
    paired_leads: rows {task, fraction, comparison ("A − B"), metric, value, low, high, n_patients, n_seeds}: the
        mean over seeds of A's metric minus B's on the same held-out patients, with its paired patient-bootstrap
        interval (`brainfm.evaluation.adapters.paired_lead`).
    zero_shot: rows {subtype, value, low, high, n_patients, chance} of the contrastive head's accuracy on rare
        subtypes kept out of its training; chance is the accuracy of guessing (a fixed input).
    leave_one_center_out: rows {held_out_center, task, metric, value, low, high, n_patients}.
    benchmark_source: where the label-efficiency and leave-one-center-out rows come from when a benchmark
        (``bench/adapters.py``, `read_benchmark`) measured them rather than this run; shown in both sections.
    calibration: the deployed classifier's held-out predictions (``predictions.parquet`` of ``cls_adapter``, a
        pandas or polars DataFrame) with columns ``patient``, ``category`` and ``p_category_normal``.
    gradcam: gallery items {png: path of a PNG, caption}; gradcam_scores: score name → Estimate (pointing game,
        energy inside the mask).
    deployed: task → the variant each task deploys; default `DEPLOYED` where a task has it, else the task's
        first variant (so write the model's rows first).
    n_boot, seed: the patient bootstrap of the calibration's Brier scores.
    """

    task_metrics: Mapping[str, Sequence[Mapping[str, Any]]]
    model_card: Mapping[str, Any]
    label_efficiency: Sequence[Mapping[str, Any]] | None = None
    paired_leads: Sequence[Mapping[str, Any]] | None = None
    zero_shot: Sequence[Mapping[str, Any]] | None = None
    leave_one_center_out: Sequence[Mapping[str, Any]] | None = None
    benchmark_source: str | None = None
    calibration: pd.DataFrame | pl.DataFrame | None = None
    gradcam: Sequence[Mapping[str, Any]] = ()
    gradcam_scores: Mapping[str, Estimate] = field(default_factory=dict)
    deployed: Mapping[str, str] = field(default_factory=dict)
    n_boot: int = N_BOOT
    seed: int = 0


def read_benchmark(path: Path) -> dict[str, Any]:
    """The label-efficiency, paired-lead and leave-one-center-out rows of ``bench/adapters.py``'s
    ``retrospective.json``, as keyword arguments of :class:`RetrospectiveInputs` (``label_efficiency``,
    ``paired_leads`` (absent from files written before it), ``leave_one_center_out``, ``benchmark_source``: its
    command, cohort, commit, machine and date in one sentence)."""
    import json

    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ValueError(f"cannot read the benchmark results {path} ({e}): give bench/adapters.py's "
                         "WORK/retrospective.json") from e
    missing = [k for k in ("label_efficiency", "leave_one_center_out", "provenance") if k not in data]
    if missing:
        raise ValueError(f"{path} lacks {missing}: write it with bench/adapters.py (WORK/retrospective.json)")
    where = data["provenance"]
    source = (f"Measured by bench/adapters.py, not by this run: cohort {where.get('cohort', '?')}, commit "
              f"{where.get('commit', '?')}, {where.get('machine', '?')}, {where.get('date', '?')}; command: "
              f"{where.get('command', '?')}")
    return {"label_efficiency": data["label_efficiency"] or None, "paired_leads": data.get("paired_leads") or None,
            "leave_one_center_out": data["leave_one_center_out"] or None, "benchmark_source": source}


def _require(row: Mapping[str, Any], keys: Sequence[str], where: str) -> None:
    missing = [key for key in keys if row.get(key) is None]
    if missing:
        raise ValueError(
            f"{where}: a row lacks {', '.join(missing)} (row: {dict(row)}). Each row needs {', '.join(keys)}; "
            "low and high are the 95 % CI bounds that patient_bootstrap (or mean_ci over seeds) returns: "
            "recompute the row with them rather than leave a number without its interval"
        )


def _estimate(row: Mapping[str, Any], where: str, *, n_boot: int = 0, n_seeds: int = 1) -> Estimate:
    """The row's value and interval as an Estimate; refuses a non-finite or inverted interval."""
    value, low, high = (float(row[key]) for key in ("value", "low", "high"))
    if not all(map(math.isfinite, (value, low, high))) or low > high:
        raise ValueError(
            f"{where}: value {value} with interval {low} to {high} is not a finite interval (row: {dict(row)}); "
            "a metric undefined on the held-out set has no place in the report: drop the row or recompute it "
            "on more patients"
        )
    n_patients = row.get("n_patients")
    return Estimate(value, low, high, None if n_patients is None else int(n_patients), n_boot, n_seeds=n_seeds)


def _bootstrap_estimate(row: Mapping[str, Any], where: str) -> Estimate:
    return _estimate(row, where, n_boot=int(row.get("n_boot") or N_BOOT))


def _higher_is_better(metric: str) -> bool:
    return not any(token in metric for token in LOWER_IS_BETTER)


def _not_measured(section: Section, what: str) -> None:
    section.paragraph(f"{NOT_MEASURED}: {what}")


def _benchmark_rows(section: Section, rows: Sequence[Mapping[str, Any]] | None, source: str | None,
                    what: str) -> bool:
    """Whether a benchmark section has rows to show: if not, says `what` was not measured; if so, notes where
    the rows come from (`source`, when a benchmark rather than this run measured them)."""
    if not rows:
        _not_measured(section, what)
        return False
    if source:
        section.note(source)
    return True


def _panel_grid(n: int, width_in: float, height_in: float, columns: int = 3) -> tuple[plt.Figure, list[Any]]:
    """A figure of ``n`` panels, at most ``columns`` a row; unused axes are hidden."""
    ncols = min(columns, n)
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(width_in * ncols, height_in * nrows), squeeze=False)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, list(axes.flat[:n])


# --- model card ---------------------------------------------------------------------------------------------


def _model_card(report: Report, card: Mapping[str, Any]) -> None:
    if unknown := sorted(set(card) - _CARD_KEYS):
        raise ValueError(f"model_card has unknown keys {unknown}: use {sorted(_CARD_KEYS)}")
    if missing := [key for key in ("data", "versions") if not isinstance(card.get(key), Mapping)]:
        raise ValueError(
            f"model_card lacks {missing}: it needs 'data' (centers, per_split, label_counts) and 'versions' "
            "(component → git revision, DVC md5 or config), both mappings: see RetrospectiveInputs"
        )
    data, versions = card["data"], card["versions"]
    _require(data, _DATA_KEYS, "model_card['data']")
    section = report.section(
        "model-card", "Model card",
        f"What the model was trained and tested on, how the patients were split, which versions produced this "
        f"report, and what it may be used for. Data: {report.provenance.source}.",
    )
    centers = list(data["centers"])
    section.key_number("centers", Count(len(centers)))
    section.paragraph(f"Centers: {', '.join(centers)}.")
    section.table(
        [[split, Count(int(n["patients"])), Count(int(n["studies"]))] for split, n in data["per_split"].items()],
        ["split", "patients", "studies"], "Patients and studies per split.",
    )
    section.table([[label, Count(int(n))] for label, n in data["label_counts"].items()],
                  ["label", "studies"], "Studies per label.")
    splits = card.get("splits") or DEFAULT_SPLITS
    section.table([[name, rule] for name, rule in splits.items()], ["set", "rule"], "How patients were split.")
    section.table([[name, str(version)] for name, version in versions.items()], ["component", "version"],
                  "Versions behind this report (git revision, DVC hashes of the models, configurations).")
    use = card.get("intended_use") or DEFAULT_INTENDED_USE
    section.table([[aspect, text] for aspect, text in use.items()], ["aspect", "statement"],
                  "Intended use and limitations.")


# --- multi-task ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _TaskTable:
    """One task's rows as a metric × variant grid of estimates."""

    task: str
    metrics: list[str]
    variants: list[str]
    cells: dict[tuple[str, str], Estimate]  # (metric, variant) → estimate
    deployed: str

    @property
    def primary(self) -> str:
        wanted = PRIMARY_METRICS.get(self.task)
        return wanted if wanted in self.metrics else self.metrics[0]

    def get(self, variant: str | None) -> Estimate | None:
        return None if variant is None else self.cells.get((self.primary, variant))

    def best_baseline(self) -> str | None:
        """The best comparator on the primary metric: not the deployed model nor another pretrained variant,
        and not a ceiling (an oracle)."""
        baselines = [v for v in self.variants if v != self.deployed and not v.startswith("pretrained")
                     and "oracle" not in v and self.get(v) is not None]
        if not baselines:
            return None
        sign = 1.0 if _higher_is_better(self.primary) else -1.0
        return max(baselines, key=lambda v: sign * self.cells[(self.primary, v)].value)

    def scratch(self) -> str | None:
        return next((v for v in self.variants if v.startswith("scratch") and self.get(v) is not None), None)


def _task_table(task: str, rows: Sequence[Mapping[str, Any]], deployed: str | None) -> _TaskTable:
    where = f"task_metrics[{task!r}]"
    if not rows:
        raise ValueError(f"{where} has no rows: leave the task out, or pass its metrics.json rows")
    cells: dict[tuple[str, str], Estimate] = {}
    for row in rows:
        _require(row, ("variant", "metric", "value", "low", "high"), where)
        key = (str(row["metric"]), str(row["variant"]))
        if key in cells:
            raise ValueError(f"{where} has two rows for metric {key[0]!r} of variant {key[1]!r}: keep one")
        cells[key] = _bootstrap_estimate(row, where)
    variants = list(dict.fromkeys(v for _, v in cells))
    chosen = deployed or (DEPLOYED if DEPLOYED in variants else variants[0])
    if chosen not in variants:
        raise ValueError(f"{where}: the deployed variant {chosen!r} has no rows; its variants are {variants}")
    return _TaskTable(task, list(dict.fromkeys(m for m, _ in cells)), variants, cells, chosen)


def _task_order(tasks: Sequence[str]) -> list[str]:
    known = [t for t in PRIMARY_METRICS if t in tasks]
    return known + [t for t in tasks if t not in PRIMARY_METRICS]


def _multi_task(report: Report, inputs: RetrospectiveInputs) -> None:
    section = report.section(
        "multi-task", "Every task on held-out patients",
        "Each task's adapter on the held-out test patients, against the same network trained from scratch, the "
        "baselines the task names and, on a synthetic cohort, the generating oracle (a ceiling, not a "
        "competitor). The first table compares each task's primary metric; the per-task tables show them all.",
    )
    if not inputs.task_metrics:
        _not_measured(section, "no task metrics were given (the stage-2 and stage-3 assets write them).")
        return
    if unknown := sorted(set(inputs.deployed) - set(inputs.task_metrics)):
        raise ValueError(f"deployed names tasks {unknown} that have no task_metrics: drop them or add their rows")
    tables = [_task_table(t, inputs.task_metrics[t], inputs.deployed.get(t))
              for t in _task_order(list(inputs.task_metrics))]
    headline: list[list[Cell]] = []
    for t in tables:
        best = t.best_baseline()
        headline.append([t.task, t.primary, t.deployed, t.get(t.deployed), best, t.get(best)])
        section.key_number(f"{t.task}: {t.primary}", t.cells[(t.primary, t.deployed)])
    section.table(headline, ["task", "primary metric", "deployed", "deployed estimate", "best baseline",
                             "baseline estimate"],
                  "The deployed model against its best baseline on each task's primary metric.")
    _scratch_comparison(section, tables)
    for t in tables:
        section.table([[m, *(t.cells.get((m, v)) for v in t.variants)] for m in t.metrics], ["metric", *t.variants],
                      f"{t.task.capitalize()}: every metric (rows) of every variant (columns); deployed: "
                      f"{t.deployed}.")


def _scratch_comparison(section: Section, tables: Sequence[_TaskTable]) -> None:
    """Deployed and scratch side by side, with the difference of their point estimates and no interval for it:
    the rows keep no bootstrap replicates, so a paired interval cannot be computed here."""
    pairs = [(t, scratch) for t in tables if (scratch := t.scratch()) is not None]
    if not pairs:
        section.paragraph("No task has both its deployed variant and a scratch variant: no comparison to draw.")
        return
    labels: list[str] = []
    values: list[float] = []
    lows: list[float] = []
    highs: list[float] = []
    rows: list[list[Cell]] = []
    for t, scratch in pairs:
        mine, theirs = t.cells[(t.primary, t.deployed)], t.cells[(t.primary, scratch)]
        rows.append([t.task, t.primary, mine, theirs, f"{mine.value - theirs.value:+.3f}"])
        for variant, estimate in ((t.deployed, mine), (scratch, theirs)):
            labels.append(f"{t.task}, {variant}")
            values.append(estimate.value)
            lows.append(estimate.low)
            highs.append(estimate.high)
    section.table(rows, ["task", "metric", "deployed", "scratch", "deployed − scratch (point estimates)"],
                  "Pretrained (deployed) against the same network trained from scratch, primary metrics.")
    section.note("The difference is one of point estimates and has no interval: the intervals are per variant, "
                 "and overlapping intervals neither show nor rule out a difference (that needs a paired "
                 "bootstrap over the same patients: the paired section below, where the benchmark measured it).")
    fig = forest_figure(labels, values, lows, highs, "primary metric, each variant's 95 % CI", reference=None)
    section.figure(fig, "Deployed and scratch on each task's primary metric, each with its own 95 % CI.",
                   {"label": labels, "value": values, "low": lows, "high": highs})
    plt.close(fig)


# --- label efficiency ---------------------------------------------------------------------------------------


def _label_efficiency(report: Report, rows: Sequence[Mapping[str, Any]] | None, source: str | None) -> None:
    section = report.section(
        "label-efficiency", "Label efficiency",
        "Each variant trained on a share of the training labels (nested stratified subsets, by patient) and tested "
        "on the same held-out set; mean over seeds (label subset and training seed) with its 95 % t-interval.",
    )
    if not _benchmark_rows(section, rows, source, f"label efficiency is measured by bench/adapters.py; see "
                           f"{BENCHMARKS} for its latest results."):
        return
    where = "label_efficiency"
    parsed: list[tuple[str, float, str, str, Estimate]] = []
    for row in rows:
        _require(row, ("task", "fraction", "variant", "metric", "value", "low", "high", "n_seeds"), where)
        fraction, n_seeds = float(row["fraction"]), int(row["n_seeds"])
        if not 0.0 < fraction <= 1.0:
            raise ValueError(f"{where}: fraction {fraction} is a share of the training labels in (0, 1], e.g. 0.1")
        if n_seeds < 2:
            raise ValueError(f"{where}: n_seeds {n_seeds}: a t-interval over seeds needs at least 2 (mean_ci)")
        parsed.append((str(row["task"]), fraction, str(row["variant"]), str(row["metric"]),
                       _estimate(row, where, n_seeds=n_seeds)))
    fractions = sorted({p[1] for p in parsed})
    columns = [f"{f:.0%}" for f in fractions]
    grid: dict[tuple[str, str, str], dict[float, Estimate]] = {}
    for task, fraction, variant, metric, estimate in parsed:
        cell = grid.setdefault((task, metric, variant), {})
        if fraction in cell:
            raise ValueError(f"{where} has two rows for {task} {metric} {variant} at {fraction:.0%}: keep one")
        cell[fraction] = estimate
    tasks = _task_order(list(dict.fromkeys(p[0] for p in parsed)))
    section.table([[task, metric, variant, *(cell.get(f) for f in fractions)]
                   for (task, metric, variant), cell in sorted(grid.items(), key=lambda kv: tasks.index(kv[0][0]))],
                  ["task", "metric", "variant", *columns], "Metrics by share of training labels.")
    for task in tasks:
        fig, source = _efficiency_figure({k: v for k, v in grid.items() if k[0] == task})
        section.figure(fig, f"{task.capitalize()}: metric against the share of training labels, per variant "
                       "(band: 95 % t-interval over seeds).", source)
        plt.close(fig)


def _efficiency_figure(
    grid: Mapping[tuple[str, str, str], Mapping[float, Estimate]],
) -> tuple[plt.Figure, dict[str, Any]]:
    """One panel per metric of one task's rows: value against the share of labels, a band per variant."""
    metrics = list(dict.fromkeys(metric for _, metric, _ in grid))
    fig, axes = _panel_grid(len(metrics), 4.0, 3.0)
    source: dict[str, Any] = {}
    for ax, metric in zip(axes, metrics):
        for (_, m, variant), cell in grid.items():
            if m != metric:
                continue
            x = sorted(cell)
            percent = [100 * f for f in x]
            ax.plot(percent, [cell[f].value for f in x], marker="o", label=variant)
            ax.fill_between(percent, [cell[f].low for f in x], [cell[f].high for f in x], alpha=0.2)
            source[f"{metric} | {variant}"] = {"fraction": x, "value": [cell[f].value for f in x],
                                               "low": [cell[f].low for f in x], "high": [cell[f].high for f in x]}
        ax.set(title=metric, xlabel="training labels (%)", xlim=(0, 105))
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    return fig, source


def _paired_leads(report: Report, rows: Sequence[Mapping[str, Any]] | None, source: str | None) -> None:
    section = report.section(
        "paired-leads", "Pretrained against scratch and the ablations, paired by patient",
        "The deployed variant's lead over another on the same held-out patients and label subsets: the mean over "
        "seeds of the difference of their primary metrics, with a paired patient-bootstrap 95 % CI (a resampled "
        "patient brings its predictions under both variants and every seed). An interval above 0 shows the lead.",
    )
    if not _benchmark_rows(section, rows, source, f"paired leads are measured by bench/adapters.py from each "
                           f"cell's held-out predictions; see {BENCHMARKS}."):
        return
    where = "paired_leads"
    table: list[list[Cell]] = []
    labels: list[str] = []
    estimates: list[Estimate] = []
    tasks = _task_order(list(dict.fromkeys(str(r["task"]) for r in rows)))
    for row in sorted(rows, key=lambda r: (tasks.index(str(r["task"])), float(r["fraction"]), str(r["comparison"]))):
        _require(row, ("task", "fraction", "comparison", "metric", "value", "low", "high", "n_patients", "n_seeds"),
                 where)
        estimate = _estimate(row, where, n_boot=N_BOOT, n_seeds=int(row["n_seeds"]))
        shown = "above 0" if estimate.low > 0 else "below 0" if estimate.high < 0 else "includes 0"
        table.append([str(row["task"]), f"{float(row['fraction']):.0%}", str(row["comparison"]), str(row["metric"]),
                      estimate, Count(int(row["n_seeds"])), shown])
        labels.append(f"{row['task']} {float(row['fraction']):.0%}: {row['comparison']}")
        estimates.append(estimate)
    section.table(table, ["task", "labels", "comparison", "metric", "difference (95 % CI)", "seeds", "interval"],
                  "Paired differences of the primary metric on the same held-out patients.")
    fig = forest_figure(labels, [e.value for e in estimates], [e.low for e in estimates],
                        [e.high for e in estimates], "difference of the primary metric (paired, 95 % CI)")
    section.figure(fig, "Each comparison's paired difference with its patient-bootstrap 95 % CI; the dashed line "
                   "is no difference.", {"label": labels, "value": [e.value for e in estimates],
                                         "low": [e.low for e in estimates], "high": [e.high for e in estimates]})
    plt.close(fig)


# --- zero-shot ----------------------------------------------------------------------------------------------


def _zero_shot(report: Report, rows: Sequence[Mapping[str, Any]] | None) -> None:
    section = report.section(
        "zero-shot", "Zero-shot classification of rare subtypes",
        "The contrastive image–report head's accuracy on rare subtypes whose pairs were kept out of its training, "
        "from text prompts alone, against chance (a fixed input: guessing among the prompts).",
    )
    if not rows:
        _not_measured(section, "zero-shot accuracy on rare subtypes (the contrastive head of stage 2).")
        return
    where = "zero_shot"
    for row in rows:
        _require(row, ("subtype", "value", "low", "high", "n_patients", "chance"), where)
    estimates = [_bootstrap_estimate(row, where) for row in rows]
    subtypes = [str(row["subtype"]) for row in rows]
    chances = [float(row["chance"]) for row in rows]
    section.table([[s, Count(int(row["n_patients"])), e, Setting(round(c, 3))]  # 1/3 shown as 0.333
                   for s, row, e, c in zip(subtypes, rows, estimates, chances)],
                  ["subtype", "held-out patients", "zero-shot accuracy", "chance"],
                  "Zero-shot accuracy per rare subtype.")
    common = chances[0] if len(set(chances)) == 1 else None  # one dashed line only when chance is shared
    fig = forest_figure(subtypes, [e.value for e in estimates], [e.low for e in estimates],
                        [e.high for e in estimates], "zero-shot accuracy (95 % CI)", reference=common)
    section.figure(fig, "Zero-shot accuracy per rare subtype" + (" (dashed: chance)." if common is not None
                                                                 else "; chance differs by subtype (table)."),
                   {"subtype": subtypes, "value": [e.value for e in estimates], "low": [e.low for e in estimates],
                    "high": [e.high for e in estimates], "chance": chances})
    plt.close(fig)


# --- leave one center out -----------------------------------------------------------------------------------


def _cross_center(report: Report, rows: Sequence[Mapping[str, Any]] | None, source: str | None) -> None:
    section = report.section(
        "cross-center", "Leave one center out",
        "Each center in turn held out of the adapters' labelled training and used as the test set: how the model "
        "carries to a center whose labels it has never seen (whether pretraining also left the center out is "
        "stated with the results' source).",
    )
    if not _benchmark_rows(section, rows, source, f"the leave-one-center-out matrix (bench/adapters.py --loco; "
                           f"see {BENCHMARKS})."):
        return
    where = "leave_one_center_out"
    cells: dict[tuple[str, str], Estimate] = {}
    for row in rows:
        _require(row, ("held_out_center", "task", "metric", "value", "low", "high", "n_patients"), where)
        key = (str(row["held_out_center"]), f"{row['task']}: {row['metric']}")
        if key in cells:
            raise ValueError(f"{where} has two rows for {key[1]} with {key[0]} held out: keep one")
        cells[key] = _bootstrap_estimate(row, where)
    centers = list(dict.fromkeys(c for c, _ in cells))
    columns = list(dict.fromkeys(col for _, col in cells))
    section.table([[center, *(cells.get((center, col)) for col in columns)] for center in centers],
                  ["held-out center", *columns], "Each task's metric on the held-out center (rows).")
    fig, source = _heat_map(centers, columns, cells)
    section.figure(fig, "Leave-one-center-out matrix. Colour compares the held-out centers within each column "
                   "(darkest: the worst center for that metric); the numbers are the estimates with their 95 % CI.",
                   source)
    plt.close(fig)


def _heat_map(
    centers: Sequence[str], columns: Sequence[str], cells: Mapping[tuple[str, str], Estimate]
) -> tuple[plt.Figure, dict[str, Any]]:
    def matrix(part: str) -> np.ndarray:
        return np.array([[getattr(cells[(c, col)], part) if (c, col) in cells else np.nan for col in columns]
                         for c in centers], dtype=float)

    value, low, high = matrix("value"), matrix("low"), matrix("high")
    # Columns mix metrics and scales (C-index, Dice, mm), so each is scaled to its own range, 1 = best center.
    shade = np.full_like(value, 0.5)
    for j, column in enumerate(columns):
        lo, hi = np.nanmin(value[:, j]), np.nanmax(value[:, j])
        if hi > lo:
            scaled = (value[:, j] - lo) / (hi - lo)
            shade[:, j] = scaled if _higher_is_better(column) else 1.0 - scaled
    shade[np.isnan(value)] = np.nan
    fig, ax = plt.subplots(figsize=(1.9 * len(columns) + 1.6, 0.65 * len(centers) + 1.4))
    ax.imshow(shade, cmap="OrRd_r", vmin=-0.2, vmax=1.2, aspect="auto")  # margins keep text readable at the ends
    for i in range(len(centers)):
        for j in range(len(columns)):
            text = "—" if np.isnan(value[i, j]) else f"{value[i, j]:.2f}\n({low[i, j]:.2f}–{high[i, j]:.2f})"
            dark = shade[i, j] < 0.35
            ax.text(j, i, text, ha="center", va="center", fontsize=8, color="white" if dark else "black")
    ax.set_xticks(range(len(columns)), [c.replace(": ", ":\n") for c in columns], fontsize=8)
    ax.set_yticks(range(len(centers)), centers, fontsize=9)
    ax.xaxis.tick_top()
    ax.set_ylabel("held-out center")
    fig.tight_layout()
    return fig, {"centers": list(centers), "columns": list(columns), "value": value, "low": low, "high": high}


# --- calibration --------------------------------------------------------------------------------------------


def _prevalence_brier(abnormal: np.ndarray) -> float:
    """Brier score of always predicting the sample's prevalence: the reference of a model without information."""
    return brier(abnormal, np.full(len(abnormal), abnormal.mean()))


def _calibration(report: Report, predictions: pd.DataFrame | pl.DataFrame | None, n_boot: int, seed: int) -> None:
    section = report.section(
        "calibration", "Calibration of the classifier",
        "Does the deployed classifier's P(abnormal) = 1 − P(category normal) match how often held-out studies are "
        "abnormal? Reliability diagram (quantile bins) and Brier score (lower is better), patient bootstrap.",
    )
    if predictions is None:
        _not_measured(section, "calibration (pass the deployed classifier's held-out predictions).")
        return
    missing = [c for c in ("patient", "category", "p_category_normal") if c not in predictions.columns]
    if missing:
        raise ValueError(f"calibration predictions lack columns {missing}: pass the predictions.parquet that "
                         "cls_adapter writes (one row per held-out study)")
    patients = predictions["patient"].to_numpy()
    abnormal = predictions["category"].to_numpy() != "normal"
    probability = np.clip(1.0 - predictions["p_category_normal"].to_numpy().astype(float), 0.0, 1.0)
    model = patient_bootstrap(brier, patients, abnormal, probability, n_boot=n_boot, seed=seed)
    reference = patient_bootstrap(_prevalence_brier, patients, abnormal, n_boot=n_boot, seed=seed)
    section.key_number("Brier score, P(abnormal)", model)
    section.key_number("held-out studies", Count(len(abnormal)))
    section.key_number("abnormal studies", Count(int(abnormal.sum())))
    section.table([["deployed classifier", model], ["always the held-out prevalence (reference)", reference]],
                  ["prediction", "Brier score"], "Brier score of P(abnormal) on the held-out studies.")
    curve = calibration(abnormal, probability, strategy="quantile")
    fig, ax = plt.subplots(figsize=(4.5, 4.2))
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="ideal")
    ax.plot(curve.prob_pred, curve.prob_true, marker="o", label="deployed classifier")
    ax.set(xlabel="predicted P(abnormal)", ylabel="observed share abnormal", xlim=(0, 1), ylim=(0, 1))
    ax.legend()
    fig.tight_layout()
    section.figure(fig, f"Reliability of P(abnormal) on {len(abnormal)} held-out studies "
                   f"(up to {curve.n_bins} equally populated bins).",
                   {"predicted": curve.prob_pred, "observed": curve.prob_true})
    plt.close(fig)


# --- explainability -----------------------------------------------------------------------------------------


def _explainability(report: Report, gallery: Sequence[Mapping[str, Any]], scores: Mapping[str, Estimate]) -> None:
    section = report.section(
        "explainability", "Explainability: Grad-CAM",
        "Where the deployed classifier's evidence for the true category lies on held-out lesion slices, and how "
        "often it falls inside the lesion mask: pointing game (the map's maximum inside the mask) and energy "
        "inside the mask (share of the positive map inside it; a map spread evenly scores the lesion's share "
        "of the slice).",
    )
    if not gallery and not scores:
        _not_measured(section, "Grad-CAM maps and their localisation scores.")
        return
    for name, estimate in scores.items():
        if not isinstance(estimate, Estimate):
            raise TypeError(f"gradcam_scores[{name!r}] is {estimate!r}: pass an Estimate (patient_bootstrap)")
        section.key_number(name, estimate)
    if scores:
        section.table([[name, estimate] for name, estimate in scores.items()], ["score", "estimate"],
                      "Localisation of the Grad-CAM maps against the lesion masks.")
    else:
        _not_measured(section, "localisation scores of the maps below.")
    if gallery:
        _gallery(section, gallery)
    else:
        _not_measured(section, "a gallery of Grad-CAM maps.")


def _gallery(section: Section, items: Sequence[Mapping[str, Any]]) -> None:
    if len(items) > len(string.ascii_lowercase):
        raise ValueError(f"{len(items)} Grad-CAM images: show at most 26 (pick a few typical and failing cases)")
    for item in items:
        _require(item, ("png", "caption"), "gradcam")
    fig, axes = _panel_grid(len(items), 3.4, 3.6)
    letters = string.ascii_lowercase
    for ax, letter, item in zip(axes, letters, items):
        png = Path(item["png"])
        if not png.is_file():
            raise FileNotFoundError(f"no Grad-CAM image at {png}: run the classifier asset, or drop the item")
        ax.imshow(mpimg.imread(png))
        ax.set_title(f"({letter})", fontsize=10)
        ax.set_axis_off()
    fig.tight_layout()
    captions = [str(item["caption"]) for item in items]
    section.figure(fig, "Grad-CAM gallery: " + "; ".join(f"({k}) {c}" for k, c in zip(letters, captions)) + ".",
                   {"png": [Path(item["png"]).name for item in items], "caption": captions})
    plt.close(fig)


def retrospective_report(inputs: RetrospectiveInputs, provenance: Provenance) -> Report:
    """The retrospective technical-validation report (sections `RETROSPECTIVE_SECTIONS`)."""
    report = Report("Retrospective evaluation: technical validation of the brain-MRI foundation model", provenance,
                    subtitle="Technical efficacy on held-out patients: every task against scratch, baselines and "
                    "the oracle; label efficiency, zero-shot, other centers, calibration, explanations")
    _model_card(report, inputs.model_card)
    _multi_task(report, inputs)
    _label_efficiency(report, inputs.label_efficiency, inputs.benchmark_source)
    _paired_leads(report, inputs.paired_leads, inputs.benchmark_source)
    _zero_shot(report, inputs.zero_shot)
    _cross_center(report, inputs.leave_one_center_out, inputs.benchmark_source)
    _calibration(report, inputs.calibration, inputs.n_boot, inputs.seed)
    _explainability(report, inputs.gradcam, inputs.gradcam_scores)
    return report
