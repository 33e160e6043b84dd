"""Issue 22: a version checked only against a drafted baseline suite is provisional.

Before: a version with 5 % null incomes, ages of 150 and an unknown country code passed "with
warnings" against the suite drafted from the first version, was accepted, and became the drift
reference. Each test runs the check's own steps on real CSV, Parquet or SQLite-table data (`Bench`).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from connectors.slack import SlackChat
from flows.commands import Actor, Context, handle
from flows.data_quality.commands import AcceptBaseline
from flows.data_quality.suite_review import PROVISIONAL
from schemas.payloads import DecisionChannel
from schemas.records import SuiteReview
from tests.escaping import slack_chat
from tests.fakes.slack import SlackFake
from tests.flows.data_quality.bench import OWNER, Bench, rows


@pytest.fixture
def bench(tmp_path: Path) -> Bench:
    return Bench(tmp_path).setup()


def versions(bench: Bench, dataset: str) -> dict[str, str]:
    with bench.runtime() as rt, rt.register.reader() as uow:
        return {v.version: v.status for v in uow.dataset_versions.find(dataset=dataset)}


def reviews(bench: Bench, dataset: str) -> list[SuiteReview]:
    with bench.runtime() as rt, rt.register.reader() as uow:
        return list(uow.suite_reviews.find(dataset=dataset, order_by="at"))


def accept(bench: Bench, dataset: str) -> None:
    from aims.login import operator_login
    from schemas.policy_file import load_policy

    with bench.runtime() as rt:
        verdict = handle(
            AcceptBaseline(
                actor=Actor(OWNER, DecisionChannel.cli, operator_login()),
                dataset=dataset,
                suite_path=str(bench.suites / f"{dataset}.yaml"),
            ),
            Context(rt.register, load_policy(bench.policy_file), "aims.events"),
        )
    assert verdict.accepted, verdict.message


@pytest.mark.parametrize("kind", ["csv", "parquet", "table"])
def test_a_bad_version_against_the_drafted_suite_is_provisional_and_no_reference(
    bench: Bench, kind: str
) -> None:
    put = {"csv": bench.csv, "parquet": bench.parquet, "table": bench.table}[kind]
    name = "loans.parquet" if kind == "parquet" else "loans.csv" if kind == "csv" else "loans"
    first = bench.check("loans", "1", put(name, rows()))
    assert first["verdict"] == "baseline"
    second = bench.check("loans", "2", put(name, rows(bad=True)))
    # The version: it passes the drafted bounds "with warnings" …
    assert second["verdict"] == "warning"
    assert "expect_column_values_to_not_be_null(income)" in second["failed_warning"]
    # … and is provisional, as is the version the draft came from: neither is a drift reference.
    assert versions(bench, "loans") == {"1": PROVISIONAL, "2": PROVISIONAL}
    third = bench.check("loans", "3", put(name, rows()))
    assert third["drifted_columns"] == "none" and versions(bench, "loans")["3"] == PROVISIONAL
    with bench.runtime() as rt, rt.register.reader() as uow:
        result = uow.data_quality.one("loans@3")
    assert result.statistics["reference"] == "none (no accepted version yet)" and result.drift == {}


def test_the_owner_is_reminded_once_until_the_suite_is_accepted(bench: Bench) -> None:
    for version in ("1", "2", "3"):
        bench.check("loans", version, bench.csv(f"loans-{version}.csv", rows(bad=version == "2")))
    (reminder,) = reviews(bench, "loans")
    assert reminder.kind == "reminder" and reminder.by == OWNER
    assert reminder.channel == "register"  # no Slack set up: the row is it
    accept(bench, "loans")
    # Judged by the reviewed suite now: accepted, the reference for the next, and no reminder.
    bench.check("loans", "4", bench.csv("loans-4.csv", rows()))
    bench.check("loans", "5", bench.csv("loans-5.csv", rows()))
    assert versions(bench, "loans") == {
        "1": PROVISIONAL,
        "2": PROVISIONAL,
        "3": PROVISIONAL,
        "4": "accepted",
        "5": "accepted",
    }
    with bench.runtime() as rt, rt.register.reader() as uow:
        assert uow.data_quality.one("loans@5").statistics["reference_version"] == "4"
    assert [r.kind for r in reviews(bench, "loans")] == ["reminder", "acceptance"]
    # A new draft (the suite removed) opens a new round: one more reminder, once.
    (bench.suites / "loans.yaml").unlink()
    bench.check("loans", "6", bench.csv("loans-6.csv", rows()))
    bench.check("loans", "7", bench.csv("loans-7.csv", rows()))
    assert [r.id for r in reviews(bench, "loans")] == [
        "loans:reminder:0",
        "loans:accepted:0",
        "loans:reminder:1",
    ]


@pytest.fixture
def slack() -> Iterator[tuple[SlackFake, SlackChat]]:
    with slack_chat() as pair:
        yield pair


def test_with_slack_the_owner_gets_one_direct_message_its_names_escaped(
    bench: Bench, slack: tuple[SlackFake, SlackChat]
) -> None:
    fake, chat = slack
    user = fake.add_user(OWNER)
    dataset = "loans"
    bench.check(dataset, "1", bench.csv("a.csv", rows()), chat=chat)
    bench.check(dataset, "2", bench.csv("b.csv", rows(bad=True)), chat=chat)
    posted = fake.posted(user)
    assert len(posted) == 1, posted
    assert f"aims dq accept-baseline {dataset}" in posted[0]["text"]
    (reminder,) = reviews(bench, dataset)
    assert reminder.channel == "slack"


def test_an_owner_slack_does_not_know_is_recorded_as_not_delivered(
    bench: Bench, slack: tuple[SlackFake, SlackChat]
) -> None:
    _, chat = slack
    bench.check("loans", "1", bench.csv("a.csv", rows()), chat=chat)
    (reminder,) = reviews(bench, "loans")
    assert reminder.channel == "register"
    assert "Slack did not deliver it" in reminder.note
