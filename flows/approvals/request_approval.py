"""request-approval: ask accountable people in Slack and Jira, wait suspended, record the outcome.

DESIGN decision 4. The run records (or adopts) the pending approval, posts it to the approver
groups' Slack channels with Approve/Reject buttons and files a Jira issue with Approve/Reject
transitions, then suspends with `wait_for_input(DecisionInput)`: no process is held while people
think, and the Prefect UI shows the run as waiting, with a form to resume it. The form proves
nobody: what is typed there is recorded as refused unless the policy allows it for low risk.

Every resume re-executes the flow from the start. Each side effect is therefore keyed by the
approval id in the register (and its task result persisted), so nothing is posted twice; the
suspend keys `decision-<n>` replay the inputs already received, in order.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from prefect import flow, get_run_logger, task
from prefect.flow_runs import suspend_flow_run

from flows.approvals.commands import ISSUE_LABEL, DecideApproval
from flows.approvals.messages import (
    JIRA_APPROVE,
    JIRA_REJECT,
    issue_description,
    issue_summary,
    jira_label,
    notification,
    outcome_blocks,
    outcome_comment,
    progress_blocks,
    request_blocks,
)
from flows.approvals.rules import Tally, authority, submitters, tally
from flows.commands import Actor, Context, handle
from flows.evidence import (
    actor,
    chat,
    evidence_record,
    load_policy,
    names_its_run,
    publish_summary,
    register,
    run_id,
    run_settings,
    send_outbox,
    tracker,
)
from schemas.events import ApprovalDecidedEvent, ApprovalRequestedEvent
from schemas.payloads import ApprovalDecided, ApprovalOutcome, DecisionChannel, DecisionInput, DecisionSummary
from schemas.records import Approval, ApprovalDecision, ApprovalNotice

if TYPE_CHECKING:
    from connectors.register.store import UnitOfWork
    from connectors.slack import MessageRef
    from schemas.policy import Policy

FLOW = "request-approval"
SOURCE = "urn:aims:request-approval"
log = logging.getLogger("aims.approvals")


def notice_id(approval_id: str, kind: str, step: str = "") -> str:
    return f"{approval_id}:{kind}:{step}"


def slack_messages(uow: UnitOfWork, approval_id: str) -> list[MessageRef]:
    """Every Slack message that carries this request's buttons (one per approver channel)."""
    from connectors.slack import MessageRef

    return [
        MessageRef(n.recipients[0], n.recipients[1])
        for n in uow.notices.find(approval_id=approval_id, kind="request-slack", order_by="sent_at")
    ]


# -- the request ------------------------------------------------------------------------------


def new_approval(event: ApprovalRequestedEvent, policy: Policy) -> Approval:
    """A request that arrived as an event only (no flow wrote it first): the policy fills it in."""
    data = event.data
    rule = policy.approvals.get(data.risk_level)
    sla = policy.slas.get(data.risk_level)
    if rule is None or sla is None:
        raise ValueError(
            f"the policy names no approvers for {data.risk_level.value} risk: "
            "add the level under `approvals` and `slas`"
        )
    requested_at = event.time or datetime.now(UTC)
    return Approval(
        id=data.approval_id,
        subject=data.subject,
        system=data.ai_system,
        requested_decision=data.requested_decision,
        risk_level=data.risk_level,
        approver_group=",".join(rule.groups),
        quorum=rule.quorum,
        context={
            "groups": list(rule.groups),
            "distinct_groups": rule.distinct_groups,
            "separation_of_duties": rule.separation_of_duties,
            "submitted_by": data.requested_by,
            # Who that is, as people, and what follows if nobody: for the record and the messages.
            **submitters(policy, data.requested_by).context(),
            "summary": data.summary,
        },
        requested_by=data.requested_by,
        requested_at=requested_at,
        due_at=requested_at + timedelta(hours=sla.decision_hours),
    )


@task(name="open-approval")
def open_approval(event: ApprovalRequestedEvent) -> Approval:
    """The pending approval, written now if the requester did not, and bound to this run."""
    policy = load_policy()
    with register().unit_of_work(actor(FLOW)) as uow:
        approval = uow.approvals.get(event.data.approval_id)
        if approval is None:
            approval = new_approval(event, policy)
            uow.approvals.add(approval)
        current = run_id()
        if current and approval.flow_run_id != current:
            approval = uow.approvals.update(approval.id, flow_run_id=current)
        return approval


