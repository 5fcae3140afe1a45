"""Evaluation reports for clinicians and ethics boards: one self-contained HTML file, its JSON and a summary.

A report states the provenance of its data in a banner at the top, lists its sections, and shows every
estimate as ``value (low–high)`` with its 95 % confidence interval. Counts (:class:`Count`) and fixed inputs
(:class:`Setting`) are marked as such and carry no interval; a bare float is accepted but recorded as a number
without an interval, which :func:`numbers_without_ci` reports (the Dagster asset checks call it and
:func:`missing_sections` on ``report.json``).

``write(folder)`` produces ``report.html`` (inline CSS, figures as PNG data URIs: no external resources and
no JavaScript), ``report.json`` (every cell with its numbers and interval, every figure's source data, the
provenance and the sections) and ``summary.md`` (title, provenance and the key numbers of each section, for
Dagster metadata). The HTML is rendered from the same JSON document, so the two cannot disagree. Output is
byte-identical for identical input: nothing time-dependent is written unless ``date`` is passed.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import re
import struct
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2
import numpy as np

from brainfm.evaluation.bootstrap import Estimate

if TYPE_CHECKING:
    from matplotlib.figure import Figure

SYNTHETIC_BANNER = "Synthetic cohort: simulated effects are inputs, not findings"
FORMAT = "brainfm-report/1"
HTML_FILE, JSON_FILE, MARKDOWN_FILE = "report.html", "report.json", "summary.md"
CI_LEGEND = (
    "Estimates are shown as value (95 % confidence interval); counts and fixed inputs have no interval."
)
# Kinds of cell that are measured and therefore need an interval; "count", "setting" and "text" need none.
_NEEDS_CI = frozenset({"estimate", "number"})
_SECTION_ID = re.compile(r"^[a-z][a-z0-9-]*$")
_CSS_PX_PER_INCH = 96  # a CSS inch; figures are shown at their physical size


@dataclass(frozen=True)
class Provenance:
    """Where the report's numbers come from, stated at the top of every output.

    synthetic: True for the simulated cohort (its effects were put in by the simulator); source: the data in
    words, e.g. "synthetic cohort, profile tiny, seed 0" or "Center A, retrospective 2019–2023".
    """

    synthetic: bool
    source: str

    def __post_init__(self) -> None:
        if not self.source.strip():
            raise ValueError(
                "Provenance.source is empty: name the data, e.g. 'synthetic cohort, profile tiny'"
            )

    @property
    def banner(self) -> str:
        return SYNTHETIC_BANNER if self.synthetic else f"Real data: {self.source}"


@dataclass(frozen=True)
class Count:
    """A whole number that needs no interval (patients, studies, events); ``unit`` is shown after it."""

    value: int
    unit: str = ""

    def __post_init__(self) -> None:
        if isinstance(self.value, bool) or not isinstance(self.value, int | np.integer) or self.value < 0:
            raise ValueError(f"a Count is a non-negative whole number, got {self.value!r}: use an Estimate")


@dataclass(frozen=True)
class Setting:
    """A fixed input, not a measurement (a threshold, a simulated effect size): shown without an interval."""

    value: float
    unit: str = ""


Cell = Estimate | Count | Setting | str | float | int | None


@dataclass(frozen=True)
class ReportFiles:
    """The three files written by :meth:`Report.write`."""

    html: Path
    json: Path
    markdown: Path


def _finite(x: float) -> float | None:
    """JSON has no NaN or infinity: an undefined number is written as null."""
    return float(x) if math.isfinite(x) else None


def _with_unit(text: str, unit: str) -> str:
    return f"{text} {unit}" if unit else text


def _cell(value: Cell, digits: int) -> dict[str, Any]:
    """One table cell or key number as JSON: its kind, its numbers and the text shown."""
    if isinstance(value, Estimate):
        if not math.isfinite(value.value):
            text = "n/a"
        elif math.isfinite(value.low) and math.isfinite(value.high):
            text = value.format(digits)
        else:  # shown without an interval, and reported by numbers_without_ci
            text = f"{value.value:.{digits}f}"
        return {
            "kind": "estimate",
            "value": _finite(value.value),
            "low": _finite(value.low),
            "high": _finite(value.high),
            "n_patients": value.n_patients,
            "n_boot": value.n_boot,
            "n_skipped": value.n_skipped,
            "n_seeds": value.n_seeds,
            "text": text,
        }
    if isinstance(value, Count):
        return {
            "kind": "count",
            "value": int(value.value),
            "unit": value.unit,
            "text": _with_unit(str(int(value.value)), value.unit),
        }
    if isinstance(value, Setting):
        return {
            "kind": "setting",
            "value": _finite(value.value),
            "unit": value.unit,
            "text": _with_unit(f"{value.value:g}", value.unit),
        }
    if value is None or isinstance(value, str):
        return {"kind": "text", "text": value or "—"}
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise TypeError(
            f"a report cell is an Estimate, Count, Setting, str, number or None; got {type(value).__name__} "
            f"{value!r}: convert it to one of those"
        )
    number = float(value)
    return {
        "kind": "number",
        "value": _finite(number),
        "text": f"{number:.{digits}f}" if math.isfinite(number) else "n/a",
    }


def _jsonable(obj: Any, where: str) -> Any:
    """``obj`` as plain JSON (numpy arrays to lists, non-finite floats to null); TypeError names the path."""
    if isinstance(obj, np.ndarray | np.generic):
        return _jsonable(obj.tolist(), where)
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v, f"{where}.{k}") for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v, f"{where}[{i}]") for i, v in enumerate(obj)]
    if isinstance(obj, float):
        return _finite(obj)
    if obj is None or isinstance(obj, str | int):
        return obj
    raise TypeError(
        f"{where} is a {type(obj).__name__}: a figure source holds numbers, strings, lists, dicts and numpy "
        "arrays only; convert it (e.g. a DataFrame with .to_dict('list'))"
    )


def _describe_interval(estimate: Estimate) -> str:
    method = (
        f"patient-level bootstrap, {estimate.n_boot} replicates"
        if estimate.n_boot
        else f"t-interval over {estimate.n_seeds} seeds"
    )
    return method if estimate.n_patients is None else f"{method}, {estimate.n_patients} held-out patients"


def _png_size(png: bytes) -> tuple[int, int]:
    """Width and height (pixels) from the PNG header: IHDR is the first chunk, at a fixed offset."""
    width, height = struct.unpack(">II", png[16:24])
    return int(width), int(height)


class Section:
    """One numbered part of a report; made by :meth:`Report.section`. Each method returns the section."""

    def __init__(self, report: Report, id: str, title: str, intro: str) -> None:
        self._report = report
        self.id = id
        self.title = title
        self.intro = intro
        self.blocks: list[dict[str, Any]] = []
        self.key_numbers: list[dict[str, Any]] = []

    def paragraph(self, text: str) -> Section:
        self.blocks.append({"type": "paragraph", "text": text})
        return self

    def note(self, text: str) -> Section:
        """A highlighted remark: a caveat, a limitation, what a number does not show."""
        self.blocks.append({"type": "note", "text": text})
        return self

    def key_number(self, label: str, value: Estimate | Count | Setting, digits: int = 3) -> Section:
        """A headline number, shown at the top of the section and in ``summary.md``."""
        if not isinstance(value, Estimate | Count | Setting):
            raise TypeError(f"key number {label!r} must be an Estimate, Count or Setting, got {value!r}")
        self.key_numbers.append({"label": label, "cell": _cell(value, digits)})
        return self

    def table(
        self,
        rows: Sequence[Sequence[Cell]],
        columns: Sequence[str],
        caption: str,
        units: Mapping[str, str] | None = None,
        digits: int | Mapping[str, int] = 3,
    ) -> Section:
        """A numbered table, one sequence of cells per row in ``columns`` order.

        ``units`` maps a column to its unit (shown in the header, e.g. {"Hausdorff 95": "mm"}); ``digits``:
        decimals of estimates and plain numbers, for all columns or per column (3 where a column is not
        named). A footnote names the interval method of the estimates.
        """
        units = dict(units or {})
        column_digits = dict(digits) if isinstance(digits, Mapping) else {}
        default_digits = 3 if isinstance(digits, Mapping) else digits
        if len(set(columns)) != len(columns) or not all(columns):
            raise ValueError(f"table columns must be distinct and non-empty, got {list(columns)}")
        if unknown := sorted((set(units) | set(column_digits)) - set(columns)):
            raise ValueError(
                f"units or digits given for columns {unknown} that are not in the table {list(columns)}"
            )
        json_rows = []
        for i, row in enumerate(rows):
            if len(row) != len(columns):
                raise ValueError(
                    f"table row {i} has {len(row)} cells for {len(columns)} columns: {list(columns)}"
                )
            json_rows.append(
                {
                    column: _cell(value, column_digits.get(column, default_digits))
                    for column, value in zip(columns, row)
                }
            )
        estimates = [value for row in rows for value in row if isinstance(value, Estimate)]
        methods = list(dict.fromkeys(_describe_interval(e) for e in estimates))
        number = self._report._next_number("table")
        self.blocks.append(
            {
                "type": "table",
                "id": f"table-{number}",
                "number": number,
                "caption": caption,
                "columns": [{"name": c, "unit": units.get(c, "")} for c in columns],
                "rows": json_rows,
                "intervals": f"95 % CI: {'; '.join(methods)}." if methods else "",
            }
        )
        return self

    def figure(self, figure: Figure, caption: str, source: Mapping[str, Any], dpi: int = 150) -> Section:
        """A numbered figure embedded as PNG; ``source``: the data drawn (written to the JSON).

        The figure is shown at its physical size (inches, trimmed to its content) and saved at ``dpi``
        (pixels per inch); the caller still owns and closes it.
        """
        number = self._report._next_number("figure")
        figure_id = f"figure-{number}"
        buffer = io.BytesIO()
        # No "Software" entry (the matplotlib version), so that the PNG bytes depend on the drawing only; a
        # tight box keeps axis labels that a figure without a layout engine would cut off.
        figure.savefig(buffer, format="png", dpi=dpi, metadata={"Software": None}, bbox_inches="tight")
        png = buffer.getvalue()
        width, height = _png_size(png)
        self._report._images[figure_id] = base64.b64encode(png).decode("ascii")
        self.blocks.append(
            {
                "type": "figure",
                "id": figure_id,
                "number": number,
                "caption": caption,
                "width_px": round(width * _CSS_PX_PER_INCH / dpi),
                "height_px": round(height * _CSS_PX_PER_INCH / dpi),
                "source": _jsonable(source, f"{figure_id} source"),
            }
        )
        return self

    def as_json(self) -> dict[str, Any]:
        """The section as it appears in ``report.json``."""
        return {
            "id": self.id,
            "title": self.title,
            "intro": self.intro,
            "key_numbers": self.key_numbers,
            "blocks": self.blocks,
        }


class Report:
    """A report under construction: add sections with :meth:`section`, then :meth:`write` it.

    lang: the BCP 47 language of the text ("en", "zh-CN"), which lets the browser pick the right glyphs;
    date: shown under the title when given (nothing time-dependent is added otherwise).
    """

    def __init__(
        self,
        title: str,
        provenance: Provenance,
        subtitle: str = "",
        date: str | None = None,
        lang: str = "en",
    ) -> None:
        self.title = title
        self.provenance = provenance
        self.subtitle = subtitle
        self.date = date
        self.lang = lang
        self.sections: list[Section] = []
        self._images: dict[str, str] = {}  # figure id -> PNG as base64
        self._counters = {"table": 0, "figure": 0}

    def _next_number(self, kind: str) -> int:
        self._counters[kind] += 1
        return self._counters[kind]

    def section(self, id: str, title: str, intro: str = "") -> Section:
        """A new section; ``id`` (lowercase letters, digits, hyphens) is its anchor and its name in checks."""
        if not _SECTION_ID.match(id):
            raise ValueError(
                f"section id {id!r} must be lowercase letters, digits and hyphens, e.g. 'reader-study'"
            )
        if any(s.id == id for s in self.sections):
            raise ValueError(f"section id {id!r} is used twice: give each section its own id")
        section = Section(self, id, title, intro)
        self.sections.append(section)
        return section

    def as_json(self) -> dict[str, Any]:
        """The report as a JSON-ready document (the content of ``report.json``)."""
        return {
            "format": FORMAT,
            "title": self.title,
            "subtitle": self.subtitle,
            "date": self.date,
            "lang": self.lang,
            "provenance": {
                "synthetic": self.provenance.synthetic,
                "source": self.provenance.source,
                "banner": self.provenance.banner,
            },
            "ci_legend": CI_LEGEND,
            "sections": [s.as_json() for s in self.sections],
        }

    def html(self) -> str:
        """The self-contained page (the content of ``report.html``)."""
        return _TEMPLATE.render(report=self.as_json(), images=self._images)

    def markdown(self) -> str:
        """A short summary: title, provenance, and each section's key numbers."""
        esc = html.escape  # Dagster renders Markdown, and Markdown passes raw HTML through
        document = self.as_json()
        provenance = document["provenance"]
        lines = [f"# {esc(self.title)}", ""]
        if self.subtitle:
            lines += [esc(self.subtitle), ""]
        lines += [f"**{esc(provenance['banner'])}.** Source: {esc(provenance['source'])}.", "", CI_LEGEND]
        for number, section in enumerate(document["sections"], start=1):
            lines += ["", f"## {number}. {esc(section['title'])}"]
            lines += [f"- {esc(k['label'])}: {esc(k['cell']['text'])}" for k in section["key_numbers"]]
        return "\n".join(lines) + "\n"

    def write(self, folder: Path) -> ReportFiles:
        """Write report.html, report.json and summary.md (UTF-8) into ``folder``, created if needed."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        files = ReportFiles(folder / HTML_FILE, folder / JSON_FILE, folder / MARKDOWN_FILE)
        files.html.write_text(self.html(), encoding="utf-8")
        files.json.write_text(
            json.dumps(self.as_json(), ensure_ascii=False, indent=1, allow_nan=False) + "\n", encoding="utf-8"
        )
        files.markdown.write_text(self.markdown(), encoding="utf-8")
        return files


def missing_sections(report_json: Mapping[str, Any], required: Sequence[str]) -> list[str]:
    """The ids in ``required`` that the report lacks or left empty (no block and no key number)."""
    present = {s["id"] for s in report_json.get("sections", []) if s.get("blocks") or s.get("key_numbers")}
    return [section_id for section_id in required if section_id not in present]


def numbers_without_ci(report_json: Mapping[str, Any]) -> list[str]:
    """Paths of the measured numbers (estimates, bare numbers) that lack a finite low and high.

    A path reads like ``sections[technical].blocks[table-1].rows[0].AUC``. Counts, settings, text and the
    figures' source data are not checked.
    """
    return [
        path for path, cell in _cells(report_json, "") if cell.get("low") is None or cell.get("high") is None
    ]


def _cells(node: Any, path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """(path, cell) for every cell that needs an interval, anywhere in the document but figure sources."""
    if isinstance(node, Mapping):
        if node.get("kind") in _NEEDS_CI:
            yield path, dict(node)
            return
        for key, value in node.items():
            if key != "source":
                yield from _cells(value, f"{path}.{key}" if path else str(key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            name = value.get("id", value.get("label", i)) if isinstance(value, Mapping) else i
            yield from _cells(value, f"{path}[{name}]")


_TEMPLATE = jinja2.Environment(
    autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True
).from_string("""\
<!DOCTYPE html>
<html lang="{{ report.lang }}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ report.title }}</title>
<style>
:root { --ink: #1b1f24; --muted: #57606a; --rule: #d0d7de; --accent: #0b5cad; }
* { box-sizing: border-box; }
html { background: #fff; }
body { margin: 0 auto; max-width: 60rem; padding: 2.5rem 2rem 4rem; color: var(--ink);
  font: 16px/1.55 "Source Sans 3", "Noto Sans", "Noto Sans CJK SC", "Source Han Sans SC", "PingFang SC",
  "Microsoft YaHei", "Liberation Sans", "DejaVu Sans", Arial, sans-serif; }
h1 { font-size: 1.9rem; line-height: 1.2; margin: 0 0 .3rem; }
h2 { font-size: 1.35rem; margin: 2.6rem 0 .6rem; padding-bottom: .3rem; border-bottom: 2px solid var(--rule); }
.subtitle { font-size: 1.1rem; color: var(--muted); margin: 0; }
.date { color: var(--muted); margin: .2rem 0 0; }
.banner { margin: 1.4rem 0 1rem; padding: .8rem 1rem; border-left: 6px solid; border-radius: 4px; }
.banner strong { display: block; font-size: 1.05rem; }
.banner.synthetic { background: #fff4d6; border-color: #c98600; }
.banner.real { background: #e7f0fb; border-color: var(--accent); }
.legend { color: var(--muted); font-size: .92rem; }
nav { margin: 1.2rem 0; padding: .8rem 1.2rem; background: #f6f8fa; border-radius: 4px; }
nav h2 { margin: 0 0 .3rem; font-size: 1rem; border: 0; padding: 0; }
nav ol { margin: 0; padding-left: 1.4rem; }
a { color: var(--accent); }
.keys { display: flex; flex-wrap: wrap; gap: .8rem; margin: 1rem 0; padding: 0; list-style: none; }
.keys li { border: 1px solid var(--rule); border-radius: 4px; padding: .5rem .8rem; min-width: 11rem; }
.keys .label { display: block; color: var(--muted); font-size: .85rem; }
.keys .value { font-size: 1.15rem; font-weight: 600; font-variant-numeric: tabular-nums; }
table { border-collapse: collapse; margin: 1.4rem 0 .3rem; width: 100%; font-size: .95rem; }
caption { caption-side: top; text-align: left; padding-bottom: .4rem; }
caption b, figcaption b { font-weight: 600; }
th, td { padding: .35rem .7rem; text-align: left; vertical-align: top; }
thead th { border-top: 2px solid var(--ink); border-bottom: 1px solid var(--ink); }
tbody tr:last-child td { border-bottom: 2px solid var(--ink); }
tbody tr:nth-child(even) { background: #f6f8fa; }
.unit { font-weight: normal; color: var(--muted); }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.intervals { color: var(--muted); font-size: .85rem; margin: 0 0 1.4rem; }
figure { margin: 1.6rem 0; }
figure img { display: block; max-width: 100%; height: auto; }
figcaption { margin-top: .4rem; font-size: .95rem; }
.note { background: #f6f8fa; border-left: 4px solid var(--muted); padding: .6rem 1rem; }
@media print {
  body { max-width: none; padding: 0; }
  table, figure, .banner, .keys { break-inside: avoid; }
  h2 { break-after: avoid; }
}
</style>
</head>
<body>
<header>
<h1>{{ report.title }}</h1>
{% if report.subtitle %}<p class="subtitle">{{ report.subtitle }}</p>{% endif %}
{% if report.date %}<p class="date">{{ report.date }}</p>{% endif %}
<div class="banner {{ 'synthetic' if report.provenance.synthetic else 'real' }}" role="note">
<strong>{{ report.provenance.banner }}</strong>
Source: {{ report.provenance.source }}
</div>
<p class="legend">{{ report.ci_legend }}</p>
</header>
<nav>
<h2>Contents</h2>
<ol>
{% for section in report.sections %}
<li><a href="#{{ section.id }}">{{ section.title }}</a></li>
{% endfor %}
</ol>
</nav>
<main>
{% for section in report.sections %}
<section id="{{ section.id }}">
<h2>{{ loop.index }}. {{ section.title }}</h2>
{% if section.intro %}<p>{{ section.intro }}</p>{% endif %}
{% if section.key_numbers %}
<ul class="keys">
{% for key in section.key_numbers %}
<li><span class="label">{{ key.label }}</span><span class="value">{{ key.cell.text }}</span></li>
{% endfor %}
</ul>
{% endif %}
{% for block in section.blocks %}
{% if block.type == "paragraph" %}
<p>{{ block.text }}</p>
{% elif block.type == "note" %}
<p class="note">{{ block.text }}</p>
{% elif block.type == "table" %}
<table id="{{ block.id }}">
<caption><b>Table {{ block.number }}.</b> {{ block.caption }}</caption>
<thead><tr>
{% for column in block.columns %}
{% set first = block.rows[0][column.name] if block.rows else none %}
<th scope="col"{% if first and first.kind != "text" %} class="num"{% endif %}>{{ column.name }}
{%- if column.unit %} <span class="unit">({{ column.unit }})</span>{% endif %}</th>
{% endfor %}
</tr></thead>
<tbody>
{% for row in block.rows %}
<tr>
{% for column in block.columns %}
{% set cell = row[column.name] %}
<td{% if cell.kind != "text" %} class="num"{% endif %}>{{ cell.text }}</td>
{% endfor %}
</tr>
{% endfor %}
</tbody>
</table>
{% if block.intervals %}<p class="intervals">{{ block.intervals }}</p>{% endif %}
{% elif block.type == "figure" %}
<figure id="{{ block.id }}">
<img src="data:image/png;base64,{{ images[block.id] }}" width="{{ block.width_px }}" \
height="{{ block.height_px }}" alt="Figure {{ block.number }}. {{ block.caption }}">
<figcaption><b>Figure {{ block.number }}.</b> {{ block.caption }}</figcaption>
</figure>
{% endif %}
{% endfor %}
</section>
{% endfor %}
</main>
</body>
</html>
""")
