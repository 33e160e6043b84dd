"""The test session's real servers: a Kafka broker, a Prefect server and the worker; PostgreSQL.

Started once, on first use, in a state folder of its own under `.aims/`.
Each test gets its own topics and consumer group, so tests do not see each other's events.
Nothing here imports Prefect at module level: the SDK must see the session's PREFECT_API_URL first.

PostgreSQL (`postgres`) is a real server started from the installed server binaries
(`infra.postgres`), shared by the register tests and the data-quality tests. Without the binaries
the tests that need it are skipped, and the session's summary says so in plain words; in CI
(AIMS_CI=1) they fail instead, as do the browser tests without Chromium.

The unit tests also run on every core (pytest-xdist, `make unit`): each worker is a session of its own,
so whatever is session-wide here (the PostgreSQL server, the GX engine, `tmp_path`'s base folder) is
per worker. The integration tests share one stack and run in one process: `stack` refuses a worker.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from connectors.register.store import Register
from events.kafka_security import kafka_security_variables
from infra.postgres import PostgresServer, PostgresUnavailable
from schemas.policy import Policy
from tests.resources import example_policy, migrated_register
from tests.support import SessionStack, required_in_ci

REPO = Path(__file__).resolve().parent.parent
POSTGRES_SKIP = "tests on PostgreSQL did not run: "
KAFKA_SECURITY_VARIABLES = kafka_security_variables()


def xdist_worker(config: pytest.Config) -> str | None:
    """The pytest-xdist worker this process is ("gw0", "gw1" …), or None outside one (or without xdist).

    From the worker's own config, not PYTEST_XDIST_WORKER: that variable is inherited by the pytest a
    test starts in a subprocess (tests/suite/test_collection.py), which is no worker.
    """
    workerinput = getattr(config, "workerinput", None)
    return None if workerinput is None else str(workerinput["workerid"])


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "integration" in item.path.parts:
            item.add_marker(pytest.mark.integration)
    # The session stack's tests run first, before any other test has used the Prefect SDK in this
    # process: the SDK keeps the settings it first saw, and a test run earlier without the stack's
    # PREFECT_API_URL left the in-process routers on an ephemeral API (a "stopped" Prefect then
    # stopped nothing). Before the tests mirrored the tree, tests/integration sorted first anyway.
    items.sort(key=lambda item: 0 if "integration" in item.path.parts else 1)


@pytest.fixture(autouse=True)
def no_kafka_security_outside_integration(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Outside the integration tests, no Kafka client security in the environment.

    The session stack exports its SASL_SSL broker's user, password file and CA for the in-process
    routers of the integration tests, which run first: a unit test that reads the settings must see
    a machine without them, as it would when run alone.
    """
    if request.node.get_closest_marker("integration") is None:
        for variable in KAFKA_SECURITY_VARIABLES:
            monkeypatch.delenv(variable, raising=False)


@pytest.fixture(scope="session")
def stack(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SessionStack]:
    # Under pytest-xdist every worker would start a broker, a Prefect server and a worker of its own
    # (two stacks on two cores), and on a fresh clone all of them would resolve the broker's jars into
    # the one `.aims/kafka/libs` at once. The Makefile runs the integration tests without -n.
    worker = xdist_worker(request.config)
    if worker is not None:
        pytest.fail(
            f"the integration tests share one session stack and run in one process, not in pytest-xdist "
            f"worker {worker}: run them without -n (`make integration`, or `pytest -m integration`)",
            pytrace=False,
        )
    # Prefect reads its settings when first imported: imported before the session points them at its
    # server (during collection, by a test module importing it at its top), the in-process routers
    # talk to no server of the session and every event waits on a deployment "not found".
    if "prefect" in sys.modules:
        pytest.fail(
            "Prefect was imported before the session stack set its environment: a test module (or a "
            "module it imports at its top) imports Prefect; import it inside the test instead",
            pytrace=False,
        )
    state = REPO / ".aims" / "test-sessions" / f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
    # Every test's tmp_path lies under the session's base temporary folder: the files data source.
    data_root = tmp_path_factory.getbasetemp()
    session = SessionStack(state, libs_dir=REPO / ".aims" / "kafka" / "libs", data_root=data_root)
    try:
        session.start()
        yield session
    finally:
        session.stop()
    if not os.environ.get("AIMS_KEEP_TEST_STATE"):
        shutil.rmtree(state, ignore_errors=True)


