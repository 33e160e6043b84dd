"""The review pack as Markdown and as one self-contained HTML file (inline CSS and SVG, no scripts).

Pure functions of the pack. Every piece of text is escaped: titles, findings and table cells come
from people (incident titles, needs of interested parties, action descriptions). A section is always
rendered, and what it could not gather is shown as a callout rather than left out.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from flows.html_page import (  # noqa: F401 - LEVEL_FILLS, SERIES_STROKES: the tests read them here
    LEVEL_FILLS,
    SERIES_STROKES,
    e,
    heat_map_svg,
    html_table,
    trend_svg,
)
from flows.text import markdown_text
from schemas.review_pack import Chart, Figure, HeatMap, ReviewPack, Section

STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2rem auto;max-width:1100px;
color:#111827;line-height:1.45;padding:0 1rem}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{font-size:1.2rem;border-bottom:2px solid #e5e7eb;padding-top:1rem}
h3{font-size:1rem;margin:.8rem 0 .3rem}.meta{color:#4b5563}table{border-collapse:collapse;margin:.4rem 0}
th,td{border:1px solid #d1d5db;padding:.25rem .5rem;text-align:left;vertical-align:top;font-size:.9rem}
th{background:#f3f4f6}
.missing{background:#fef3c7;border-left:4px solid #d97706;padding:.5rem .8rem;margin:.5rem 0}
.clause{color:#6b7280;font-weight:normal}figure{margin:.6rem 0}figcaption{font-size:.85rem;color:#374151}
svg text{font-family:system-ui,sans-serif}
"""


def _when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M %Z").strip()


def _figure(value: Figure) -> str:
    return "—" if value is None else str(value)


def _label(key: str) -> str:
    return key.replace("_", " ")


# -- Markdown --------------------------------------------------------------------------------------


def _md_cell(value: object) -> str:
    # Text from people, on one line (no line break may end a table row), with every Markdown
    # character escaped: a title such as "[Open](https://…)" is text, not a link.
    return markdown_text(" ".join(str(value).splitlines()))


def _md_table(columns: Sequence[str], rows: Iterable[Sequence[object]]) -> list[str]:
    lines = ["| " + " | ".join(_md_cell(c) for c in columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_md_cell(v) for v in row) + " |" for row in rows]
    return [*lines, ""]


def _md_line(text: str) -> str:
    return markdown_text(" ".join(text.split()))


def _md_chart(chart: Chart) -> list[str]:
    lines = [f"*{_md_line(chart.title)}* (drawn as a chart in the HTML pack):", ""]
    if isinstance(chart, HeatMap):
        rows = [[label, *row] for label, row in zip(chart.likelihood_labels, chart.counts, strict=True)]
        return [*lines, *_md_table(["likelihood \\ impact", *chart.impact_labels], rows)]
    rows = [[label, *(_figure(s.values[i]) for s in chart.series)] for i, label in enumerate(chart.labels)]
    unit = f" ({chart.unit})" if chart.unit else ""
    return [*lines, *_md_table([f"month{unit}", *(s.name for s in chart.series)], rows)]


def _md_section(section: Section) -> list[str]:
    lines = [f"## {section.clause} {_md_line(section.title)}", "", _md_line(section.summary), ""]
    for missing in section.missing:
        lines += [f"> **Data missing:** {_md_line(missing)}", ""]
    if section.figures:
        lines += _md_table(["figure", "value"], [[_label(k), _figure(v)] for k, v in section.figures.items()])
    for chart in section.charts:
        lines += _md_chart(chart)
    for table in section.tables:
        lines += [f"### {_md_line(table.title)}", "", *_md_table(table.columns, table.rows)]
    lines += [f"- {_md_line(finding)}" for finding in section.findings]
    return [*lines, ""] if section.findings else lines


def markdown(pack: ReviewPack) -> str:
    kind = "Extraordinary management review" if pack.kind == "extraordinary" else "Management review"
    lines = [
        f"# {kind} {_md_line(pack.review_id)}",
        "",
        f"- Reason: {_md_line(pack.reason) or '—'}",
        f"- Meeting: {_when(pack.meeting_at)}",
        f"- Period: {_when(pack.period_start)} to {_when(pack.period_end)}",
        f"- Prepared: {_when(pack.generated_at)}",
        "",
        "## Attendees",
        "",
        *(f"- {_md_line(a.name)}, {_md_line(a.role)} <{_md_line(a.email)}>" for a in pack.attendees),
        "",
        "## Agenda",
        "",
        *(f"{n}. {_md_line(item)}" for n, item in enumerate(pack.agenda, start=1)),
        "",
    ]
    for section in pack.sections:
        lines += _md_section(section)
    return "\n".join(lines).rstrip() + "\n"


# -- HTML ------------------------------------------------------------------------------------------


def _chart_html(chart: Chart) -> str:
    svg = heat_map_svg(chart) if isinstance(chart, HeatMap) else trend_svg(chart)
    return f"<figure>{svg}<figcaption>{e(chart.title)}</figcaption></figure>"


def _section_html(section: Section) -> str:
    parts = [
        f'<section id="{e(section.key)}"><h2><span class="clause">{e(section.clause)}</span> '
        f"{e(section.title)}</h2><p>{e(section.summary)}</p>"
    ]
    parts += [f'<p class="missing"><strong>Data missing:</strong> {e(m)}</p>' for m in section.missing]
    if section.figures:
        parts.append(
            html_table(["figure", "value"], [[_label(k), _figure(v)] for k, v in section.figures.items()])
        )
    parts += [_chart_html(chart) for chart in section.charts]
    parts += [f"<h3>{e(t.title)}</h3>" + html_table(t.columns, t.rows) for t in section.tables]
    if section.findings:
        parts.append("<ul>" + "".join(f"<li>{e(f)}</li>" for f in section.findings) + "</ul>")
    return "".join(parts) + "</section>"


def html(pack: ReviewPack) -> str:
    kind = "Extraordinary management review" if pack.kind == "extraordinary" else "Management review"
    title = f"{kind} {pack.review_id}"
    attendees = html_table(["name", "role", "email"], [[a.name, a.role, a.email] for a in pack.attendees])
    agenda = "<ol>" + "".join(f"<li>{e(item)}</li>" for item in pack.agenda) + "</ol>"
    meta = (
        f'<p class="meta">Reason: {e(pack.reason or "—")}<br>Meeting: {e(_when(pack.meeting_at))}<br>'
        f"Period: {e(_when(pack.period_start))} to {e(_when(pack.period_end))}<br>"
        f"Prepared: {e(_when(pack.generated_at))}</p>"
    )
    sections = "".join(_section_html(s) for s in pack.sections)
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{e(title)}</title><style>{STYLE}</style></head><body>"
        f"<h1>{e(title)}</h1>{meta}<h2>Attendees</h2>{attendees}<h2>Agenda</h2>{agenda}{sections}"
        "</body></html>\n"
    )
