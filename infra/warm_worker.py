"""A Prefect worker that runs each flow run in a process started before the run existed.

Prefect's own runner and process worker start `python -m prefect.engine` per run; importing Prefect
there costs seconds before the run can even say Running. This worker keeps `spares` processes of
`infra.warm_engine` importing in the background and hands each run to the oldest one. It is a
regular Prefect worker (`BaseWorker`): it polls its work pool, proposes Pending, reports the process
id for cancellation, and Prefect marks the run Crashed when the process exits non-zero.

Flows that need a slow import of their own (Great Expectations for data quality) get their runs
handed to a separate, small pool of processes that imported it too (`FLOW_PROFILES`). Only those
runs consume such a process, so its replacement's extra import is paid once per such run, not
once per run of any flow. When none is ready, the run still takes one that has been importing for
as long as a plain spare takes to get ready: what it has left is at most the import a plain spare
would pay in the run, and taking a plain spare would run that import next to the one still going
(measured on two busy cores: 20 s became 65 s). A younger one or none: the run takes a plain spare
and imports the package itself.

How many runs at once: the work pool's concurrency limit, which Prefect enforces when the worker
asks for scheduled runs: it hands out only as many as the limit leaves free, counting the pool's
Pending and Running runs. A suspended run (request-approval waiting days for people) holds no slot,
and its process has exited. The worker follows the pool's limit with its own limiter too
(`runs_at_once`), because Prefect frees a slot as soon as the run reaches a final state, while its
process is still flushing logs and events: the worker's slot is held until the process has exited,
which makes the bound on processes exact. Flow-run processes alive at once are then at most
`runs_at_once` + `spares` + the GX spares (`max_processes`): 4 + 3 + 1 = 8 with the defaults,
however large the burst. Measured on two cores, a burst of 12 runs (3 of them data-quality checks)
peaked at 1.3 GB in those 8 processes, and at 1.6-1.8 GB in 12-14 with a limit of 8. (A run paused
in-process, `pause_flow_run`, would keep its process and the worker's slot while freeing Prefect's;
no flow does that.)
"""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

import anyio
import anyio.abc
from prefect.workers.base import BaseJobConfiguration, BaseVariables, BaseWorker, BaseWorkerResult

from flows.catalog import FLOWS, Profile
from infra.unresponsive import HEARD_WITHIN, Contact
from infra.warm_engine import WarmJob

if TYPE_CHECKING:
    from prefect.client.schemas.objects import FlowRun

FLOW_NAME_LABEL = "prefect.io/flow-name"
READY_FD = "AIMS_WARM_READY_FD"
PLAIN = "plain"
# Flow name → the `infra.warm_engine` profile its runs prefer (`flows.catalog` says it, with each
# flow); every other flow runs in a plain spare.
FLOW_PROFILES: dict[str, str] = {f.name: f.profile.value for f in FLOWS if f.profile is not Profile.plain}


def reclaim_after_from_env() -> float:
    """How long a dead worker's claim waits before this worker schedules its run again (infra.reclaim)."""
    from schemas.settings import load_settings

    return load_settings().worker_reclaim_after_seconds


def flow_heartbeat_from_env() -> tuple[int, float]:
    """(seconds between a run's heartbeats, 0: Prefect's own default and no recovery; seconds of
    silence that crash a run): infra.unresponsive."""
    from schemas.settings import load_settings

    settings = load_settings()
    return settings.flow_heartbeat_seconds, settings.flow_unresponsive_after_seconds


def gx_spares_from_env() -> int:
    """The GX-warm spares the settings ask for: `warm_gx_processes` (AIMS_WARM_GX_PROCESSES).

    One by default: data-quality runs rarely come faster than one can warm up, and each such process
    costs 5-12 s of CPU that the two cores of a small machine feel.
    """
    from schemas.settings import load_settings

    return load_settings().warm_gx_processes


class Spare:
    """One waiting process and the pipe on which it says it has finished importing."""

    def __init__(
        self, process: anyio.abc.Process, ready_fd: int, on_ready: Callable[[float], None] | None = None
    ) -> None:
        self.process = process
        self.started = time.monotonic()
        self._ready_fd: int | None = ready_fd
        self._ready = False
        self._on_ready = on_ready

    @property
    def age(self) -> float:
        return time.monotonic() - self.started

    @property
    def alive(self) -> bool:
        return self.process.returncode is None

    @property
    def ready(self) -> bool:
        if not self._ready and self._ready_fd is not None:
            try:
                self._ready = os.read(self._ready_fd, 1) == b"1"
            except BlockingIOError:
                return False
            self._close_fd()
            if self._ready and self._on_ready is not None:
                self._on_ready(self.age)
        return self._ready

    async def aclose(self, terminate: bool = False) -> None:
        self._close_fd()
        if terminate and self.alive:
            self.process.terminate()
        await self.process.aclose()

    def _close_fd(self) -> None:
        if self._ready_fd is not None:
            os.close(self._ready_fd)
            self._ready_fd = None


