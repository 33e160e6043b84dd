"""The gateway's HTTP boundary: signatures first, then payloads, then the one decision path.

In-process (Starlette's test client) on a throwaway SQLite register: what reaches the register and
the outbox is read back, nothing is patched.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from slack_sdk.signature import SignatureVerifier
from starlette.testclient import TestClient

from connectors.register.store import Register
from gateway.signatures import jira_signature_ok, slack_signature_ok
from schemas.policy import Policy
from tests.fakes.slack_signing import block_actions_payload, signed_interaction_request
from tests.gateway.desk import JIRA_SECRET, SLACK_SECRET, open_gateway
from tests.people import AISHA
from tests.records import waiting_approval
from tests.resources import example_policy


@pytest.fixture
def register(register: Register) -> Register:
    """The shared register with one medium-risk approval waiting for model-risk."""
    reg = register
    with reg.unit_of_work("test") as uow:
        now = datetime.now(UTC)
        uow.approvals.add(waiting_approval("approval-1", now, jira_issue="MRC-1"))
    return reg


@pytest.fixture
def client(register: Register, policy: Policy) -> Iterator[tuple[TestClient, list[str]]]:
    # No chat and no tracker: the approval path answers in the HTTP response alone.
    with open_gateway(register, policy) as gw:
        yield gw.http, gw.sent


def rows(register: Register) -> tuple[int, int]:
    with register.reader() as uow:
        return uow.decisions.count(), uow.outbox.count()


def click(user: str = "U1", action: str = "approval.approve", value: str = "approval-1") -> dict[str, Any]:
    return block_actions_payload(
        user_id=user,
        user_name="someone",
        channel_id="C1",
        message_ts="1.000001",
        action_id=action,
        value=value,
        response_url="http://127.0.0.1:9/hook",
    )


# -- signatures ----------------------------------------------------------------------------------


def test_slack_signatures_agree_with_the_sdk_verifier() -> None:
    body = b"payload=%7B%7D"
    now = int(time.time())
    signature = SignatureVerifier(SLACK_SECRET).generate_signature(timestamp=str(now), body=body)
    assert slack_signature_ok(SLACK_SECRET, body, str(now), signature, now)
    assert not slack_signature_ok(SLACK_SECRET, body + b"x", str(now), signature, now)
    assert not slack_signature_ok("other", body, str(now), signature, now)
    assert not slack_signature_ok(SLACK_SECRET, body, str(now), signature, now + 301)
    assert slack_signature_ok(SLACK_SECRET, body, str(now), signature, now + 300)
    for ts, sig in ((None, signature), (str(now), None), ("soon", signature), (str(now), "")):
        assert not slack_signature_ok(SLACK_SECRET, body, ts, sig, now)


def test_jira_signature_is_an_hmac_of_the_raw_body() -> None:
    body = b'{"webhookEvent":"jira:issue_updated"}'
    good = "sha256=" + hmac.new(JIRA_SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert jira_signature_ok(JIRA_SECRET, body, good)
    assert not jira_signature_ok(JIRA_SECRET, body + b" ", good)
    assert not jira_signature_ok(JIRA_SECRET, body, good.replace("sha256=", "sha1="))
    assert not jira_signature_ok(JIRA_SECRET, body, None)


# -- the HTTP boundary ---------------------------------------------------------------------------


def test_a_signed_click_by_an_unknown_slack_user_is_refused_and_recorded(
    client: tuple[TestClient, list[str]], register: Register
) -> None:
    http, sent = client
    body, headers = signed_interaction_request(click(), SLACK_SECRET)
    answer = http.post("/slack/interactions", content=body, headers=headers)
    assert answer.status_code == 200 and answer.json() == {"status": "refused"}
    with register.reader() as uow:
        (refused,) = uow.decisions.find(approval_id="approval-1")
    assert not refused.accepted and "not in approver group(s) model-risk" in (refused.refusal or "")
    assert refused.decided_by == "slack:U1" and sent == [] and rows(register)[1] == 0


def test_bad_signatures_are_401_and_change_nothing(
    client: tuple[TestClient, list[str]], register: Register
) -> None:
    http, _ = client
    body, headers = signed_interaction_request(click(), "wrong-secret")
    assert http.post("/slack/interactions", content=body, headers=headers).status_code == 401
    stale_body, stale = signed_interaction_request(click(), SLACK_SECRET, timestamp=int(time.time()) - 400)
    assert http.post("/slack/interactions", content=stale_body, headers=stale).status_code == 401
    hook = json.dumps({"webhookEvent": "jira:issue_updated", "issue": {"key": "MRC-1"}}).encode()
    forged = {"X-Hub-Signature": "sha256=" + "ab" * 32, "Content-Type": "application/json"}
    assert http.post("/jira/webhook", content=hook, headers=forged).status_code == 401
    assert http.post("/jira/webhook", content=hook).status_code == 401
    assert rows(register) == (0, 0)


def test_healthz(client: tuple[TestClient, list[str]]) -> None:
    http, _ = client
    assert http.get("/healthz").json() == {
        "status": "ok",
        "pending_approvals": 1,
        "open_incidents": 0,
        "art73_clocks_running": 0,
        "slack": False,
        "jira": False,
    }


def jira_hook(user: str, to: str, comment: str | None = None, changelog: str = "1") -> dict[str, Any]:
    hook: dict[str, Any] = {
        "timestamp": int(time.time() * 1000),
        "webhookEvent": "jira:issue_updated",
        "issue_event_type_name": "issue_generic",
        # The account id the policy maps to `user` (example_policy): Jira's proof of who moved it.
        "user": {
            "accountId": example_policy().people[user].jira,
            "displayName": "Someone",
            "emailAddress": user,
        },
        "issue": {"id": "10001", "key": "MRC-1", "fields": {"status": {"name": to}}},
        "changelog": {
            "id": changelog,
            "items": [{"field": "status", "fieldtype": "jira", "fromString": "To Do", "toString": to}],
        },
    }
    if comment is not None:
        hook["comment"] = {"body": comment}
    return hook


def post_hook(http: TestClient, hook: dict[str, Any]) -> Any:
    body = json.dumps(hook).encode()
    signature = "sha256=" + hmac.new(JIRA_SECRET.encode(), body, hashlib.sha256).hexdigest()
    return http.post("/jira/webhook", content=body, headers={"X-Hub-Signature": signature})


def test_a_jira_approval_is_accepted_once_however_often_it_is_delivered(
    client: tuple[TestClient, list[str]], register: Register
) -> None:
    http, sent = client
    first = post_hook(http, jira_hook(AISHA, "Approved", "ok"))
    again = post_hook(http, jira_hook(AISHA, "Approved", "ok"))
    assert first.json() == {"status": "accepted"} and again.json() == {"status": "duplicate"}
    assert rows(register) == (1, 1) and len(sent) == 1
    with register.reader() as uow:
        (message,) = uow.outbox.find()
    assert message.event["type"] == "org.aims.approval.decision.submitted"
    assert message.event["data"]["approver"] == AISHA and message.event["data"]["channel"] == "jira"


def test_other_transitions_and_issues_are_ignored(
    client: tuple[TestClient, list[str]], register: Register
) -> None:
    http, _ = client
    assert "ignored" in post_hook(http, jira_hook(AISHA, "In Progress")).json()
    other = jira_hook(AISHA, "Approved")
    other["issue"]["key"] = "MRC-99"
    assert "ignored" in post_hook(http, other).json()
    assert rows(register) == (0, 0)


# -- property: nothing unsigned or malformed gets through ----------------------------------------

junk = st.one_of(st.binary(max_size=300), st.text(max_size=300).map(str.encode))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    body=junk, ts=st.one_of(st.none(), st.text(max_size=12)), sig=st.one_of(st.none(), st.text(max_size=80))
)
def test_unsigned_slack_posts_are_401_and_leave_no_trace(
    client: tuple[TestClient, list[str]], register: Register, body: bytes, ts: str | None, sig: str | None
) -> None:
    http, _ = client
    headers = {
        k: v for k, v in (("X-Slack-Request-Timestamp", ts), ("X-Slack-Signature", sig)) if v is not None
    }
    headers = {k: v.encode("ascii", "ignore").decode() for k, v in headers.items()}
    assert http.post("/slack/interactions", content=body, headers=headers).status_code == 401
    assert rows(register) == (0, 0)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(payload=json_values, as_form=st.booleans())
def test_signed_garbage_is_answered_4xx_or_ignored_never_5xx(
    client: tuple[TestClient, list[str]], register: Register, payload: Any, as_form: bool
) -> None:
    http, _ = client
    text = json.dumps(payload)
    body = ("payload=" + quote(text)).encode() if as_form else text.encode()
    now = int(time.time())
    signature = SignatureVerifier(SLACK_SECRET).generate_signature(timestamp=str(now), body=body)
    headers = {"X-Slack-Request-Timestamp": str(now), "X-Slack-Signature": signature}
    answer = http.post("/slack/interactions", content=body, headers=headers)
    assert answer.status_code in (200, 400)
    if answer.status_code == 200:
        assert "ignored" in answer.json() or answer.json()["status"] == "refused"
    hook = post_hook(http, payload if isinstance(payload, dict) else {"value": payload})
    assert hook.status_code in (200, 400)
    with register.reader() as uow:
        assert uow.decisions.count(accepted=True) == 0 and uow.outbox.count() == 0
