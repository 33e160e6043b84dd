"""Steps of the approval integration tests: ask for an approval, click, wait, read decisions back."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx

from schemas.events import ApprovalRequestedEvent
from schemas.records import Approval, ApprovalDecision
from schemas.settings import AimsSettings
from tests.fakes.slack_signing import signed_interaction_request
from tests.people import DEV
from tests.support import SLACK_SIGNING_SECRET, SessionStack, poll, slack

DEFAULT_TOPIC = AimsSettings().events_topic
DECISION_SUBMITTED = "org.aims.approval.decision.submitted"


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
    publisher = stack.publisher(DEFAULT_TOPIC)
    try:
        publisher.publish(event)
    finally:
        publisher.close()
    return approval_id


def run_of(stack: SessionStack, approval_id: str) -> tuple[str, str] | None:
    """(flow run id, state name) of the request-approval run waiting for this approval."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName, FlowRunFilter, FlowRunFilterTags
    from prefect.client.schemas.sorting import FlowRunSort

    with get_client(sync_client=True) as client:
        # By flow too: every run about the approval carries its tag (the write-back runs after it, too).
        runs = client.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=["request-approval"])),
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
