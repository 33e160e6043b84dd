"""CloudEvents Kafka protocol binding 1.0: structured and binary content modes.

Decoding is the first line of defence: every failure becomes a `Rejected` with a short machine
reason (used as the dead-letter header) and a human detail. Nothing here raises on bad input.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pydantic import ValidationError

from schemas.envelope import CloudEvent
from schemas.events import EVENT_CLASSES, AimsEvent, parse_event

Headers = Sequence[tuple[str, bytes | None]]

STRUCTURED_CONTENT_TYPE = "application/cloudevents+json"
# Binary mode: each attribute is a header `ce_<name>`; datacontenttype is the content-type header.
_CE_PREFIX = "ce_"


class Reason(StrEnum):
    """Why an event was dead-lettered. Stable: operators filter on these."""

    oversize = "oversize"
    malformed = "malformed"  # not JSON, not UTF-8, not an object
    unsupported_specversion = "unsupported-specversion"
    invalid_envelope = "invalid-envelope"
    unknown_type = "unknown-type"
    invalid_payload = "invalid-payload"
    rejected_by_orchestrator = "rejected-by-orchestrator"


@dataclass(frozen=True)
class Rejected:
    reason: Reason
    detail: str


# json.loads raises more than JSONDecodeError: ValueError for integers over 4300 digits,
# RecursionError for deeply nested arrays. All of them are a producer's malformed record.
_JSON_ERRORS = (ValueError, RecursionError)  # UnicodeDecodeError and JSONDecodeError are ValueErrors


def _json_error(exc: BaseException) -> str:
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    return str(exc)[:300]


def _header(headers: Headers, name: str) -> str | None:
    for key, value in headers:
        if key.lower() == name and value is not None:
            return value.decode("utf-8", errors="replace")
    return None


def is_binary(headers: Headers) -> bool:
    return any(key.lower() == "ce_specversion" for key, _ in headers)


def decode_mapping(value: bytes | None, headers: Headers) -> dict[str, Any] | Rejected:
    """Turn a Kafka record into a CloudEvent attribute mapping, without validating it."""
    if is_binary(headers):
        attrs: dict[str, Any] = {}
        for key, raw in headers:
            name = key.lower()
            if name.startswith(_CE_PREFIX) and raw is not None:
                try:
                    attrs[name[len(_CE_PREFIX) :]] = raw.decode("utf-8")
                except UnicodeDecodeError:
                    return Rejected(Reason.malformed, f"header {key!r} is not UTF-8")
        content_type = _header(headers, "content-type")
        if content_type is not None:
            attrs["datacontenttype"] = content_type
        if value is not None:
            try:
                attrs["data"] = json.loads(value)
            except _JSON_ERRORS as exc:
                return Rejected(Reason.malformed, f"binary-mode data is not JSON: {_json_error(exc)}")
        return attrs
    if value is None:
        return Rejected(Reason.malformed, "empty record value and no ce_ headers")
    try:
        decoded = json.loads(value)
    except _JSON_ERRORS as exc:
        return Rejected(Reason.malformed, f"structured-mode value is not JSON: {_json_error(exc)}")
    if not isinstance(decoded, dict):
        return Rejected(Reason.malformed, f"structured-mode value is a JSON {type(decoded).__name__}")
    return decoded


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors(include_url=False)[:10]:
        loc = ".".join(str(p) for p in err["loc"]) or "(event)"
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)


def validate_mapping(attrs: dict[str, Any]) -> AimsEvent | Rejected:
    """Envelope first, then type, then payload, so the reason names the first thing wrong."""
    try:
        CloudEvent.model_validate(attrs)
    except ValidationError as exc:
        if "specversion" in attrs and any(err["loc"][:1] == ("specversion",) for err in exc.errors()):
            found = attrs.get("specversion")
            return Rejected(
                Reason.unsupported_specversion, f"specversion {found!r} is not supported; send 1.0"
            )
        return Rejected(Reason.invalid_envelope, _describe(exc))
    event_type = attrs["type"]
    if event_type not in EVENT_CLASSES:
        known = ", ".join(sorted(EVENT_CLASSES))
        return Rejected(Reason.unknown_type, f"type {event_type!r} is not routed; known: {known}")
    try:
        return parse_event(attrs)
    except ValidationError as exc:
        return Rejected(Reason.invalid_payload, _describe(exc))


def decode(value: bytes | None, headers: Headers, max_bytes: int) -> AimsEvent | Rejected:
    size = len(value or b"") + sum(len(k) + len(v or b"") for k, v in headers)
    if size > max_bytes:
        return Rejected(Reason.oversize, f"record is {size} bytes; the limit is {max_bytes}")
    attrs = decode_mapping(value, headers)
    if isinstance(attrs, Rejected):
        return attrs
    return validate_mapping(attrs)


def encode_structured(event: CloudEvent) -> tuple[bytes, list[tuple[str, bytes]]]:
    body = event.model_dump_json(exclude_none=True).encode()
    return body, [("content-type", STRUCTURED_CONTENT_TYPE.encode())]


def encode_binary(event: CloudEvent) -> tuple[bytes, list[tuple[str, bytes]]]:
    attrs = event.model_dump(mode="json", exclude_none=True)
    data = attrs.pop("data", None)
    content_type = attrs.pop("datacontenttype", "application/json")
    headers = [(f"{_CE_PREFIX}{name}", str(val).encode()) for name, val in attrs.items()]
    headers.append(("content-type", content_type.encode()))
    return json.dumps(data, separators=(",", ":")).encode(), headers
