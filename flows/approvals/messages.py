"""What approvers read: Block Kit messages for Slack and issue text for Jira. Pure functions.

The action ids and block ids here are the contract with the gateway, which reads the clicked
button's `action_id` and the reason typed in the message's input block.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from schemas.payloads import ApprovalOutcome
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
    """The label that finds an approval's issue again (Jira labels allow no spaces)."""
    return f"aims-{approval_id}"[:255]


def _when(at: datetime | None) -> str:
    return f"{at:%Y-%m-%d %H:%M} UTC" if at else "not set"


def _text(text: str, limit: int = 2900) -> dict[str, str]:
    # Section text is limited to 3000 characters.
    return {"type": "mrkdwn", "text": text if len(text) <= limit else text[: limit - 1] + "…"}


def title(approval: Approval) -> str:
    what = approval.requested_decision.replace("-", " ")
    level = f"{approval.risk_level.value} risk" if approval.risk_level else "approval"
    return f"{what.capitalize()} needed for {approval.system or approval.subject} ({level})"


def risk_lines(approval: Approval) -> list[str]:
    lines = []
    for risk in approval.context.get("risks", []):
        before = f"{risk.get('previous')} → " if risk.get("previous") else ""
        lines.append(
            f"• *{risk.get('category')}*: {before}{risk.get('inherent')} (residual {risk.get('residual')})"
            + (f" — {risk['why']}" if risk.get("why") else "")
        )
    return lines


def facts(approval: Approval) -> list[tuple[str, str]]:
    return [
        ("Subject", approval.subject),
        ("Decision", approval.requested_decision),
        ("Risk level", approval.risk_level.value if approval.risk_level else "—"),
        ("Approvers", f"{approval.quorum} of {', '.join(approval.groups)}"),
        ("Due", _when(approval.due_at)),
        ("Requested by", approval.requested_by),
    ]


def request_blocks(approval: Approval, progress: str) -> Blocks:
    blocks: Blocks = [
        {"type": "header", "text": {"type": "plain_text", "text": title(approval)[:150]}},
        {"type": "section", "fields": [_text(f"*{k}*\n{v}", 1900) for k, v in facts(approval)]},
    ]
    if lines := risk_lines(approval):
        blocks.append({"type": "section", "text": _text("\n".join(lines))})
    blocks += [
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
    jira = f" · Jira {approval.jira_issue}" if approval.jira_issue else ""
    return {
        "type": "context",
        "elements": [_text(f"{progress} · approval `{approval.id}`{jira}")],
    }


def outcome_line(outcome: ApprovalOutcome, decisions: Sequence[ApprovalDecision]) -> str:
    if outcome is ApprovalOutcome.expired:
        return "Expired without a decision: *not approved*."
    people = [
        d for d in decisions if d.decision == ("approve" if outcome is ApprovalOutcome.approved else "reject")
    ]
    who = "; ".join(
        f"{d.decided_by} via {d.channel} at {_when(d.decided_at)}" + (f": “{d.reason}”" if d.reason else "")
        for d in people
    )
    return f"*{outcome.value.capitalize()}* by {who}."


def outcome_blocks(
    approval: Approval, outcome: ApprovalOutcome, decisions: Sequence[ApprovalDecision]
) -> Blocks:
    """The request as decided: same facts, the outcome, and no buttons left to click."""
    mark = {"approved": "✅", "rejected": "⛔", "expired": "⌛"}[outcome.value]
    blocks: Blocks = [
        {"type": "header", "text": {"type": "plain_text", "text": f"{mark} {title(approval)}"[:150]}},
        {"type": "section", "fields": [_text(f"*{k}*\n{v}", 1900) for k, v in facts(approval)]},
        {"type": "section", "text": _text(outcome_line(outcome, decisions))},
        _footer(approval, outcome.value),
    ]
    return blocks


def progress_blocks(approval: Approval, progress: str, decisions: Sequence[ApprovalDecision]) -> Blocks:
    """The open request after a first approval: who approved so far, buttons still there."""
    blocks = request_blocks(approval, progress)
    so_far = "; ".join(f"{d.decided_by} approved via {d.channel}" for d in decisions)
    if so_far:
        blocks.insert(-2, {"type": "section", "text": _text(f"So far: {so_far}.")})
    return blocks


def issue_summary(approval: Approval) -> str:
    return f"[AIMS] {title(approval)}"


def issue_description(approval: Approval) -> str:
    lines = [f"*{k}:* {v}" for k, v in facts(approval)]
    if risks := risk_lines(approval):
        lines += ["", "h3. Risks", *(line.replace("• ", "* ") for line in risks)]
    lines += [
        "",
        f"To decide: use the *{JIRA_APPROVE}* or *{JIRA_REJECT}* transition (add a comment with your "
        "reason; a rejection needs one), or the buttons in Slack, or "
        f"{{{{aims approvals approve|reject {approval.id} --reason ...}}}}.",
        f"Approval id: {approval.id}",
    ]
    return "\n".join(lines)


def reminder_text(approval: Approval, hours_left: int) -> str:
    return (
        f"Reminder: “{title(approval)}” is due in {hours_left} h ({_when(approval.due_at)}); "
        f"approval `{approval.id}` still waits for a decision."
    )


def escalation_text(approval: Approval, notify: Sequence[str], hours: int) -> str:
    return (
        f"Escalation: “{title(approval)}” has waited {hours} h without a decision. "
        f"{', '.join(notify)} may now decide on approval `{approval.id}` (due {_when(approval.due_at)})."
    )
