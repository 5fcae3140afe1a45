"""The report format: self-contained HTML, a JSON of every number with its interval, and a short summary."""

from __future__ import annotations

import base64
import json
import math
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from matplotlib.figure import Figure

from brainfm.evaluation.bootstrap import Estimate
from brainfm.evaluation.html_report import (
    SYNTHETIC_BANNER,
    Count,
    Provenance,
    Report,
    Setting,
    missing_sections,
    numbers_without_ci,
)

AUC = Estimate(0.812, 0.75, 0.87, n_patients=120, n_boot=1000)
HD95 = Estimate(4.13, 3.2, 5.04, n_patients=120, n_boot=998, n_skipped=2)
SEEDS = Estimate(0.7, 0.61, 0.78, n_patients=120, n_boot=0, n_seeds=3)
HOSTILE = "<script>alert('x')</script> & co"
FPR = np.linspace(0.0, 1.0, 11)


def _report(lang: str = "en") -> Report:
    report = Report(
        "Retrospective technical validation",
        Provenance(synthetic=True, source="synthetic cohort, profile tiny, seed 0"),
        subtitle="Stage-3 adapters on held-out patients",
        lang=lang,
    )
    technical = report.section("technical", "Technical validation", "Held-out patients of all centers.")
    technical.key_number("Macro AUC", AUC).key_number("Held-out patients", Count(120, "patients"))
    technical.table(
        [["ViT probe", AUC, HD95, Count(120)], ["Scratch", SEEDS, HD95, Count(118)]],
        columns=["Model", "Macro AUC", "Hausdorff 95", "Patients"],
        caption=f"Held-out results {HOSTILE}",
        units={"Hausdorff 95": "mm"},
        digits={"Hausdorff 95": 1},
    )
    figure = Figure(figsize=(4, 3))
    figure.subplots().plot(FPR, np.sqrt(FPR))
    technical.figure(figure, f"ROC curve {HOSTILE}", source={"fpr": FPR, "tpr": np.sqrt(FPR), "auc": 0.812})
    technical.note("The encoder was frozen.")
    reader = report.section("reader-study", "阅片研究 Reader study", "放射科医师在有无模型辅助下的诊断。")
    reader.paragraph("脑膜瘤与胶质瘤的鉴别。").table(
        [["Unaided", AUC, Setting(0.3)]], ["Arm", "Accuracy", "Simulated effect"], "准确率 Reader accuracy"
    )
    return report


