"""What a producer reads when an event is refused: the field, what was received, what to send.

The same mistakes are checked on both ways in: the router's codec (`decode`, whose detail becomes the
`dlq_detail` header) in structured and binary mode, and `aims emit` (`build_event`, `explain`, the CLI).
The messages are pinned whole where the wording is the point (issue 17, item 9).
"""

from __future__ import annotations

import copy
import json
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from aims.cli import main
from aims.emit import build_event
from aims.errors import CliError
from events.codec import MAX_DETAIL, Reason, Rejected, decode, encode_binary
from schemas.envelope import shown
from schemas.events import (
    DATA_CHANGED,
    EVENT_CLASSES,
    INCIDENT_REPORTED,
    AimsEvent,
    describe_errors,
    parse_event,
)
from schemas.export import export_json_schemas
from schemas.payloads import FILE_EXAMPLE, SQL_EXAMPLE, FileLocation, SqlTableLocation
from tests.factories import SAMPLES as DATA
from tests.factories import make_event, raw_event

MAX = 256 * 1024  # bytes: the codec's cap on one event

SEND = (
    'Send a file as {"uri": "/data/loans.csv"} or a SQL table as'
    ' {"url": "postgresql://host/db", "table": "loans"}'
)
# pydantic's own wording, which means nothing to a producer (or leaks its internals).
INTERNAL = (
    "discriminator",
    "_location_kind",
    "Input tag",
    "instance of",
    "Value error",
    "Field required",
    "Extra inputs",
    "org.aims.data.changed.data",
    "location.file",
    "location.sql",
)
PROPERTY = settings(
    max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)


def data_with(location: Any) -> dict[str, Any]:
    return {**copy.deepcopy(DATA[DATA_CHANGED]), "location": location}


def structured_record(raw: dict[str, Any]) -> tuple[bytes, list[tuple[str, bytes | None]]]:
    return json.dumps(raw).encode(), []


def binary_record(data: Any) -> tuple[bytes, list[tuple[str, bytes | None]]]:
    _, headers = encode_binary(make_event())
    return json.dumps(data).encode(), list(headers)


def rejection(result: object, reason: Reason) -> str:
    assert isinstance(result, Rejected), f"expected a rejection ({reason}), got {result!r}"
    assert result.reason is reason, result
    assert_safe(result.detail)
    return result.detail


def assert_safe(text: str, limit: int = MAX_DETAIL) -> None:
    """Bounded, and printable: no control characters, no lone surrogates (raw bytes that were not UTF-8)."""
    assert text.strip()
    assert len(text) <= limit, len(text)
    assert all(ch.isprintable() for ch in text), ascii(text)
    text.encode("utf-8")  # goes into a Kafka header


def emit_data(data: Any) -> AimsEvent:
    """`aims emit data-changed -f FILE` with `data` in the file."""
    with tempfile.TemporaryDirectory() as folder:
        file = Path(folder) / "data.json"
        file.write_text(json.dumps(data))
        return build_event("data-changed", [], file)


def refusal_of(build: Any) -> str:
    with pytest.raises(CliError) as info:
        build()
    message = str(info.value)
    for line in message.splitlines():
        assert_safe(line)
    return message


# -- (1) `location`: a string, a number, a list, a shapeless or mixed object -----------------------

LOCATION_MISTAKES = {
    "string": ("/data/loans.csv", 'expected an object but got the string "/data/loans.csv"'),
    "number": (42, "expected an object but got the number 42"),
    "list": (["/data/loans.csv"], 'expected an object but got an array of 1 item ["/data/loans.csv"]'),
    "null": (None, "expected an object but got null"),
    "empty-object": ({}, 'has neither a file\'s "uri" nor a SQL table\'s "url" and "table" (its keys: none)'),
    "path-key": (
        {"path": "/data/loans.csv"},
        'has neither a file\'s "uri" nor a SQL table\'s "url" and "table" (its keys: "path")',
    ),
    "both": (
        {"uri": "/data/loans.csv", "url": "sqlite:///r.db", "table": "loans"},
        'has both a file\'s "uri" and a SQL table\'s "url" and "table": a location is one or the other',
    ),
    "uri-and-table": (
        {"uri": "/data/loans.csv", "table": "loans"},
        'has both a file\'s "uri" and a SQL table\'s "table": a location is one or the other',
    ),
    "unknown-kind": (
        {"kind": "ftp", "uri": "ftp://x"},
        'kind must be "file" or "sql" (or left out) but got the string "ftp"',
    ),
    "kind-against-keys": (
        {"kind": "file", "url": "sqlite:///r.db", "table": "loans"},
        'kind is "file" but the object has "url" and "table", which belong to the other shape',
    ),
}


