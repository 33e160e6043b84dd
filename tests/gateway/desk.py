"""The gateway under test: recording fakes of the chat and tracker Protocols, and a signed client.

Not a test module. `tests/gateway/conftest.py` builds the `gateway` fixture from `open_gateway`;
the approval, incident and review desk tests drive it with `post_click` and `post_hook`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from starlette.testclient import TestClient

from connectors.register.store import Register
from connectors.slack import Blocks, MessageRef
from gateway.app import create_app
from gateway.desk import DecisionDesk
from schemas.policy import Policy
from schemas.settings import AimsSettings
from tests.fakes.slack_signing import signed_interaction_request
from tests.people import AISHA, DEV, MARIA, SAM
from tests.resources import example_policy

SLACK_SECRET = "unit-slack-secret"
JIRA_SECRET = "unit-jira-secret"
TOPIC = "aims.events"
BOT_ACCOUNT = "acct-aims-bot"
SLACK_IDS = {AISHA: "UAISHA0001", MARIA: "UMARIA0001", SAM: "USAMOK0001", DEV: "UDEVEL0001"}
RESPONSE_URL = "http://127.0.0.1:9/hook"


# -- recording fakes of the Protocols --------------------------------------------------------------


@dataclass
class RecordingChat:
    """`Chat`: looks people up by email and records the ephemeral answers; posts nothing."""

    people: dict[str, str]
    responses: list[tuple[str, str]] = field(default_factory=list)

    def post(
        self, channel: str, text: str, blocks: Blocks | None = None, thread_ts: str | None = None
    ) -> MessageRef:
        raise AssertionError("the gateway posts no messages")

    def update(self, ref: MessageRef, text: str, blocks: Blocks) -> None:
        raise AssertionError("the gateway updates no messages")

    def post_to_person(self, email: str, text: str, blocks: Blocks | None = None) -> MessageRef | None:
        raise AssertionError("the gateway sends no direct messages")

    def user_id(self, email: str) -> str | None:
        return self.people.get(email)

    def respond(self, response_url: str, text: str) -> None:
        self.responses.append((response_url, text))


@dataclass
class RecordingTracker:
    """`IssueTracker`: records transitions and comments; `can_transition` says whether a move works."""

    can_transition: bool = True
    transitions: list[tuple[str, str, str | None]] = field(default_factory=list)
    comments: list[tuple[str, str]] = field(default_factory=list)

    def find(self, label: str) -> str | None:
        return None

    def create(self, project: str, summary: str, description: str, labels: list[str]) -> str:
        raise AssertionError("the gateway creates no issues")

    def status(self, key: str) -> str:
        return "Triaged"

    def transition(self, key: str, name: str, comment: str | None = None) -> bool:
        self.transitions.append((key, name, comment))
        return self.can_transition

    def comment(self, key: str, body: str) -> None:
        self.comments.append((key, body))

    def account_id(self) -> str:
        return BOT_ACCOUNT


@dataclass
class Gateway:
    http: TestClient
    register: Register
    chat: RecordingChat
    tracker: RecordingTracker
    sent: list[str]


# -- the client ----------------------------------------------------------------------------------


@contextmanager
def open_gateway(
    register: Register,
    policy: Policy,
    chat: RecordingChat | None = None,
    tracker: RecordingTracker | None = None,
) -> Iterator[Gateway]:
    """The gateway app on `register`, in-process, signing secrets from the settings as in production."""
    sent: list[str] = []
    desk = DecisionDesk(register, lambda: policy, TOPIC, sent.extend, chat, tracker)
    app_settings = AimsSettings(slack_signing_secret=SLACK_SECRET, jira_webhook_secret=JIRA_SECRET)  # type: ignore[arg-type]
    with TestClient(create_app(app_settings, desk, time.time)) as http:
        yield Gateway(http, register, chat or RecordingChat({}), tracker or RecordingTracker(), sent)


def post_click(gw: Gateway, payload: dict[str, Any], secret: str = SLACK_SECRET) -> Any:
    body, headers = signed_interaction_request(payload, secret)
    return gw.http.post("/slack/interactions", content=body, headers=headers)


def jira_hook(
    user: str,
    to: str,
    comment: str | None = None,
    *,
    issue: str = "AIINC-1",
    from_status: str = "Triaged",
    account: str | None = None,
    changelog: str = "1",
) -> dict[str, Any]:
    """A webhook signed for `account`: by default the Jira account the example policy maps to `user`
    (Jira's proof of who moved the issue), or one it maps to nobody."""
    person = example_policy().people.get(user)
    account = account or (person.jira if person else None) or "acct-1"
    hook: dict[str, Any] = {
        "timestamp": int(time.time() * 1000),
        "webhookEvent": "jira:issue_updated",
        "issue_event_type_name": "issue_generic",
        "user": {"accountId": account, "displayName": "Someone", "emailAddress": user},
        "issue": {"id": "10001", "key": issue, "fields": {"status": {"name": to}}},
        "changelog": {
            "id": changelog,
            "items": [{"field": "status", "fieldtype": "jira", "fromString": from_status, "toString": to}],
        },
    }
    if comment is not None:
        hook["comment"] = {"body": comment}
    return hook


def post_hook(gw: Gateway, hook: dict[str, Any]) -> Any:
    body = json.dumps(hook).encode()
    signature = "sha256=" + hmac.new(JIRA_SECRET.encode(), body, hashlib.sha256).hexdigest()
    return gw.http.post(
        "/jira/webhook",
        content=body,
        headers={"X-Hub-Signature": signature, "Content-Type": "application/json"},
    )
