"""Starting flow runs on Prefect deployments, behind a small Protocol the router depends on."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol
from uuid import UUID

if TYPE_CHECKING:
    from prefect.client.orchestration import PrefectClient
    from prefect.client.schemas.filters import FlowRunFilter
    from prefect.client.schemas.objects import State, StateType
    from prefect.client.schemas.responses import OrchestrationResult


class TransientLaunchError(Exception):
    """The orchestrator could not take the run now (down, overloaded, not deployed yet). Retry."""


class RejectedLaunch(Exception):
    """The orchestrator refused the run for good (e.g. parameters it will never accept)."""


class NotWaitingYet(TransientLaunchError):
    """The run to resume exists but is not suspended yet (queued, starting, or busy with an earlier
    input). Only that run's subject has to wait; Prefect itself is fine."""


# A coalesced run stood down before it started: Cancelled under this name until a later check of its
# dataset has recorded its event as superseded, then under the second. It never ran, so it is not
# Completed; the names say why in the Prefect UI and let the check find the ones still to record.
SUPERSEDED = "Superseded"
SUPERSEDED_RECORDED = "Superseded, recorded"
# Stood-down runs marked recorded at once (Prefect's API serves each call on its own).
MARKS_AT_ONCE = 8
# The names of the states a flow run ends in, as the API and the UI show them.
FINAL_STATE_NAMES = frozenset(
    {"Completed", "Failed", "Crashed", "Cancelled", SUPERSEDED, SUPERSEDED_RECORDED}
)


class FlowRunLauncher(Protocol):
    async def launch(
        self,
        deployment: str,
        parameters: dict[str, Any],
        idempotency_key: str,
        start_at: datetime | None = None,
        tags: list[str] | None = None,
        name: str | None = None,
    ) -> UUID:
        """Create a flow run named `name` (Prefect picks one if None), scheduled for `start_at` (now
        if None); a repeated idempotency key returns the run created the first time, as it was."""
        ...

    async def stand_down(self, run_id: UUID, message: str) -> bool:
        """Cancel a run as `SUPERSEDED` if it is still Scheduled (due soon or late, it is nobody's
        yet: a worker that read it meanwhile is refused Pending for a Cancelled run, Prefect's
        `PreventPendingTransitions`); False if not (or Prefect cannot be asked now): the run then
        records itself when it runs."""
        ...

    async def resume(self, deployment: str, tag: str, run_input: dict[str, Any]) -> UUID | None:
        """Resume the suspended run of `deployment` tagged `tag` with `run_input`.

        Returns the run (also when it has already finished: there is nothing left to wake), None
        when no run carries the tag; raises NotWaitingYet while the run is not suspended yet.
        """
        ...


_TRANSIENT_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}


