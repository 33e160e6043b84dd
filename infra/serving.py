"""Serving the flows: the work pool that `aims worker` polls, and the worker process that runs its flow runs.

The work pool's concurrency limit is what keeps a burst of events from starting more flow-run
processes than the machine has memory for (~115 MB each, ~350 MB for data quality). The worker
creates the pool with `AIMS_WORK_POOL_CONCURRENCY` as its limit, and on every later start gives a
pool without a limit that one; it never changes a limit or a pause the team set in Prefect
(`prefect work-pool set-concurrency-limit`, `prefect work-pool pause`), so a restart keeps them.

Apart from infra.deployments (which only says what the deployments are) because this side needs the
worker, and the worker's flow-run processes need the list of flows: one module for both made an
import cycle.
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import anyio

from infra.deployments import deployments
from infra.worker_status import worker_status_path

if TYPE_CHECKING:
    from prefect.client.orchestration import PrefectClient
    from prefect.deployments.runner import RunnerDeployment

    from infra.warm_worker import WarmProcessWorker


POOL_DESCRIPTION = "AIMS flow runs, started by `aims worker`."
CONCURRENCY_SETTING = "AIMS_WORK_POOL_CONCURRENCY"


LimitSource = Literal["setting", "prefect", "none"]


@dataclass(frozen=True)
class PoolSetup:
    """What `ensure_work_pool` found or did: the limit in force and where it came from."""

    created: bool
    concurrency_limit: int | None
    # "setting": AIMS_WORK_POOL_CONCURRENCY, applied now; "prefect": the limit the pool had (the
    # team's, or a setting applied at an earlier start); "none": no limit anywhere.
    limit_source: LimitSource
    paused: bool
    messages: list[str] = field(default_factory=list)


async def ensure_work_pool(client: PrefectClient, name: str, concurrency: int) -> PoolSetup:
    """Create the work pool if missing, with `concurrency` as its limit (0: none); else bring what
    the worker owns up to date (the base job template, the description) and give the setting's
    limit to a pool that has none. A limit or a pause already on the pool are the team's: kept.

    Prefect counts only Pending and Running runs against the limit (its scheduling query,
    `get-runs-from-worker-queues.sql.jinja`): a request-approval run suspended for days waiting for
    people holds no slot and no process, so waiting approvals never stop other flows.
    """
    from prefect.client.schemas.actions import WorkPoolCreate, WorkPoolUpdate
    from prefect.exceptions import ObjectAlreadyExists

    from infra.warm_worker import WarmProcessWorker

    wanted = concurrency if concurrency > 0 else None
    template = WarmProcessWorker.get_default_base_job_template()
    try:
        pool = await client.create_work_pool(
            WorkPoolCreate(
                name=name,
                type=WarmProcessWorker.type,
                base_job_template=template,
                description=POOL_DESCRIPTION,
                concurrency_limit=wanted,
            )
        )
    except ObjectAlreadyExists:
        pass
    else:
        first: LimitSource = "setting" if wanted is not None else "none"
        message = _limit_line(name, True, wanted, first)
        return PoolSetup(True, pool.concurrency_limit, first, pool.is_paused, [message])

    pool = await client.read_work_pool(name)
    # Only fields named here are sent (the client sends what was set): `is_paused` and an existing
    # `concurrency_limit` stay as they are. Prefect's own `overwrite=True` sent every field, which
    # reset a pause and a limit to the defaults at each worker start.
    changes: dict[str, Any] = {}
    if pool.base_job_template != template:
        changes["base_job_template"] = template
    if pool.description != POOL_DESCRIPTION:
        changes["description"] = POOL_DESCRIPTION
    limit = pool.concurrency_limit
    source: LimitSource = "prefect"
    if limit is None:
        limit, source = wanted, "setting" if wanted is not None else "none"
        if wanted is not None:
            changes["concurrency_limit"] = wanted
    if changes:
        await client.update_work_pool(name, WorkPoolUpdate(**changes))
    messages = [_limit_line(name, False, limit, source, concurrency)]
    if pool.is_paused:
        messages.append(
            f"work pool {name!r} is paused in Prefect: no run starts until someone resumes it "
            f"(`prefect work-pool resume {name}`); left paused"
        )
    if pool.type != WarmProcessWorker.type:
        # Prefect cannot change a pool's type in place; deleting the pool would drop the team's
        # pause and limit and detach the deployments, so that is left to a person.
        messages.append(
            f"work pool {name!r} has type {pool.type!r}, not {WarmProcessWorker.type!r}: this worker "
            f"still runs its flow runs, but to fix the type delete the pool "
            f"(`prefect work-pool delete {name}`) and restart `aims worker`"
        )
    return PoolSetup(False, limit, source, pool.is_paused, messages)


def _limit_line(
    name: str, created: bool, limit: int | None, source: LimitSource, setting: int | None = None
) -> str:
    what = f"work pool {name!r} " + ("created" if created else "found")
    if source == "none":
        return f"{what} with no concurrency limit ({CONCURRENCY_SETTING}=0): a burst starts every run at once"
    if source == "setting":
        verb = "with" if created else "without a limit: set to"
        return f"{what} {verb} a concurrency limit of {limit} runs at once ({CONCURRENCY_SETTING})"
    stopped = " (0: no run starts)" if limit == 0 else ""
    return (
        f"{what} with a concurrency limit of {limit} runs at once{stopped} set in Prefect: kept "
        f"({CONCURRENCY_SETTING}={setting} applies only to a pool without a limit)"
    )


def serve(
    work_pool: str,
    state_dir: Path,
    limit: int | None = None,
    spares: int = 2,
    concurrency: int = 0,
    healthcheck: bool = False,
) -> None:
    """Register the work pool and the deployments, then run their flow runs until interrupted.

    `concurrency` is the pool's limit when the worker creates it or finds it without one (0: none);
    `limit` caps this worker alone, below whatever the pool allows. `healthcheck` serves Prefect's
    worker health check (GET /health on PREFECT_WORKER_WEBSERVER_PORT, 8080: 503 once the worker has
    not polled its pool for 30 poll intervals) while the worker runs.
    """
    anyio.run(_serve, deployments(), work_pool, state_dir, limit, spares, concurrency, healthcheck)


def _say(message: str) -> None:
    print(message, flush=True)


async def _serve(
    flow_deployments: list[RunnerDeployment],
    work_pool: str,
    state_dir: Path,
    limit: int | None,
    spares: int,
    concurrency: int,
    healthcheck: bool = False,
    say: Callable[[str], None] = _say,
) -> None:
    from prefect import get_client

    from infra.unresponsive import AUTOMATION_NAME, ensure_automation, heartbeat_env
    from infra.warm_worker import WarmProcessWorker, flow_heartbeat_from_env

    status = worker_status_path(state_dir, os.getpid())
    # A status file of this pid is a killed worker's (a restarted container's worker often gets the
    # pid its predecessor had): it must not say this one is ready before its processes are.
    status.unlink(missing_ok=True)
    heartbeat, unresponsive_after = flow_heartbeat_from_env()
    async with get_client() as client:
        setup = await ensure_work_pool(client, work_pool, concurrency)
        if heartbeat:
            kept = await ensure_automation(client, unresponsive_after)
            say(
                f"automation {AUTOMATION_NAME!r} {kept}: a run silent for {unresponsive_after:g}s is "
                "marked Crashed, then run again"
            )
    for message in setup.messages:
        say(message)
    # Read by Prefect's flow engine in every flow-run process, which inherits the worker's environment.
    os.environ.update(heartbeat_env(heartbeat))
    for deployment in flow_deployments:
        await deployment.aapply(work_pool_name=work_pool)
    worker = WarmProcessWorker(
        work_pool_name=work_pool, limit=limit, spares=spares, create_pool_if_not_found=False, say=say
    )
    status.parent.mkdir(parents=True, exist_ok=True)
    try:
        async with anyio.create_task_group() as group:
            group.start_soon(_cancel_on_sigterm, group.cancel_scope)
            group.start_soon(_report_pool, worker, status)
            # Runs already started keep going in their own processes; the worker only stops taking new ones.
            await worker.start(printer=say, with_healthcheck=healthcheck)
            group.cancel_scope.cancel()
    finally:
        status.unlink(missing_ok=True)


async def _report_pool(worker: WarmProcessWorker, status: Path) -> None:
    """Keep `workers/<pid>.json` current: how many flow-run processes are ready to take a run, and
    how many runs the worker lets run at once (null: no limit) and flow-run processes it may have."""
    last: tuple[int, int, int | None, int | None] | None = None
    while True:
        now = (worker.pool.ready_count, worker.pool.size, worker.runs_at_once, worker.max_processes)
        if now != last:
            keys = ("ready", "size", "runs_at_once", "max_processes")
            status.write_text(json.dumps(dict(zip(keys, now, strict=True))))
            last = now
        await anyio.sleep(0.2)


async def _cancel_on_sigterm(scope: anyio.CancelScope) -> None:
    with anyio.open_signal_receiver(signal.SIGTERM) as signals:
        async for _ in signals:
            scope.cancel()
            return
