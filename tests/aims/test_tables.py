"""Terminal tables write control characters out (issue 19, point 4): a name holding ESC sequences,
a carriage return or a bidi override cannot recolour, rewrite or reorder the operator's screen.

Such names are refused at the payload boundary; these are the rows that reached the register by
another path (older records, the register edited by hand), shown safely all the same.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from aims.tables import cell, fields, render
from schemas.controls import is_control

ATTACK = "credit\x1b[2K\x1b[1A\rapproved\u202eevil\x9b31m"


def test_escape_sequences_in_a_cell_are_shown_not_obeyed() -> None:
    assert cell(ATTACK, 200) == "credit\\x1b[2K\\x1b[1A approved\\u202eevil\\x9b31m"


@given(st.lists(st.text(max_size=60), min_size=2, max_size=2), st.text(max_size=60))
def test_terminal_output_has_no_control_character(row: list[str], value: str) -> None:
    for output in (render([row], ["a", "b"]), fields([("name", value)])):
        assert not any(is_control(ch) for ch in output if ch != "\n")
    assert render([row], ["a", "b"]).count("\n") == 2  # header, rule, one row: no forged line


def test_a_log_line_shows_control_characters_and_cannot_be_forged() -> None:
    import logging
    import sys

    from aims.commands.common import LOG_FORMAT, PlainFormatter

    formatter = PlainFormatter(LOG_FORMAT)
    record = logging.LogRecord(
        "aims.x", logging.INFO, __file__, 1, "approval %s", (ATTACK + "\nINFO forged",), None
    )
    line = formatter.format(record)
    assert "\n" not in line and not any(is_control(ch) for ch in line)
    assert "credit\\x1b[2K" in line and "INFO forged" in line
    try:
        raise ValueError("boom")
    except ValueError:
        failed = logging.LogRecord("aims.x", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    assert "Traceback" in formatter.format(failed).splitlines()[1]  # our traceback keeps its lines
