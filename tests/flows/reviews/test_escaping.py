"""A review's issue and invitations show what people and events wrote as text (issue 19, point 4).

The reason and agenda of a review come from incidents and people (`aims review request --reason`);
its pack's Markdown quotes incident titles and parties' needs. They reach the Jira fake's issue and
the Slack fake's direct messages through the real clients.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from connectors.jira_issues import JiraTracker
from connectors.slack import SlackChat
from schemas.review_pack import Attendance, ReviewPack
from tests.escaping import (
    JIRA_ATTACK,
    SLACK_ATTACK,
    assert_jira_shows_text,
    assert_slack_shows_text,
    jira_tracker,
)
from tests.fakes.jira import JiraFake
from tests.fakes.slack import SlackFake

NOW = datetime(2027, 1, 1, tzinfo=UTC)
FILES = {"html": "/packs/r/pack.html", "markdown": "/packs/r/pack.md", "ics": "/packs/r/meeting.ics"}


def hostile_pack() -> ReviewPack:
    return ReviewPack(
        review_id=f"extraordinary:{JIRA_ATTACK}",
        kind="extraordinary",
        reason=f"{SLACK_ATTACK} {JIRA_ATTACK}\nh1. {{color:red}}",
        period_start=NOW - timedelta(days=90),
        period_end=NOW,
        meeting_at=NOW,
        generated_at=NOW,
        attendees=[Attendance(name="A", email="a@example.com", role="chair")],
        agenda=[f"incident {JIRA_ATTACK}"],
        sections=[],
    )


@pytest.fixture
def jira() -> Iterator[tuple[JiraFake, JiraTracker]]:
    with jira_tracker("MRC") as pair:
        yield pair


def test_the_review_issue_shows_the_reason_agenda_and_pack_as_text(
    jira: tuple[JiraFake, JiraTracker],
) -> None:
    from flows.reviews.hold_management_review import _description, _title

    fake, tracker = jira
    pack = hostile_pack()
    pack_markdown = f"# Pack\n\n- {JIRA_ATTACK}\n{{noformat}}\n[escaped|https://evil.example]\n"
    key = tracker.create("MRC", _title(pack), _description(pack, FILES, pack_markdown), ["aims-review"])
    description = fake.issues[key]["fields"]["description"]
    # The pack is shown as written inside one {noformat} block, which nothing in it can close.
    head, block = description.split("{noformat}\n", 1)
    assert block.endswith("\n{noformat}") and block.lower().count("{noformat") == 1
    assert_jira_shows_text(head)
    assert not re.search(r"(?m)^h\d\.", head)


def test_the_invitation_shows_the_reason_as_text() -> None:
    from flows.reviews.hold_management_review import invitation_text

    with SlackFake() as fake:
        fake.add_user("a@example.com")
        chat = SlackChat(fake.bot_token, fake.base_url, retries=0)
        chat.post_to_person("a@example.com", invitation_text(hostile_pack(), "Europe/Berlin", FILES, "MRC-1"))
        [message] = fake.messages
        assert_slack_shows_text(message)
        assert fake.errors == []
