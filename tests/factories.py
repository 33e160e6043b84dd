"""Valid events for tests: one sample payload per event type, and events with unique ids.

`SAMPLES` is the one place a test takes a valid payload of a type from (schemas, codec, producer and
property tests all use it); it is each type's declared example, so a new type needs no sample here.
A test that needs a variant copies a sample and changes a field.
"""

from __future__ import annotations

import copy
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from schemas.events import (
    DATA_CHANGED,
    EVENT_CLASSES,
    AimsEvent,
    DataChangedEvent,
    IncidentReportedEvent,
    ModelVersionRegisteredEvent,
    example,
)

# An outside producer's source (the ML platform, a pipeline, a person's tool): not urn:aims:, which
# only the system itself may use, signed (schemas.signing). Tests of the system's own events sign them.
SOURCE = "urn:tests:producer"

# The declared example of each type (schemas/events.py): a type declared there brings its sample.
SAMPLES: dict[str, dict[str, Any]] = {event_type: example(event_type) for event_type in EVENT_CLASSES}


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
