"""The rules of drafted suites (flows/data_quality/suite_review.py) and of accepting one: pure, fast."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from flows.commands import Actor
from flows.data_quality.commands import authenticate, may_accept
from flows.data_quality.suite_review import (
    ACCEPTED,
    PROVISIONAL,
    needs_reminder,
    owner_of,
    reference_of,
    reminder,
    reminder_id,
    reviewed_suite,
    reviewed_version,
    version_status,
)
from schemas.payloads import DecisionChannel, Verdict
from schemas.records import DatasetVersion, SuiteReview
from schemas.suites import Suite, SuiteStatus, dump_suite, load_suite
from tests.resources import example_policy

T0 = datetime(2026, 12, 1, tzinfo=UTC)
STATUSES = ["accepted", "provisional", "rejected", "superseded", "received"]


@given(st.sampled_from(list(Verdict)), st.sampled_from([*SuiteStatus, None]))
def test_only_a_version_judged_by_a_reviewed_suite_is_accepted(
    verdict: Verdict, suite: SuiteStatus | None
) -> None:
    status = version_status(verdict, suite)
    judged = verdict in (Verdict.passed, Verdict.warning) and suite is SuiteStatus.reviewed
    assert (status == ACCEPTED) == judged
    if verdict is Verdict.warning and suite is SuiteStatus.baseline:
        assert status == PROVISIONAL  # the version: warnings against a draft


versions_strategy = st.lists(
    st.tuples(st.sampled_from(STATUSES), st.integers(0, 3)), min_size=0, max_size=12
).map(
    lambda specs: [
        DatasetVersion(
            id=f"d@{i}",
            dataset="d",
            version=str(i),
            location={},
            status=status,
            profile={"rows": n, "columns": {}},
            received_at=T0 + timedelta(minutes=i),
        )
        for i, (status, n) in enumerate(specs)
    ]
)


@given(versions_strategy, st.integers(0, 12))
def test_the_reference_is_the_last_accepted_version_with_rows_never_a_provisional_one(
    versions: list[DatasetVersion], before: int
) -> None:
    found = reference_of(versions, str(before))
    eligible = [v for v in versions if v.status == "accepted" and v.profile and v.profile["rows"]]
    eligible = [v for v in eligible if v.version != str(before)]
    assert found == (eligible[-1] if eligible else None)


def review(dataset: str, kind: str, n: int, accepted: bool = True) -> SuiteReview:
    rid = f"{dataset}:{'reminder' if kind == 'reminder' else 'accepted'}:{n}"
    return SuiteReview(
        id=rid, dataset=dataset, kind=kind, suite_version="baseline-1", channel="cli", accepted=accepted
    )


def test_one_reminder_per_drafted_suite_until_it_is_accepted() -> None:
    assert needs_reminder("d", [])
    reminded = [review("d", "reminder", 0)]
    assert not needs_reminder("d", reminded)
    refused = [*reminded, review("d", "acceptance", 0, accepted=False).model_copy(update={"id": "refused-1"})]
    assert not needs_reminder("d", refused)  # a refused acceptance changes nothing
    accepted = [*reminded, review("d", "acceptance", 0)]
    assert needs_reminder("d", accepted) and reminder_id("d", 1) == "d:reminder:1"


@given(st.text(min_size=1, max_size=40).filter(lambda v: v.strip() == v and "\n" not in v))
def test_the_reviewed_version_differs_from_the_drafted_one(drafted: str) -> None:
    assert reviewed_version(drafted) != drafted
    assert reviewed_version("baseline-1") == "1" and reviewed_version("7") == "7-reviewed"


def test_the_reviewed_suite_keeps_every_expectation_and_reads_back(tmp_path: Path) -> None:
    drafted = Suite.model_validate(
        {
            "dataset": "loans",
            "version": "baseline-1",
            "status": "baseline",
            "expectations": [
                {
                    "expectation": "expect_column_values_to_not_be_null",
                    "severity": "warning",
                    "kwargs": {"column": "a"},
                }
            ],
        }
    )
    reviewed = reviewed_suite(drafted)
    dump_suite(reviewed, tmp_path / "loans.yaml")
    back = load_suite(tmp_path / "loans.yaml")
    assert back == reviewed and back.status is SuiteStatus.reviewed and back.version == "1"
    assert back.expectations == drafted.expectations
    assert "review every expectation" not in (tmp_path / "loans.yaml").read_text()


def test_the_owner_is_the_datasets_own_else_its_sources() -> None:
    policy = example_policy()
    demo = DatasetVersion(dataset="d", version="1", location={"source": "demo", "path": "x.csv"})
    elsewhere = DatasetVersion(dataset="d", version="1", location={"source": "nowhere", "path": "x.csv"})
    assert owner_of("", [demo], policy.data_sources) == policy.data_sources["demo"].owner
    assert owner_of("  me@x.example ", [demo], policy.data_sources) == "me@x.example"
    assert owner_of("", [elsewhere], policy.data_sources) is None
    assert "set `owner` on the data source" in reminder("d", "baseline-1", "suites/d.yaml", "2", None).note


def test_the_login_must_prove_the_person_as_for_approvals() -> None:
    policy = example_policy().model_copy(
        update={"decisions": example_policy().decisions.model_copy(update={"cli_any_login": False})}
    )
    aisha = "aisha.khan@northwind.example"  # logins: [akhan] in the example policy
    assert authenticate(policy, Actor(aisha, DecisionChannel.cli, "akhan")) is True
    refused = authenticate(policy, Actor(aisha, DecisionChannel.cli, "mallory"))
    assert isinstance(refused, str) and "people: aisha.khan@northwind.example: logins" in refused
    assert isinstance(authenticate(policy, Actor(aisha, DecisionChannel.cli, None)), str)
    unsafe = example_policy()  # the demo's cli_any_login: accepted, unauthenticated
    assert (
        unsafe.decisions.cli_any_login
        and authenticate(unsafe, Actor(aisha, DecisionChannel.cli, "mallory")) is False
    )


def test_only_the_owner_or_the_owning_team_accepts() -> None:
    policy = example_policy()
    team, members = next(iter(policy.teams.items()))
    assert may_accept(policy, None, "anyone@x.example") is None
    assert may_accept(policy, "Owner@X.example", "owner@x.example") is None
    assert may_accept(policy, team, members.members[0]) is None
    refusal = may_accept(policy, "owner@x.example", "someone@x.example")
    assert refusal is not None and "is not the owner" in refusal
