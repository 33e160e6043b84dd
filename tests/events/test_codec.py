"""CloudEvents Kafka binding: structured and binary modes, and every rejection reason."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest

from events.codec import (
    STRUCTURED_CONTENT_TYPE,
    Reason,
    Rejected,
    decode,
    decode_mapping,
    encode_binary,
    encode_structured,
    is_binary,
    validate_mapping,
)
from schemas.envelope import CloudEvent
from schemas.events import (
    DATA_CHANGED,
    EVENT_CLASSES,
    AimsEvent,
)
from tests.factories import SAMPLES, make_event, raw_event

MAX = 256 * 1024  # bytes: the codec's cap on one event

DATA = SAMPLES

Encoder = Callable[[CloudEvent], tuple[bytes, list[tuple[str, bytes]]]]
ENCODERS: dict[str, Encoder] = {"structured": encode_structured, "binary": encode_binary}


def structured(raw: Any) -> bytes:
    return json.dumps(raw).encode()


def rejected(result: object, reason: Reason) -> Rejected:
    assert isinstance(result, Rejected), f"expected a rejection ({reason}), got {result!r}"
    assert result.reason is reason, result
    assert result.detail.strip()
    return result


# -- round trips ---------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", sorted(ENCODERS))
@pytest.mark.parametrize("event_type", sorted(EVENT_CLASSES))
def test_round_trip(mode: str, event_type: str) -> None:
    event = make_event(event_type)
    value, headers = ENCODERS[mode](event)
    decoded = decode(value, headers, MAX)
    assert isinstance(decoded, EVENT_CLASSES[event_type]), decoded
    assert decoded == event
    assert decoded.key == event.key


@pytest.mark.parametrize("mode", sorted(ENCODERS))
def test_round_trip_keeps_extensions_and_optional_attributes(mode: str) -> None:
    event = make_event(
        subject="explicit-subject",
        dataschema="urn:aims:schema:org.aims.data.changed",
        datacontenttype="application/vnd.aims+json",
        traceparent="00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        partitionkey="p1",
    )
    value, headers = ENCODERS[mode](event)
    decoded = decode(value, headers, MAX)
    assert decoded == event
    assert isinstance(decoded, AimsEvent)
    assert decoded.extensions == {
        "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        "partitionkey": "p1",
    }


def test_structured_encoding_shape() -> None:
    # A location without its `kind` that names a table is a SQL table: the encoded event says so.
    sql_location = {"url": "sqlite:///register.db", "table": "loans"}
    # The deprecated form: a location instead of a source with its path or table.
    legacy = {k: v for k, v in SAMPLES[DATA_CHANGED].items() if k not in {"source", "path", "table"}}
    event = make_event(data={**legacy, "location": sql_location})
    value, headers = encode_structured(event)
    assert headers == [("content-type", STRUCTURED_CONTENT_TYPE.encode())]
    body = json.loads(value)
    assert body["specversion"] == "1.0"
    assert body["type"] == DATA_CHANGED
    assert body["subject"] == "loans"
    assert body["data"]["location"] == {"kind": "sql", "url": "sqlite:///register.db", "table": "loans"}
    assert not is_binary(headers)


def test_binary_encoding_shape() -> None:
    event = make_event(traceparent="tp")
    value, headers = encode_binary(event)
    as_dict = dict(headers)
    assert len(as_dict) == len(headers), "no header twice"
    assert as_dict["ce_specversion"] == b"1.0"
    assert as_dict["ce_id"] == b"evt-1"
    assert as_dict["ce_type"] == DATA_CHANGED.encode()
    assert as_dict["ce_subject"] == b"loans"
    assert as_dict["ce_traceparent"] == b"tp"
    assert as_dict["content-type"] == b"application/json"
    assert "ce_data" not in as_dict and "ce_datacontenttype" not in as_dict
    assert json.loads(value) == event.model_dump(mode="json", exclude_none=True)["data"]
    assert is_binary(headers)


def test_binary_mode_header_names_are_case_insensitive() -> None:
    value, headers = encode_binary(make_event())
    shouted = [(k.upper(), v) for k, v in headers]
    assert decode(value, shouted, MAX) == make_event()


def test_structured_mode_ignores_unrelated_headers() -> None:
    event = make_event()
    value, headers = encode_structured(event)
    headers = [*headers, ("traceparent", b"x"), ("x-other", None)]
    assert decode(value, headers, MAX) == event


# -- rejections ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [b"", b"{", b"not json", b"\xff\xfe\x00", b'{"id": "1",}', b"{'single': 'quotes'}"],
    ids=["empty", "truncated", "text", "not-utf8", "trailing-comma", "single-quotes"],
)
def test_malformed_structured_value(value: bytes) -> None:
    rejected(decode(value, [], MAX), Reason.malformed)


def test_no_value_and_no_ce_headers_is_malformed() -> None:
    rejected(decode(None, [], MAX), Reason.malformed)


@pytest.mark.parametrize("value", [b"[]", b'[{"id": "1"}]', b'"event"', b"42", b"null", b"true"])
def test_non_object_json_is_malformed(value: bytes) -> None:
    result = rejected(decode(value, [], MAX), Reason.malformed)
    assert "JSON" in result.detail


def test_binary_data_not_json_is_malformed() -> None:
    _, headers = encode_binary(make_event())
    rejected(decode(b"{not json", headers, MAX), Reason.malformed)


def test_binary_header_not_utf8_is_malformed() -> None:
    value, headers = encode_binary(make_event())
    headers = [(k, b"\xff\xfe" if k == "ce_id" else v) for k, v in headers]
    result = rejected(decode(value, headers, MAX), Reason.malformed)
    assert "ce_id" in result.detail


@pytest.mark.parametrize("specversion", ["0.3", "1.1", "2.0", 1.0, None, ""])
def test_wrong_specversion(specversion: Any) -> None:
    result = rejected(
        decode(structured(raw_event(specversion=specversion)), [], MAX), Reason.unsupported_specversion
    )
    assert repr(specversion) in result.detail


def test_wrong_specversion_in_binary_mode() -> None:
    value, headers = encode_binary(make_event())
    headers = [(k, b"0.3" if k == "ce_specversion" else v) for k, v in headers]
    rejected(decode(value, headers, MAX), Reason.unsupported_specversion)


def test_wrong_specversion_wins_over_other_envelope_errors() -> None:
    raw = raw_event(specversion="0.3")
    del raw["id"]
    rejected(decode(structured(raw), [], MAX), Reason.unsupported_specversion)


def test_missing_specversion_is_rejected() -> None:
    raw = raw_event()
    del raw["specversion"]
    assert isinstance(decode(structured(raw), [], MAX), Rejected)


@pytest.mark.parametrize("key", ["id", "source", "type"])
def test_missing_required_attribute_is_invalid_envelope(key: str) -> None:
    raw = raw_event()
    del raw[key]
    result = rejected(decode(structured(raw), [], MAX), Reason.invalid_envelope)
    assert key in result.detail


@pytest.mark.parametrize("key", ["ce_id", "ce_source", "ce_type"])
def test_missing_required_header_in_binary_mode_is_invalid_envelope(key: str) -> None:
    value, headers = encode_binary(make_event())
    headers = [(k, v) for k, v in headers if k != key]
    result = rejected(decode(value, headers, MAX), Reason.invalid_envelope)
    assert key.removeprefix("ce_") in result.detail


@pytest.mark.parametrize(
    "overrides",
    [
        {"id": ""},
        {"id": 7},
        {"source": ""},
        {"type": ""},
        {"subject": ""},
        {"time": "yesterday"},
        {"datacontenttype": "text/csv"},
        {"id": "x" * 257},
    ],
    ids=lambda o: next(iter(o)) + "=" + repr(next(iter(o.values())))[:10],
)
def test_bad_envelope_attribute_is_invalid_envelope(overrides: dict[str, Any]) -> None:
    result = rejected(decode(structured(raw_event(**overrides)), [], MAX), Reason.invalid_envelope)
    assert next(iter(overrides)) in result.detail


@pytest.mark.parametrize("name", ["Trace", "trace_parent", "trace-parent", "x" * 21, "ünï", ""], ids=repr)
def test_invalid_extension_attribute_name_is_invalid_envelope(name: str) -> None:
    result = rejected(decode(structured(raw_event(**{name: "v"})), [], MAX), Reason.invalid_envelope)
    assert repr(name) in result.detail


@pytest.mark.parametrize("name", ["trace_parent", "trace-parent", "x" * 21, ""], ids=repr)
def test_invalid_extension_header_name_in_binary_mode(name: str) -> None:
    value, headers = encode_binary(make_event())
    result = rejected(decode(value, [*headers, (f"ce_{name}", b"v")], MAX), Reason.invalid_envelope)
    assert "extension attribute" in result.detail


@pytest.mark.parametrize("event_type", ["org.aims.unknown", "com.example.thing", DATA_CHANGED.upper()])
def test_unknown_type(event_type: str) -> None:
    result = rejected(decode(structured(raw_event(type=event_type)), [], MAX), Reason.unknown_type)
    assert repr(event_type) in result.detail
    for known in EVENT_CLASSES:
        assert known in result.detail


def test_the_samples_cover_every_event_type() -> None:
    assert set(DATA) == set(EVENT_CLASSES)


@pytest.mark.parametrize(
    ("event_type", "other"),
    [(t, o) for t in sorted(EVENT_CLASSES) for o in sorted(EVENT_CLASSES) if o != t],
)
def test_payload_of_another_type_is_invalid_payload(event_type: str, other: str) -> None:
    raw = raw_event(event_type, data=copy.deepcopy(DATA[other]))
    rejected(decode(structured(raw), [], MAX), Reason.invalid_payload)


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({**DATA[DATA_CHANGED], "change_kind": "renamed"}, "change_kind"),
        ({**DATA[DATA_CHANGED], "row_count": -1}, "row_count"),
        ({**DATA[DATA_CHANGED], "extra": 1}, "extra"),
        ({k: v for k, v in DATA[DATA_CHANGED].items() if k != "version"}, "version"),
        ([], "data"),
        ("a string", "data"),
        (None, "data"),
    ],
)
def test_invalid_payload_names_the_field(data: Any, field: str) -> None:
    result = rejected(decode(structured(raw_event(data=data)), [], MAX), Reason.invalid_payload)
    assert field in result.detail


def test_binary_mode_without_value_is_invalid_payload() -> None:
    _, headers = encode_binary(make_event())
    rejected(decode(None, headers, MAX), Reason.invalid_payload)


def test_invalid_payload_detail_does_not_echo_a_sql_password() -> None:
    data = {**DATA[DATA_CHANGED], "location": {"url": "postgresql://u:hunter2@db/x", "table": "t"}}
    result = rejected(decode(structured(raw_event(data=data)), [], MAX), Reason.invalid_payload)
    assert "hunter2" not in result.detail


def test_invalid_payload_detail_is_bounded() -> None:
    data = {f"field{i}": i for i in range(500)}
    result = rejected(decode(structured(raw_event(data=data)), [], MAX), Reason.invalid_payload)
    assert result.detail.count(";") <= 9  # at most ten errors are described


@pytest.mark.parametrize("mode", sorted(ENCODERS))
def test_oversize(mode: str) -> None:
    value, headers = ENCODERS[mode](make_event())
    size = len(value) + sum(len(k) + len(v) for k, v in headers)
    assert isinstance(decode(value, headers, size), AimsEvent)  # exactly at the limit is fine
    result = rejected(decode(value, headers, size - 1), Reason.oversize)
    assert str(size) in result.detail and str(size - 1) in result.detail


def test_oversize_is_checked_before_parsing() -> None:
    rejected(decode(b"x" * 100, [], 99), Reason.oversize)


def test_oversize_counts_headers() -> None:
    rejected(decode(b"{}", [("h", b"y" * 100)], 50), Reason.oversize)


# -- decode_mapping / validate_mapping directly ---------------------------------------------------


def test_decode_mapping_binary_takes_content_type_header_as_datacontenttype() -> None:
    mapping = decode_mapping(b'{"a": 1}', [("ce_specversion", b"1.0"), ("Content-Type", b"application/json")])
    assert mapping == {"specversion": "1.0", "datacontenttype": "application/json", "data": {"a": 1}}


def test_validate_mapping_reports_the_first_thing_wrong() -> None:
    # envelope before type before payload
    rejected(validate_mapping({"type": "nope", "data": []}), Reason.invalid_envelope)
    rejected(
        validate_mapping({"specversion": "1.0", "id": "1", "source": "s", "type": "nope", "data": []}),
        Reason.unknown_type,
    )
    rejected(
        validate_mapping({"specversion": "1.0", "id": "1", "source": "s", "type": DATA_CHANGED, "data": []}),
        Reason.invalid_payload,
    )


# -- found by probing: inputs that make decode raise ----------------------------------------------


@pytest.mark.parametrize("binary", [False, True], ids=["structured", "binary"])
def test_deeply_nested_json_is_rejected_not_raised(binary: bool) -> None:
    headers = [("ce_specversion", b"1.0")] if binary else []
    rejected(decode(b"[" * 100_000, headers, MAX), Reason.malformed)


@pytest.mark.parametrize("binary", [False, True], ids=["structured", "binary"])
def test_huge_integer_literal_is_rejected_not_raised(binary: bool) -> None:
    headers = [("ce_specversion", b"1.0")] if binary else []
    value = b'{"row_count": ' + b"9" * 5000 + b"}"
    assert isinstance(decode(value, headers, MAX), Rejected)
