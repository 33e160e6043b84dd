"""`aims datasets`, `aims dq show|check|accept-baseline` on real results of CSV, Parquet and SQL-table data.

The results are made once per module by the check's own steps (`tests/flows/data_quality/bench.py`):
three datasets, each a clean first version (which drafts the baseline suite) and the issue's bad
second version (5 % null incomes, ages of 150, an unknown country code, and here a terminal escape in
a value). Commands that write use datasets of their own. There is no broker: what `aims dq check`
produces stays in the register's outbox, where the test reads it back and checks it as an event.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.aims.runner import Run, isolate, run
from tests.flows.data_quality.bench import OTHER, OWNER, Bench, rows

DATASETS = {"loans": "csv", "loans-pq": "parquet", "loans-sql": "table"}
ESCAPE = "\x1b[2J\x1b[31mRED"


def bad_rows() -> dict[str, list[Any]]:
    data = rows(bad=True)
    data["country"][11] = ESCAPE
    return data


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> Bench:
    bench = Bench(tmp_path_factory.mktemp("dq")).setup()
    for dataset, kind in DATASETS.items():
        put = {"csv": bench.csv, "parquet": bench.parquet, "table": bench.table}[kind]
        name = {"csv": f"{dataset}.csv", "parquet": f"{dataset}.parquet", "table": dataset.replace("-", "_")}
        bench.check(dataset, "1", put(name[kind], rows()))
        bench.check(dataset, "2", put(name[kind], bad_rows()))
    for dataset in ("to-accept", "to-check", "short"):
        bench.check(dataset, "1", bench.csv(f"{dataset}.csv", rows()))
    bench.check("short", "2", bench.csv("short-2.csv", rows(20)))  # fewer rows than the draft allows
    bench.build_docs("loans")
    return bench


@pytest.fixture
def aims(bench: Bench, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Any:
    isolate(bench.state, monkeypatch)
    for name, value in bench.env().items():
        monkeypatch.setenv(name, value)

    def call(*argv: str) -> Run:
        return run(capsys, *argv)

    return call


@pytest.fixture
def unchanged(bench: Bench) -> Iterator[None]:
    """The test leaves the register (every table, the audit log) and the suites folder as it found them."""
    before = bench.snapshot()
    yield
    assert bench.snapshot() == before


# -- reading ---------------------------------------------------------------------------------------


def test_datasets_lists_each_with_its_versions_suite_and_no_reference(aims: Any, unchanged: None) -> None:
    out = aims("datasets", "--json")
    assert out.code == 0, out.err
    docs = {d["name"]: d for d in json.loads(out.out)["datasets"]}
    for dataset in DATASETS:
        doc = docs[dataset]
        assert doc["owner"] == OWNER and doc["suite"]["status"] == "baseline"
        assert [v["version"] for v in doc["versions"]] == ["2", "1"]
        assert [v["verdict"] for v in doc["versions"]] == ["warning", "baseline"]
        # Checked only against the drafted suite: provisional, and no drift reference.
        assert doc["provisional"] == ["2", "1"] and doc["reference"] is None
        assert doc["reminded"] and doc["accepted_by"] is None
    table = aims("datasets")
    assert table.code == 0 and all(name in table.out for name in DATASETS)


@pytest.mark.parametrize("dataset", list(DATASETS))
def test_one_dataset_shows_every_version_its_verdict_failures_and_the_review_to_do(
    aims: Any, unchanged: None, dataset: str
) -> None:
    out = aims("datasets", dataset)
    assert out.code == 0, out.err
    assert "expect_column_values_to_not_be_null(income)" in out.out
    assert "provisional" in out.out and "reminded baseline-1" in out.out
    assert f"aims dq accept-baseline {dataset} --by EMAIL" in out.out
    doc = json.loads(aims("datasets", dataset, "--json").out)
    (latest, _) = doc["versions"]
    assert latest["result"] == f"{dataset}@2" and latest["suite_version"] == "baseline-1"
    assert latest["suite_status"] == "baseline" and latest["status"] == "provisional"
    assert "expect_column_values_to_be_between(age)" in latest["failed_warning"]


@pytest.mark.parametrize("dataset", list(DATASETS))
def test_dq_show_has_failed_expectations_observed_values_and_samples(
    aims: Any, unchanged: None, dataset: str
) -> None:
    view = json.loads(aims("dq", "show", f"{dataset}@2", "--json").out)
    failed = {f["expectation"]: f for f in view["failed"]}
    assert failed["expect_column_values_to_be_between(age)"]["sample"][:1] == [150]
    assert failed["expect_column_values_to_not_be_null(income)"]["unexpected_count"] == 10
    assert ESCAPE in failed["expect_column_values_to_be_in_set(country)"]["sample"]
    assert view["verdict"] == "warning" and view["status"] == "provisional"
    assert view["suite_version"] == "baseline-1" and view["suite_status"] == "baseline"
    shown = aims("dq", "show", f"{dataset}@2")
    assert shown.code == 0 and "sample: 150" in shown.out
    # A value from the data is shown, never obeyed: the escape is written out.
    assert "\x1b" not in shown.out and "\\x1b[2J" in shown.out


def test_dq_show_has_the_observed_value_of_an_aggregate_expectation(aims: Any, unchanged: None) -> None:
    view = json.loads(aims("dq", "show", "short@2", "--json").out)
    (failed,) = view["failed"]
    assert failed["expectation"] == "expect_table_row_count_to_be_between" and failed["observed"] == 20
    shown = aims("dq", "show", "short@2")
    assert "warning  expect_table_row_count_to_be_between observed 20" in shown.out


def test_dq_show_names_the_data_docs_page_of_the_check(aims: Any, unchanged: None) -> None:
    view = json.loads(aims("dq", "show", "loans@2", "--json").out)
    page = Path(view["data_docs"])
    assert page.is_file() and page.suffix == ".html" and "validations" in page.parts


def test_dq_show_in_a_process_of_its_own(bench: Bench, unchanged: None) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIMS_", "KAFKA_", "PREFECT_"))}
    proc = subprocess.run(
        [sys.executable, "-m", "aims", "dq", "show", "loans-sql@2"],
        env={**env, **bench.env()},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert (
        "table loans_sql at sqlite:///" in proc.stdout and "expect_column_values_to_be_in_set" in proc.stdout
    )


# -- asking for a check ------------------------------------------------------------------------------


def outbox(bench: Bench) -> list[dict[str, Any]]:
    with bench.runtime() as rt, rt.register.reader() as uow:
        return [m.event for m in uow.outbox.find(order_by="created_at")]


def test_dq_check_produces_a_data_changed_event_that_checks_the_version_again(
    aims: Any, bench: Bench
) -> None:
    from schemas.events import DataChangedEvent

    before = outbox(bench)
    out = aims("dq", "check", "to-check", "--by", "ops@northwind.example")
    assert out.code == 0, out.err
    assert "not sent yet" in out.err  # no broker here: the router's relay sends it
    (staged,) = [e for e in outbox(bench) if e not in before]
    event = DataChangedEvent.model_validate(staged)
    assert event.data.dataset_id == "to-check" and event.data.version == "1"
    assert (event.data.source, event.data.path) == ("lake", "to-check.csv")
    with bench.runtime() as rt, rt.register.reader() as uow:
        (entry,) = [a for a in uow.audit_entries("outbox") if a.entity_id == f"urn:aims:cli#{event.id}"]
    assert entry.actor == "cli:ops@northwind.example"
    # The event is one the check takes: it reads the same data again.
    assert bench.check_event(event)["source"] == "source: lake, path: to-check.csv"
    asked = json.loads(aims("dq", "check", "to-check", "--version", "1", "--json").out)
    assert asked["event"]["data"]["dataset_id"] == "to-check" and asked["key"].startswith(
        "urn:aims:cli#check:"
    )


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["dq", "check", "nope"], "no dataset 'nope'"),
        (["dq", "check", "loans", "--version", "9"], "has no version '9'"),
        (["dq", "check", " loans"], "invalid DATASET"),
        (["dq", "check", "loans", "--version", ""], "invalid --version"),
        (["dq", "check", "loans", "--by", "a\x00b"], "NUL"),
        (["dq", "show", "loans@9"], "no data-quality result 'loans@9'"),
        (["datasets", "nope"], "no dataset 'nope'"),
        (["datasets", ".."], "invalid NAME"),
        (["dq", "accept-baseline", "nope", "--by", OWNER], "no dataset 'nope'"),
        (["dq", "accept-baseline", "loans", "--by", " "], "invalid --by"),
        (["dq"], ""),
        (["dq", "check"], ""),
    ],
)
def test_bad_arguments_exit_2_and_write_nothing(
    aims: Any, unchanged: None, argv: list[str], says: str
) -> None:
    out = aims(*argv)
    assert out.code == 2, (out.out, out.err)
    assert says in out.err
    assert "Traceback" not in out.err


# -- accepting the drafted suite ---------------------------------------------------------------------


def reviews(bench: Bench, dataset: str) -> list[Any]:
    with bench.runtime() as rt, rt.register.reader() as uow:
        return list(uow.suite_reviews.find(dataset=dataset, order_by="at"))


def test_accept_baseline_records_who_and_when_and_the_suite_becomes_reviewed(aims: Any, bench: Bench) -> None:
    from aims.login import operator_login
    from schemas.suites import SuiteStatus, load_suite

    suite = bench.suites / "to-accept.yaml"
    drafted = suite.read_bytes()
    # Not the owner: refused, the attempt recorded with why, the file untouched.
    refused = aims("dq", "accept-baseline", "to-accept", "--by", OTHER)
    assert refused.code == 2 and "is not the owner" in refused.err and "the attempt is logged" in refused.err
    assert suite.read_bytes() == drafted
    # A person the OS login does not prove: refused and recorded likewise.
    stranger = aims("dq", "accept-baseline", "to-accept", "--by", "eve@else.example")
    assert stranger.code == 2 and "may not act as eve@else.example" in stranger.err
    accepted = aims("dq", "accept-baseline", "to-accept", "--by", OWNER, "--json")
    assert accepted.code == 0, accepted.err
    answer = json.loads(accepted.out)
    assert answer["status"] == "accepted" and answer["review"]["by"] == OWNER
    reviewed = load_suite(suite)
    assert reviewed.status is SuiteStatus.reviewed and reviewed.version == "1"
    rows_ = reviews(bench, "to-accept")
    assert [(r.kind, r.accepted) for r in rows_] == [
        ("reminder", True),
        ("acceptance", False),
        ("acceptance", False),
        ("acceptance", True),
    ]
    done = rows_[-1]
    assert (done.by, done.credential, done.authenticated) == (OWNER, operator_login(), True)
    assert done.suite_version == "baseline-1" and done.reviewed_version == "1"
    import hashlib

    assert done.suite_sha256 == hashlib.sha256(drafted).hexdigest()
    with bench.runtime() as rt, rt.register.reader() as uow:
        (entry,) = [a for a in uow.audit_entries("suite_review") if a.entity_id == done.id]
    assert entry.actor == f"cli:{OWNER}"
    # Again: nothing to accept, nothing written.
    before = bench.snapshot()
    again = aims("dq", "accept-baseline", "to-accept", "--by", OWNER)
    assert again.code == 2 and "reviewed already" in again.err
    assert bench.snapshot() == before
    # The next check is judged by the reviewed suite: accepted, and the next one's drift reference.
    bench.check("to-accept", "2", bench.csv("to-accept-2.csv", rows()))
    bench.check("to-accept", "3", bench.csv("to-accept-3.csv", rows()))
    doc = json.loads(aims("datasets", "to-accept", "--json").out)
    assert doc["reference"] == "3" and doc["accepted_by"] == OWNER
    assert [(v["version"], v["status"]) for v in doc["versions"]] == [
        ("3", "accepted"),
        ("2", "accepted"),
        ("1", "provisional"),
    ]
    assert doc["versions"][0]["reference_version"] == "2"


# -- hypothesis on the arguments ---------------------------------------------------------------------

WORDS = st.text(max_size=30)
KNOWN = {*DATASETS, "to-accept", "to-check", "short"}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    action=st.sampled_from(["datasets", "show", "check", "accept-baseline"]),
    first=WORDS.filter(lambda w: not any(k in w for k in KNOWN)),
    option=st.one_of(st.none(), WORDS),
)
def test_any_arguments_exit_0_or_2_never_a_traceback_and_write_nothing_when_refused(
    aims: Any, bench: Bench, action: str, first: str, option: str | None
) -> None:
    argv = {
        "datasets": ["datasets", first],
        "show": ["dq", "show", first],
        "check": ["dq", "check", first] + ([] if option is None else ["--version", option]),
        "accept-baseline": ["dq", "accept-baseline", first] + ([] if option is None else ["--by", option]),
    }[action]
    before = bench.snapshot()
    out = aims(*argv)
    # Refused (exit 2, saying why) or, for a word argparse reads as an option (-h, --json), answered.
    assert out.code in (0, 2), (argv, out.out, out.err)
    if out.code == 2:
        assert out.err.startswith(("aims: error:", "usage:")), out.err
    else:
        assert first.startswith("-"), (argv, out.out)
    assert bench.snapshot() == before
