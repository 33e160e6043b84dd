"""What Slack and Jira would obey in a message, for the tests of issue 19's point 4 (text escaped for
where it goes): the attacks found on main, and checks on what the fakes received."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from connectors.jira_issues import JiraTracker
from connectors.slack import SlackChat
from flows.text import is_control
from tests.fakes.jira import JiraFake
from tests.fakes.slack import SlackFake

# A channel ping and a link whose text hides where it goes, in Slack mrkdwn and in Jira wiki markup.
SLACK_ATTACK = "<!channel> <https://evil.example/sso|Open the approval>"
JIRA_ATTACK = "[Open AIMS|https://evil.example/sso]"


def text_objects(blocks: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Every Block Kit text object in the blocks, however deep."""
    for node in blocks:
        stack: list[Any] = [node]
        while stack:
            item = stack.pop()
            if isinstance(item, dict):
                if item.get("type") in ("mrkdwn", "plain_text") and "text" in item:
                    yield item
                stack.extend(item.values())
            elif isinstance(item, list):
                stack.extend(item)


def assert_slack_shows_text(message: dict[str, Any]) -> None:
    """No link, mention or ping in what Slack parses (the message's `text`, which notifications show,
    and its mrkdwn objects), no control character in what it shows."""
    blocks = message.get("blocks") or []
    # The top-level `text` is the notification and is parsed as mrkdwn too.
    parsed = [message["text"], *(o["text"] for o in text_objects(blocks) if o["type"] == "mrkdwn")]
    for text in parsed:
        assert "<" not in text and ">" not in text, text
        assert re.fullmatch(r"(?:[^&]|&amp;|&lt;|&gt;)*", text, re.DOTALL), text
    for obj in text_objects(blocks):
        assert not any(is_control(ch) for ch in obj["text"] if ch != "\n"), obj
    # Plain text objects (headers, buttons) are never parsed: they show '<!channel>' as written.


def jira_unescaped(text: str) -> str:
    """The wiki markup with every '\\X' escape taken out: what is left is markup Jira obeys."""
    return re.sub(r"\\.", "", text)


def assert_jira_shows_text(text: str) -> None:
    bare = jira_unescaped(text)
    assert "[Open AIMS" not in bare and "|https://evil.example" not in bare, text
    assert "{color" not in bare and "[~" not in bare, text
    assert not any(is_control(ch) for ch in text if ch != "\n"), text


# -- the real clients on the local fakes ------------------------------------------------------------

BOT, TOKEN = "aims-bot@northwind.example", "jira-token"


@contextmanager
def slack_chat() -> Iterator[tuple[SlackFake, SlackChat]]:
    """The Slack fake and the real client on it; the fake must have recorded no error."""
    with SlackFake() as fake:
        yield fake, SlackChat(fake.bot_token, fake.base_url, retries=0)
        assert fake.errors == []


@contextmanager
def jira_tracker(*projects: str) -> Iterator[tuple[JiraFake, JiraTracker]]:
    """The Jira fake with these projects and the bot's account, and the real client on it."""
    with JiraFake() as fake:
        fake.add_user(BOT, "AIMS", TOKEN)
        for project in projects:
            fake.add_project(project)
        yield fake, JiraTracker(fake.url, BOT, TOKEN, retries=0)
