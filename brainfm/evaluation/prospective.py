"""The prospective (clinical efficacy) report: the reader study, doctors with and without the model.

Builds a :class:`~brainfm.evaluation.html_report.Report` from :class:`ReaderStudyResult`: MRMC
aided-vs-unaided effects overall and per subgroup with their interactions, detection per subtype group, the
paired tests, automation bias, and the model's own row against the doctors on held-out cases. P-values and
degrees of freedom are shown as text: they are test statistics, not estimates with an interval.
"""

from __future__ import annotations

import math

import matplotlib.pyplot as plt

from brainfm.evaluation.html_report import Count, Provenance, Report
from brainfm.evaluation.reader_study import ReaderStudyResult
from brainfm.plots import forest_figure

PROSPECTIVE_SECTIONS: tuple[str, ...] = (
    "design", "assistance", "subgroups", "detection", "paired-tests", "automation-bias", "model-vs-readers",
)
_FOM = {"auc": "AUC (abnormal vs normal)", "accuracy": "accuracy (subtype correct)"}


def _p(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.3g}"  # NaN: the test was undefined on these data


def prospective_report(result: ReaderStudyResult, provenance: Provenance, model_source: str) -> Report:
    """The reader-study report. ``model_source`` names the classifier behind the model-vs-doctors rows (e.g.
    the adapter's version), or says why there are none."""
    report = Report("Prospective evaluation: reader study (doctors with and without the model)", provenance,
                    subtitle="Clinical efficacy: multi-reader multi-case analysis, aided vs unaided")
    simulated = " (simulated readers: their effects are inputs of the simulation, not findings)" if result.simulated else ""
    design = report.section("design", "Design", f"Every reader read every case twice, with and without the "
                            f"model's suggestion, in a crossover with washout{simulated}.")
    design.key_number("readers", Count(result.n_readers)).key_number("cases", Count(result.n_cases))
    design.key_number("patients", Count(result.n_patients))

    overall = [e for e in result.assistance if e.group == "all"]
    assistance = report.section(
        "assistance", "Aided vs unaided, all readers",
        "Obuchowski–Rockette analysis with Hillis degrees of freedom and jackknife covariances: readers and cases "
        "random. Effect = aided − unaided.",
    )
    for e in overall:
        assistance.key_number(f"{_FOM[e.fom]}: aided − unaided", e.effect)
    assistance.table(
        [[_FOM[e.fom], e.unaided, e.aided, e.effect, f"{e.df:.2f}", _p(e.p_value)] for e in overall],
        ["figure of merit", "unaided", "aided", "effect", "df", "p"], "Aided vs unaided (all readers).",
    )

    subgroups = report.section("subgroups", "Subgroups and interactions",
                               "The same analysis within each reader group (seniority, hospital tier, specialty), "
                               "and the difference of the effect between groups (pooled t on reader effects).")
    groups = [e for e in result.assistance if e.group != "all"]
    subgroups.table(
        [[e.group, _FOM[e.fom], Count(len(e.readers)), e.unaided, e.aided, e.effect, _p(e.p_value)] for e in groups],
        ["group", "figure of merit", "readers", "unaided", "aided", "effect", "p"], "Aided vs unaided per group.",
    )
    accuracy = [e for e in result.assistance if e.fom == "accuracy"]
    fig = forest_figure([e.group for e in accuracy], [e.effect.value for e in accuracy],
                        [e.effect.low for e in accuracy], [e.effect.high for e in accuracy],
                        "accuracy, aided − unaided (95 % CI)")
    subgroups.figure(fig, "Gain in diagnostic accuracy with the model, per reader group.",
                     {"group": [e.group for e in accuracy], "effect": [e.effect.value for e in accuracy],
                      "low": [e.effect.low for e in accuracy], "high": [e.effect.high for e in accuracy]})
    plt.close(fig)
    subgroups.table(
        [[_FOM[i.fom], i.factor, f"{i.level_a} − {i.level_b}", i.effect, f"{i.df:.0f}", _p(i.p_value)]
         for i in result.interactions],
        ["figure of merit", "factor", "contrast", "difference of effects", "df", "p"],
        "Subgroup × session interactions (not adjusted for multiplicity).",
    )

    detection = report.section("detection", "Sensitivity and specificity per subtype group",
                               "One group against the rest; patient-bootstrap intervals.")
    detection.table(
        [[g.group, g.sensitivity.unaided, g.sensitivity.aided, g.sensitivity.difference,
          g.specificity.unaided, g.specificity.aided, g.specificity.difference] for g in result.detection],
        ["group", "sensitivity unaided", "sensitivity aided", "Δ sensitivity", "specificity unaided",
         "specificity aided", "Δ specificity"], "Detection per subtype group.",
    )

    m, t = result.mcnemar, result.reading_time
    paired = report.section("paired-tests", "Paired tests",
                            "Per (reader, case) pair: McNemar on correctness, Wilcoxon signed-rank on reading time.")
    paired.key_number("discordant-pair odds ratio (aided-only / unaided-only)", m.odds_ratio)
    paired.key_number("median ratio of reading time, aided / unaided", t.median_ratio)
    paired.table(
        [["correctness (McNemar" + (", exact)" if m.exact else ")"), Count(m.n_pairs), Count(m.aided_only),
          Count(m.unaided_only), m.odds_ratio, f"{m.statistic:.3g}", _p(m.p_value)]],
        ["test", "pairs", "aided only correct", "unaided only correct", "odds ratio", "statistic", "p"],
        "Paired correctness.",
    )
    paired.table(
        [[Count(t.n_pairs), t.unaided_median_s, t.aided_median_s, t.median_ratio, t.rank_biserial,
          f"{t.statistic:.3g}", _p(t.p_value)]],
        ["pairs", "median unaided", "median aided", "median ratio", "rank-biserial", "Wilcoxon W", "p"],
        "Reading time.", units={"median unaided": "s", "median aided": "s"},
    )

    bias = report.section("automation-bias", "Automation bias",
                          "Among aided reads where the model's suggestion was wrong: how often the reader adopted it.")
    bias.table(
        [[b.group, Count(b.n_reads), Count(b.n_errors), b.adoption,
          "n/a" if b.adoption_among_errors is None else b.adoption_among_errors] for b in result.automation_bias],
        ["group", "reads with a wrong suggestion", "wrong reads", "adopted (all)", "adopted (among wrong reads)"],
        "Adoption of wrong suggestions.",
    )

    versus = report.section("model-vs-readers", "Doctors vs the model",
                            f"The stage-3 classifier on reader-study cases held out from its training ({model_source}), "
                            "against the readers' unaided reads of the same cases.")
    if result.model_vs_readers:
        versus.table(
            [[r.group + (" (simulated)" if r.simulated else ""), Count(r.n_readers), Count(r.n_cases),
              r.readers_accuracy, r.model_accuracy, r.accuracy_difference,
              "n/a" if r.readers_auc is None else r.readers_auc, "n/a" if r.model_auc is None else r.model_auc]
             for r in result.model_vs_readers],
            ["readers", "readers (n)", "cases", "readers' accuracy", "model accuracy", "model − readers",
             "readers' AUC", "model AUC"], "Accuracy and AUC on the same held-out cases.",
        )
    else:
        versus.paragraph("No model predictions on held-out reader-study cases were available.")
    return report
