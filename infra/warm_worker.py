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


class SparePool:
    """Processes of `infra.warm_engine`, started ahead of need; the oldest is the most likely ready."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._spares: deque[anyio.abc.Process] = deque()

    async def fill(self) -> None:
        while len(self._spares) < self.size:
            self._spares.append(await self._spawn())

    async def take(self) -> anyio.abc.Process:
        while self._spares:
            process = self._spares.popleft()
            if process.returncode is None:
                break
            # It died while waiting (killed, or its imports failed); its output is in the worker's log.
            await process.aclose()
        else:
            process = await self._spawn()
        await self.fill()
        return process

    async def close(self) -> None:
        # Shielded: this runs while the worker is being cancelled, and spares must not outlive it.
        with anyio.CancelScope(shield=True):
            while self._spares:
                process = self._spares.popleft()
                if process.returncode is None:
                    process.terminate()
                await process.aclose()

    @staticmethod
    async def _spawn() -> anyio.abc.Process:
        # stdout and stderr are inherited: flow-run output lands in the worker's log, as with Prefect's.
        return await anyio.open_process(
            [sys.executable, "-m", "infra.warm_engine"], stdin=subprocess.PIPE, stdout=None, stderr=None
        )


class WarmProcessWorker(BaseWorker[BaseJobConfiguration, BaseVariables, BaseWorkerResult]):
    type = "aims-warm-process"
    job_configuration = BaseJobConfiguration
    job_configuration_variables = BaseVariables
    _description = "Runs AIMS flow runs in local processes that imported Prefect and the flows in advance."

    def __init__(self, *args: Any, spares: int = 2, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pool = SparePool(spares)

    async def setup(self) -> None:
        await super().setup()
        await self._pool.fill()

    async def teardown(self, *exc_info: Any) -> None:
        await self._pool.close()
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
        process = await self._pool.take()
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
