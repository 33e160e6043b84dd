"""The dashboard as one self-contained HTML page: inline CSS and SVG, no script, no external request.

Pure: a function of the `Dashboard`. Every text from the register (subjects, titles, names, reasons)
goes through `shown`: HTML-escaped, and control characters (terminal escapes, bidi overrides, line
breaks) written out, so nothing in the register becomes markup or reorders what is read.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from flows.html_page import (
    STATE_FILLS,
    VERDICT_FILLS,
    heat_map_svg,
    legend_html,
    limit_bars_svg,
    shown,
    verdict_strips_svg,
)
from schemas.dashboard import ControlFreshness, Dashboard

# A control's evidence judged by the policy's maximum age for it (flows/freshness/rules.py).
FRESHNESS_FILLS = {
    "fresh": "#0f766e",
    "stale": "#f59e0b",
    "missing": "#dc2626",
    "excluded": "#e5e7eb",
}
# The page may load nothing: no script, image, font or stylesheet from anywhere; its own CSS only.
CSP = "default-src 'none'; style-src 'unsafe-inline'"
STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:1.5rem auto;
max-width:1200px;color:#111827;line-height:1.4;padding:0 1rem}
h1{font-size:1.5rem;margin-bottom:.2rem}
h2{font-size:1.15rem;border-bottom:2px solid #e5e7eb;padding-top:.8rem}
.meta,.note{color:#4b5563;font-size:.9rem}table{border-collapse:collapse;margin:.4rem 0}
th,td{border:1px solid #d1d5db;padding:.2rem .45rem;text-align:left;vertical-align:top;font-size:.85rem}
th{background:#f3f4f6}.tiles{display:flex;flex-wrap:wrap;gap:.6rem;margin:.8rem 0}
.tile{border:1px solid #d1d5db;border-radius:6px;padding:.4rem .8rem;min-width:9rem}
.tile b{display:block;font-size:1.5rem}.tile.alert b{color:#b91c1c}
.unknown{background:#fef3c7;border-left:4px solid #d97706;padding:.4rem .8rem;margin:.4rem 0}
.legend{font-size:.8rem;color:#374151}
.swatch{display:inline-block;width:.8rem;height:.8rem;margin:0 .25rem 0 .7rem;
vertical-align:middle;border:1px solid #9ca3af}
svg text{font-family:system-ui,sans-serif}
"""


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else "—"


