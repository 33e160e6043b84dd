"""CloudEvents Kafka protocol binding 1.0: structured and binary content modes.

Decoding is the first line of defence: every failure becomes a `Rejected` with a short machine
reason (used as the dead-letter header) and a human detail. Nothing here raises on bad input.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pydantic import SecretStr, ValidationError

from schemas.envelope import CloudEvent, lone_surrogate_path, printable, shown, utf8_problem
from schemas.events import EVENT_CLASSES, AimsEvent, describe_errors, parse_event
from schemas.signing import canonical_text, claims_internal_source, signature_problem

Headers = Sequence[tuple[str, bytes | None]]

STRUCTURED_CONTENT_TYPE = "application/cloudevents+json"
# Binary mode: each attribute is a header `ce_<name>`; datacontenttype is the content-type header.
_CE_PREFIX = "ce_"
# A detail goes into a dead-letter header and `aims dlq`'s output: bounded, printable.
MAX_DETAIL = 3000
_ERRORS_DESCRIBED = 10
_SEND_RECORD = (
    "send the CloudEvent as one JSON object (structured mode), or its attributes as ce_ headers"
    " and its data as the value (binary mode)"
)


class Reason(StrEnum):
    """Why an event was dead-lettered. Stable: operators filter on these."""

    oversize = "oversize"
    malformed = "malformed"  # not UTF-8, not JSON, not an object, or empty
    unsupported_specversion = "unsupported-specversion"
    invalid_envelope = "invalid-envelope"
    unknown_type = "unknown-type"
    invalid_payload = "invalid-payload"
    rejected_by_orchestrator = "rejected-by-orchestrator"
    # Claims a source of the system's own (urn:aims:…) without its valid signature: forged, or
    # altered on the way. Nothing is started and nothing recorded from it (schemas.signing).
    invalid_signature = "invalid-signature"
    # An id (source#id) received before with other content: one of the two is not what its producer
    # sent. The first one stands; this one is kept here for a person to look at, and alerted.
    conflicting_duplicate = "conflicting-duplicate"


@dataclass(frozen=True)
class Rejected:
    reason: Reason
    detail: str


def _reject(reason: Reason, detail: str) -> Rejected:
    # Every detail built here passes through one gate: escaped and capped, whatever it quotes.
    return Rejected(reason, printable(detail, MAX_DETAIL))


# json.loads raises more than JSONDecodeError: ValueError for integers over 4300 digits,
# RecursionError for deeply nested arrays. All of them are a producer's malformed record.
_JSON_ERRORS = (ValueError, RecursionError)


def _json_error(exc: BaseException, raw: bytes) -> str:
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    if isinstance(exc, json.JSONDecodeError):
        # UTF-16 and UTF-32 JSON of ASCII text is valid UTF-8 with NUL bytes between the characters.
        hint = " (it has NUL bytes: UTF-16 or UTF-32? Encode the JSON as UTF-8)" if b"\x00" in raw[:4] else ""
        return f"{exc.msg} at line {exc.lineno} column {exc.colno} (character {exc.pos}){hint}"
    if "integer string conversion" in str(exc):  # Python's advice to call sys.set_int_max_str_digits
        return f"a number has more than {sys.get_int_max_str_digits()} digits"
    return str(exc)


def _text(raw: bytes, what: str, json_document: bool = False) -> str | Rejected:
    """`raw` as UTF-8, or a rejection that says where it stops being UTF-8 (not "not JSON")."""
    try:
        return raw.decode("utf-8")  # strict: no replacement characters, no encoded surrogates
    except UnicodeDecodeError as exc:
        problem = utf8_problem(exc, json_document=json_document)
        return _reject(Reason.malformed, f"{what} is not valid UTF-8: {problem}")


def _json(raw: bytes, what: str) -> Any:
    """`raw` parsed as UTF-8 JSON, or a `Rejected` (which no JSON value can be)."""
    text = _text(raw, what, json_document=True)
    if isinstance(text, Rejected):
        return text
    # RFC 8259 lets a parser skip a byte-order mark; json.loads(bytes) did, json.loads(str) would not.
    text = text.removeprefix("\ufeff")
    try:
        decoded = json.loads(text)
    except _JSON_ERRORS as exc:
        return _reject(Reason.malformed, f"{what} is not JSON: {_json_error(exc, raw)}")
    where = lone_surrogate_path(decoded) if "\\u" in text else None
    if where is not None:
        return _reject(
            Reason.malformed,
            f"{what} is not valid Unicode: {where or 'the value'} has a \\u escape of a lone surrogate"
            " (\\ud800-\\udfff without its pair), which UTF-8 cannot carry. Send the character itself,"
            " or both halves of its pair",
        )
    return decoded


def is_binary(headers: Headers) -> bool:
    return any(key.lower() == "ce_specversion" for key, _ in headers)


def _binary_mapping(value: bytes | None, headers: Headers) -> dict[str, Any] | Rejected:
    attrs: dict[str, Any] = {}
    content_type: str | None = None
    for key, raw in headers:
        name = key.lower()
        if raw is None or not (name.startswith(_CE_PREFIX) or name == "content-type"):
            continue
        text = _text(raw, f'header "{printable(key, 40)}"')
        if isinstance(text, Rejected):
            return text
        if name == "content-type":
            content_type = text if content_type is None else content_type  # the first one counts
        else:
            attrs[name[len(_CE_PREFIX) :]] = text
    if content_type is not None:
        attrs["datacontenttype"] = content_type
    # No value, or an empty one, is an event without data; the typed event then says data is missing.
    if value:
        data = _json(value, "binary-mode data")
        if isinstance(data, Rejected):
            return data
        attrs["data"] = data
    return attrs


def decode_mapping(value: bytes | None, headers: Headers) -> dict[str, Any] | Rejected:
    """Turn a Kafka record into a CloudEvent attribute mapping, without validating it."""
    if is_binary(headers):
        return _binary_mapping(value, headers)
    if not value:
        return _reject(Reason.malformed, f"empty record value and no ce_ headers: {_SEND_RECORD}")
    decoded = _json(value, "structured-mode value")
    if isinstance(decoded, Rejected):
        return decoded
    if not isinstance(decoded, dict):
        return _reject(
            Reason.malformed,
            f"structured-mode value is {shown(decoded)}, not a JSON object: {_SEND_RECORD}",
        )
    return decoded


def _describe(exc: ValidationError) -> str:
    lines = describe_errors(exc)
    more = f" … and {len(lines) - _ERRORS_DESCRIBED} more" if len(lines) > _ERRORS_DESCRIBED else ""
    return "; ".join(lines[:_ERRORS_DESCRIBED]) + more


def _quoted(value: Any) -> str:
    # repr() is what operators already grep for ('0.3', None); cut, since the value is the producer's.
    if isinstance(value, str):
        return repr(value[:60]) + ("…" if len(value) > 60 else "")
    if value is None or isinstance(value, bool | float) or (isinstance(value, int) and abs(value) < 10**20):
        return repr(value)
    return shown(value)


def validate_mapping(attrs: dict[str, Any]) -> AimsEvent | Rejected:
    """Envelope first, then type, then payload, so the reason names the first thing wrong."""
    try:
        CloudEvent.model_validate(attrs)
    except ValidationError as exc:
        if "specversion" in attrs and any(err["loc"][:1] == ("specversion",) for err in exc.errors()):
            found = attrs.get("specversion")
            return _reject(
                Reason.unsupported_specversion,
                f"specversion {_quoted(found)} is not supported: this system reads CloudEvents 1.0,"
                ' send "1.0"',
            )
        return _reject(Reason.invalid_envelope, _describe(exc))
    event_type = attrs["type"]
    if event_type not in EVENT_CLASSES:
        known = ", ".join(sorted(EVENT_CLASSES))
        return _reject(
            Reason.unknown_type,
            f"type {_quoted(event_type)} is not an event type this system takes; send one of: {known}",
        )
    try:
        return parse_event(attrs)
    except ValidationError as exc:
        return _reject(Reason.invalid_payload, _describe(exc))


def decode(value: bytes | None, headers: Headers, max_bytes: int) -> AimsEvent | Rejected:
    size = len(value or b"") + sum(len(k) + len(v or b"") for k, v in headers)
    if size > max_bytes:
        return _reject(Reason.oversize, f"record is {size} bytes; the limit is {max_bytes}")
    attrs = decode_mapping(value, headers)
    if isinstance(attrs, Rejected):
        return attrs
    return validate_mapping(attrs)


def authenticate(event: AimsEvent, key: SecretStr | None) -> AimsEvent | Rejected:
    """`event`, unless it claims one of the system's own sources without a valid signature.

    Outside producers' events (any other source) pass as they are: what they say is checked by the
    payload models and by the flows, and their ids are theirs to keep unique.
    """
    if not claims_internal_source(event.source):
        return event
    problem = signature_problem(event, key)
    if problem is None:
        return event
    return _reject(
        Reason.invalid_signature,
        f"source {_quoted(event.source)} is the system's own, but {problem}; events under urn:aims: "
        "sources are published by the system only",
    )


def encode_structured(event: CloudEvent) -> tuple[bytes, list[tuple[str, bytes]]]:
    body = event.model_dump_json(exclude_none=True).encode()
    return body, [("content-type", STRUCTURED_CONTENT_TYPE.encode())]


def encode_binary(event: CloudEvent) -> tuple[bytes, list[tuple[str, bytes]]]:
    attrs = event.model_dump(mode="json", exclude_none=True)
    data = attrs.pop("data", None)
    content_type = attrs.pop("datacontenttype", "application/json")
    # Each value in its CloudEvents canonical string form (a boolean extension is "true", not "True"),
    # which is also what the signature's canonical form uses: a re-encoding keeps the signature valid.
    headers = [(f"{_CE_PREFIX}{name}", canonical_text(val).encode()) for name, val in attrs.items()]
    headers.append(("content-type", content_type.encode()))
    return json.dumps(data, separators=(",", ":")).encode(), headers
