"""Properties of refusals: any value in `location`, any bytes in a record or header, read well and short."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from aims.errors import CliError
from events.codec import Reason, Rejected, decode, encode_binary
from schemas.envelope import shown
from schemas.events import AimsEvent
from tests.aims.emit_samples import (
    INTERNAL,
    MAX,
    PROPERTY,
    assert_safe,
    binary_record,
    data_with,
    emit_data,
    rejection,
    structured_record,
)
from tests.factories import make_event, raw_event

# -- properties: any value in `location`, any bytes in a record or header --------------------------

json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False), st.text()
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=15,
)
# Keys a location is made of, so the generated objects often come close to a valid one.
near_locations = st.dictionaries(
    st.sampled_from(["kind", "uri", "url", "table", "path"]),
    st.one_of(st.sampled_from(["file", "sql", "/x.csv", "sqlite:///r.db", "t"]), json_values),
    max_size=4,
)


@PROPERTY
@given(location=st.one_of(json_values, near_locations))
def test_any_location_is_an_event_or_a_readable_rejection(location: Any) -> None:
    data = data_with(location)
    for value, headers in (structured_record(raw_event(data=data)), binary_record(data)):
        result = decode(value, headers, MAX)
        if isinstance(result, AimsEvent):
            assert isinstance(location, dict)
            continue
        detail = rejection(result, result.reason)
        # a lone surrogate in a key or string is refused before the payload is read
        assert result.reason in (Reason.invalid_payload, Reason.malformed), detail
        if result.reason is Reason.invalid_payload:
            assert "data.location" in detail
            for phrase in INTERNAL:
                assert phrase not in detail
            if not isinstance(location, dict):
                assert detail.startswith("data.location: expected an object but got ")


@PROPERTY
@given(location=st.one_of(json_values, near_locations))
def test_any_location_from_aims_emit_is_an_event_or_a_cli_error(location: Any) -> None:
    try:
        emit_data(data_with(location))
    except CliError as exc:
        for line in str(exc).splitlines():
            assert_safe(line)


records = st.one_of(st.none(), st.binary(max_size=300), json_values.map(lambda v: json.dumps(v).encode()))


@PROPERTY
@given(value=records, binary=st.booleans())
def test_any_bytes_as_a_record_value_give_a_bounded_printable_detail(
    value: bytes | None, binary: bool
) -> None:
    _, headers = encode_binary(make_event())
    result = decode(value, headers if binary else [], MAX)
    if isinstance(result, Rejected):
        rejection(result, result.reason)


@PROPERTY
@given(
    name=st.sampled_from(["ce_id", "ce_type", "ce_source", "ce_subject", "ce_traceparent", "content-type"]),
    raw=st.binary(max_size=60),
)
def test_any_bytes_in_a_header_give_a_bounded_printable_detail(name: str, raw: bytes) -> None:
    value, headers = encode_binary(make_event())
    replaced = [(k, v) for k, v in headers if k != name] + [(name, raw)]
    result = decode(value, replaced, MAX)
    if isinstance(result, Rejected):
        detail = rejection(result, result.reason)
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            assert result.reason is Reason.malformed
            assert detail.startswith(f'header "{name}" is not valid UTF-8: {exc.reason} ')
            assert detail.endswith(f" at byte {exc.start}")


@PROPERTY
@given(value=json_values)
def test_shown_is_short_and_printable_for_any_value(value: Any) -> None:
    assert_safe(shown(value), limit=400)
