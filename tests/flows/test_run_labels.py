"""Run names and tags: what a person reads and filters by in the Prefect UI, for every routed event.

The router names and tags each run it starts (`events.routing.labels`); a flow started another way
names itself the same way (`flows.evidence.names_its_run`). The integration test reads them back from
the Prefect server, and a scheduled run's own name; here are the rules, every routed type, and
hostile names.
"""

from __future__ import annotations

import unicodedata
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings

from events.routing import ROUTES, labels
from flows.run_tags import (
    NAME_PART_CHARS,
    SEPARATOR,
    coalescing_tag,
    run_name,
    scheduled_run_name,
    subject_tags,
)
from schemas.events import (
    APPROVAL_DECIDED,
    APPROVAL_REQUESTED,
    DATA_CHANGED,
    INCIDENT_REPORTED,
    INCIDENT_UPDATED,
    MODEL_VERSION_REGISTERED,
    REVIEW_REQUESTED,
    RISK_ASSESSED,
    RISK_REASSESSMENT_REQUESTED,
    AimsEvent,
    example,
)
from tests.events.event_strategies import valid_events
from tests.factories import SOURCE, make_event

# Every type that starts a run: the name the router gives it and the tags it must carry (the
# declared examples of `schemas/events.py`).
EXPECTED: dict[str, tuple[str, set[str]]] = {
    MODEL_VERSION_REGISTERED: (
        "onboard-model · credit-scoring · credit-scoring-model v3",
        {"system:credit-scoring", "dataset:loans", "dataset:bureau"},
    ),
    DATA_CHANGED: ("check-data-quality · loans v2", {"dataset:loans"}),
    INCIDENT_REPORTED: (
        "handle-incident · credit-scoring · fundamental_rights · high",
        {"system:credit-scoring", f"incident:{SOURCE}#evt-1"},
    ),
    RISK_REASSESSMENT_REQUESTED: ("reassess-risk · credit-scoring · drift", {"system:credit-scoring"}),
    APPROVAL_REQUESTED: (
        "request-approval · credit-scoring · risk-acceptance · high",
        {"system:credit-scoring", "approval:ap-1"},
    ),
    RISK_ASSESSED: (
        "write-back-to-mlflow · credit-scoring · assessment ra-1 · residual medium",
        {"system:credit-scoring", "approval:ap-1"},
    ),
    APPROVAL_DECIDED: (
        "write-back-to-mlflow · credit-scoring · risk-acceptance · approved",
        {"system:credit-scoring", "approval:ap-1"},
    ),
    INCIDENT_UPDATED: ("track-incident · urn:support#77 · report", {"incident:urn:support#77"}),
    REVIEW_REQUESTED: (
        "hold-management-review · extraordinary:serious:urn:support#77",
        {"review:extraordinary:serious:urn:support#77"},
    ),
}


def starting_routes() -> list[tuple[str, Any]]:
    return [(t, r) for t, routes in ROUTES.items() for r in routes if not r.resume]


def test_every_type_that_starts_a_run_is_named_here() -> None:
    assert {t for t, _ in starting_routes()} == set(EXPECTED)


@pytest.mark.parametrize(
    ("event_type", "route"), starting_routes(), ids=lambda v: getattr(v, "deployment", v)
)
def test_each_routed_run_is_named_for_what_it_is_about_and_tagged_with_its_subjects(
    event_type: str, route: Any
) -> None:
    event = make_event(event_type)
    if event_type == INCIDENT_REPORTED:
        assert example(event_type)["category"] == "bias"
        event = make_event(event_type, data={**example(event_type), "category": "fundamental_rights"})
    name, tags = labels(route, event)
    expected_name, expected_tags = EXPECTED[event_type]
    assert name == expected_name
    assert expected_tags <= set(tags)
    assert len(tags) == len(set(tags))


def test_the_approval_run_keeps_the_tag_decisions_resume_it_by() -> None:
    [route] = ROUTES[APPROVAL_REQUESTED]
    _, tags = labels(route, make_event(APPROVAL_REQUESTED))
    assert route.tag is not None and route.tag(make_event(APPROVAL_REQUESTED)) in tags


def test_only_coalesced_checks_carry_the_coalescing_tag() -> None:
    # Every run about a dataset is tagged `dataset:`; a check that found any later run tagged with its
    # coalescing tag would stand down, so the two must differ (a later onboard-model run of a model
    # trained on the dataset is no newer version of it).
    model = make_event(MODEL_VERSION_REGISTERED)
    change = make_event(DATA_CHANGED)
    assert coalescing_tag(change) not in subject_tags(model)
    assert coalescing_tag(change) not in subject_tags(change)


def test_a_scheduled_run_is_named_for_the_moment_it_looks_at() -> None:
    at = datetime(2026, 12, 5, 17, 30, tzinfo=UTC)
    assert scheduled_run_name("chase-approvals", at) == "chase-approvals · 2026-12-05 17:30 UTC"


def test_a_long_name_is_cut_to_one_readable_line() -> None:
    long = "x" * 200
    event = make_event(
        RISK_REASSESSMENT_REQUESTED, data={**example(RISK_REASSESSMENT_REQUESTED), "ai_system": long}
    )
    name = run_name("reassess-risk", event)
    assert name == f"reassess-risk · {'x' * (NAME_PART_CHARS - 1)}… · drift"
    # The tag keeps the whole name: the UI filters by it exactly.
    assert f"system:{long}" in subject_tags(event)


@settings(max_examples=150, deadline=None)
@given(valid_events())
def test_any_valid_event_names_its_run_on_one_bounded_line(event: AimsEvent) -> None:
    name = run_name("some-flow", event)
    parts = name.split(SEPARATOR)
    assert parts[0] == "some-flow" and len(parts) >= 2
    assert all(0 < len(p) <= NAME_PART_CHARS for p in parts[1:])
    # No line break and no control character, whatever a producer's text holds.
    assert not any(unicodedata.category(ch) in ("Cc", "Zl", "Zp") for ch in name)
    tags = subject_tags(event)
    assert len(tags) == len(set(tags))
