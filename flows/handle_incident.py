"""Handle a reported incident: record it, flag possible Art. 73 seriousness, ask for risk reassessment."""

from __future__ import annotations

from typing import Any

from prefect import flow, task

from flows.evidence import publish_summary, reassessment_request, record_evidence, send_outbox
from schemas.events import IncidentReportedEvent, RiskReassessmentRequestedEvent
from schemas.payloads import IncidentCategory, IncidentReported, ReassessmentReason
from schemas.records import Incident

FLOW = "handle-incident"
CONTROLS = ["A.6.2.8", "A.8.4", "A.3.3", "10.2"]
# Categories that may make an incident "serious" under EU AI Act Art. 3(49); triage confirms.
_POSSIBLY_SERIOUS = {
    IncidentCategory.death,
    IncidentCategory.health_and_safety,
    IncidentCategory.critical_infrastructure,
    IncidentCategory.fundamental_rights,
    IncidentCategory.property_or_environment,
}


@task(name="summarise-incident")
def summarise_incident(incident: IncidentReported) -> dict[str, Any]:
    delay = incident.detected_at - incident.occurred_at
    return {
        "ai_system": incident.ai_system,
        "severity": incident.severity.value,
        "category": incident.category.value,
        "reporter": incident.reporter,
        "detection_delay_hours": round(delay.total_seconds() / 3600, 2),
        "possibly_serious_art73": incident.category in _POSSIBLY_SERIOUS,
    }


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


@flow(name=FLOW, description="Record a reported incident and flag what triage must look at.")
def handle_incident(event: IncidentReportedEvent) -> dict[str, Any]:
    outcome = summarise_incident(event.data)
    incident = event.data
    record = Incident(
        id=event.dedup_key,
        system=incident.ai_system,
        title=incident.description.splitlines()[0][:120] if incident.description else incident.category.value,
        description=incident.description,
        category=incident.category,
        severity=incident.severity,
        occurred_at=incident.occurred_at,
        detected_at=incident.detected_at,
        reported_by=incident.reporter,
    )
    keys = record_evidence(FLOW, event, CONTROLS, outcome, [record], announce=[reassessment_for(event)])
    send_outbox(FLOW, keys)
    publish_summary(FLOW, f"Incident on {event.data.ai_system}", event, CONTROLS, outcome)
    return outcome
