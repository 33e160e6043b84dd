"""Names and texts refuse control characters at the payload boundary (issue 19, point 4).

ESC in an AI system's name would recolour or rewrite the terminal line of `aims systems`; a line
separator would forge a log line; a bidi override would reorder what a reader sees. The event is
refused with an error that says so, and nothing is recorded.
"""

from __future__ import annotations

import copy

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from schemas.controls import is_control
from schemas.events import INCIDENT_REPORTED, describe_errors, parse_event
from tests.factories import SAMPLES


def incident(**data: str) -> dict[str, object]:
    payload = copy.deepcopy(SAMPLES[INCIDENT_REPORTED]) | data
    return {"specversion": "1.0", "id": "i-1", "source": "urn:t", "type": INCIDENT_REPORTED, "data": payload}


@pytest.mark.parametrize(
    ("field", "value", "shown"),
    [
        ("ai_system", "credit\x1b[2Kapproved", "\\x1b at character 7"),
        ("reporter", "desk\u202eevil", "\\u202e at character 5"),
        ("ai_system", "a\u2028b", "\\u2028 at character 2"),
        ("description", "what\x1b]8;;https://evil.example\x07happened", "\\x1b at character 5"),
        ("description", "ok\x00", "\\x00 at character 3"),
    ],
)
def test_a_control_character_is_refused_with_a_clear_error(field: str, value: str, shown: str) -> None:
    with pytest.raises(ValidationError) as refused:
        parse_event(incident(**{field: value}))
    [line] = describe_errors(refused.value)
    assert line.startswith(f"data.{field}: must not contain control characters, got {shown}"), line
    assert "\x1b" not in line and "\u202e" not in line


def test_free_text_keeps_its_lines_and_tabs() -> None:
    event = parse_event(incident(description="first line\n\tsecond line\r\nthird"))
    assert event.data.description == "first line\n\tsecond line\r\nthird"


@given(st.text(min_size=1, max_size=40).filter(lambda s: s.strip() == s and s))
def test_any_accepted_name_has_no_control_character(name: str) -> None:
    try:
        event = parse_event(incident(ai_system=name))
    except ValidationError:
        return
    assert not any(is_control(ch) for ch in event.data.ai_system)
