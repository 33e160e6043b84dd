"""Human approvals end to end: the real broker, the real Prefect server and worker, the gateway as
its own process, and the Slack and Jira fakes on loopback (started with the session stack).

Each test asks for an approval with an approval-requested event on the default events topic; this
module's router routes that topic from its end. The request-approval run posts to Slack and Jira
and suspends; decisions come in as a signed Slack click, a Jira transition (its webhook), the CLI or
the Prefect API the UI uses, and the router resumes the run.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from events.producer import EventPublisher
from schemas.events import ApprovalRequestedEvent
from schemas.policy_file import load_policy
from schemas.records import Approval, ApprovalDecision
from schemas.settings import AimsSettings
from tests.fakes.slack_signing import signed_interaction_request
from tests.people import AISHA, DEV, JON, MARIA, SAM, TOM
from tests.support import SLACK_SIGNING_SECRET, SessionStack, jira, poll, slack

DEFAULT_TOPIC = AimsSettings().events_topic
DECISION_SUBMITTED = "org.aims.approval.decision.submitted"


@pytest.fixture(scope="module")
def router(stack: SessionStack) -> Iterator[Any]:
    with stack.default_topic_router("approvals") as running:
        yield running


@pytest.fixture(scope="module")
def gateway(stack: SessionStack) -> Iterator[str]:
    with stack.gateway("gateway") as url:
        yield url


def request(stack: SessionStack, level: str, requested_by: str = DEV) -> str:
    """Publish an approval request; its id."""
    approval_id = f"approval-test-{uuid.uuid4().hex[:10]}"
    event = ApprovalRequestedEvent.model_validate(
        {
            "specversion": "1.0",
            "id": f"{approval_id}:requested",
            "source": "urn:aims:tests",
            "time": datetime.now(UTC).isoformat(),
            "data": {
                "approval_id": approval_id,
                "ai_system": "credit-scoring",
                "subject": f"model-version:credit-scoring/{approval_id}",
                "requested_decision": "go-live",
                "risk_level": level,
                "requested_by": requested_by,
                "summary": "Go-live of a new credit-scoring model.",
            },
        }
    )
    publisher = EventPublisher(stack.bootstrap, DEFAULT_TOPIC)
    try:
        publisher.publish(event)
    finally:
        publisher.close()
    return approval_id


def run_of(stack: SessionStack, approval_id: str) -> tuple[str, str] | None:
    """(flow run id, state name) of the request-approval run waiting for this approval."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterTags
    from prefect.client.schemas.sorting import FlowRunSort

    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(tags=FlowRunFilterTags(all_=[f"approval:{approval_id}"])),
            sort=FlowRunSort.EXPECTED_START_TIME_DESC,
            limit=1,
        )
    if not runs:
        return None
    run = runs[0]
    return str(run.id), run.state.name if run.state else "?"


def wait_state(stack: SessionStack, approval_id: str, states: set[str], timeout: float = 120) -> str:
    found = poll(
        lambda: (r := run_of(stack, approval_id)) and r[1] in states and r,
        timeout,
        f"the request-approval run of {approval_id} in {states}",
    )
    return found[0]


def approval(stack: SessionStack, approval_id: str) -> Approval:
    with stack.register().reader() as uow:
        return uow.approvals.one(approval_id)


def decisions(stack: SessionStack, approval_id: str) -> list[ApprovalDecision]:
    with stack.register().reader() as uow:
        return uow.decisions.find(approval_id=approval_id, order_by="decided_at")


def request_message(stack: SessionStack, approval_id: str, channel: str = "ai-model-risk") -> dict[str, Any]:
    def find() -> dict[str, Any] | None:
        return next(
            (
                m
                for m in slack(stack).messages
                if m["channel_name"] == channel and approval_id in json.dumps(m)
            ),
            None,
        )

    return poll(find, 60, f"the Slack request of {approval_id} in #{channel}")


