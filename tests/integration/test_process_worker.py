"""A flow of the project runs on Prefect's own process worker, deployed from prefect.yaml (issue 23).

The warm worker (`aims worker`) is an optimisation, not a requirement: the deployment is made by
Prefect's own `prefect deploy` from the repository's prefect.yaml, and run by `prefect worker start
--type process`, which starts `python -m prefect.engine` for the run. An event routed as ever becomes
that run, which does what the warm worker's would: the model is onboarded with its evidence in the
session's register, and the dashboard is rebuilt after it (infra/flow_process.py).

The deployment "onboard-model/aims" is the session's own: the test moves it to its process pool and
gives it back to the session's pool afterwards.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from infra.prefect_server import prefect_executable
from infra.processes import ManagedProcess
from schemas.settings import AimsSettings
from tests.factories import model_event
from tests.support import SessionStack, poll

REPO = Path(__file__).resolve().parents[2]
FLOW = "onboard-model"


def _prefect(stack: SessionStack, *args: str) -> str:
    """Prefect's CLI as a user runs it, from the repository root; its output, or the failure with it."""
    done = subprocess.run(
        [prefect_executable(), "--no-prompt", *args],
        cwd=REPO,
        env=stack.env(),
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, f"prefect {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def _give_back(pool: str) -> None:
    """The session's deployment of the flow, on the session's pool, as `aims worker` applied it."""
    from infra.deployments import deployments

    # Called outside an event loop: deployments() builds them synchronously there.
    (deployment,) = [d for d in deployments() if d.flow_name == FLOW]
    asyncio.run(deployment.aapply(work_pool_name=pool))


async def _run_pool(run_id: str) -> str | None:
    from prefect import get_client

    async with get_client() as client:
        return (await client.read_flow_run(uuid.UUID(run_id))).work_pool_name


async def _artifact_runs(key: str) -> list[str]:
    from prefect import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    async with get_client() as client:
        found = await client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])))
    return [str(a.flow_run_id) for a in found]


@pytest.fixture
def process_pool(stack: SessionStack) -> Iterator[str]:
    pool = f"aims-process-{uuid.uuid4().hex[:6]}"
    _prefect(stack, "work-pool", "create", pool, "--type", "process")
    try:
        yield pool
    finally:
        _give_back(AimsSettings().work_pool)
        _prefect(stack, "work-pool", "delete", pool)


def test_prefects_process_worker_runs_a_project_flow_deployed_from_prefect_yaml(
    stack: SessionStack, topics: dict[str, str], process_pool: str
) -> None:
    from flows.dashboard.build import FILE_NAME
    from flows.dashboard.hook import ARTIFACT_KEY

    out = _prefect(stack, "deploy", "--name", f"{FLOW}/aims", "--pool", process_pool)
    assert f"'{FLOW}/aims'" in out, out
    worker = ManagedProcess(
        "prefect-process-worker",
        [prefect_executable(), "worker", "start", "--pool", process_pool, "--type", "process"],
        stack.state / "logs" / "prefect-process-worker.log",
        stack.env(PREFECT_WORKER_QUERY_SECONDS="1"),
    )
    # A page built less than MIN_INTERVAL ago is left as it is: an earlier test's must not count.
    dashboard = stack.state / FILE_NAME
    if dashboard.exists():
        os.utime(dashboard, (0, 0))
    event = model_event(system="process-worker", version=uuid.uuid4().hex[:8])
    publisher = stack.publisher(topics["AIMS_EVENTS_TOPIC"])
    worker.start()
    try:
        with stack.router(topics):
            publisher.publish(event)
            (run,) = stack.wait_for_runs([event.dedup_key], timeout=60)
            # Prefect's own engine, in a process of Prefect's own worker, ran it to the end.
            (run,) = stack.wait_for_runs(
                [event.dedup_key], states={"Completed", "Failed", "Crashed"}, timeout=240
            )
        assert run.state == "Completed", worker.failure()
        assert run.flow_name == FLOW
        assert asyncio.run(_run_pool(run.id)) == process_pool
        assert run.id in worker.log_path.read_text(), "the process worker's log names the run"
    finally:
        publisher.close()
        worker.stop(timeout=60)

    with stack.register().reader() as uow:
        (model,) = uow.model_versions.find(event_key=event.dedup_key)
        (evidence,) = [e for e in uow.evidence.find() if e.event_key == event.dedup_key]
    assert model.system == "process-worker"
    assert evidence.flow_run_id == run.id
    # The run changed the register, so its process rebuilt the dashboard and linked it.
    poll(lambda: run.id in asyncio.run(_artifact_runs(ARTIFACT_KEY)), 30, "the dashboard's artifact")
    assert dashboard.stat().st_mtime > 0
