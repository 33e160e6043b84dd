"""collect-evidence on a real register (SQLite and PostgreSQL) and Slack's Web API (the local fake):
evidence crossing its age makes its control stale and starts exactly one collection per period, and
the owner is asked once."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from connectors.register.store import Register
from connectors.slack import SlackChat
from flows.runtime import Runtime, use
from schemas.records import AISystem, DatasetVersion, EvidenceRequest
from schemas.settings import load_settings
from schemas.trail import EvidenceRecord
from tests.fakes.slack import SlackFake
from tests.resources import example_policy

TOPIC = "aims.events"
MARIA = "maria.rossi@northwind.example"  # the policy's default owner
AISHA = "aisha.khan@northwind.example"  # owns A.7.4 and credit-scoring
CHECKED = datetime(2026, 10, 1, 9, 0, tzinfo=UTC)  # the last data check; A.7.4 allows 30 days


@pytest.fixture
def slack() -> Iterator[SlackFake]:
    with SlackFake() as fake:
        fake.add_user(MARIA)
        fake.add_user(AISHA)
        yield fake


@pytest.fixture
def runtime(register: Register, slack: SlackFake) -> Iterator[Runtime]:
    resources = Runtime(
        settings=load_settings(events_topic=TOPIC),
        register=register,
        load_policy=example_policy,
        chat=SlackChat(slack.bot_token, slack.base_url, retries=0),
    )
    with register.unit_of_work("test") as uow:
        uow.systems.add(AISystem(name="credit-scoring", owner=AISHA, intended_use="Score loan applications"))
        uow.dataset_versions.add(
            DatasetVersion(
                id="loans@v2",
                dataset="loans",
                version="v2",
                location={"source": "lake", "path": "loans/2026-09.csv"},
                change_kind="appended",
                received_at=CHECKED,
            )
        )
        uow.evidence.add(
            EvidenceRecord(
                event_key="urn:tests#data-1",
                flow="check-data-quality",
                event_type="org.aims.data.changed",
                subject="loans",
                recorded_at=CHECKED,
                collected_at=CHECKED,
                controls=["9.1", "A.7.4"],
                outcome={"verdict": "passed"},
                event={},
            )
        )
    with use(resources):
        yield resources


def collect(at: datetime, controls: list[str]) -> dict[str, Any]:
    """The flow's steps, as its run takes them (Kafka is not needed: the outbox keeps the events)."""
    from flows.freshness.collect_evidence import ask_owners, request_due

    wanted, keys = request_due.fn(at, controls)
    told = ask_owners.fn(wanted) if wanted.asks else {}
    return {"requested": [r.id for r in wanted.requests], "keys": keys, "told": told}


def staged(register: Register) -> list[dict[str, Any]]:
    with register.reader() as uow:
        return [m.event for m in uow.outbox.find()]


def requests(register: Register) -> list[EvidenceRequest]:
    with register.reader() as uow:
        return uow.evidence_requests.find(order_by="requested_at")


