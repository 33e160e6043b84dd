"""What a container platform needs of `aims worker`: its poll interval from PREFECT_WORKER_QUERY_SECONDS
(as Prefect's worker chart sets it) or else AIMS_WORKER_POLL_SECONDS, Prefect's health check on
request, and no status file of a killed predecessor claiming readiness.

Unit level: Prefect's client settings are read in a fresh interpreter (the SDK keeps the settings it
first saw), and the worker itself is a stand-in. The real worker polls a real Prefect server in
tests/integration/test_worker.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, ClassVar

import anyio
import pytest

from aims.cli import main
from infra.prefect_server import prefect_client_env
from infra.serving import PoolSetup
from infra.worker_status import worker_status_path

REPO = Path(__file__).resolve().parents[2]

POLL_SECONDS = """
import json
from aims.endpoints import Endpoints, use_prefect
from schemas.settings import load_settings

use_prefect(load_settings(), Endpoints("", "http://127.0.0.1:9/api", None))
from prefect.settings import PREFECT_WORKER_QUERY_SECONDS  # imported after, as `aims worker` does

print(json.dumps(PREFECT_WORKER_QUERY_SECONDS.value()))
"""


def clean_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIMS_", "KAFKA_", "PREFECT_"))}
    env["AIMS_STATE_DIR"] = str(tmp_path)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
    return env


@pytest.mark.parametrize(
    ("variables", "expected"),
    [
        ({}, 0.5),  # AIMS_WORKER_POLL_SECONDS's default, as `aims up` gives its worker
        ({"AIMS_WORKER_POLL_SECONDS": "2.5"}, 2.5),
        # Prefect's own variable wins: Prefect's worker chart sets it from worker.config.queryInterval.
        ({"AIMS_WORKER_POLL_SECONDS": "2.5", "PREFECT_WORKER_QUERY_SECONDS": "1"}, 1.0),
    ],
)
def test_the_worker_polls_at_prefects_interval_else_the_settings(
    variables: dict[str, str], expected: float, tmp_path: Path
) -> None:
    env = {**clean_env(tmp_path), **variables}
    command = [sys.executable, "-c", POLL_SECONDS]
    proc = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == expected


def test_aims_worker_passes_the_health_check_request_and_says_its_interval(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    for variable in prefect_client_env(tmp_path, "http://127.0.0.1:9/api"):
        monkeypatch.delenv(variable, raising=False)  # `aims worker` sets them: restored after
    monkeypatch.setenv("AIMS_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api")
    monkeypatch.setenv("PREFECT_WORKER_QUERY_SECONDS", "1")
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr("infra.serving.serve", lambda *args, **kwargs: calls.append(kwargs))
    assert main(["worker", "--with-healthcheck"]) == 0
    assert main(["worker"]) == 0
    assert [c["healthcheck"] for c in calls] == [True, False]
    assert "polling work pool 'aims' every 1 s (PREFECT_WORKER_QUERY_SECONDS)" in capsys.readouterr().out


class FakePool:
    ready_count = 0
    size = 3


class FakeWorker:
    """Stands in for WarmProcessWorker: records how it was started, runs briefly."""

    started: ClassVar[list[bool]] = []

    def __init__(self, **kwargs: Any) -> None:
        self.pool = FakePool()
        self.runs_at_once = 4
        self.max_processes = 8

    async def start(self, printer: Any, with_healthcheck: bool = False) -> None:
        FakeWorker.started.append(with_healthcheck)
        await anyio.sleep(0.5)  # the status report writes meanwhile


@pytest.mark.parametrize("healthcheck", [True, False])
def test_the_worker_starts_prefects_health_check_and_forgets_a_killed_workers_status(
    healthcheck: bool, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from infra import serving

    status = worker_status_path(tmp_path, os.getpid())
    status.parent.mkdir(parents=True)
    status.write_text(json.dumps({"ready": 3, "size": 3}))  # a killed worker of the same pid
    seen_at_setup: list[bool] = []

    @asynccontextmanager
    async def client() -> AsyncIterator[object]:
        yield object()

    async def ensure_work_pool(client: object, name: str, concurrency: int) -> PoolSetup:
        seen_at_setup.append(status.exists())
        return PoolSetup(False, 4, "prefect", False, [])

    monkeypatch.setattr("prefect.get_client", client)
    monkeypatch.setattr(serving, "ensure_work_pool", ensure_work_pool)
    monkeypatch.setenv("AIMS_FLOW_HEARTBEAT_SECONDS", "0")  # no automation to keep in this Prefect
    monkeypatch.setattr("infra.warm_worker.WarmProcessWorker", FakeWorker)
    FakeWorker.started = []
    written: list[dict[str, Any]] = []

    async def run() -> None:
        async with anyio.create_task_group() as group:
            group.start_soon(serving._serve, [], "aims", tmp_path, None, 3, 4, healthcheck, lambda m: None)
            await anyio.sleep(0.3)
            written.append(json.loads(status.read_text()))

    anyio.run(run)
    assert seen_at_setup == [False]  # gone before the pool and the deployments were set up
    assert FakeWorker.started == [healthcheck]
    assert written == [{"ready": 0, "size": 3, "runs_at_once": 4, "max_processes": 8}]
    assert not status.exists()  # removed when the worker stopped
