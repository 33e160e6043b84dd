"""Dead letters: why a record was refused travels in its headers; `aims dlq` reads them back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aims.dlq import parse_position, render_list, render_one
from aims.errors import CliError
from events.codec import Reason
from events.dead_letter import (
    AT,
    DETAIL,
    PREFIX,
    REASON,
    SOURCE_OFFSET,
    SOURCE_PARTITION,
    SOURCE_TOPIC,
    DeadLetter,
    DeadLetterLog,
    dead_letter_headers,
)

ORIGINAL = [("content-type", b"application/cloudevents+json"), ("traceparent", b"00-abc"), ("empty", None)]


def headers_for(detail: str = "data.version: Field required", original=ORIGINAL) -> list[tuple[str, bytes]]:
    return dead_letter_headers(original, Reason.invalid_payload, detail, "aims.events", 3, 1234)


def test_headers_carry_reason_detail_topic_partition_offset_and_time() -> None:
    before = datetime.now(UTC)
    headers = dict(headers_for())
    assert headers[REASON] == b"invalid-payload"
    assert headers[DETAIL] == b"data.version: Field required"
    assert headers[SOURCE_TOPIC] == b"aims.events"
    assert headers[SOURCE_PARTITION] == b"3"
    assert headers[SOURCE_OFFSET] == b"1234"
    at = datetime.fromisoformat(headers[AT].decode())
    assert at.tzinfo is not None
    assert before - timedelta(seconds=1) <= at <= datetime.now(UTC) + timedelta(seconds=1)


def test_all_added_headers_have_the_prefix() -> None:
    added = headers_for()[len(ORIGINAL) :]
    assert {k for k, _ in added} == {REASON, DETAIL, SOURCE_TOPIC, SOURCE_PARTITION, SOURCE_OFFSET, AT}
    assert all(k.startswith(PREFIX) for k, _ in added)


def test_original_headers_are_kept_in_order_first() -> None:
    headers = headers_for()
    assert headers[: len(ORIGINAL)] == [
        ("content-type", b"application/cloudevents+json"),
        ("traceparent", b"00-abc"),
        ("empty", b""),  # a None header value becomes empty bytes: Kafka headers need bytes
    ]
    assert all(isinstance(v, bytes) for _, v in headers)


def test_binary_mode_ce_headers_are_kept() -> None:
    original = [("ce_specversion", b"1.0"), ("ce_id", b"x"), ("content-type", b"application/json")]
    assert headers_for(original=original)[:3] == original


def test_earlier_dead_letter_headers_are_replaced_not_duplicated() -> None:
    # a replayed record that is refused again must not carry two reasons
    first = headers_for("first")
    second = dead_letter_headers(first, Reason.unknown_type, "second", "aims.events", 0, 7)
    names = [k for k, _ in second]
    assert names.count(REASON) == 1 and names.count(DETAIL) == 1
    as_dict = dict(second)
    assert as_dict[REASON] == b"unknown-type"
    assert as_dict[DETAIL] == b"second"
    assert as_dict[SOURCE_OFFSET] == b"7"
    assert [h for h in second if not h[0].startswith(PREFIX)] == [(k, v or b"") for k, v in ORIGINAL]


def test_detail_is_truncated() -> None:
    detail = dict(headers_for("x" * 100_000))[DETAIL]
    assert 0 < len(detail) <= 4000
    assert detail == b"x" * len(detail)


def test_detail_truncation_keeps_utf8_valid() -> None:
    detail = dict(headers_for("é" * 10_000))[DETAIL]
    assert len(detail.decode("utf-8")) <= 4000  # decodes: not cut inside a character


def test_short_detail_is_untouched() -> None:
    assert dict(headers_for("ünïcode ✓"))[DETAIL] == "ünïcode ✓".encode()


@pytest.mark.parametrize("reason", list(Reason))
def test_every_reason_fits_a_header(reason: Reason) -> None:
    headers = dict(dead_letter_headers([], reason, "d", "t", 0, 0))
    assert headers[REASON].decode() == reason.value


def _letter() -> DeadLetter:
    return DeadLetter(3, 1234, b"credit-scoring", b'{"id": "1"}', headers_for())


def test_dead_letter_reads_its_headers_back() -> None:
    letter = _letter()
    assert letter.reason == "invalid-payload"
    assert letter.detail == "data.version: Field required"
    assert letter.header(SOURCE_TOPIC) == "aims.events"
    assert letter.header("no-such-header") == ""


def test_original_headers_drop_dlq_headers() -> None:
    letter = _letter()
    assert letter.original_headers == [(k, v or b"") for k, v in ORIGINAL]
    assert not any(k.startswith(PREFIX) for k, _ in letter.original_headers)


def test_original_headers_of_a_record_without_headers() -> None:
    assert DeadLetter(0, 0, None, None).original_headers == []
    assert DeadLetter(0, 0, None, None).reason == ""


def test_header_with_invalid_utf8_is_read_with_replacement() -> None:
    letter = DeadLetter(0, 0, None, None, [(DETAIL, b"bad \xff byte")])
    assert letter.detail == "bad \ufffd byte"


# -- aims dlq -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"), [("0:12", (0, 12)), ("3:0", (3, 0)), ("10:123456789", (10, 123456789))]
)
def test_parse_position(text: str, expected: tuple[int, int]) -> None:
    assert parse_position(text) == expected


@pytest.mark.parametrize(
    "text", ["", "0", "0:", ":12", "a:b", "0:12:3", "-1:2", "0:-2", "0 :12", "0;12", "1.5:2", "0:1e3"]
)
def test_parse_position_rejects_junk(text: str) -> None:
    with pytest.raises(CliError) as info:
        parse_position(text)
    assert "PARTITION:OFFSET" in str(info.value)


@pytest.mark.parametrize("text", ["²:1", "0:¹"])
def test_parse_position_rejects_superscript_digits_with_cli_error(text: str) -> None:
    with pytest.raises(CliError):
        parse_position(text)


def test_render_list_and_one() -> None:
    letter = _letter()
    listing = render_list([letter])
    assert "3:1234" in listing and "invalid-payload" in listing and "credit-scoring" in listing
    assert render_list([]) == "no dead letters"
    shown = render_one(DeadLetter(0, 5, None, b"\xff not json", [(REASON, b"malformed")]))
    assert "dead letter 0:5" in shown and "malformed" in shown


# -- records too large to copy whole --------------------------------------------------------------


def test_a_copy_near_the_limit_is_estimated_above_it() -> None:
    from events.dead_letter import copy_size
    from events.kafka_clients import MAX_REQUEST_BYTES

    value = b"x" * (MAX_REQUEST_BYTES - 150)  # as much as the broker takes in one record
    assert copy_size(b"key", value, []) <= MAX_REQUEST_BYTES
    assert copy_size(b"key", value, headers_for()) > MAX_REQUEST_BYTES, "the dead-letter headers need room"


def test_a_reference_says_where_the_original_is_why_and_how_it_begins() -> None:
    import json

    from events.dead_letter import REFERENCE, reference_letter

    value = b'{"specversion": "1.0", "data": "' + b"z" * 2_000_000 + b'"}'
    key, body, headers = reference_letter(
        b"subject-1", value, ORIGINAL, Reason.oversize, "2000034 bytes > 262144", "aims.events", 2, 77
    )
    assert len(body) < 8192 and key == b"subject-1"
    found = json.loads(body)
    assert found["reference"] == {"topic": "aims.events", "partition": 2, "offset": 77}
    assert found["size"] == len(value) and found["reason"] == "oversize"
    assert found["prefix"].startswith('{"specversion": "1.0"') and found["headers"] == sorted(
        k for k, _ in ORIGINAL
    )
    letter = DeadLetter(0, 5, key, body, headers)
    assert letter.is_reference and dict(headers)[REFERENCE] == b"1"
    assert letter.reason == "oversize" and letter.header(SOURCE_OFFSET) == "77"
    assert "is a reference" in render_one(letter) and "(ref)" in render_list([letter])


@settings(max_examples=200, deadline=None)
@given(
    key=st.one_of(st.none(), st.binary(max_size=3000)),
    value=st.one_of(st.none(), st.binary(max_size=5000)),
    headers=st.lists(
        st.tuples(st.text(max_size=30), st.one_of(st.none(), st.binary(max_size=100))), max_size=8
    ),
    detail=st.text(max_size=6000),
)
def test_any_record_has_a_small_reference(
    key: bytes | None, value: bytes | None, headers: list[tuple[str, bytes | None]], detail: str
) -> None:
    import json

    from events.dead_letter import REFERENCE_PREFIX_BYTES, reference_letter

    ref_key, body, letter_headers = reference_letter(key, value, headers, Reason.malformed, detail, "t", 0, 1)
    assert len(body) < 64 * 1024 and json.loads(body)["size"] == len(value or b"")
    assert ref_key is None or len(ref_key) <= REFERENCE_PREFIX_BYTES
    assert all(isinstance(k, str) and isinstance(v, bytes) for k, v in letter_headers)


# -- what the router logs of them ------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_flood_logs_the_first_of_each_reason_then_one_line_that_counts_the_rest() -> None:
    clock = Clock()
    book = DeadLetterLog(window=10, clock=clock)
    shown = [book.one_by_one(Reason.malformed) for _ in range(1000)]
    shown += [book.one_by_one(Reason.unknown_type) for _ in range(200)]
    assert shown.count(True) == 2, "one line for the first of each reason, none for the rest"
    clock.now += 9
    assert book.summary() is None, "the window has not ended"
    clock.now += 1
    line = book.summary()
    assert line is not None
    assert "1,198 more" in line and "malformed 999" in line and "unknown-type 199" in line
    assert book.summary() is None, "said once"
    assert book.one_by_one(Reason.malformed), "a new window logs its first again"


def test_a_lone_dead_letter_is_logged_and_leaves_nothing_to_sum_up() -> None:
    clock = Clock()
    book = DeadLetterLog(window=10, clock=clock)
    assert book.one_by_one(Reason.invalid_payload)
    clock.now += 60
    assert book.summary() is None
    assert book.one_by_one(Reason.invalid_payload)