def test_stale_evidence_starts_one_collection_per_period_and_asks_the_owner_once(
    register: Register, runtime: Runtime, slack: SlackFake
) -> None:
    wanted = ["A.7.4", "A.2.3"]  # a data-quality control, and one a person must supply (no evidence)
    fresh = collect(CHECKED + timedelta(days=29), wanted)
    # A.7.4 is fresh for 30 days; A.2.3 has no evidence at all: its owner is asked.
    assert [r.split("@")[0] for r in fresh["requested"]] == ["A.2.3"]
    assert staged(register) == [] and fresh["told"] == {MARIA: "asked in Slack"}

    stale_day = CHECKED + timedelta(days=30, hours=1)
    first = collect(stale_day, wanted)
    assert first["requested"] == ["A.7.4@2026-10-31T09:00Z"]
    [event] = staged(register)
    assert event["type"] == "org.aims.data.changed" and event["id"] == "freshness:loans:v2:20261031"
    assert event["data"]["dataset_id"] == "loans" and event["data"]["version"] == "v2"
    assert event["data"]["source"] == "lake" and event["data"]["path"] == "loans/2026-09.csv"
    assert first["told"] == {}  # a data check collects A.7.4: nobody needs asking

    # Every run of the period after that starts nothing and asks nobody again.
    for days in (0, 1, 29):
        again = collect(stale_day + timedelta(days=days), wanted)
        assert again["requested"] == [] and again["keys"] == [] and again["told"] == {}
    assert len(staged(register)) == 1
    assert len(slack.messages) == 1  # Maria's, the first day

    # Still stale a period later: one more check of the latest version.
    later = collect(stale_day + timedelta(days=30), wanted)
    assert later["requested"] == ["A.7.4@2026-11-30T09:00Z"]
    assert [e["id"] for e in staged(register)] == [
        "freshness:loans:v2:20261031",
        "freshness:loans:v2:20261130",
    ]
    rows = {r.id: r for r in requests(register)}
    assert rows["A.7.4@2026-11-30T09:00Z"].collections == ["data check of loans v2"]
    assert rows["A.7.4@2026-11-30T09:00Z"].status == "stale"
    [asked] = [r for r in rows.values() if r.control == "A.2.3"]
    assert asked.status == "missing" and asked.asked == [f"{MARIA}: asked in Slack"]
    # The request is audited like any register write.
    with register.reader() as uow:
        assert {e.entity_id for e in uow.audit_entries("evidence_request")} == set(rows)


def test_one_message_per_person_lists_their_controls_and_a_slack_outage_is_recorded(
    register: Register, runtime: Runtime, slack: SlackFake
) -> None:
    slack.fail_next("conversations.open", error="internal_error", times=1)
    run = collect(CHECKED + timedelta(days=400), ["A.2.3", "A.4.4", "A.5.2"])
    with register.reader() as uow:
        rows = {r.control: r for r in uow.evidence_requests.find()}
    # A.5.2 is renewed by a reassessment of each system in use, and its owner is reminded of the
    # impact assessment; A.2.3 and A.4.4 are Maria's to supply.
    assert rows["A.5.2"].collections == ["risk reassessment of credit-scoring"]
    assert [e["type"] for e in staged(register)] == ["org.aims.risk.reassessment.requested"]
    # Maria is asked first (her controls come first in the catalogue): that message failed to open.
    assert run["told"] == {MARIA: "not sent: Slack did not deliver it", AISHA: "asked in Slack"}
    [delivered] = slack.messages
    assert "impact assessment of credit-scoring" in delivered["text"]
    assert rows["A.2.3"].asked == rows["A.4.4"].asked == [f"{MARIA}: not sent: Slack did not deliver it"]
    assert rows["A.5.2"].asked == [f"{AISHA}: asked in Slack"]
    # Nothing is sent again in this period: the register says who was not reached, for a person to see.
    assert collect(CHECKED + timedelta(days=401), ["A.2.3", "A.4.4", "A.5.2"])["told"] == {}


def test_the_run_says_what_it_did_first(register: Register, runtime: Runtime, slack: SlackFake) -> None:
    from flows.freshness.collect_evidence import (
        ask_owners,
        collection_headline,
        collection_markdown,
        request_due,
    )

    wanted, _ = request_due.fn(CHECKED + timedelta(days=31), ["A.7.4", "A.2.3"])
    told = ask_owners.fn(wanted)
    headline = collection_headline(wanted, told)
    assert headline == "2 control(s) due: 1 collection(s) started, 1 person(s) asked (1 reached in Slack)"
    page = collection_markdown(wanted, told, headline)
    assert "data check of loans v2" in page and f"{MARIA}: asked in Slack" in page
    again, _ = request_due.fn(CHECKED + timedelta(days=32), ["A.7.4", "A.2.3"])
    assert collection_headline(again, {}).startswith("nothing new")