class PrefectLauncher:
    """`run_deployment(..., timeout=0, idempotency_key=...)` outside any flow context.

    Use as an async context manager: one HTTP client is kept for the router's lifetime.
    """

    def __init__(self) -> None:
        self._client: PrefectClient | None = None

    async def __aenter__(self) -> PrefectLauncher:
        from prefect.client.orchestration import get_client

        self._client = get_client()
        await self._client.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._client is not None:
            await self._client.__aexit__(exc_type, exc, tb)
            self._client = None

    async def launch(
        self,
        deployment: str,
        parameters: dict[str, Any],
        idempotency_key: str,
        start_at: datetime | None = None,
        tags: list[str] | None = None,
        name: str | None = None,
    ) -> UUID:
        import httpx
        from prefect.deployments.flow_runs import arun_deployment
        from prefect.exceptions import ObjectNotFound, PrefectHTTPStatusError

        if self._client is None:
            raise RuntimeError("PrefectLauncher used outside `async with`")
        try:
            run = await arun_deployment(
                name=deployment,
                client=self._client,
                parameters=parameters,
                timeout=0,
                idempotency_key=idempotency_key,
                scheduled_time=start_at,
                flow_run_name=name,
                tags=tags,
                as_subflow=False,
            )
        except ObjectNotFound as exc:
            # Usually the worker has not registered the deployments yet; holding is safe.
            raise TransientLaunchError(
                f"deployment {deployment!r} not found; start the worker (aims up / aims worker)"
            ) from exc
        except PrefectHTTPStatusError as exc:
            status = exc.response.status_code
            if status in _TRANSIENT_STATUS:
                raise TransientLaunchError(f"Prefect answered {status}") from exc
            raise RejectedLaunch(f"Prefect answered {status}: {exc.response.text[:500]}") from exc
        except (httpx.TransportError, TimeoutError, OSError) as exc:
            raise TransientLaunchError(f"Prefect API unreachable: {type(exc).__name__}: {exc}") from exc
        return run.id

    async def stand_down(self, run_id: UUID, message: str) -> bool:
        import httpx
        from prefect.exceptions import PrefectHTTPStatusError

        if self._client is None:
            raise RuntimeError("PrefectLauncher used outside `async with`")
        try:
            # Read first: only a Scheduled run is nobody's yet (a worker that read it is refused
            # Pending once it is Cancelled); one the router got back for an event delivered again
            # may be running already.
            run = await self._client.read_flow_run(run_id)
            if run.state is None or not run.state.is_scheduled():
                return False
            answer = await self._client.set_flow_run_state(run_id, superseded(message), force=False)
        except (PrefectHTTPStatusError, httpx.TransportError, TimeoutError, OSError):
            return False
        return accepted(answer)

    async def resume(self, deployment: str, tag: str, run_input: dict[str, Any]) -> UUID | None:
        import httpx
        from prefect.client.schemas.filters import (
            FlowFilter,
            FlowFilterName,
            FlowRunFilter,
            FlowRunFilterTags,
        )
        from prefect.client.schemas.sorting import FlowRunSort
        from prefect.exceptions import PrefectHTTPStatusError

        if self._client is None:
            raise RuntimeError("PrefectLauncher used outside `async with`")
        flow_name = deployment.split("/", 1)[0]
        try:
            runs = await self._client.read_flow_runs(
                flow_filter=FlowFilter(name=FlowFilterName(any_=[flow_name])),
                flow_run_filter=FlowRunFilter(tags=FlowRunFilterTags(all_=[tag])),
                sort=FlowRunSort.EXPECTED_START_TIME_DESC,
                limit=1,
            )
            if not runs:
                return None
            run = runs[0]
            if run.state is None or run.state.is_final():
                return run.id
            if not run.state.is_paused():
                raise NotWaitingYet(f"run {run.id} of {deployment} is {run.state.name}, not waiting yet")
            answer = await self._client.resume_flow_run(run.id, run_input=run_input)
        except PrefectHTTPStatusError as exc:
            status = exc.response.status_code
            if status in _TRANSIENT_STATUS:
                raise TransientLaunchError(f"Prefect answered {status}") from exc
            raise RejectedLaunch(f"Prefect answered {status}: {exc.response.text[:500]}") from exc
        except (httpx.TransportError, TimeoutError, OSError) as exc:
            raise TransientLaunchError(f"Prefect API unreachable: {type(exc).__name__}: {exc}") from exc
        if accepted(answer):
            return run.id
        reason = getattr(answer.details, "reason", "") or answer.status.value
        if "validation" in reason.lower() or "schema" in reason.lower():
            raise RejectedLaunch(f"run {run.id} refused the input: {reason}")
        # Another decision resumed it a moment ago: wait for it to suspend again.
        raise NotWaitingYet(f"run {run.id} did not resume: {reason}")


def superseded(message: str) -> State[None]:
    """The state a coalesced run is stood down in (`SUPERSEDED`). Proposed, never forced: Prefect's own
    rules refuse to cancel a run that has already finished."""
    from prefect.states import Cancelled

    return Cancelled(name=SUPERSEDED, message=message)


def accepted(answer: OrchestrationResult[Any]) -> bool:
    from prefect.client.schemas.responses import SetStateStatus

    return answer.status is SetStateStatus.ACCEPT


def tagged(
    tag: str,
    types: Iterable[StateType],
    *,
    after: datetime | None = None,
    before: datetime | None = None,
    but: Iterable[UUID] = (),
    names: Iterable[str] = (),
) -> FlowRunFilter:
    """Runs tagged `tag`, in a state of one of `types` (and of one of `names`, if given), expected to
    start after `after` and before `before`, other than `but`: what coalescing asks Prefect."""
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterExpectedStartTime,
        FlowRunFilterId,
        FlowRunFilterState,
        FlowRunFilterStateName,
        FlowRunFilterStateType,
        FlowRunFilterTags,
    )

    but, names = list(but), list(names)
    return FlowRunFilter(
        tags=FlowRunFilterTags(all_=[tag]),
        expected_start_time=FlowRunFilterExpectedStartTime(after_=after, before_=before),
        id=FlowRunFilterId(not_any_=but) if but else None,
        state=FlowRunFilterState(
            type=FlowRunFilterStateType(any_=list(types)),
            name=FlowRunFilterStateName(any_=names) if names else None,
        ),
    )


