"""Text from events and people, escaped for where it goes: Slack, Jira, Markdown, terminals and logs.

Every activity's messages use these, so they live once, below the activity folders. Each function
takes text as a person or a producer wrote it and returns what shows that text literally in its
format: no link, mention, macro, heading or emphasis of the sender's, and no control character that
could move a terminal's cursor or forge a line. Only our own templates add markup, around values
already escaped here.
"""

from __future__ import annotations

import re
from collections.abc import Callable

# `is_control` is re-exported: tests and sinks ask this module what counts as a control.
from schemas.controls import is_control as is_control
from schemas.controls import shown

Escape = Callable[[str], str]


def visible(text: str, *, lines: bool = False) -> str:
    """`text` with every control character written out (ESC as `\\x1b`), so it is seen, not obeyed.

    Tabs become spaces. Line breaks (\\n, \\r\\n, \\r) stay line breaks when `lines`, else they become
    spaces: a value meant for one line must not start a new one (a forged log line, a table row).
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\t", " ")
    out = []
    for ch in text:
        if ch == "\n":
            out.append("\n" if lines else " ")
        elif is_control(ch):
            out.append(shown(ch))
        else:
            out.append(ch)
    return "".join(out)


def plain(text: str) -> str:
    """One line of plain text: Slack `plain_text` objects, Jira summaries, terminal cells, logs."""
    return visible(text)


# -- Slack mrkdwn ------------------------------------------------------------------------------

# Slack's rule (api.slack.com/reference/surfaces/formatting#escaping): &, < and > are its control
# characters and must be sent as &amp; &lt; &gt;; nothing else is entity-encoded. That stops links
# (<https://…|text>), mentions (<@U…>) and pings (<!channel>).
_SLACK_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
# Emphasis (*bold* _italic_ ~strike~ `code`) has no escape in mrkdwn. It only works at a word's
# edge, so a marker between two letters or digits (fraud_model_v2) is left; one at an edge is
# replaced by a character that looks the same and means nothing to Slack.
SLACK_LOOKALIKES = {"*": "\u2217", "_": "\u02cd", "~": "\u223c", "`": "\u02cb"}
_SLACK_MARKER = re.compile(r"(?<![^\W_])[*_~`]|[*_~`](?![^\W_])")
# A '>' starting a line makes a block quote; the fullwidth sign reads the same and quotes nothing.
_SLACK_QUOTE = re.compile(r"^([ ]*)>", re.MULTILINE)
SLACK_QUOTE_LOOKALIKE = "\uff1e"


def mrkdwn(text: str) -> str:
    """Text from an event as Slack mrkdwn shows it literally: no link, mention, ping or emphasis.

    Line breaks are kept (a description reads as written); every other control is written out.
    """
    text = visible(text, lines=True)
    text = _SLACK_MARKER.sub(lambda m: SLACK_LOOKALIKES[m.group()], text)
    text = _SLACK_QUOTE.sub(lambda m: m.group(1) + SLACK_QUOTE_LOOKALIKE, text)
    return "".join(_SLACK_ENTITIES.get(ch, ch) for ch in text)


def mrkdwn_line(text: str) -> str:
    """`mrkdwn` on one line: for a value inside a sentence or a notification's fallback text."""
    return mrkdwn(" ".join(text.splitlines()))


# -- Jira wiki markup (REST v2: descriptions and comments are wiki-markup strings) ------------------

# Characters that start a text effect, link, mention, macro, image, table or list; '\X' shows X.
_JIRA_MARKUP = re.compile(r"([*_?+^~|{}\[\]!#-])")
# A backslash cannot be shown by escaping it: '\\' is Jira's forced line break. The fullwidth
# reverse solidus reads the same.
JIRA_BACKSLASH = "\uff3c"
JIRA_LINE_BREAK = " \\\\ "


def jira_text(text: str, *, lines: bool = False) -> str:
    """Text from an event as Jira wiki markup shows it literally.

    On one line unless `lines`; then its line breaks are Jira's forced breaks ('\\\\'), so no line
    of it starts a heading (h1.), a quote (bq.) or a list in the source.
    """
    text = visible(text, lines=lines).replace("\\", JIRA_BACKSLASH)
    escaped = _JIRA_MARKUP.sub(r"\\\1", text)
    return JIRA_LINE_BREAK.join(escaped.split("\n")) if lines else escaped


def jira_noformat(text: str) -> str:
    """A block shown exactly as written ({noformat}); only a closing tag inside it needs breaking."""
    body = re.sub(r"\{(noformat)", "\uff5b\\1", visible(text, lines=True), flags=re.IGNORECASE)
    return "{noformat}\n" + body + "\n{noformat}"


# -- Markdown (Prefect artifacts, the review pack's Markdown) --------------------------------------

# CommonMark: "any ASCII punctuation character may be backslash-escaped", and an escaped one is
# always literal. Escaped everywhere: what starts code, emphasis, links, images, HTML, entities,
# GFM tables and strikethrough. Escaped at the start only: what makes a line a heading, quote, list
# or rule there (`#`, `>`, `-`, `+`, `=`, `1.`), so ids such as scheduled:2026-11-02 stay readable.
_MARKDOWN_INLINE = re.compile(r"([\\`*_\[\]<>!&|~])")
_MARKDOWN_LINE_START = re.compile(r"^([#>+=-]|\d+(?=[.)]))")


def markdown_text(text: str) -> str:
    """Text from an event as Markdown shows it literally, on one line (a table cell, a heading).

    Leading and trailing spaces go, as a Markdown paragraph drops them anyway: four of them at a
    line's start would make the text a code block.
    """
    escaped = _MARKDOWN_INLINE.sub(r"\\\1", visible(text).strip(" "))
    start = _MARKDOWN_LINE_START.match(escaped)
    if start is None:
        return escaped
    if start.group().isdigit():  # "1." or "1)" starts an ordered list: escape what follows the number
        end = start.end()
        return escaped[:end] + "\\" + escaped[end:]
    return "\\" + escaped
