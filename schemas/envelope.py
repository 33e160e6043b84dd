"""The CloudEvents 1.0 envelope (https://github.com/cloudevents/spec, core attributes).

Every event on the wire is one of these. The typed events in `schemas.events` narrow `type` and
`data`; this module holds what the spec itself says, and how an error message may quote what a
producer sent (`shown`, `printable`, `utf8_problem`): that text is hostile input, and the messages
reach dead-letter headers, terminals and logs.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# Extension attribute names: lower-case ASCII letters and digits only (spec §"Attribute Naming").
# The spec recommends at most 20 characters; we enforce it so producers notice early.
_EXTENSION_NAME = re.compile(r"^[a-z0-9]{1,20}$")
CORE_ATTRIBUTES = frozenset(
    {"specversion", "id", "source", "type", "subject", "time", "datacontenttype", "dataschema", "data"}
)

# -- quoting a producer's input in an error message ------------------------------------------------

# How much of a value a message quotes: enough to recognise it, too little to flood a header or log.
QUOTED_CHARS: Final = 60
_ITEM_CHARS = 20  # strings inside a quoted array or object
_ITEMS = 3  # items of an array or object quoted
_SHORT_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
# A lone surrogate: what a JSON escape such as \ud800 decodes to, and UTF-8 cannot encode.
_SURROGATE = re.compile("[\ud800-\udfff]")
# `scheme://user:password@`: a password must not reach a dead-letter header or a terminal.
_URL_PASSWORD = re.compile(r"(://[^:/@]*:)[^@]*(@|$)")


def _escaped(text: str, limit: int, quoting: bool) -> tuple[str, bool]:
    """`text` with every non-printable character (controls, bidi overrides, lone surrogates,
    invisible spaces) written as a JSON escape, and when `quoting` also quotes and backslashes, so
    what is shown is what was sent. Stops before the output passes `limit`; says whether it cut."""
    # Nearly every text is printable and has nothing to escape: then it is itself, cut at `limit`.
    # The router quotes producers' input in every dead letter, and the loop below, one character at a
    # time, was most of its time per record in a flood of malformed ones.
    head = text[: limit + 1]
    if limit >= 0 and head.isprintable() and not (quoting and ('"' in head or "\\" in head)):
        return (head, False) if len(head) <= limit else (head[:limit], True)
    out: list[str] = []
    used = 0
    for ch in text:
        if (quoting and ch in _SHORT_ESCAPES) or ch in "\n\r\t":
            piece = _SHORT_ESCAPES[ch]
        elif ch.isprintable():
            piece = ch
        elif ord(ch) > 0xFFFF:  # JSON writes astral characters as a surrogate pair
            high, low = divmod(ord(ch) - 0x10000, 0x400)
            piece = f"\\u{0xD800 + high:04x}\\u{0xDC00 + low:04x}"
        else:
            piece = f"\\u{ord(ch):04x}"
        if used + len(piece) > limit:
            return "".join(out), True
        out.append(piece)
        used += len(piece)
    return "".join(out), False


def printable(text: str, limit: int) -> str:
    """`text` safe to print or put in a header: non-printable characters escaped, at most `limit`
    characters (the last one `…` when cut). The work is bounded by `limit`, not by the input."""
    out, cut = _escaped(text, limit, quoting=False)
    if not cut:
        return out
    return _escaped(text, limit - 1, quoting=False)[0] + "…"


def _quoted_string(text: str, limit: int) -> str:
    """`"text"`, escaped, at most `limit` characters inside the quotes, a URL's password masked."""
    head = text[: limit + 1]
    if "@" in text and "://" in head:
        head = _URL_PASSWORD.sub(r"\1***\2", head)
    out, cut = _escaped(head, limit, quoting=True)
    return f'"{out}{"…" if cut or len(text) > limit + 1 else ""}"'


def _number(value: int | float) -> str:
    if isinstance(value, int) and value.bit_length() > 100:  # str() of a huge int is slow, even refused
        return f"a {value.bit_length() * 30103 // 100000}-digit number"
    return repr(value)


