"""The `aims` command, run as a subprocess: thin, fast, and it refuses bad events before any I/O."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from schemas.events import DATA_CHANGED, EVENT_CLASSES, INCIDENT_REPORTED, MODEL_VERSION_REGISTERED
from tests.resources import EXAMPLE_POLICY

HEAVY = ("prefect", "great_expectations", "kafka")

DATA_ARGS = [
    "-d",
    "dataset_id=loans",
    "-d",
    "location.uri=/data/loans.csv",
    "-d",
    "version=3",
    "-d",
    "change_kind=created",
]
INCIDENT_ARGS = [
    "-d",
    "ai_system=credit-scoring",
    "-d",
    "severity=high",
    "-d",
    "category=bias",
    "-d",
    "description=Approval rates differ",
    "-d",
    "reporter=bob",
    "-d",
    "occurred_at=2025-03-01T09:00:00Z",
    "-d",
    "detected_at=2025-03-01T10:00:00Z",
]
MODEL_ARGS = [
    "-d",
    "ai_system=credit-scoring",
    "-d",
    "name=cs",
    "-d",
    "version=7",
    "-d",
    "source_uri=models:/cs/7",
    "-d",
    "run_id=r1",
    "-d",
    "owner=alice",
    "-d",
    "intended_use=Scoring",
    "-d",
    'training_datasets=[{"dataset_id": "loans", "version": "v1"}]',
]
VALID = {
    "data-changed": (DATA_ARGS, DATA_CHANGED, "loans"),
    "incident-reported": (INCIDENT_ARGS, INCIDENT_REPORTED, "credit-scoring"),
    "model-version-registered": (MODEL_ARGS, MODEL_VERSION_REGISTERED, "credit-scoring"),
}


@pytest.fixture
def broker_trap() -> Iterator[socket.socket]:
    """A listening socket standing in for Kafka: anything that tries to publish connects to it."""
    trap = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    trap.bind(("127.0.0.1", 0))
    trap.listen(8)
    trap.setblocking(False)
    try:
        yield trap
    finally:
        trap.close()


def connected(trap: socket.socket) -> bool:
    try:
        conn, _ = trap.accept()
    except BlockingIOError:
        return False
    conn.close()
    return True


@pytest.fixture
def env(tmp_path: Path, broker_trap: socket.socket) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("AIMS_", "KAFKA_", "PREFECT_"))}
    clean["KAFKA_BOOTSTRAP_SERVERS"] = f"127.0.0.1:{broker_trap.getsockname()[1]}"
    clean["AIMS_STATE_DIR"] = str(tmp_path / "state")
    return clean


def aims(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "aims", *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=60
    )


def modules_loaded_by(argv: list[str], env: dict[str, str], cwd: Path) -> tuple[int, set[str]]:
    """Run `aims argv` in a fresh interpreter and list the top-level heavy packages it imported."""
    code = (
        "import json, sys\n"
        "from aims.cli import main\n"
        "try:\n"
        f"    rc = main({argv!r})\n"
        "except SystemExit as exc:\n"
        "    rc = exc.code\n"
        f"heavy = sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r}))\n"
        "print('\\n@@' + json.dumps({'rc': rc, 'heavy': heavy}))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=cwd, capture_output=True, text=True, timeout=60
    )
    assert "@@" in proc.stdout, proc.stderr
    report = json.loads(proc.stdout.rsplit("@@", 1)[1])
    return int(report["rc"] or 0), set(report["heavy"])


# -- help and imports --------------------------------------------------------------------------


def test_help_lists_the_commands(env: dict[str, str], tmp_path: Path) -> None:
    proc = aims(["--help"], env, tmp_path)
    assert proc.returncode == 0, proc.stderr
    for command in ("up", "down", "worker", "router", "gateway", "emit", "status", "dlq", "schemas", "demo"):
        assert f"    {command} " in proc.stdout, command


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["emit", "--help"],
        ["dlq", "replay", "--help"],
        ["emit", "data-changed", *DATA_ARGS, "--dry-run"],
        ["emit", "data-changed", "-d", "dataset_id=x"],
        ["schemas", "export", "out"],
    ],
    ids=["help", "emit-help", "dlq-replay-help", "emit-dry-run", "emit-invalid", "schemas-export"],
)
def test_light_commands_do_not_import_heavy_libraries(
    argv: list[str], env: dict[str, str], tmp_path: Path
) -> None:
    rc, heavy = modules_loaded_by(argv, env, tmp_path)
    assert rc in (0, 2)
    assert not heavy, f"`aims {' '.join(argv)}` imported {sorted(heavy)}"


def test_input_boundary_modules_import_nothing_heavy(env: dict[str, str], tmp_path: Path) -> None:
    modules = [
        "schemas.envelope",
        "schemas.payloads",
        "schemas.events",
        "schemas.export",
        "schemas.settings",
        "events.codec",
        "events.routing",
        "events.dead_letter",
        "events.topics",
        "aims.emit",
        "aims.dlq",
        "aims.cli",
        # The approval boundary: the gateway and the CLI's decision path start without Prefect.
        "gateway.app",
        "gateway.slack_socket",
        "flows.approvals.commands",
        "flows.approvals.rules",
        "flows.approvals.messages",
        "connectors.slack",
        "connectors.jira_issues",
    ]
    code = (
        "import importlib, json, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], env=env, cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    loaded = set(json.loads(proc.stdout))
    assert {"schemas", "events", "aims", "pydantic"} <= loaded
    assert not loaded & set(HEAVY)


def test_importtime_of_help_shows_no_prefect(env: dict[str, str], tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "aims", "--help"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0
    imported = {
        line.rsplit("|", 1)[-1].strip().split(".")[0] for line in proc.stderr.splitlines() if "|" in line
    }
    assert "aims" in imported  # the check reads the right output
    assert not imported & set(HEAVY)


def test_no_command_is_a_usage_error(env: dict[str, str], tmp_path: Path) -> None:
    proc = aims([], env, tmp_path)
    assert proc.returncode == 2
    assert "usage: aims" in proc.stderr


# -- emit --dry-run --------------------------------------------------------------------------------


@pytest.mark.parametrize("alias", sorted(VALID))
def test_emit_dry_run_prints_a_valid_event(
    alias: str, env: dict[str, str], tmp_path: Path, broker_trap: socket.socket
) -> None:
    args, event_type, subject = VALID[alias]
    proc = aims(["emit", alias, *args, "--dry-run"], env, tmp_path)
    assert proc.returncode == 0, proc.stderr
    printed = json.loads(proc.stdout)
    event = EVENT_CLASSES[event_type].model_validate(printed)
    assert event.type == event_type
    assert event.subject == subject
    assert event.source == "urn:aims:cli"
    assert event.specversion == "1.0"
    assert event.id and event.time is not None
    assert not connected(broker_trap)


def test_emit_dry_run_honours_flags(env: dict[str, str], tmp_path: Path) -> None:
    proc = aims(
        [
            "emit",
            DATA_CHANGED,
            *DATA_ARGS,
            "-d",
            "row_count=12",
            "--id",
            "fixed-1",
            "--subject",
            "s1",
            "--source",
            "urn:me",
            "--dry-run",
        ],
        env,
        tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    printed = json.loads(proc.stdout)
    assert (printed["id"], printed["subject"], printed["source"]) == ("fixed-1", "s1", "urn:me")
    assert printed["data"]["row_count"] == 12
    assert printed["data"]["version"] == "3"  # stays a string
    assert printed["data"]["location"] == {"kind": "file", "uri": "/data/loans.csv"}


def test_emit_dry_run_from_files(env: dict[str, str], tmp_path: Path) -> None:
    whole = tmp_path / "event.json"
    whole.write_text(
        json.dumps(
            {
                "specversion": "1.0",
                "id": "from-file",
                "source": "urn:file",
                "type": "org.aims.data.changed",
                "data": {
                    "dataset_id": "d",
                    "location": {"url": "sqlite:///r.db", "table": "t"},
                    "version": "1",
                    "change_kind": "updated",
                },
            }
        )
    )
    proc = aims(["emit", "-f", str(whole), "-d", "version=2", "--dry-run"], env, tmp_path)
    assert proc.returncode == 0, proc.stderr
    printed = json.loads(proc.stdout)
    assert printed["id"] == "from-file"
    assert printed["data"]["version"] == "2"  # flags override the file
    assert printed["data"]["location"]["kind"] == "sql"

    data_only = tmp_path / "data.json"
    data_only.write_text(
        json.dumps(
            {"dataset_id": "d", "location": {"uri": "/x.csv"}, "version": "1", "change_kind": "deleted"}
        )
    )
    proc = aims(["emit", "data-changed", "-f", str(data_only), "--dry-run"], env, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["data"]["change_kind"] == "deleted"


# -- emit refusals -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["data-changed", "-d", "dataset_id=loans"], "data.version"),
        (["data-changed", *DATA_ARGS, "-d", "change_kind=renamed"], "data.change_kind"),
        (["data-changed", *DATA_ARGS, "-d", "row_count=-5"], "data.row_count"),
        (["data-changed", *DATA_ARGS, "-d", "colour=blue"], "data.colour"),
        (
            [
                "data-changed",
                *DATA_ARGS,
                "-d",
                "location.url=postgresql://u:pw@h/db",
                "-d",
                "location.table=t",
                "-d",
                "location.kind=sql",
            ],
            "location",
        ),
        (["incident-reported", *INCIDENT_ARGS, "-d", "detected_at=2025-03-01T08:00:00Z"], "detected_at"),
        (["incident-reported", *INCIDENT_ARGS, "-d", "severity=apocalyptic"], "data.severity"),
        (["model-version-registered", *MODEL_ARGS, "-d", "training_datasets=[1]"], "training_datasets"),
        (["data-changed", *DATA_ARGS, "--source", ""], "source"),
        (["data-changed", *DATA_ARGS, "-d", "location={not json"], "location"),
        (["data-changed", "-d", "dataset_id"], "dataset_id"),
        (["no-such-type", *DATA_ARGS], "no-such-type"),
        ([*DATA_ARGS], "TYPE"),
    ],
    ids=[
        "missing",
        "enum",
        "negative",
        "unknown-field",
        "password",
        "detected-before",
        "severity",
        "datasets",
        "source",
        "bad-json",
        "no-equals",
        "unknown-type",
        "no-type",
    ],
)
def test_invalid_emit_exits_2_names_the_field_and_publishes_nothing(
    args: list[str], named: str, env: dict[str, str], tmp_path: Path, broker_trap: socket.socket
) -> None:
    # no --dry-run: the broker is configured, and validation must still stop the command before it
    proc = aims(["emit", *args], env, tmp_path)
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert proc.stderr.startswith("aims: error:")
    assert named in proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stdout == ""
    assert "u:pw@" not in proc.stderr  # a refused password is not echoed
    assert not connected(broker_trap), "the command contacted the broker"


def test_invalid_emit_with_dry_run_exits_2(env: dict[str, str], tmp_path: Path) -> None:
    proc = aims(["emit", "data-changed", *DATA_ARGS, "-d", "change_kind=renamed", "--dry-run"], env, tmp_path)
    assert proc.returncode == 2
    assert "data.change_kind" in proc.stderr
    assert proc.stdout == ""


def test_the_broker_trap_does_see_a_publish(
    env: dict[str, str], tmp_path: Path, broker_trap: socket.socket
) -> None:
    """Control for the test above: a valid emit without --dry-run does connect to the trap."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "aims", "emit", "data-changed", *DATA_ARGS],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        seen = False
        while time.monotonic() < deadline and not seen:
            seen = connected(broker_trap)
            if not seen:
                time.sleep(0.05)
        assert seen, "a real emit never connected: the trap does not prove anything"
    finally:
        proc.kill()
        proc.wait(timeout=10)


