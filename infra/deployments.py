"""Prefect deployments of the flows, on the work pool that `aims worker` polls.

The routing table names deployments as "<flow-name>/aims"; this module is what makes them exist.
The work pool and the worker that serves them are in infra.serving.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from events.routing import DEPLOYMENT, ROUTES

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
    from flows.approvals.chase_approvals import chase_approvals
    from flows.approvals.request_approval import request_approval
    from flows.data_quality.check_data_quality import check_data_quality
    from flows.incidents.handle_incident import handle_incident
    from flows.incidents.track_incident import track_incident
    from flows.incidents.watch_incident_clocks import watch_incident_clocks
    from flows.models.onboard_model import onboard_model
    from flows.reviews.hold_management_review import hold_management_review
    from flows.risk.reassess_risk import reassess_risk
    from flows.risk.schedule_risk_reviews import schedule_risk_reviews

    return [
        onboard_model,
        check_data_quality,
        handle_incident,
        reassess_risk,
        schedule_risk_reviews,
        request_approval,
        chase_approvals,
        track_incident,
        watch_incident_clocks,
        hold_management_review,
    ]


def schedules() -> dict[str, str]:
    """Cron schedules of the flows that run on the calendar rather than on events."""
    from flows.approvals import chase_approvals
    from flows.incidents import watch_incident_clocks
    from flows.risk import schedule_risk_reviews

    return {m.FLOW: m.SCHEDULE for m in (schedule_risk_reviews, chase_approvals, watch_incident_clocks)}


def calendar_schedules() -> dict[str, Any]:
    """Schedules that follow the policy's calendar rather than a cron: management reviews (9.3)."""
    from flows.reviews.hold_management_review import FLOW, schedule
    from schemas.policy_file import require_policy
    from schemas.settings import load_settings

    policy = require_policy(load_settings().policy_file, "the management review calendar (9.3)")
    return {FLOW: schedule(policy.management_review)}


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
