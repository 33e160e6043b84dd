"""Runs a dead worker claimed but never started, put back in the queue.

A worker claims a scheduled run by moving it to Pending (then Submitting), and only then hands it to
a process. A worker killed between the two leaves the run Pending for good: Prefect's server
reschedules nothing (PrefectHQ/prefect#20485, #22664: a server-side claim protocol is planned, not
released). The event behind such a run was committed by its router long before, so its effect would
be lost without a word.

Every `aims worker` therefore looks at its work pool now and then (`SWEEP_EVERY`) for runs that
- are Pending or Submitting, unchanged for at least `worker_reclaim_after_seconds`;
- have no flow-run process: no infrastructure pid, which a worker reports once a process has the run;
- were claimed by a worker the pool no longer has online (Prefect calls a worker offline after three
  missed heartbeats) and that has been silent for that long too, or by one that never labelled it;
- and are not among this worker's own submissions,
and sets them Scheduled again, saying why; a worker of the pool then takes each as any other. Their
flow code never ran, so running them now is their one effect.

The narrow case left: a worker killed after its process got the run but before the pid reached
Prefect. That process moves the run to Running within seconds, long before the reclaim age, and the
run is read again just before it is rescheduled.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING
from uuid import UUID

if TYPE_CHECKING:
    from prefect.client.orchestration import PrefectClient
    from prefect.client.schemas.objects import FlowRun, StateType
    from prefect.client.schemas.sorting import FlowRunSort

# The label a Prefect worker gives each run it claims (prefect.workers.base).
WORKER_LABEL = "prefect.worker.name"
# Seconds between two looks at the pool: each is two reads of the API.
SWEEP_EVERY = 15.0


@dataclass(frozen=True)
class Claim:
    """What decides whether a claimed run was abandoned: read from Prefect's flow run."""

    run_id: UUID
    pending: bool  # Pending or Submitting (both of Prefect's PENDING type)
    since: datetime | None  # when it entered that state
    infrastructure_pid: str | None
    worker: str | None

    @classmethod
    def of(cls, run: FlowRun) -> Claim:
        state = run.state
        return cls(
            run_id=run.id,
            pending=state is not None and state.type.value == "PENDING",
            since=state.timestamp if state is not None else None,
            infrastructure_pid=run.infrastructure_pid or None,
            worker=str(run.labels[WORKER_LABEL]) if run.labels.get(WORKER_LABEL) else None,
        )


def abandoned(
    claim: Claim, online: Collection[str], own: Collection[UUID], now: datetime, after: float
) -> bool:
    """True if no worker will ever start this run: see the module's docstring for the four conditions."""
    if not claim.pending or claim.infrastructure_pid or claim.run_id in own or claim.since is None:
        return False
    if now - claim.since < timedelta(seconds=after):
        return False
    return claim.worker is None or claim.worker not in online


def why(claim: Claim, by: str) -> str:
    claimed = f"worker {claim.worker!r}" if claim.worker else "a worker that did not label it"
    return (
        f"Rescheduled by worker {by!r}: claimed by {claimed} at {claim.since:%Y-%m-%d %H:%M:%S} UTC, which "
        "went offline before any process started the run"
    )


async def pool_runs(
    client: PrefectClient, pool: str, state: StateType, sort: FlowRunSort | None = None
) -> list[FlowRun]:
    """The work pool's runs in a state of this type: a page of Prefect's at most, 200."""
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
        WorkPoolFilter,
        WorkPoolFilterName,
    )
    from prefect.client.schemas.sorting import FlowRunSort

    return await client.read_flow_runs(
        flow_run_filter=FlowRunFilter(state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[state]))),
        work_pool_filter=WorkPoolFilter(name=WorkPoolFilterName(any_=[pool])),
        sort=sort or FlowRunSort.ID_DESC,
        limit=200,
    )


async def reclaim(
    client: PrefectClient, pool: str, own: Collection[UUID], after: float, by: str, now: datetime
) -> list[Claim]:
    """Set the pool's abandoned claims Scheduled again; return them."""
    from prefect.client.schemas.objects import StateType, WorkerStatus
    from prefect.states import Scheduled

    runs = await pool_runs(client, pool, StateType.PENDING)
    candidates = [c for c in map(Claim.of, runs) if c.pending]
    if not candidates:
        return []
    workers = await client.read_workers_for_work_pool(pool)
    # Alive: online, or heard from within the reclaim age. A Prefect server down for a while makes
    # every worker look offline until its next heartbeat; a worker that beat since then is not dead.
    online = {
        w.name
        for w in workers
        if w.status == WorkerStatus.ONLINE
        or (w.last_heartbeat_time is not None and now - w.last_heartbeat_time < timedelta(seconds=after))
    }
    reclaimed: list[Claim] = []
    for claim in candidates:
        if not abandoned(claim, online, own, now, after):
            continue
        # Read again: a process that got the run at the last moment has moved it to Running.
        claim = Claim.of(await client.read_flow_run(claim.run_id))
        if not abandoned(claim, online, own, now, after):
            continue
        # Forced, as a person's reschedule in the UI is: the step goes back, not forward.
        await client.set_flow_run_state(claim.run_id, Scheduled(message=why(claim, by)), force=True)
        reclaimed.append(claim)
    return reclaimed
