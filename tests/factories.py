"""Valid events for tests: one sample payload per event type, and events with unique ids.

`SAMPLES` is the one place a test takes a valid payload of a type from (schemas, codec, producer and
property tests all use it), so when the samples come to derive from the event list in `schemas/`
only this module changes. A test that needs a variant copies a sample and changes a field.
"""

from __future__ import annotations

import copy
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from schemas.events import (
    APPROVAL_DECIDED,
    APPROVAL_DECISION_SUBMITTED,
    APPROVAL_REQUESTED,
    DATA_CHANGED,
    DATA_QUALITY_VALIDATED,
    EVENT_CLASSES,
    INCIDENT_REPORTED,
    INCIDENT_UPDATED,
    MODEL_VERSION_REGISTERED,
    REVIEW_REQUESTED,
    RISK_ASSESSED,
    RISK_REASSESSMENT_REQUESTED,
    AimsEvent,
    DataChangedEvent,
    IncidentReportedEvent,
    ModelVersionRegisteredEvent,
)

SOURCE = "urn:aims:tests"

MODEL_DATA: dict[str, Any] = {
    "ai_system": "credit-scoring",
    "name": "credit-scoring-model",
    "version": "3",
    "source_uri": "models:/credit-scoring/3",
    "run_id": "run-42",
    "owner": "alice",
    "intended_use": "Score loan applications",
    "risk_tier": "high",
    "training_datasets": [{"dataset_id": "loans", "version": "v1"}, {"dataset_id": "bureau"}],
}
DATA_DATA: dict[str, Any] = {
    "dataset_id": "loans",
    "location": {"kind": "file", "uri": "/data/loans.csv"},
    "version": "v2",
    "change_kind": "appended",
    "row_count": 1200,
}
INCIDENT_DATA: dict[str, Any] = {
    "ai_system": "credit-scoring",
    "severity": "high",
    "category": "bias",
    "description": "Approval rates differ by postcode.",
    "reporter": "bob",
    "occurred_at": "2025-03-01T09:00:00+00:00",
    "detected_at": "2025-03-01T10:30:00+01:00",
}
QUALITY_DATA: dict[str, Any] = {
    "dataset_id": "loans",
    "version": "v7",
    "verdict": "warning",
    "failed_warning": ["expect_column_mean_to_be_between(amount)"],
}

REASSESSMENT_DATA: dict[str, Any] = {
    "ai_system": "credit-scoring",
    "reason": "drift",
    "evidence": "dq-7",
}

ASSESSED_DATA: dict[str, Any] = {
    "ai_system": "credit-scoring",
    "assessment_id": "ra-1",
    "reason": "incident",
    "risks": [
        {"category": "fairness", "likelihood": 4, "impact": 4, "inherent": "high", "residual": "medium"}
    ],
    "highest_inherent": "high",
    "highest_residual": "medium",
    "blocked": True,
    "approval_id": "ap-1",
}

# The payload's own `subject` (what is decided on) differs from the approval id, which is the
# event's subject: the samples tell the two apart.
APPROVAL_REQUESTED_DATA: dict[str, Any] = {
    "approval_id": "ap-1",
    "ai_system": "credit-scoring",
    "subject": "risk-assessment:ra-1",
    "requested_decision": "risk-acceptance",
    "risk_level": "high",
    "requested_by": "reassess-risk",
    "summary": "Fairness risk stays high after treatment; accept the residual risk?",
}

DECISION_SUBMITTED_DATA: dict[str, Any] = {
    "approval_id": "ap-1",
    "decision_id": "ap-1:carol@example.com",
    "decision": "approve",
    "approver": "carol@example.com",
    "channel": "prefect-ui",
    "reason": "Mitigation plan reviewed.",
    "decided_at": "2025-03-02T10:00:00+01:00",
}

APPROVAL_DECIDED_DATA: dict[str, Any] = {
    "approval_id": "ap-1",
    "ai_system": "credit-scoring",
    "subject": "risk-assessment:ra-1",
    "requested_decision": "risk-acceptance",
    "outcome": "approved",
    "approved": True,
    "decisions": [
        {
            "approver": "carol@example.com",
            "decision": "approve",
            "channel": "prefect-ui",
            "reason": "Mitigation plan reviewed.",
            "decided_at": "2025-03-02T10:00:00+01:00",
        }
    ],
    "decided_at": "2025-03-02T09:00:05+00:00",
}

