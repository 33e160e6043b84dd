"""Answering a channel from a verdict, written once: what the HTTP layer says now, and what is done
after the answer has gone (the Kafka send, Slack's ephemeral reply, Jira's comment or move back)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from flows.commands import Verdict, chat_text
from flows.text import jira_text, mrkdwn

if TYPE_CHECKING:
    from connectors.jira_issues import IssueTracker
    from connectors.slack import Chat

log = logging.getLogger("aims.gateway")


@dataclass
class Outcome:
    """What the HTTP layer answers now, and what is done after the answer has gone."""

    status: int
    body: dict[str, Any]
    later: list[Callable[[], object]] = field(default_factory=list)


def ignored(why: str) -> Outcome:
    return Outcome(200, {"ignored": why})


def answered(verdict: Verdict, send: Callable[[list[str]], object], said: str | None = None) -> Outcome:
    """200 with the verdict's status (`said` instead, where a channel words it otherwise), and the
    send of its outbox rows first thing after the answer."""
    outcome = Outcome(200, {"status": said or verdict.status})
    if verdict.keys:
        keys = list(verdict.keys)
        # The update is in the register already, so a send that fails here is only late (the
        # router's outbox relay sends it).
        outcome.later.append(lambda: send(keys))
    return outcome


def slack_reply(outcome: Outcome, verdict: Verdict, chat: Chat | None, response_url: str | None) -> None:
    """The clicker's ephemeral reply (Slack's response_url), after the answer.

    The verdict's words quote what people and events wrote (ids, names, reasons): Slack parses the
    reply as mrkdwn, so all of it goes as text.
    """
    if chat is None or not response_url:
        return
    text = mrkdwn(chat_text(verdict))
    outcome.later.append(lambda: chat.respond(response_url, text))


def jira_reply(
    outcome: Outcome, tracker: IssueTracker | None, issue: str, text: str, back_to: str | None
) -> None:
    """A comment on the issue, or the issue moved back along `back_to` with the comment, so Jira
    does not show a state the register does not hold; a comment when it cannot be moved.

    `text` is plain words that quote people and events; it goes as Jira wiki markup showing it
    literally, its line breaks kept.
    """
    if tracker is None:
        return
    text = jira_text(text, lines=True)

    def answer() -> None:
        if not (back_to and tracker.transition(issue, back_to, text)):
            tracker.comment(issue, text)

    outcome.later.append(answer)


def run_later(outcome: Outcome) -> None:
    for step in outcome.later:
        try:
            step()
        except Exception as exc:  # noqa: BLE001 - the answer has gone; log and let the next step run
            log.warning("after answering: %s", exc)
