"""handle-incident: triage a reported incident, start its Art. 73 clock, tell the people who act.

- Triage (flows/incidents/rules.py): severity raised to the policy's floor; seriousness under
  Art. 3(49)/73(3) with the criteria that matched; for a serious incident the reporting due date,
  the deadline it rests on and the detection time it runs from.
- Consequences, in the same transaction as the incident (the outbox): a risk reassessment of the
  AI system (8.2), and for a serious incident, or repeated ones in the policy's window, an
  extraordinary management review (9.3). While one is requested and not yet held
  (`incident_rules.not_yet_held`) the incident joins it: its reason and triggers name the incident,
  and no second review or review-requested event is made. If the review's pack was gathered
  before the incident joined, its attendees are told (`hold_management_review.tell_joined`).
- An AI system that is not in the inventory is a finding (A.4.2, A.6.2.6): a nonconformity per
  system, opened by its first incident and referred to by the later ones; the alert and the issue
  say so at the top.
- A Jira incident issue with the facts, moved to Triaged, and a Slack alert in the policy's
  incident channel with a button for each next step. track-incident keeps both up to date.

Idempotent: the incident's id is its event's source#id, a redelivered event or a retried run
finds it there, and the alert and the issue are found again before anything is posted. Runs for
two incidents may overlap: the register serializes their transactions, so the second one sees the
review (or the finding) the first one made, and joins (or refers to) it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from prefect import flow, get_run_logger, task

from flows.evidence import (
    actor,
    chat,
    evidence_record,
    load_policy,
    names_its_run,
    publish_summary,
    reassessment_request,
    register,
    run_id,
    run_settings,
    tracker,
)
from flows.evidence import send_outbox as send_events
from flows.incidents.rules import Triage, inventory_finding, triage
from flows.reviews.calls import (
    ReviewCall,
    incident_trigger,
    joined,
    requested_review,
    review_call,
    review_triggers,
)
from schemas.events import IncidentReportedEvent, ReviewRequestedEvent, RiskReassessmentRequestedEvent
from schemas.payloads import ReassessmentReason, ReviewRequested
from schemas.records import Incident, ManagementReview

if TYPE_CHECKING:
    from connectors.register.store import UnitOfWork
    from schemas.policy import Policy

FLOW = "handle-incident"
# A.4.2 and A.6.2.6: every incident's AI system is checked against the inventory.
SOURCE = "urn:aims:handle-incident"


def reassessment_for(event: IncidentReportedEvent) -> RiskReassessmentRequestedEvent:
    """An incident is evidence that a risk materialised (8.2): the system's risks are reassessed."""
    incident = event.data
    return reassessment_request(
        FLOW,
        f"reassess:{event.dedup_key}",
        incident.ai_system,
        ReassessmentReason.incident,
        event.dedup_key,
        {"severity": incident.severity.value, "category": incident.category.value},
    )


def triaged_incident(
    event: IncidentReportedEvent, found: Triage, at: datetime, finding: str | None = None
) -> Incident:
    report = event.data
    first_line = report.description.splitlines()[0].strip() if report.description.strip() else ""
    return Incident(
        id=event.dedup_key,
        system=report.ai_system,
        title=(first_line or report.category.value)[:120],
        description=report.description,
        category=report.category,
        severity=found.severity,
        reported_severity=report.severity,
        occurred_at=report.occurred_at,
        detected_at=report.detected_at,
        reported_by=report.reporter,
        status="triaged",
        serious=found.serious,
        criteria=[c.value for c in found.criteria],
        reporting_due_at=found.clock.due_at if found.clock else None,
        deadline_basis=found.clock.text if found.clock else None,
        triaged_at=at,
        flow_run_id=run_id(),
        inventory_finding=finding,
    )


def review_request(incident: Incident, call: ReviewCall, at: datetime) -> ManagementReview:
    return requested_review(incident, call, at, f"flow:{FLOW}")


def review_event_id(review_id: str) -> str:
    return f"{review_id}:requested"


def serious_review_key(event: IncidentReportedEvent) -> str:
    """The key of the review request a serious incident makes: the demo follows its run.

    An incident that joins a review not yet held makes no request, so no run has this key then.
    """
    return f"{SOURCE}#{review_event_id(f'extraordinary:serious:{event.dedup_key}')}"


def review_event(review: ManagementReview, incident: Incident) -> ReviewRequestedEvent:
    return ReviewRequestedEvent(
        specversion="1.0",
        id=review_event_id(review.id),
        source=SOURCE,
        time=review.created_at,
        data=ReviewRequested(
            review_id=review.id,
            reason=review.reason,
            trigger=incident_trigger(incident.id),
            requested_by=f"flow:{FLOW}",
            requested_at=review.created_at,
        ),
    )


