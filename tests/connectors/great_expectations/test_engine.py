"""The GX adapter against real CSV and Parquet files and a real SQLite database."""

from __future__ import annotations

import json
import logging
import math
import re
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa
from pydantic import SecretStr

from aims.demo import sample_events
from connectors.great_expectations import DataQualityEngine, DataUnavailable, GxEngine, load_suite
from flows.data_quality.drift import categorical_psi, psi
from schemas.payloads import FileLocation, SqlTableLocation
from schemas.settings import load_settings
from schemas.suites import (
    CategoricalProfile,
    NumericProfile,
    SuiteStatus,
    Verdict,
    dump_suite,
)
from tests.connectors.great_expectations.data import Location, expect, loans, suite, write_csv, write_sqlite
from tests.resources import REPO

# Every check a loans table passes; one of each kind of expectation.
PASSING = suite(
    expect("expect_table_columns_to_match_set", column_set=list(loans(1).columns)),
    expect("expect_table_row_count_to_be_between", min_value=100, max_value=1000),
    expect("expect_column_values_to_not_be_null", column="applicant_id"),
    expect("expect_column_values_to_be_unique", column="applicant_id"),
    expect("expect_column_values_to_be_between", "warning", column="amount", min_value=0, max_value=30_000),
    expect(
        "expect_column_values_to_be_in_set",
        column="purpose",
        value_set=["car", "home", "education", "travel"],
    ),
    expect("expect_column_values_to_not_be_null", "warning", column="score", mostly=0.9),
    expect(
        "expect_column_mean_to_be_between", "warning", column="income", min_value=40_000, max_value=50_000
    ),
)


def test_the_adapter_is_a_data_quality_engine_and_creates_nothing_up_front() -> None:
    adapter: DataQualityEngine = GxEngine()  # checked by mypy
    assert vars(adapter)["_context"] is None


def test_the_example_suite_passes_on_the_demo_dataset(engine: GxEngine, tmp_path: Path) -> None:
    sample_events(tmp_path)
    location = FileLocation(uri=(tmp_path / "loan-applications.csv").as_uri())
    outcome = engine.validate(location, load_suite(REPO / "suites" / "loan-applications.yaml"))
    assert outcome.verdict is Verdict.passed, outcome.failures()
    assert outcome.statistics.evaluated == outcome.statistics.successful == len(outcome.expectations)


def test_a_passing_suite_passes_everywhere(engine: GxEngine, write: Callable[[Any], Location]) -> None:
    location = write(loans())
    outcome = engine.validate(location, PASSING, data_version="v7")
    assert outcome.verdict is Verdict.passed, outcome.failures()
    assert (outcome.dataset, outcome.suite_version, outcome.data_version) == ("loans", "1", "v7")
    assert outcome.statistics.model_dump() == {
        "evaluated": 8,
        "successful": 8,
        "unsuccessful": 0,
        "success_percent": 100.0,
    }
    assert [e.expectation for e in outcome.expectations] == [e.expectation for e in PASSING.expectations]
    mean = outcome.expectations[-1]
    assert mean.observed_value == pytest.approx(loans()["income"].mean())
    scores = outcome.expectations[-2]
    assert (scores.unexpected_count, scores.element_count) == (8, 400)
    assert scores.unexpected_percent == pytest.approx(2.0)
    json.dumps(outcome.model_dump(mode="json"), allow_nan=False)


def test_a_failed_critical_expectation_fails_the_check(
    engine: GxEngine, write: Callable[[Any], Location]
) -> None:
    frame = loans()
    frame.loc[frame.index % 10 == 3, "purpose"] = "crypto"
    frame.loc[5, "applicant_id"] = 6
    outcome = engine.validate(write(frame), PASSING)
    assert outcome.verdict is Verdict.failed
    failed = {e.expectation: e for e in outcome.failures()}
    assert set(failed) == {"expect_column_values_to_be_in_set", "expect_column_values_to_be_unique"}
    in_set = failed["expect_column_values_to_be_in_set"]
    assert (in_set.unexpected_count, in_set.unexpected_sample) == (40, ["crypto"] * 20)
    assert in_set.unexpected_percent == pytest.approx(10.0)
    assert in_set.severity.value == "critical" and in_set.exception is None
    assert sorted(failed["expect_column_values_to_be_unique"].unexpected_sample) == [6, 6]
    assert outcome.statistics.unsuccessful == 2