@pytest.mark.parametrize(("location", "problem"), LOCATION_MISTAKES.values(), ids=LOCATION_MISTAKES.keys())
@pytest.mark.parametrize("mode", ["structured", "binary"])
def test_a_location_mistake_names_the_field_what_came_and_both_shapes(
    mode: str, location: Any, problem: str
) -> None:
    data = data_with(location)
    value, headers = structured_record(raw_event(data=data)) if mode == "structured" else binary_record(data)
    detail = rejection(decode(value, headers, MAX), Reason.invalid_payload)
    assert detail == f"data.location: {problem}. {SEND}"


@pytest.mark.parametrize(("location", "problem"), LOCATION_MISTAKES.values(), ids=LOCATION_MISTAKES.keys())
def test_a_location_mistake_reads_the_same_from_aims_emit(
    location: Any, problem: str, tmp_path: Path
) -> None:
    file = tmp_path / "data.json"
    file.write_text(json.dumps(data_with(location)))
    message = refusal_of(lambda: build_event("data-changed", [], file))
    assert f"\n  data.location: {problem}. {SEND}\n" in message
    # the flags that write the same shapes, for someone typing -d
    assert "-d location.uri=/data/loans.csv" in message
    assert "-d location.url=postgresql://host/db -d location.table=loans" in message


def test_the_reported_case_from_the_command_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("AIMS_STATE_DIR", str(tmp_path))
    argv = ["emit", "data-changed", "-d", "dataset_id=loans", "-d", "location=/data/loans.csv"]
    argv += ["-d", "version=3", "-d", "change_kind=created", "--dry-run"]
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert f'  data.location: expected an object but got the string "/data/loans.csv". {SEND}\n' in err


def test_the_shapes_quoted_are_the_models_own() -> None:
    """The examples in every location message validate as the models, with the models' field names."""
    assert set(FILE_EXAMPLE) <= set(FileLocation.model_fields)
    assert set(SQL_EXAMPLE) <= set(SqlTableLocation.model_fields)
    assert FileLocation.model_validate(FILE_EXAMPLE).uri == FILE_EXAMPLE["uri"]
    assert SqlTableLocation.model_validate(SQL_EXAMPLE).table == SQL_EXAMPLE["table"]
    assert json.dumps(FILE_EXAMPLE) in SEND and json.dumps(SQL_EXAMPLE) in SEND


@pytest.mark.parametrize(("location", "_problem"), LOCATION_MISTAKES.values(), ids=LOCATION_MISTAKES.keys())
def test_the_exported_schema_refuses_what_the_models_refuse(
    location: Any, _problem: str, tmp_path: Path
) -> None:
    """A plain string stays refused (see the report): the JSON Schema producers validate against agrees."""
    jsonschema = pytest.importorskip("jsonschema")
    written = {p.name: json.loads(p.read_text()) for p in export_json_schemas(tmp_path)}
    for name in (f"{DATA_CHANGED}.schema.json", "aims-event.schema.json"):
        validator = jsonschema.Draft202012Validator(written[name])
        assert list(validator.iter_errors(raw_event(data=data_with(location)))), (name, location)
        for good in (FILE_EXAMPLE, SQL_EXAMPLE):
            assert not list(validator.iter_errors(raw_event(data=data_with(good)))), (name, good)


def test_what_is_left_to_the_models_reads_well_too() -> None:
    sql_without_table = decode(
        structured_record(raw_event(data=data_with({"url": "sqlite:///r.db"})))[0], [], MAX
    )
    assert (
        rejection(sql_without_table, Reason.invalid_payload) == "data.location.table: required, but missing"
    )
    with_password = data_with({"kind": "sql", "url": "postgresql://u:hunter2@h/db", "table": "t"})
    detail = rejection(decode(*structured_record(raw_event(data=with_password)), MAX), Reason.invalid_payload)
    assert detail == (
        "data.location: the SQL URL carries a password; pass credentials through the environment"
    )


def test_a_location_string_with_a_password_is_quoted_without_it() -> None:
    data = data_with("postgresql://aims:hunter2@db.internal/aims")
    detail = rejection(decode(*structured_record(raw_event(data=data)), MAX), Reason.invalid_payload)
    assert "hunter2" not in detail
    assert 'got the string "postgresql://aims:***@db.internal/aims"' in detail


def test_a_hostile_location_is_cut_short_and_escaped() -> None:
    hostile = "\x1b[2J\u202e" + "A" * 100_000
    for location in (hostile, {"kind": hostile}, {hostile: 1}):
        detail = rejection(
            decode(*structured_record(raw_event(data=data_with(location))), MAX), Reason.invalid_payload
        )
        assert detail.startswith("data.location: ")
        assert "\\u001b[2J\\u202e" in detail
        assert len(detail) < 600