class _Tags(HTMLParser):
    """Every start tag with its attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def _tags(html: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = _Tags()
    parser.feed(html)
    return parser.tags


def test_html_is_self_contained_with_inline_png_figures(tmp_path: Path) -> None:
    files = _report().write(tmp_path)
    html = files.html.read_text(encoding="utf-8")
    tags = _tags(html)
    names = [name for name, _ in tags]
    assert "script" not in names and "link" not in names and "iframe" not in names
    assert "http://" not in html and "https://" not in html and "url(" not in html
    images = [attrs for name, attrs in tags if name == "img"]
    assert len(images) == 1
    src = images[0]["src"] or ""
    assert src.startswith("data:image/png;base64,")
    png = base64.b64decode(src.removeprefix("data:image/png;base64,"))
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    # Shown at its physical size: a 4 x 3 inch figure (trimmed to its content) is at most 384 x 288 CSS px.
    assert 300 < int(images[0]["width"] or 0) <= 384 and 200 < int(images[0]["height"] or 0) <= 288
    # The contents list links to the sections, and nowhere else.
    hrefs = [attrs["href"] for name, attrs in tags if name == "a"]
    assert hrefs == ["#technical", "#reader-study"]
    assert {attrs.get("id") for _, attrs in tags} >= {
        "technical",
        "reader-study",
        "table-1",
        "table-2",
        "figure-1",
    }


def test_text_is_escaped_everywhere(tmp_path: Path) -> None:
    files = _report().write(tmp_path)
    html = files.html.read_text(encoding="utf-8")
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "Held-out results &lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; co" in html
    # The figure caption appears escaped in the alt text and in the caption.
    assert html.count("ROC curve &lt;script&gt;") == 2
    report = Report("A <b>bold</b> title", Provenance(synthetic=False, source="Center <A>"))
    report.section("s", "S").key_number("<i>AUC</i>", AUC)
    summary = report.markdown()
    assert "<b>" not in summary and "<i>" not in summary and "&lt;i&gt;AUC&lt;/i&gt;" in summary


def test_json_holds_every_number_with_its_interval_and_the_figure_source(tmp_path: Path) -> None:
    document = json.loads(_report().write(tmp_path).json.read_text(encoding="utf-8"))
    assert document["provenance"] == {
        "synthetic": True,
        "source": "synthetic cohort, profile tiny, seed 0",
        "banner": SYNTHETIC_BANNER,
    }
    assert [s["id"] for s in document["sections"]] == ["technical", "reader-study"]
    technical = document["sections"][0]
    assert [k["cell"]["text"] for k in technical["key_numbers"]] == ["0.812 (0.750–0.870)", "120 patients"]
    table, figure, note = technical["blocks"]
    assert (table["type"], figure["type"], note["type"]) == ("table", "figure", "note")
    assert table["columns"][2] == {"name": "Hausdorff 95", "unit": "mm"}
    vit, scratch = table["rows"]
    assert vit["Macro AUC"] | {"text": None} == {
        "kind": "estimate",
        "value": 0.812,
        "low": 0.75,
        "high": 0.87,
        "n_patients": 120,
        "n_boot": 1000,
        "n_skipped": 0,
        "n_seeds": 1,
        "text": None,
    }
    assert vit["Macro AUC"]["text"] == "0.812 (0.750–0.870)"
    assert vit["Hausdorff 95"]["text"] == "4.1 (3.2–5.0)"  # one decimal for this column
    assert (vit["Hausdorff 95"]["n_boot"], vit["Hausdorff 95"]["n_skipped"]) == (998, 2)
    assert scratch["Patients"] == {"kind": "count", "value": 118, "unit": "", "text": "118"}
    assert scratch["Macro AUC"]["n_seeds"] == 3
    assert table["intervals"] == (
        "95 % CI: patient-level bootstrap, 1000 replicates, 120 held-out patients; "
        "patient-level bootstrap, 998 replicates, 120 held-out patients; "
        "t-interval over 3 seeds, 120 held-out patients."
    )
    assert figure["source"] == {"fpr": FPR.tolist(), "tpr": np.sqrt(FPR).tolist(), "auc": 0.812}
    setting = document["sections"][1]["blocks"][1]["rows"][0]["Simulated effect"]
    assert setting == {"kind": "setting", "value": 0.3, "unit": "", "text": "0.3"}
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    for cell in (vit["Macro AUC"], vit["Hausdorff 95"], scratch["Macro AUC"]):
        assert f">{cell['text']}</td>" in html


def test_numbers_without_ci_flags_bare_and_undefined_intervals_only() -> None:
    report = _report()
    assert numbers_without_ci(report.as_json()) == []
    extra = report.section("trial", "Controlled trial")
    extra.table(
        [
            ["bare", 0.85, Count(40), Setting(0.3, "SD")],
            ["nan", Estimate(0.5, math.nan, math.nan, 40, 0), 3, "x"],
        ],
        ["Arm", "Effect", "Patients", "Input"],
        "Mixed cells",
    )
    extra.key_number("Effect", Estimate(0.2, math.nan, 0.4, 40, 10))
    assert numbers_without_ci(report.as_json()) == [
        "sections[trial].key_numbers[Effect].cell",
        "sections[trial].blocks[table-3].rows[0].Effect",
        "sections[trial].blocks[table-3].rows[1].Effect",
        "sections[trial].blocks[table-3].rows[1].Patients",  # a plain int is not a Count
    ]
    # Undefined values are null in the JSON (valid JSON, no NaN) and "n/a" or a bare value on the page.
    rows = report.as_json()["sections"][2]["blocks"][0]["rows"]
    assert rows[1]["Effect"]["low"] is None and rows[1]["Effect"]["text"] == "0.500"
    json.dumps(report.as_json(), allow_nan=False)


def test_missing_sections_flags_absent_and_empty_sections() -> None:
    report = _report()
    report.section("trial", "Controlled trial", "Not run yet.")  # no content: counts as missing
    document = report.as_json()
    assert missing_sections(document, ["technical", "reader-study"]) == []
    assert missing_sections(document, ["technical", "trial", "ethics"]) == ["trial", "ethics"]


def test_chinese_text_survives_the_round_trip(tmp_path: Path) -> None:
    files = _report(lang="zh-CN").write(tmp_path)
    html = files.html.read_text(encoding="utf-8")
    assert '<html lang="zh-CN">' in html
    for text in (
        "阅片研究 Reader study",
        "放射科医师在有无模型辅助下的诊断。",
        "脑膜瘤与胶质瘤的鉴别。",
        "准确率 Reader accuracy",
    ):
        assert text in html
    raw = files.json.read_text(encoding="utf-8")
    assert "脑膜瘤与胶质瘤的鉴别。" in raw  # written as characters, not \\u escapes
    reader = json.loads(raw)["sections"][1]
    assert reader["title"] == "阅片研究 Reader study"
    assert reader["blocks"][0] == {"type": "paragraph", "text": "脑膜瘤与胶质瘤的鉴别。"}
    assert "## 2. 阅片研究 Reader study" in files.markdown.read_text(encoding="utf-8")


def test_summary_is_short_with_provenance_and_key_numbers(tmp_path: Path) -> None:
    summary = _report().write(tmp_path).markdown.read_text(encoding="utf-8")
    assert summary.startswith("# Retrospective technical validation\n")
    assert f"**{SYNTHETIC_BANNER}.** Source: synthetic cohort, profile tiny, seed 0." in summary
    assert (
        "## 1. Technical validation\n- Macro AUC: 0.812 (0.750–0.870)\n- Held-out patients: 120 patients"
        in summary
    )
    assert len(summary.splitlines()) < 20


def test_real_data_is_labelled_as_such() -> None:
    report = Report("Site validation", Provenance(synthetic=False, source="Center A, 2019–2023"))
    report.section("technical", "Technical").key_number("AUC", AUC)
    html = report.html()
    assert SYNTHETIC_BANNER not in html and 'class="banner real"' in html
    assert "<strong>Real data: Center A, 2019–2023</strong>" in html


def test_output_is_identical_for_identical_input(tmp_path: Path) -> None:
    first, second = _report().write(tmp_path / "a"), _report().write(tmp_path / "b")
    for a, b in zip((first.html, first.json, first.markdown), (second.html, second.json, second.markdown)):
        assert a.read_bytes() == b.read_bytes()
    assert json.loads(first.json.read_text(encoding="utf-8"))["date"] is None
    dated = Report("T", Provenance(True, "synthetic"), date="2026-12-01")
    assert '<p class="date">2026-12-01</p>' in dated.html()


def test_bad_input_is_refused_with_a_hint() -> None:
    with pytest.raises(ValueError, match="use an Estimate"):
        Count(2.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="non-negative"):
        Count(-1)
    with pytest.raises(ValueError, match="name the data"):
        Provenance(True, " ")
    report = _report()
    with pytest.raises(ValueError, match="used twice"):
        report.section("technical", "Again")
    with pytest.raises(ValueError, match="lowercase letters"):
        report.section("Reader Study", "Bad id")
    section = report.section("extra", "Extra")
    with pytest.raises(ValueError, match="row 0 has 1 cells for 2 columns"):
        section.table([["a"]], ["Model", "AUC"], "short row")
    with pytest.raises(ValueError, match=r"columns \['AUC '\] that are not in the table"):
        section.table([["a", AUC]], ["Model", "AUC"], "typo", units={"AUC ": "fraction"})
    with pytest.raises(TypeError, match="convert it"):
        section.table([["a", {"auc": 0.8}]], ["Model", "AUC"], "a dict cell")  # type: ignore[list-item]
    with pytest.raises(TypeError, match="DataFrame"):
        section.figure(Figure(), "c", source={"frame": object()})