def test_only_warnings_failing_make_a_warning(engine: GxEngine, write: Callable[[Any], Location]) -> None:
    frame = loans()
    frame.loc[:99, "score"] = None
    frame.loc[0, "amount"] = 1e9
    outcome = engine.validate(write(frame), PASSING)
    assert outcome.verdict is Verdict.warning
    assert [e.kwargs["column"] for e in outcome.failures()] == ["amount", "score"]
    amount = outcome.failures()[0]
    assert amount.unexpected_sample == [1e9] and amount.unexpected_count == 1


def test_a_missing_column_fails_its_expectations_clearly(
    engine: GxEngine, write: Callable[[Any], Location]
) -> None:
    outcome = engine.validate(write(loans().drop(columns=["purpose"])), PASSING)
    assert outcome.verdict is Verdict.failed
    failed = {e.expectation: e for e in outcome.failures()}
    assert set(failed) == {"expect_table_columns_to_match_set", "expect_column_values_to_be_in_set"}
    message = failed["expect_column_values_to_be_in_set"].exception
    assert message is not None and message.startswith("column 'purpose' is not in the data (its columns: ")
    assert failed["expect_table_columns_to_match_set"].exception is None
    assert "purpose" not in failed["expect_table_columns_to_match_set"].observed_value


def test_what_gx_cannot_evaluate_fails_that_expectation_only(engine: GxEngine, tmp_path: Path) -> None:
    checks = suite(
        expect("expect_column_values_to_not_be_null", column="applicant_id"),
        expect("expect_column_values_to_be_between", "warning", column="purpose", min_value=0, max_value=1),
        expect("expect_column_values_to_not_be_null", column="ghost"),
        expect("expect_column_values_to_be_of_type", "warning", column="amount", type_="no_such_type"),
    )
    outcome = engine.validate(write_csv(loans(), tmp_path / "loans.csv"), checks)
    assert [e.success for e in outcome.expectations] == [True, False, False, False]
    assert outcome.expectations[1].exception == (
        "Column values, min_value, and max_value must either be None or of the same type."
    )
    assert "'ghost' is not in the data" in (outcome.expectations[2].exception or "")
    assert (outcome.expectations[3].observed_value, outcome.expectations[3].exception) == ("float64", None)


def test_a_suite_built_in_code_with_kwargs_gx_refuses_fails_that_entry(
    engine: GxEngine, tmp_path: Path
) -> None:
    checks = suite(
        expect("expect_column_values_to_not_be_null", column="applicant_id"),
        expect("expect_column_values_to_not_be_null", "warning", colum="applicant_id"),
        expect("expect_no_such_thing", "warning", column="applicant_id"),
    )
    outcome = engine.validate(write_csv(loans(), tmp_path / "loans.csv"), checks)
    assert [e.success for e in outcome.expectations] == [True, False, False]
    assert outcome.verdict is Verdict.warning
    assert all((e.exception or "").startswith("GX refused the expectation") for e in outcome.expectations[1:])


def test_values_are_json_safe(engine: GxEngine, tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "when": pd.to_datetime(["2024-01-01", "2024-02-30", "2024-03-01"], errors="coerce"),
            "x": [1.5, float("nan"), float("inf")],
            "text": ["a" * 500, "b", "c"],
        }
    )
    path = tmp_path / "odd.parquet"
    frame.to_parquet(path)
    checks = suite(
        expect("expect_column_values_to_not_be_null", column="when"),
        expect("expect_column_values_to_be_between", column="x", min_value=0, max_value=2),
        expect("expect_column_values_to_be_in_set", column="text", value_set=["b"]),
        expect("expect_column_values_to_be_null", column="when"),
        expect("expect_column_max_to_be_between", column="x", min_value=0, max_value=2),
    )
    outcome = engine.validate(FileLocation(uri=str(path)), checks)
    dumped = json.dumps(outcome.model_dump(mode="json"), allow_nan=False)
    assert "NaN" not in dumped and "Infinity" not in dumped
    assert outcome.expectations[0].unexpected_sample == [None]  # NaT
    text_sample = outcome.expectations[2].unexpected_sample
    assert text_sample == ["a" * 200 + "…", "c"]
    assert outcome.expectations[3].unexpected_sample == ["2024-01-01T00:00:00", "2024-03-01T00:00:00"]
    assert not outcome.expectations[4].success and outcome.expectations[4].observed_value is None  # inf


