"""The routing table: every event type starts at least one well-named deployment."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from events.routing import DEPLOYMENT, ROUTES, Route, routes_for
from flows.catalog import flow_names
from schemas.events import (
    APPROVAL_DECISION_SUBMITTED,
    APPROVAL_REQUESTED,
    DATA_CHANGED,
    DATA_QUALITY_VALIDATED,
    EVENT_CLASSES,
    INCIDENT_REPORTED,
    INCIDENT_UPDATED,
    MODEL_VERSION_REGISTERED,
    REVIEW_REQUESTED,
    RISK_REASSESSMENT_REQUESTED,
    AimsEvent,
    example,
    parse_event,
)
from schemas.payloads import DecisionInput

KEBAB = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")

# A routed type's declared example, and for most types an event that tries the routes harder
# (an explicit subject, a time, an extension attribute).
EVENTS: dict[str, AimsEvent] = {
    t: parse_event(
        {"specversion": "1.0", "id": f"{t}-1", "source": "urn:aims:tests", "type": t, "data": example(t)}
    )
    for t, routes in ROUTES.items()
    if routes
} | {
    MODEL_VERSION_REGISTERED: EVENT_CLASSES[MODEL_VERSION_REGISTERED].model_validate(
        {
            "specversion": "1.0",
            "id": "m-1",
            "source": "mlflow://prod",
            "time": "2025-03-01T09:00:00+02:00",
            "traceparent": "tp",
            "data": {
                "ai_system": "credit-scoring",
                "name": "m",
                "version": "3",
                "source_uri": "models:/m/3",
                "run_id": "r",
                "owner": "alice",
                "intended_use": "Scoring",
                "risk_tier": "limited",
                "training_datasets": [{"dataset_id": "loans"}],
            },
        }
    ),
    RISK_REASSESSMENT_REQUESTED: EVENT_CLASSES[RISK_REASSESSMENT_REQUESTED].model_validate(
        {
            "specversion": "1.0",
            "id": "r-1",
            "source": "urn:aims:cli",
            "data": {"ai_system": "credit-scoring", "reason": "manual", "evidence": "cli:alice"},
        }
    ),
    DATA_CHANGED: EVENT_CLASSES[DATA_CHANGED].model_validate(
        {
            "specversion": "1.0",
            "id": "d-1",
            "source": "urn:pipelines",
            "data": {
                "dataset_id": "loans",
                "location": {"url": "sqlite:///r.db", "table": "loans"},
                "version": "v2",
                "change_kind": "updated",
                "row_count": 10,
            },
        }
    ),
    INCIDENT_REPORTED: EVENT_CLASSES[INCIDENT_REPORTED].model_validate(
        {
            "specversion": "1.0",
            "id": "i-1",
            "source": "urn:people",
            "subject": "override",
            "data": {
                "ai_system": "credit-scoring",
                "severity": "low",
                "category": "other",
                "description": "d",
                "reporter": "bob",
                "occurred_at": "2025-03-01T09:00:00Z",
                "detected_at": "2025-03-01T09:00:00Z",
            },
        }
    ),
    APPROVAL_REQUESTED: EVENT_CLASSES[APPROVAL_REQUESTED].model_validate(
        {
            "specversion": "1.0",
            "id": "a-1",
            "source": "urn:aims:flows:reassess-risk",
            "time": "2025-03-01T09:05:00Z",
            "data": {
                "approval_id": "ap-1",
                "ai_system": "credit-scoring",
                "subject": "risk-assessment:ra-1",
                "requested_decision": "risk-acceptance",
                "risk_level": "high",
                "requested_by": "reassess-risk",
                "summary": "Accept the residual fairness risk?",
            },
        }
    ),
    APPROVAL_DECISION_SUBMITTED: EVENT_CLASSES[APPROVAL_DECISION_SUBMITTED].model_validate(
        {
            "specversion": "1.0",
            "id": "s-1",
            "source": "urn:aims:slack",
            "data": {
                "approval_id": "ap-1",
                "decision_id": "ap-1:carol@example.com",
                "decision": "approve",
                "approver": "carol@example.com",
                "channel": "slack",
                "reason": "Mitigation plan reviewed.",
                "decided_at": "2025-03-01T11:00:00+01:00",
            },
        }
    ),
    INCIDENT_UPDATED: EVENT_CLASSES[INCIDENT_UPDATED].model_validate(
        {
            "specversion": "1.0",
            "id": "urn:support#77:contain",
            "source": "urn:aims:incidents",
            "data": {
                "incident_id": "urn:support#77",
                "update_id": "urn:support#77:contain",
                "kind": "contain",
                "by": "carol@example.com",
                "channel": "jira",
                "detail": "Model rolled back to v11.",
                "status": "contained",
                "at": "2025-03-01T11:00:00+01:00",
            },
        }
    ),
    REVIEW_REQUESTED: EVENT_CLASSES[REVIEW_REQUESTED].model_validate(
        {
            "specversion": "1.0",
            "id": "extraordinary:serious:urn:support#77:requested",
            "source": "urn:aims:handle-incident",
            "data": {
                "review_id": "extraordinary:serious:urn:support#77",
                "reason": "serious incident urn:support#77",
                "trigger": "incident:urn:support#77",
                "requested_by": "flow:handle-incident",
                "requested_at": "2025-03-01T11:00:00+01:00",
            },
        }
    ),
}

ALL_ROUTES = [(event_type, route) for event_type, routes in ROUTES.items() for route in routes]
LAUNCH_ROUTES = [(event_type, route) for event_type, route in ALL_ROUTES if not route.resume]
RESUME_ROUTES = [(event_type, route) for event_type, route in ALL_ROUTES if route.resume]


def test_every_event_type_is_in_the_table_and_only_outcomes_start_nothing() -> None:
    assert set(ROUTES) == set(EVENT_CLASSES)
    record_only = {t for t in EVENT_CLASSES if not routes_for(t)}
    # Assessments and decisions are written back to MLflow (issue 21); a validation is an outcome only.
    assert record_only == {DATA_QUALITY_VALIDATED}
    assert set(EVENTS) == set(EVENT_CLASSES) - record_only


def test_no_route_for_a_type_that_has_no_model() -> None:
    assert set(ROUTES) <= set(EVENT_CLASSES)


@pytest.mark.parametrize("event_type", ["", "org.aims.unknown", DATA_CHANGED + ".v2", DATA_CHANGED.upper()])
def test_unknown_types_have_no_routes(event_type: str) -> None:
    assert routes_for(event_type) == ()


@pytest.mark.parametrize(("event_type", "route"), ALL_ROUTES, ids=lambda v: getattr(v, "deployment", v))
def test_deployment_is_kebab_flow_slash_deployment(event_type: str, route: Route) -> None:
    flow, sep, deployment = route.deployment.partition("/")
    assert sep == "/" and "/" not in deployment, route.deployment
    assert KEBAB.match(flow), f"flow name {flow!r} is not kebab-case"
    assert KEBAB.match(deployment), f"deployment name {deployment!r} is not kebab-case"
    assert deployment == DEPLOYMENT
    assert route.flow_name == flow


def test_a_type_does_not_start_the_same_deployment_twice() -> None:
    for event_type, routes in ROUTES.items():
        names = [r.deployment for r in routes]
        assert len(names) == len(set(names)), event_type


@pytest.mark.parametrize(("event_type", "route"), LAUNCH_ROUTES, ids=lambda v: getattr(v, "deployment", v))
def test_parameters_are_the_whole_event_as_json(event_type: str, route: Route) -> None:
    event = EVENTS[event_type]
    params = route.parameters(event)
    assert params == {"event": event.model_dump(mode="json")}
    # JSON-serialisable, and nothing lost on the way through Prefect's JSON parameters
    round_tripped: dict[str, Any] = json.loads(json.dumps(params))
    assert round_tripped == params
    assert EVENT_CLASSES[event_type].model_validate(round_tripped["event"]) == event


def test_parameters_keep_subject_time_and_extensions() -> None:
    params = ROUTES[MODEL_VERSION_REGISTERED][0].parameters(EVENTS[MODEL_VERSION_REGISTERED])
    assert params["event"]["subject"] == "credit-scoring"
    assert params["event"]["time"] == "2025-03-01T09:00:00+02:00"
    assert params["event"]["traceparent"] == "tp"
    assert (
        ROUTES[INCIDENT_REPORTED][0].parameters(EVENTS[INCIDENT_REPORTED])["event"]["subject"] == "override"
    )


def test_the_only_resume_route_is_the_decision_on_an_approval() -> None:
    assert [(t, r.deployment) for t, r in RESUME_ROUTES] == [
        (APPROVAL_DECISION_SUBMITTED, f"request-approval/{DEPLOYMENT}")
    ]


@pytest.mark.parametrize(("event_type", "route"), RESUME_ROUTES, ids=lambda v: getattr(v, "deployment", v))
def test_a_resume_route_finds_the_run_a_launch_route_tagged(event_type: str, route: Route) -> None:
    # Without a tag there is no way to tell which suspended run to resume.
    assert route.tag is not None
    launchers = [(t, r) for t, r in LAUNCH_ROUTES if r.deployment == route.deployment]
    assert launchers, f"nothing launches {route.deployment}, so nothing can be resumed"
    for launch_type, launcher in launchers:
        assert launcher.tag is not None
        # the same approval: the request and the decision on it carry the same tag
        assert EVENTS[launch_type].key == EVENTS[event_type].key
        assert launcher.tag(EVENTS[launch_type]) == route.tag(EVENTS[event_type])


def test_approval_tag_names_the_approval() -> None:
    for event_type in (APPROVAL_REQUESTED, APPROVAL_DECISION_SUBMITTED):
        (route,) = ROUTES[event_type]
        assert route.tag is not None
        assert route.tag(EVENTS[event_type]) == "approval:ap-1"
        assert route.coalesce_tag is None


@pytest.mark.parametrize(
    ("decision", "channel", "reason"),
    [
        ("approve", "slack", "Mitigation plan reviewed."),
        ("reject", "jira", "No rollback plan."),
        ("approve", "cli", ""),
        ("expire", "deadline", "no decision in time"),
    ],
)
def test_decision_route_parameters_are_exactly_the_decision_input(
    decision: str, channel: str, reason: str
) -> None:
    (route,) = ROUTES[APPROVAL_DECISION_SUBMITTED]
    assert route.resume
    base = EVENTS[APPROVAL_DECISION_SUBMITTED]
    event = type(base).model_validate(
        {
            **base.model_dump(mode="json"),
            "data": {
                **base.data.model_dump(mode="json"),
                "decision": decision,
                "channel": channel,
                "reason": reason,
            },
        }
    )
    params = route.parameters(event)
    assert set(params) == set(DecisionInput.model_fields)
    assert params == {
        "approver": "carol@example.com",
        "decision": decision,
        "reason": reason,
        "channel": channel,
        "decision_id": "ap-1:carol@example.com",
    }
    # JSON, as Prefect carries a run input, and valid as the input the waiting run declares
    round_tripped: dict[str, Any] = json.loads(json.dumps(params))
    assert round_tripped == params
    resumed = DecisionInput.model_validate(round_tripped)
    assert resumed.model_dump(mode="json") == params


def _flow_names_in_source() -> set[str]:
    """The flows that exist: flows/catalog.py, read without importing Prefect."""
    return set(flow_names())


def test_every_routed_flow_exists_in_flows_package() -> None:
    defined = _flow_names_in_source()
    assert defined, "no FLOW constants found under flows/"
    missing = sorted({route.flow_name for _, route in ALL_ROUTES} - defined)
    assert not missing, f"routes name flows that flows/ does not define: {missing}"