def click(
    stack: SessionStack,
    gateway: str,
    message: dict[str, Any],
    who: str,
    action: str,
    reason: str | None = None,
    **sign: Any,
) -> httpx.Response:
    approval_id = message["blocks"][-2]["elements"][0]["value"]
    payload = slack(stack).block_actions(
        message["channel"],
        message["ts"],
        user_id=stack.slack_users[who],
        action_id=f"approval.{action}",
        value=approval_id,
        reason=reason,
    )
    body, headers = signed_interaction_request(payload, sign.pop("secret", SLACK_SIGNING_SECRET), **sign)
    return httpx.post(f"{gateway}/slack/interactions", content=body, headers=headers, timeout=10)


def decision_events(stack: SessionStack, approval_id: str, count: int) -> list[dict[str, Any]]:
    """The approval events of this request on the topic, once exactly `count` of them are there:
    the request itself, each accepted decision and the outcome."""

    def ours(record: Any) -> bool:
        if not record.value or approval_id.encode() not in record.value:
            return False
        event = json.loads(record.value)
        return bool(
            event.get("type", "").startswith("org.aims.approval.") and event["subject"] == approval_id
        )

    return [json.loads(r.value) for r in stack.read_matching(DEFAULT_TOPIC, ours, count, timeout=60)]


def has_buttons(message: dict[str, Any]) -> bool:
    return any(b.get("type") == "actions" for b in message.get("blocks") or [])


def jira_issue(stack: SessionStack, approval_id: str) -> str:
    return poll(lambda: approval(stack, approval_id).jira_issue, 60, f"the Jira issue of {approval_id}")


def test_approve_in_slack_resumes_the_run_and_leaves_the_evidence(
    stack: SessionStack, router: Any, gateway: str
) -> None:
    approval_id = request(stack, "medium")
    run_id = wait_state(stack, approval_id, {"Suspended"})
    message = request_message(stack, approval_id)
    assert has_buttons(message)
    key = jira_issue(stack, approval_id)
    assert key.startswith("MRC-") and jira(stack).status(key) == "To Do"

    # A double click: two signed posts of the same button.
    first = click(stack, gateway, message, AISHA, "approve", "Bias audit done")
    second = click(stack, gateway, message, AISHA, "approve", "Bias audit done")
    assert first.status_code == 200 and second.status_code == 200
    assert {first.json()["status"], second.json()["status"]} == {"accepted", "duplicate"}

    assert wait_state(stack, approval_id, {"Completed"}) == run_id
    done = approval(stack, approval_id)
    assert done.status == "approved" and done.decided_at is not None
    accepted = [d for d in decisions(stack, approval_id) if d.accepted]
    assert [(d.decided_by, d.channel, d.decision, d.reason) for d in accepted] == [
        (AISHA, "slack", "approve", "Bias audit done")
    ]
    updated = slack(stack).message(message["channel"], message["ts"])
    assert not has_buttons(updated) and "Approved" in json.dumps(updated["blocks"])
    assert jira(stack).status(key) == "Approved"
    assert any("Approved by" in c for c in jira(stack).comments(key))
    events = decision_events(stack, approval_id, 3)  # requested, submitted, decided
    types = [e["type"] for e in events]
    assert types.count(DECISION_SUBMITTED) == 1
    decided = [e for e in events if e["type"] == "org.aims.approval.decided"]
    assert len(decided) == 1 and decided[0]["data"]["approved"] is True
    with stack.register().reader() as uow:
        audited = uow.audit_entries("approval_decision", accepted[0].id)
    assert audited and audited[0].actor == f"slack:{AISHA}"
    # The run re-executed on resume; nothing was posted or filed a second time.
    posts = [
        m for m in slack(stack).messages if approval_id in json.dumps(m) and m["via"] == "chat.postMessage"
    ]
    assert len(posts) == 1
    created = [r for r in jira(stack).requests if r.method == "POST" and r.path.endswith("/issue")]
    assert sum(approval_id in json.dumps(r.json) for r in created) == 1
    # The clicker was answered privately.
    answers = [p for p in slack(stack).response_posts if p.message_ts == message["ts"]]
    assert any("Recorded" in p.body["text"] for p in answers)
    assert any("Already recorded" in p.body["text"] for p in answers)


