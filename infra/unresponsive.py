"""Runs whose process died with its worker (a pod killed, a machine lost) run again.

A worker hands each run to a flow-run process and watches it: a process that exits badly is marked
Crashed by its worker. When the worker dies with its processes (a pod deleted or evicted, a node
lost), nobody is left to say so, and the run stays Running for good; its event was committed long
before, so its effect would be lost without a word. Prefect's answer for servers it does not host
(docs: "Detect zombie flows") is the one used here:

- every flow run of `aims worker` sends a heartbeat event every `AIMS_FLOW_HEARTBEAT_SECONDS` (Prefect's
  PREFECT_FLOWS_HEARTBEAT_FREQUENCY, set for its processes by the worker: Prefect's default of 180 s
  would leave a dead run unnoticed for ten minutes);
- `aims worker` keeps an automation in Prefect (`AUTOMATION_NAME`, made or brought up to date at each
  start): a run whose heartbeat is followed by nothing for `AIMS_FLOW_UNRESPONSIVE_AFTER_SECONDS` is
  set Crashed with a message saying so (`UNRESPONSIVE`);
- every `aims worker`, on its sweep of the pool (with infra.reclaim), marks such a run itself when the
  automation has not, `HEARD_WITHIN` later (`silent`). Prefect gives an automation's trigger a new id
  at every update, and with it forgets what the trigger was waiting on: a run whose process died
  before a worker with a new setting brought the automation up to date would stay Running for good;
- and every `aims worker`, on the same sweep, schedules such a run again
  once no heartbeat has come for a heartbeat and more since it was marked (`to_run_again`), at most
  `MAX_RUNS` times in all. A live run that Prefect merely did not hear from for a while (its server
  was down) beats again within one heartbeat and is left alone.

Running a flow again is safe: each records its effects in one unit of work, adding only what is
absent, and sends what it staged through the outbox, so a second run adds what the first did not.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal
from uuid import UUID

if TYPE_CHECKING:
    from prefect.client.orchestration import PrefectClient
    from prefect.client.schemas import OrchestrationResult
    from prefect.client.schemas.objects import FlowRun
    from prefect.events.schemas.automations import AutomationCore

AUTOMATION_NAME = "aims: unresponsive flow runs"
# The tag every deployment of the application gives its runs (infra.deployments, prefect.yaml).
RUN_TAG = "aims"
UNRESPONSIVE = "No heartbeat from this run"
# A run that crashed this often kills its own process (memory, say): left Crashed for a person.
MAX_RUNS = 3
HEARTBEAT = "prefect.flow-run.heartbeat"
# Seconds a heartbeat may take to reach Prefect's event store after it was due.
HEARD_WITHIN = 15
# After a heartbeat, any of these ends the wait for the next one: the run ended, or left its process
# on purpose (suspended for a decision, paused, scheduled again, being cancelled).
ENDS_THE_WAIT = frozenset(
    {HEARTBEAT}
    | {
        f"prefect.flow-run.{state}"
        for state in ("Completed", "Failed", "Cancelled", "Crashed", "Cancelling", "Suspended", "Paused")
    }
    | {"prefect.flow-run.Scheduled", "prefect.flow-run.AwaitingRetry"}
)

Kept = Literal["created", "updated", "kept"]


def heartbeat_env(seconds: int) -> dict[str, str]:
    """What a flow-run process needs in its environment to send heartbeats that often (0: nothing,
    Prefect's own default stays)."""
    return {"PREFECT_FLOWS_HEARTBEAT_FREQUENCY": str(seconds)} if seconds else {}


def crash_message(after: float, by: str = repr(AUTOMATION_NAME)) -> str:
    return f"{UNRESPONSIVE} for {after:g} s: its process is gone (a pod or machine lost); marked by {by}"


def automation(after: float) -> AutomationCore:
    """The automation that marks a silent run Crashed: Prefect's own zombie-flow recipe."""
    from prefect.client.schemas.objects import StateType
    from prefect.events.actions import ChangeFlowRunState
    from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture
    from prefect.events.schemas.events import ResourceSpecification

    return AutomationCore(
        name=AUTOMATION_NAME,
        description="Kept by `aims worker` (infra/unresponsive.py): a flow run that stopped sending "
        "heartbeats without ending is marked Crashed, and a live worker schedules it again.",
        trigger=EventTrigger(
            after={HEARTBEAT},
            expect=set(ENDS_THE_WAIT),
            match=ResourceSpecification({"prefect.resource.id": ["prefect.flow-run.*"]}),
            # Only this application's runs (its deployments' tag): on a Prefect server shared with
            # others, their runs keep their own heartbeats (Prefect's default is 180 s) and rules.
            match_related=ResourceSpecification(
                {"prefect.resource.role": "tag", "prefect.resource.id": f"prefect.tag.{RUN_TAG}"}
            ),
            for_each={"prefect.resource.id"},
            posture=Posture.Proactive,
            threshold=1,
            within=timedelta(seconds=after),
        ),
        actions=[ChangeFlowRunState(state=StateType.CRASHED, message=crash_message(after))],
        tags=[_version(after)],
    )


def _version(after: float) -> str:
    """A tag saying which automation this is: compared at each start, as Prefect hands it back with
    ids and defaults of its own filled in."""
    return f"aims:unresponsive-v2-after={after:g}"  # v2: only the application's runs (match_related)


async def ensure_automation(client: PrefectClient, after: float) -> Kept:
    """Create the automation, or bring the one of that name up to date (one copy only). One the team
    disabled in Prefect stays disabled: that is theirs to decide, as a pool's pause is."""
    wanted = automation(after)
    existing = await client.read_automations_by_name(AUTOMATION_NAME)
    if not existing:
        await client.create_automation(wanted)
        return "created"
    first, *extra = existing
    for copy in extra:  # two workers that started together may both have made one
        await client.delete_automation(copy.id)
    if _version(after) in first.tags:
        return "kept"
    await client.update_automation(first.id, wanted.model_copy(update={"enabled": first.enabled}))
    return "updated"


@dataclass(frozen=True)
class Crash:
    """What decides whether a crashed run runs again: read from Prefect's flow run."""

    run_id: UUID
    crashed: bool
    since: datetime | None
    message: str
    run_count: int

    @classmethod
    def of(cls, run: FlowRun) -> Crash:
        state = run.state
        return cls(
            run_id=run.id,
            crashed=state is not None and state.type.value == "CRASHED",
            since=state.timestamp if state is not None else None,
            message=(state.message or "") if state is not None else "",
            run_count=run.run_count,
        )


def to_run_again(crash: Crash, now: datetime, heartbeat: float, heard_since: bool) -> bool:
    """True for a run marked Crashed for its silence, quiet for a heartbeat and more since, and not run
    `MAX_RUNS` times yet. `heard_since`: a heartbeat arrived after it was marked (it lives)."""
    if not crash.crashed or not crash.message.startswith(UNRESPONSIVE) or crash.since is None:
        return False
    if crash.run_count >= MAX_RUNS or heard_since:
        return False
    # A live run beats within one heartbeat of being marked; a little more for the event's way there.
    return now - crash.since >= timedelta(seconds=heartbeat + HEARD_WITHIN)


def why(crash: Crash, by: str) -> str:
    again = crash.run_count + 1
    return f"Scheduled again by worker {by!r} (its run {again} of at most {MAX_RUNS}): {crash.message}"


async def heard_since(client: PrefectClient, run_id: UUID, since: datetime, now: datetime) -> bool:
    return await last_heard(client, run_id, since, now) is not None


async def last_heard(
    client: PrefectClient, run_id: UUID, since: datetime, until: datetime
) -> datetime | None:
    """When Prefect last stored a heartbeat of this run between `since` and `until` (None: none)."""
    from prefect.events.filters import (
        EventFilter,
        EventNameFilter,
        EventOccurredFilter,
        EventOrder,
        EventResourceFilter,
    )

    page = await client.read_events(
        filter=EventFilter(
            # Explicit: Prefect's own window is the last day only.
            occurred=EventOccurredFilter(since=since, until=until),
            event=EventNameFilter(name=[HEARTBEAT]),
            resource=EventResourceFilter(id=[f"prefect.flow-run.{run_id}"]),
            order=EventOrder.DESC,
        ),
        limit=1,
    )
    return page.events[0].occurred if page.events else None


@dataclass
class Contact:
    """Since when a worker has reached Prefect without a failure (monotonic seconds). Heartbeats sent
    while Prefect was away never arrived: until a heartbeat and more after it is back, a live run may
    look as silent as a dead one, so the worker marks nothing (`mark_silent`) before then."""

    wait: float
    since: float

    def lost(self, now: float) -> None:
        self.since = now

    def long_enough(self, now: float) -> bool:
        return now - self.since >= self.wait


def silent(heard: datetime | None, now: datetime, after: float) -> bool:
    """True for a Running run whose last heartbeat is older than the automation's wait and the time
    its event takes to arrive: the automation would have marked it, had it not forgotten it. A run
    that never beat is left alone, as the automation leaves it (its process may send none)."""
    return heard is not None and now - heard > timedelta(seconds=after + HEARD_WITHIN)


async def mark_silent(client: PrefectClient, pool: str, after: float, by: str, now: datetime) -> list[UUID]:
    """Mark Crashed the pool's Running runs silent for longer than the automation waits; return them."""
    from prefect.client.schemas import SetStateStatus
    from prefect.client.schemas.objects import StateType
    from prefect.states import Crashed

    from infra.reclaim import pool_runs

    marked: list[UUID] = []
    for run in await pool_runs(client, pool, StateType.RUNNING):
        running_since = run.state.timestamp if run.state is not None else None
        if running_since is None or not silent(running_since, now, after):
            continue  # running for less than the wait: nothing to read yet
        if not silent(await last_heard(client, run.id, running_since, now), now, after):
            continue
        # Not forced: a run that ended meanwhile stays as it ended.
        result: OrchestrationResult[Any] = await client.set_flow_run_state(
            run.id, Crashed(message=crash_message(after, f"worker {by!r}"))
        )
        if result.status == SetStateStatus.ACCEPT:
            marked.append(run.id)
    return marked


async def run_again(
    client: PrefectClient, pool: str, heartbeat: float, by: str, now: datetime
) -> list[Crash]:
    """Schedule the pool's runs that crashed for their silence again; return them."""
    from prefect.client.schemas.objects import StateType
    from prefect.client.schemas.sorting import FlowRunSort
    from prefect.states import Scheduled

    from infra.reclaim import pool_runs

    # The latest crashes first: older ones, of other causes, must not hide them.
    runs = await pool_runs(client, pool, StateType.CRASHED, FlowRunSort.END_TIME_DESC)
    again: list[Crash] = []
    for crash in map(Crash.of, runs):
        if not to_run_again(crash, now, heartbeat, heard_since=False):
            continue
        assert crash.since is not None
        if await heard_since(client, crash.run_id, crash.since, now):
            continue
        # Forced, as a person's "retry" in the UI is: a crashed run is final until someone acts.
        await client.set_flow_run_state(crash.run_id, Scheduled(message=why(crash, by)), force=True)
        again.append(crash)
    return again