def call_review(
    uow: UnitOfWork, incident: Incident, policy: Policy, at: datetime
) -> tuple[ManagementReview, bool] | None:
    """Join the extraordinary review not yet held, or request a new one: (the review, whether it is new).

    In the caller's unit of work, which holds the register's writer lock: a concurrent triage waits
    for it, then finds the review this one made and joins it.
    """
    reviews = uow.reviews.find(kind="extraordinary")
    call = review_call(incident, uow.incidents.find(), reviews, policy, at)
    if call is None:
        return None
    if call.joins is not None:
        return uow.reviews.update(call.joins.id, **joined(call.joins, call)), False
    review = review_request(incident, call, at)
    return review, uow.reviews.add_if_absent(review)


def record_finding(uow: UnitOfWork, system: str, incident_id: str, at: datetime) -> str | None:
    """The finding an AI system outside the inventory is (A.4.2, A.6.2.6); None for a known system.

    One per system: the first incident opens it, later ones refer to it. A closed one whose system is
    still unknown recurs, so it is opened again (the audit log keeps its closing).
    """
    if uow.systems.get(system) is not None:
        return None
    finding = inventory_finding(system, incident_id, at)
    current = uow.nonconformities.get(finding.id)
    if current is None:
        uow.nonconformities.add(finding)
    elif current.closed_at is not None:
        uow.nonconformities.update(finding.id, status="open", closed_at=None)
    return finding.id


def record_triage(
    uow: UnitOfWork, event: IncidentReportedEvent, policy: Policy, at: datetime, topic: str
) -> dict[str, Any]:
    """Record the triaged incident, its evidence and its consequences in the caller's unit of work.

    Only a new incident has consequences: a redelivered event or a retried run changes nothing. The
    outcome is read back from the register, so it is the same however often this runs; its "outbox"
    are the keys of the staged events, to send once committed.
    """
    from connectors.register.outbox import stage

    found = triage(event.data, policy)
    announce: list[Any] = [reassessment_for(event)]
    incident = uow.incidents.get(event.dedup_key)
    if incident is None:
        finding = record_finding(uow, event.data.ai_system, event.dedup_key, at)
        incident = triaged_incident(event, found, at, finding)
        uow.incidents.add(incident)
        called = call_review(uow, incident, policy, at)
        if called is not None and called[1]:
            announce.append(review_event(called[0], incident))
    outcome = _outcome(incident, event, found)
    outcome.update(_review_outcome(uow, incident))
    outcome.update(_finding_outcome(uow, incident))
    uow.evidence.add_if_absent(evidence_record(FLOW, event, outcome))
    outcome["outbox"] = stage(uow, announce, topic)
    return outcome


@task(name="triage-incident")
def triage_incident(event: IncidentReportedEvent) -> dict[str, Any]:
    """Record the triaged incident, its evidence and its consequences in one transaction."""
    policy = load_policy()
    with register().unit_of_work(actor(FLOW)) as uow:
        return record_triage(uow, event, policy, datetime.now(UTC), run_settings().events_topic)


def _outcome(incident: Incident, event: IncidentReportedEvent, found: Triage) -> dict[str, Any]:
    delay = incident.detected_at - incident.occurred_at
    return {
        "incident": incident.id,
        "ai_system": incident.system,
        "severity": incident.severity.value,
        "reported_severity": event.data.severity.value,
        "category": incident.category.value,
        "serious_art73": incident.serious,
        "criteria": ", ".join(incident.criteria) or "none",
        "reporting_due_at": incident.reporting_due_at.isoformat() if incident.reporting_due_at else None,
        "deadline_basis": incident.deadline_basis,
        "detected_at": incident.detected_at.isoformat(),
        "detection_delay_hours": round(delay.total_seconds() / 3600, 2),
    }


def _review_outcome(uow: UnitOfWork, incident: Incident) -> dict[str, Any]:
    """The extraordinary review the incident requested or joined, if any."""
    trigger = incident_trigger(incident.id)
    review = next((r for r in uow.reviews.find(kind="extraordinary") if trigger in review_triggers(r)), None)
    if review is None:
        return {"extraordinary_review": None, "review_joined": False}
    return {"extraordinary_review": review.id, "review_joined": review_triggers(review)[0] != trigger}