def test_reject_with_a_jira_transition_is_recorded_once(
    stack: SessionStack, router: Any, gateway: str
) -> None:
    from jira import JIRA

    approval_id = request(stack, "high")
    wait_state(stack, approval_id, {"Suspended"})
    key = jira_issue(stack, approval_id)
    client = JIRA(server=jira(stack).url, basic_auth=(MARIA, stack.jira_tokens[MARIA]), max_retries=0)
    client.transition_issue(key, "Reject", comment="No fairness evaluation on the new segment")
    jira(stack).wait_deliveries(1)
    wait_state(stack, approval_id, {"Completed"})
    # Jira retries deliveries: a redelivered webhook changes nothing.
    # `redeliver` returns once the gateway answered; the exact count (the session's fake keeps every
    # test's deliveries) shows nothing else was sent.
    before = len(jira(stack).deliveries)
    assert jira(stack).redeliver().status == 200
    assert len(jira(stack).wait_deliveries(before + 1)) == before + 1
    done = approval(stack, approval_id)
    assert done.status == "rejected"
    accepted = [d for d in decisions(stack, approval_id) if d.accepted]
    assert [(d.decided_by, d.channel, d.decision) for d in accepted] == [(MARIA, "jira", "reject")]
    assert accepted[0].reason == "No fairness evaluation on the new segment"
    assert jira(stack).status(key) == "Rejected"
    message = request_message(stack, approval_id)
    assert not has_buttons(slack(stack).message(message["channel"], message["ts"]))
    events = decision_events(stack, approval_id, 3)  # requested, submitted, decided
    decided = [e for e in events if e["type"] == "org.aims.approval.decided"]
    assert decided[0]["data"]["outcome"] == "rejected" and decided[0]["data"]["approved"] is False


def test_quorum_of_two_from_the_cli_and_the_prefect_ui(
    stack: SessionStack, router: Any, gateway: str
) -> None:
    from prefect.client.orchestration import get_client

    approval_id = request(stack, "high")
    run_id = wait_state(stack, approval_id, {"Suspended"})
    cli = stack.aims("approvals", "approve", approval_id, "--by", AISHA, "--reason", "Model card reviewed")
    assert cli.returncode == 0, cli.stderr
    assert "approval recorded" in cli.stdout and "sent" in cli.stdout
    # One of two: the run resumes, shows the progress and waits again.
    message = request_message(stack, approval_id)
    poll(
        lambda: "1 of 2 approvals" in json.dumps(slack(stack).message(message["channel"], message["ts"])),
        90,
        "the Slack message to show 1 of 2",
    )
    wait_state(stack, approval_id, {"Suspended"})
    assert approval(stack, approval_id).status == "pending"
    # The Prefect UI resumes through the API with the form's input. The session's SQLite server may
    # answer 503 "database is locked" under load, and this client does not retry: the user would.
    from prefect.exceptions import PrefectHTTPStatusError

    with get_client(sync_client=True) as client:
        for attempt in range(5):
            try:
                client.resume_flow_run(
                    uuid.UUID(run_id),
                    run_input={"approver": MARIA, "decision": "approve", "reason": "Compliance ok"},
                )
                break
            except PrefectHTTPStatusError as exc:
                if exc.response.status_code != 503 or attempt == 4:
                    raise
                time.sleep(1)
    assert wait_state(stack, approval_id, {"Completed"}) == run_id
    accepted = [d for d in decisions(stack, approval_id) if d.accepted]
    assert sorted((d.decided_by, d.channel) for d in accepted) == [(AISHA, "cli"), (MARIA, "prefect-ui")]
    assert approval(stack, approval_id).status == "approved"
    # Deciding again from the CLI is a duplicate, not a second decision.
    again = stack.aims("approvals", "approve", approval_id, "--by", AISHA)
    assert again.returncode == 0 and "nothing changed" in again.stdout
    shown = stack.aims("approvals", "show", approval_id)
    assert "prefect-ui" in shown.stdout and "cli" in shown.stdout


