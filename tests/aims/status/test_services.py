"""`aims status` when Kafka, Prefect or the gateway is down, hangs or fails: answers within its deadline."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from aims import status
from aims.cli import main
from tests.aims.status.probes import kafka_up, run_status, status_json, whole_status

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