def _finding_outcome(uow: UnitOfWork, incident: Incident) -> dict[str, Any]:
    """Whether the AI system is in the inventory, and if not the finding that records it."""
    if incident.inventory_finding is None:
        return {"in_inventory": True, "inventory_finding": None}
    finding = uow.nonconformities.get(incident.inventory_finding)
    opened = finding is not None and finding.source_ref == incident.id
    return {
        "in_inventory": False,
        "inventory_finding": incident.inventory_finding,
        "inventory_finding_opened": opened,
    }


@task(name="open-incident-issue", retries=3, retry_delay_seconds=[2, 10, 30])
def open_issue(incident_id: str) -> str | None:
    """The Jira incident issue, found again by its label before any create; moved to Triaged."""
    from flows.incidents.commands import ISSUE_LABEL
    from flows.incidents.messages import inventory_labels, issue_description, issue_summary, jira_label
    from schemas.policy import IncidentStage

    issues = tracker()
    if issues is None:
        get_run_logger().info("Jira is not configured (AIMS_JIRA_URL): no incident issue")
        return None
    policy = load_policy()
    with register().reader() as uow:
        incident = uow.incidents.one(incident_id)
    key = incident.jira_issue or issues.find(jira_label(incident.id))
    if key is None:
        now = datetime.now(UTC)
        key = issues.create(
            policy.incidents.jira_project,
            issue_summary(incident),
            issue_description(incident, now),
            [jira_label(incident.id), ISSUE_LABEL, *inventory_labels(incident)],
        )
        triaged = policy.incidents.jira_statuses.get(IncidentStage.triaged)
        if triaged and not issues.transition(key, triaged):
            get_run_logger().warning("Jira offers no %r transition on %s; left where it is", triaged, key)
    if incident.jira_issue != key:
        with register().unit_of_work(actor(FLOW)) as uow:
            uow.incidents.update(incident_id, jira_issue=key)
    return key


@task(name="alert-incident-channel", retries=3, retry_delay_seconds=[2, 10, 30])
def alert_channel(incident_id: str) -> str | None:
    """The Slack alert in the policy's incident channel, posted once; its ref is kept on the incident."""
    from flows.incidents.commands import load_state
    from flows.incidents.messages import alert_blocks, alert_text
    from flows.incidents.rules import stage_of

    slack = chat()
    if slack is None:
        get_run_logger().info("Slack is not configured (AIMS_SLACK_BOT_TOKEN): no alert posted")
        return None
    with register().reader() as uow:
        state = load_state(uow, incident_id)
    assert state is not None
    incident = state.incident
    if incident.slack_ts:
        return incident.slack_ts
    channel = load_policy().incidents.slack_channel
    ref = slack.post(channel, alert_text(incident, stage_of(state)), alert_blocks(state, datetime.now(UTC)))
    with register().unit_of_work(actor(FLOW)) as uow:
        uow.incidents.update(incident_id, slack_channel=ref.channel, slack_ts=ref.ts)
    return ref.ts


def incident_headline(outcome: dict[str, Any]) -> str:
    """The triage in one sentence, first in the run's artifact."""
    head = f"{outcome['severity']} {outcome['category']} incident on {outcome['ai_system']}"
    if outcome.get("serious_art73"):
        head += f": serious under Art. 73, report due {outcome.get('reporting_due_at') or 'now'}"
    else:
        head += ": not serious under Art. 73"
    told = [
        f"Jira {outcome['jira_issue']}" if outcome.get("jira_issue") else "",
        "Slack alert posted" if outcome.get("slack_ts") else "",
        f"joins review {outcome['extraordinary_review']}" if outcome.get("extraordinary_review") else "",
    ]
    return "; ".join([head, *(t for t in told if t)])


@flow(
    name=FLOW,
    description="Triage a reported incident, start its Art. 73 clock, open its issue and alert.",
    flow_run_name=names_its_run(FLOW),
)
def handle_incident(event: IncidentReportedEvent) -> dict[str, Any]:
    from flows.reviews.hold_management_review import tell_joined

    outcome = triage_incident(event)
    send_events(FLOW, outcome.pop("outbox"))
    # Jira first, so the Slack alert can name the issue.
    outcome["jira_issue"] = open_issue(outcome["incident"])
    outcome["slack_ts"] = alert_channel(outcome["incident"])
    if outcome["review_joined"]:
        # After the incident's own issue, so that the attendees' note can name it.
        outcome["review_told"] = tell_joined(outcome["extraordinary_review"])
    publish_summary(FLOW, f"Incident on {event.data.ai_system}", event, outcome, incident_headline(outcome))
    return outcome
