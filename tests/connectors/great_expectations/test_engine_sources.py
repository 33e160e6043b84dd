"""The GX adapter's sources: data that cannot be read, and SQL checks that run inside the database."""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa
from pydantic import SecretStr

from connectors.great_expectations import DataUnavailable, GxEngine
from connectors.great_expectations.common import FileTarget, SqlTarget
from schemas.settings import load_settings
from schemas.suites import NumericProfile, Verdict
from tests.connectors.great_expectations.data import expect, loans, suite, write_sqlite
from tests.connectors.great_expectations.loan_suites import PASSING

# -- data that cannot be read -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("missing.csv", None, "file not found; check the path"),
        ("loans.txt", "a,b\n1,2\n", "unsupported file type (.txt): publish CSV"),
        ("empty.csv", "", "the CSV file is empty"),
        ("broken.csv", 'a,b\n1,"2\n', "cannot be read as CSV"),
        ("broken.parquet", "PAR1 not really", "cannot be read as Parquet"),
        ("folder.csv", "dir", "not a file"),
    ],
)
def test_unreadable_files_raise_data_unavailable(
    engine: GxEngine, tmp_path: Path, name: str, content: str | None, reason: str
) -> None:
    path = tmp_path / name
    if content == "dir":
        path.mkdir()
    elif content is not None:
        path.write_text(content)
    for call in (
        lambda loc: engine.validate(loc, PASSING),
        engine.baseline,
        engine.profile,
    ):
        with pytest.raises(DataUnavailable) as caught:
            call(FileTarget(path))
        assert caught.value.location == str(path) and reason in caught.value.reason
        assert not caught.value.retryable


def test_unreachable_tables_raise_data_unavailable(engine: GxEngine, tmp_path: Path) -> None:
    location = write_sqlite(loans(), tmp_path / "loans.db")
    with pytest.raises(DataUnavailable, match="no such table; check the table name"):
        engine.validate(dataclasses.replace(location, table="loan"), PASSING)
    with pytest.raises(DataUnavailable, match=r"the SQLite database file .*nowhere.db does not exist"):
        engine.profile(SqlTarget(url=f"sqlite:///{tmp_path / 'nowhere.db'}", table="loans"))
    assert not (tmp_path / "nowhere.db").exists()
    with pytest.raises(DataUnavailable, match="install the database driver"):
        engine.profile(SqlTarget(url="nosuchdialect://host/db", table="loans"))


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("postgresql+psycopg://aims@no-such-host.invalid/loans", "the host no-such-host.invalid is unknown"),
        ("postgresql+nosuchdriver://aims@127.0.0.1/loans", "install the database driver"),
        ("mysql+nosuchdriver://aims@127.0.0.1/loans", "install the database driver"),
    ],
)
def test_a_url_that_can_never_work_is_not_retryable(engine: GxEngine, url: str, reason: str) -> None:
    with pytest.raises(DataUnavailable) as caught:
        engine.validate(SqlTarget(url=url, table="loans"), PASSING)
    assert reason in caught.value.reason and not caught.value.retryable


def test_a_server_that_is_down_is_retryable(engine: GxEngine) -> None:
    with pytest.raises(DataUnavailable) as caught:
        engine.profile(SqlTarget(url="postgresql+psycopg://aims@127.0.0.1:1/loans", table="loans"))
    assert caught.value.retryable and "check that it is up" in caught.value.reason


def test_the_password_comes_from_the_settings_with_its_source_and_never_shows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "s3cr/t@pa$$"
    monkeypatch.setenv("AIMS_DQ_PASSWORD", secret)
    url = "postgresql+psycopg://aims@127.0.0.1:1/register"
    location = SqlTarget(url=url, table="loans", password=load_settings().dq_password)
    with caplog.at_level(logging.DEBUG), pytest.raises(DataUnavailable) as caught:
        GxEngine().profile(location)
    assert caught.value.retryable
    assert "postgresql+psycopg://aims:***@127.0.0.1:1/register" in str(caught.value)
    assert "AIMS_DQ_PASSWORD" in caught.value.reason
    seen = str(caught.value) + caplog.text
    assert secret not in seen and "s3cr%2Ft" not in seen
    # the engine holds no password of its own: a target without one gets none
    with pytest.raises(DataUnavailable) as caught:
        GxEngine().profile(SqlTarget(url=url, table="loans", password=SecretStr("other")))
    assert "other" not in str(caught.value) and ":***@" in str(caught.value)
    # SQLite has no passwords: its URLs are left alone
    sqlite = write_sqlite(loans(), tmp_path / "loans.db")
    assert GxEngine().validate(sqlite, PASSING).verdict is Verdict.passed


