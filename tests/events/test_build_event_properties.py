"""Property tests (hypothesis) on the CLI's event builder: it only ever fails with CliError."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from pydantic import ValidationError

from aims.emit import ALIASES, build_event, parse_assignments
from aims.errors import CliError
from events.codec import decode, encode_structured
from schemas.events import EVENT_CLASSES, AimsEvent
from tests.events.event_strategies import MAX, PROPERTY, json_values, valid_raw_events

# -- (5) the CLI's emit builder only ever fails with CliError ---------------------------------------

assignments = st.one_of(
    st.text(max_size=40),
    st.builds(lambda k, v: f"{k}={v}", st.text(max_size=15), st.text(max_size=25)),
    st.builds(
        lambda k, v: f"{k}={json.dumps(v)}",
        st.sampled_from(["location", "training_datasets", "location.uri", "data", "row_count", "a.b.c"]),
        json_values,
    ),
    st.builds(
        lambda k, v: f"{k}={v}",
        st.sampled_from(
            [
                "ai_system",
                "dataset_id",
                "version",
                "location.uri",
                "location.kind",
                "location",
                "location.table",
                "change_kind",
                "severity",
                "occurred_at",
                "detected_at",
                "row_count",
                "training_datasets.0",
                "a..b",
                ".",
                "",
            ]
        ),
        st.sampled_from(
            [
                "x",
                "3",
                "-1",
                "[",
                "{",
                "[]",
                "{}",
                '{"uri": "/x"}',
                "2025-01-01T00:00:00Z",
                "created",
                "high",
                "",
                " ",
                "null",
            ]
        ),
    ),
)


@PROPERTY
@given(pairs=st.lists(assignments, max_size=6))
def test_parse_assignments_only_raises_cli_error(pairs: list[str]) -> None:
    try:
        result = parse_assignments(pairs)
    except CliError as exc:
        assert str(exc)
        return
    assert isinstance(result, dict)
    for pair in pairs:
        assert pair.partition("=")[0].strip().split(".")[0] in result


@PROPERTY
@given(
    type_name=st.one_of(
        st.none(), st.sampled_from(sorted(ALIASES) + sorted(EVENT_CLASSES)), st.text(max_size=20)
    ),
    pairs=st.lists(assignments, max_size=8),
    subject=st.one_of(st.none(), st.text(max_size=20)),
    event_id=st.one_of(st.none(), st.text(max_size=20)),
    source=st.text(max_size=20),
)
def test_build_event_only_raises_cli_error(
    type_name: str | None, pairs: list[str], subject: str | None, event_id: str | None, source: str
) -> None:
    try:
        event = build_event(type_name, pairs, None, subject=subject, source=source, event_id=event_id)
    except CliError as exc:
        assert str(exc)
        return
    assert isinstance(event, AimsEvent)
    # what the builder accepts, the consumer accepts too
    value, headers = encode_structured(event)
    assert decode(value, headers, 10 * MAX) == event


@PROPERTY
@given(raw=valid_raw_events())
def test_build_event_accepts_every_valid_payload_given_as_json_assignments(raw: dict[str, Any]) -> None:
    pairs = [f"{k}={json.dumps(v) if not isinstance(v, str) else v}" for k, v in raw["data"].items()]
    # plain strings that look like JSON would be parsed as JSON by the CLI: leave those to -f
    assume(all(not (isinstance(v, str) and v.lstrip()[:1] in ("[", "{")) for v in raw["data"].values()))
    try:
        event = build_event(raw["type"], pairs, None, subject=raw.get("subject"), event_id="fixed-id")
    except CliError as exc:  # pragma: no cover - a failure here is a bug
        pytest.fail(f"valid data refused by the CLI: {exc}")
    expected = EVENT_CLASSES[raw["type"]].model_validate({**raw, "id": "fixed-id"})
    assert event.data == expected.data
    assert event.subject == expected.subject


def test_build_event_wraps_validation_errors() -> None:
    # A direct check that pydantic's error is not what escapes (the property above depends on it)
    with pytest.raises(CliError) as info:
        build_event("data-changed", ["dataset_id=x"], None)
    assert "data.version" in str(info.value)
    assert not isinstance(info.value, ValidationError)


@pytest.mark.parametrize("raw", ["[" * 100_000, "[" + "1" * 5000 + "]"], ids=["deep", "bigint"])
def test_parse_assignments_wraps_every_json_error(raw: str) -> None:
    with pytest.raises(CliError):
        parse_assignments([f"training_datasets={raw}"])


@PROPERTY
@given(value=st.text(max_size=300), flag=st.sampled_from(["--by", "--note"]))
def test_reassess_flags_are_accepted_as_given_or_refused_naming_the_flag(value: str, flag: str) -> None:
    from aims.commands.common import validated
    from schemas.payloads import Name, Text

    try:
        accepted = validated(Name if flag == "--by" else Text, value, flag)
    except CliError as exc:
        assert f"invalid {flag}" in str(exc)
        return
    assert accepted == value
