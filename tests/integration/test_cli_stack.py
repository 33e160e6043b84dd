"""The commands a user types: `aims up --detach`, emit, status, restart, dlq, demo, down."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from infra.processes import pid_alive
from tests.resources import REPO
from tests.support import poll

INCIDENT_ARGS = [
    "-d",
    "ai_system=cli-system",
    "-d",
    "severity=high",
    "-d",
    "category=bias",
    "-d",
    "description=declines",
    "-d",
    "reporter=carol",
    "-d",
    "occurred_at=2026-11-01T10:00:00Z",
    "-d",
    "detected_at=2026-11-02T10:00:00Z",
]


def aims(env: dict[str, str], *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "aims", *args],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture
def cli_env() -> dict[str, str]:
    state = REPO / ".aims" / "test-cli" / uuid.uuid4().hex[:8]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "KAFKA_", "AIMS_"))}
    env["AIMS_STATE_DIR"] = str(state)
    # Any free port for the gateway: another stack on this machine may hold the default one.
    env["AIMS_GATEWAY_PORT"] = "0"
    # Share the broker jars resolved by the session instead of asking Maven again.
    libs = REPO / ".aims" / "kafka" / "libs"
    if libs.exists():
        (state / "kafka").mkdir(parents=True, exist_ok=True)
        shutil.copytree(libs, state / "kafka" / "libs")
    yield env
    aims(env, "down", timeout=120)
    shutil.rmtree(state, ignore_errors=True)


def stack_json(state: Path) -> dict[str, Any]:
    return json.loads((state / "stack.json").read_text())


def restarted(state: Path, component: str, before: dict[str, Any]) -> dict[str, Any] | None:
    """stack.json once it names a new, running process for `component`."""
    try:
        now = stack_json(state)
    except (OSError, ValueError):
        return None  # being replaced
    pid = now["pids"].get(component)
    return now if pid and pid != before["pids"][component] and pid_alive(pid) else None


def router_beat(state: Path, pid: int) -> dict[str, Any] | None:
    """The heartbeat of the router `pid` once it holds partitions."""
    for path in (state / "routers").glob("router-*.json"):
        try:
            beat = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if beat.get("pid") == pid and beat.get("assigned"):
            return dict(beat)
    return None


@pytest.mark.integration
def test_stack_commands_end_to_end(cli_env: dict[str, str]) -> None:
    # The production shape (issue 23): Kafka as a replicated cluster of three nodes, Prefect on
    # PostgreSQL. One node on SQLite is what the session's stack runs; the supervision of either is
    # unit-tested in tests/infra/test_stack.py.
    up = aims(cli_env, "up", "--detach", "--brokers", "3", "--prefect-db", "postgres")
    assert up.returncode == 0, up.stdout + up.stderr
    assert up.stdout.count("127.0.0.1:") >= 4  # the UI, and the three brokers' addresses
    assert "Prefect UI: http://127.0.0.1:" in up.stdout

    emitted = aims(cli_env, "emit", "incident-reported", *INCIDENT_ARGS)
    assert emitted.returncode == 0, emitted.stderr
    refused = aims(cli_env, "emit", "data-changed", "-d", "dataset_id=x", "--binary")
    assert (
        refused.returncode == 2
        and "data.version" in refused.stderr
        and "nothing was published" in refused.stderr
    )

    # An unknown type published by a careless producer ends up in the dead-letter topic.
    bad = REPO / ".aims" / f"bad-{uuid.uuid4().hex[:6]}.json"
    bad.write_text(
        json.dumps(
            {
                "specversion": "1.0",
                "id": "x1",
                "source": "s",
                "type": "org.aims.model.version.registered",
                "data": {"ai_system": "s"},
            }
        )
    )
    refused_file = aims(cli_env, "emit", "--file", str(bad))
    bad.unlink()
    assert refused_file.returncode == 2 and "data.name" in refused_file.stderr

    def status(incidents: int = 1) -> dict | None:
        result = aims(cli_env, "status", "--json")
        data = json.loads(result.stdout) if result.stdout.strip().startswith("{") else None
        if not data:
            return None
        # A probe that missed its deadline (a loaded machine) says unknown: null runs or lag, so poll again.
        runs = (data["prefect"].get("runs") or {}).get("org.aims.incident.reported", {}).get("states", {})
        lag = data["kafka"].get("lag")
        return data if runs.get("Completed") == incidents and lag and sum(lag.values()) == 0 else None

    data = poll(status, 180, "the incident's flow run to complete and lag 0", every=2)
    assert data["kafka"]["reachable"] and data["prefect"]["reachable"]
    assert data["kafka"]["topics"] == {"aims.events": 4, "aims.events.dlq": 1}
    assert any(r["alive"] for r in data["routers"]) and data["kafka"]["group_members"] == 1
    # Polled as the JSON was: on a loaded machine one call's group probe may miss its deadline and
    # say "unknown" (seen in a fresh-clone CI run), which is the status telling the truth.
    routers_line = "Routers   1 routing (partitions 0-3); 1 in the consumer group"

    def text_status() -> Any:
        answer = aims(cli_env, "status")
        return answer if answer.returncode == 0 and routers_line in answer.stdout else None

    text = poll(text_status, 60, f"`aims status` to say {routers_line!r}", every=2)
    # `aims up` started the gateway; it takes Slack and Jira decisions and says how many wait.
    assert data["gateway"]["reachable"] and data["gateway"]["pending_approvals"] >= 0
    assert "Gateway   up    http://127.0.0.1:" in text.stdout

    # -- the local Prefect server requires the login `aims up` made (issue 20) --------------------
    state = Path(cli_env["AIMS_STATE_DIR"])
    first = stack_json(state)
    unauthenticated = httpx.post(f"{first['prefect_api_url']}/flow_runs/filter", json={}, timeout=10)
    assert unauthenticated.status_code == 401  # yet `aims status` above read the runs
    secret = (state / "prefect-api.auth").read_text().strip()
    assert secret.startswith("aims:") and secret not in json.dumps(first) and secret not in up.stdout
    for pid in first["pids"].values():  # in environments only, never on a command line
        assert secret.encode() not in Path(f"/proc/{pid}/cmdline").read_bytes()
    for log in [*(state / "logs").glob("*.log"), state / "prefect" / "server.log"]:
        assert secret not in log.read_text(errors="replace"), log

    # -- the stack survives a broker or Prefect restart (issue 17) ------------------------------
    # A node dies with the router, worker and gateway connected; its old port has connections in
    # TIME_WAIT. The supervisor starts that node alone again at the same address, which every client has.
    assert {"kafka-1", "kafka-2", "kafka-3"} <= set(first["pids"])
    os.kill(first["pids"]["kafka-2"], signal.SIGKILL)
    back = poll(lambda: restarted(state, "kafka-2", first), 240, "the supervisor to restart the node", 1)
    assert back["bootstrap"] == first["bootstrap"]
    assert {n: back["pids"][n] for n in ("kafka-1", "kafka-3")} == {
        n: first["pids"][n] for n in ("kafka-1", "kafka-3")
    }
    # An event emitted afterwards is routed. (Routing through the outage is the router's own part.)
    again = aims(cli_env, "emit", "incident-reported", *INCIDENT_ARGS[2:], "-d", "ai_system=after-broker")
    assert again.returncode == 0, again.stderr
    poll(lambda: status(incidents=2), 240, "the incident emitted after the broker restart to run, lag 0", 2)

    os.kill(back["pids"]["prefect-server"], signal.SIGKILL)
    server_back = poll(
        lambda: restarted(state, "prefect-server", back), 240, "the supervisor to restart Prefect", 1
    )
    assert server_back["prefect_api_url"] == first["prefect_api_url"]
    assert poll(lambda: status(incidents=2), 120, "Prefect reachable again", 2)["prefect"]["reachable"]

    # A router started by hand to scale out, as the README says; then the stack's own is restarted.
    by_hand_log = (state / "logs" / "router-by-hand.log").open("ab")
    by_hand = subprocess.Popen(
        [sys.executable, "-m", "aims", "router", "--name", "by-hand"],
        env=cli_env,
        cwd=REPO,
        stdout=by_hand_log,
        stderr=subprocess.STDOUT,
    )
    by_hand_log.close()
    poll(lambda: router_beat(state, by_hand.pid), 120, "the router started by hand to hold partitions", 1)
    before = stack_json(state)
    restart = aims(cli_env, "restart", "router", timeout=300)
    assert restart.returncode == 0, restart.stdout + restart.stderr
    now = stack_json(state)
    assert now["pids"]["router"] != before["pids"]["router"] and not pid_alive(before["pids"]["router"])
    assert f"router: ready (pid {now['pids']['router']})" in restart.stdout
    poll(lambda: router_beat(state, now["pids"]["router"]), 120, "the new router to hold partitions", 1)

    # Stopped (not killed) while clients are connected, and started again node by node, each at its
    # own address: the cluster serves throughout.
    kafka = aims(cli_env, "restart", "kafka", timeout=600)
    assert kafka.returncode == 0, kafka.stdout + kafka.stderr
    for node, address in enumerate(first["bootstrap"].split(","), start=1):
        assert f"kafka-{node}: ready at {address}" in kafka.stdout, kafka.stdout
    assert stack_json(state)["bootstrap"] == first["bootstrap"]

    # Two phases and the approvals, each up to --timeout: the command as a whole may take longer.
    demo = aims(cli_env, "demo", "--exit", "--timeout", "240", timeout=900)
    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert demo.stdout.count("Completed") >= 3 and "Prefect UI:" in demo.stdout
    # The approvals the assessments asked for were decided on the CLI's path and their runs finished.
    assert "aims approvals approve approval-" in demo.stdout and "approval recorded" in demo.stdout
    assert "request-approval" in demo.stdout

    # Every process of the stack as it is now: the supervisor's children after their restarts, and
    # what announced itself in the state folder (the router started by hand).
    last = stack_json(state)
    pids = {"supervisor": last["supervisor_pid"], **last["pids"]}
    assert set(pids) == {
        "supervisor",
        *("kafka-1", "kafka-2", "kafka-3"),
        *("prefect-server", "worker", "router", "gateway"),
    }
    assert all(pid_alive(pid) for pid in pids.values()), pids
    down = aims(cli_env, "down", timeout=180)
    assert down.returncode == 0 and "stack stopped" in down.stdout
    # The Prefect server's PostgreSQL held its runs, and stopped with the stack.
    assert "PostgreSQL ready on 127.0.0.1:" in (state / "logs" / "stack.log").read_text()
    assert not [
        pid
        for pid in (p.name for p in Path("/proc").iterdir() if p.name.isdigit())
        if str(state / "postgres" / "prefect") in _cmdline(int(pid))
    ], "the Prefect server's PostgreSQL outlived `aims down`"
    assert not (Path(cli_env["AIMS_STATE_DIR"]) / "stack.json").exists()
    assert by_hand.wait(30) is not None  # it is this test's child: reaped here
    still = {name: pid for name, pid in pids.items() if pid_alive(pid)}
    assert not still, f"left running by `aims down`: {still}\n{down.stdout}"


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""  # gone meanwhile