# -- SQL runs in the database -------------------------------------------------------------------------


@pytest.fixture
def statements() -> Iterator[list[str]]:
    """Every SQL statement any SQLAlchemy engine sends while the test runs."""
    seen: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(" ".join(statement.split()))

    sa.event.listen(sa.Engine, "before_cursor_execute", record)
    yield seen
    sa.event.remove(sa.Engine, "before_cursor_execute", record)


def _reads_rows(statement: str) -> bool:
    """A statement that could return the table's rows: a SELECT with no aggregate, grouping or limit."""
    if not statement.upper().startswith("SELECT") or "sqlite_master" in statement:
        return False
    bounded = re.search(r"\b(count|sum|avg|min|max)\(|GROUP BY|LIMIT|\.rn IN \(", statement, re.IGNORECASE)
    return bounded is None


def test_sql_checks_run_in_the_database(
    engine: GxEngine, tmp_path: Path, statements: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    location = write_sqlite(loans(3000), tmp_path / "loans.db")

    def no_pandas(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the table was loaded into pandas")

    for name in ("read_sql", "read_sql_query", "read_sql_table"):
        monkeypatch.setattr(pd, name, no_pandas)
    checks = PASSING.model_copy(
        update={
            "expectations": [
                *PASSING.expectations[2:],
                *suite(expect("expect_column_values_to_be_unique", column="purpose")).expectations,
            ]
        }
    )
    outcome = engine.validate(location, checks)
    assert outcome.engine == "SqliteExecutionEngine"
    import great_expectations.execution_engine as gx_engines
    from great_expectations.execution_engine import SqlAlchemyExecutionEngine

    assert issubclass(
        getattr(gx_engines, outcome.engine, SqlAlchemyExecutionEngine), SqlAlchemyExecutionEngine
    )
    unique = outcome.expectations[-1]
    assert not unique.success and unique.unexpected_count == 3000 and len(unique.unexpected_sample) == 20
    engine.profile(location)
    engine.baseline(location)
    assert _reads_rows("SELECT loans.income, loans.amount FROM loans")  # what a full load would send
    on_table = [s for s in statements if " loans" in s]
    assert on_table and not [s for s in on_table if _reads_rows(s)]
    assert any("row_number() OVER" in s for s in on_table)


@pytest.mark.integration
def test_postgresql_checks_run_in_the_server_and_a_wrong_database_or_user_is_a_finding(
    engine: GxEngine, postgres_database: str, statements: list[str]
) -> None:
    db = sa.create_engine(postgres_database, poolclass=sa.NullPool)
    try:
        loans().to_sql("loans", db, index=False)
    finally:
        db.dispose()
    location = SqlTarget(url=postgres_database, table="public.loans")
    outcome = engine.validate(location, PASSING)
    assert outcome.verdict is Verdict.passed, [e for e in outcome.expectations if not e.success]
    assert outcome.engine == "SqlAlchemyExecutionEngine"
    worse = suite(expect("expect_column_values_to_be_unique", column="purpose"))
    unique = engine.validate(location, worse).expectations[0]
    assert not unique.success and unique.unexpected_count == 400 and len(unique.unexpected_sample) == 20
    profile = engine.profile(location)
    assert profile.rows == 400 and isinstance(profile.columns["income"], NumericProfile)
    on_table = [s for s in statements if "loans" in s and "pg_" not in s and "information_schema" not in s]
    assert on_table and not [s for s in on_table if _reads_rows(s)]
    server, _, name = postgres_database.rpartition("/")
    user = sa.make_url(postgres_database).username
    for url, reason in (
        (f"{server}/{name}_missing", "the database does not exist; fix the database name in the URL"),
        (postgres_database.replace(f"//{user}@", "//nobody@"), "fix the user name in the URL"),
    ):
        with pytest.raises(DataUnavailable) as caught:
            engine.validate(SqlTarget(url=url, table="loans"), PASSING)
        assert reason in caught.value.reason and not caught.value.retryable
    with pytest.raises(DataUnavailable, match="no such table") as caught:
        engine.validate(dataclasses.replace(location, table="public.loan"), PASSING)
    assert not caught.value.retryable