@dataclass(frozen=True)
class TaggedRun:
    """A flow run found by its tag: what a check needs to know of the run that supersedes it."""

    id: UUID
    expected_start: datetime
    parameters: dict[str, Any]


def later_run_tagged(tag: str, run_id: UUID, expected_start: datetime) -> TaggedRun | None:
    """The last run tagged `tag` expected to start after this one (not cancelled).

    Called from inside a flow run; Prefect's own record of the runs is the one place that knows every
    run the router created, the instant it created it.
    """
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.objects import StateType
    from prefect.client.schemas.sorting import FlowRunSort

    live = [s for s in StateType if s not in (StateType.CANCELLED, StateType.CANCELLING)]
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            flow_run_filter=tagged(tag, live, after=expected_start, but=[run_id]),
            sort=FlowRunSort.EXPECTED_START_TIME_DESC,
            limit=1,
        )
    if not runs or runs[0].expected_start_time is None:
        return None
    return TaggedRun(runs[0].id, runs[0].expected_start_time, dict(runs[0].parameters))


def stand_down_before(tag: str, latest: TaggedRun, keep: UUID, message: str, page: int) -> int:
    """Stand down (`SUPERSEDED`) every run tagged `tag` still Scheduled and due before `latest`, but
    `keep` (the caller's own run); how many Prefect accepted. Called from inside a flow run.

    The router stands a run down when the next change of its dataset comes, but only the one it
    started itself before that change, and only while the run is Scheduled: a run a worker held
    then, or one another router started (its partition moved), or one this router forgot
    (`events.router_work.LATEST_COALESCED`), or left by a router that died, waits and executes,
    only to find it is superseded (seconds of CPU each). The first that does stands down the rest.
    Not forced, and only Scheduled: a run a worker took meanwhile runs and records itself.
    """
    from concurrent.futures import ThreadPoolExecutor

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.objects import StateType
    from prefect.client.schemas.sorting import FlowRunSort

    waiting = tagged(tag, [StateType.SCHEDULED], before=latest.expected_start, but=[keep, latest.id])
    stood_down = 0
    with get_client(sync_client=True) as client, ThreadPoolExecutor(MARKS_AT_ONCE) as pool:

        def cancel(run_id: UUID) -> bool:
            return accepted(client.set_flow_run_state(run_id, superseded(message), force=False))

        while True:
            runs = client.read_flow_runs(
                flow_run_filter=waiting, sort=FlowRunSort.EXPECTED_START_TIME_ASC, limit=page
            )
            took = sum(pool.map(cancel, [run.id for run in runs]))
            stood_down += took
            # A refused run has left Scheduled, so it is not read again; none accepted ends it too.
            if len(runs) < page or not took:
                return stood_down


def stood_down_runs(tag: str, up_to: datetime, limit: int) -> list[tuple[UUID, dict[str, Any]]]:
    """(id, parameters) of runs tagged `tag`, expected to start by `up_to`, stood down as `SUPERSEDED`
    and not recorded yet; oldest first, at most `limit`. Called from inside a flow run."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.objects import StateType
    from prefect.client.schemas.sorting import FlowRunSort

    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            flow_run_filter=tagged(tag, [StateType.CANCELLED], before=up_to, names=[SUPERSEDED]),
            sort=FlowRunSort.EXPECTED_START_TIME_ASC,
            limit=limit,
        )
    return [(run.id, dict(run.parameters)) for run in runs]


def mark_recorded(run_ids: list[UUID], message: str) -> None:
    """Move stood-down runs to `SUPERSEDED_RECORDED`, once their events are in the register.

    A few calls at a time: a check after a burst marks hundreds, and one by one they took a minute."""
    from concurrent.futures import ThreadPoolExecutor

    from prefect.client.orchestration import get_client
    from prefect.states import Cancelled

    with get_client(sync_client=True) as client, ThreadPoolExecutor(MARKS_AT_ONCE) as pool:

        def mark(run_id: UUID) -> None:
            recorded: State[None] = Cancelled(name=SUPERSEDED_RECORDED, message=message)
            # Forced: one cancelled state to another is a move Prefect's rules would otherwise ignore.
            client.set_flow_run_state(run_id, recorded, force=True)

        list(pool.map(mark, run_ids))  # raises the first failure: the next check marks what is left
