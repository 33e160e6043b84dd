"""What a producer reads when an event is refused: the field, what was received, what to send.

The same mistakes are checked on both ways in: the router's codec (`decode`, whose detail becomes the
`dlq_detail` header) in structured and binary mode, and `aims emit` (`build_event`, `explain`, the CLI).
The messages are pinned whole where the wording is the point (issue 17, item 9).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from aims.cli import main
from aims.emit import build_event
from events.codec import Reason, decode
from schemas.events import DATA_CHANGED, EVENT_CLASSES, INCIDENT_REPORTED, describe_errors, parse_event
from schemas.export import export_json_schemas
from schemas.payloads import FILE_EXAMPLE, SQL_EXAMPLE, FileLocation, SqlTableLocation
from tests.aims.emit_samples import (
    INTERNAL,
    MAX,
    SEND,
    binary_record,
    data_with,
    emit_data,
    refusal_of,
    rejection,
    structured_record,
)
from tests.factories import SAMPLES as DATA
from tests.factories import raw_event

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
    assert detail.endswith(" … and 43 more")  # 50 unknown fields and 3 required ones missing