def test_critical_needs_two_approvers_from_different_groups(
    stack: SessionStack, router: Any, gateway: str
) -> None:
    """Critical: quorum 2 with distinct groups (compliance and executive); two compliance
    approvals are not enough, an executive's completes it."""
    approval_id = request(stack, "critical")
    wait_state(stack, approval_id, {"Suspended"})
    compliance = request_message(stack, approval_id, channel="compliance-approvals")
    executive = request_message(stack, approval_id, channel="exec-risk-decisions")
    assert (
        click(stack, gateway, compliance, JON, "approve", "Controls in place").json()["status"] == "accepted"
    )
    maria = stack.aims("approvals", "approve", approval_id, "--by", MARIA)
    assert maria.returncode == 0, maria.stderr
    poll(
        lambda: (
            "still needed from executive"
            in json.dumps(slack(stack).message(executive["channel"], executive["ts"]))
        ),
        90,
        "the request to say an executive is still needed",
    )
    wait_state(stack, approval_id, {"Suspended"})
    assert approval(stack, approval_id).status == "pending"
    assert click(stack, gateway, executive, SAM, "approve", "Accepted").json()["status"] == "accepted"
    wait_state(stack, approval_id, {"Completed"})
    assert approval(stack, approval_id).status == "approved"
    accepted = {d.decided_by: d.channel for d in decisions(stack, approval_id) if d.accepted}
    assert accepted == {JON: "slack", MARIA: "cli", SAM: "slack"}
    for ref in (compliance, executive):
        assert not has_buttons(slack(stack).message(ref["channel"], ref["ts"]))


def test_forged_stale_unauthorized_and_self_approvals_are_refused(
    stack: SessionStack, router: Any, gateway: str
) -> None:
    approval_id = request(stack, "medium", requested_by=TOM)
    wait_state(stack, approval_id, {"Suspended"})
    message = request_message(stack, approval_id)

    forged = click(stack, gateway, message, AISHA, "approve", secret="not-the-secret")
    stale = click(stack, gateway, message, AISHA, "approve", timestamp=int(time.time()) - 301)
    assert forged.status_code == 401 and stale.status_code == 401
    outsider = click(stack, gateway, message, MARIA, "approve")
    self_approval = click(stack, gateway, message, TOM, "approve")
    no_reason = click(stack, gateway, message, AISHA, "reject")
    assert [r.json()["status"] for r in (outsider, self_approval, no_reason)] == ["refused"] * 3
    bad_hook = httpx.post(
        f"{gateway}/jira/webhook",
        content=b'{"webhookEvent": "jira:issue_updated"}',
        headers={"X-Hub-Signature": "sha256=" + "0" * 64, "Content-Type": "application/json"},
        timeout=10,
    )
    assert bad_hook.status_code == 401
    # In Jira, an outsider's transition is refused, commented, and the issue put back.
    from jira import JIRA

    key = jira_issue(stack, approval_id)
    outsider_jira = JIRA(server=jira(stack).url, basic_auth=(SAM, stack.jira_tokens[SAM]), max_retries=0)
    outsider_jira.transition_issue(key, "Approve", comment="Looks fine to me")
    poll(lambda: jira(stack).status(key) == "To Do" or None, 60, f"{key} to be put back to To Do")
    assert any(
        "did not record this decision" in c and "not in approver group" in c
        for c in jira(stack).comments(key)
    )
    cli = stack.aims("approvals", "approve", approval_id, "--by", JON)
    assert cli.returncode != 0 and "not in approver group(s) model-risk" in cli.stderr

    refused = decisions(stack, approval_id)
    assert all(not d.accepted for d in refused)
    reasons = {d.decided_by: d.refusal or "" for d in refused}
    assert "not in approver group" in reasons[MARIA]
    assert "separation of duties" in reasons[TOM]
    assert "needs a reason" in reasons[AISHA]
    assert "not in approver group" in reasons[SAM]
    assert JON in reasons and len(refused) == 5  # forged and stale posts left no trace
    answers = [p.body["text"] for p in slack(stack).response_posts if p.message_ts == message["ts"]]
    assert sum(t.startswith("Not recorded") for t in answers) == 3
    # Only the request itself: no refused attempt was announced.
    assert [e["type"] for e in decision_events(stack, approval_id, 1)] == ["org.aims.approval.requested"]
    assert run_of(stack, approval_id)[1] == "Suspended"  # type: ignore[index]
    assert approval(stack, approval_id).status == "pending"