def _table(columns: Sequence[str], rows: Sequence[Sequence[object]], empty: str) -> str:
    if not rows:
        return f'<p class="note">{shown(empty)}</p>'
    head = "".join(f"<th>{shown(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{shown(v)}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _tile(label: str, value: int, alert: bool = False) -> str:
    return f'<div class="tile{" alert" if alert and value else ""}"><b>{value}</b>{shown(label)}</div>'


def _hours(hours: float | None) -> str:
    if hours is None:
        return "—"
    sign, hours = ("overdue by " if hours < 0 else ""), abs(hours)
    return f"{sign}{hours / 24:.1f} d" if hours >= 48 else f"{sign}{hours:.1f} h"


def _approvals(board: Dashboard) -> str:
    rows = board.approvals
    parts = ['<section id="approvals"><h2>Open approvals: age against the SLA</h2>']
    if rows:
        bars = [
            (
                a.subject,
                a.age_hours / a.sla_hours if a.sla_hours else None,
                a.state,
                f"{_hours(a.age_hours)} of {a.sla_hours} h"
                if a.sla_hours
                else f"{_hours(a.age_hours)}, no SLA",
            )
            for a in rows
        ]
        parts.append(f"<figure>{limit_bars_svg('Open approvals: age against the SLA', bars)}</figure>")
        parts.append(legend_html(STATE_FILLS))
    parts.append(
        _table(
            [
                "Approval",
                "Subject",
                "System",
                "Group",
                "Risk level",
                "Requested",
                "Age",
                "SLA",
                "Due",
                "State",
            ],
            [
                [
                    a.id,
                    a.subject,
                    a.system or "—",
                    a.approver_group,
                    a.risk_level or "—",
                    _when(a.requested_at),
                    _hours(a.age_hours),
                    f"{a.sla_hours} h" if a.sla_hours else "none",
                    _when(a.due_at),
                    a.state,
                ]
                for a in rows
            ],
            "No approval is waiting for a decision.",
        )
    )
    return "".join(parts) + "</section>"


def _incidents(board: Dashboard) -> str:
    rows = board.incidents
    parts = ['<section id="incidents"><h2>Open incidents and their Art. 73 clocks</h2>']
    clocked = [i for i in rows if i.hours_left is not None and i.reporting_due_at is not None]
    if clocked:
        bars = []
        for i in clocked:
            assert i.reporting_due_at is not None and i.hours_left is not None
            span = (i.reporting_due_at - i.detected_at).total_seconds() / 3600
            used = (span - i.hours_left) / span if span > 0 else 1.0
            bars.append(
                (i.title, used, i.state, _hours(i.hours_left) + (" left" if i.hours_left >= 0 else ""))
            )
        parts.append(
            f"<figure>{limit_bars_svg('Art. 73 clocks: time used until the report is due', bars)}</figure>"
        )
        parts.append(legend_html(STATE_FILLS))
    parts.append(
        _table(
            [
                "Incident",
                "System",
                "Severity",
                "Serious",
                "Status",
                "Detected",
                "Report due",
                "Clock",
                "Left",
            ],
            [
                [
                    i.title,
                    i.system,
                    i.severity,
                    "yes" if i.serious else "no",
                    i.status,
                    _when(i.detected_at),
                    _when(i.reporting_due_at),
                    i.clock,
                    _hours(i.hours_left),
                ]
                for i in rows
            ],
            "No incident is open.",
        )
    )
    return "".join(parts) + "</section>"


def freshness_band(control: ControlFreshness) -> str:
    return control.status


def _controls(board: Dashboard) -> str:
    objectives: dict[str, list[ControlFreshness]] = {}
    for c in board.controls:
        objectives.setdefault(".".join(c.id.split(".")[:2]), []).append(c)
    strips = [
        (objective, [(freshness_band(c), f"{c.id} {c.title}: {_age(c)}") for c in controls])
        for objective, controls in objectives.items()
    ]
    counts = board.counts
    chart = verdict_strips_svg("Annex A controls by freshness of their evidence", strips, FRESHNESS_FILLS)
    return (
        '<section id="controls"><h2>Annex A controls: coverage and freshness</h2>'
        f'<p class="meta">{counts.controls_with_evidence} of {counts.controls} controls have evidence in '
        "the register. One square per control, by objective: fresh, stale, missing or excluded.</p>"
        f"<figure>{chart}</figure>{legend_html(FRESHNESS_FILLS)}"
        f'<p class="note">{shown(board.freshness_note)}</p>'
        + _table(
            ["Control", "Title", "Implemented by", "Evidence", "Newest evidence", "Age"],
            [
                [
                    c.id,
                    c.title,
                    ", ".join(c.implemented_by) or "organisational",
                    c.evidence_count,
                    _when(c.last_evidence_at),
                    _age(c),
                ]
                for c in board.controls
            ],
            "The catalogue lists no controls.",
        )
        + "</section>"
    )


def _age(c: ControlFreshness) -> str:
    age = "no evidence" if c.age_days is None else f"{c.age_days:g} d"
    return f"{age} of {c.max_age_days} d: {c.status}"


def _data_quality(board: Dashboard) -> str:
    strips = [
        (
            t.dataset,
            [(v.verdict, f"{t.dataset}@{v.version}: {v.verdict}, {_when(v.checked_at)}") for v in t.verdicts],
        )
        for t in board.data_quality
    ]
    parts = ['<section id="data-quality"><h2>Data-quality verdicts per dataset</h2>']
    if any(cells for _, cells in strips):
        parts.append(
            '<p class="meta">The latest checks of each dataset, oldest on the left.</p>'
            f"<figure>{verdict_strips_svg('Data-quality verdicts per dataset', strips)}</figure>"
            + legend_html(VERDICT_FILLS)
        )
    parts.append(
        _table(
            ["Dataset", "Checks", "Latest verdict"],
            [[t.dataset, t.checks, t.latest or "never checked"] for t in board.data_quality],
            "No dataset is in the register yet.",
        )
    )
    return "".join(parts) + "</section>"


def _risks(board: Dashboard) -> str:
    return (
        f'<section id="risks"><h2>Risk heat map</h2><p class="meta">{board.counts.open_risks} open risks '
        f"(not closed), by inherent likelihood and impact.</p><figure>{heat_map_svg(board.heat_map, shown)}"
        f"<figcaption>{shown(board.heat_map.title)}</figcaption></figure></section>"
    )


def _failed(board: Dashboard) -> str:
    failed = board.failed
    head = (
        f'<section id="failed"><h2>Recent runs that failed</h2><p class="meta">Since {_when(failed.since)}, '
        + (
            "from Prefect's flow runs (Failed, Crashed, TimedOut)."
            if failed.source == "prefect"
            else "from the register: refused decisions and updates."
        )
        + "</p>"
    )
    if failed.source == "register":
        head += (
            '<p class="unknown"><strong>Prefect runs unknown:</strong> '
            f"{shown(failed.prefect.removeprefix('unknown: '))}</p>"
        )
    return (
        head
        + _table(
            ["When", "What", "Subject", "State", "Detail"],
            [[_when(x.at), x.what, x.subject, x.state, x.detail] for x in failed.items],
            "Nothing failed in that time.",
        )
        + "</section>"
    )


def html(board: Dashboard) -> str:
    c = board.counts
    tiles = "".join(
        [
            _tile("open approvals", c.open_approvals),
            _tile("approvals past their SLA", c.overdue_approvals, alert=True),
            _tile("open incidents", c.open_incidents),
            _tile("Art. 73 clocks running", c.running_clocks),
            _tile("Art. 73 clocks overdue", c.overdue_clocks, alert=True),
            _tile(f"of {c.controls} controls with evidence", c.controls_with_evidence),
            _tile("datasets", c.datasets),
            _tile("open risks", c.open_risks),
            _tile(
                "failed runs" if board.failed.source == "prefect" else "refused attempts", c.failed_runs, True
            ),
        ]
    )
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        # No request leaves the page: no script, no image, no font, no stylesheet from elsewhere.
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        f"<title>AIMS dashboard</title><style>{STYLE}</style></head><body>"
        f'<h1>AIMS dashboard</h1><p class="meta">Built {_when(board.generated_at)} from the register.</p>'
        f'<div class="tiles" id="counts">{tiles}</div>'
        f"{_approvals(board)}{_incidents(board)}{_controls(board)}{_data_quality(board)}{_risks(board)}"
        f"{_failed(board)}</body></html>\n"
    )
