"""The register under test, on SQLite and on a throwaway PostgreSQL server.

PostgreSQL tests run against a real server started once per session from the installed server
binaries (`infra.postgres`); each test gets a database of its own. Without the binaries they are
skipped, and the session's summary says so in plain words.
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from connectors.register.store import Register
from infra.postgres import PostgresServer, PostgresUnavailable

REPO = Path(__file__).resolve().parents[2]
POSTGRES_SKIPPED: list[str] = []


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    # Under the repository, not /tmp: as root the server runs as `postgres`, which cannot enter
    # pytest's private temporary folders.
    state = REPO / ".aims" / "test-sessions" / f"register-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
    server = PostgresServer(state, "register")
    try:
        server.start()
    except PostgresUnavailable as exc:
        POSTGRES_SKIPPED.append(str(exc))
        pytest.skip(f"register tests on PostgreSQL did not run: {exc}")
    try:
        yield server
    finally:
        server.stop()
        if not os.environ.get("AIMS_KEEP_TEST_STATE"):
            shutil.rmtree(state, ignore_errors=True)


def _admin(server: PostgresServer, sql: str) -> None:
    import psycopg

    with psycopg.connect(
        server.url("psycopg").replace("postgresql+psycopg", "postgresql"), autocommit=True
    ) as conn:
        conn.execute(sql)  # type: ignore[arg-type]


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def register(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Register]:
    """An empty register, migrated to head."""
    reg = empty_register(request, tmp_path)
    reg.migrate()
    yield reg
    reg.close()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def blank(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Register]:
    """An empty database with no schema at all."""
    reg = empty_register(request, tmp_path)
    yield reg
    reg.close()


def empty_register(request: pytest.FixtureRequest, tmp_path: Path) -> Register:
    if request.param == "sqlite":
        return Register.for_state(tmp_path)
    server: PostgresServer = request.getfixturevalue("postgres")
    name = f"reg_{uuid.uuid4().hex[:12]}"
    _admin(server, f"CREATE DATABASE {name}")
    request.addfinalizer(lambda: _admin(server, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
    return Register(server.url("psycopg").rsplit("/", 1)[0] + f"/{name}")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for reason in POSTGRES_SKIPPED:
        terminalreporter.write_line(
            f"NOTE: the register tests on PostgreSQL did not run: {reason}", yellow=True
        )
