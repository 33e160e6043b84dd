"""The attacks of issue 19, each through the check's own step (`run_expectations`), as an event reaches it.

1. A data-changed event named a URL: the data-quality password went to whatever host it named.
2. An event named a local file or SQLite database: its values went into the profile and a drafted
   suite (the register, `suites/`), and its size and SHA-256 onto the topic.
3. A 97 KB .csv.gz expanded to gigabytes in memory.
Each test failed before the fix; the policy is handed in lazily, so the old code (which read no
policy) ran the same test.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import socket
import sqlite3
import struct
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import SecretStr

from connectors.register.store import Register
from schemas.settings import AimsSettings

REPO = Path(__file__).resolve().parents[3]
PASSWORD = "hunter2-dq-secret"
SECRET = "sk-live-4242"


def policy(sources: dict[str, Any]) -> Any:
    from schemas.policy import Policy

    raw = yaml.safe_load((REPO / "policy" / "aims-policy.yaml").read_text())
    raw["data_sources"] = sources
    return Policy.model_validate(raw)


def event(**named: Any) -> Any:
    from schemas.events import DataChangedEvent

    data = {"dataset_id": "probe", "version": "1", "change_kind": "created", **named}
    return DataChangedEvent.model_validate(
        {"specversion": "1.0", "id": "attack-1", "source": "urn:attacker", "data": data}
    )


@pytest.fixture
def check(tmp_path: Path) -> Iterator[Any]:
    """`run_expectations` of the flow in a runtime whose policy declares one files source, `lake`."""
    from flows.data_quality.check_data_quality import run_expectations
    from flows.runtime import Runtime, use

    (tmp_path / "lake").mkdir()
    settings = AimsSettings(
        state_dir=tmp_path / "state", suites_dir=tmp_path / "suites", dq_password=SecretStr(PASSWORD)
    )
    (tmp_path / "suites").mkdir()
    register = Register.for_state(tmp_path / "state")
    register.migrate()
    sources = {"lake": {"kind": "files", "roots": [str(tmp_path / "lake")]}}
    try:
        with use(Runtime(settings=settings, register=register, load_policy=lambda: policy(sources))):
            yield run_expectations.fn
    finally:
        register.close()


def _secret_rows(n: int = 6) -> list[tuple[str, str]]:
    return [("svc", SECRET)] * n


def test_an_event_url_gets_no_connection_and_no_password(check: Any, tmp_path: Path) -> None:
    result: dict[str, Any] = {}
    with postgres_listener() as heard:
        port = heard["port"]
        url = f"postgresql+psycopg://dq_reader@127.0.0.1:{port}/register"
        # Before the fix the check connected and then failed (a retryable error): what matters is
        # what the listener heard, so that failure is not the test's.
        with contextlib.suppress(Exception):
            result = check(event(location={"url": url, "table": "users"}))
    assert PASSWORD.encode() not in heard["bytes"], f"the listener heard the password: {heard['bytes']!r}"
    assert heard["connections"] == 0, f"the check connected to the event's host: {heard['bytes']!r}"
    named = check(event(source="internal-db", table="users"))
    assert "is in no data source of the policy" in result.get("unavailable", ""), result
    assert "no data source 'internal-db' in the policy" in named["unavailable"]
    assert PASSWORD not in repr(result) + repr(named)


@pytest.mark.parametrize("kind", ["csv", "sqlite"])
def test_a_local_file_or_database_outside_every_root_is_not_read(
    check: Any, tmp_path: Path, kind: str
) -> None:
    outside = tmp_path / "private"
    outside.mkdir()
    if kind == "csv":
        path = outside / "keys.csv"
        path.write_text("owner,key\n" + "".join(f"{o},{k}\n" for o, k in _secret_rows()))
        result = check(event(location={"uri": path.as_uri()}))
    else:
        path = outside / "app.sqlite"
        with sqlite3.connect(path) as db:
            db.execute("CREATE TABLE keys (owner TEXT, key TEXT)")
            db.executemany("INSERT INTO keys VALUES (?, ?)", _secret_rows())
        result = check(event(location={"url": f"sqlite:///{path}", "table": "keys"}))
    assert "is in no data source of the policy" in result.get("unavailable", ""), result
    assert SECRET not in repr(result)  # no profile, no drafted suite
    assert list((tmp_path / "suites").iterdir()) == []  # nothing written to suites/
    assert "sha256" not in repr(result) and "fingerprint" not in result  # no size or hash oracle


def test_a_symlink_out_of_the_root_is_not_followed(check: Any, tmp_path: Path) -> None:
    secret = tmp_path / "keys.csv"
    secret.write_text("owner,key\n" + "".join(f"{o},{k}\n" for o, k in _secret_rows()))
    link = tmp_path / "lake" / "loans.csv"
    link.symlink_to(secret)
    old_form = check(event(location={"uri": str(link)}))
    assert "leads outside the root of data source 'lake'" in old_form.get("unavailable", ""), old_form
    assert SECRET not in repr(old_form) and list((tmp_path / "suites").iterdir()) == []


def test_a_symlink_named_in_the_new_form_is_not_followed(check: Any, tmp_path: Path) -> None:
    (tmp_path / "keys.csv").write_text("owner,key\nsvc,x\n")
    (tmp_path / "lake" / "up").symlink_to(tmp_path)
    result = check(event(source="lake", path="up/keys.csv"))
    assert "leads outside the root" in result["unavailable"] and "fingerprint" not in result


def test_a_file_inside_the_root_is_read_once_and_fingerprinted(check: Any, tmp_path: Path) -> None:
    import hashlib

    data = tmp_path / "lake" / "loans.csv"
    data.write_text("id,amount\n" + "".join(f"{i},{i * 10}\n" for i in range(50)))
    result = check(event(source="lake", path="loans.csv"))
    assert result["baseline"] and result["outcome"].statistics.evaluated > 0
    assert result["fingerprint"]["sha256"] == hashlib.sha256(data.read_bytes()).hexdigest()
    assert result["fingerprint"]["bytes"] == data.stat().st_size
    assert result["named"] == {"source": "lake", "path": "loans.csv"}


# -- the gzip bomb: peak memory of a check in a process of its own ------------------------------

BOMB_CHECK = """
import json, resource, sys
from pathlib import Path
import great_expectations, pandas, prefect  # loaded first: measured is the check, not its imports
from connectors.register.store import Register
from flows.data_quality.check_data_quality import run_expectations
from flows.runtime import Runtime, use
from schemas.events import DataChangedEvent
from schemas.settings import AimsSettings