def test_slack_rate_limits_three_times_and_the_request_is_posted_once(
    stack: SessionStack, router: Any, gateway: str
) -> None:
    slack(stack).fail_next("chat.postMessage", status=429, times=3, retry_after=0)
    before = len(slack(stack).calls_to("chat.postMessage"))
    approval_id = request(stack, "medium")
    wait_state(stack, approval_id, {"Suspended"})
    posts = [
        m for m in slack(stack).messages if approval_id in json.dumps(m) and m["via"] == "chat.postMessage"
    ]
    assert len(posts) == 1
    assert len(slack(stack).calls_to("chat.postMessage")) - before >= 4  # three 429s, then the post


def chase(stack: SessionStack, approval_id: str, as_of: datetime) -> None:
    """One chase-approvals run, for this approval only, looking from `as_of`."""
    key = f"chase-{approval_id}-{as_of.isoformat()}-{uuid.uuid4().hex[:4]}"
    stack.launch("chase-approvals/aims", {"as_of": as_of.isoformat(), "approvals": [approval_id]}, key)
    stack.wait_for_runs([key], states={"Completed"}, timeout=120)


def test_a_waiting_run_that_was_cancelled_is_replaced_and_posts_nothing_twice(
    stack: SessionStack, router: Any, gateway: str
) -> None:
    from prefect.client.orchestration import get_client
    from prefect.states import Cancelled

    approval_id = request(stack, "medium")
    first = wait_state(stack, approval_id, {"Suspended"})
    with get_client(sync_client=True) as client:
        client.set_flow_run_state(uuid.UUID(first), Cancelled(), force=True)
    wait_state(stack, approval_id, {"Cancelled"})
    chase(stack, approval_id, datetime.now(UTC))
    second = poll(
        lambda: (r := run_of(stack, approval_id)) and r[0] != first and r[1] == "Suspended" and r[0],
        120,
        "a new request run, waiting",
    )
    assert approval(stack, approval_id).flow_run_id == second
    cli = stack.aims("approvals", "approve", approval_id, "--by", AISHA)
    assert cli.returncode == 0, cli.stderr
    assert wait_state(stack, approval_id, {"Completed"}) == second
    assert approval(stack, approval_id).status == "approved"
    posts = [
        m for m in slack(stack).messages if approval_id in json.dumps(m) and m["via"] == "chat.postMessage"
    ]
    assert len(posts) == 1 and not has_buttons(slack(stack).message(posts[0]["channel"], posts[0]["ts"]))