@task(name="post-request", retries=2, retry_delay_seconds=5)
def post_request(approval_id: str) -> Approval:
    """Slack messages and the Jira issue, each once: the register says what was already posted."""
    from connectors.jira_issues import TrackerError
    from connectors.slack import ChatError

    logger = get_run_logger()
    policy = load_policy()
    with register().reader() as uow:
        approval = uow.approvals.one(approval_id)
        posted = {n.step for n in uow.notices.find(approval_id=approval_id, kind="request-slack")}
    slack = chat()
    if slack is None:
        logger.warning("Slack is not configured (AIMS_SLACK_BOT_TOKEN): the request is not posted there")
    for group in approval.groups:
        spec = policy.approver_groups.get(group)
        if slack is None or spec is None or spec.slack_channel in posted:
            continue
        try:
            ref = slack.post(spec.slack_channel, notification(approval), request_blocks(approval, "waiting"))
        except ChatError as exc:
            logger.error("could not post approval %s to #%s: %s", approval_id, spec.slack_channel, exc)
            continue
        posted.add(spec.slack_channel)
        with register().unit_of_work(actor(FLOW)) as uow:
            uow.notices.add_if_absent(
                ApprovalNotice(
                    id=notice_id(approval_id, "request-slack", spec.slack_channel),
                    approval_id=approval_id,
                    kind="request-slack",
                    step=spec.slack_channel,
                    recipients=[ref.channel, ref.ts],
                )
            )
            if approval.slack_ts is None:
                approval = uow.approvals.update(approval_id, slack_channel=ref.channel, slack_ts=ref.ts)
    issues = tracker()
    project = next(
        (p.jira_project for g in approval.groups if (p := policy.approver_groups.get(g)) and p.jira_project),
        None,
    )
    if issues is not None and project is not None and approval.jira_issue is None:
        try:
            # Looked up first: a run that died after creating the issue must not create a second.
            # By a hash of the id only: the id itself never goes into a search (see `jira_label`).
            key = issues.find(jira_label(approval_id)) or issues.create(
                project,
                issue_summary(approval),
                issue_description(approval),
                [jira_label(approval_id), ISSUE_LABEL],
            )
        except TrackerError as exc:
            logger.error("could not file approval %s in Jira project %s: %s", approval_id, project, exc)
        else:
            with register().unit_of_work(actor(FLOW)) as uow:
                approval = uow.approvals.update(approval_id, jira_issue=key)
    return approval


# -- waiting ----------------------------------------------------------------------------------


def standing(approval_id: str, policy: Policy) -> tuple[Approval, Tally]:
    with register().reader() as uow:
        approval = uow.approvals.one(approval_id)
        accepted = uow.decisions.find(approval_id=approval_id, accepted=True, order_by="decided_at")
    return approval, tally(authority(approval, policy), accepted)


def take_input(approval_id: str, received: DecisionInput, key: str, policy: Policy) -> None:
    """A decision typed into the Prefect UI's resume form goes through the same checks as a click;
    the form proves nobody, so the command carries no credential (refused unless the policy allows)."""
    logger = get_run_logger()
    if received.decision_id is not None:
        # Validated and recorded on its way here (Slack, Jira, the CLI, the deadline); the tally reads
        # the register, so an id typed into the form that is not there decides nothing.
        with register().reader() as uow:
            if uow.decisions.get(received.decision_id) is None:
                logger.warning(
                    "input names decision %s, which is not in the register: ignored", received.decision_id
                )
        return
    command = DecideApproval(
        actor=Actor(received.approver, DecisionChannel.prefect_ui),
        approval_id=approval_id,
        decision=received.decision,
        reason=received.reason,
        # Keyed by the run and the suspend key: the replay of this input after a later resume is a no-op.
        delivery=(str(run_id()), key, "ui"),
    )
    result = handle(command, Context(register(), policy, run_settings().events_topic))
    if result.accepted:
        send_outbox(FLOW, list(result.keys))
    elif result.status == "refused":
        logger.warning("decision from the Prefect UI refused: %s", result.message)


@task(name="show-progress")
def show_progress(approval_id: str, progress: str) -> None:
    slack = chat()
    if slack is None:
        return
    with register().reader() as uow:
        approval = uow.approvals.one(approval_id)
        so_far = uow.decisions.find(approval_id=approval_id, accepted=True, order_by="decided_at")
        messages = slack_messages(uow, approval_id)
    for ref in messages:
        slack.update(ref, notification(approval, progress), progress_blocks(approval, progress, so_far))


# -- the outcome ------------------------------------------------------------------------------


def decided_event(
    approval: Approval, outcome: ApprovalOutcome, decided_at: datetime, accepted: list[ApprovalDecision]
) -> ApprovalDecidedEvent:
    return ApprovalDecidedEvent(
        specversion="1.0",
        id=f"{approval.id}:decided",
        source=SOURCE,
        time=decided_at,
        data=ApprovalDecided(
            approval_id=approval.id,
            ai_system=approval.system,
            subject=approval.subject,
            requested_decision=approval.requested_decision,
            outcome=outcome,
            approved=outcome is ApprovalOutcome.approved,
            decisions=[
                DecisionSummary(
                    approver=d.decided_by,
                    decision=d.decision,
                    channel=d.channel,
                    reason=d.reason,
                    decided_at=d.decided_at,
                    authenticated=d.authenticated is not False,
                )
                for d in accepted
                if d.decision != "expire"
            ],
            decided_at=decided_at,
        ),
    )