class SparePool:
    """Processes of `infra.warm_engine` with one preload profile, started ahead of need."""

    def __init__(self, size: int, profile: str = PLAIN) -> None:
        self.size = size
        self.profile = profile
        # Seconds the latest spare took to get ready, as far as polling saw it (the worker's status
        # report polls the plain pool every 0.2 s); None until one did.
        self.last_warmup: float | None = None
        self._spares: deque[Spare] = deque()
        # One top-up at a time: runs taking spares at once each saw the pool short while the other's
        # replacement was starting, and together left it over its size for good.
        self._filling = anyio.Lock()

    @property
    def ready_count(self) -> int:
        return sum(1 for s in self._spares if s.alive and s.ready)

    async def fill(self) -> None:
        async with self._filling:
            while len(self._spares) < self.size:
                self._spares.append(await self._spawn())

    async def take(self) -> anyio.abc.Process:
        """The oldest ready spare, else the oldest one (closest to ready), else a new one."""
        await self._drop_dead()
        # Under load a younger spare may be ready before an older one; none ready: the oldest is closest.
        ready = [s for s in self._spares if s.ready]
        chosen = ready[0] if ready else (self._spares[0] if self._spares else None)
        if chosen is None:
            chosen = await self._spawn()
        else:
            self._spares.remove(chosen)
        return await self._hand_out(chosen)

    async def take_ready(self, or_older_than: float | None = None) -> anyio.abc.Process | None:
        """A spare that finished importing, else the oldest one at least `or_older_than` seconds old,
        else None: the caller then has a plain one closer to hand."""
        await self.replace_dead()
        chosen = next((s for s in self._spares if s.ready), None)
        if chosen is None and or_older_than is not None:
            chosen = next((s for s in self._spares if s.age >= or_older_than), None)
        if chosen is None:
            return None
        self._spares.remove(chosen)
        return await self._hand_out(chosen)

    async def replace_dead(self) -> None:
        await self._drop_dead()
        await self.fill()

    async def close(self) -> None:
        # Shielded: this runs while the worker is being cancelled, and spares must not outlive it.
        with anyio.CancelScope(shield=True):
            while self._spares:
                await self._spares.popleft().aclose(terminate=True)

    async def _drop_dead(self) -> None:
        # Those that died while waiting (killed, or their imports failed; their output is in the
        # worker's log) leave the pool before the first await: a run taking a spare meanwhile must not
        # find one already removed, nor be handed a dead one.
        dead = [spare for spare in self._spares if not spare.alive]
        for spare in dead:
            self._spares.remove(spare)
        for spare in dead:
            await spare.aclose()

    async def _hand_out(self, chosen: Spare) -> anyio.abc.Process:
        chosen._close_fd()
        await self.fill()
        return chosen.process

    async def _spawn(self) -> Spare:
        read_fd, write_fd = os.pipe()
        os.set_blocking(read_fd, False)
        try:
            # stdout and stderr are inherited: flow-run output lands in the worker's log, as with Prefect's.
            process = await anyio.open_process(
                [sys.executable, "-m", "infra.warm_engine", "--profile", self.profile],
                stdin=subprocess.PIPE,
                stdout=None,
                stderr=None,
                pass_fds=(write_fd,),
                env={**os.environ, READY_FD: str(write_fd)},
            )
        finally:
            os.close(write_fd)
        return Spare(process, read_fd, self._warmed)

    def _warmed(self, seconds: float) -> None:
        self.last_warmup = seconds


def runs_at_once(pool_limit: int | None, own_limit: int | None) -> int | None:
    """How many runs a worker lets run at once: the lower of its pool's limit and its own `--limit`;
    None when neither is set."""
    limits = [n for n in (pool_limit, own_limit) if n is not None]
    return min(limits) if limits else None


def _say(message: str) -> None:
    print(message, flush=True)


