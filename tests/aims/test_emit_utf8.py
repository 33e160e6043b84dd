"""Input that is not UTF-8: its own message naming the byte, distinct from empty and from not JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aims.cli import main
from aims.emit import build_event
from events.codec import Reason, decode, encode_binary
from schemas.events import DATA_CHANGED, AimsEvent
from tests.aims.emit_samples import MAX, binary_record, refusal_of, rejection, structured_record
from tests.factories import SAMPLES as DATA
from tests.factories import make_event, raw_event

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