@task(name="record-outcome")
def record_outcome(event: ApprovalRequestedEvent, outcome: ApprovalOutcome) -> list[str]:
    """The approval's status, the evidence and the approval-decided event, in one transaction."""
    from connectors.register.outbox import stage

    with register().unit_of_work(actor(FLOW)) as uow:
        approval = uow.approvals.one(event.data.approval_id)
        accepted = uow.decisions.find(approval_id=approval.id, accepted=True, order_by="decided_at")
        if approval.status == "pending":
            decided_at = accepted[-1].decided_at if accepted else datetime.now(UTC)
            approval = uow.approvals.update(approval.id, status=outcome.value, decided_at=decided_at)
        decided_at = approval.decided_at or datetime.now(UTC)
        result = {
            "approval_id": approval.id,
            "outcome": outcome.value,
            "approved": outcome is ApprovalOutcome.approved,
            "decided_at": decided_at.isoformat(),
        }
        uow.evidence.add_if_absent(evidence_record(FLOW, event, result))
        return stage(
            uow, [decided_event(approval, outcome, decided_at, accepted)], run_settings().events_topic
        )


@task(name="close-request", retries=2, retry_delay_seconds=5)
def close_request(approval_id: str, outcome: ApprovalOutcome) -> None:
    """Slack messages show the outcome without buttons; the Jira issue is moved and commented."""
    from connectors.jira_issues import TrackerError

    with register().reader() as uow:
        approval = uow.approvals.one(approval_id)
        decisions = uow.decisions.find(approval_id=approval_id, accepted=True, order_by="decided_at")
        messages = slack_messages(uow, approval_id)
        done = {n.kind for n in uow.notices.find(approval_id=approval_id)}
    slack = chat()
    if slack is not None:
        # chat.update is idempotent: a retried close shows the same outcome again.
        for ref in messages:
            slack.update(
                ref, notification(approval, outcome.value), outcome_blocks(approval, outcome, decisions)
            )
    issues = tracker()
    if issues is None or approval.jira_issue is None or "outcome-jira" in done:
        return
    transition = JIRA_APPROVE if outcome is ApprovalOutcome.approved else JIRA_REJECT
    comment = outcome_comment(outcome, decisions)
    try:
        decided_in_jira = any(d.channel == DecisionChannel.jira.value for d in decisions)
        if decided_in_jira or not issues.transition(approval.jira_issue, transition, comment):
            issues.comment(approval.jira_issue, comment)
    except TrackerError as exc:
        get_run_logger().error("could not update Jira issue %s: %s", approval.jira_issue, exc)
        raise
    with register().unit_of_work(actor(FLOW)) as uow:
        uow.notices.add_if_absent(
            ApprovalNotice(
                id=notice_id(approval_id, "outcome-jira"),
                approval_id=approval_id,
                kind="outcome-jira",
                recipients=[approval.jira_issue],
            )
        )


def approval_headline(
    event: ApprovalRequestedEvent, outcome: ApprovalOutcome, decisions: list[ApprovalDecision]
) -> str:
    """The outcome and who decided it, in one sentence, first in the run's artifact."""
    d = event.data
    by = ", ".join(f"{x.decided_by} {x.decision} via {x.channel}" for x in decisions[:5]) or "nobody decided"
    more = f" and {len(decisions) - 5} more" if len(decisions) > 5 else ""
    about = f"{d.requested_decision} for {d.ai_system or d.subject} ({d.risk_level.value} risk)"
    return f"{about} {outcome.value}: {by}{more}"


@flow(
    name=FLOW,
    description="Ask the approvers in Slack and Jira, wait suspended for decisions, record the outcome.",
    flow_run_name=names_its_run(FLOW),
    persist_result=True,
)
def request_approval(event: ApprovalRequestedEvent) -> dict[str, Any]:
    policy = load_policy()
    approval = open_approval(event)
    post_request(approval.id)
    step = 0
    while True:
        approval, state = standing(approval.id, policy)
        if state.outcome is not None:
            break
        if state.approvers:
            show_progress(approval.id, state.progress)
        key = f"decision-{step}"
        received = suspend_flow_run(wait_for_input=DecisionInput, key=key)
        step += 1
        take_input(approval.id, received, key, policy)
    keys = record_outcome(event, state.outcome)
    send_outbox(FLOW, keys)
    close_request(approval.id, state.outcome)
    result = {
        "approval_id": approval.id,
        "outcome": state.outcome.value,
        # The requesting side treats anything but an approval (a rejection, an expiry) as "no".
        "approved": state.outcome is ApprovalOutcome.approved,
    }
    with register().reader() as uow:
        decided = uow.decisions.find(approval_id=approval.id, accepted=True, order_by="decided_at")
    title = f"Approval {approval.id}: {state.outcome.value}"
    publish_summary(FLOW, title, event, result, approval_headline(event, state.outcome, decided))
    return result
