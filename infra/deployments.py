"""Prefect deployments of the flows, on the work pool that `aims worker` polls.

The routing table names deployments as "<flow-name>/aims"; this module is what makes them exist.
The work pool and the worker that serves them are in infra.serving.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from events.routing import DEPLOYMENT, ROUTES
from flows.catalog import FLOWS, Schedule

# Re-exported: the stack, the benchmarks and the tests read a worker's readiness from here.
from infra.worker_status import worker_ready, worker_status_path

__all__ = [
    "all_flows",
    "calendar_schedules",
    "deployments",
    "schedules",
    "served",
    "worker_ready",
    "worker_status_path",
]

if TYPE_CHECKING:
    from prefect import Flow
    from prefect.deployments.runner import RunnerDeployment

    from connectors.prefect_api import PrefectApi


def all_flows() -> list[Flow[..., Any]]:
    """Every flow of `flows.catalog.FLOWS`, imported (and Prefect with them)."""
    return [spec.load() for spec in FLOWS]


def schedules() -> dict[str, str]:
    """Cron schedules of the flows that run on the clock rather than on events."""
    return {spec.name: spec.cron() for spec in FLOWS if spec.schedule is Schedule.cron}


def calendar_schedules() -> dict[str, Any]:
    """Schedules that follow the policy's calendar rather than a cron: management reviews (9.3)."""
    from flows.reviews.hold_management_review import schedule
    from schemas.policy_file import require_policy
    from schemas.settings import load_settings

    calendar = [spec.name for spec in FLOWS if spec.schedule is Schedule.calendar]
    if not calendar:
        return {}
    policy = require_policy(load_settings().policy_file, "the management review calendar (9.3)")
    return {name: schedule(policy.management_review) for name in calendar}


def deployments() -> list[RunnerDeployment]:
    crons = schedules()
    calendar = calendar_schedules()
    # to_deployment is sync-or-async; called from sync code it returns the deployment itself.
    return [
        cast(
            "RunnerDeployment",
            f.to_deployment(
                name=DEPLOYMENT,
                tags=["aims", "scheduled" if f.name in crons or f.name in calendar else "event-driven"],
                description=f.description,
                cron=crons.get(f.name),
                schedules=[calendar[f.name]] if f.name in calendar else None,
            ),
        )
        for f in all_flows()
    ]


def served(api: PrefectApi) -> bool:
    """True once every deployment the routing table names exists on the Prefect server."""
    return all(api.deployment_exists(r.deployment) for routes in ROUTES.values() for r in routes)
