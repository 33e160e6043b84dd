"""Valid events of each type, with unique ids, for tests."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from schemas.events import AimsEvent, DataChangedEvent, IncidentReportedEvent, ModelVersionRegisteredEvent

SOURCE = "urn:aims:tests"


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
