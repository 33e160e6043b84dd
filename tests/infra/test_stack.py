"""The local stack's supervision, restart requests and `aims down`, on real (tiny) processes and sockets.

No broker, no Prefect: the supervised children are `sleep` processes, the broker a stand-in whose
restart hands out a new address. Every test runs in milliseconds.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from aims.cli import main
from events.kafka_clients import KafkaConnection
from infra.kafka_broker import KafkaNode
from infra.processes import ManagedProcess, pid_alive, port_is_free
from infra.stack import (
    COMPONENTS,
    Backoff,
    LocalStack,
    RestartResult,
    StackInfo,
    aims_subcommand,
    announced_processes,
    parse_component,
    parse_restart_request,
    pending_restart_requests,
    request_restart,
    stop_processes,
    take_restart_result,
    write_restart_result,
)
from schemas.settings import AimsSettings

# -- ports ------------------------------------------------------------------------------------------


def listener() -> socket.socket:
    # As Kafka (Java's ServerSocket) and uvicorn bind: with SO_REUSEADDR.
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    return sock


def test_a_port_whose_last_connection_is_in_time_wait_is_free_and_a_listening_port_is_not() -> None:
    server = listener()
    port = server.getsockname()[1]
    assert not port_is_free(port)  # someone listens
    client = socket.create_connection(("127.0.0.1", port))
    accepted, _ = server.accept()
    # The server side closes first (a broker stopping): its end of the connection stays in TIME_WAIT
    # on the server's port for a minute.
    accepted.close()
    client.close()
    server.close()
    assert port_is_free(port), "a stopped server's TIME_WAIT connections must not keep its successor off"


# -- backoff ----------------------------------------------------------------------------------------


def test_a_component_that_died_after_running_a_while_starts_again_at_once() -> None:
    backoff = Backoff(base=2, cap=60, stable_after=60)
    backoff.started(1000)
    assert backoff.died(1100) == 0
    backoff.started(1100)
    assert backoff.died(1300) == 0  # ran 200 s: a new, single failure


def test_a_component_that_keeps_dying_waits_longer_each_time_up_to_the_cap() -> None:
    backoff = Backoff(base=2, cap=60, stable_after=60)
    delays = []
    now = 1000.0
    for _ in range(9):
        backoff.started(now)
        now += 1  # dies a second after each start
        delays.append(backoff.died(now))
        now += delays[-1]
    assert delays == [0, 2, 4, 8, 16, 32, 60, 60, 60]


# -- restart requests -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", COMPONENTS)
def test_each_component_can_be_asked_for(name: str) -> None:
    assert parse_component(name) == name
    assert parse_restart_request(json.dumps({"component": name}).encode()) == name


@pytest.mark.parametrize(
    "raw, why",
    [
        (b'{"component": "postgres"}', "unknown component 'postgres'"),
        (b'{"component": "../../bin/sh"}', "unknown component"),
        (b'{"component": "router", "command": "rm -rf /"}', "nothing else"),
        (b'{"component": ["router"]}', "nothing else"),
        (b'["router"]', "nothing else"),
        (b"router", "is JSON"),
        (b"\xff\xfe", "is JSON"),
        (b'{"component": "' + b"r" * 2000 + b'"}', "at most 1024 bytes"),
    ],
)
def test_a_request_that_does_not_name_a_known_component_is_refused(raw: bytes, why: str) -> None:
    with pytest.raises(ValueError, match=why.replace("(", r"\(")):
        parse_restart_request(raw)


def test_requests_are_found_oldest_first_and_files_of_other_names_are_ignored(tmp_path: Path) -> None:
    first = request_restart(tmp_path, "router")
    second = request_restart(tmp_path, "kafka")
    (tmp_path / "control" / "restart-notanid.json").write_text('{"component": "router"}')
    (tmp_path / "control" / "restart-abc.json.tmp").write_text("{}")
    found = pending_restart_requests(tmp_path)
    assert [request_id for request_id, _ in found] == [first, second]
    assert json.loads(found[0][1].read_text()) == {"component": "router"}
    with pytest.raises(ValueError):
        request_restart(tmp_path, "everything")


def test_an_answer_is_read_once(tmp_path: Path) -> None:
    request_id = request_restart(tmp_path, "gateway")
    assert take_restart_result(tmp_path, request_id) is None
    write_restart_result(tmp_path, request_id, RestartResult(True, "gateway: ready (pid 7)"))
    assert take_restart_result(tmp_path, request_id) == RestartResult(True, "gateway: ready (pid 7)")
    assert take_restart_result(tmp_path, request_id) is None
    with pytest.raises(ValueError):
        take_restart_result(tmp_path, "../stack")


def test_aims_restart_refuses_an_unknown_component_and_a_missing_stack(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AIMS_STATE_DIR", str(tmp_path))
    assert main(["restart", "zookeeper"]) == 2
    err = capsys.readouterr().err
    assert "unknown component 'zookeeper'" in err and "kafka, prefect-server, worker, router, gateway" in err
    assert main(["restart", "router"]) == 2
    assert "no stack is running from" in capsys.readouterr().err
    assert not (tmp_path / "control").exists()  # nothing asked of nobody


# -- recognising the stack's processes --------------------------------------------------------------


@pytest.mark.parametrize(
    "args, command",
    [
        (["/venv/bin/python", "-m", "aims", "router"], "router"),
        (["/venv/bin/python", "/venv/bin/aims", "router", "--name", "by-hand"], "router"),
        (["python3", "-X", "importtime", "-m", "aims", "worker"], "worker"),
        (["/venv/bin/python", "-m", "aims.cli", "up"], "up"),
        (["/venv/bin/python", "-m", "aims"], None),
        (["sleep", "60"], None),
        (["vim", "notes.txt", "x", "y", "z", "aims", "router"], None),
        (["/venv/bin/python", "-m", "pytest", "aims"], None),
    ],
)
def test_an_aims_command_is_recognised_by_its_command_line(args: list[str], command: str | None) -> None:
    assert aims_subcommand(args) == command


@pytest.fixture
def sleepers(tmp_path: Path) -> Iterator[dict[str, subprocess.Popen[bytes]]]:
    """Real processes: three whose command line is an `aims` command, and a plain `sleep`."""
    script = tmp_path / "bin" / "aims"  # as the console script `aims` shows in a command line
    script.parent.mkdir()
    script.write_text("import time\ntime.sleep(60)\n")
    procs = {
        role: subprocess.Popen([sys.executable, str(script), role, "--name", "x"])
        for role in ("router", "worker", "gateway")
    }
    procs["stranger"] = subprocess.Popen(["sleep", "60"])
    yield procs
    for proc in procs.values():
        proc.kill()
        proc.wait()


def announce(state: Path, procs: dict[str, subprocess.Popen[bytes]]) -> None:
    """The files routers, workers and the gateway write about themselves, some stale or wrong."""
    (state / "routers").mkdir(parents=True)
    (state / "workers").mkdir()
    dead = subprocess.Popen(["true"])
    dead.wait()
    beat = {"name": "by-hand", "assigned": True}
    (state / "routers" / "router-by-hand.json").write_text(json.dumps({**beat, "pid": procs["router"].pid}))
    # A pid recycled by a process that is not a router: must be left alone.
    (state / "routers" / "router-old.json").write_text(json.dumps({**beat, "pid": procs["stranger"].pid}))
    (state / "routers" / "router-gone.json").write_text(json.dumps({**beat, "pid": dead.pid}))
    (state / "routers" / "router-broken.json").write_text("{not json")
    (state / "routers" / "router-nopid.json").write_text(json.dumps({**beat, "pid": "1"}))
    (state / "workers" / f"{procs['worker'].pid}.json").write_text('{"ready": 1, "size": 1}')
    (state / "workers" / f"{dead.pid}.json").write_text('{"ready": 1, "size": 1}')
    (state / "workers" / "notes.json").write_text("{}")
    (state / "gateway.json").write_text(json.dumps({"pid": procs["gateway"].pid, "port": 1, "host": "x"}))


def test_down_finds_the_processes_announced_in_the_state_folder_and_only_those(
    tmp_path: Path, sleepers: dict[str, subprocess.Popen[bytes]]
) -> None:
    announce(tmp_path, sleepers)
    # stack.json names the stranger as the broker: its command line is not Kafka's.
    found = announced_processes(
        tmp_path, {"kafka": sleepers["stranger"].pid, "router": sleepers["router"].pid}
    )
    assert [(p.component, p.pid) for p in found] == [
        ("gateway", sleepers["gateway"].pid),
        ("router", sleepers["router"].pid),
        ("worker", sleepers["worker"].pid),
    ]
    said: list[str] = []
    stop_processes(found, said.append, timeout=10)
    assert said == [f"stopping {c} (pid {sleepers[c].pid})…" for c in ("gateway", "router", "worker")]
    for role in ("router", "worker", "gateway"):
        assert sleepers[role].wait(10) == -15  # SIGTERM
    assert sleepers["stranger"].poll() is None, "a process that is not the stack's was signalled"


def test_aims_down_without_a_supervisor_stops_what_was_started_by_hand_and_spares_the_rest(
    tmp_path: Path,
    sleepers: dict[str, subprocess.Popen[bytes]],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    announce(tmp_path, sleepers)
    # The file of a stack whose supervisor died; its "Prefect server" pid now runs something else.
    StackInfo(
        "127.0.0.1:1", "http://x/api", "http://x", 2**22 + 1, 0, {"prefect-server": sleepers["stranger"].pid}
    ).save(tmp_path)
    monkeypatch.setenv("AIMS_STATE_DIR", str(tmp_path))
    assert main(["down"]) == 0
    out = capsys.readouterr().out
    assert out.index("stopping gateway") < out.index("stopping router") < out.index("stopping worker")
    assert "stack stopped" in out
    for role in ("router", "worker", "gateway"):
        assert sleepers[role].wait(10) == -15
    assert sleepers["stranger"].poll() is None
    assert not StackInfo.path(tmp_path).exists()


def test_aims_down_with_nothing_running_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AIMS_STATE_DIR", str(tmp_path))
    assert main(["down"]) == 0
    assert "no stack is running" in capsys.readouterr().out


def test_a_zombie_counts_as_gone() -> None:
    child = subprocess.Popen(["true"])
    while True:  # exited but not reaped: a zombie until wait()
        stat = Path(f"/proc/{child.pid}/stat").read_text()
        if stat.rsplit(")", 1)[-1].split()[0] == "Z":
            break
    assert not pid_alive(child.pid)
    child.wait()
    assert not pid_alive(child.pid)
    assert pid_alive(os.getpid())


# -- supervision with stand-ins ---------------------------------------------------------------------


class FakeBroker:
    """Stands in for `KafkaBroker`: a `sleep` process per node; each whole restart may hand out
    another address, a node's restart keeps its own."""

    def __init__(self, home: Path, addresses: list[str], nodes: int = 1) -> None:
        self.home = home
        self.addresses = addresses
        self.bootstrap = addresses.pop(0)
        self.nodes = [KafkaNode(i, home if nodes == 1 else home / f"node-{i}") for i in range(1, nodes + 1)]
        self.restarts = 0
        self.node_restarts: list[int] = []

    @property
    def process(self) -> ManagedProcess | None:
        return self.nodes[0].process

    def start(self) -> str:
        for node in self.nodes:
            self._launch(node)
        return self.bootstrap

    def _launch(self, node: KafkaNode) -> None:
        node.process = ManagedProcess("kafka", ["sleep", "60"], node.log_path, dict(os.environ))
        node.process.start()

    def restart(self, timeout: float, cancel: threading.Event | None = None) -> str:
        self.stop()
        self.restarts += 1
        if self.addresses:
            self.bootstrap = self.addresses.pop(0)
        return self.start()

    def node(self, node_id: int) -> KafkaNode:
        return self.nodes[node_id - 1]

    def restart_node(self, node_id: int, timeout: float, cancel: threading.Event | None = None) -> str:
        node = self.node(node_id)
        if node.process is not None:
            node.process.stop(5)
        self.node_restarts.append(node_id)
        self._launch(node)
        return node.address

    def stop(self) -> None:
        for node in self.nodes:
            if node.process is not None:
                node.process.stop(5)

    @property
    def connection(self) -> KafkaConnection:
        return KafkaConnection(self.bootstrap)

    def client_env(self) -> dict[str, str]:
        return {"KAFKA_BOOTSTRAP_SERVERS": self.bootstrap}


