"""How a flow run is found again and read in the Prefect UI: its name, and the tags that tie it to what
it is about.

The router names and tags the runs it starts (`events.routing.labels`), every flow names its own run
the same way when something else started it (`flows.evidence.names_its_run`: a schedule, a restart),
and flows look runs up by these tags (a data check finds a later coalesced check of its dataset; the
chaser finds a request still waiting). All of them import from here, below either side. Pure.

A name reads "what · about what" (`check-data-quality · loans v2`); the tags answer the UI's filter
"everything about credit-scoring": `system:`, `dataset:`, `approval:`, `incident:` and `review:`.
"""

from __future__ import annotations

from datetime import UTC, datetime

from schemas.events import AimsEvent
from schemas.payloads import (
    ApprovalDecided,
    ApprovalDecisionSubmitted,
    ApprovalRequested,
    DataChanged,
    DataQualityValidated,
    IncidentReported,
    IncidentUpdated,
    ModelVersionRegistered,
    ReviewRequested,
    RiskAssessed,
    RiskReassessmentRequested,
)

# Every deployment is served under this name; the flow name says what it does.
DEPLOYMENT = "aims"

# A part of a run name is a producer's text: cut so that one name stays one readable line.
NAME_PART_CHARS = 60
SEPARATOR = " · "
# A model version's training datasets are tagged up to this many (a run is not a dataset index).
MAX_DATASET_TAGS = 10


def coalescing_tag(event: AimsEvent) -> str:
    """The tag of a dataset's checks that wait out a burst of changes together.

    Not `dataset:`: every run about a dataset carries that one, and a check finding a later run
    with this tag stands down; only the coalesced checks of the dataset may carry it.
    """
    return f"coalesce:dataset:{getattr(event.data, 'dataset_id', event.key)}"


def dataset_tag(dataset_id: str) -> str:
    return f"dataset:{dataset_id}"


def approval_tag(event: AimsEvent) -> str:
    """The tag a decision finds its waiting request-approval run by (approval events are keyed by it)."""
    return approval_subject_tag(event.key)


def approval_subject_tag(approval_id: str) -> str:
    return f"approval:{approval_id}"


def system_tag(ai_system: str) -> str:
    return f"system:{ai_system}"


def incident_tag(incident_id: str) -> str:
    return f"incident:{incident_id}"


def _part(text: str) -> str:
    # Names are validated one-line text already; this keeps the UI's list readable.
    text = " ".join(text.split())
    return text if len(text) <= NAME_PART_CHARS else text[: NAME_PART_CHARS - 1] + "…"


def _about(event: AimsEvent) -> list[str]:
    """What the run is about, most telling first: the parts of its name after the flow's."""
    d = event.data
    match d:
        case ModelVersionRegistered():
            return [d.ai_system, f"{d.name} v{d.version}"]
        case DataChanged():
            return [f"{d.dataset_id} {d.version}"]
        case DataQualityValidated():
            return [f"{d.dataset_id} {d.version}", d.verdict.value]
        case IncidentReported():
            return [d.ai_system, d.category.value, d.severity.value]
        case IncidentUpdated():
            return [d.incident_id, d.kind.value]
        case RiskReassessmentRequested():
            return [d.ai_system, d.reason.value]
        case RiskAssessed():
            return [d.ai_system, f"assessment {d.assessment_id}", f"residual {d.highest_residual.value}"]
        case ApprovalRequested():
            return [d.ai_system or d.subject, d.requested_decision, d.risk_level.value]
        case ApprovalDecisionSubmitted():
            return [d.approval_id, d.decision.value]
        case ApprovalDecided():
            return [d.ai_system or d.subject, d.requested_decision, d.outcome.value]
        case ReviewRequested():
            return [d.review_id]
    return [event.key]


def run_name(flow: str, event: AimsEvent) -> str:
    """`flow · about`, one line, for any declared event."""
    return SEPARATOR.join([flow, *(_part(p) for p in _about(event))])


def scheduled_run_name(flow: str, at: datetime) -> str:
    """A scheduled run is about the moment it looks at: `chase-approvals · 2026-12-05 16:00 UTC`."""
    return f"{flow}{SEPARATOR}{at.astimezone(UTC):%Y-%m-%d %H:%M} UTC"


def subject_tags(event: AimsEvent) -> list[str]:
    """The AI system, dataset, approval, incident or review the event concerns, as run tags."""
    d = event.data
    tags: list[str] = []
    system = getattr(d, "ai_system", None)
    if system:
        tags.append(system_tag(system))
    match d:
        case DataChanged() | DataQualityValidated():
            tags.append(dataset_tag(d.dataset_id))
        case ModelVersionRegistered():
            names = dict.fromkeys(ref.dataset_id for ref in d.training_datasets)
            tags += [dataset_tag(name) for name in list(names)[:MAX_DATASET_TAGS]]
        case ApprovalRequested() | ApprovalDecisionSubmitted() | ApprovalDecided():
            tags.append(approval_subject_tag(d.approval_id))
        case RiskAssessed() if d.approval_id:
            tags.append(approval_subject_tag(d.approval_id))
        case IncidentReported():
            # The register keys an incident by its report's source and id.
            tags.append(incident_tag(event.dedup_key))
        case IncidentUpdated():
            tags.append(incident_tag(d.incident_id))
        case ReviewRequested():
            tags.append(f"review:{d.review_id}")  # no flow looks a review's runs up by it
    return tags
