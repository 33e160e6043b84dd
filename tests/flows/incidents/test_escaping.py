"""An incident's text from an event reaches Slack and Jira as text (issue 19, point 4).

The alert, its updates and its clock reminders, and the Jira issue with its comments, go through the
real connectors to the local fakes; the assertions read what the fakes received.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from connectors.jira_issues import JiraTracker
from connectors.slack import SlackChat
from flows.incidents import messages
from flows.incidents.rules import State, stage_of
from flows.text import jira_text
from schemas.records import CorrectiveAction, Nonconformity
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
from tests.records import serious_incident

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def hostile_state() -> State:
    incident = serious_incident(
        "urn:x#1",
        T0,
        system=f"scorer {JIRA_ATTACK}",
        title=f"{SLACK_ATTACK} \x1b[2K",
        description=f"{SLACK_ATTACK}\n> quoted\nh1. {JIRA_ATTACK}\n{{color:red}}x",
        reported_by="<@U0BOSS> *me*",
        criteria=["<!here>"],
        authority_reference=JIRA_ATTACK,
        reported_to_authority_at=T0 + timedelta(days=1),
        contained_at=T0,
    )
    nonconformity = Nonconformity(
        id="nc-1",
        source="incident",
        source_ref=incident.id,
        description="x",
        root_cause=f"{SLACK_ATTACK} {JIRA_ATTACK}",
    )
    action = CorrectiveAction(
        id=f"{incident.id}/A1",
        nonconformity_id="nc-1",
        description=f"{SLACK_ATTACK} {JIRA_ATTACK}",
        owner="<!everyone>",
        due=(T0 + timedelta(days=9)).date(),
        status="verified",
        effectiveness=f"{SLACK_ATTACK} {JIRA_ATTACK}",
    )
    return State(incident, nonconformity, (action,))


@pytest.fixture
def slack() -> Iterator[tuple[SlackFake, SlackChat]]:
    with slack_chat() as pair:
        yield pair


@pytest.fixture
def jira() -> Iterator[tuple[JiraFake, JiraTracker]]:
    with jira_tracker("AIINC") as pair:
        yield pair


def test_the_alert_its_updates_and_clocks_reach_slack_as_text(slack: tuple[SlackFake, SlackChat]) -> None:
    fake, chat = slack
    state = hostile_state()
    incident = state.incident
    # As handle-incident, track-incident and watch-incident-clocks send them.
    ref = chat.post(
        "incidents", messages.alert_text(incident, stage_of(state)), messages.alert_blocks(state, T0)
    )
    line = messages.update_line("contain", "<!channel>", "slack", f"{SLACK_ATTACK} *x*", incident.id + "/A1")
    chat.post(ref.channel, line, thread_ts=ref.ts)
    chat.post(ref.channel, messages.clock_text(incident, T0, overdue=True), thread_ts=ref.ts)
    chat.post(ref.channel, messages.clock_text(incident, T0, overdue=False), thread_ts=ref.ts)
    assert len(fake.messages) == 4
    for message in fake.messages:
        assert_slack_shows_text(message)
    assert "&lt;!channel&gt;" in json.dumps(fake.messages[0])


def test_the_issue_and_its_comments_reach_jira_as_text(jira: tuple[JiraFake, JiraTracker]) -> None:
    fake, tracker = jira
    state = hostile_state()
    incident = state.incident
    key = tracker.create(
        "AIINC", messages.issue_summary(incident), messages.issue_description(incident, T0), ["aims-incident"]
    )
    # As track-incident and watch-incident-clocks comment.
    line = messages.update_line(
        "contain", "[~boss]", "jira", f"{JIRA_ATTACK}\n{{color:red}}", None, jira_text
    )
    tracker.comment(key, f"AIMS: {line}")
    tracker.comment(key, messages.clock_text(incident, T0, overdue=True, escape=jira_text))
    issue = fake.issues[key]["fields"]
    assert_jira_shows_text(issue["description"])
    assert "\x1b" not in issue["summary"]
    for comment in fake.comments(key):
        assert_jira_shows_text(comment)
