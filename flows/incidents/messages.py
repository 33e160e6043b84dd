"""What responders read about an incident: the Slack alert and the Jira issue; and what a management
review's attendees read when an incident joins the review after its pack was gathered. Pure functions.

The action ids and block ids here are the contract with the gateway: the clicked button's
`action_id` names the update, its `value` the incident (or the corrective action), and the note
typed in the message's input block carries the authority's reference or the effectiveness finding.

Names, titles, descriptions, notes and references come from events and people: each is escaped for
where it goes (`flows.text`), Slack mrkdwn or plain text, or Jira wiki markup.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import datetime
from typing import Any

from flows.incidents.clocks import format_left, time_left
from flows.incidents.rules import INVENTORY_CONTROLS, State, action_label, close_blockers, stage_of
from flows.text import Escape, jira_text, mrkdwn, mrkdwn_line, plain
from schemas.payloads import IncidentUpdateKind
from schemas.policy import IncidentStage
from schemas.records import Incident

Blocks = list[dict[str, Any]]

ACTION_PREFIX = "incident."
CONTAIN_ACTION = "incident.contain"
REPORT_ACTION = "incident.report"
DONE_ACTION = "incident.action-done"
VERIFY_ACTION = "incident.verify-action"
CLOSE_ACTION = "incident.close"
# Button → update; the value is the incident id, or the action id for the action buttons.
SLACK_ACTIONS = {
    CONTAIN_ACTION: IncidentUpdateKind.contain,
    REPORT_ACTION: IncidentUpdateKind.report,
    DONE_ACTION: IncidentUpdateKind.action_done,
    VERIFY_ACTION: IncidentUpdateKind.verify_action,
    CLOSE_ACTION: IncidentUpdateKind.close,
}
NOTE_BLOCK = "incident_note"
NOTE_INPUT = "note_input"
NOTE_LABEL = "Note: the authority's reference, or the effectiveness finding"

_MARK = {
    IncidentStage.reported: "🆕",
    IncidentStage.triaged: "🚨",
    IncidentStage.contained: "🧯",
    IncidentStage.reported_to_authority: "📨",
    IncidentStage.corrective_action: "🛠",
    IncidentStage.closed: "✅",
}


NOT_IN_INVENTORY_LABEL = "aims-not-in-inventory"


def jira_label(incident_id: str) -> str:
    """The label that finds an incident's issue again: ids carry '#' and ':', labels want neither."""
    return "aims-incident-" + hashlib.sha256(incident_id.encode()).hexdigest()[:16]


def _when(at: datetime | None) -> str:
    return f"{at:%Y-%m-%d %H:%M %Z}".strip() if at else "—"


def _text(text: str, limit: int = 2900) -> dict[str, str]:
    return {"type": "mrkdwn", "text": text if len(text) <= limit else text[: limit - 1] + "…"}


def title(incident: Incident) -> str:
    """Raw: sent only through `plain` or an escape."""
    serious = "Serious incident" if incident.serious else "Incident"
    return f"{serious} on {incident.system}: {incident.title}"


def _inventory_note(incident: Incident, escape: Callable[[str], str]) -> str:
    """What the alert and the issue say about a system outside the inventory, escaped by `escape`."""
    assert incident.inventory_finding is not None
    return (
        f"{escape(incident.system)} is not in the AIMS's inventory of AI systems. Finding "
        f"{escape(incident.inventory_finding)} records it (10.2; {', '.join(INVENTORY_CONTROLS)}), and every "
        "incident on this system refers to it. Add the system to the inventory (register a model version "
        "of it) and find out how it came to run outside the AIMS."
    )


def inventory_warning(incident: Incident) -> str | None:
    """Slack mrkdwn: the AI system is not in the inventory, and the finding that records it."""
    if incident.inventory_finding is None:
        return None
    return f"⚠️ *Not in the AI system inventory:* {_inventory_note(incident, mrkdwn)}"


def inventory_labels(incident: Incident) -> list[str]:
    """Jira labels that let the governance team list incidents on systems outside the inventory."""
    return [NOT_IN_INVENTORY_LABEL] if incident.inventory_finding is not None else []


def facts(incident: Incident, now: datetime) -> list[tuple[str, str]]:
    rows = [
        ("System", incident.system),
        ("Severity", incident.severity.value),
        ("Category", incident.category.value),
        ("Detected", _when(incident.detected_at)),
        ("Reported by", incident.reported_by),
        ("Art. 73", ", ".join(incident.criteria) if incident.serious else "not serious"),
    ]
    if incident.serious:
        left = time_left(incident, now)
        due = f"{_when(incident.reporting_due_at)} ({incident.deadline_basis})"
        if incident.reported_to_authority_at is not None:
            due = f"reported {_when(incident.reported_to_authority_at)}, ref {incident.authority_reference}"
        elif left is not None:
            due += f" — {format_left(left)} left" if left.total_seconds() >= 0 else f" — {format_left(left)}"
        rows.append(("Report to authority", due))
    return rows


def _progress(state: State, escape: Escape) -> list[str]:
    incident, lines = state.incident, []
    if incident.contained_at:
        lines.append(f"• Contained {_when(incident.contained_at)}")
    if incident.reported_to_authority_at:
        lines.append(f"• Reported to the authority {_when(incident.reported_to_authority_at)}")
    nc = state.nonconformity
    if nc is not None and nc.root_cause:
        lines.append(f"• Root cause: {escape(nc.root_cause)}")
    for action in state.actions:
        mark = {"open": "☐", "done": "☑", "verified": "✔"}.get(action.status, "•")
        checked = f" — effective: {escape(action.effectiveness)}" if action.effectiveness else ""
        lines.append(f"{mark} {escape(action_label(action))} [{action.status}]{checked}")
    return lines


