"""Text from events and people, escaped for where it goes: Slack mrkdwn and Jira wiki markup.

Every activity's messages use these, so they live once, below the activity folders.
"""

from __future__ import annotations

import re

# Jira wiki markup: characters that start a text effect, link, macro, image, table or list.
_JIRA_MARKUP = re.compile(r"([\\*_?+^~|{}\[\]!#-])")


def mrkdwn(text: str) -> str:
    """Text from an event as Slack mrkdwn shows it literally: no link, mention or channel ping.

    Slack asks for exactly these three as entities; its emphasis characters cannot be escaped and
    can only change how the text looks.
    """
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def jira_text(text: str) -> str:
    """Text from an event as Jira wiki markup shows it literally, on one line."""
    return _JIRA_MARKUP.sub(r"\\\1", " ".join(text.splitlines()))
