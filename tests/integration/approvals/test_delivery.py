"""Human approvals end to end, delivery and time: Slack rate limits, a cancelled waiting run replaced,
reminders, escalation and expiry on the policy's clock, and Socket Mode clicks without a public URL.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from schemas.policy_file import load_policy
from schemas.settings import AimsSettings
from tests.integration.approvals.steps import (
    DEFAULT_TOPIC,
    approval,
    decision_events,
    decisions,
    has_buttons,
    jira_issue,
    request,
    request_message,
    run_of,
    wait_state,
)
from tests.people import AISHA, TOM
from tests.support import SessionStack, jira, poll, signing_key, slack


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
    relay = OutboxRelay(stack.register(), make_producer(stack.kafka), "gateway:test", signing_key())
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
