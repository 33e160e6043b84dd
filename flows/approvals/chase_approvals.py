"""chase-approvals: reminders, escalation and expiry of the approvals still waiting.

Runs every 15 minutes on its deployment's schedule (or on demand with `as_of`, to look from another
time). For each pending approval it applies the policy's SLA for its risk level:

- a reminder at each of `remind_before_hours` before the decision is due;
- each escalation step once its `after_hours` have passed: the groups and people it names are told,
  and may decide from then on;
- at `expire_after_hours`, the deadline's own decision, "expire", on the one decision path: the
  waiting run resumes and records the outcome "expired", which counts as not approved;
- a waiting run that crashed, failed or was cancelled is replaced by a new one, so no approval is
  left pending with nobody waiting for it.

Each notice is a register row keyed <approval>:<kind>:<step>, so each goes out once however often
the schedule runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from uuid import UUID

from prefect import flow, get_run_logger, task

from flows.approvals.commands import DecideApproval, requested_event
from flows.approvals.messages import escalation_text, reminder_text, request_blocks, title
from flows.approvals.request_approval import notice_id, slack_messages
from flows.approvals.rules import DEADLINE
from flows.commands import Actor, Context, handle
from flows.evidence import (
    actor,
    chat,
    load_policy,
    names_its_run,
    register,
    run_settings,
    send_outbox,
    tracker,
)
from flows.text import jira_text, plain
from schemas.payloads import Decision, DecisionChannel
from schemas.policy import Policy, Sla
from schemas.records import Approval, ApprovalNotice

if TYPE_CHECKING:
    from prefect.client.schemas.objects import FlowRun

    from connectors.slack import Blocks, Chat

FLOW = "chase-approvals"
SCHEDULE = "*/15 * * * *"


@dataclass(frozen=True)
class Due:
    kind: str  # reminder | escalation | expiry
    step: str
    hours: int
    notify: tuple[str, ...] = ()


def plan(approval: Approval, sla: Sla, now: datetime, sent: set[str]) -> list[Due]:
    """What is due for one pending approval at `now` and not sent yet, in time order."""
    waited = now - approval.requested_at
    due_at = approval.due_at or approval.requested_at + timedelta(hours=sla.decision_hours)
    out: list[Due] = []
    if waited >= timedelta(hours=sla.expiry_hours()):
        # Past the end everything earlier is moot: expire only.
        return [] if notice_id(approval.id, "expiry") in sent else [Due("expiry", "", sla.expiry_hours())]
    for hours in sla.reminders():
        if (
            due_at - timedelta(hours=hours) <= now < due_at
            and notice_id(approval.id, "reminder", str(hours)) not in sent
        ):
            out.append(Due("reminder", str(hours), hours))
            break  # the nearest threshold only: one reminder per run, never a burst of them
    for i, step in enumerate(sla.escalation):
        if (
            waited >= timedelta(hours=step.after_hours)
            and notice_id(approval.id, "escalation", str(i)) not in sent
        ):
            out.append(Due("escalation", str(i), step.after_hours, step.notify))
    return out


def _remind(approval: Approval, due: Due, now: datetime) -> list[str]:
    slack, issues = chat(), tracker()
    hours_left = max(1, round(((approval.due_at or now) - now).total_seconds() / 3600))
    text = reminder_text(approval, hours_left)
    sent: list[str] = []
    with register().reader() as uow:
        messages = slack_messages(uow, approval.id)
    if slack is not None:
        for ref in messages:
            slack.post(ref.channel, text, thread_ts=ref.ts)  # in the request's thread, by its buttons
            sent.append(f"slack:{ref.channel}")
    if issues is not None and approval.jira_issue:
        issues.comment(approval.jira_issue, reminder_text(approval, hours_left, jira_text))
        sent.append(f"jira:{approval.jira_issue}")
    return sent


def _tell_slack(
    slack: Chat, approval: Approval, due: Due, policy: Policy, text: str, blocks: Blocks
) -> list[str]:
    """Each group's channel and each person an escalation names; a new one gets the buttons too."""
    with register().reader() as uow:
        posted = {
            n.step: n.recipients for n in uow.notices.find(approval_id=approval.id, kind="request-slack")
        }
    sent: list[str] = []
    for who in due.notify:
        group = policy.approver_groups.get(who)
        step = group.slack_channel if group is not None else who
        if step in posted:
            # Already holds the request with its buttons: a nudge in its thread is enough.
            slack.post(posted[step][0], text, thread_ts=posted[step][1])
            sent.append(f"slack:{step}")
            continue
        ref = slack.post(step, text, blocks) if group is not None else slack.post_to_person(who, text, blocks)
        if ref is None:
            get_run_logger().warning("Slack knows nobody with the email %s; not told", who)
            continue
        with register().unit_of_work(actor(FLOW)) as uow:
            # The escalated message carries buttons too: it is updated with the outcome like the first.
            uow.notices.add_if_absent(
                ApprovalNotice(
                    id=notice_id(approval.id, "request-slack", step),
                    approval_id=approval.id,
                    kind="request-slack",
                    step=step,
                    recipients=[ref.channel, ref.ts],
                )
            )
        sent.append(f"slack:{step}")
    return sent


