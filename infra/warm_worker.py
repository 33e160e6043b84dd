"""A Prefect worker that runs each flow run in a process started before the run existed.

Prefect's own runner and process worker start `python -m prefect.engine` per run; importing Prefect
there costs seconds before the run can even say Running. This worker keeps `spares` processes of
`infra.warm_engine` importing in the background and hands each run to the oldest one. It is a
regular Prefect worker (`BaseWorker`): it polls its work pool, proposes Pending, reports the process
id for cancellation, and Prefect marks the run Crashed when the process exits non-zero.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import deque
from typing import TYPE_CHECKING, Any

import anyio
import anyio.abc
from prefect.workers.base import BaseJobConfiguration, BaseVariables, BaseWorker, BaseWorkerResult

from infra.warm_engine import WarmJob

if TYPE_CHECKING:
    from prefect.client.schemas.objects import FlowRun

FLOW_NAME_LABEL = "prefect.io/flow-name"


READY_FD = "AIMS_WARM_READY_FD"


class Spare:
    """One waiting process and the pipe on which it says it has finished importing."""

    def __init__(self, process: anyio.abc.Process, ready_fd: int) -> None:
        self.process = process
        self._ready_fd: int | None = ready_fd
        self._ready = False

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
    """Processes of `infra.warm_engine`, started ahead of need; a run gets the oldest ready one."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._spares: deque[Spare] = deque()

    @property
    def ready_count(self) -> int:
        return sum(1 for s in self._spares if s.alive and s.ready)

    async def fill(self) -> None:
        while len(self._spares) < self.size:
            self._spares.append(await self._spawn())

    async def take(self) -> anyio.abc.Process:
        for spare in list(self._spares):
            if not spare.alive:
                # It died while waiting (killed, or its imports failed); its output is in the worker's log.
                self._spares.remove(spare)
                await spare.aclose()
        # Under load a younger spare may be ready before an older one; none ready: the oldest is closest.
        ready = [s for s in self._spares if s.ready]
        chosen = ready[0] if ready else (self._spares[0] if self._spares else None)
        if chosen is None:
            chosen = await self._spawn()
        else:
            self._spares.remove(chosen)
        chosen._close_fd()
        await self.fill()
        return chosen.process

    async def close(self) -> None:
        # Shielded: this runs while the worker is being cancelled, and spares must not outlive it.
        with anyio.CancelScope(shield=True):
            while self._spares:
                await self._spares.popleft().aclose(terminate=True)

    @staticmethod
    async def _spawn() -> Spare:
        read_fd, write_fd = os.pipe()
        os.set_blocking(read_fd, False)
        try:
            # stdout and stderr are inherited: flow-run output lands in the worker's log, as with Prefect's.
            process = await anyio.open_process(
                [sys.executable, "-m", "infra.warm_engine"],
                stdin=subprocess.PIPE,
                stdout=None,
                stderr=None,
                pass_fds=(write_fd,),
                env={**os.environ, READY_FD: str(write_fd)},
            )
        finally:
            os.close(write_fd)
        return Spare(process, read_fd)


class WarmProcessWorker(BaseWorker[BaseJobConfiguration, BaseVariables, BaseWorkerResult]):
    type = "aims-warm-process"
    job_configuration = BaseJobConfiguration
    job_configuration_variables = BaseVariables
    _description = "Runs AIMS flow runs in local processes that imported Prefect and the flows in advance."

    def __init__(self, *args: Any, spares: int = 2, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.pool = SparePool(spares)

    async def setup(self) -> None:
        await super().setup()
        await self.pool.fill()

    async def teardown(self, *exc_info: Any) -> None:
        await self.pool.close()
        await super().teardown(*exc_info)

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
        process = await self.pool.take()
        assert process.stdin is not None
        await process.stdin.send(job.model_dump_json().encode() + b"\n")
        await process.stdin.aclose()
        if task_status is not None:
            task_status.started(process.pid)
        status_code = await process.wait()
        await process.aclose()
        return BaseWorkerResult(identifier=str(process.pid), status_code=status_code)

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