def _button(action_id: str, text: str, value: str, style: str | None = None) -> dict[str, Any]:
    button: dict[str, Any] = {
        "type": "button",
        "action_id": action_id,
        "text": {"type": "plain_text", "text": plain(text)[:75]},
        "value": value,
    }
    if style:
        button["style"] = style
    return button


def _buttons(state: State) -> list[dict[str, Any]]:
    incident, out = state.incident, []
    if incident.contained_at is None:
        out.append(_button(CONTAIN_ACTION, "Contained", incident.id, "primary"))
    if incident.serious and incident.reported_to_authority_at is None:
        out.append(_button(REPORT_ACTION, "Report filed (reference in the note)", incident.id))
    for action in state.actions:
        short = action.id.rsplit("/", 1)[-1]
        if action.status == "open":
            out.append(_button(DONE_ACTION, f"{short} done", action.id))
        elif action.status == "done":
            out.append(_button(VERIFY_ACTION, f"{short} effective (finding in the note)", action.id))
    if not close_blockers(state):
        out.append(_button(CLOSE_ACTION, "Close", incident.id, "danger"))
    # One actions block holds at most 25 elements.
    return out[:25]


def alert_blocks(state: State, now: datetime) -> Blocks:
    """The incident as it stands, with a button for each update that may come next."""
    incident, stage = state.incident, stage_of(state)
    blocks: Blocks = [
        {
            "type": "header",
            "text": {"type": "plain_text", "text": f"{_MARK[stage]} {plain(title(incident))}"[:150]},
        },
        {"type": "section", "fields": [_text(f"*{k}*\n{mrkdwn(v)}", 1900) for k, v in facts(incident, now)]},
    ]
    if warning := inventory_warning(incident):
        # Right under the header: the first thing a responder reads.
        blocks.insert(1, {"type": "section", "text": _text(warning)})
    if incident.description:
        blocks.append({"type": "section", "text": _text(mrkdwn(incident.description))})
    if lines := _progress(state, mrkdwn_line):
        blocks.append({"type": "section", "text": _text("\n".join(lines))})
    buttons = _buttons(state) if stage is not IncidentStage.closed else []
    if buttons:
        blocks.append(
            {
                "type": "input",
                "block_id": NOTE_BLOCK,
                "optional": True,
                "label": {"type": "plain_text", "text": NOTE_LABEL},
                "element": {"type": "plain_text_input", "action_id": NOTE_INPUT},
            }
        )
        blocks.append({"type": "actions", "block_id": "incident_updates", "elements": buttons})
    jira = f" · Jira {mrkdwn_line(incident.jira_issue)}" if incident.jira_issue else ""
    blocks.append(
        {"type": "context", "elements": [_text(f"{stage.value} · incident {mrkdwn_line(incident.id)}{jira}")]}
    )
    return blocks


def alert_text(incident: Incident, stage: IncidentStage) -> str:
    """The alert's `text`: Slack shows it in notifications and parses it as mrkdwn."""
    unknown = " — ⚠️ not in the AI system inventory" if incident.inventory_finding is not None else ""
    return f"{mrkdwn_line(title(incident))} — {stage.value}{unknown}"


def update_line(
    kind: str, by: str, channel: str, detail: str, action: str | None, escape: Escape = mrkdwn_line
) -> str:
    """Slack mrkdwn by default; `jira_text` for the issue's comment."""
    what = {
        "contain": "Containment recorded",
        "report": "Art. 73 report filed with the authority",
        "root-cause": "Root cause recorded",
        "plan-action": "Corrective action planned",
        "action-done": "Corrective action done",
        "verify-action": "Effectiveness verified",
        "close": "Incident closed",
    }.get(kind, kind)
    short = f" {escape(action.rsplit('/', 1)[-1])}" if action else ""
    note = f": {escape(detail)}" if detail else ""
    return f"{what}{short} by {escape(by)} via {escape(channel)}{note}"


def issue_summary(incident: Incident) -> str:
    # Jira shows a summary as plain text: only control characters and line breaks are a danger.
    return f"[AIMS] {plain(title(incident))}"


def issue_description(incident: Incident, now: datetime) -> str:
    lines = [f"*{k}:* {jira_text(v)}" for k, v in facts(incident, now)]
    if incident.inventory_finding is not None:
        lines[:0] = [f"(!) *Not in the AI system inventory:* {_inventory_note(incident, jira_text)}", ""]
    if incident.description:
        lines += ["", jira_text(incident.description, lines=True)]
    lines += [
        "",
        "Move this issue through its statuses as the work goes: *Contained*, *Reported to authority* "
        "(put the authority's reference in the transition comment), *Corrective action*, *Closed*. "
        "Or use the buttons in Slack, or {{aims incidents contain|report|cause|action|done|verify|close}}.",
        f"Incident id: {jira_text(incident.id)}",
    ]
    return "\n".join(lines)


def clock_text(incident: Incident, now: datetime, overdue: bool, escape: Escape = mrkdwn_line) -> str:
    """Slack mrkdwn by default; `jira_text` for the issue's comment."""
    left = time_left(incident, now)
    when = _when(incident.reporting_due_at)
    if overdue:
        return (
            f"⏰ OVERDUE: the Art. 73 report for “{escape(title(incident))}” was due {when} "
            f"({incident.deadline_basis}). File it, then record it: "
            f"aims incidents report {escape(incident.id)} --reference …"
        )
    return (
        f"⏰ Reminder: the Art. 73 report for “{escape(title(incident))}” is due {when} "
        f"({format_left(left) if left is not None else '—'} left; {incident.deadline_basis})."
    )


# -- an incident that joined a management review after its pack was prepared --------------------