def _escalate(approval: Approval, due: Due, policy: Policy) -> list[str]:
    slack, issues = chat(), tracker()
    text = escalation_text(approval, due.notify, due.hours)
    escalated = approval.model_copy(update={"escalated_to": [*approval.escalated_to, *due.notify]})
    blocks = request_blocks(escalated, f"escalated after {due.hours} h")
    sent: list[str] = []
    if slack is not None:
        sent += _tell_slack(slack, approval, due, policy, text, blocks)
    if issues is not None and approval.jira_issue:
        issues.comment(approval.jira_issue, escalation_text(approval, due.notify, due.hours, jira_text))
        sent.append(f"jira:{approval.jira_issue}")
    return sent


def _expire(approval: Approval, policy: Policy, now: datetime) -> list[str]:
    command = DecideApproval(
        actor=Actor(DEADLINE, DecisionChannel.deadline),
        at=now,
        approval_id=approval.id,
        decision=Decision.expire,
        reason="no decision in time",
    )
    result = handle(command, Context(register(), policy, run_settings().events_topic))
    send_outbox(FLOW, list(result.keys))
    return [result.status]


@task(name="restart-abandoned")
def restart_abandoned(approval_id: str) -> str | None:
    """A new request run for a pending approval whose waiting run ended without an outcome.

    A run that crashed, failed or was cancelled while waiting would leave its approval pending for
    good. The new run adopts the approval, finds its Slack messages and Jira issue (nothing is
    posted twice) and reads the decisions already made; it carries the approval's tag, so decisions
    resume it.
    """
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.objects import StateType
    from prefect.deployments.flow_runs import run_deployment
    from prefect.exceptions import ObjectNotFound

    from flows.approvals.request_approval import FLOW as REQUEST_FLOW
    from flows.run_tags import DEPLOYMENT, approval_tag, run_name, subject_tags

    with register().reader() as uow:
        approval = uow.approvals.one(approval_id)
    if approval.status != "pending" or approval.flow_run_id is None:
        return None
    event = requested_event(approval, f"urn:aims:{FLOW}")
    tag = approval_tag(event)
    with get_client(sync_client=True) as client:
        try:
            run = client.read_flow_run(UUID(approval.flow_run_id))
        except ObjectNotFound:
            run = None
    if run is not None and (
        tag not in run.tags  # the requester's run, not a waiting one: the request run is on its way
        or run.state is None
        or run.state.type not in (StateType.FAILED, StateType.CRASHED, StateType.CANCELLED)
    ):
        return None
    # Called from sync code, run_deployment returns the run itself (its type says "or a coroutine").
    new: FlowRun = run_deployment(  # type: ignore[assignment]
        f"{REQUEST_FLOW}/{DEPLOYMENT}",
        parameters={"event": event.model_dump(mode="json")},
        timeout=0,
        idempotency_key=f"restart:{approval.id}:{approval.flow_run_id}",
        flow_run_name=run_name(REQUEST_FLOW, event),
        tags=list(dict.fromkeys([tag, *subject_tags(event)])),
        as_subflow=False,
    )
    get_run_logger().warning(
        "approval %s: its waiting run %s ended without an outcome; started %s",
        approval.id,
        approval.flow_run_id,
        new.id,
    )
    return str(new.id)


@task(name="chase-one")
def chase_one(approval_id: str, now: datetime) -> list[dict[str, Any]]:
    policy = load_policy()
    with register().reader() as uow:
        approval = uow.approvals.one(approval_id)
        sent = {n.id for n in uow.notices.find(approval_id=approval_id)}
    sla = policy.slas.get(approval.risk_level) if approval.risk_level else None
    if sla is None or approval.status != "pending":
        return []
    done = []
    for due in plan(approval, sla, now, sent):
        if due.kind == "reminder":
            recipients = _remind(approval, due, now)
        elif due.kind == "escalation":
            recipients = _escalate(approval, due, policy)
        else:
            recipients = _expire(approval, policy, now)
        with register().unit_of_work(actor(FLOW)) as uow:
            uow.notices.add_if_absent(
                ApprovalNotice(
                    id=notice_id(approval.id, due.kind, due.step),
                    approval_id=approval.id,
                    kind=due.kind,
                    step=due.step,
                    recipients=recipients,
                    sent_at=now,
                )
            )
            if due.kind == "escalation":
                current = uow.approvals.one(approval.id)
                widened = list(dict.fromkeys([*current.escalated_to, *due.notify]))
                approval = uow.approvals.update(approval.id, escalated_to=widened)
        done.append({"approval": approval.id, "kind": due.kind, "step": due.step, "to": recipients})
        get_run_logger().info(
            "%s %s of %s: %s", due.kind, due.step, plain(title(approval)), ", ".join(recipients)
        )
    return done


@flow(
    name=FLOW,
    description="Remind, escalate and expire pending approvals according to the policy's SLAs.",
    flow_run_name=names_its_run(FLOW),
)
def chase_approvals(as_of: datetime | None = None, approvals: list[str] | None = None) -> dict[str, Any]:
    """`as_of`: the time to look from (now); `approvals`: chase only these (all pending by default)."""
    now = (as_of or datetime.now(UTC)).astimezone(UTC)
    with register().reader() as uow:
        pending = [
            a.id
            for a in uow.approvals.find(status="pending", order_by="requested_at")
            if approvals is None or a.id in approvals
        ]
    done: list[dict[str, Any]] = []
    restarted = []
    for approval_id in pending:
        if (run := restart_abandoned(approval_id)) is not None:
            restarted.append(run)
        done += chase_one(approval_id, now)
    return {"as_of": now.isoformat(), "pending": len(pending), "sent": done, "restarted": restarted}