# -- data that cannot be read -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("missing.csv", None, "file not found; check the location"),
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
            call(FileLocation(uri=path.as_uri()))
        assert caught.value.location == str(path) and reason in caught.value.reason
        assert not caught.value.retryable


def test_remote_uris_are_refused(engine: GxEngine) -> None:
    with pytest.raises(DataUnavailable, match="give a local path or a file:// URI"):
        engine.profile(FileLocation(uri="s3://bucket/loans.csv"))
    with pytest.raises(DataUnavailable, match="names another host"):
        engine.profile(FileLocation(uri="file://fileserver/loans.csv"))


def test_unreachable_tables_raise_data_unavailable(engine: GxEngine, tmp_path: Path) -> None:
    location = write_sqlite(loans(), tmp_path / "loans.db")
    with pytest.raises(DataUnavailable, match="no such table; check the table name"):
        engine.validate(location.model_copy(update={"table": "loan"}), PASSING)
    with pytest.raises(DataUnavailable, match=r"the SQLite database file .*nowhere.db does not exist"):
        engine.profile(SqlTableLocation(url=f"sqlite:///{tmp_path / 'nowhere.db'}", table="loans"))
    assert not (tmp_path / "nowhere.db").exists()
    with pytest.raises(DataUnavailable, match="install the database driver"):
        engine.profile(SqlTableLocation(url="nosuchdialect://host/db", table="loans"))


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
        engine.validate(SqlTableLocation(url=url, table="loans"), PASSING)
    assert reason in caught.value.reason and not caught.value.retryable


def test_a_server_that_is_down_is_retryable(engine: GxEngine) -> None:
    with pytest.raises(DataUnavailable) as caught:
        engine.profile(SqlTableLocation(url="postgresql+psycopg://aims@127.0.0.1:1/loans", table="loans"))
    assert caught.value.retryable and "check that it is up" in caught.value.reason


def test_the_password_comes_from_the_environment_and_never_shows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "s3cr/t@pa$$"
    monkeypatch.setenv("AIMS_DQ_PASSWORD", secret)
    location = SqlTableLocation(url="postgresql+psycopg://aims@127.0.0.1:1/register", table="loans")
    with caplog.at_level(logging.DEBUG), pytest.raises(DataUnavailable) as caught:
        GxEngine(password=load_settings().dq_password).profile(location)
    assert caught.value.retryable
    assert "postgresql+psycopg://aims:***@127.0.0.1:1/register" in str(caught.value)
    assert "AIMS_DQ_PASSWORD" in caught.value.reason
    seen = str(caught.value) + caplog.text
    assert secret not in seen and "s3cr%2Ft" not in seen
    # an explicit password wins over the environment
    with pytest.raises(DataUnavailable) as caught:
        GxEngine(password=SecretStr("other")).profile(location)
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
    location = SqlTableLocation(url=postgres_database, table="public.loans")
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
            engine.validate(SqlTableLocation(url=url, table="loans"), PASSING)
        assert reason in caught.value.reason and not caught.value.retryable
    with pytest.raises(DataUnavailable, match="no such table") as caught:
        engine.validate(location.model_copy(update={"table": "public.loan"}), PASSING)
    assert not caught.value.retryable


# -- baselines ----------------------------------------------------------------------------------------