# -- (2) not UTF-8: its own message, with the byte, distinct from empty and from not JSON ----------


def test_invalid_utf8_in_a_structured_value_says_which_byte() -> None:
    value = json.dumps(raw_event()).encode().replace(b'"evt-1"', b'"evt-\xff"')
    position = value.index(b"\xff")
    detail = rejection(decode(value, [], MAX), Reason.malformed)
    assert detail == f"structured-mode value is not valid UTF-8: invalid start byte 0xff at byte {position}"


def test_a_value_that_ends_inside_a_character_says_so() -> None:
    detail = rejection(decode(b'{"id": "a\xe2\x82', [], MAX), Reason.malformed)
    assert detail == "structured-mode value is not valid UTF-8: unexpected end of data 0xe2 0x82 at byte 9"


def test_invalid_utf8_in_binary_data_says_which_byte() -> None:
    _, headers = encode_binary(make_event())
    value = b'{"dataset_id": "lo\xffans"}'
    detail = rejection(decode(value, headers, MAX), Reason.malformed)
    assert detail == "binary-mode data is not valid UTF-8: invalid start byte 0xff at byte 18"


@pytest.mark.parametrize(
    ("header", "bad", "problem"),
    [
        ("ce_id", b"ev\xfft-1", "invalid start byte 0xff at byte 2"),
        ("ce_source", b"urn:\xe2\x82", "unexpected end of data 0xe2 0x82 at byte 4"),
        ("ce_subject", b"lo\xe2(ans", "invalid continuation byte 0xe2 0x28 at byte 2"),
        ("content-type", b"application/\xc0\xafjson", "invalid start byte 0xc0 at byte 12"),
    ],
)
def test_invalid_utf8_in_a_header_names_the_header_and_the_byte(
    header: str, bad: bytes, problem: str
) -> None:
    value, headers = encode_binary(make_event())
    headers = [(k, bad if k == header else v) for k, v in headers]
    detail = rejection(decode(value, headers, MAX), Reason.malformed)
    assert detail == f'header "{header}" is not valid UTF-8: {problem}'


@pytest.mark.parametrize(
    ("tail", "problem"),
    [
        # a sequence cut short by the closing quote: the lead byte, its continuation, the quote
        (b"\xe2\x82", "invalid continuation byte 0xe2 0x82 0x22"),
        (b"\xe2(x", "invalid continuation byte 0xe2 0x28"),
        # UTF-8 cannot encode a surrogate; json.loads(bytes) used to let one through ("surrogatepass")
        (b"\xed\xa0\x80", "invalid continuation byte 0xed 0xa0"),
        (b"\xf8\x88\x80\x80\x80", "invalid start byte 0xf8"),
    ],
    ids=["cut-short", "continuation", "encoded-surrogate", "five-byte-form"],
)
def test_every_kind_of_invalid_utf8_is_named(tail: bytes, problem: str) -> None:
    value = json.dumps(raw_event(traceparent="@")).encode().replace(b'"@"', b'"' + tail + b'"')
    at = value.index(tail)
    detail = rejection(decode(value, [], MAX), Reason.malformed)
    assert detail == f"structured-mode value is not valid UTF-8: {problem} at byte {at}"


def test_utf16_json_is_refused_as_not_utf8_with_a_hint() -> None:
    # json.loads(bytes) guesses UTF-16 and UTF-32 and took them; JSON on the wire is UTF-8 (RFC 8259).
    with_bom = json.dumps(raw_event()).encode("utf-16")
    assert rejection(decode(with_bom, [], MAX), Reason.malformed) == (
        "structured-mode value is not valid UTF-8: invalid start byte 0xff at byte 0"
        " (it starts with a UTF-16 or UTF-32 byte-order mark: encode the JSON as UTF-8)"
    )
    without_bom = json.dumps(raw_event()).encode("utf-16-le")
    detail = rejection(decode(without_bom, [], MAX), Reason.malformed)
    assert detail.startswith("structured-mode value is not JSON: ")
    assert detail.endswith("(it has NUL bytes: UTF-16 or UTF-32? Encode the JSON as UTF-8)")


def test_a_utf8_byte_order_mark_is_still_accepted() -> None:
    value = b"\xef\xbb\xbf" + json.dumps(raw_event()).encode()
    assert decode(value, [], MAX) == make_event()


