"""handle-incident: triage a reported incident, start its Art. 73 clock, tell the people who act.

- Triage (flows/incident_rules.py): severity raised to the policy's floor; seriousness under
  Art. 3(49)/73(3) with the criteria that matched; for a serious incident the reporting due date,
  the deadline it rests on and the detection time it runs from.
- Consequences, in the same transaction as the incident (the outbox): a risk reassessment of the
  AI system (8.2), and for a serious incident, or repeated ones in the policy's window, an
  extraordinary management review (9.3).
- A Jira incident issue with the facts, moved to Triaged, and a Slack alert in the policy's
  incident channel with a button for each next step. track-incident keeps both up to date.

Idempotent: the incident's id is its event's source#id, a redelivered event or a retried run
finds it there, and the alert and the issue are found again before anything is posted.
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
    publish_summary,
    reassessment_request,
    register,
    run_id,
    tracker,
)
from flows.evidence import send_outbox as send_events
from flows.incident_rules import Triage, review_reason, triage
from schemas.events import IncidentReportedEvent, ReviewRequestedEvent, RiskReassessmentRequestedEvent
from schemas.payloads import ReassessmentReason
from schemas.records import Incident, ManagementReview
from schemas.settings import load_settings

if TYPE_CHECKING:
    from connectors.register.store import UnitOfWork
    from schemas.policy import Policy

FLOW = "handle-incident"
CONTROLS = ["A.3.3", "A.6.2.8", "A.8.3", "A.8.4", "10.2"]
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


def triaged_incident(event: IncidentReportedEvent, found: Triage, at: datetime) -> Incident:
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
    )


def review_request(incident: Incident, reason: str, kind: str, at: datetime) -> ManagementReview:
    return ManagementReview(
        id=f"extraordinary:{kind}:{incident.id}",
        kind="extraordinary",
        reason=reason,
        status="requested",
        created_at=at,
        trigger=f"incident:{incident.id}",
        requested_by=f"flow:{FLOW}",
    )


def review_event_id(review_id: str) -> str:
    return f"{review_id}:requested"


def serious_review_key(event: IncidentReportedEvent) -> str:
    """The key of the review request a serious incident makes: the demo follows its run."""
    return f"{SOURCE}#{review_event_id(f'extraordinary:serious:{event.dedup_key}')}"


def review_event(review: ManagementReview, incident: Incident) -> ReviewRequestedEvent:
    return ReviewRequestedEvent.model_validate(
        {
            "specversion": "1.0",
            "id": review_event_id(review.id),
            "source": SOURCE,
            "time": review.created_at.isoformat(),
            "data": {
                "review_id": review.id,
                "reason": review.reason,
                "trigger": f"incident:{incident.id}",
                "requested_by": f"flow:{FLOW}",
                "requested_at": review.created_at.isoformat(),
            },
        }
    )


def _review(uow: UnitOfWork, incident: Incident, policy: Policy, at: datetime) -> ManagementReview | None:
    """The extraordinary review this incident calls, once per trigger; None if it calls none."""
    reason = review_reason(incident, uow.incidents.find(), policy)
    if reason is None:
        return None
    if not incident.serious:
        # Repeated incidents call one review per window, not one per incident beyond the count.
        window = policy.management_review.extraordinary.within_days * 86_400
        for earlier in uow.reviews.find(kind="extraordinary"):
            recent = (at - earlier.created_at).total_seconds() < window
            if earlier.id.startswith("extraordinary:repeated:") and recent:
                return None
    return review_request(incident, reason, "serious" if incident.serious else "repeated", at)


@task(name="triage-incident")
def triage_incident(event: IncidentReportedEvent) -> dict[str, Any]:
    """Record the triaged incident, its evidence and its consequences in one transaction."""
    from events.outbox import stage

    policy = load_policy()
    found = triage(event.data, policy)
    now = datetime.now(UTC)
    announce: list[Any] = [reassessment_for(event)]
    with register().unit_of_work(actor(FLOW)) as uow:
        incident = uow.incidents.get(event.dedup_key)
        if incident is None:
            incident = triaged_incident(event, found, now)
            uow.incidents.add(incident)
            review = _review(uow, incident, policy, now)
            if review is not None and uow.reviews.add_if_absent(review):
                announce.append(review_event(review, incident))
        outcome = _outcome(incident, event, found)
        requested = [e.data.review_id for e in announce if isinstance(e, ReviewRequestedEvent)]
        outcome["extraordinary_review"] = requested[0] if requested else None
        uow.evidence.add_if_absent(evidence_record(FLOW, event, CONTROLS, outcome))
        outcome["outbox"] = stage(uow, announce, load_settings().events_topic)
    return outcome


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


@task(name="open-incident-issue", retries=3, retry_delay_seconds=[2, 10, 30])
def open_issue(incident_id: str) -> str | None:
    """The Jira incident issue, found again by its label before any create; moved to Triaged."""
    from flows.incident_messages import issue_description, issue_summary, jira_label
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
            [jira_label(incident.id), "aims-incident"],
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
    from flows.incident_messages import alert_blocks, alert_text
    from flows.incident_rules import stage_of
    from flows.incident_updates import load_state

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


@flow(name=FLOW, description="Triage a reported incident, start its Art. 73 clock, open its issue and alert.")
def handle_incident(event: IncidentReportedEvent) -> dict[str, Any]:
    outcome = triage_incident(event)
    send_events(FLOW, outcome.pop("outbox"))
    # Jira first, so the Slack alert can name the issue.
    outcome["jira_issue"] = open_issue(outcome["incident"])
    outcome["slack_ts"] = alert_channel(outcome["incident"])
    publish_summary(FLOW, f"Incident on {event.data.ai_system}", event, CONTROLS, outcome)
    return outcome
