"""`ROUTES` says what tests/routes.py says, row by row: a literal table no code derives from ROUTES."""

from __future__ import annotations

import pytest

from events.routing import DEPLOYMENT, ROUTES, routes_for
from schemas.events import EVENT_CLASSES
from tests.routes import FLOWS_BY_TYPE


def test_the_table_and_the_routes_name_the_same_event_types() -> None:
    assert set(FLOWS_BY_TYPE) == set(ROUTES) == set(EVENT_CLASSES)


@pytest.mark.parametrize("event_type", sorted(FLOWS_BY_TYPE))
def test_each_type_starts_and_resumes_the_flows_the_table_names(event_type: str) -> None:
    starts, resumes = FLOWS_BY_TYPE[event_type]
    routes = routes_for(event_type)
    assert tuple(r.flow_name for r in routes if not r.resume) == starts
    assert tuple(r.flow_name for r in routes if r.resume) == resumes
    # Every flow is served under the one deployment name, so routes and suspended runs keep working.
    assert all(r.deployment == f"{r.flow_name}/{DEPLOYMENT}" for r in routes)
