"""What approvers read: Block Kit messages for Slack and issue text for Jira. Pure functions.

The action ids and block ids here are the contract with the gateway, which reads the clicked
button's `action_id` and the reason typed in the message's input block.

Every value here comes from an event or a person (subject, system, names, reasons, risk categories),
so each is escaped for where it goes (`flows.text`): Slack mrkdwn, Slack plain text, Jira wiki
markup. `title` is the one raw composition, and is only ever sent through one of them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from flows.text import Escape, jira_text, mrkdwn, mrkdwn_line, plain
from schemas.payloads import ApprovalOutcome, RiskLevel
from schemas.records import Approval, ApprovalDecision

APPROVE_ACTION = "approval.approve"
REJECT_ACTION = "approval.reject"
DECISION_BLOCK = "decision"
REASON_BLOCK = "reason"
REASON_INPUT = "reason_input"
JIRA_APPROVE = "Approve"
JIRA_REJECT = "Reject"
JIRA_REOPEN = "Reopen"  # puts back an issue whose transition was refused

Blocks = list[dict[str, Any]]


def jira_label(approval_id: str) -> str:
    """The label that finds an approval's issue again: a hash of the id, as incidents and reviews do.

    The id is a producer's text; put into a JQL search it could close the quotes and widen the
    search to any issue, whose key the approval would then adopt and later transition.

    Issues filed before this label carry `aims-<id>` and are not searched for: an approval records
    its issue's key as soon as the issue is filed and never searches again, so only a run that died
    between filing and recording, across the upgrade, files a second issue (a duplicate to close,
    never someone else's issue adopted). Searching the old label would let an id such as
    `incident-<hash>` find an incident's issue.
    """
    return "aims-approval-" + hashlib.sha256(approval_id.encode()).hexdigest()[:16]


def _when(at: datetime | None) -> str:
    return f"{at:%Y-%m-%d %H:%M} UTC" if at else "not set"


def _text(text: str, limit: int = 2900) -> dict[str, str]:
    # Section text is limited to 3000 characters.
    return {"type": "mrkdwn", "text": text if len(text) <= limit else text[: limit - 1] + "…"}


def title(approval: Approval) -> str:
    """The request in a few words, raw: send it through `notification`, `plain` or an escape."""
    what = approval.requested_decision.replace("-", " ")
    level = f"{approval.risk_level.value} risk" if approval.risk_level else "approval"
    return f"{what.capitalize()} needed for {approval.system or approval.subject} ({level})"


def notification(approval: Approval, state: str | None = None) -> str:
    """A message's `text`: Slack shows it in notifications and parses it as mrkdwn."""
    return mrkdwn_line(f"{title(approval)}: {state}" if state else title(approval))


def risk_lines(approval: Approval, escape: Escape) -> list[str]:
    """One line per risk, its values escaped by `escape`; '*' marks the category as bold in both."""
    lines = []
    for risk in approval.context.get("risks", []):
        before = f"{escape(str(risk.get('previous')))} → " if risk.get("previous") else ""
        lines.append(
            f"• *{escape(str(risk.get('category')))}*: {before}{escape(str(risk.get('inherent')))} "
            f"(residual {escape(str(risk.get('residual')))})"
            + (f" — {escape(str(risk['why']))}" if risk.get("why") else "")
        )
    return lines


def needed(approval: Approval) -> int:
    """Approvers needed: the quorum, plus one when the submitter resolved to nobody (rules.submitters)."""
    ctx = approval.context
    extra = int(ctx.get("extra_approvers") or 0) if ctx.get("separation_of_duties", True) else 0
    return approval.quorum + extra


def facts(approval: Approval) -> list[tuple[str, str]]:
    rows = [
        ("Subject", approval.subject),
        ("Decision", approval.requested_decision),
        ("Risk level", approval.risk_level.value if approval.risk_level else "—"),
        ("Approvers", f"{needed(approval)} of {', '.join(approval.groups)}"),
        ("Due", _when(approval.due_at)),
        ("Requested by", approval.requested_by),
    ]
    if note := approval.context.get("submitter_note"):
        rows.append(("Separation of duties", str(note)))
    return rows


def form_note(approval: Approval) -> str:
    """What the Prefect UI's resume form counts for, raw (send it through an escape)."""
    form = (
        "counts only where the policy allows it for low-risk approvals, marked unauthenticated"
        if approval.risk_level is RiskLevel.low
        else "is refused"
    )
    return f"The Prefect UI's resume form cannot tell who you are: a decision typed there {form}."


def where_to_decide(approval: Approval) -> str:
    """Which channels count, raw: only those that prove who decides (send it through an escape)."""
    return (
        "Decide with the buttons below, the Approve/Reject transitions of the Jira issue, or "
        f"aims approvals approve|reject {approval.id} on a login the policy maps to you. "
        + form_note(approval)
    )


def _fields(approval: Approval) -> dict[str, Any]:
    return {"type": "section", "fields": [_text(f"*{k}*\n{mrkdwn(v)}", 1900) for k, v in facts(approval)]}


def request_blocks(approval: Approval, progress: str) -> Blocks:
    blocks: Blocks = [
        {"type": "header", "text": {"type": "plain_text", "text": plain(title(approval))[:150]}},
        _fields(approval),
    ]
    if lines := risk_lines(approval, mrkdwn_line):
        blocks.append({"type": "section", "text": _text("\n".join(lines))})
    blocks += [
        {"type": "context", "elements": [_text(mrkdwn_line(where_to_decide(approval)))]},
        {
            "type": "input",
            "block_id": REASON_BLOCK,
            "optional": True,
            "label": {"type": "plain_text", "text": "Reason (needed to reject)"},
            "element": {"type": "plain_text_input", "action_id": REASON_INPUT, "multiline": True},
        },
        {
            "type": "actions",
            "block_id": DECISION_BLOCK,
            "elements": [
                {
                    "type": "button",
                    "action_id": APPROVE_ACTION,
                    "text": {"type": "plain_text", "text": "Approve"},
                    "style": "primary",
                    "value": approval.id,
                },
                {
                    "type": "button",
                    "action_id": REJECT_ACTION,
                    "text": {"type": "plain_text", "text": "Reject"},
                    "style": "danger",
                    "value": approval.id,
                },
            ],
        },
        _footer(approval, progress),
    ]
    return blocks


def _footer(approval: Approval, progress: str) -> dict[str, Any]:
    jira = f" · Jira {mrkdwn_line(approval.jira_issue)}" if approval.jira_issue else ""
    return {
        "type": "context",
        "elements": [_text(f"{mrkdwn_line(progress)} · approval {mrkdwn_line(approval.id)}{jira}")],
    }


def outcome_line(
    outcome: ApprovalOutcome,
    decisions: Sequence[ApprovalDecision],
    escape: Escape = mrkdwn_line,
    strong: str = "*",
) -> str:
    """Who decided, how and why, each value escaped by `escape`; the outcome between `strong`s."""
    if outcome is ApprovalOutcome.expired:
        return f"Expired without a decision: {strong}not approved{strong}."
    people = [
        d for d in decisions if d.decision == ("approve" if outcome is ApprovalOutcome.approved else "reject")
    ]
    who = "; ".join(
        f"{escape(d.decided_by)} via {escape(d.channel)} at {_when(d.decided_at)}"
        + (f": “{escape(d.reason)}”" if d.reason else "")
        for d in people
    )
    return f"{strong}{outcome.value.capitalize()}{strong} by {who}."


def outcome_comment(outcome: ApprovalOutcome, decisions: Sequence[ApprovalDecision]) -> str:
    """The outcome as a Jira comment: wiki markup, in plain words."""
    return f"AIMS: {outcome_line(outcome, decisions, jira_text, strong='')}"


def outcome_blocks(
    approval: Approval, outcome: ApprovalOutcome, decisions: Sequence[ApprovalDecision]
) -> Blocks:
    """The request as decided: same facts, the outcome, and no buttons left to click."""
    mark = {"approved": "✅", "rejected": "⛔", "expired": "⌛"}[outcome.value]
    blocks: Blocks = [
        {"type": "header", "text": {"type": "plain_text", "text": f"{mark} {plain(title(approval))}"[:150]}},
        _fields(approval),
        {"type": "section", "text": _text(outcome_line(outcome, decisions))},
        _footer(approval, outcome.value),
    ]
    return blocks


def progress_blocks(approval: Approval, progress: str, decisions: Sequence[ApprovalDecision]) -> Blocks:
    """The open request after a first approval: who approved so far, buttons still there."""
    blocks = request_blocks(approval, progress)
    so_far = "; ".join(
        f"{mrkdwn_line(d.decided_by)} approved via {mrkdwn_line(d.channel)}" for d in decisions
    )
    if so_far:
        blocks.insert(-2, {"type": "section", "text": _text(f"So far: {so_far}.")})
    return blocks


def issue_summary(approval: Approval) -> str:
    # Jira shows a summary as plain text: only control characters and line breaks are a danger.
    return f"[AIMS] {plain(title(approval))}"


def issue_description(approval: Approval) -> str:
    lines = [f"*{k}:* {jira_text(v)}" for k, v in facts(approval)]
    if risks := risk_lines(approval, jira_text):
        lines += ["", "h3. Risks", *(line.replace("• ", "* ") for line in risks)]
    lines += [
        "",
        f"To decide: use the *{JIRA_APPROVE}* or *{JIRA_REJECT}* transition (add a comment with your "
        "reason; a rejection needs one), or the buttons in Slack, or "
        f"{{{{aims approvals approve\\|reject {jira_text(approval.id)} --reason ...}}}} on a login the "
        "policy maps to you. Jira counts your transition when the policy maps your Jira account to you.",
        jira_text(form_note(approval)),
        f"Approval id: {jira_text(approval.id)}",
    ]
    return "\n".join(lines)


def reminder_text(approval: Approval, hours_left: int, escape: Escape = mrkdwn_line) -> str:
    """Slack mrkdwn by default; `jira_text` for the issue's comment."""
    return (
        f"Reminder: “{escape(title(approval))}” is due in {hours_left} h ({_when(approval.due_at)}); "
        f"approval {escape(approval.id)} still waits for a decision."
    )


def escalation_text(
    approval: Approval, notify: Sequence[str], hours: int, escape: Escape = mrkdwn_line
) -> str:
    """Slack mrkdwn by default; `jira_text` for the issue's comment."""
    return (
        f"Escalation: “{escape(title(approval))}” has waited {hours} h without a decision. "
        f"{escape(', '.join(notify))} may now decide on approval {escape(approval.id)} "
        f"(due {_when(approval.due_at)})."
    )
