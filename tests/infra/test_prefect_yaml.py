"""prefect.yaml declares the deployments `aims worker` applies, for Prefect's own workers (issue 23).

The file is written out rather than generated, so that a user reads and edits it as Prefect documents
it; these tests hold it to the application: one deployment "<flow>/aims" for each flow of
`flows.catalog.FLOWS`, an entrypoint relative to the repository root that loads that very flow, and the
tags and schedules `infra/deployments.py` gives the same deployment. `tests/integration/
test_process_worker.py` deploys it with `prefect deploy` and runs a flow on Prefect's process worker.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from events.routing import DEPLOYMENT, ROUTES
from flows.catalog import FLOWS, FlowSpec, Schedule
from infra.deployments import schedules
from schemas.policy_file import require_policy

REPO = Path(__file__).resolve().parents[2]
PREFECT_YAML = REPO / "prefect.yaml"
ENTRY_FILE = "infra/flow_process.py"


@pytest.fixture(scope="module")
def declared() -> list[dict[str, Any]]:
    deployments: list[dict[str, Any]] = yaml.safe_load(PREFECT_YAML.read_text())["deployments"]
    return deployments


@pytest.fixture
def no_provider() -> Iterator[None]:
    """Loading an entrypoint runs infra/flow_process.py, which provides a runtime to this process."""
    from flows.runtime import install, provide

    yield
    provide(None)
    install(None)


def _by_function(declared: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {d["entrypoint"].rsplit(":", 1)[1]: d for d in declared}


def test_each_flow_has_one_deployment_named_as_the_routes_name_it(declared: list[dict[str, Any]]) -> None:
    assert sorted(d["entrypoint"] for d in declared) == sorted(f"{ENTRY_FILE}:{f.function}" for f in FLOWS)
    assert {d["name"] for d in declared} == {DEPLOYMENT}
    routed = {r.deployment for routes in ROUTES.values() for r in routes}
    assert routed <= {f"{f.name}/{DEPLOYMENT}" for f in FLOWS}
    assert not Path(ENTRY_FILE).is_absolute() and (REPO / ENTRY_FILE).is_file()


def test_every_entrypoint_loads_its_flow_relative_to_the_root(
    declared: list[dict[str, Any]], no_provider: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from prefect.flows import load_flow_from_entrypoint

    monkeypatch.chdir(REPO)  # as `prefect deploy` and the process worker's runs resolve them
    functions = _by_function(declared)
    for spec in FLOWS:
        flow = load_flow_from_entrypoint(functions[spec.function]["entrypoint"], use_placeholder_flow=False)
        assert flow.name == spec.name
        assert flow.fn is spec.load().fn, f"{spec.name}: the entrypoint is the catalogue's flow"
        # The dashboard is rebuilt however the run ends, as the warm engine does after every run.
        for hooks in (flow.on_completion_hooks, flow.on_failure_hooks, flow.on_crashed_hooks):
            assert any(h.__name__ == "_rebuild_dashboard" for h in hooks), spec.name


def _tags(spec: FlowSpec) -> list[str]:
    return ["aims", "event-driven" if spec.schedule is Schedule.none else "scheduled"]


def test_tags_and_schedules_are_those_aims_worker_applies(declared: list[dict[str, Any]]) -> None:
    # Here, not at the top: the module imports Prefect, which the integration session must import
    # only after it has pointed Prefect's settings at its server (tests/conftest.py).
    from flows.reviews.hold_management_review import schedule as review_schedule

    functions = _by_function(declared)
    crons = schedules()
    review = review_schedule(
        require_policy(REPO / "policy" / "aims-policy.yaml", "the test").management_review
    )
    for spec in FLOWS:
        deployment = functions[spec.function]
        assert deployment["tags"] == _tags(spec), spec.name
        declared_schedules = deployment.get("schedules", [])
        if spec.schedule is Schedule.cron:
            assert declared_schedules == [{"cron": crons[spec.name]}], spec.name
        elif spec.schedule is Schedule.calendar:
            assert declared_schedules == [{"rrule": review.rrule, "timezone": review.timezone}], (
                "prefect.yaml's management-review calendar is not policy/aims-policy.yaml's: copy it in"
            )
        else:
            assert declared_schedules == [], spec.name


def test_the_tags_are_those_of_the_worker_deployments() -> None:
    from infra.deployments import deployments

    applied = {d.flow_name: d.tags for d in deployments()}
    assert applied == {spec.name: _tags(spec) for spec in FLOWS}


def test_every_deployment_goes_to_one_process_pool_and_nothing_is_built_or_pushed() -> None:
    document = yaml.safe_load(PREFECT_YAML.read_text())
    pools = {d["work_pool"]["name"] for d in document["deployments"]}
    assert pools == {"aims-process"}
    assert document["build"] is None and document["push"] is None
    # No pull section: `prefect deploy` records the folder it runs in, where the entrypoints are.
    assert "pull" not in document


def test_runs_on_prefects_own_workers_beat_as_often_as_aims_workers_own() -> None:
    """The automation `aims worker` keeps crashes this application's silent runs: a run of these
    deployments must beat as often on Prefect's workers as in `aims worker`'s processes."""
    from infra.unresponsive import RUN_TAG, heartbeat_env
    from schemas.settings import AimsSettings

    pool = yaml.safe_load(PREFECT_YAML.read_text())["definitions"]["work_pool"]
    assert pool["job_variables"]["env"] == heartbeat_env(AimsSettings().flow_heartbeat_seconds)
    assert all(RUN_TAG in d["tags"] for d in yaml.safe_load(PREFECT_YAML.read_text())["deployments"])
