"""HTML and inline SVG pieces that every self-contained page of the project draws with: the review
pack (flows/reviews/render.py) and the dashboard (flows/dashboard/render.py).

Pure functions; every text that reaches the page goes through `e` (HTML-escaped, quotes too), so a
title, label or cell from the register is shown as text and never parsed as markup.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from html import escape

from flows.text import visible
from schemas.review_pack import HeatMap, TrendChart

LEVEL_FILLS = {"low": "#16a34a", "medium": "#facc15", "high": "#f97316", "critical": "#b91c1c"}
SERIES_STROKES = ("#2563eb", "#db2777", "#059669", "#7c3aed")
# The risk-level series draw in the level's own colour, so the trend reads like the heat map.
NAMED_STROKES = {"low": "#16a34a", "medium": "#ca8a04", "high": "#f97316", "critical": "#b91c1c"}


def e(value: object) -> str:
    """Text for HTML: markup characters escaped (quotes too); everything else as written."""
    return escape(str(value), quote=True)


def shown(value: object) -> str:
    """`e`, and every control written out (ESC as `\\x1b`, a bidi override as `\\u202e`, a line
    break as a space: `flows.text.visible`), so a text is read as written and reorders nothing."""
    return escape(visible(str(value)), quote=True)


def html_table(columns: Sequence[str], rows: Iterable[Sequence[object]], caption: str | None = None) -> str:
    head = "".join(f"<th>{e(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{e(v)}</td>" for v in row) + "</tr>" for row in rows)
    title = f"<caption>{e(caption)}</caption>" if caption else ""
    return f"<table>{title}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def heat_map_svg(chart: HeatMap, t: Callable[[object], str] = e) -> str:
    """The heat map; `t` escapes its labels (`shown` also writes out control characters)."""
    cell, left, top = 64, 120, 16
    rows, cols = len(chart.likelihood_labels), len(chart.impact_labels)
    width, height = left + cols * cell + 16, top + rows * cell + 56
    parts = [
        f'<svg class="chart heatmap" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img"><title>{t(chart.title)}</title>'
    ]
    for r, (label, counts, levels) in enumerate(
        zip(chart.likelihood_labels, chart.counts, chart.levels, strict=True)
    ):
        y = top + r * cell
        parts.append(
            f'<text x="{left - 8}" y="{y + cell / 2 + 4}" text-anchor="end" font-size="12">{t(label)}</text>'
        )
        for c, (count, level) in enumerate(zip(counts, levels, strict=True)):
            x = left + c * cell
            fill = LEVEL_FILLS.get(level, "#9ca3af")
            ink = "#111827" if level == "medium" else "#ffffff"
            parts.append(
                f'<rect class="cell" x="{x}" y="{y}" width="{cell - 2}" height="{cell - 2}" fill="{fill}">'
                f"<title>{t(label)} × {t(chart.impact_labels[c])}: {count} ({t(level)})</title></rect>"
                f'<text x="{x + cell / 2 - 1}" y="{y + cell / 2 + 6}" text-anchor="middle" font-size="18" '
                f'font-weight="bold" fill="{ink}">{count}</text>'
            )
    for c, label in enumerate(chart.impact_labels):
        parts.append(
            f'<text x="{left + c * cell + cell / 2}" y="{top + rows * cell + 16}" text-anchor="middle" '
            f'font-size="11">{t(label)}</text>'
        )
    parts.append(
        f'<text x="{left + cols * cell / 2}" y="{height - 8}" text-anchor="middle" font-size="12">'
        "impact →</text>"
        f'<text x="12" y="{top + rows * cell / 2}" font-size="12" transform="rotate(-90 12 '
        f'{top + rows * cell / 2})" text-anchor="middle">likelihood →</text></svg>'
    )
    return "".join(parts)


def axis_ceiling(values: Sequence[float]) -> float:
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
    ceiling = 100.0 if chart.unit == "%" else axis_ceiling(values)
    n = max(len(chart.labels), 1)

    def x_at(i: int) -> float:
        return left + (plot_w / 2 if n == 1 else i * plot_w / (n - 1))

    def y_at(v: float) -> float:
        return top + plot_h - (min(max(v, 0.0), ceiling) / ceiling) * plot_h

    parts = [
        f'<svg class="chart trend" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img"><title>{e(chart.title)}</title>',
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + plot_h}" stroke="#6b7280"/>',
        f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" stroke="#6b7280"/>',
    ]
    for k in range(5):
        level = ceiling * k / 4
        y = y_at(level)
        tick = f"{level:g}{'%' if chart.unit == '%' else ''}"
        parts.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}" stroke="#e5e7eb"/>'
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11">{e(tick)}</text>'
        )
    for i, label in enumerate(chart.labels):
        parts.append(
            f'<text x="{x_at(i):.1f}" y="{top + plot_h + 18}" text-anchor="middle" font-size="11">'
            f"{e(label)}</text>"
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
            f'<text x="{left + plot_w + 34}" y="{ly - 4}" font-size="12">{e(series.name)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


# -- bars against a limit, and verdict strips (the dashboard's) ------------------------------------

# How far along a clock or an SLA something is: within, due soon (past three quarters), overdue.
STATE_FILLS = {"within": "#16a34a", "due-soon": "#f59e0b", "overdue": "#dc2626", "none": "#9ca3af"}
VERDICT_FILLS = {
    "passed": "#16a34a",
    "warning": "#facc15",
    "failed": "#dc2626",
    "baseline": "#60a5fa",
    "superseded": "#d1d5db",
}


def limit_bars_svg(title: str, rows: Sequence[tuple[str, float | None, str, str]]) -> str:
    """One bar per row: (label, fraction of the limit used or None when there is no limit, state, text).

    The bar's length is the fraction (capped at 1.5), its fill the state's (`STATE_FILLS`), and a
    vertical line marks the limit (1.0). The text says it in words, e.g. "30 h of 24 h".
    """
    label_w, bar_w, row_h, top = 220, 360, 26, 8
    width, height = label_w + bar_w + 190, top + max(len(rows), 1) * row_h + 24
    limit_x = label_w + bar_w / 1.5
    parts = [
        f'<svg class="chart bars" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img"><title>{shown(title)}</title>'
    ]
    for i, (label, fraction, state, text) in enumerate(rows):
        y = top + i * row_h
        name = label if len(label) <= 32 else label[:31] + "…"
        parts.append(
            f'<text x="{label_w - 8}" y="{y + 16}" text-anchor="end" font-size="12">{shown(name)}</text>'
        )
        length = bar_w * min(fraction, 1.5) / 1.5 if fraction is not None else bar_w / 1.5
        fill = STATE_FILLS.get(state, STATE_FILLS["none"])
        parts.append(
            f'<rect class="bar" x="{label_w}" y="{y + 4}" width="{max(length, 2):.1f}" height="{row_h - 8}" '
            f'fill="{fill}"><title>{shown(label)}: {shown(text)}</title></rect>'
            f'<text x="{label_w + bar_w + 8}" y="{y + 16}" font-size="12">{shown(text)}</text>'
        )
    parts.append(
        f'<line x1="{limit_x:.1f}" y1="{top}" x2="{limit_x:.1f}" y2="{top + max(len(rows), 1) * row_h}" '
        'stroke="#111827" stroke-dasharray="4 3"/>'
        f'<text x="{limit_x:.1f}" y="{height - 6}" text-anchor="middle" font-size="11">limit</text></svg>'
    )
    return "".join(parts)


def verdict_strips_svg(
    title: str,
    rows: Sequence[tuple[str, Sequence[tuple[str, str]]]],
    fills: Mapping[str, str] = VERDICT_FILLS,
) -> str:
    """One strip per row: (label, [(key, tooltip), …] oldest first), a square per key in its colour
    (`fills`, by default a verdict's), so a dataset's trend reads left to right."""
    label_w, cell, top = 200, 22, 8
    longest = max((len(cells) for _, cells in rows), default=1)
    width = label_w + max(longest, 1) * (cell + 2) + 16
    height = top + max(len(rows), 1) * (cell + 6) + 8
    parts = [
        f'<svg class="chart verdicts" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img"><title>{shown(title)}</title>'
    ]
    for i, (label, cells) in enumerate(rows):
        y = top + i * (cell + 6)
        name = label if len(label) <= 28 else label[:27] + "…"
        parts.append(
            f'<text x="{label_w - 8}" y="{y + 15}" text-anchor="end" font-size="12">{shown(name)}</text>'
        )
        for j, (verdict, tip) in enumerate(cells):
            fill = fills.get(verdict, "#9ca3af")
            parts.append(
                f'<rect class="verdict" x="{label_w + j * (cell + 2)}" y="{y}" width="{cell}" '
                f'height="{cell}" '
                f'fill="{fill}"><title>{shown(tip)}</title></rect>'
            )
    parts.append("</svg>")
    return "".join(parts)


def legend_html(fills: Mapping[str, str]) -> str:
    """What each colour means, as small swatches with their names."""
    return (
        '<p class="legend">'
        + " ".join(
            f'<span class="swatch" style="background:{colour}"></span>{shown(name)}'
            for name, colour in fills.items()
        )
        + "</p>"
    )
