"""Text is escaped for where it goes (issue 19, point 4): for any text, each format shows it literally.

The attacks found on main are pinned as examples; the properties hold for any text hypothesis makes.
What a reader sees is computed the way the format's reader does it: Slack's entity decoding, Jira's
backslash escapes, a real CommonMark renderer (markdown-it-py, the one rich ships with).
"""

from __future__ import annotations

import html
import re

from hypothesis import example, given
from hypothesis import strategies as st
from markdown_it import MarkdownIt

from flows.text import (
    JIRA_BACKSLASH,
    JIRA_LINE_BREAK,
    SLACK_LOOKALIKES,
    SLACK_QUOTE_LOOKALIKE,
    is_control,
    jira_noformat,
    jira_text,
    markdown_text,
    mrkdwn,
    mrkdwn_line,
    plain,
    visible,
)

SLACK_ATTACK = "<!channel> <https://evil.example/sso|Open the approval>"
JIRA_ATTACK = "[Open AIMS|https://evil.example/sso]"
TERMINAL_ATTACK = "credit\x1b[2K\x1b[1Aapproved\r\nfake line\u202eevil"
# The characters our escapes write: excluded from inputs so that "what a reader sees" maps back.
LOOKALIKES = "".join(SLACK_LOOKALIKES.values()) + SLACK_QUOTE_LOOKALIKE + JIRA_BACKSLASH
texts = st.text(st.characters(exclude_characters=LOOKALIKES), max_size=200)
# Text biased towards every format's special characters, so the properties meet them often.
SPECIAL = "&<>*_~`|[]{}!#-+^?\\()\n\r\t\x1b\x00\x85\u2028\u202e:/. "
marked = st.text(st.sampled_from(SPECIAL) | st.characters(exclude_characters=LOOKALIKES), max_size=120)
any_text = texts | marked


def slack_reads(escaped: str) -> str:
    """What a Slack reader sees of escaped mrkdwn: entities decoded, lookalikes as what they stand for."""
    back = {v: k for k, v in SLACK_LOOKALIKES.items()} | {SLACK_QUOTE_LOOKALIKE: ">"}
    decoded = escaped.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    return "".join(back.get(ch, ch) for ch in decoded)


def jira_reads(escaped: str) -> str:
    """What a Jira reader sees of escaped wiki markup: '\\X' is X, forced breaks are line breaks."""
    lines = escaped.split(JIRA_LINE_BREAK)
    return "\n".join(re.sub(r"\\(.)", r"\1", line).replace(JIRA_BACKSLASH, "\\") for line in lines)


# -- the attacks -------------------------------------------------------------------------------


def test_a_slack_ping_and_disguised_link_are_shown_not_obeyed() -> None:
    shown = mrkdwn(SLACK_ATTACK)
    assert "<" not in shown and ">" not in shown
    assert shown == "&lt;!channel&gt; &lt;https://evil.example/sso|Open the approval&gt;"


def test_slack_emphasis_and_quotes_of_a_value_are_neutralised() -> None:
    assert mrkdwn("*Approved* by _the board_ ~rejected~ `x`") == (
        "\u2217Approved\u2217 by \u02cdthe board\u02cd \u223crejected\u223c \u02cbx\u02cb"
    )
    assert mrkdwn("> quoted\nline") == "\uff1e quoted\nline"
    assert mrkdwn("fraud_model_v2 2*3") == "fraud_model_v2 2*3"  # inside a word: no emphasis


def test_a_jira_link_is_shown_not_obeyed() -> None:
    assert jira_text(JIRA_ATTACK) == "\\[Open AIMS\\|https://evil.example/sso\\]"
    assert jira_text("a\\b") == f"a{JIRA_BACKSLASH}b"  # '\\' would be Jira's line break
    assert jira_text("h1. Big\nbq. quote", lines=True) == "h1. Big \\\\ bq. quote"


def test_noformat_cannot_be_closed_from_inside() -> None:
    block = jira_noformat("x\n{noformat}\n[evil|https://evil.example]\n{NOFORMAT}")
    assert block.count("{noformat}") == 2 and block.startswith("{noformat}\n")
    assert block.lower().count("{noformat") == 2


def test_control_characters_are_written_out() -> None:
    shown = plain(TERMINAL_ATTACK)
    assert shown == "credit\\x1b[2K\\x1b[1Aapproved fake line\\u202eevil"


# -- the properties ----------------------------------------------------------------------------


@given(any_text)
def test_mrkdwn_has_no_unescaped_control_characters_and_reads_as_written(text: str) -> None:
    shown = mrkdwn(text)
    assert "<" not in shown and ">" not in shown
    assert re.fullmatch(r"(?:[^&]|&amp;|&lt;|&gt;)*", shown, re.DOTALL)
    assert not any(is_control(ch) for ch in shown if ch != "\n")
    # No emphasis marker at a word's edge, no line starting a quote.
    assert not re.search(r"(?<![^\W_])[*_~`]|[*_~`](?![^\W_])", shown)
    assert not re.search(r"^ *(>|&gt;)", shown, re.MULTILINE)
    assert slack_reads(shown) == visible(text, lines=True)


@given(any_text)
def test_mrkdwn_line_is_one_line(text: str) -> None:
    shown = mrkdwn_line(text)
    assert "\n" not in shown
    assert slack_reads(shown) == visible(" ".join(text.splitlines()))


@given(any_text, st.booleans())
def test_jira_text_escapes_every_markup_character_and_reads_as_written(text: str, lines: bool) -> None:
    shown = jira_text(text, lines=lines)
    body = shown.replace(JIRA_LINE_BREAK, "")
    # Every markup character is escaped, and a backslash only ever escapes one.
    assert re.fullmatch(r"(?:\\[*_?+^~|{}\[\]!#-]|[^\\*_?+^~|{}\[\]!#-])*", body, re.DOTALL)
    assert "\n" not in shown and not any(is_control(ch) for ch in shown)
    assert jira_reads(shown) == visible(text, lines=lines)


@given(any_text)
def test_markdown_text_renders_as_written(text: str) -> None:
    shown = markdown_text(text)
    rendered = MarkdownIt("commonmark").renderInline(shown)
    # Nothing but the text: no tag, link or emphasis, and the reader sees exactly the text.
    assert "<" not in rendered.replace("&lt;", "")
    assert html.unescape(rendered) == visible(text).strip(" ")


@given(any_text)
def test_plain_text_has_no_control_character(text: str) -> None:
    shown = plain(text)
    assert not any(is_control(ch) for ch in shown)
    assert "\n" not in shown and "\r" not in shown


@given(any_text)
@example("    indented code")
@example("1) a list")
@example("- a list")
@example("# heading")
def test_markdown_text_at_a_line_start_is_one_paragraph(text: str) -> None:
    # As a line of its own (a summary, a list item's text): no heading, quote, list, rule or table.
    rendered = MarkdownIt("commonmark").enable(["table", "strikethrough"]).render(markdown_text(text))
    assert set(re.findall(r"<(\w+)", rendered)) <= {"p"}, rendered
