"""Jira webhooks, dispatched by what the issue is: an approval's, an incident's or a review's.

The flows label the issues they open (`aims` on an approval's, `aims-incident` on an incident's,
`aims-review` on a review's); a webhook carries the issue's labels, so the label says which record
the issue is, and the register gives that record (an issue without our label, e.g. a webhook that
sends no fields, is looked up by its key among the records that track one). An issue that is none
of them is answered 200 and ignored.

A status move is the command: Approved or Rejected on an approval's issue is a decision; a move to
one of the policy's incident statuses is an incident update, its comment the detail; any move of a
review's issue with a comment holding results records them, and Done closes the review. Refusals
are answered on the issue (`gateway.answers.jira_reply`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING

from flows.approvals.commands import ISSUE_LABEL as APPROVAL_LABEL
from flows.approvals.commands import DecideApproval
from flows.approvals.messages import JIRA_REOPEN
from flows.commands import Actor, Command, Verdict
from flows.incidents.commands import ISSUE_LABEL as INCIDENT_LABEL
from flows.incidents.commands import UpdateIncident
from flows.reviews.commands import (
    COMMENT_HELP,
    CommentError,
    RecordReviewResults,
    Result,
    ResultKind,
    parse_comment,
)
from flows.reviews.commands import ISSUE_LABEL as REVIEW_LABEL
from gateway.answers import Outcome, answered, ignored, jira_reply
from gateway.payloads import JiraChange, JiraWebhook
from schemas.payloads import Decision, DecisionChannel, IncidentUpdateKind
from schemas.people import by_jira
from schemas.policy import IncidentStage

if TYPE_CHECKING:
    from connectors.jira_issues import IssueTracker
    from connectors.register.store import Register, UnitOfWork
    from schemas.policy import Policy


class IssueKind(StrEnum):
    incident = "incident"
    review = "review"
    approval = "approval"


LABELS = {
    INCIDENT_LABEL: IssueKind.incident,
    REVIEW_LABEL: IssueKind.review,
    APPROVAL_LABEL: IssueKind.approval,
}
DECISIONS = {"approved": Decision.approve, "rejected": Decision.reject}
# The stage a person moved an incident's issue to → the update it records (the comment is its detail).
INCIDENT_MOVES = {
    IncidentStage.contained: IncidentUpdateKind.contain,
    IncidentStage.reported_to_authority: IncidentUpdateKind.report,
    IncidentStage.corrective_action: IncidentUpdateKind.root_cause,
    IncidentStage.closed: IncidentUpdateKind.close,
}
CLOSING_STATUSES = frozenset({"done", "closed", "resolved"})


def kind_by_labels(labels: frozenset[str]) -> IssueKind | None:
    kinds = {LABELS[label] for label in labels if label in LABELS}
    return kinds.pop() if len(kinds) == 1 else None


def _tracked(uow: UnitOfWork, kind: IssueKind, key: str) -> str | None:
    """The id of the record of this kind that the issue tracks."""
    if kind is IssueKind.incident:
        return next((i.id for i in uow.incidents.find(jira_issue=key, limit=1)), None)
    if kind is IssueKind.review:
        return next((r.id for r in uow.reviews.find(jira_issue=key, limit=1)), None)
    return next((a.id for a in uow.approvals.find(jira_issue=key, limit=1)), None)


def subject_of(register: Register, key: str, labels: frozenset[str]) -> tuple[IssueKind, str] | None:
    """What the issue is and the id of its record; None when it is none of ours."""
    kind = kind_by_labels(labels)
    with register.reader() as uow:
        for candidate in [kind] if kind is not None else list(IssueKind):
            found = _tracked(uow, candidate, key)
            if found is not None:
                return candidate, found
    return None


@dataclass(frozen=True)
class Move:
    """A verified status move of one of our issues, by a person."""

    issue: str
    subject: str
    changes: tuple[JiraChange, ...]  # the status changes, the last one is the move
    actor: Actor
    comment: str
    at: datetime
    delivery: str

    @property
    def to_status(self) -> str:
        return self.changes[-1].toString or ""

    @property
    def from_status(self) -> str:
        return self.changes[-1].fromString or ""


class JiraDispatch:
    """Turns a verified webhook into the command its issue's kind makes of it, and answers it."""

    def __init__(
        self,
        register: Register,
        policy: Callable[[], Policy],
        tracker: IssueTracker | None,
        handle: Callable[[Command], Verdict],
        send: Callable[[list[str]], object],
    ) -> None:
        self.register = register
        self.policy = policy
        self.tracker = tracker
        self.handle = handle
        self.send = send
        self.kinds: dict[IssueKind, Callable[[Move], Outcome]] = {
            IssueKind.approval: self.approval,
            IssueKind.incident: self.incident,
            IssueKind.review: self.review,
        }

    def __call__(self, hook: JiraWebhook) -> Outcome:
        if hook.user is None or hook.changelog is None:
            return ignored("no user or no change")
        if self.tracker is not None and hook.user.accountId == self.tracker.account_id():
            return ignored("our own transition")
        moved = [c for c in hook.changelog.items if c.field == "status" and c.toString]
        if not moved:
            return ignored("not a decision transition")
        subject = subject_of(self.register, hook.issue.key, hook.issue.labels())
        if subject is None:
            return ignored(f"{hook.issue.key} is no approval, incident or review issue")
        kind, record = subject
        move = Move(
            issue=hook.issue.key,
            subject=record,
            changes=tuple(moved),
            actor=Actor(
                self.person(hook.user.accountId, hook.user.emailAddress),
                DecisionChannel.jira,
                hook.user.accountId,
            ),
            comment=hook.comment.body if hook.comment else "",
            at=datetime.fromtimestamp(hook.timestamp / 1000, UTC) if hook.timestamp else datetime.now(UTC),
            delivery=hook.changelog.id or str(hook.timestamp),
        )
        return self.kinds[kind](move)

    def person(self, account_id: str, email: str | None) -> str:
        """Who the signed account is: the person the policy maps the account id to; otherwise the
        profile's e-mail, which incident and review updates still take and approvals do not
        (`flows.approvals.rules.identify`)."""
        return by_jira(self.policy().people, account_id) or email or account_id

    def approval(self, move: Move) -> Outcome:
        decided = [c for c in move.changes if (c.toString or "").lower() in DECISIONS]
        if not decided:
            return ignored("not a decision transition")
        decision = DECISIONS[(decided[-1].toString or "").lower()]
        verdict = self.handle(
            DecideApproval(
                actor=move.actor,
                at=move.at,
                approval_id=move.subject,
                decision=decision,
                reason=move.comment.strip(),
                delivery=("jira", move.issue, move.actor.name, move.delivery),
            )
        )
        outcome = answered(verdict, self.send)
        if verdict.refused and verdict.fresh:
            text = f"AIMS did not record this decision by {move.actor.name}: {verdict.message}."
            jira_reply(outcome, self.tracker, move.issue, text, JIRA_REOPEN)
        return outcome

    def incident(self, move: Move) -> Outcome:
        statuses = self.policy().incidents.jira_statuses.items()
        by_status = {status.casefold(): stage for stage, status in statuses}
        stage = by_status.get(move.to_status.casefold())
        kind = INCIDENT_MOVES.get(stage) if stage is not None else None
        if kind is None:
            return ignored("not a move to an incident stage")
        verdict = self.handle(
            UpdateIncident(
                actor=move.actor,
                at=move.at,
                incident_id=move.subject,
                kind=kind,
                detail=move.comment.strip(),
                delivery=("jira", move.issue, move.actor.name, move.delivery),
            )
        )
        outcome = answered(verdict, self.send)
        if verdict.refused and verdict.fresh:
            text = f"AIMS did not record this move by {move.actor.name}: {verdict.message}."
            jira_reply(outcome, self.tracker, move.issue, text, move.from_status or None)
        return outcome

    def review(self, move: Move) -> Outcome:
        closing = move.to_status.casefold() in CLOSING_STATUSES
        back_to = move.from_status or None
        try:
            results = parse_comment(move.subject, move.comment, move.actor.name, move.at)
        except CommentError as exc:
            outcome = Outcome(200, {"status": "refused"})
            text = f"AIMS recorded nothing from this comment: {exc}. {COMMENT_HELP}"
            jira_reply(outcome, self.tracker, move.issue, text, back_to if closing else None)
            return outcome
        if closing:
            results.append(Result(move.subject, ResultKind.close, move.actor.name, "jira", at=move.at))
        verdict = self.handle(
            RecordReviewResults(actor=move.actor, at=move.at, review_id=move.subject, results=tuple(results))
        )
        if verdict.status in ("ignored", "duplicate"):
            return Outcome(200, {"status": verdict.status})
        outcome = answered(verdict, self.send, "recorded" if verdict.accepted else "refused")
        lines = [
            ("Recorded: " if p.accepted else "Refused: ") + p.message
            for p in verdict.parts
            if not p.duplicate
        ]
        text = f"AIMS, review {move.subject}:\n" + "\n".join(lines)
        # A refused closing is put back, so Jira does not show closed a review the register holds open.
        close_refused = closing and verdict.parts[-1].refused
        jira_reply(outcome, self.tracker, move.issue, text, back_to if close_refused else None)
        return outcome
