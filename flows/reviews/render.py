"""The review pack as Markdown and as one self-contained HTML file (inline CSS and SVG, no scripts).

Pure functions of the pack. Every piece of text is escaped: titles, findings and table cells come
from people (incident titles, needs of interested parties, action descriptions). A section is always
rendered, and what it could not gather is shown as a callout rather than left out.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from html import escape

from flows.text import markdown_text
from schemas.review_pack import Chart, Figure, HeatMap, ReviewPack, Section, TrendChart

LEVEL_FILLS = {"low": "#16a34a", "medium": "#facc15", "high": "#f97316", "critical": "#b91c1c"}
SERIES_STROKES = ("#2563eb", "#db2777", "#059669", "#7c3aed")
# The risk-level series draw in the level's own colour, so the trend reads like the heat map.
NAMED_STROKES = {"low": "#16a34a", "medium": "#ca8a04", "high": "#f97316", "critical": "#b91c1c"}

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


def html_text(value: object) -> str:
    """Any value as HTML text, every character that means something in HTML escaped (quotes too)."""
    return escape(str(value), quote=True)


_e = html_text


def html_table(columns: Sequence[str], rows: Iterable[Sequence[object]], caption: str | None = None) -> str:
    head = "".join(f"<th>{_e(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{_e(v)}</td>" for v in row) + "</tr>" for row in rows)
    title = f"<caption>{_e(caption)}</caption>" if caption else ""
    return f"<table>{title}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def heat_map_svg(chart: HeatMap) -> str:
    cell, left, top = 64, 120, 16
    rows, cols = len(chart.likelihood_labels), len(chart.impact_labels)
    width, height = left + cols * cell + 16, top + rows * cell + 56
    parts = [
        f'<svg class="chart heatmap" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img"><title>{_e(chart.title)}</title>'
    ]
    for r, (label, counts, levels) in enumerate(
        zip(chart.likelihood_labels, chart.counts, chart.levels, strict=True)
    ):
        y = top + r * cell
        parts.append(
            f'<text x="{left - 8}" y="{y + cell / 2 + 4}" text-anchor="end" font-size="12">{_e(label)}</text>'
        )
        for c, (count, level) in enumerate(zip(counts, levels, strict=True)):
            x = left + c * cell
            fill = LEVEL_FILLS.get(level, "#9ca3af")
            ink = "#111827" if level == "medium" else "#ffffff"
            parts.append(
                f'<rect class="cell" x="{x}" y="{y}" width="{cell - 2}" height="{cell - 2}" fill="{fill}">'
                f"<title>{_e(label)} × {_e(chart.impact_labels[c])}: {count} ({_e(level)})</title></rect>"
                f'<text x="{x + cell / 2 - 1}" y="{y + cell / 2 + 6}" text-anchor="middle" font-size="18" '
                f'font-weight="bold" fill="{ink}">{count}</text>'
            )
    for c, label in enumerate(chart.impact_labels):
        parts.append(
            f'<text x="{left + c * cell + cell / 2}" y="{top + rows * cell + 16}" text-anchor="middle" '
            f'font-size="11">{_e(label)}</text>'
        )
    parts.append(
        f'<text x="{left + cols * cell / 2}" y="{height - 8}" text-anchor="middle" font-size="12">'
        "impact →</text>"
        f'<text x="12" y="{top + rows * cell / 2}" font-size="12" transform="rotate(-90 12 '
        f'{top + rows * cell / 2})" text-anchor="middle">likelihood →</text></svg>'
    )
    return "".join(parts)


def _ceiling(values: Sequence[float]) -> float:
    top = max(values, default=0.0)
    if top <= 0:
        return 1.0
    for step in (1, 2, 5, 10, 20, 25, 50, 100, 200, 500, 1000):
        if top <= step * 4:
            return float(step * 4 if top > step * 2 else step * 2 if top > step else step)
    return float(top)


def trend_svg(chart: TrendChart) -> str:
    width, height, left, right, top, bottom = 640, 260, 48, 130, 16, 40
    plot_w, plot_h = width - left - right, height - top - bottom
    values = [v for s in chart.series for v in s.values if v is not None]
    ceiling = 100.0 if chart.unit == "%" else _ceiling(values)
    n = max(len(chart.labels), 1)

    def x_at(i: int) -> float:
        return left + (plot_w / 2 if n == 1 else i * plot_w / (n - 1))

    def y_at(v: float) -> float:
        return top + plot_h - (min(max(v, 0.0), ceiling) / ceiling) * plot_h

    parts = [
        f'<svg class="chart trend" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img"><title>{_e(chart.title)}</title>',
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + plot_h}" stroke="#6b7280"/>',
        f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" stroke="#6b7280"/>',
    ]
    for k in range(5):
        level = ceiling * k / 4
        y = y_at(level)
        tick = f"{level:g}{'%' if chart.unit == '%' else ''}"
        parts.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}" stroke="#e5e7eb"/>'
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11">{_e(tick)}</text>'
        )
    for i, label in enumerate(chart.labels):
        parts.append(
            f'<text x="{x_at(i):.1f}" y="{top + plot_h + 18}" text-anchor="middle" font-size="11">'
            f"{_e(label)}</text>"
        )
    for index, series in enumerate(chart.series):
        colour = NAMED_STROKES.get(series.name, SERIES_STROKES[index % len(SERIES_STROKES)])
        runs: list[list[tuple[float, float]]] = [[]]
        for i, value in enumerate(series.values):
            if value is None:
                runs.append([])  # no data breaks the line rather than drawing a zero
            else:
                runs[-1].append((x_at(i), y_at(value)))
        for run in (r for r in runs if r):
            if len(run) > 1:
                points = " ".join(f"{x:.1f},{y:.1f}" for x, y in run)
                parts.append(
                    f'<polyline class="series" points="{points}" fill="none" stroke="{colour}" '
                    'stroke-width="3"/>'
                )
            parts += [f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" fill="{colour}"/>' for x, y in run]
        ly = top + 14 + index * 20
        parts.append(
            f'<rect x="{left + plot_w + 14}" y="{ly - 9}" width="14" height="4" fill="{colour}"/>'
            f'<text x="{left + plot_w + 34}" y="{ly - 4}" font-size="12">{_e(series.name)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _chart_html(chart: Chart) -> str:
    svg = heat_map_svg(chart) if isinstance(chart, HeatMap) else trend_svg(chart)
    return f"<figure>{svg}<figcaption>{_e(chart.title)}</figcaption></figure>"


def _section_html(section: Section) -> str:
    parts = [
        f'<section id="{_e(section.key)}"><h2><span class="clause">{_e(section.clause)}</span> '
        f"{_e(section.title)}</h2><p>{_e(section.summary)}</p>"
    ]
    parts += [f'<p class="missing"><strong>Data missing:</strong> {_e(m)}</p>' for m in section.missing]
    if section.figures:
        parts.append(
            html_table(["figure", "value"], [[_label(k), _figure(v)] for k, v in section.figures.items()])
        )
    parts += [_chart_html(chart) for chart in section.charts]
    parts += [f"<h3>{_e(t.title)}</h3>" + html_table(t.columns, t.rows) for t in section.tables]
    if section.findings:
        parts.append("<ul>" + "".join(f"<li>{_e(f)}</li>" for f in section.findings) + "</ul>")
    return "".join(parts) + "</section>"


def html(pack: ReviewPack) -> str:
    kind = "Extraordinary management review" if pack.kind == "extraordinary" else "Management review"
    title = f"{kind} {pack.review_id}"
    attendees = html_table(["name", "role", "email"], [[a.name, a.role, a.email] for a in pack.attendees])
    agenda = "<ol>" + "".join(f"<li>{_e(item)}</li>" for item in pack.agenda) + "</ol>"
    meta = (
        f'<p class="meta">Reason: {_e(pack.reason or "—")}<br>Meeting: {_e(_when(pack.meeting_at))}<br>'
        f"Period: {_e(_when(pack.period_start))} to {_e(_when(pack.period_end))}<br>"
        f"Prepared: {_e(_when(pack.generated_at))}</p>"
    )
    sections = "".join(_section_html(s) for s in pack.sections)
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{_e(title)}</title><style>{STYLE}</style></head><body>"
        f"<h1>{_e(title)}</h1>{meta}<h2>Attendees</h2>{attendees}<h2>Agenda</h2>{agenda}{sections}"
        "</body></html>\n"
    )