def test_a_baseline_passes_on_its_data_and_fails_on_a_corrupted_copy(
    engine: GxEngine, write: Callable[[Any], Location], tmp_path: Path
) -> None:
    frame = loans()
    base = engine.baseline(write(frame), dataset="loans")
    assert base.status is SuiteStatus.baseline and base.dataset == "loans" and base.version == "1"
    kinds = {(e.expectation, e.kwargs.get("column")): e for e in base.expectations}
    assert kinds["expect_table_columns_to_match_set", None].severity.value == "critical"
    assert kinds["expect_table_columns_to_match_set", None].kwargs["column_set"] == list(frame.columns)
    assert {
        e.severity.value for e in base.expectations if e.expectation != "expect_table_columns_to_match_set"
    } == {"warning"}
    assert kinds["expect_table_row_count_to_be_between", None].kwargs == {"min_value": 200, "max_value": 800}
    assert ("expect_column_values_to_not_be_null", "score") not in kinds  # it has nulls
    assert kinds["expect_column_values_to_be_between", "income"].kwargs == {
        "column": "income",
        "min_value": 14000,
        "max_value": 81000,
    }
    assert kinds["expect_column_values_to_be_between", "amount"].kwargs["min_value"] == 0  # never negative
    purposes = kinds["expect_column_values_to_be_in_set", "purpose"].kwargs["value_set"]
    assert isinstance(purposes, list) and set(purposes) == {"car", "home", "education", "travel"}
    assert kinds["expect_column_values_to_be_in_set", "approved"].kwargs["value_set"] == [True, False]
    assert ("expect_column_values_to_be_in_set", "reference") not in kinds  # 400 distinct values

    path = tmp_path / "suites" / "loans.yaml"
    dump_suite(base, path)
    reloaded = load_suite(path)
    assert reloaded == base
    assert engine.validate(write(frame), reloaded).verdict is Verdict.passed

    drifted = frame.copy()
    drifted.loc[:9, "purpose"] = "crypto"
    drifted.loc[10, "income"] = 10**7
    warned = engine.validate(write(drifted), reloaded)
    assert warned.verdict is Verdict.warning
    assert {e.kwargs.get("column") for e in warned.failures()} == {"purpose", "income"}
    broken = engine.validate(write(drifted.drop(columns=["approved"])), reloaded)
    assert broken.verdict is Verdict.failed


# -- profiles -----------------------------------------------------------------------------------------


def test_a_profile_is_the_same_from_csv_and_from_sqlite(engine: GxEngine, tmp_path: Path) -> None:
    frame = loans(1234)
    from_csv = engine.profile(write_csv(frame, tmp_path / "loans.csv"))
    from_sql = engine.profile(write_sqlite(frame, tmp_path / "loans.db"))
    assert from_csv.rows == from_sql.rows == 1234
    assert list(from_csv.columns) == list(from_sql.columns) == list(frame.columns)
    for name, csv_column in from_csv.columns.items():
        sql_column = from_sql.columns[name]
        assert csv_column.kind == sql_column.kind, name
        if isinstance(csv_column, NumericProfile) and isinstance(sql_column, NumericProfile):
            assert csv_column.mean == pytest.approx(sql_column.mean, rel=1e-12)
            for field in ("count", "nulls", "min", "max", "edges", "counts"):
                assert getattr(csv_column, field) == pytest.approx(getattr(sql_column, field)), (name, field)
            assert flat(csv_column.quantiles) == pytest.approx(flat(sql_column.quantiles)), name
        else:
            assert csv_column == sql_column
    json.dumps(from_csv.model_dump(mode="json"), allow_nan=False)


def flat(pairs: list[tuple[float, float]]) -> list[float]:
    return [x for pair in pairs for x in pair]


def test_profile_contents(engine: GxEngine, tmp_path: Path) -> None:
    frame = loans(1000)
    profile = engine.profile(write_csv(frame, tmp_path / "loans.csv"))
    score = profile.columns["score"]
    assert isinstance(score, NumericProfile)
    assert (score.count, score.nulls) == (980, 20)
    scores = frame["score"].dropna()
    assert (score.min, score.max, score.mean) == pytest.approx((scores.min(), scores.max(), scores.mean()))
    assert [p for p, _ in score.quantiles] == pytest.approx([i / 100 for i in range(101)])
    assert [v for _, v in score.quantiles] == pytest.approx(
        list(scores.quantile([i / 100 for i in range(101)]))
    )
    assert score.edges == pytest.approx(list(scores.quantile([i / 10 for i in range(1, 10)])))
    assert len(score.counts) == 10 and sum(score.counts) == 980
    assert max(score.counts) - min(score.counts) <= 3  # decile bins hold a tenth each
    purpose = profile.columns["purpose"]
    assert isinstance(purpose, CategoricalProfile)
    assert purpose.frequencies == {"car": 250, "education": 250, "home": 250, "travel": 250}
    reference = profile.columns["reference"]
    assert isinstance(reference, CategoricalProfile)
    assert (reference.distinct, len(reference.frequencies), reference.other) == (1000, 50, 950)
    assert list(reference.frequencies)[:2] == ["ref-00000", "ref-00001"]  # ties go by value
    approved = profile.columns["approved"]
    assert isinstance(approved, CategoricalProfile) and approved.frequencies == {"True": 666, "False": 334}


