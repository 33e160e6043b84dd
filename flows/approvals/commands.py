"""The one path every decision takes: validate, record (accepted or refused), announce.

The Slack and Jira gateway, `aims approvals approve|reject`, the Prefect UI's resume form (through
the waiting run) and the deadline all send a `DecideApproval` command through `flows.commands.handle`,
whose handler (`decide`) calls `submit`. An accepted decision and its
approval-decision-submitted event are written in one transaction (the outbox), so a crash between
the two loses nothing; the router turns the event into `resume_flow_run` of the waiting run.
A refused attempt is recorded with its reason and announces nothing.

No Prefect here: the gateway and the CLI import this without the orchestrator's start-up cost.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from flows.approvals.rules import Attempt, Duplicate, Refused, authority, check, identify
from flows.commands import Command, Context, Verdict, attempt_key, handles
from schemas.events import ApprovalDecisionSubmittedEvent, ApprovalRequestedEvent
from schemas.payloads import ApprovalDecisionSubmitted, ApprovalRequested, Decision
from schemas.policy import Policy
from schemas.records import Approval, ApprovalDecision

if TYPE_CHECKING:
    from connectors.register.store import Register, UnitOfWork

SOURCE = "urn:aims:approvals"
# The label request-approval puts on every approval's Jira issue: the gateway dispatches by it.
ISSUE_LABEL = "aims"


def accepted_id(approval_id: str, approver: str) -> str:
    # One accepted decision per person and approval: a double click or a redelivered webhook
    # computes the same id, and the primary key turns a race between them into one row.
    return f"{approval_id}:{approver.strip().casefold()}"


@dataclass(frozen=True, kw_only=True)
class DecideApproval(Command):
    """An approver's answer to an approval request (or the deadline's expiry)."""

    approval_id: str
    decision: Decision
    reason: str = ""

    def describe(self) -> str:
        return f"{self.decision.value} of {self.approval_id}"

    def attempt(self) -> Attempt:
        return Attempt(
            approval_id=self.approval_id,
            approver=self.actor.name,
            decision=self.decision,
            channel=self.actor.channel,
            reason=self.reason,
            at=self.at,
            credential=self.actor.credential,
        )


@handles(DecideApproval)
def decide(command: DecideApproval, ctx: Context) -> Verdict:
    """The handler: the attempt through `submit`."""
    return submit(ctx.register, ctx.policy, command.attempt(), ctx.topic, command.refusal_id())


def decision_event(decision: ApprovalDecision) -> ApprovalDecisionSubmittedEvent:
    return ApprovalDecisionSubmittedEvent(
        specversion="1.0",
        id=decision.id,
        source=SOURCE,
        time=decision.decided_at,
        data=ApprovalDecisionSubmitted(
            approval_id=decision.approval_id,
            decision_id=decision.id,
            decision=decision.decision,
            approver=decision.decided_by,
            channel=decision.channel,
            reason=decision.reason,
            decided_at=decision.decided_at,
            authenticated=decision.authenticated is not False,
        ),
    )


def requested_event(approval: Approval, source: str, summary: str | None = None) -> ApprovalRequestedEvent:
    """Ask the request-approval flow to take an approval a flow has just written to the register."""
    if approval.risk_level is None:
        raise ValueError(f"approval {approval.id} has no risk level: the policy's rules cannot apply")
    return ApprovalRequestedEvent(
        specversion="1.0",
        id=f"{approval.id}:requested",
        source=source,
        time=approval.requested_at,
        data=ApprovalRequested(
            approval_id=approval.id,
            ai_system=approval.system,
            subject=approval.subject,
            requested_decision=approval.requested_decision,
            risk_level=approval.risk_level,
            requested_by=approval.requested_by,
            summary=summary,
        ),
    )


def submit(
    register: Register, policy: Policy, attempt: Attempt, topic: str, refusal_id: str | None = None
) -> Verdict:
    """Validate and record one attempt; nothing is announced unless it was accepted."""
    actor = f"{attempt.channel.value}:{attempt.approver}"
    with register.unit_of_work(actor) as uow:
        return _submit(uow, policy, attempt, topic, refusal_id)


def _submit(uow: UnitOfWork, policy: Policy, attempt: Attempt, topic: str, refusal_id: str | None) -> Verdict:
    from connectors.register.outbox import stage

    approval = uow.approvals.get(attempt.approval_id)
    if approval is None:
        return Verdict.refusal(f"there is no approval {attempt.approval_id!r}")
    accepted = uow.decisions.find(approval_id=approval.id, accepted=True, order_by="decided_at")
    rules = authority(approval, policy)
    verdict = check(approval, rules, accepted, attempt)
    if isinstance(verdict, Duplicate):
        return Verdict("duplicate", f"already recorded: {verdict.existing.decision}", record=verdict.existing)
    if isinstance(verdict, Refused):
        refused = ApprovalDecision(
            id=refusal_id or attempt_key(approval.id, attempt.approver, attempt.channel, str(attempt.at)),
            approval_id=approval.id,
            decided_by=attempt.approver,
            channel=attempt.channel.value,
            decision=attempt.decision.value,
            reason=attempt.reason,
            accepted=False,
            refusal=verdict.why,
            decided_at=attempt.at,
            credential=attempt.credential,
        )
        fresh = uow.decisions.add_if_absent(refused)
        return Verdict.refusal(verdict.why, logged=True, fresh=fresh, record=refused)
    decision = ApprovalDecision(
        id=accepted_id(approval.id, attempt.approver),
        approval_id=approval.id,
        decided_by=attempt.approver,
        channel=attempt.channel.value,
        decision=attempt.decision.value,
        reason=attempt.reason,
        decided_at=attempt.at,
        credential=attempt.credential,
        # `check` passed, so `identify` said True or False (accepted though nobody was proven).
        authenticated=identify(approval, rules, attempt) is True,
    )
    uow.decisions.add(decision)
    keys = stage(uow, [decision_event(decision)], topic)
    verb = {Decision.approve: "approval", Decision.reject: "rejection", Decision.expire: "expiry"}
    message = f"{verb[attempt.decision]} recorded"
    return Verdict("accepted", message, reply=f"your {message}", keys=tuple(keys), record=decision)
