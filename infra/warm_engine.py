"""A flow-run process that exists before its run: `python -m infra.warm_engine`.

Starting a Python process that imports Prefect and the flows takes 3-5 s on a small machine, longer
than the 2 s a run may take from event to Running. The worker therefore keeps a few of these
processes started ahead of time. Each one imports everything, then blocks on stdin until the worker
hands it exactly one job (a JSON line naming the flow run) and runs it the way `python -m
prefect.engine` does. An empty stdin means the worker no longer needs it, and it exits 0.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from typing import cast
from uuid import UUID

from pydantic import BaseModel, ConfigDict

# Modules a flow run may need that are slow to import; loading them while no run waits is the point.
PRELOAD = (
    "prefect.flow_engine",
    "prefect.engine",
    "infra.deployments",
    "connectors.register.store",
    "alembic.runtime.migration",
    "alembic.script",
    # Not Great Expectations: 5-12 s more per spare saturated two cores when runs came every few
    # seconds, and a data-quality run imports it after it is Running anyway.
)


class WarmJob(BaseModel):
    """What the worker sends down the pipe: one line of JSON."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    flow_run_id: UUID
    flow_name: str
    env: dict[str, str] = {}


def preload() -> None:
    import importlib

    for module in PRELOAD:
        importlib.import_module(module)
    from flows.evidence import register
    from infra.deployments import all_flows

    all_flows()
    try:
        register()  # opens the register and checks its schema now, not while a run waits
    except Exception as exc:  # noqa: BLE001 - the run will open it again and fail visibly if it must
        print(f"warm flow-run process: the register is not available yet: {exc}", file=sys.stderr)


def run_job(job: WarmJob) -> None:
    from prefect.engine import handle_engine_signals
    from prefect.flow_engine import flow_run_logger, load_flow_run, run_flow

    from infra.deployments import all_flows

    # Prefect's settings were read at import; only plain variables (and the run id) can change here.
    os.environ.update(job.env)
    os.environ["PREFECT__FLOW_RUN_ID"] = str(job.flow_run_id)
    flows = {f.name: f for f in all_flows()}
    with handle_engine_signals(job.flow_run_id):
        flow_run = load_flow_run(flow_run_id=job.flow_run_id)
        logger = flow_run_logger(flow_run=flow_run)
        flow = flows.get(job.flow_name)
        if flow is None:
            logger.error("flow %r is not one of this worker's flows: %s", job.flow_name, sorted(flows))
            raise SystemExit(1)
        # Prefect's own engine passes this adapter too; its annotation says Logger.
        result = run_flow(flow, flow_run=flow_run, error_logger=cast("logging.Logger", logger))
        if asyncio.iscoroutine(result):
            asyncio.run(result)


def say_ready() -> None:
    """Tell the worker the imports are done (a byte on the pipe it passed), so it prefers this process."""
    fd = os.environ.pop("AIMS_WARM_READY_FD", None)
    if fd is None:
        return
    try:
        os.write(int(fd), b"1")
        os.close(int(fd))
    except OSError:
        pass  # the worker is gone or stopped listening; stdin will tell


def main() -> int:
    preload()
    say_ready()
    line = sys.stdin.readline()
    if not line.strip():
        return 0
    run_job(WarmJob.model_validate_json(line))
    return 0


if __name__ == "__main__":
    sys.exit(main())