def test_a_profile_on_reference_edges_measures_drift(engine: GxEngine, tmp_path: Path) -> None:
    frame = loans(2000)
    reference = engine.profile(write_csv(frame, tmp_path / "ref.csv"), columns=["amount", "purpose"])
    assert list(reference.columns) == ["amount", "purpose"]
    edges = {n: c.edges for n, c in reference.columns.items() if isinstance(c, NumericProfile)}
    same = engine.profile(
        write_sqlite(frame, tmp_path / "same.db"), columns=["amount", "purpose"], edges=edges
    )
    shifted_frame = frame.assign(amount=frame["amount"] * 1.3, purpose=["car"] * 1500 + ["home"] * 500)
    shifted = engine.profile(write_csv(shifted_frame, tmp_path / "shifted.csv"), edges=edges)
    ref_amount, same_amount, shifted_amount = (p.columns["amount"] for p in (reference, same, shifted))
    assert isinstance(ref_amount, NumericProfile) and isinstance(same_amount, NumericProfile)
    assert isinstance(shifted_amount, NumericProfile)
    assert same_amount.edges == ref_amount.edges == shifted_amount.edges
    assert psi(ref_amount.counts, same_amount.counts) == pytest.approx(0.0)
    assert psi(ref_amount.counts, shifted_amount.counts) > 0.25
    ref_purpose, shifted_purpose = reference.columns["purpose"], shifted.columns["purpose"]
    assert isinstance(ref_purpose, CategoricalProfile) and isinstance(shifted_purpose, CategoricalProfile)
    assert categorical_psi(ref_purpose.frequencies, shifted_purpose.frequencies) > 0.25


def test_an_empty_table_profiles_and_baselines(engine: GxEngine, tmp_path: Path) -> None:
    db = tmp_path / "empty.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE t (id INTEGER, name TEXT)")
    location = SqlTableLocation(url=f"sqlite:///{db}", table="t")
    profile = engine.profile(location)
    assert profile.rows == 0
    ids = profile.columns["id"]
    assert isinstance(ids, NumericProfile) and (ids.count, ids.quantiles, ids.counts) == (0, [], [0])
    base = engine.baseline(location)
    assert base.dataset == "t" and len(base.expectations) == 2
    assert engine.validate(location, base).verdict is Verdict.passed


# -- Data Docs ----------------------------------------------------------------------------------------


def test_data_docs_show_the_results_given(
    engine: GxEngine, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    location = write_csv(loans(), tmp_path / "loans.csv")
    frame = loans().drop(columns=["purpose"])
    frame.loc[:30, "score"] = None
    passed = engine.validate(location, PASSING, data_version="v1")
    failed = engine.validate(write_csv(frame, tmp_path / "bad.csv"), PASSING, data_version="v2")
    site = tmp_path / "state" / "data-docs"
    with caplog.at_level(logging.WARNING):
        index = engine.build_data_docs(site, [passed, failed])
    assert index == site.resolve() / "index.html" and index.is_file()
    assert "data docs rendering" not in caplog.text.lower()
    pages = sorted(site.glob("validations/**/*.html"))
    assert len(pages) == 2
    text = index.read_text()
    assert "'Failed'" in text and "'Success'" in text
    failed_page = next(p for p in pages if "/v2/" in p.as_posix()).read_text()
    assert (
        "column &#39;purpose&#39; is not in the data" in failed_page
        or "column 'purpose' is not in" in failed_page
    )
    # the site shows exactly the results given: pages of results not given again are removed
    engine.build_data_docs(site, [failed])
    assert len(list(site.glob("validations/**/*.html"))) == 1
    assert math.isfinite(passed.duration_seconds)
