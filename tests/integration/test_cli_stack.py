"""The commands a user types: `aims up --detach`, emit, status, dlq, demo, down."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.support import poll

REPO = Path(__file__).resolve().parents[2]


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


@pytest.mark.integration
def test_stack_commands_end_to_end(cli_env: dict[str, str]) -> None:
    up = aims(cli_env, "up", "--detach")
    assert up.returncode == 0, up.stdout + up.stderr
    assert "Prefect UI: http://127.0.0.1:" in up.stdout

    emitted = aims(
        cli_env,
        "emit",
        "incident-reported",
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
    )
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

    def status() -> dict | None:
        result = aims(cli_env, "status", "--json")
        data = json.loads(result.stdout) if result.stdout.strip().startswith("{") else None
        if not data:
            return None
        runs = data["prefect"]["runs"].get("org.aims.incident.reported", {}).get("states", {})
        return data if runs.get("Completed") == 1 and sum(data["kafka"]["lag"].values()) == 0 else None

    data = poll(status, 180, "the incident's flow run to complete and lag 0", every=2)
    assert data["kafka"]["reachable"] and data["prefect"]["reachable"]
    assert data["kafka"]["topics"] == {"aims.events": 4, "aims.events.dlq": 1}
    assert any(r["alive"] for r in data["routers"]) and data["kafka"]["group_members"] == 1
    text = aims(cli_env, "status")
    assert text.returncode == 0 and "Routers   1 alive" in text.stdout
    # `aims up` started the gateway; it takes Slack and Jira decisions and says how many wait.
    assert data["gateway"]["reachable"] and data["gateway"]["pending_approvals"] >= 0
    assert "Gateway   up    http://127.0.0.1:" in text.stdout

    demo = aims(cli_env, "demo", "--exit", "--timeout", "240")
    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert demo.stdout.count("Completed") >= 3 and "Prefect UI:" in demo.stdout
    # The approvals the assessments asked for were decided on the CLI's path and their runs finished.
    assert "aims approvals approve approval-" in demo.stdout and "approval recorded" in demo.stdout
    assert "request-approval" in demo.stdout

    down = aims(cli_env, "down", timeout=180)
    assert down.returncode == 0 and "stack stopped" in down.stdout
    assert not (Path(cli_env["AIMS_STATE_DIR"]) / "stack.json").exists()
