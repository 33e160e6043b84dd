"""`aims probe router|worker`: the containers' health checks (infra/deploy/k8s/), read from the files
the router and the worker keep in the state folder.

The heartbeat is written by the router's own code (RouterLiveness._write_heartbeat) and the worker's
status file by its own report (infra.serving._report_pool's format, infra.worker_status's path).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from aims.cli import main
from aims.probe import probe_router, probe_worker
from events.offsets import OffsetLedger
from events.router_liveness import RouterLiveness
from events.router_work import RouterStats
from infra.worker_status import worker_status_path

HOST = socket.gethostname()


class Beating(RouterLiveness):
    """The router's heartbeat writer with the state a router has between two polls."""

    def __init__(self, directory: Path, name: str, partitions: list[int]) -> None:
        self.name = name
        self.stats = RouterStats()
        self._heartbeat_dir = directory
        self._partitions = partitions
        self._ledger = OffsetLedger()
        self._paused = set()
        self._trouble = {}
        self._chains = {}
        self._waiting = set()


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for key in list(os.environ):
        if key.startswith(("AIMS_", "KAFKA_", "PREFECT_")):
            monkeypatch.delenv(key)
    monkeypatch.setenv("AIMS_STATE_DIR", str(tmp_path))
    return tmp_path


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


# -- router ------------------------------------------------------------------------------------


def test_a_router_with_a_fresh_heartbeat_is_alive(state: Path, capsys: pytest.CaptureFixture[str]) -> None:
    Beating(state / "routers", f"{HOST}-1", [0, 1])._write_heartbeat()
    assert main(["probe", "router"]) == 0
    assert f"router {HOST}-1: heartbeat" in capsys.readouterr().out


def test_an_idle_or_holding_router_is_alive_too(state: Path) -> None:
    # More replicas than partitions: it waits in the group. Holding on Kafka: a restart would not help.
    router = Beating(state / "routers", "idle", [])
    router._write_heartbeat()
    assert probe_router(state, HOST, time.time()).ok
    router._trouble["kafka"] = "poll failed"
    router._write_heartbeat()
    result = probe_router(state, HOST, time.time())
    assert result.ok and "holding on kafka" in result.message


def test_a_stale_heartbeat_or_none_fails_with_the_reason(
    state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["probe", "router"]) == 1
    assert f"no heartbeat from a router on {HOST}" in capsys.readouterr().err
    Beating(state / "routers", "stuck", [0])._write_heartbeat()
    later = time.time() + 40
    result = probe_router(state, HOST, later)
    assert not result.ok and result.message == "router stuck: last heartbeat 40 s ago (limit 15 s)"
    assert probe_router(state, HOST, later, max_age=60).ok
    assert main(["probe", "router", "--max-age", "0"]) == 2


def test_only_this_hosts_living_routers_count(state: Path) -> None:
    routers = state / "routers"
    routers.mkdir()
    beat = {"name": "other", "pid": 1, "host": "another-pod", "at": time.time(), "partitions": [0]}
    (routers / "router-other.json").write_text(json.dumps(beat))
    gone = {**beat, "name": "gone", "pid": dead_pid(), "host": HOST}
    (routers / "router-gone.json").write_text(json.dumps(gone))
    result = probe_router(state, HOST, time.time())
    assert not result.ok and "no heartbeat from a router" in result.message


# -- worker ------------------------------------------------------------------------------------


def write_status(state: Path, pid: int, ready: int, size: int = 3) -> None:
    path = worker_status_path(state, pid)
    path.parent.mkdir(parents=True, exist_ok=True)
    keys = ("ready", "size", "runs_at_once", "max_processes")
    path.write_text(json.dumps(dict(zip(keys, (ready, size, 4, 8), strict=True))))


def test_a_worker_is_ready_once_a_flow_run_process_is(
    state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["probe", "worker"]) == 1
    assert "no running worker's status" in capsys.readouterr().err
    write_status(state, os.getpid(), ready=0)
    assert main(["probe", "worker"]) == 1
    assert "no flow-run process ready yet (0 of 3" in capsys.readouterr().err
    write_status(state, os.getpid(), ready=2)
    assert main(["probe", "worker"]) == 0
    assert f"worker pid {os.getpid()}: ready (2 of 3 flow-run processes ready)" in capsys.readouterr().out


def test_a_killed_workers_status_file_does_not_count(state: Path) -> None:
    write_status(state, dead_pid(), ready=3)
    assert not probe_worker(state).ok