def _json_text(value: Any, depth: int) -> str:
    """A JSON-like rendering of at most a few items, two levels deep: bounded work on any input."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return _number(value)
    if isinstance(value, str):
        return _quoted_string(value, QUOTED_CHARS if depth == 0 else _ITEM_CHARS)
    if isinstance(value, list | tuple | dict):
        if depth >= 2:
            return "[…]" if not isinstance(value, dict) else "{…}"
        more = ", …" if len(value) > _ITEMS else ""
        if isinstance(value, dict):
            items = list(value.items())[:_ITEMS]  # dicts keep order: the first keys are the producer's
            inner = ", ".join(
                f"{_quoted_string(str(k), _ITEM_CHARS)}: {_json_text(v, depth + 1)}" for k, v in items
            )
            return "{" + inner + more + "}"
        return "[" + ", ".join(_json_text(v, depth + 1) for v in value[:_ITEMS]) + more + "]"
    return f"a {type(value).__name__}"


def shown(value: Any) -> str:
    """What a producer sent, as an error message quotes it: its JSON type, then a short rendering.

    `the string "/data/loans.csv"`, `the number 42`, `an array of 2 items [1, 2]`, `an object {…}`,
    `null`, `true`. Strings are cut at `QUOTED_CHARS`, non-printable characters are escaped and a
    URL's password is masked, so the result is bounded and safe for any input.
    """
    if value is None or isinstance(value, bool):
        return _json_text(value, 0)
    if isinstance(value, int | float):
        number = _number(value)
        return number if number.startswith("a ") else f"the number {number}"
    if isinstance(value, str):
        length = f" ({len(value)} characters)" if len(value) > QUOTED_CHARS else ""
        return f"the string {_json_text(value, 0)}{length}"
    if isinstance(value, list | tuple):
        return f"an array of {len(value)} item{'s' if len(value) != 1 else ''} {_json_text(value, 0)}"
    if isinstance(value, dict):
        return f"an object {_json_text(value, 0)}"
    return _json_text(value, 0)


def utf8_problem(exc: UnicodeDecodeError, *, json_document: bool = False) -> str:
    """Where bytes stop being UTF-8, in words a producer can check against what they sent:
    `invalid start byte 0xff at byte 12`, counting bytes from the start of that value.

    For a whole JSON document, a UTF-16 or UTF-32 byte-order mark gets a hint: that is the usual cause.
    """
    raw = exc.object
    # For a bad continuation, show the lead byte and the byte that broke the sequence.
    end = max(exc.end, exc.start + 1) + (1 if exc.reason == "invalid continuation byte" else 0)
    seen = " ".join(f"0x{b:02x}" for b in raw[exc.start : min(end, exc.start + 4)])
    hint = ""
    if json_document and raw[:2] in (b"\xff\xfe", b"\xfe\xff"):
        hint = " (it starts with a UTF-16 or UTF-32 byte-order mark: encode the JSON as UTF-8)"
    return f"{exc.reason} {seen} at byte {exc.start}{hint}"


def lone_surrogate_path(value: Any) -> str | None:
    """The dotted path of the first string or key in decoded JSON that holds a lone surrogate.

    JSON lets a producer write one as an escape (\\ud800) in valid UTF-8; Python keeps it, and it
    breaks every later encoding of the event (the outbox, Prefect's parameters, a log line).
    `""` is the value itself.
    """
    stack: list[tuple[tuple[str, ...], Any]] = [((), value)]
    while stack:  # a loop, not recursion: json.loads may already have taken the nesting to its limit
        path, node = stack.pop()
        if isinstance(node, str):
            if _SURROGATE.search(node):
                return ".".join(path)
        elif isinstance(node, dict):
            for key, item in node.items():
                if isinstance(key, str) and _SURROGATE.search(key):
                    return ".".join((*path, key))
                stack.append(((*path, str(key)), item))
        elif isinstance(node, list):
            stack.extend(((*path, str(i)), item) for i, item in enumerate(node))
    return None


class CloudEvent(BaseModel):
    """A CloudEvents 1.0 event. Extension attributes are kept as extra fields."""

    model_config = ConfigDict(extra="allow", frozen=True, str_strip_whitespace=False)

    specversion: Literal["1.0"] = Field(
        description="CloudEvents specification version; required, and only 1.0 is accepted."
    )
    id: str = Field(
        min_length=1,
        max_length=256,
        description="Identifies the event. Producers make source + id unique; a redelivery keeps it.",
    )
    source: str = Field(
        min_length=1,
        max_length=1024,
        description="URI-reference of the context that produced the event, e.g. 'mlflow://prod'.",
    )
    type: str = Field(
        min_length=1,
        max_length=256,
        description="Event type, reverse-DNS style, e.g. 'org.aims.model.version.registered'.",
    )
    subject: str | None = Field(
        None,
        min_length=1,
        max_length=512,
        description="What the event is about (AI system, model or dataset). It is the Kafka key.",
    )
    time: datetime | None = Field(None, description="When the occurrence happened (RFC 3339).")
    datacontenttype: str | None = Field(
        "application/json", description="Media type of `data`; only JSON is accepted."
    )
    dataschema: str | None = Field(None, description="URI of the schema `data` adheres to.")
    data: Any = Field(None, description="The event payload.")

    @field_validator("datacontenttype")
    @classmethod
    def _json_only(cls, value: str | None) -> str | None:
        if value is not None and not (value == "application/json" or value.endswith("+json")):
            raise ValueError(
                f"got {shown(value)}, which is not JSON. Send application/json (or a type ending in +json)"
            )
        return value

    @model_validator(mode="after")
    def _extension_names(self) -> CloudEvent:
        for name in self.model_extra or {}:
            if not _EXTENSION_NAME.match(name):
                # repr() escapes what cannot be printed; the cut keeps a long name from flooding the detail
                quoted = repr(name[:QUOTED_CHARS]) + ("…" if len(name) > QUOTED_CHARS else "")
                raise ValueError(
                    f"extension attribute {quoted} must be 1-20 lower-case letters or digits"
                    " (CloudEvents attribute naming)"
                )
        return self

    @property
    def extensions(self) -> dict[str, Any]:
        return dict(self.model_extra or {})

    @property
    def dedup_key(self) -> str:
        """Identity of the event across redeliveries: the spec makes source + id unique."""
        return f"{self.source}#{self.id}"
