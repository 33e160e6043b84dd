"""A busy Prefect server refusing a run's worker labels must not crash the run (fault benchmark)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar
from uuid import uuid4

import anyio
import pytest


class _BusyPrefect(BaseHTTPRequestHandler):
    """Prefect's API as SQLite under load answers it: 503 "database is locked" on a run's labels."""

    seen: ClassVar[list[tuple[str, str]]] = []

    def do_GET(self) -> None:
        # A server with CSRF protection off (Prefect's default) answers the client's token request so.
        if self.path.startswith("/api/csrf-token"):
            self._answer(422, {"detail": "CSRF protection is disabled."})
        else:
            self._answer(404, {"detail": "Not Found"})

    def do_PATCH(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        self.seen.append((self.command, self.path))
        self._answer(503, {"exception_message": "Service Unavailable", "detail": "database is locked"})

    def _answer(self, status: int, payload: dict[str, str]) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def busy_prefect() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _BusyPrefect)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _BusyPrefect.seen = []
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/api"
    finally:
        server.shutdown()
        server.server_close()


def test_labels_refused_by_a_busy_server_are_logged_and_the_run_goes_on(busy_prefect: str) -> None:
    from prefect.client.orchestration import PrefectClient
    from prefect.settings import PREFECT_CLIENT_MAX_RETRIES, temporary_settings

    from infra.warm_worker import WarmProcessWorker

    run_id = uuid4()

    async def label() -> None:
        worker = WarmProcessWorker("aims", spares=0, gx_spares=0)
        async with PrefectClient(api=busy_prefect) as client:
            # The client the worker's setup() would make, pointed at the busy server.
            worker._client = client
            await worker._give_worker_labels_to_flow_run(run_id)

    with temporary_settings({PREFECT_CLIENT_MAX_RETRIES: 0}):
        anyio.run(label)
    assert ("PATCH", f"/api/flow_runs/{run_id}/labels") in _BusyPrefect.seen, "the labels were asked for"


def _warm_children() -> set[int]:
    """This process's live `infra.warm_engine` children (a zombie has no command line)."""
    import os
    from pathlib import Path

    found: set[int] = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if parent == os.getpid() and b"infra.warm_engine" in cmdline:
            found.add(int(entry.name))
    return found


def test_runs_taken_at_once_never_leave_more_spares_than_the_pool_keeps() -> None:
    """Two runs taking a spare at the same moment each topped the pool up: both saw it short while the
    other's replacement was starting, and it ended one over its size, for good (CI: 7 flow-run
    processes for a bound of 6)."""
    from infra.warm_worker import SparePool

    async def take_two_at_once() -> tuple[int, int]:
        pool = SparePool(2)
        taken: list[anyio.abc.Process] = []
        try:
            await pool.fill()

            async def take() -> None:
                taken.append(await pool.take())

            async with anyio.create_task_group() as group:
                group.start_soon(take)
                group.start_soon(take)
            return len(taken), len(_warm_children())
        finally:
            for process in taken:
                process.terminate()
                await process.aclose()
            await pool.close()

    running, alive = anyio.run(take_two_at_once)
    assert running == 2
    assert alive == running + 2, f"{alive} processes: {alive - running} spares for a pool of 2"
    assert not _warm_children()


def test_two_runs_taking_spares_as_the_dead_ones_are_dropped_both_get_a_process() -> None:
    """Spares killed while waiting, then two runs at once: each run drops the dead spares, and the
    second used to find one the first had already removed ("not in deque"), failing its run's
    submission (seen in the worker's integration test once runs arrived together)."""
    import os
    import signal

    from infra.warm_worker import Spare, SparePool

    async def scenario() -> list[int]:
        pool = SparePool(size=0)  # spawns only when a run takes one and none is left
        for _ in range(2):
            process = await anyio.open_process(["sleep", "60"])
            read_fd, write_fd = os.pipe()
            os.close(write_fd)
            os.set_blocking(read_fd, False)
            pool._spares.append(Spare(process, read_fd))
            process.send_signal(signal.SIGKILL)
            await process.wait()
        handed: list[int] = []

        async def run() -> None:
            await pool._drop_dead()
            handed.append(len(pool._spares))

        async with anyio.create_task_group() as group:
            group.start_soon(run)
            group.start_soon(run)
        return handed

    assert anyio.run(scenario) == [0, 0]
