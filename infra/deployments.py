"""Prefect deployments of the flows, on the work pool that `aims worker` polls.

The routing table names deployments as "<flow-name>/aims"; this module is what makes them exist.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import anyio

from events.routing import DEPLOYMENT, ROUTES

if TYPE_CHECKING:
    from prefect import Flow
    from prefect.deployments.runner import RunnerDeployment

    from connectors.prefect_api import PrefectApi
    from infra.warm_worker import WarmProcessWorker


def all_flows() -> list[Flow[..., Any]]:
    from flows.chase_approvals import chase_approvals
    from flows.check_data_quality import check_data_quality
    from flows.handle_incident import handle_incident
    from flows.hold_management_review import hold_management_review
    from flows.onboard_model import onboard_model
    from flows.reassess_risk import reassess_risk
    from flows.request_approval import request_approval
    from flows.schedule_risk_reviews import schedule_risk_reviews
    from flows.track_incident import track_incident
    from flows.watch_incident_clocks import watch_incident_clocks

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
    from flows import chase_approvals, schedule_risk_reviews, watch_incident_clocks

    return {m.FLOW: m.SCHEDULE for m in (schedule_risk_reviews, chase_approvals, watch_incident_clocks)}


def calendar_schedules() -> dict[str, Any]:
    """Schedules that follow the policy's calendar rather than a cron: management reviews (9.3)."""
    from flows.evidence import load_policy
    from flows.hold_management_review import FLOW
    from flows.review_calendar import schedule

    return {FLOW: schedule(load_policy().management_review)}


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


def worker_status_path(state_dir: Path, pid: int) -> Path:
    return state_dir / "workers" / f"{pid}.json"


def worker_ready(state_dir: Path, pid: int | None) -> bool:
    """True once that worker has at least one flow-run process that finished importing."""
    if pid is None:
        return False
    try:
        status = json.loads(worker_status_path(state_dir, pid).read_text())
    except (OSError, ValueError):
        return False
    return int(status.get("ready", 0)) > 0 or int(status.get("size", 1)) == 0


def serve(work_pool: str, state_dir: Path, limit: int | None = None, spares: int = 2) -> None:
    """Register the work pool and the deployments, then run their flow runs until interrupted."""
    anyio.run(_serve, deployments(), work_pool, state_dir, limit, spares)


async def _serve(
    flow_deployments: list[RunnerDeployment], work_pool: str, state_dir: Path, limit: int | None, spares: int
) -> None:
    from prefect import get_client
    from prefect.client.schemas.actions import WorkPoolCreate

    from infra.warm_worker import WarmProcessWorker

    async with get_client() as client:
        await client.create_work_pool(
            WorkPoolCreate(
                name=work_pool,
                type=WarmProcessWorker.type,
                base_job_template=WarmProcessWorker.get_default_base_job_template(),
                description="AIMS flow runs, started by `aims worker`.",
            ),
            overwrite=True,
        )
    for deployment in flow_deployments:
        await deployment.aapply(work_pool_name=work_pool)
    worker = WarmProcessWorker(
        work_pool_name=work_pool, limit=limit, spares=spares, create_pool_if_not_found=False
    )
    status = worker_status_path(state_dir, os.getpid())
    status.parent.mkdir(parents=True, exist_ok=True)
    try:
        async with anyio.create_task_group() as group:
            group.start_soon(_cancel_on_sigterm, group.cancel_scope)
            group.start_soon(_report_pool, worker, status)
            # Runs already started keep going in their own processes; the worker only stops taking new ones.
            await worker.start(printer=lambda message: print(message, flush=True))
            group.cancel_scope.cancel()
    finally:
        status.unlink(missing_ok=True)


async def _report_pool(worker: WarmProcessWorker, status: Path) -> None:
    """Keep `workers/<pid>.json` current: how many flow-run processes are ready to take a run."""
    last: tuple[int, int] | None = None
    while True:
        now = (worker.pool.ready_count, worker.pool.size)
        if now != last:
            status.write_text(json.dumps({"ready": now[0], "size": now[1]}))
            last = now
        await anyio.sleep(0.2)


async def _cancel_on_sigterm(scope: anyio.CancelScope) -> None:
    with anyio.open_signal_receiver(signal.SIGTERM) as signals:
        async for _ in signals:
            scope.cancel()
            return
