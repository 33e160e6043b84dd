"""`aims status` during faults: it answers within its deadline and says "unknown" when it cannot know.

No broker or Prefect server here: a closed loopback port stands for a service that is down (refused),
a listening socket that never answers for one that hangs. Router heartbeats are files in the state
folder, in the format the router writes (`<state>/routers/router-<name>.json`).
"""

from __future__ import annotations

import json
import math
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aims import status
from aims.cli import main

HOST = socket.gethostname()


# -- helpers -----------------------------------------------------------------------------------


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on: connecting is refused at once."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A loopback port that accepts connections (the kernel's backlog) and never says a word."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(64)
        yield int(s.getsockname()[1])


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for key in list(os.environ):
        if key.startswith(("AIMS_", "KAFKA_", "PREFECT_")):
            monkeypatch.delenv(key)
    monkeypatch.setenv("AIMS_STATE_DIR", str(tmp_path))
    (tmp_path / "routers").mkdir()
    return tmp_path


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


# -- routers -----------------------------------------------------------------------------------


def test_each_router_state_has_its_line(state: Path) -> None:
    routers = state / "routers"
    now = time.time()
    write_beat(routers, "a-routing", partitions=[0, 1])
    write_beat(routers, "b-routing", partitions=[2, 3], in_flight=2)
    write_beat(routers, "c-idle", partitions=[], assigned=False, state="idle")
    write_beat(
        routers,
        "d-holding",
        partitions=[],
        state="holding",
        holding_on="prefect",
        last_error="503 database is locked",
    )
    write_beat(routers, "e-stale", host="elsewhere", at=now - 60, pid=12345)
    write_beat(routers, "f-joining", partitions=[], assigned=False, state="joining")

    listed, removed = status.read_routers(routers, now, HOST)

    assert removed == []
    by_name = {r["name"]: r for r in listed}
    assert {n: r["condition"] for n, r in by_name.items()} == {
        "a-routing": "routing",
        "b-routing": "routing",
        "c-idle": "idle",
        "d-holding": "holding",
        "e-stale": "stale",
        "f-joining": "idle",
    }
    assert [n for n, r in by_name.items() if r["alive"]] == ["a-routing", "b-routing"]
    text = status.render(whole_status(listed))
    assert (
        "Routers   2 routing (partitions 0-3), 1 holding (on prefect), 2 idle (no partitions), 1 stale;"
        " 3 in the consumer group"
    ) in text
    lines = {line.split()[0]: line for line in text.splitlines() if line.startswith("  ")}
    assert "routing" in lines["a-routing"] and "partitions 0-1" in lines["a-routing"]
    assert "partitions 2-3, 2 in flight" in lines["b-routing"]
    assert "idle" in lines["c-idle"] and "no partitions" in lines["c-idle"]
    assert "HOLDING" in lines["d-holding"]
    assert "on prefect, last error: 503 database is locked" in lines["d-holding"]
    assert "last beat 60 s ago; unknown whether it is alive (host elsewhere" in lines["e-stale"]
    assert "joining the consumer group" in lines["f-joining"]


def test_the_summary_of_one_router_that_routes(state: Path) -> None:
    write_beat(state / "routers", "only", partitions=[0, 1, 2, 3])
    listed, _ = status.read_routers(state / "routers", time.time(), HOST)
    text = status.render(whole_status(listed, kafka_up(group_members=1)))
    assert "Routers   1 routing (partitions 0-3); 1 in the consumer group" in text