state, suites, policy_file, bomb = (Path(a) for a in sys.argv[1:5])
def policy():
    from schemas.policy_file import load_policy
    return load_policy(policy_file)
register = Register.for_state(state)
register.migrate()
settings = AimsSettings(state_dir=state, suites_dir=suites)
event = DataChangedEvent.model_validate({"specversion": "1.0", "id": "bomb", "source": "urn:attacker",
    "data": {"dataset_id": "bomb", "version": "1", "change_kind": "created",
             "location": {"uri": str(bomb)}}})
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
with use(Runtime(settings=settings, register=register, load_policy=policy)):
    result = run_expectations.fn(event)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"grown_kib": after - before, "unavailable": result.get("unavailable")}))
"""


def test_a_gzip_bomb_stops_at_the_decompressed_cap_with_memory_bounded(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    lake.mkdir()
    bomb = lake / "loans.csv.gz"
    with gzip.open(bomb, "wb", compresslevel=9) as fh:  # 60 MB of CSV (10 M rows) in well under 1 MB
        fh.write(b"a,b,c\n")
        block = b"1,2,3\n" * 100_000
        for _ in range(100):
            fh.write(block)
    assert bomb.stat().st_size < 1_000_000
    raw = yaml.safe_load((REPO / "policy" / "aims-policy.yaml").read_text())
    raw["data_sources"] = {
        "lake": {"kind": "files", "roots": [str(lake)], "limits": {"max_decompressed_bytes": 4_000_000}}
    }
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text(yaml.safe_dump(raw))
    (tmp_path / "suites").mkdir()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    args = [str(tmp_path / "state"), str(tmp_path / "suites"), str(policy_file), str(bomb)]
    done = subprocess.run(
        [sys.executable, "-c", BOMB_CHECK, *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    measured = json.loads(done.stdout.strip().splitlines()[-1])
    assert "too large" in (measured["unavailable"] or ""), measured
    assert "max_decompressed_bytes" in measured["unavailable"]
    # 10 M rows parsed take hundreds of MiB; stopping at the 4 MB cap takes a few.
    assert measured["grown_kib"] < 64 * 1024, measured


# -- a listener on loopback that speaks just enough PostgreSQL to be sent a password ---------------


@contextlib.contextmanager
def postgres_listener() -> Iterator[dict[str, Any]]:
    """A plain socket server: declines TLS, asks for a cleartext password, keeps every byte it hears."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    heard: dict[str, Any] = {"port": server.getsockname()[1], "connections": 0, "bytes": b""}
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            heard["connections"] += 1
            with conn:
                conn.settimeout(2)
                try:
                    while True:
                        chunk = conn.recv(4096)
                        if not chunk:
                            break
                        heard["bytes"] += chunk
                        if chunk[4:8] in (struct.pack("!I", 80877103), struct.pack("!I", 80877104)):
                            conn.sendall(b"N")  # no TLS, no GSS: go on in clear text
                        elif chunk[4:8] == struct.pack("!I", 196608):  # the startup message
                            conn.sendall(b"R" + struct.pack("!II", 8, 3))  # AuthenticationCleartextPassword
                        else:
                            break
                except OSError:
                    pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield heard
    finally:
        stop.set()
        thread.join()
        server.close()
