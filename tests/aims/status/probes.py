"""Helpers for the `aims status` tests: router heartbeats, running the status, a Kafka that is up."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from aims.cli import main

HOST = socket.gethostname()


def run_status(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    kafka_port: int,
    prefect_port: int,
    *args: str,
) -> tuple[int, str]:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", f"127.0.0.1:{kafka_port}")
    monkeypatch.setenv("PREFECT_API_URL", f"http://127.0.0.1:{prefect_port}/api")
    code = main(["status", *args])
    return code, capsys.readouterr().out


def status_json(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    kafka_port: int,
    prefect_port: int,
    *args: str,
) -> tuple[int, dict[str, Any]]:
    code, out = run_status(monkeypatch, capsys, kafka_port, prefect_port, "--json", *args)
    return code, json.loads(out)


def write_beat(directory: Path, name: str, **fields: Any) -> Path:
    """A heartbeat as the router writes it; `fields` override, `field=...` (Ellipsis) leaves one out."""
    beat: dict[str, Any] = {
        "name": name,
        "pid": os.getpid(),
        "host": HOST,
        "at": time.time(),
        "assigned": True,
        "partitions": [0, 1],
        "state": "routing",
        "holding_on": None,
        "in_flight": 0,
        "waiting_subjects": 0,
        "consumed": 7,
        "routed": 6,
        "dead_lettered": 1,
        "last_error": "",
    }
    beat.update(fields)
    path = directory / f"router-{name}.json"
    # Written whole and renamed, as the router does: a reader never sees half a file.
    tmp = path.with_suffix(f".tmp{threading.get_ident()}")
    tmp.write_text(json.dumps({k: v for k, v in beat.items() if v is not ...}))
    tmp.replace(path)
    return path


@contextmanager
def beating(directory: Path, name: str, **fields: Any) -> Iterator[None]:
    """A router that keeps beating, as a live one does every ~2 s: its beat is fresh whenever and
    however long the status takes to read it."""
    stop = threading.Event()

    def beat() -> None:
        while True:
            write_beat(directory, name, **fields, at=time.time())
            if stop.wait(0.2):
                return

    write_beat(directory, name, **fields)
    thread = threading.Thread(target=beat, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def dead_pid() -> int:
    """The pid of a process that has ended (and been reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def kafka_up(**fields: Any) -> dict[str, Any]:
    return {
        "bootstrap": "127.0.0.1:9092",
        "reachable": True,
        "error": None,
        "topics": {"aims.events": 4, "aims.events.dlq": 1},
        "messages": {"aims.events": 10, "aims.events.dlq": 1},
        "group_members": 3,
        "lag": {0: 1, 1: 0, 2: 4, 3: 0},
        "lag_total": 5,
        **fields,
    }


def whole_status(routers: list[dict[str, Any]] | None, kafka: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "kafka": kafka or kafka_up(),
        "prefect": {"api": "http://127.0.0.1:4200/api", "reachable": True, "runs": {}},
        "gateway": {"url": None, "reachable": False, "error": "not running"},
        "routers": routers,
        "routers_error": None,
        "ui": None,
    }
