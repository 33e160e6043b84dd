"""Shared by the emit message tests: pydantic's wording to avoid, records to decode, refusals read back."""

from __future__ import annotations

import copy
import json
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

from aims.emit import build_event
from aims.errors import CliError
from events.codec import MAX_DETAIL, Reason, Rejected, encode_binary
from schemas.events import DATA_CHANGED, AimsEvent
from tests.factories import SAMPLES as DATA
from tests.factories import make_event

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
    old_form = {k: v for k, v in DATA[DATA_CHANGED].items() if k not in ("source", "path")}
    return {**copy.deepcopy(old_form), "location": location}


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