@pytest.fixture
def topics(stack: SessionStack, request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    """Unique topic names and consumer group for one test, created with 4 partitions."""
    tag = f"{request.node.name[:40]}-{uuid.uuid4().hex[:6]}".replace("[", "-").replace("]", "")
    names = {
        "AIMS_EVENTS_TOPIC": f"events.{tag}",
        "AIMS_DEAD_LETTER_TOPIC": f"dlq.{tag}",
        "AIMS_CONSUMER_GROUP": f"router.{tag}",
    }
    stack.create_topics(names)
    yield names


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL server on 127.0.0.1 with trust authentication, for the whole session."""
    # Under the repository, not /tmp: as root the server runs as `postgres`, which cannot enter
    # pytest's private temporary folders.
    state = REPO / ".aims" / "test-sessions" / f"postgres-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
    server = PostgresServer(state, "tests")
    try:
        server.start()
    except PostgresUnavailable as exc:
        if not os.environ.get("AIMS_KEEP_TEST_STATE"):
            shutil.rmtree(state, ignore_errors=True)  # the message holds the server log's last lines
        if required_in_ci():
            pytest.fail(f"PostgreSQL is required in CI (AIMS_CI is set) and did not start: {exc}")
        pytest.skip(f"{POSTGRES_SKIP}{exc}")
    try:
        yield server
    finally:
        server.stop()
        if not os.environ.get("AIMS_KEEP_TEST_STATE"):
            shutil.rmtree(state, ignore_errors=True)


def postgres_admin(server: PostgresServer, sql: str) -> None:
    """Run one statement outside a transaction (CREATE DATABASE, DROP DATABASE)."""
    import psycopg

    with psycopg.connect(
        server.url("psycopg").replace("postgresql+psycopg", "postgresql"), autocommit=True
    ) as conn:
        conn.execute(sql)  # type: ignore[arg-type]


@pytest.fixture
def postgres_database(postgres: PostgresServer, request: pytest.FixtureRequest) -> str:
    """A database of this test's own on the session's server: its SQLAlchemy URL (psycopg, no password)."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    postgres_admin(postgres, f"CREATE DATABASE {name}")
    request.addfinalizer(lambda: postgres_admin(postgres, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
    return postgres.url("psycopg").rsplit("/", 1)[0] + f"/{name}"


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    # From the skip reports, not from a list the fixture fills: under pytest-xdist the fixture runs in
    # a worker and only its reports reach the process that prints the summary.
    reasons: dict[str, None] = {}
    for report in terminalreporter.stats.get("skipped", []):
        longrepr = getattr(report, "longrepr", None)
        if isinstance(longrepr, tuple) and len(longrepr) == 3 and POSTGRES_SKIP in str(longrepr[2]):
            reasons[str(longrepr[2]).split(POSTGRES_SKIP, 1)[1]] = None
    for reason in reasons:
        terminalreporter.write_line(f"NOTE: the tests on PostgreSQL did not run: {reason}", yellow=True)


# -- the register and the policy, shared by every test that needs them -----------------------------


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def register(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Register]:
    """An empty register, migrated to head, on SQLite and on the session's PostgreSQL server.

    A module that needs rows in it overrides `register` with a fixture that takes this one and seeds it.
    """
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
    url: str = request.getfixturevalue("postgres_database")
    return Register(url)


@pytest.fixture
def sqlite_register(tmp_path: Path) -> Iterator[Register]:
    """A migrated SQLite register in the test's state folder, where the CLI and the flows look for it."""
    reg = migrated_register(tmp_path)
    yield reg
    reg.close()


@pytest.fixture(scope="session")
def policy() -> Policy:
    """The example policy (policy/aims-policy.yaml), parsed once for the session."""
    return example_policy()
