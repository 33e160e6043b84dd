"""collect-evidence as deployed: the worker runs it, the owner is asked in Slack once a period, and
evidence a person supplies makes the control fresh."""

from __future__ import annotations

import json
import uuid

from tests.people import MARIA
from tests.support import SessionStack, slack

# Nothing in the tool implements these: a person supplies their evidence (policy owner: Maria).
CONTROLS = ["A.2.3", "A.4.4"]


def collect(stack: SessionStack) -> None:
    key = f"collect-{uuid.uuid4().hex[:8]}"
    stack.launch("collect-evidence/aims", {"controls": CONTROLS, "as_of": "2026-12-05T05:00:00+00:00"}, key)
    [run] = stack.wait_for_runs([key], states={"Completed"}, timeout=180)
    assert run.name == "collect-evidence · 2026-12-05 05:00 UTC"


def asks(stack: SessionStack, since: int) -> list[dict[str, str]]:
    """The evidence requests among Maria's DMs posted after the first `since` of them."""
    posted = slack(stack).posted(stack.slack_users[MARIA])[since:]
    return [m for m in posted if "aims evidence add" in m.get("text", "")]


def test_the_owner_is_asked_once_a_period_and_supplied_evidence_makes_the_control_fresh(
    stack: SessionStack,
) -> None:
    stack.ensure_worker()
    # Maria's DMs are the session's: earlier tests' runs (approvals, incidents) write to her too.
    before = len(slack(stack).posted(stack.slack_users[MARIA]))
    collect(stack)
    [asked] = asks(stack, before)
    assert "A.2.3" in asked["text"] and "A.4.4" in asked["text"] and "aims evidence add" in asked["text"]
    with stack.register().reader() as uow:
        requests = {r.control: r for r in uow.evidence_requests.find()}
    assert set(CONTROLS) <= set(requests)
    assert all(requests[c].asked == [f"{MARIA}: asked in Slack"] for c in CONTROLS)

    collect(stack)  # the same period: nothing new
    assert len(asks(stack, before)) == 1

    added = stack.aims("evidence", "add", "A.2.3", "--by", MARIA, "--note", "AI policy, signed 2026-11-30")
    assert added.returncode == 0, added.stderr
    shown = stack.aims("controls", "--json")
    assert shown.returncode == 0, shown.stderr
    rows = {r["id"]: r for r in json.loads(shown.stdout)}
    assert rows["A.2.3"]["freshness"] == "fresh" and rows["A.4.4"]["freshness"] == "missing"
