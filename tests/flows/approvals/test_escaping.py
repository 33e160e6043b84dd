"""An approval's text from an event reaches Slack and Jira as text, and its id never reaches a JQL search
(issue 19, point 4).

The request, its progress, its outcome and the reminders go through the real connectors (slack-sdk,
pycontribs `jira`) to the local fakes of Slack and Jira; the assertions read what the fakes received.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from connectors.jira_issues import JiraTracker
from connectors.slack import SlackChat
from flows.approvals import messages
from flows.text import is_control, jira_text
from schemas.payloads import ApprovalOutcome, RiskLevel
from schemas.records import Approval, ApprovalDecision
from tests.escaping import (
    JIRA_ATTACK,
    SLACK_ATTACK,
    assert_jira_shows_text,
    assert_slack_shows_text,
    jira_tracker,
    slack_chat,
)
from tests.fakes.jira import JiraFake
from tests.fakes.slack import SlackFake

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
# Closes the quoted label in `labels = "…"` and widens the search to another project's issues.
JQL_ATTACK = 'x" OR project = HR OR labels = "x'


@pytest.fixture
def slack() -> Iterator[tuple[SlackFake, SlackChat]]:
    with slack_chat() as pair:
        yield pair


@pytest.fixture
def jira() -> Iterator[tuple[JiraFake, JiraTracker]]:
    with jira_tracker("GOV", "HR") as pair:
        yield pair


def hostile(approval_id: str = "approval-1") -> Approval:
    """An approval whose every event field carries Slack or Jira markup."""
    return Approval(
        id=approval_id,
        subject=SLACK_ATTACK,
        system=JIRA_ATTACK,
        requested_decision="go-live *now*",
        risk_level=RiskLevel.high,
        approver_group="model-risk",
        quorum=1,
        context={
            "risks": [{"category": "<@U0BOSS>", "inherent": "high", "residual": "medium", "why": JIRA_ATTACK}]
        },
        requested_by="<!here> {color:red}x{color}",
        requested_at=T0,
        due_at=T0 + timedelta(hours=24),
    )


def decisions(approval: Approval) -> list[ApprovalDecision]:
    return [
        ApprovalDecision(
            id="d1",
            approval_id=approval.id,
            decision="approve",
            decided_by="aisha@northwind.example",
            channel="slack",
            reason=f"{SLACK_ATTACK} {JIRA_ATTACK} \x1b[2Kok",
            decided_at=T0 + timedelta(hours=1),
        )
    ]


def test_the_request_reaches_slack_as_text(slack: tuple[SlackFake, SlackChat]) -> None:
    fake, chat = slack
    approval = hostile()
    # As request-approval sends them: the request, its progress, its outcome.
    ref = chat.post(
        "model-risk", messages.notification(approval), messages.request_blocks(approval, "waiting")
    )
    progress = messages.progress_blocks(approval, "1 of 2", decisions(approval))
    chat.update(ref, messages.notification(approval, "1 of 2"), progress)
    outcome = ApprovalOutcome.approved
    done = messages.outcome_blocks(approval, outcome, decisions(approval))
    chat.update(ref, messages.notification(approval, outcome.value), done)
    [message] = fake.messages
    for version in [*message["updates"], message]:
        assert_slack_shows_text(version)
    # What a reader sees is the subject as the event wrote it.
    # A header is plain text, which Slack never parses: shown as written.
    assert message["blocks"][0]["text"]["text"].startswith("✅ Go live *now* needed for [Open AIMS|")
    assert "&lt;!channel&gt; &lt;https://evil.example/sso|Open the approval&gt;" in json.dumps(message)


def test_reminders_and_escalations_reach_slack_as_text(slack: tuple[SlackFake, SlackChat]) -> None:
    fake, chat = slack
    approval = hostile()
    ref = chat.post(
        "model-risk", messages.notification(approval), messages.request_blocks(approval, "waiting")
    )
    chat.post(ref.channel, messages.reminder_text(approval, 4), thread_ts=ref.ts)
    chat.post(ref.channel, messages.escalation_text(approval, ["<!everyone>"], 48), thread_ts=ref.ts)
    for message in fake.messages:
        assert_slack_shows_text(message)


def test_the_issue_reaches_jira_as_text(jira: tuple[JiraFake, JiraTracker]) -> None:
    fake, tracker = jira
    approval = hostile()
    key = tracker.create(
        "GOV", messages.issue_summary(approval), messages.issue_description(approval), ["aims"]
    )
    # As chase-approvals and request-approval comment: reminder, escalation, outcome.
    tracker.comment(key, messages.reminder_text(approval, 4, jira_text))
    tracker.comment(key, messages.escalation_text(approval, ["[~boss]"], 48, jira_text))
    tracker.comment(key, messages.outcome_comment(ApprovalOutcome.approved, decisions(approval)))
    issue = fake.issues[key]["fields"]
    assert_jira_shows_text(issue["description"])
    assert not any(is_control(ch) for ch in issue["summary"])
    for comment in fake.comments(key):
        assert_jira_shows_text(comment)


def test_an_approval_id_never_reaches_a_jql_search(jira: tuple[JiraFake, JiraTracker]) -> None:
    fake, tracker = jira
    fake.add_issue("HR", "Salary review of the CEO", labels=["payroll"])
    assert tracker.find(messages.jira_label(JQL_ATTACK)) is None
    searches = [r for r in fake.requests if r.path.endswith("/search/jql")]
    assert searches, "the lookup searched"
    for request in searches:
        jql = " ".join(request.query.get("jql", [])) + json.dumps(request.json or {})
        assert "project" not in jql and "HR" not in jql and JQL_ATTACK not in jql, jql


def test_a_label_that_would_change_the_search_is_refused_before_any_request(
    jira: tuple[JiraFake, JiraTracker],
) -> None:
    fake, tracker = jira
    for label in ['aims-x" OR project = HR', "aims x", "", "aims-\x1b"]:
        with pytest.raises(ValueError, match="not a label to search Jira for"):
            tracker.find(label)
    assert not [r for r in fake.requests if "search" in r.path]
