"""check-data-quality on the real stack: pass, critical fail, drift, warning-only, baseline, bad input,
and the consequences (nonconformity, reassessment requests) exactly once per failing version.

Data lives in CSV and Parquet files, a SQLite database and the session's PostgreSQL server (trust
authentication on 127.0.0.1: each URL a SQL data source of the session's policy, no AIMS_DQ_PASSWORD).
Independent datasets go through one router together (`run_rounds`) to keep the suite affordable.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import uuid
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import yaml

from schemas.events import DataChangedEvent
from schemas.settings import AimsSettings
from tests.integration.datasets import (
    changed,
    loan_frame,
    named,
    own_suite,
    trained_on,
    write_loans,
    write_table,
)
from tests.support import REPO, SessionStack

DEFAULT_TOPIC = AimsSettings().events_topic


def outcome_events(stack: SessionStack, prefix: str, expected: int) -> list[dict]:  # type: ignore[type-arg]
    records = stack.read_matching(
        DEFAULT_TOPIC, lambda r: bool(r.value) and prefix.encode() in r.value, expected
    )
    return [json.loads(r.value) for r in records]


def run_all(stack: SessionStack, topics: dict[str, str], events: list[DataChangedEvent]) -> None:
    publisher = stack.publisher(topics["AIMS_EVENTS_TOPIC"])
    with stack.router(topics):
        for event in events:
            publisher.publish(event)
            # One at a time: each version's reference is the last version accepted before it.
            stack.wait_for_runs([event.dedup_key], states={"Completed"}, timeout=240)
    publisher.close()


TERMINAL = {"Completed", "Failed", "Crashed", "Cancelled"}


def run_rounds(stack: SessionStack, topics: dict[str, str], rounds: list[list[DataChangedEvent]]) -> None:
    """Each round's events published together (independent datasets), its runs awaited to the end;
    every run must complete: a bad input is a recorded finding, never a crashed or failed run."""
    publisher = stack.publisher(topics["AIMS_EVENTS_TOPIC"])
    try:
        with stack.router(topics):
            for events in rounds:
                for event in events:
                    publisher.publish(event)
                runs = stack.wait_for_runs([e.dedup_key for e in events], states=TERMINAL, timeout=300)
                datasets = {e.dedup_key: f"{e.data.dataset_id}@{e.data.version}" for e in events}
                ended = sorted((datasets[r.idempotency_key or ""], r.state) for r in runs)
                assert all(state == "Completed" for _, state in ended), f"runs that did not complete: {ended}"
    finally:
        publisher.close()


def by_column(expectations: list[dict[str, Any]], name: str, column: str | None = None) -> dict[str, Any]:
    return next(e for e in expectations if e["expectation"] == name and e["kwargs"].get("column") == column)


def test_pass_drift_critical_and_warning_with_their_consequences(
    stack: SessionStack, topics: dict[str, str], tmp_path: Path
) -> None:
    tag = uuid.uuid4().hex[:6]
    dataset, system = f"loans-{tag}", f"scoring-{tag}"
    own_suite(stack, dataset)
    trained_on(stack, system, dataset, tier="high")
    events = [
        changed(dataset, "v1", write_loans(tmp_path / "v1.csv")),
        changed(dataset, "v2", write_loans(tmp_path / "v2.csv", income_factor=5)),  # drift only
        changed(dataset, "v3", write_loans(tmp_path / "v3.csv", null_ids=30)),  # critical expectation
        changed(dataset, "v4", write_loans(tmp_path / "v4.csv", every=8)),  # fewer rows: a warning
    ]
    run_all(stack, topics, events)

    with stack.register().reader() as uow:
        results = {r.id.split("@")[1]: r for r in uow.data_quality.find() if r.id.startswith(f"{dataset}@")}
        versions = {v.version: v for v in uow.dataset_versions.find(dataset=dataset)}
        ncs = {n.id for n in uow.nonconformities.find(source="data-quality") if dataset in n.id}
    assert {k: r.verdict for k, r in results.items()} == {
        "v1": "passed",
        "v2": "failed",
        "v3": "failed",
        "v4": "warning",
    }
    assert (
        results["v2"].drift["income"]["level"] == "critical" and results["v2"].drift["income"]["psi"] > 0.25
    )
    assert all(e["success"] for e in results["v2"].expectations)  # it failed on drift alone
    nulls = next(
        e
        for e in results["v3"].expectations
        if e["expectation"] == "expect_column_values_to_not_be_null"
        and e["kwargs"]["column"] == "applicant_id"
    )
    assert not nulls["success"] and nulls["unexpected_count"] == 30
    assert {k: v.status for k, v in versions.items()} == {
        "v1": "accepted",
        "v2": "rejected",
        "v3": "rejected",
        "v4": "accepted",
    }
    assert versions["v1"].profile is not None and versions["v1"].content_hash
    assert ncs == {f"dq:{dataset}@v2", f"dq:{dataset}@v3"}

    validated = outcome_events(stack, f"validated:{dataset}@", 4)
    assert sorted(e["data"]["version"] for e in validated) == ["v1", "v2", "v3", "v4"]
    reassess = outcome_events(stack, f"reassess:{dataset}@", 2)
    assert sorted((e["data"]["reason"], e["id"]) for e in reassess) == [
        ("data_quality_failure", f"reassess:{dataset}@v3:{system}"),
        ("drift", f"reassess:{dataset}@v2:{system}"),
    ]

    # The same failing version announced again: checked again, but nothing opened or requested twice.
    run_all(stack, topics, [changed(dataset, "v3", tmp_path / "v3.csv")])
    assert len(outcome_events(stack, f"reassess:{dataset}@", 2)) == 2
    with stack.register().reader() as uow:
        assert len([n for n in uow.nonconformities.find() if dataset in n.id]) == 2


def test_a_dataset_without_a_suite_gets_a_baseline_then_is_checked_against_it(
    stack: SessionStack, topics: dict[str, str], tmp_path: Path
) -> None:
    dataset = f"fresh-{uuid.uuid4().hex[:6]}"
    run_all(
        stack,
        topics,
        [
            changed(dataset, "1", write_loans(tmp_path / "1.csv")),
            changed(dataset, "2", write_loans(tmp_path / "2.csv", null_ids=5)),
        ],
    )
    suite = yaml.safe_load((stack.suites_dir / f"{dataset}.yaml").read_text())
    assert suite["status"] == "baseline" and suite["dataset"] == dataset
    with stack.register().reader() as uow:
        assert uow.data_quality.one(f"{dataset}@1").verdict == "baseline"
        second = uow.data_quality.one(f"{dataset}@2")
    assert second.verdict in {"failed", "warning"}
    assert any(not e["success"] and e["kwargs"].get("column") == "applicant_id" for e in second.expectations)


def test_parquet_and_sqlite_pass_then_fail_critically(
    stack: SessionStack, topics: dict[str, str], tmp_path: Path
) -> None:
    tag = uuid.uuid4().hex[:6]
    pq, lite = f"pq-{tag}", f"lite-{tag}"
    for dataset in (pq, lite):
        own_suite(stack, dataset)
    files = {v: tmp_path / f"{v}.parquet" for v in ("v1", "v2")}
    loan_frame().to_parquet(files["v1"], index=False)
    loan_frame(null_ids=30).to_parquet(files["v2"], index=False)
    db = f"sqlite:///{tmp_path / 'loans.db'}"
    tables = {
        "v1": write_table(db, "loans_v1", loan_frame()),
        "v2": write_table(db, "loans_v2", loan_frame(bad_terms=7)),
    }
    run_rounds(
        stack,
        topics,
        [[changed(pq, v, files[v]), changed(lite, v, tables[v])] for v in ("v1", "v2")],
    )

    with stack.register().reader() as uow:
        results = {r.id: r for r in uow.data_quality.find() if r.id.split("@")[0] in (pq, lite)}
        versions = {v.id: v for d in (pq, lite) for v in uow.dataset_versions.find(dataset=d)}
        ncs = {n.id for n in uow.nonconformities.find(source="data-quality") if tag in n.id}
    assert {k: r.verdict for k, r in results.items()} == {
        f"{pq}@v1": "passed",
        f"{pq}@v2": "failed",
        f"{lite}@v1": "passed",
        f"{lite}@v2": "failed",
    }
    assert {k: v.status for k, v in versions.items()} == {
        f"{pq}@v1": "accepted",
        f"{pq}@v2": "rejected",
        f"{lite}@v1": "accepted",
        f"{lite}@v2": "rejected",
    }
    assert ncs == {f"dq:{pq}@v2", f"dq:{lite}@v2"}
    for key, result in results.items():
        assert (result.suite_name, result.suite_version) == (f"{key.split('@')[0]}.yaml", "1")
        assert result.statistics["suite_status"] == "reviewed"
        assert result.statistics["evaluated"] == len(result.expectations) == 11
        rows = by_column(result.expectations, "expect_table_row_count_to_be_between")
        assert rows["success"] and rows["observed_value"] == 500
    # what the file and the table were read with: pandas for the file, SQL in the database
    assert {results[f"{pq}@v1"].statistics["engine"], results[f"{lite}@v1"].statistics["engine"]} == {
        "PandasExecutionEngine",
        "SqliteExecutionEngine",
    }
    mean = by_column(results[f"{pq}@v1"].expectations, "expect_column_mean_to_be_between", "amount")
    assert mean["success"] and mean["observed_value"] == 1_000 + 53 * 499 / 2
    nulls = by_column(results[f"{pq}@v2"].expectations, "expect_column_values_to_not_be_null", "applicant_id")
    assert not nulls["success"] and nulls["unexpected_count"] == 30 and nulls["element_count"] == 500
    terms = by_column(results[f"{lite}@v2"].expectations, "expect_column_values_to_be_in_set", "term_months")
    assert not terms["success"] and terms["unexpected_count"] == 7
    assert terms["unexpected_sample"] == [18] * 7
    assert [e["success"] for e in results[f"{lite}@v2"].expectations].count(False) == 1
    # provenance: where each version was read, its content hash for a file, its profile
    for v in ("v1", "v2"):
        file_version, table_version = versions[f"{pq}@{v}"], versions[f"{lite}@{v}"]
        assert file_version.location == named(files[v])
        assert file_version.content_hash == hashlib.sha256(files[v].read_bytes()).hexdigest()
        assert file_version.size_bytes == files[v].stat().st_size
        assert table_version.location == named(tables[v]) and table_version.content_hash is None
        assert file_version.profile is not None and file_version.profile["rows"] == 500
        assert table_version.profile is not None and table_version.profile["rows"] == 500
    assert results[f"{lite}@v2"].statistics["location"] == f"table loans_v2 at {db}"


def test_a_postgresql_table_passes_then_fails_critically_and_wrong_addresses_are_findings(
    stack: SessionStack, topics: dict[str, str], postgres_database: str
) -> None:
    """The worker reaches the session's PostgreSQL with the URL in the event (trust authentication);
    an unknown database or user on a server that is up is a finding, not a run left to retry."""
    tag = uuid.uuid4().hex[:6]
    dataset, nodb, nouser = f"pg-{tag}", f"pg-nodb-{tag}", f"pg-nouser-{tag}"
    for name in (dataset, nodb, nouser):
        own_suite(stack, name)
    tables = {
        "v1": write_table(postgres_database, "loans_v1", loan_frame()),
        "v2": write_table(postgres_database, "loans_v2", loan_frame(neg_income=12)),
    }
    server = postgres_database.rsplit("/", 1)[0]
    user = sa.make_url(postgres_database).username
    run_rounds(
        stack,
        topics,
        [
            [
                changed(dataset, "v1", tables["v1"]),
                changed(nodb, "1", {"url": f"{server}/no_such_db_{tag}", "table": "loans_v1"}),
                changed(
                    nouser,
                    "1",
                    {"url": postgres_database.replace(f"//{user}@", f"//nobody_{tag}@"), "table": "loans_v1"},
                ),
            ],
            [changed(dataset, "v2", tables["v2"])],
        ],
    )

    with stack.register().reader() as uow:
        first, second = uow.data_quality.one(f"{dataset}@v1"), uow.data_quality.one(f"{dataset}@v2")
        versions = {v.version: v for v in uow.dataset_versions.find(dataset=dataset)}
        ncs = {n.id for n in uow.nonconformities.find(source="data-quality") if tag in n.id}
        wrong = {name: uow.data_quality.one(f"{name}@1") for name in (nodb, nouser)}
    assert (first.verdict, second.verdict) == ("passed", "failed")
    assert first.statistics["engine"] == "SqlAlchemyExecutionEngine"  # GX's engine for PostgreSQL
    assert (first.suite_version, second.suite_version) == ("1", "1")
    income = by_column(second.expectations, "expect_column_values_to_be_between", "income")
    assert not income["success"] and income["unexpected_count"] == 12
    assert income["unexpected_sample"] == [-1] * 12
    assert by_column(first.expectations, "expect_table_row_count_to_be_between")["observed_value"] == 500
    assert {v: x.status for v, x in versions.items()} == {"v1": "accepted", "v2": "rejected"}
    assert versions["v2"].location == named(tables["v2"]) and versions["v2"].content_hash is None
    assert f"dq:{dataset}@v2" in ncs and f"dq:{dataset}@v1" not in ncs
    assert wrong[nodb].verdict == "unavailable"
    assert f'database "no_such_db_{tag}" does not exist' in wrong[nodb].statistics["error"]
    assert "fix the database name in the URL" in wrong[nodb].statistics["error"]
    assert wrong[nouser].verdict == "unavailable"
    assert "fix the user name in the URL" in wrong[nouser].statistics["error"]
    assert {f"dq:{nodb}@1", f"dq:{nouser}@1"} <= ncs


def _garbage(path: Path) -> Path:
    path.write_bytes(bytes(range(256)) * 8)  # not text, let alone CSV or Parquet
    return path


def test_bad_inputs_are_recorded_findings_not_crashes(
    stack: SessionStack, topics: dict[str, str], tmp_path: Path
) -> None:
    """Each its own dataset, all in one round: every run completes, with a result saying what to fix."""
    tag = uuid.uuid4().hex[:6]
    no_approved = loan_frame().drop(columns=["approved"])
    no_approved.to_csv(tmp_path / "no-approved.csv", index=False)
    loan_frame().to_csv(tmp_path / "loans.xlsx", index=False)  # a CSV under a name nothing reads
    (tmp_path / "fake.parquet").write_text("applicant_id,income\n1,2\n")
    # dataset -> (where, the verdict, what the recorded reason must say)
    cases: dict[str, tuple[Path | dict[str, str], str, str]] = {
        "missing-file": (
            tmp_path / "does-not-exist.csv",
            "unavailable",
            "no such file in data source 'test-files'",
        ),
        # What no source of the policy declares is refused unread (issue 19).
        "no-source": ({"source": "nowhere", "path": "x.csv"}, "unavailable", "no data source 'nowhere'"),
        "outside-roots": (
            {"uri": (REPO / "policy" / "aims-policy.yaml").as_uri()},
            "unavailable",
            "the file is in no data source of the policy",
        ),
        "garbage-csv": (_garbage(tmp_path / "garbage.csv"), "unavailable", "cannot be read as CSV"),
        "fake-parquet": (tmp_path / "fake.parquet", "unavailable", "cannot be read as Parquet"),
        "xlsx": (tmp_path / "loans.xlsx", "unavailable", "unsupported file type (.xlsx)"),
        "missing-column": (tmp_path / "no-approved.csv", "failed", "column 'approved' is not in the data"),
        "missing-db": (
            {"url": f"sqlite:///{tmp_path / 'nowhere.db'}", "table": "loans"},
            "unavailable",
            "nowhere.db does not exist",
        ),
        "bad-driver": (
            {"url": "postgresql+nosuchdriver://aims@127.0.0.1/aims", "table": "loans"},
            "unavailable",
            "install the database driver",
        ),
        "unknown-host": (
            {"url": f"postgresql+psycopg://aims@no-such-host-{tag}.invalid/aims", "table": "loans"},
            "unavailable",
            f"the host no-such-host-{tag}.invalid is unknown",
        ),
    }
    datasets = {case: f"{case}-{tag}" for case in cases}
    for dataset in datasets.values():
        own_suite(stack, dataset)
    run_rounds(stack, topics, [[changed(datasets[c], "1", where) for c, (where, _, _) in cases.items()]])

    problems = []
    with stack.register().reader() as uow:
        ncs = {n.id for n in uow.nonconformities.find(source="data-quality") if tag in n.id}
        for case, (_, verdict, reason) in cases.items():
            result = uow.data_quality.one(f"{datasets[case]}@1")
            version = uow.dataset_versions.one(f"{datasets[case]}@1")
            said = result.statistics.get("error") or " ".join(
                e["exception"] for e in result.expectations if e.get("exception")
            )
            if (result.verdict, version.status) != (verdict, "rejected") or reason not in said:
                problems.append(f"{case}: {result.verdict}, {version.status}: {said!r}")
    assert not problems, "\n".join(problems)
    assert ncs == {f"dq:{d}@1" for d in datasets.values()}


def test_an_empty_table_is_a_finding_and_does_not_break_the_next_check(
    stack: SessionStack, topics: dict[str, str], tmp_path: Path
) -> None:
    """A table with no rows is a failed check (the shipped suite's row count is only a warning), and
    drift against or from an empty version does not crash the run (PSI of a histogram with no mass)."""
    tag = uuid.uuid4().hex[:6]
    first, after = f"empty-{tag}", f"emptied-{tag}"
    for dataset in (first, after):
        own_suite(stack, dataset)
    db = tmp_path / "loans.db"
    write_table(f"sqlite:///{db}", "loans", loan_frame())
    with sqlite3.connect(db) as conn:
        conn.execute(
            "CREATE TABLE empty (applicant_id BIGINT, income BIGINT, amount BIGINT, term_months BIGINT, "
            "approved BOOLEAN)"
        )
    location = {"url": f"sqlite:///{db}", "table": "loans"}
    empty = {"url": f"sqlite:///{db}", "table": "empty"}
    run_rounds(
        stack,
        topics,
        [
            [changed(first, "1", empty), changed(after, "1", location)],
            [changed(after, "2", empty), changed(first, "2", location)],
        ],
    )
    with stack.register().reader() as uow:
        verdicts = {r.id: r.verdict for r in uow.data_quality.find() if tag in r.id}
        statuses = {v.id: v.status for d in (first, after) for v in uow.dataset_versions.find(dataset=d)}
    assert verdicts[f"{after}@1"] == verdicts[f"{first}@2"] == "passed"
    assert verdicts[f"{first}@1"] in {"failed", "unavailable"}, verdicts
    assert verdicts[f"{after}@2"] in {"failed", "unavailable"}, verdicts
    assert statuses[f"{first}@1"] == statuses[f"{after}@2"] == "rejected"


def test_a_check_that_fails_still_records_its_change_and_says_why(
    stack: SessionStack, topics: dict[str, str], tmp_path: Path
) -> None:
    """A run that fails (here, a suite file the check cannot load) leaves its version in the register,
    received and unjudged, with the run and the reason: no change is left unrecorded."""
    dataset = f"broken-suite-{uuid.uuid4().hex[:6]}"
    (stack.suites_dir / f"{dataset}.yaml").write_text("dataset: [this is not a suite\n")
    event = changed(dataset, "1", write_loans(tmp_path / "1.csv"))
    publisher = stack.publisher(topics["AIMS_EVENTS_TOPIC"])
    try:
        with stack.router(topics):
            publisher.publish(event)
            (run,) = stack.wait_for_runs([event.dedup_key], states=TERMINAL, timeout=240)
    finally:
        publisher.close()
    assert run.state == "Failed", run
    with stack.register().reader() as uow:
        version = uow.dataset_versions.get(f"{dataset}@1")
        result = uow.data_quality.get(f"{dataset}@1")
    assert version is not None, "the failed check left its change unrecorded"
    assert version.status == "received" and result is None, (version.status, result)
    failed = version.provenance["check_failed"]
    assert failed["flow_run"] == str(run.id), failed
    assert f"{dataset}.yaml" in failed["error"], failed
    assert version.provenance["event_key"] == event.dedup_key
    assert version.location == named(tmp_path / "1.csv")
