"""The bundle's index as one self-contained HTML page: inline CSS, no scripts, no external reference.

Every text from the register is escaped with the pages' shared helpers (flows/html_page.py);
the only links are relative ones to files inside the archive (Data Docs pages, review packs, the
section files), and an anchor's target is checked to be such a path before it is written.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from flows.evidence_bundle.gather import Bundle
from flows.html_page import e as html_text
from flows.html_page import html_table
from flows.reviews.render import STYLE

# Colours the browser test looks for: a control's heading band and the verdict / clock badges.
CONTROL_BAND = "#1e3a8a"
OK_FILL = "#15803d"
BAD_FILL = "#b91c1c"
BADGES = {
    "passed": OK_FILL,
    "met": OK_FILL,
    "approved": OK_FILL,
    "yes": OK_FILL,
    "failed": BAD_FILL,
    "missed": BAD_FILL,
    "overdue": BAD_FILL,
    "rejected": BAD_FILL,
    "refused": BAD_FILL,
    "no": BAD_FILL,
}
EXTRA_STYLE = (
    f".control>h2{{background:{CONTROL_BAND};color:#fff;padding:.35rem .6rem;border:0}}"
    ".badge{display:inline-block;padding:0 .4rem;border-radius:.3rem;color:#fff;background:#6b7280}"
    "td pre{white-space:pre-wrap;margin:0;font-size:.8rem;max-width:40rem}"
    "nav ul{columns:3}"
)
SECTION_TITLES = {
    "evidence": "Evidence records",
    "data-quality": "Data-quality results",
    "risks": "Risks, their versions and rationale",
    "approvals": "Approvals and every decision",
    "incidents": "Incidents and their clocks",
    "reviews": "Management review packs",
}
_SAFE_PATH = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+/-]*")


def archive_link(path: str, text: str) -> str:
    """A link to a file inside the archive; anything else (a scheme, `..`, an absolute path) is text."""
    if not _SAFE_PATH.fullmatch(path) or ".." in path.split("/") or ":" in path:
        return html_text(text)
    return f'<a href="{html_text(path)}">{html_text(text)}</a>'


def badge(word: object) -> str:
    fill = BADGES.get(str(word).lower())
    style = f' style="background:{fill}"' if fill else ""
    return f'<span class="badge"{style}>{html_text(word)}</span>'


def _cell_html(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A table whose cells are already HTML (escaped by the caller)."""
    head = "".join(f"<th>{html_text(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _json_cell(value: Any) -> str:
    if value in (None, {}, []):
        return "—"
    text = json.dumps(value, indent=1, sort_keys=True, ensure_ascii=False, default=str)
    return f"<pre>{html_text(text)}</pre>"


def _t(value: Any) -> str:
    return "—" if value is None or value == "" else html_text(value)


def _control_html(control: Mapping[str, Any], evidence: Mapping[str, Mapping[str, Any]]) -> str:
    parts = [
        f'<section class="control" id="control-{html_text(control["id"])}">'
        f"<h2>{html_text(control['id'])} {html_text(control['title'])}</h2>"
        f'<p class="meta">Objective {html_text(control["objective"])}. Applicable: '
        f"{badge('yes' if control['applicable'] else 'no')} {_t(control['justification'])}</p>"
    ]
    if control["implemented_by"]:
        parts.append("<h3>What implements it</h3>")
        parts.append(
            html_table(
                ["implementation", "kind", "how", "in the period"],
                [
                    [i["name"], i["kind"], i["how"], f"{i['count']} {i['unit']}"]
                    for i in control["implemented_by"]
                ],
            )
        )
    else:
        parts.append("<p>Implemented through organisational measures outside this tool.</p>")
    parts.append(f"<h3>Evidence records: {len(control['evidence'])}</h3>")
    rows = []
    for ref in control["evidence"]:
        item = evidence[ref]
        covered = item["period_covered"]
        rows.append(
            [
                _t(item["collected_at"]),
                f"{_t(covered['from'])} – {_t(covered['to']) if covered['to'] else 'open'}",
                _t(item["flow"]),
                _t(item["event_type"]),
                _t(item["subject"]),
                _t(item["flow_run_id"]),
                _json_cell(item["outcome"]),
            ]
        )
    if rows:
        parts.append(
            _cell_html(
                ["collected", "period covered", "flow", "event", "subject", "Prefect run", "outcome"], rows
            )
        )
        parts.append(
            '<p class="meta">Period covered: from when the evidence was collected until it is valid '
            "(the policy's maximum age when it was collected, or as supplied; open for evidence recorded "
            "before validity was kept).</p>"
        )
    runs = ", ".join(html_text(r) for r in control["runs"]) or "none"
    parts.append(f"<p>Prefect runs behind it: {runs}</p></section>")
    return "".join(parts)


def _data_quality(items: Sequence[Mapping[str, Any]]) -> str:
    rows = [
        [
            _t(i["at"]),
            _t(i["dataset"]),
            _t(i["version"]),
            badge(i["verdict"]),
            _t(i["result"]["suite_name"]) + " v" + _t(i["result"]["suite_version"]),
            _t(i["flow_run_id"]),
            archive_link(i["data_docs"], "Data Docs") if i["data_docs"] else "—",
        ]
        for i in items
    ]
    return _cell_html(["checked", "dataset", "version", "verdict", "suite", "Prefect run", "Data Docs"], rows)


def _risks(items: Sequence[Mapping[str, Any]]) -> str:
    rows = []
    for i in items:
        v, risk = i["version"], i["risk"]
        rows.append(
            [
                _t(risk.get("id")),
                _t(risk.get("title")),
                _t(risk.get("system")),
                _t(v["version"]),
                _t(i["at"]),
                f"{_t(v['likelihood'])} × {_t(v['impact'])}",
                badge(v["inherent_level"]) + " → " + badge(v["residual_level"]),
                _t(v["assessed_by"]),
                _json_cell(v["rationale"]),
            ]
        )
    columns = ["risk", "title", "system", "version", "assessed", "L × I", "inherent → residual", "by"]
    return _cell_html([*columns, "rationale"], rows)


def _approvals(items: Sequence[Mapping[str, Any]]) -> str:
    parts = []
    for i in items:
        a = i["approval"]
        parts.append(
            f"<h3>Approval {html_text(a['id'])}: {html_text(a['requested_decision'])} of "
            f"{html_text(a['subject'])} {badge(a['status'])}</h3>"
            f'<p class="meta">Requested {_t(i["at"])} by {_t(a["requested_by"])} from '
            f"{_t(a['approver_group'])} (quorum {_t(a['quorum'])}); Prefect run {_t(i['flow_run_id'])}</p>"
        )
        rows = [
            [
                _t(d["at"]),
                _t(d["decided_by"]),
                _t(d["channel"]),
                _t(d["decision"]),
                badge("accepted") if d["accepted"] else badge("refused"),
                _t(d["refusal"]),
                _t(d["reason"]),
            ]
            for d in i["decisions"]
        ]
        if rows:
            parts.append(
                _cell_html(["when", "by", "channel", "decision", "counted", "refusal", "reason"], rows)
            )
        else:
            parts.append("<p>No decision in the period.</p>")
    return "".join(parts)


def _incidents(items: Sequence[Mapping[str, Any]]) -> str:
    parts = []
    for i in items:
        inc, clock = i["incident"], i["clock"]
        parts.append(
            f"<h3>Incident {html_text(inc['id'])}: {html_text(inc['title'])}</h3>"
            f'<p class="meta">{_t(inc["system"])}, severity {_t(inc["severity"])}, status '
            f"{_t(inc['status'])}, detected {_t(i['at'])}. Art. 73 clock: {badge(clock['state'])} "
            f"due {_t(clock['due_at'])}, reported {_t(clock['reported_at'])}</p>"
        )
        rows = [
            [
                _t(u["at"]),
                _t(u["kind"]),
                _t(u["by"]),
                _t(u["channel"]),
                badge("accepted") if u["accepted"] else badge("refused"),
                _t(u["refusal"]),
                _t(u["detail"]),
            ]
            for u in i["updates"]
        ]
        if rows:
            parts.append(
                _cell_html(["when", "update", "by", "channel", "counted", "refusal", "detail"], rows)
            )
    return "".join(parts)


def _reviews(items: Sequence[Mapping[str, Any]]) -> str:
    rows = [
        [
            _t(i["review"]["id"]),
            _t(i["review"]["kind"]),
            _t(i["review"]["status"]),
            _t(i["at"]),
            _t(i["pack_sections"]),
            " ".join(archive_link(path, kind) for kind, path in sorted(i["files"].items())) or "—",
        ]
        for i in items
    ]
    return _cell_html(["review", "kind", "status", "prepared", "pack sections", "files"], rows)


def _evidence(items: Sequence[Mapping[str, Any]]) -> str:
    rows = [
        [_t(i["collected_at"]), _t(i["flow"]), _t(i["event_key"]), _t(", ".join(i["controls"]))]
        for i in items
    ]
    return _cell_html(["collected", "flow", "event", "controls named"], rows)


RENDERERS = {
    "evidence": _evidence,
    "data-quality": _data_quality,
    "risks": _risks,
    "approvals": _approvals,
    "incidents": _incidents,
    "reviews": _reviews,
}


def _soa(rows: Sequence[Mapping[str, Any]]) -> str:
    return _cell_html(
        ["control", "title", "applicable", "justification", "evidence", "last evidence"],
        [
            [
                f'<a href="#control-{html_text(r["id"])}">{html_text(r["id"])}</a>',
                _t(r["title"]),
                badge("yes" if r["applicable"] else "no"),
                _t(r["justification"]),
                _t(r["evidence_count"]),
                _t(r["last_evidence_at"]),
            ]
            for r in rows
        ],
    )


def _audit(audit: Mapping[str, Any]) -> str:
    head = audit["head"]
    state = badge("intact") if audit["intact"] else badge("failed")
    anchors = html_table(
        ["seq", "head", "keyed from", "published"],
        [[a["seq"], a["head"], a["keyed_from"] or "—", a["at"]] for a in audit["anchors"]],
    )
    note = f"<p>{html_text(audit['anchors_note'])}</p>" if audit["anchors_note"] else ""
    problem = f"<p>Problem: {html_text(audit['problem'])}</p>" if audit["problem"] else ""
    return (
        f"<p>Head of the log when the bundle was made: entry {html_text(head['seq'])}, hash "
        f"<code>{html_text(head['hash'])}</code> (anchor text <code>{html_text(audit['anchor_text'])}"
        f"</code>), keyed from entry {_t(head['keyed_from'])}. {html_text(audit['entries'])} entries "
        f"checked: {state}; {html_text(audit['anchors_checked'])} anchor(s) matched.</p>{problem}{note}"
        f"<h3>Anchors</h3>{anchors if audit['anchors'] else '<p>None read.</p>'}"
    )


def index_html(bundle: Bundle, files: Sequence[str] = ()) -> str:
    """The index page: summary, contents, the SoA, each control, each topic section, the audit log."""
    counts = bundle.counts()
    period = bundle.scope.describe()
    title = f"Evidence bundle — {bundle.organisation}"
    evidence = {item["id"]: item for item in bundle.sections["evidence"]}
    nav = "".join(
        f'<li><a href="#control-{html_text(c["id"])}">{html_text(c["id"])} {html_text(c["title"])}</a> '
        f"({html_text(c['evidence_count'])})</li>"
        for c in bundle.controls
    )
    summary = html_table(["what", "count"], [[k, v] for k, v in counts.items()])
    topics = "".join(
        f'<section id="{name}"><h2>{html_text(SECTION_TITLES[name])} ({len(items)})</h2>'
        f"{RENDERERS[name](items) if items else '<p>None in the period.</p>'}"
        f'<p class="meta">As data: {archive_link(name + ".json", name + ".json")}</p></section>'
        for name, items in bundle.sections.items()
    )
    listing = "".join(f"<li>{archive_link(f, f)}</li>" for f in files)
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{html_text(title)}</title><style>{STYLE}{EXTRA_STYLE}</style></head><body>"
        f"<h1>{html_text(title)}</h1>"
        f'<p class="meta">Period: {_t(period["from"]) if period["from"] else "the beginning"} to '
        f"{_t(period['to']) if period['to'] else 'now'} (end excluded)<br>"
        f"Generated: {html_text(bundle.generated_at.isoformat())}<br>"
        "Every file is listed with its SHA-256 in manifest.json, signed in manifest.sig with the audit "
        "log's key: <code>aims evidence verify FILE</code> checks it offline.</p>"
        f"<h2>Summary</h2>{summary}<nav><h2>Controls</h2><ul>{nav}</ul></nav>"
        f'<section id="soa"><h2>Statement of Applicability</h2>{_soa(bundle.soa)}</section>'
        + "".join(_control_html(c, evidence) for c in bundle.controls)
        + topics
        + f'<section id="audit"><h2>The audit log</h2>{_audit(bundle.audit)}</section>'
        + f'<section id="files"><h2>Files in this bundle</h2><ul>{listing}</ul></section>'
        + "</body></html>\n"
    )