def test_a_router_without_partitions_is_not_alive(
    state: Path, closed_port: int, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Reported: "alive" for a router that holds no partitions."""
    with beating(state / "routers", "idle-one", partitions=[], assigned=False, state="idle"):
        _, data = status_json(monkeypatch, capsys, closed_port, closed_port)
        _, text = run_status(monkeypatch, capsys, closed_port, closed_port)
    [router] = data["routers"]
    assert router["alive"] is False
    assert router["condition"] == "idle"
    assert "Routers   0 routing, 1 idle (no partitions);" in text


def test_the_heartbeat_of_a_dead_router_is_removed_and_not_listed(
    state: Path, closed_port: int, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Reported: dead routers' heartbeats are listed forever."""
    routers = state / "routers"
    gone = write_beat(routers, "killed", pid=dead_pid())  # a fresh beat: killed a moment ago
    stale_gone = write_beat(routers, "long-gone", pid=dead_pid(), at=time.time() - 3600)
    write_beat(routers, "running")
    _, data = status_json(monkeypatch, capsys, closed_port, closed_port)
    assert [r["name"] for r in data["routers"]] == ["running"]
    assert not gone.exists() and not stale_gone.exists()
    assert sorted(data["routers_removed"]) == ["killed", "long-gone"]


def test_a_stale_beat_from_another_host_is_listed_then_forgotten(state: Path) -> None:
    routers = state / "routers"
    now = time.time()
    # Its pid means nothing here: another host's process cannot be looked up, so the file stays.
    recent = write_beat(routers, "away", host="other-host", pid=dead_pid(), at=now - 120)
    old = write_beat(routers, "away-long", host="other-host", at=now - status.HEARTBEAT_FORGET_SECONDS - 1)
    listed, removed = status.read_routers(routers, now, HOST)
    assert [(r["name"], r["condition"], r["alive"]) for r in listed] == [("away", "stale", False)]
    assert removed == [] and recent.exists() and old.exists()


def test_heartbeats_of_older_routers_lack_the_new_fields(state: Path) -> None:
    """Before the rewrite a heartbeat had no host, partitions, state or holding_on."""
    routers = state / "routers"
    old_format = {"host": ..., "partitions": ..., "state": ..., "holding_on": ..., "in_flight": ...}
    write_beat(routers, "old", **old_format, waiting_subjects=..., holding=False)
    write_beat(routers, "old-holding", **old_format, holding=True, last_error="prefect: 503")
    write_beat(routers, "old-dead", **old_format, pid=dead_pid())  # no host: this host, so pid is checked
    listed, removed = status.read_routers(routers, time.time(), HOST)
    by_name = {r["name"]: r for r in listed}
    assert removed == ["old-dead"]
    assert by_name["old"]["condition"] == "unknown" and by_name["old"]["partitions"] is None
    assert by_name["old-holding"]["condition"] == "holding"
    assert not any(r["alive"] for r in listed)  # partitions unknown: not known to be routing
    text = status.render(whole_status(listed))
    assert "0 routing, 1 holding (on unknown), 1 with partitions unknown;" in text
    assert "on unknown, last error: prefect: 503" in text


def test_an_unreadable_heartbeat_is_listed_as_such(state: Path) -> None:
    (state / "routers" / "router-garbled.json").write_bytes(b"\xff{not json")
    listed, _ = status.read_routers(state / "routers", time.time(), HOST)
    assert [(r["name"], r["condition"], r["alive"]) for r in listed] == [("garbled", "unreadable", False)]
    assert "1 unreadable" in status.render(whole_status(listed))


def test_partition_ranges() -> None:
    assert status._ranges([3, 0, 1, 2, 5, 7, 8]) == "0-3, 5, 7-8"
    assert status._ranges([]) == ""


_numbers = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=5),
    st.just(10**400),  # JSON integers have no bound
)
_fields = st.fixed_dictionaries(
    {},
    optional={
        "name": st.one_of(st.text(max_size=30), _numbers),
        "pid": st.one_of(_numbers, st.just(os.getpid())),
        "host": st.one_of(st.just(HOST), st.text(max_size=10), _numbers),
        "at": st.one_of(_numbers, st.floats(min_value=-30, max_value=30).map(lambda d: 1_000_000.0 + d)),
        "assigned": _numbers,
        "partitions": st.one_of(_numbers, st.lists(st.one_of(st.integers(-3, 50), _numbers), max_size=5)),
        "state": st.one_of(st.sampled_from(["routing", "holding", "idle", "joining"]), _numbers),
        "holding_on": st.one_of(st.sampled_from(["prefect", "kafka", "register"]), _numbers),
        "holding": _numbers,
        "in_flight": _numbers,
        "waiting_subjects": _numbers,
        "consumed": _numbers,
        "routed": _numbers,
        "dead_lettered": _numbers,
        "last_error": st.one_of(st.text(max_size=40), _numbers),
        "extra": st.recursive(_numbers, lambda inner: st.lists(inner, max_size=3), max_leaves=5),
    },
)
_contents = st.one_of(
    st.binary(max_size=200),
    _fields.map(lambda d: json.dumps(d).encode()),  # NaN and Infinity included, as json.dumps writes them
    st.recursive(_numbers, lambda inner: st.lists(inner, max_size=3), max_leaves=5).map(
        lambda v: json.dumps(v).encode()
    ),
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(content=_contents)
def test_no_heartbeat_crashes_the_status_or_passes_for_alive(content: bytes) -> None:
    now = 1_000_000.0
    with tempfile.TemporaryDirectory() as folder:
        routers = Path(folder)
        (routers / "router-x.json").write_bytes(content)
        listed, _ = status.read_routers(routers, now, HOST)
        text = status.render(whole_status(listed))
        json.dumps(listed, allow_nan=False)  # the --json document stays strict JSON
    assert "Routers   " in text
    for router in listed:
        if not router["alive"]:
            continue
        beat = json.loads(content)
        at, partitions = beat["at"], beat["partitions"]
        assert isinstance(at, int | float) and not isinstance(at, bool) and math.isfinite(at)
        assert abs(now - at) < status.HEARTBEAT_STALE_SECONDS
        assert isinstance(partitions, list) and partitions
        assert all(isinstance(p, int) and not isinstance(p, bool) and p >= 0 for p in partitions)


# -- Kafka, Prefect and the deadline -----------------------------------------------------------


def test_kafka_refused_is_down_and_lag_unknown(
    state: Path, closed_port: int, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Reported: with Kafka down it took 31 s and printed "Consumer lag 0 total"."""
    code, data = status_json(monkeypatch, capsys, closed_port, closed_port)
    kafka = data["kafka"]
    assert kafka["lag"] is None and kafka["lag_total"] is None and kafka["lag_error"] == "connection refused"
    assert code == 1
    assert kafka["reachable"] is False and kafka["error"] == "connection refused"
    assert kafka["group_members"] is None and kafka["topics"] is None
    assert data["prefect"]["reachable"] is False and data["prefect"]["runs"] is None

    code, text = run_status(monkeypatch, capsys, closed_port, closed_port)
    assert code == 1
    assert f"Kafka     DOWN  127.0.0.1:{closed_port}   connection refused" in text
    assert "Consumer lag  unknown (connection refused)" in text
    assert "0 total" not in text
    assert "consumer group unknown (connection refused)" in text
    assert "Recent flow runs  unknown (connection refused)" in text


def test_services_that_never_answer_are_unknown_at_the_deadline(
    state: Path, silent_port: int, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, data = status_json(monkeypatch, capsys, silent_port, silent_port, "--timeout", "0.3")
    assert code == 1
    for section in (data["kafka"], data["prefect"]):
        assert section["reachable"] is None and section["error"] == "no answer within 0.3 s"
    assert data["kafka"]["lag"] is None and data["kafka"]["lag_error"] == "no answer within 0.3 s"
    assert data["prefect"]["runs"] is None

    _, text = run_status(monkeypatch, capsys, silent_port, silent_port, "--timeout", "0.3")
    assert f"Kafka     unknown 127.0.0.1:{silent_port}   no answer within 0.3 s" in text
    assert "Consumer lag  unknown (no answer within 0.3 s)" in text


def test_the_deadline_keeps_what_a_slow_probe_learnt_and_explains_the_rest() -> None:
    release = threading.Event()

    def slow(section: status.Section, budget: status.Budget) -> None:
        section.set(reachable=True, error=None)
        release.wait(30)  # stands for a broker that stopped answering half-way

    def quick(section: status.Section, budget: status.Budget) -> None:
        section.set(reachable=True, error=None, lag={0: 0}, lag_total=0)

    pending = {"reachable": "error", "lag": "lag_error", "lag_total": "lag_error"}
    try:
        out = status.run_probes(
            {"slow": (status.Section(pending), slow), "quick": (status.Section(pending), quick)}, 0.05
        )
    finally:
        release.set()
    assert out["slow"] == {
        "reachable": True,
        "error": None,
        "lag": None,
        "lag_total": None,
        "lag_error": "no answer within 0.05 s",
    }
    assert out["quick"] == {"reachable": True, "error": None, "lag": {0: 0}, "lag_total": 0}


def test_a_probe_that_returns_without_answering_is_not_zero() -> None:
    out = status.run_probes({"lazy": (status.Section({"lag": "lag_error"}), lambda s, b: None)}, 1)
    assert out["lazy"] == {"lag": None, "lag_error": "not reported"}


class _AdminLosingTheBroker:
    """An admin client whose broker goes away after the bootstrap."""

    def describe_cluster(self) -> dict[str, Any]:
        from kafka.errors import KafkaConnectionError

        raise KafkaConnectionError("broker went away")

    def close(self) -> None:
        pass


def test_a_failure_inside_the_kafka_probe_still_prints_json(
    state: Path,
    silent_port: int,
    closed_port: int,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Reported: one call during a broker outage printed no JSON with --json."""
    monkeypatch.setattr("events.kafka_clients.make_admin", lambda *a, **k: _AdminLosingTheBroker())
    code, data = status_json(monkeypatch, capsys, silent_port, closed_port)
    kafka = data["kafka"]
    assert code == 1
    assert kafka["reachable"] is None and kafka["error"] == "KafkaConnectionError: broker went away"
    assert kafka["lag"] is None and kafka["lag_error"] == "KafkaConnectionError: broker went away"


def test_an_unexpected_exception_is_reported_in_its_section(
    state: Path,
    silent_port: int,
    closed_port: int,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr("events.kafka_clients.make_admin", broken)
    monkeypatch.setattr(status, "read_routers", broken)
    code, data = status_json(monkeypatch, capsys, silent_port, closed_port)
    assert code == 1
    assert data["kafka"]["probe_error"] == "RuntimeError: a bug" and data["kafka"]["reachable"] is None
    assert data["routers"] is None and data["routers_error"] == "RuntimeError: a bug"
    assert data["prefect"]["error"] == "connection refused"  # the other probes are not affected
    _, text = run_status(monkeypatch, capsys, silent_port, closed_port)
    assert "Routers   unknown (RuntimeError: a bug); consumer group unknown (RuntimeError: a bug)" in text


def test_lag_known_is_shown_per_partition_and_in_total() -> None:
    text = status.render(whole_status([]))
    assert "Consumer lag  5 total  p0=1  p1=0  p2=4  p3=0" in text
    assert "Kafka     up    127.0.0.1:9092" in text


def test_unknown_is_not_up() -> None:
    up = whole_status([])
    assert status.healthy(up)
    for reachable in (None, False):
        assert not status.healthy(whole_status([], kafka_up(reachable=reachable)))


@pytest.mark.parametrize("timeout", ["0", "-1", "nan", "601"])
def test_the_timeout_is_a_sensible_number_of_seconds(
    state: Path, timeout: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["status", "--timeout", timeout]) == 2
    assert "--timeout" in capsys.readouterr().err


def test_json_without_any_kafka_configured(state: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["status", "--json"])
    data = json.loads(capsys.readouterr().out)
    assert code == 1 and data["kafka"]["reachable"] is False and data["kafka"]["lag"] is None
    assert "KAFKA_BOOTSTRAP_SERVERS" in data["kafka"]["error"]


# -- Prefect and the gateway answering ---------------------------------------------------------


class _FakeServer(BaseHTTPRequestHandler):
    """Prefect's /api/health and /api/flow_runs/filter, and the gateway's /healthz."""

    health = 200

    def _answer(self, code: int, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path == "/api/health":
            self._answer(self.health, True)
        elif self.path == "/healthz":
            self._answer(200, {"status": "ok", "pending_approvals": 2, "slack": True})
        else:
            self._answer(404, {})

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self._answer(200, [] if self.path == "/api/flow_runs/filter" else {})

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def fake_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    monkeypatch.setattr(_FakeServer, "health", 200)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FakeServer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


def test_prefect_and_the_gateway_up_kafka_down(
    state: Path,
    closed_port: int,
    fake_server: int,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    (state / "gateway.json").write_text(json.dumps({"pid": 1, "host": "127.0.0.1", "port": fake_server}))
    code, data = status_json(monkeypatch, capsys, closed_port, fake_server)
    assert code == 1  # Kafka is down
    assert data["prefect"]["reachable"] is True and data["prefect"]["runs"] is not None
    assert all(info["states"] == {} for info in data["prefect"]["runs"].values())
    assert data["gateway"]["reachable"] is True and data["gateway"]["pending_approvals"] == 2
    _, text = run_status(monkeypatch, capsys, closed_port, fake_server)
    assert f"Gateway   up    http://127.0.0.1:{fake_server}   2 approvals pending" in text
    assert f"Prefect   up    http://127.0.0.1:{fake_server}/api" in text
    assert "Recent flow runs (last 200)" in text


def test_a_busy_prefect_is_not_up(
    state: Path,
    closed_port: int,
    fake_server: int,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(_FakeServer, "health", 503)
    _, data = status_json(monkeypatch, capsys, closed_port, fake_server, "--timeout", "0.6")
    prefect = data["prefect"]
    assert prefect["reachable"] is False and prefect["error"] == "/health answered HTTP 503"
    assert prefect["runs"] is None


@pytest.mark.parametrize(
    ("port", "word", "why"),
    [("closed_port", "DOWN ", "connection refused"), ("silent_port", "unknown", "no answer")],
)
def test_a_gateway_that_does_not_answer(
    state: Path,
    closed_port: int,
    port: str,
    word: str,
    why: str,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    gateway = request.getfixturevalue(port)
    (state / "gateway.json").write_text(json.dumps({"pid": 1, "host": "127.0.0.1", "port": gateway}))
    _, text = run_status(monkeypatch, capsys, closed_port, closed_port, "--timeout", "0.3")
    assert f"Gateway   {word} http://127.0.0.1:{gateway}   {why}" in text
