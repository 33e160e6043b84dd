"""The list of flows (flows/catalog.py) is the one the deployments, the worker, the routes and the
ISO/IEC 42001 catalogue agree with."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from events.routing import ROUTES
from flows.catalog import FLOWS, FlowSpec, Profile, Schedule, flow_names, flow_spec
from schemas.catalogue import ImplementationKind, load_catalogue

REPO = Path(__file__).resolve().parents[2]


def test_names_are_unique_and_the_catalogue_maps_exactly_these_flows() -> None:
    names = flow_names()
    assert len(names) == len(set(names)) == len(FLOWS)
    # every catalogue flow exists, every flow is in the catalogue, in the same order
    assert load_catalogue().names(ImplementationKind.flow) == names


def test_every_routed_flow_is_listed_and_every_flow_is_started_by_something() -> None:
    routed = {route.flow_name for routes in ROUTES.values() for route in routes}
    assert routed <= set(flow_names())
    idle = [f.name for f in FLOWS if f.name not in routed and f.schedule is Schedule.none]
    assert not idle, f"flows that no event and no schedule starts: {idle}"


@pytest.mark.parametrize("spec", FLOWS, ids=lambda s: s.name)
def test_each_entry_is_the_prefect_flow_of_that_name(spec: FlowSpec) -> None:
    import importlib

    flow = spec.load()
    assert flow.name == spec.name
    module = importlib.import_module(spec.module)
    assert spec.name == module.FLOW
    assert hasattr(module, "SCHEDULE") == (spec.schedule is Schedule.cron)


def test_deployments_and_the_worker_derive_from_the_list() -> None:
    from infra.deployments import all_flows, schedules
    from infra.warm_worker import FLOW_PROFILES

    assert [f.name for f in all_flows()] == flow_names()
    assert set(schedules()) == {f.name for f in FLOWS if f.schedule is Schedule.cron}
    assert {"check-data-quality": Profile.gx.value} == FLOW_PROFILES


def test_a_cron_comes_only_from_a_cron_flow() -> None:
    with pytest.raises(ValueError, match="not on a cron"):
        flow_spec("onboard-model").cron()
    with pytest.raises(KeyError, match="onboard-model"):
        flow_spec("onboard-models")


def test_the_list_imports_no_flow_and_no_prefect() -> None:
    code = (
        "import sys, flows.catalog;"
        "print(sorted(m for m in sys.modules if m.startswith(('prefect', 'flows.'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "['flows.catalog']"