def test_empty_not_json_and_not_utf8_are_three_different_messages() -> None:
    empty = rejection(decode(None, [], MAX), Reason.malformed)
    empty_bytes = rejection(decode(b"", [], MAX), Reason.malformed)
    not_json = rejection(decode(b"{", [], MAX), Reason.malformed)
    not_utf8 = rejection(decode(b"\xff", [], MAX), Reason.malformed)
    assert empty == empty_bytes
    assert empty.startswith("empty record value and no ce_ headers: send the CloudEvent as one JSON object")
    assert not_json == (
        "structured-mode value is not JSON: Expecting property name enclosed in double quotes"
        " at line 1 column 2 (character 1)"
    )
    assert not_utf8 == "structured-mode value is not valid UTF-8: invalid start byte 0xff at byte 0"
    assert len({empty, not_json, not_utf8}) == 3


@pytest.mark.parametrize("mode", ["structured", "binary"])
def test_a_lone_surrogate_escape_is_refused_with_where_it_is(mode: str) -> None:
    # Valid UTF-8 and valid JSON syntax, but "\ud800" decodes to a character UTF-8 cannot carry:
    # it would break every later encoding of the event (an extension attribute keeps it as it is).
    if mode == "structured":
        value, headers = structured_record(raw_event(traceparent="a\ud800b"))
        where, what = "traceparent", "structured-mode value"
    else:
        value, headers = binary_record({**DATA[DATA_CHANGED], "version": "\udfff"})
        where, what = "version", "binary-mode data"
    assert b"\\ud800" in value or b"\\udfff" in value
    detail = rejection(decode(value, headers, MAX), Reason.malformed)
    assert detail.startswith(f"{what} is not valid Unicode: {where} has a \\u escape of a lone surrogate")


def test_a_surrogate_pair_escape_is_a_character_and_fine() -> None:
    value = json.dumps(raw_event(traceparent="\U0001f600")).encode()  # ensure_ascii: \ud83d\ude00
    assert b"\\ud83d\\ude00" in value
    event = decode(value, [], MAX)
    assert isinstance(event, AimsEvent) and event.extensions["traceparent"] == "\U0001f600"


def test_aims_emit_says_which_byte_of_a_file_is_not_utf8(tmp_path: Path) -> None:
    file = tmp_path / "data.json"
    file.write_bytes(b'{"dataset_id": "lo\xffans"}')
    message = refusal_of(lambda: build_event("data-changed", [], file))
    assert message == f"{file}: not valid UTF-8: invalid start byte 0xff at byte 18"