@pytest.fixture(params=[1])
def stack(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> Iterator[LocalStack]:
    """A stack of stand-ins that claims to be up: children are `sleep`, ready as soon as started.
    Kafka has one node, or as many as the test asks for by indirect parametrization."""
    monkeypatch.setattr("infra.stack.ensure_topics", lambda bootstrap, specs: [])
    monkeypatch.setattr("infra.stack.announced_processes", lambda state, pids=None: [])
    stack = LocalStack(AimsSettings(state_dir=tmp_path))
    monkeypatch.setattr(stack, "_ready", lambda name: True)
    broker = FakeBroker(tmp_path / "kafka", ["127.0.0.1:9001"], nodes=request.param)
    stack.broker = broker  # type: ignore[assignment]
    stack.bootstrap = broker.start()
    stack.api_url = "http://127.0.0.1:4200/api"
    for name in ("worker", "router", "gateway"):
        stack._spawn(name, ["sleep", "60"], tmp_path / "logs" / f"{name}.log")
    stack.info = StackInfo(
        stack.bootstrap, stack.api_url, "http://127.0.0.1:4200", os.getpid(), 0, stack.pids()
    )
    stack.info.save(tmp_path)
    yield stack
    stack.stop(progress=lambda m: None)


def saved(stack: LocalStack) -> dict[str, Any]:
    return json.loads(StackInfo.path(stack.state).read_text())


def child_env(proc: ManagedProcess) -> dict[str, str]:
    assert proc.pid is not None
    raw = Path(f"/proc/{proc.pid}/environ").read_bytes()
    return dict(item.split("=", 1) for item in raw.decode().split("\0") if "=" in item)


def test_a_dead_broker_is_restarted_and_stack_json_names_its_new_pid(stack: LocalStack) -> None:
    old = stack.pids()
    stack.broker.process.kill()  # type: ignore[union-attr]
    said: list[str] = []
    stack.supervise_once(said.append)
    assert stack.broker.restarts == 1  # type: ignore[union-attr]
    assert any(m.startswith("kafka exited (-9); restart #1, log: ") and "broker.log" in m for m in said)
    assert saved(stack)["pids"]["kafka"] == stack.pids()["kafka"] != old["kafka"]
    assert saved(stack)["bootstrap"] == "127.0.0.1:9001"
    # Same address: the children keep running.
    assert {n: stack.pids()[n] for n in ("worker", "router", "gateway")} == {
        n: old[n] for n in ("worker", "router", "gateway")
    }


def test_a_broker_that_moved_gets_its_dependents_restarted_with_the_new_address(stack: LocalStack) -> None:
    stack.broker.addresses.append("127.0.0.1:9002")  # type: ignore[union-attr]
    old = stack.pids()
    stack.broker.process.kill()  # type: ignore[union-attr]
    said: list[str] = []
    stack.supervise_once(said.append)
    info = saved(stack)
    assert info["bootstrap"] == stack.bootstrap == "127.0.0.1:9002"
    assert any("moved from 127.0.0.1:9001 to 127.0.0.1:9002" in m for m in said)
    for name in ("worker", "router", "gateway"):
        assert info["pids"][name] == stack.pids()[name] != old[name]
        assert child_env(stack.children[name])["KAFKA_BOOTSTRAP_SERVERS"] == "127.0.0.1:9002"


@pytest.mark.parametrize("stack", [3], indirect=True)
def test_a_dead_node_of_a_cluster_is_restarted_alone_and_stack_json_names_every_node(
    stack: LocalStack,
) -> None:
    old = stack.pids()
    assert {"kafka-1", "kafka-2", "kafka-3"} <= set(saved(stack)["pids"])
    stack.broker.node(2).process.kill()  # type: ignore[union-attr]
    said: list[str] = []
    stack.supervise_once(said.append)
    assert stack.broker.node_restarts == [2] and stack.broker.restarts == 0  # type: ignore[union-attr]
    assert any(m.startswith("kafka-2 exited (-9); restart #1") for m in said), said
    now = stack.pids()
    assert saved(stack)["pids"]["kafka-2"] == now["kafka-2"] != old["kafka-2"]
    # The other nodes and every child run on, untouched: the cluster served throughout.
    assert {n: now[n] for n in now if n != "kafka-2"} == {n: old[n] for n in old if n != "kafka-2"}


@pytest.mark.parametrize("stack", [3], indirect=True)
def test_restarting_kafka_on_a_cluster_restarts_node_after_node(stack: LocalStack) -> None:
    old = stack.pids()
    result = stack.restart("kafka", progress=lambda m: None)
    assert result.ok, result.message
    assert stack.broker.node_restarts == [1, 2, 3] and stack.broker.restarts == 0  # type: ignore[union-attr]
    now = stack.pids()
    assert all(now[f"kafka-{i}"] != old[f"kafka-{i}"] for i in (1, 2, 3))
    assert {n: now[n] for n in ("worker", "router", "gateway")} == {
        n: old[n] for n in ("worker", "router", "gateway")
    }


def test_a_child_that_keeps_dying_is_restarted_with_backoff(stack: LocalStack, tmp_path: Path) -> None:
    gateway = stack.children["gateway"]
    gateway.command = ["sh", "-c", "exit 3"]
    gateway.kill()
    said: list[str] = []
    stack.supervise_once(said.append)  # first death: at once
    assert said[0].startswith("gateway exited (-9); restart #1, log: ")
    first_pid = gateway.pid
    gateway.proc.wait(5)  # type: ignore[union-attr]
    # The wait must outlast this test by far, whatever the machine's load.
    stack._backoff["gateway"].base = stack._backoff["gateway"].cap = 3600
    stack.supervise_once(said.append)  # died again at once: waits
    assert any(m.startswith("gateway exited (3); restart #2 in 3600s (it keeps dying)") for m in said), said
    assert gateway.pid == first_pid, "restarted in a tight loop"
    stack.supervise_once(said.append)
    assert (
        gateway.pid == first_pid and sum(m.startswith("gateway exited (") for m in said) == 2
    )  # reported once


def test_a_restart_request_is_served_and_answered(stack: LocalStack) -> None:
    old = stack.pids()["router"]
    request_id = request_restart(stack.state, "router")
    stack.supervise_once(lambda m: None)
    result = take_restart_result(stack.state, request_id)
    assert result is not None and result.ok, result
    new = stack.pids()["router"]
    assert result.message == f"router: ready (pid {new})" and new != old
    assert saved(stack)["pids"]["router"] == new
    assert not pid_alive(old)
    assert pending_restart_requests(stack.state) == []


def test_a_malformed_request_file_is_answered_with_a_refusal(stack: LocalStack) -> None:
    request_id = request_restart(stack.state, "router")
    (stack.state / "control" / f"restart-{request_id}.json").write_text('{"component": "rm -rf /"}')
    before = stack.pids()
    stack.supervise_once(lambda m: None)
    result = take_restart_result(stack.state, request_id)
    assert result is not None and not result.ok and "unknown component 'rm -rf /'" in result.message
    assert stack.pids() == before


def test_a_component_the_stack_does_not_run_cannot_be_restarted(stack: LocalStack) -> None:
    # No local Prefect server: this stack uses an existing API.
    result = stack.restart("prefect-server")
    assert not result.ok and "not run by this stack" in result.message


def test_aims_restart_waits_for_the_supervisor_and_reports(
    stack: LocalStack, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AIMS_STATE_DIR", str(stack.state))
    supervisor = threading.Thread(
        target=stack.supervise, kwargs={"progress": lambda m: None, "check_every": 0.05}
    )
    supervisor.start()
    try:
        assert main(["restart", "worker"]) == 0
    finally:
        stack._stopped.set()
        supervisor.join(10)
    out = capsys.readouterr().out
    assert f"asking the stack (pid {os.getpid()}) to restart worker" in out
    assert f"worker: ready (pid {stack.pids()['worker']})" in out


def test_stop_ends_supervision_and_stops_the_children(stack: LocalStack) -> None:
    pids = stack.pids()
    said: list[str] = []
    stack.stop(said.append)
    assert all(not pid_alive(pid) for pid in pids.values())
    assert said[-1] == "stack stopped" and not StackInfo.path(stack.state).exists()
    assert not stack.restart("router").ok  # nothing starts once stopping


def test_the_stacks_processes_and_the_cli_share_one_signing_key_kept_in_the_state_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import stat

    from aims.commands.common import cli_settings

    monkeypatch.delenv("AIMS_EVENT_SIGNING_KEY", raising=False)
    env = LocalStack(AimsSettings(state_dir=tmp_path)).child_env()
    key_file = tmp_path / "event-signing.key"
    key = env["AIMS_EVENT_SIGNING_KEY"]
    assert key == key_file.read_text().strip() and len(key) >= 32
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600  # the owner's only
    # Kept across stacks (events in the topic and the outbox still verify), and used by the CLI.
    assert LocalStack(AimsSettings(state_dir=tmp_path)).child_env()["AIMS_EVENT_SIGNING_KEY"] == key
    monkeypatch.setenv("AIMS_STATE_DIR", str(tmp_path))
    found = cli_settings().event_signing_key
    assert found is not None and found.get_secret_value() == key
    # The installation's own key, when the environment names one, is what every process gets.
    monkeypatch.setenv("AIMS_EVENT_SIGNING_KEY", "k" * 40)
    assert LocalStack(AimsSettings(state_dir=tmp_path)).child_env()["AIMS_EVENT_SIGNING_KEY"] == "k" * 40


def test_the_stacks_processes_and_the_register_share_one_audit_key_kept_in_the_state_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import stat

    from connectors.register import open_register

    monkeypatch.delenv("AIMS_AUDIT_KEY", raising=False)
    monkeypatch.delenv("AIMS_AUDIT_KEY_FILE", raising=False)
    env = LocalStack(AimsSettings(state_dir=tmp_path)).child_env()
    key_file = tmp_path / "audit.key"
    key = env["AIMS_AUDIT_KEY"]
    assert key == key_file.read_text().strip() and len(key) >= 32
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert key != env["AIMS_EVENT_SIGNING_KEY"]  # one key, one purpose
    assert LocalStack(AimsSettings(state_dir=tmp_path)).child_env()["AIMS_AUDIT_KEY"] == key
    # A process beside the stack (the CLI, the demo) opens the register with the same key.
    register = open_register(AimsSettings(state_dir=tmp_path), migrate=False)
    assert register.audit_key is not None and register.audit_key.get_secret_value() == key
    register.close()
    monkeypatch.setenv("AIMS_AUDIT_KEY", "a" * 40)
    assert LocalStack(AimsSettings(state_dir=tmp_path)).child_env()["AIMS_AUDIT_KEY"] == "a" * 40
