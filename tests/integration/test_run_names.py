"""Runs a person can read in the Prefect UI: every routed event type's run, and a scheduled run, as the
Prefect server holds them.

The runs of every type are created exactly as the router creates them (its launcher, its labels), but
scheduled far ahead so the worker never executes them, and deleted afterwards: what is checked is what
the server stores. `test_routing_e2e` sees the same names on runs the router started and completed.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from events.routing import ROUTES, labels
from schemas.events import (
    APPROVAL_DECIDED,
    APPROVAL_REQUESTED,
    DATA_CHANGED,
    EVENT_CLASSES,
    INCIDENT_REPORTED,
    INCIDENT_UPDATED,
    MODEL_VERSION_REGISTERED,
    REVIEW_REQUESTED,
    RISK_ASSESSED,
    RISK_REASSESSMENT_REQUESTED,
    AimsEvent,
    example,
)
from tests.support import SessionStack

# What a person reads, per type: the run's name, and the tags the UI's filter finds it by (the
# declared examples, with a system and approval of this test's own).
SYSTEM = f"names-{uuid.uuid4().hex[:6]}"
EXPECTED: dict[str, tuple[str, set[str]]] = {
    MODEL_VERSION_REGISTERED: (
        f"onboard-model · {SYSTEM} · credit-scoring-model v3",
        {f"system:{SYSTEM}", "dataset:loans", "dataset:bureau"},
    ),
    DATA_CHANGED: ("check-data-quality · loans v2", {"dataset:loans"}),
    INCIDENT_REPORTED: (f"handle-incident · {SYSTEM} · bias · high", {f"system:{SYSTEM}"}),
    RISK_REASSESSMENT_REQUESTED: (f"reassess-risk · {SYSTEM} · drift", {f"system:{SYSTEM}"}),
    APPROVAL_REQUESTED: (
        f"request-approval · {SYSTEM} · risk-acceptance · high",
        {f"system:{SYSTEM}", f"approval:ap-{SYSTEM}"},
    ),
    RISK_ASSESSED: (
        f"write-back-to-mlflow · {SYSTEM} · assessment ra-1 · residual medium",
        {f"system:{SYSTEM}", f"approval:ap-{SYSTEM}"},
    ),
    APPROVAL_DECIDED: (
        f"write-back-to-mlflow · {SYSTEM} · risk-acceptance · approved",
        {f"system:{SYSTEM}", f"approval:ap-{SYSTEM}"},
    ),
    INCIDENT_UPDATED: ("track-incident · urn:support#77 · report", {"incident:urn:support#77"}),
    REVIEW_REQUESTED: (
        "hold-management-review · extraordinary:serious:urn:support#77",
        {"review:extraordinary:serious:urn:support#77"},
    ),
}


def event_of(event_type: str) -> AimsEvent:
    data = example(event_type)
    if "ai_system" in data:
        data["ai_system"] = SYSTEM
    if "approval_id" in data:
        data["approval_id"] = f"ap-{SYSTEM}"
    raw = {"specversion": "1.0", "id": uuid.uuid4().hex, "source": "urn:aims:tests:names", "data": data}
    return EVENT_CLASSES[event_type].model_validate(raw)


def test_every_routed_event_type_starts_a_run_named_and_tagged_for_its_subject(stack: SessionStack) -> None:
    stack.ensure_worker()  # it registers the deployments
    later = datetime.now(UTC) + timedelta(days=365)
    started: dict[str, tuple[str, AimsEvent]] = {}
    for event_type, routes in ROUTES.items():
        for route in routes:
            if not route.resume:
                event = event_of(event_type)
                started[f"{event.dedup_key}:{route.deployment}"] = (event_type, event)
    assert set(t for t, _ in started.values()) == set(EXPECTED)

    try:
        for key, (event_type, event) in started.items():
            [route] = [r for r in ROUTES[event_type] if not r.resume]
            name, tags = labels(route, event)
            # With the router's retries: the session's busy SQLite server answers 503 now and then.
            stack.launch(route.deployment, route.parameters(event), key, later, tags, name)
        runs = {r.idempotency_key: r for r in stack.wait_for_runs(list(started), timeout=60)}
    finally:
        stack.discard_runs(list(started))
    for key, (event_type, _) in started.items():
        name, tags = EXPECTED[event_type]
        assert runs[key].name == name, event_type
        assert tags <= set(runs[key].tags), (event_type, runs[key].tags)
    # The UI's filter for the system finds every run about it, and only those.
    about: list[Any] = [r for r in runs.values() if f"system:{SYSTEM}" in r.tags]
    assert len(about) == sum(1 for t, _ in started.values() if f"system:{SYSTEM}" in EXPECTED[t][1])


def test_a_scheduled_run_names_itself_for_the_moment_it_looks_at(stack: SessionStack) -> None:
    stack.ensure_worker()
    key = f"names-{uuid.uuid4().hex[:8]}"
    stack.launch("schedule-risk-reviews/aims", {"as_of": "2026-12-01", "systems": [SYSTEM]}, key)
    [run] = stack.wait_for_runs([key], states={"Completed"}, timeout=180)
    assert run.name == "schedule-risk-reviews · 2026-12-01 00:00 UTC"