class WarmProcessWorker(BaseWorker[BaseJobConfiguration, BaseVariables, BaseWorkerResult]):
    type = "aims-warm-process"
    job_configuration = BaseJobConfiguration
    job_configuration_variables = BaseVariables
    _description = "Runs AIMS flow runs in local processes that imported Prefect and the flows in advance."

    def __init__(
        self,
        work_pool_name: str,
        *,
        spares: int = 2,
        gx_spares: int | None = None,
        limit: int | None = None,
        reclaim_after: float | None = None,
        say: Callable[[str], None] = _say,
        **kwargs: Any,
    ) -> None:
        # Prefect makes its limiter only for a limit given here; one is always made, so that it can
        # follow the pool's limit (`_follow_pool_limit`); until the pool is read, it is `limit` or none.
        super().__init__(work_pool_name, limit=limit if limit is not None else sys.maxsize, **kwargs)
        # `pool` serves every flow and is what the worker's readiness reports (infra.serving).
        self.pool = SparePool(spares)
        gx = gx_spares_from_env() if gx_spares is None else gx_spares
        self.profile_pools = {"gx": SparePool(gx, "gx")} if gx > 0 else {}
        self._profile_pools_started = False
        self.own_limit = limit
        self.runs_at_once: int | None = limit
        self._limit_known = False
        self._say = say
        self.reclaim_after = reclaim_after_from_env() if reclaim_after is None else reclaim_after
        self.heartbeat, self.unresponsive_after = flow_heartbeat_from_env()
        self._last_sweep = 0.0
        self._contact = Contact(wait=self.heartbeat + HEARD_WITHIN, since=time.monotonic())

    @property
    def max_processes(self) -> int | None:
        """The most flow-run processes alive at once: one per run at once, plus the spares; None
        while nothing limits the runs."""
        if self.runs_at_once is None:
            return None
        return self.runs_at_once + self.pool.size + sum(p.size for p in self.profile_pools.values())

    async def setup(self) -> None:
        await super().setup()
        await self.pool.fill()

    async def get_and_submit_flow_runs(self) -> list[FlowRun]:
        await self._start_profile_pools()
        self._follow_pool_limit()
        await self._reclaim_abandoned()
        return await super().get_and_submit_flow_runs()

    async def _reclaim_abandoned(self) -> None:
        """Schedule again the runs a dead worker of this pool claimed and never started (infra.reclaim)."""
        from infra.reclaim import SWEEP_EVERY, reclaim

        if time.monotonic() - self._last_sweep < SWEEP_EVERY:
            return
        self._last_sweep = time.monotonic()
        try:
            reclaimed = await reclaim(
                self.client,
                self._work_pool_name,
                set(self._submitting_flow_run_ids),
                self.reclaim_after,
                self.name,
                datetime.now(UTC),
            )
        except Exception as exc:  # noqa: BLE001 - the next sweep tries again; taking runs goes on
            self._logger.warning("could not look for runs a dead worker left claimed: %s", exc)
            self._contact.lost(time.monotonic())
            return
        for claim in reclaimed:
            claimed_by = claim.worker or "(unlabelled)"
            self._say(
                f"flow run {claim.run_id} scheduled again: worker {claimed_by} claimed it and went "
                "offline before starting it"
            )
        if self.heartbeat:
            await self._run_unresponsive_again(datetime.now(UTC))

    async def _run_unresponsive_again(self, now: datetime) -> None:
        """Mark Crashed the silent runs the automation forgot, and schedule again the runs marked
        Crashed for their silence (infra.unresponsive)."""
        from infra.unresponsive import MAX_RUNS, mark_silent, run_again

        pool = self._work_pool_name
        try:
            marked = []
            if self._contact.long_enough(time.monotonic()):
                marked = await mark_silent(self.client, pool, self.unresponsive_after, self.name, now)
            again = await run_again(self.client, pool, self.heartbeat, self.name, now)
        except Exception as exc:  # noqa: BLE001 - the next sweep tries again; taking runs goes on
            self._logger.warning("could not look for runs whose process died with its worker: %s", exc)
            self._contact.lost(time.monotonic())
            return
        for run_id in marked:
            self._say(
                f"flow run {run_id} marked Crashed: no heartbeat for {self.unresponsive_after:g}s, and "
                "Prefect's automation had not marked it"
            )
        for crash in again:
            self._say(
                f"flow run {crash.run_id} scheduled again: it stopped sending heartbeats without ending "
                f"(its run {crash.run_count + 1} of at most {MAX_RUNS})"
            )

    def _follow_pool_limit(self) -> None:
        """Take as many runs at once as the pool's limit allows (and `limit`, if lower).

        The pool's settings reach the worker at start and whenever the team changes them in Prefect
        (Prefect pushes pool changes to connected workers, else the heartbeat brings them), so a
        limit raised or lowered in Prefect applies here too, without a restart.
        """
        try:
            pool_limit = self.work_pool.concurrency_limit
        except RuntimeError:
            return  # not synced with the server yet: Prefect takes no runs before that either
        wanted = runs_at_once(pool_limit, self.own_limit)
        if self._limit_known and wanted == self.runs_at_once:
            return
        self._limit_known = True
        self.runs_at_once = wanted
        # A limiter needs at least one token; with a pool limit of 0 Prefect hands out no run anyway.
        self.limiter.total_tokens = math.inf if wanted is None else max(wanted, 1)
        self._say(self._limit_report(pool_limit))

    def _limit_report(self, pool_limit: int | None) -> str:
        if self.runs_at_once is None:
            return (
                f"runs at once: no limit (work pool {self.work_pool.name!r} has none and no --limit was "
                "given): a burst can start as many flow-run processes as it has runs"
            )
        source = (
            f"the work pool's limit in Prefect ({pool_limit})"
            if pool_limit is not None and (self.own_limit is None or pool_limit <= self.own_limit)
            else f"this worker's --limit ({self.own_limit})"
        )
        gx = sum(p.size for p in self.profile_pools.values())
        return (
            f"runs at once: at most {self.runs_at_once}, from {source}; flow-run processes at most "
            f"{self.max_processes} ({self.runs_at_once} running + {self.pool.size} spares + {gx} with "
            "Great Expectations)"
        )

    async def _start_profile_pools(self) -> None:
        # Once a plain spare is warm: started with them, a GX import would delay the spares every
        # run needs, and the worker's readiness with them.
        if self._profile_pools_started or (self.pool.size > 0 and self.pool.ready_count == 0):
            return
        self._profile_pools_started = True
        for pool in self.profile_pools.values():
            await pool.fill()

    async def teardown(self, *exc_info: Any) -> None:
        await self.pool.close()
        for pool in self.profile_pools.values():
            await pool.close()
        await super().teardown(*exc_info)

    async def take_process(self, flow_name: str) -> anyio.abc.Process:
        """A spare of the flow's profile if ready, or closer to ready than a plain one; else a plain one."""
        wanted = self.profile_pools.get(FLOW_PROFILES.get(flow_name, PLAIN))
        for pool in self.profile_pools.values():
            if pool is not wanted:
                # Such a pool is only taken from by its own flows' runs, which may be rare: a spare of
                # it that died (killed, out of memory) is replaced at any run, so it is warm by then.
                await pool.replace_dead()
        process = await wanted.take_ready(self.pool.last_warmup) if wanted is not None else None
        return process if process is not None else await self.pool.take()

    async def run(
        self,
        flow_run: FlowRun,
        configuration: BaseJobConfiguration,
        task_status: anyio.abc.TaskStatus[int] | None = None,
    ) -> BaseWorkerResult:
        flow_name = configuration.labels.get(FLOW_NAME_LABEL)
        if not flow_name:
            raise RuntimeError(f"flow run {flow_run.id} has no {FLOW_NAME_LABEL} label; cannot pick its flow")
        job = WarmJob(
            flow_run_id=flow_run.id,
            flow_name=flow_name,
            env={k: v for k, v in configuration.env.items() if v is not None},
        )
        process = await self.take_process(flow_name)
        assert process.stdin is not None
        await process.stdin.send(job.model_dump_json().encode() + b"\n")
        await process.stdin.aclose()
        if task_status is not None:
            task_status.started(process.pid)
        status_code = await process.wait()
        await process.aclose()
        return BaseWorkerResult(identifier=str(process.pid), status_code=status_code)

    async def _give_worker_labels_to_flow_run(self, flow_run_id: UUID) -> None:
        """Label the run with this worker, as Prefect's workers do — but never crash it for that.

        Prefect's own worker marks a run Crashed when this one call fails, before its process even
        starts; a busy SQLite server answering 503 "database is locked" (past the client's retries)
        did that to 5 of 1,000 runs in the fault benchmark, and their events were committed by then:
        effects lost. The labels only tell the UI which worker ran it.
        """
        import httpx
        from prefect.exceptions import PrefectHTTPStatusError

        try:
            await super()._give_worker_labels_to_flow_run(flow_run_id)
        except (PrefectHTTPStatusError, httpx.TransportError) as exc:
            self._logger.warning(
                "could not label flow run %s with this worker (%s); running it anyway", flow_run_id, exc
            )

    async def kill_infrastructure(
        self, infrastructure_pid: str, configuration: BaseJobConfiguration, grace_seconds: int = 30
    ) -> None:
        from prefect.exceptions import InfrastructureNotFound

        pid = int(infrastructure_pid)
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            raise InfrastructureNotFound(f"flow-run process {pid} is not running") from None
        with anyio.move_on_after(grace_seconds):
            while _alive(pid):
                await anyio.sleep(0.1)
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