INCIDENT_UPDATED_DATA: dict[str, Any] = {
    "incident_id": "urn:support#77",
    "update_id": "urn:support#77:report",
    "kind": "report",
    "by": "carol@example.com",
    "channel": "jira",
    "detail": "NCA-2025-0042",
    "status": "reported-to-authority",
    "at": "2025-03-02T10:00:00+01:00",
}

REVIEW_REQUESTED_DATA: dict[str, Any] = {
    "review_id": "extraordinary:serious:urn:support#77",
    "reason": "serious incident urn:support#77 on credit-scoring (death)",
    "trigger": "incident:urn:support#77",
    "requested_by": "flow:handle-incident",
    "requested_at": "2025-03-02T10:00:00+01:00",
}

SAMPLES: dict[str, dict[str, Any]] = {
    MODEL_VERSION_REGISTERED: MODEL_DATA,
    DATA_CHANGED: DATA_DATA,
    INCIDENT_REPORTED: INCIDENT_DATA,
    DATA_QUALITY_VALIDATED: QUALITY_DATA,
    RISK_REASSESSMENT_REQUESTED: REASSESSMENT_DATA,
    RISK_ASSESSED: ASSESSED_DATA,
    APPROVAL_REQUESTED: APPROVAL_REQUESTED_DATA,
    APPROVAL_DECISION_SUBMITTED: DECISION_SUBMITTED_DATA,
    APPROVAL_DECIDED: APPROVAL_DECIDED_DATA,
    INCIDENT_UPDATED: INCIDENT_UPDATED_DATA,
    REVIEW_REQUESTED: REVIEW_REQUESTED_DATA,
}


def raw_event(event_type: str = DATA_CHANGED, **overrides: Any) -> dict[str, Any]:
    """A CloudEvent as JSON, carrying a copy of the type's sample; `overrides` replace attributes."""
    raw: dict[str, Any] = {
        "specversion": "1.0",
        "id": "evt-1",
        "source": SOURCE,
        "type": event_type,
        "time": "2025-03-01T09:10:00Z",
        "data": copy.deepcopy(SAMPLES[event_type]),
    }
    raw.update(overrides)
    return raw


def make_event(event_type: str = DATA_CHANGED, **overrides: Any) -> AimsEvent:
    return EVENT_CLASSES[event_type].model_validate(raw_event(event_type, **overrides))


def _id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def model_event(system: str = "credit-scoring", version: str = "1") -> ModelVersionRegisteredEvent:
    return ModelVersionRegisteredEvent.model_validate(
        {
            "specversion": "1.0",
            "id": _id("model"),
            "source": SOURCE,
            "data": {
                "ai_system": system,
                "name": f"{system}-model",
                "version": version,
                "source_uri": f"models:/{system}/{version}",
                "run_id": _id("run"),
                "owner": "alice",
                "intended_use": "Score loan applications",
                "risk_tier": "high",
                "training_datasets": [{"dataset_id": "loans", "version": "v1"}],
            },
        }
    )


def data_event(dataset: str = "loans", uri: str = "/nonexistent/loans.csv") -> DataChangedEvent:
    return DataChangedEvent.model_validate(
        {
            "specversion": "1.0",
            "id": _id("data"),
            "source": SOURCE,
            "data": {
                "dataset_id": dataset,
                "version": _id("v"),
                "change_kind": "appended",
                "location": {"kind": "file", "uri": uri},
                "row_count": 10,
            },
        }
    )


def incident_event(system: str = "credit-scoring") -> IncidentReportedEvent:
    now = datetime.now(UTC)
    return IncidentReportedEvent.model_validate(
        {
            "specversion": "1.0",
            "id": _id("incident"),
            "source": SOURCE,
            "data": {
                "ai_system": system,
                "severity": "high",
                "category": "fundamental_rights",
                "description": "Declines cluster in one postcode.",
                "reporter": "bob",
                "occurred_at": now - timedelta(days=1),
                "detected_at": now,
            },
        }
    )


def mixed_events(n: int, subjects: int = 16) -> list[AimsEvent]:
    makers = [
        lambda i: model_event(f"system-{i % subjects}", str(i)),
        lambda i: data_event(f"dataset-{i % subjects}"),
        lambda i: incident_event(f"system-{i % subjects}"),
    ]
    return [makers[i % 3](i) for i in range(n)]
