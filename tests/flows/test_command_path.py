"""The one command path on a real register (SQLite): the handler table records every attempt,
the CLI answers from the verdict, and the gateway dispatches Jira webhooks by the issue's label.

Nothing is patched: rows, outbox messages, Jira comments and moves are read back.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from aims.cli import main
from connectors.register.store import Register
from flows.approvals.commands import DecideApproval
from flows.commands import Actor, Context, handle
from flows.reviews.commands import RecordReviewResults, Result, ResultKind
from gateway.app import create_app
from gateway.desk import DecisionDesk
from schemas.payloads import Decision, DecisionChannel
from schemas.policy_file import load_policy
from schemas.records import ManagementReview
from schemas.settings import AimsSettings
from tests.gateway.desk import RecordingTracker
from tests.records import serious_incident, waiting_approval

POLICY_FILE = Path(__file__).resolve().parents[2] / "policy" / "aims-policy.yaml"
POLICY = load_policy(POLICY_FILE)
TOPIC = "aims.events"
JIRA_SECRET = "command-path-jira-secret"
AISHA = "aisha.khan@northwind.example"  # model-risk: decides approval-1, responds to incidents
CLAIRE = "claire.dubois@northwind.example"  # attends management reviews
DEV = "dev@northwind.example"  # in no group
INC, REVIEW = "urn:aims:test#inc-1", "scheduled:2027-01-15"
NOW = datetime.now(UTC).replace(microsecond=0)


def seed(register: Register) -> None:
    with register.unit_of_work("test") as uow:
        uow.approvals.add(waiting_approval("approval-1", NOW, jira_issue="MRC-1"))
        uow.incidents.add(
            serious_incident(
                INC, NOW - timedelta(hours=2), title="Approval rates dropped", jira_issue="AIINC-1"
            )
        )
        uow.reviews.add(ManagementReview(id=REVIEW, status="prepared", jira_issue="AIINC-7", meeting_at=NOW))


@pytest.fixture
def register(tmp_path: Path) -> Iterator[Register]:
    reg = Register.for_state(tmp_path)
    reg.migrate()
    seed(reg)
    yield reg
    reg.close()


# -- the handler table ----------------------------------------------------------------------------


def test_a_decision_is_recorded_once_and_a_refusal_once_per_delivery(register: Register) -> None:
    ctx = Context(register, POLICY, TOPIC)
    outsider = DecideApproval(
        actor=Actor(DEV, DecisionChannel.slack, POLICY.people[DEV].slack),
        approval_id="approval-1",
        decision=Decision.approve,
        delivery=("slack", "approval-1", "UDEV", "1.1"),
    )
    first, again = handle(outsider, ctx), handle(outsider, ctx)
    assert first.refused and first.fresh and first.logged and not first.keys
    assert again.refused and not again.fresh  # the redelivery: recorded once, answered once
    assert "not in approver group(s) model-risk" in first.reasons[0]
    mine = DecideApproval(
        actor=Actor(AISHA, DecisionChannel.jira, POLICY.people[AISHA].jira),
        approval_id="approval-1",
        decision=Decision.approve,
    )
    accepted = handle(mine, ctx)
    assert accepted.accepted and accepted.reply == "your approval recorded" and len(accepted.keys) == 1
    assert handle(mine, ctx).duplicate
    with register.reader() as uow:
        rows = uow.decisions.find(approval_id="approval-1")
        (event,) = [m.event for m in uow.outbox.find()]
    assert sorted((d.decided_by, d.accepted) for d in rows) == [(AISHA, True), (DEV, False)]
    assert event["type"] == "org.aims.approval.decision.submitted" and event["data"]["channel"] == "jira"


def test_review_results_stated_at_once_are_one_verdict_with_a_part_each(register: Register) -> None:
    ctx = Context(register, POLICY, TOPIC)
    due = date.today() + timedelta(days=20)
    results = (
        Result(REVIEW, ResultKind.decision, CLAIRE, "jira", text="Keep the v2 scorer", at=NOW),
        Result(
            REVIEW, ResultKind.action, CLAIRE, "jira", text="Add a drift alert", owner=DEV, due=due, at=NOW
        ),
        Result(REVIEW, ResultKind.action, CLAIRE, "jira", text="No owner", due=due, at=NOW),
    )
    command = RecordReviewResults(
        actor=Actor(CLAIRE, DecisionChannel.jira), at=NOW, review_id=REVIEW, results=results
    )
    verdict = handle(command, ctx)
    assert verdict.refused and verdict.reasons == ("an action needs an owner",)
    assert [p.status for p in verdict.parts] == ["accepted", "accepted", "refused"]
    assert verdict.parts[1].ref == f"{REVIEW}/A1"
    assert handle(command, ctx).duplicate is False  # the refused one is refused again, not a duplicate
    assert (
        handle(RecordReviewResults(actor=command.actor, review_id=REVIEW, results=()), ctx).status
        == "ignored"
    )
    with register.reader() as uow:
        review = uow.reviews.one(REVIEW)
        attempts = uow.review_results.find(review_id=REVIEW)
    assert [d["decision"] for d in review.results] == ["Keep the v2 scorer"]
    assert sorted(a.accepted for a in attempts) == [False, True, True]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    text=st.text(max_size=20).flatmap(
        lambda t: st.sampled_from(["\x00", "\x1b", "\u202e", "\u2028", "\x7f"]).map(lambda c: t + c + t)
    )
)
def test_a_control_character_in_any_command_text_is_refused_and_nothing_recorded(
    register: Register, text: str
) -> None:
    ctx = Context(register, POLICY, TOPIC)
    with register.reader() as uow:
        before = uow.audit_entries()
    decision = DecideApproval(
        actor=Actor(AISHA, DecisionChannel.jira, POLICY.people[AISHA].jira),
        approval_id="approval-1",
        decision=Decision.reject,
        reason=text,
    )
    result = Result(REVIEW, ResultKind.decision, CLAIRE, "jira", text=text, at=NOW)
    results = RecordReviewResults(
        actor=Actor(CLAIRE, DecisionChannel.jira), review_id=REVIEW, results=(result,)
    )
    for command, where in ((decision, "reason"), (results, "text")):
        verdict = handle(command, ctx)
        assert verdict.refused and not verdict.logged, verdict
        assert where in verdict.message and "control characters" in verdict.message
    with register.reader() as uow:
        assert uow.audit_entries() == before  # nothing written, not even the refusal


# -- the CLI answers from the verdict --------------------------------------------------------------


@pytest.fixture
def cli_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in list(os.environ):
        if name.startswith(("AIMS_", "KAFKA_", "PREFECT_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AIMS_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("AIMS_POLICY_FILE", str(POLICY_FILE))
    register = Register.for_state(tmp_path)
    register.migrate()
    seed(register)
    register.close()
    return tmp_path


def test_the_cli_decides_on_the_same_path(cli_state: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["approvals", "approve", "approval-1", "--by", DEV]) == 2
    refused = capsys.readouterr().err
    assert "refused: " in refused and "not in approver group(s) model-risk" in refused
    assert "the attempt is logged" in refused
    assert main(["approvals", "approve", "approval-1", "--by", AISHA, "--reason", "fine"]) == 0
    assert f"approval-1: approval recorded for {AISHA}" in capsys.readouterr().out
    assert main(["approvals", "approve", "approval-1", "--by", AISHA]) == 0
    assert "nothing changed" in capsys.readouterr().out
    register = Register.for_state(cli_state)
    try:
        with register.reader() as uow:
            decisions = uow.decisions.find(approval_id="approval-1")
            outbox = uow.outbox.count()
    finally:
        register.close()
    assert sorted((d.decided_by, d.channel, d.accepted) for d in decisions) == [
        (AISHA, "cli", True),
        (DEV, "cli", False),
    ]
    assert outbox == 1


# -- the gateway dispatches Jira webhooks by the issue's label --------------------------------------


@dataclass
class Gateway:
    http: TestClient
    tracker: RecordingTracker
    sent: list[str]


@pytest.fixture
def gateway(register: Register) -> Iterator[Gateway]:
    sent: list[str] = []
    tracker = RecordingTracker()
    desk = DecisionDesk(register, lambda: POLICY, TOPIC, sent.extend, None, tracker)
    with TestClient(create_app(AimsSettings(jira_webhook_secret=JIRA_SECRET), desk, time.time)) as http:
        yield Gateway(http, tracker, sent)


def hook(key: str, labels: list[str] | None, to: str, by: str = AISHA, comment: str = "") -> Any:
    issue: dict[str, Any] = {"id": "1", "key": key}
    if labels is not None:
        issue["fields"] = {"labels": labels, "status": {"name": to}}
    return {
        "timestamp": int(time.time() * 1000),
        "webhookEvent": "jira:issue_updated",
        # The account id the policy maps to `by`: Jira's proof of who moved the issue.
        "user": {"accountId": POLICY.people[by].jira, "emailAddress": by},
        "issue": issue,
        "changelog": {"id": "9", "items": [{"field": "status", "fromString": "Triaged", "toString": to}]},
        "comment": {"body": comment},
    }


def post(gw: Gateway, payload: Any) -> Any:
    body = json.dumps(payload).encode()
    signature = "sha256=" + hmac.new(JIRA_SECRET.encode(), body, hashlib.sha256).hexdigest()
    return gw.http.post("/jira/webhook", content=body, headers={"X-Hub-Signature": signature}).json()


def test_the_label_says_what_the_issue_is(gateway: Gateway, register: Register) -> None:
    # Labelled as a review's, the incident's issue is looked up among reviews only: none, so ignored.
    assert "ignored" in post(gateway, hook("AIINC-1", ["aims-review"], "Contained"))
    # Labelled as the approval's: a move to Approved is a decision.
    assert post(gateway, hook("MRC-1", ["aims-approval-1", "aims"], "Approved")) == {"status": "accepted"}
    # Labelled as the incident's: a move to Contained is an update.
    assert post(gateway, hook("AIINC-1", ["aims-incident-x", "aims-incident"], "Contained")) == {
        "status": "accepted"
    }
    # Without labels (a webhook that sends no fields), the register says what the issue is.
    review = post(gateway, hook("AIINC-7", None, "In Progress", CLAIRE, "Decision: keep v2"))
    assert review == {"status": "recorded"}
    assert (
        gateway.tracker.comments[-1][0] == "AIINC-7"
        and "Recorded: decision recorded" in gateway.tracker.comments[-1][1]
    )
    # An issue that is none of ours is answered 200 and ignored.
    assert "ignored" in post(gateway, hook("OTHER-1", ["team-x"], "Approved"))
    assert "ignored" in post(gateway, hook("OTHER-2", None, "Done", CLAIRE, "Decision: x"))
    with register.reader() as uow:
        assert uow.incidents.one(INC).contained_at is not None
        assert uow.decisions.count(accepted=True) == 1 and uow.incident_updates.count() == 1
        assert uow.outbox.count() == 2 == len(gateway.sent)
    assert gateway.tracker.transitions == []