# -- schemas export ------------------------------------------------------------------------------


def test_schemas_export_writes_files(env: dict[str, str], tmp_path: Path) -> None:
    out = tmp_path / "contract"
    proc = aims(["schemas", "export", str(out)], env, tmp_path)
    assert proc.returncode == 0, proc.stderr
    listed = [Path(line) for line in proc.stdout.splitlines() if line.strip()]
    expected = {f"{t}.schema.json" for t in EVENT_CLASSES} | {"aims-event.schema.json"}
    assert {p.name for p in listed} == expected
    assert {p.name for p in out.iterdir()} == expected
    for path in listed:
        assert path.is_file()
        assert json.loads(path.read_text())["$id"].startswith("urn:aims:schema:")


def test_schemas_without_action_is_a_usage_error(env: dict[str, str], tmp_path: Path) -> None:
    proc = aims(["schemas"], env, tmp_path)
    assert proc.returncode == 2
    assert "usage:" in proc.stderr


# -- approvals from the command line --------------------------------------------------------------

POLICY = EXAMPLE_POLICY


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["approvals", "approve", "approval-x", "--by", " padded "], "invalid --by"),
        (["approvals", "approve", "approval-x", "--by", "a@b.example", "--reason", ""], "invalid --reason"),
        (["approvals", "reject", "approval-x", "--by", "a@b.example"], "--reason"),
        (["approvals", "approve", "approval-x", "--by", "aisha.khan@northwind.example"], "no approval"),
        (["gateway", "--port", "70000"], "a TCP port is 0..65535"),
    ],
    ids=["by-padded", "empty-reason", "reject-needs-reason", "unknown-approval", "bad-port"],
)
def test_approval_commands_refuse_bad_input_and_publish_nothing(
    argv: list[str], says: str, env: dict[str, str], tmp_path: Path, broker_trap: socket.socket
) -> None:
    env = {**env, "AIMS_POLICY_FILE": str(POLICY)}
    proc = aims(argv, env, tmp_path)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert says in proc.stderr
    assert not connected(broker_trap)