def test_aims_emit_says_which_byte_of_an_argument_is_not_utf8(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Python hands argv bytes that are not UTF-8 over as lone surrogates (PEP 383): b"\xff" is "\udcff".
    monkeypatch.setenv("AIMS_STATE_DIR", str(tmp_path))
    argv = ["emit", "data-changed", "-d", "dataset_id=lo\udcffans", "-d", "location.uri=/data/loans.csv"]
    assert main([*argv, "-d", "version=3", "-d", "change_kind=created", "--dry-run"]) == 2
    assert capsys.readouterr().err == (
        "aims: error: -d dataset_id: the value is not valid UTF-8: invalid start byte 0xff at byte 2\n"
    )
    message = refusal_of(lambda: build_event("data-changed", ["dataset_id=loans"], None, subject="s\udcfe"))
    assert message == "--subject is not valid UTF-8: invalid start byte 0xfe at byte 1"


def test_aims_emit_refuses_a_lone_surrogate_escape(tmp_path: Path) -> None:
    file = tmp_path / "event.json"
    whole = {**raw_event(), "traceparent": "\ud800"}
    file.write_text(json.dumps(whole))
    message = refusal_of(lambda: build_event(None, [], file))
    assert message.startswith(f"{file}: not valid Unicode at traceparent: a \\u escape of a lone surrogate")


# -- (3) the other messages a producer meets, in words -------------------------------------------

PAYLOAD_MISTAKES = {
    "enum": (
        {"change_kind": "renamed"},
        'data.change_kind: got the string "renamed". '
        'Send one of "created", "appended", "updated", "deleted" or "schema_changed"',
    ),
    "missing": ({"version": None}, "data.version: required, but missing"),
    "unknown-field": (
        {"colour": "blue"},
        "data.colour: not a field here: remove it, or check its spelling"
        " (`aims schemas export` lists the fields)",
    ),
    "padded-name": (
        {"version": " v2"},
        'data.version: must be one line, without leading or trailing whitespace, got the string " v2"',
    ),
    "negative": (
        {"row_count": -1},
        "data.row_count: Input should be greater than or equal to 0, got the number -1",
    ),
    "not-a-number": (
        {"row_count": "many"},
        "data.row_count: Input should be a valid integer, unable to parse string as an integer,"
        ' got the string "many"',
    ),
    "empty-name": ({"dataset_id": ""}, "data.dataset_id: must not be empty"),
    "too-long": (
        {"dataset_id": "x" * 300},
        "data.dataset_id: String should have at most 256 characters, got 300",
    ),
}


@pytest.mark.parametrize(("change", "expected"), PAYLOAD_MISTAKES.values(), ids=PAYLOAD_MISTAKES.keys())
def test_payload_mistakes_say_what_to_send(change: dict[str, Any], expected: str) -> None:
    data = {**copy.deepcopy(DATA[DATA_CHANGED]), **change}
    data = {k: v for k, v in data.items() if v is not None}
    detail = rejection(decode(*structured_record(raw_event(data=data)), MAX), Reason.invalid_payload)
    assert detail == expected
    message = refusal_of(lambda: emit_data(data))
    assert f"\n  {expected}" in message


@pytest.mark.parametrize(
    ("overrides", "reason", "expected"),
    [
        ({"id": 7}, Reason.invalid_envelope, "id: expected a string but got the number 7"),
        (
            {"data": "a string"},
            Reason.invalid_payload,
            'data: expected an object but got the string "a string"',
        ),
        (
            {"data": [1, 2, 3, 4]},
            Reason.invalid_payload,
            "data: expected an object but got an array of 4 items [1, 2, 3, …]",
        ),
        (
            {"datacontenttype": "text/csv"},
            Reason.invalid_envelope,
            'datacontenttype: got the string "text/csv", which is not JSON.'
            " Send application/json (or a type ending in +json)",
        ),
        (
            {"time": "yesterday"},
            Reason.invalid_envelope,
            'time: Input should be a valid datetime or date, input is too short, got the string "yesterday"',
        ),
        (
            {"specversion": "0.3"},
            Reason.unsupported_specversion,
            "specversion '0.3' is not supported: this system reads CloudEvents 1.0, send \"1.0\"",
        ),
        (
            {"type": "org.aims.nope"},
            Reason.unknown_type,
            "type 'org.aims.nope' is not an event type this system takes; send one of: "
            + ", ".join(sorted(EVENT_CLASSES)),
        ),
    ],
    ids=["id-type", "data-string", "data-array", "content-type", "time", "specversion", "type"],
)
def test_envelope_mistakes_say_what_to_send(overrides: dict[str, Any], reason: Reason, expected: str) -> None:
    assert rejection(decode(*structured_record(raw_event(**overrides)), MAX), reason) == expected


def test_a_time_without_a_zone_says_how_to_write_one() -> None:
    data = {**DATA[INCIDENT_REPORTED], "occurred_at": "2025-03-01T09:00:00"}
    detail = rejection(
        decode(*structured_record(raw_event(INCIDENT_REPORTED, data=data)), MAX), Reason.invalid_payload
    )
    assert detail == (
        "data.occurred_at: needs a time zone (e.g. 2025-03-01T09:00:00Z or +01:00),"
        ' got the string "2025-03-01T09:00:00"'
    )


def test_an_unknown_type_through_the_event_union_names_the_type_field() -> None:
    # The codec checks the type before the union; anyone calling parse_event directly gets this.
    with pytest.raises(ValidationError) as info:
        parse_event(raw_event(type="org.aims.nope"))
    [line] = describe_errors(info.value)
    assert line.startswith(
        'type: got the string "org.aims.nope". Send one of "org.aims.model.version.registered", '
    )


@pytest.mark.parametrize(
    "data",
    [
        data_with("/data/loans.csv"),
        data_with({"uri": "/x", "table": "t"}),
        data_with({"kind": "ftp"}),
        data_with({"kind": "sql", "url": "sqlite:///r.db"}),
        {**DATA[DATA_CHANGED], "colour": 1, "change_kind": "renamed", "version": None},
        "a string",
    ],
)
def test_no_message_carries_pydantic_internals(data: Any) -> None:
    detail = rejection(decode(*structured_record(raw_event(data=data)), MAX), Reason.invalid_payload)
    for phrase in INTERNAL:
        assert phrase not in detail, phrase
    for line in detail.split("; "):
        assert line.startswith("data"), line  # every message keeps its field path


def test_many_errors_are_counted_not_listed() -> None:
    data = {f"field{i}": i for i in range(50)}
    detail = rejection(decode(*structured_record(raw_event(data=data)), MAX), Reason.invalid_payload)
    assert detail.count("; ") == 9
    assert detail.endswith(" … and 44 more")  # 50 unknown fields and 4 required ones missing


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