def test_reminder_escalation_and_expiry_on_the_policys_clock(
    stack: SessionStack, router: Any, gateway: str
) -> None:
    """Medium risk: due after 120 h; escalate at 72 h (model-risk) and 120 h (compliance); remind 24 h
    before; expire at 240 h. The chase runs are given the time to look from (`as_of`)."""
    approval_id = request(stack, "medium")
    run_id = wait_state(stack, approval_id, {"Suspended"})
    requested_at = approval(stack, approval_id).requested_at

    def at(hours: float) -> None:
        chase(stack, approval_id, requested_at + timedelta(hours=hours))

    def notices() -> list[tuple[str, str]]:
        with stack.register().reader() as uow:
            return [(n.kind, n.step) for n in uow.notices.find(approval_id=approval_id, order_by="sent_at")]

    at(1)
    assert [k for k in notices() if k[0] != "request-slack"] == []
    at(73)
    at(97)
    at(98)  # nothing new: each notice once
    assert [k for k in notices() if k[0] != "request-slack"] == [("escalation", "0"), ("reminder", "24")]
    message = request_message(stack, approval_id)
    thread = [m for m in slack(stack).messages if m.get("thread_ts") == message["ts"]]
    assert len(thread) == 2 and "Reminder" in thread[1]["text"]
    at(121)
    escalated = request_message(stack, approval_id, channel="compliance-approvals")
    assert has_buttons(escalated)
    assert approval(stack, approval_id).escalated_to == ["model-risk", "compliance"]
    key = jira_issue(stack, approval_id)
    assert sum("Escalation" in c for c in jira(stack).comments(key)) == 2
    at(241)
    assert wait_state(stack, approval_id, {"Completed"}) == run_id
    done = approval(stack, approval_id)
    assert done.status == "expired"
    events = decision_events(stack, approval_id, 3)  # requested, the deadline's expiry, decided
    decided = [e for e in events if e["type"] == "org.aims.approval.decided"]
    assert decided[0]["data"]["outcome"] == "expired" and decided[0]["data"]["approved"] is False
    for ref in (message, escalated):
        assert not has_buttons(slack(stack).message(ref["channel"], ref["ts"]))
    assert jira(stack).status(key) == "Rejected"


def test_socket_mode_takes_the_same_clicks_without_a_public_url(stack: SessionStack, router: Any) -> None:
    """A gateway holding a Socket Mode connection (app token) instead of an HTTP endpoint."""
    from connectors.slack import SlackChat
    from events.kafka_clients import make_producer
    from events.outbox import OutboxRelay
    from gateway.answers import run_later
    from gateway.desk import DecisionDesk
    from gateway.slack_socket import SocketModeListener

    fake = slack(stack)
    settings = AimsSettings(
        state_dir=stack.state,
        slack_app_token=fake.app_token,  # type: ignore[arg-type]
        slack_bot_token=fake.bot_token,  # type: ignore[arg-type]
        slack_api_url=fake.base_url,
    )
    relay = OutboxRelay(stack.register(), make_producer(stack.bootstrap), "gateway:test")
    desk = DecisionDesk(
        stack.register(),
        lambda: load_policy(stack.state / "policy.yaml"),
        DEFAULT_TOPIC,
        relay.send,
        SlackChat(fake.bot_token, fake.base_url),
        None,
    )
    listener = SocketModeListener(settings, desk, run_later)
    listener.start()
    try:
        fake.socket_wait_connected()
        approval_id = request(stack, "medium")
        run_id = wait_state(stack, approval_id, {"Suspended"})
        message = request_message(stack, approval_id)
        payload = fake.block_actions(
            message["channel"],
            message["ts"],
            user_id=stack.slack_users[TOM],
            action_id="approval.approve",
            value=approval_id,
        )
        envelope = fake.socket_send_interactive(payload)
        fake.socket_wait_ack(envelope)
        assert wait_state(stack, approval_id, {"Completed"}) == run_id
    finally:
        fake.socket_close()
        listener.stop()
        relay.producer.close()
    accepted = [d for d in decisions(stack, approval_id) if d.accepted]
    assert [(d.decided_by, d.channel) for d in accepted] == [(TOM, "slack")]
    assert approval(stack, approval_id).status == "approved"
