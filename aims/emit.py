"""Build an event from command-line flags or a JSON file, with errors that name the field."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from aims.errors import CliError
from schemas.envelope import lone_surrogate_path, printable, utf8_problem
from schemas.events import EVENT_CLASSES, AimsEvent, describe_errors

# Errors listed at most, so a file of hundreds of bad fields stays readable.
_ERRORS_SHOWN = 20
_LOCATION_FLAGS = (
    "on the command line: -d location.uri=/data/loans.csv, or"
    " -d location.url=postgresql://host/db -d location.table=loans; better, the new form:"
    " -d source=ID -d path=PATH (or -d table=TABLE), a data source of the policy"
)


def _alias(event_type: str) -> str:
    return event_type.removeprefix("org.aims.").replace(".", "-")


# "model-version-registered", "data-changed", "incident-reported"
ALIASES = {_alias(t): t for t in EVENT_CLASSES}


def resolve_type(name: str) -> str:
    if name in EVENT_CLASSES:
        return name
    if name in ALIASES:
        return ALIASES[name]
    known = ", ".join(sorted(ALIASES))
    raise CliError(f"unknown event type {name!r}; use one of: {known} (or the full CloudEvents type)")


def _set_path(target: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    for part in parts[:-1]:
        node = target.setdefault(part, {})
        if not isinstance(node, dict):
            raise CliError(f"-d {dotted}: {part!r} is already set to a plain value")
        target = node
    target[parts[-1]] = value


def _argv_text(text: str, what: str) -> None:
    """Refuse bytes from the command line that are not UTF-8, saying where.

    Python hands such bytes over as lone surrogates (PEP 383); left alone they reach the model as
    "not valid Unicode text", with no hint of which byte to fix.
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        try:
            text.encode("utf-8", "surrogateescape").decode("utf-8")
        except UnicodeDecodeError as exc:
            raise CliError(f"{what} is not valid UTF-8: {utf8_problem(exc)}") from None
        except UnicodeEncodeError:  # a surrogate that no byte became: not from the command line
            raise CliError(f"{what} is not valid Unicode text (a lone surrogate)") from None


def _no_lone_surrogate(value: Any, what: str) -> None:
    where = lone_surrogate_path(value)
    if where is not None:
        at = f" at {printable(where, 80)}" if where else ""
        raise CliError(
            f"{what}: not valid Unicode{at}: a \\u escape of a lone surrogate (\\ud800-\\udfff without"
            " its pair), which UTF-8 cannot carry. Write the character itself, or both halves of its pair"
        )


def parse_assignments(pairs: list[str]) -> dict[str, Any]:
    """`field=value` pairs; dotted fields nest; a value starting with [ or { is read as JSON.

    Everything else stays a string: the models coerce "12" to a number where a number is wanted,
    but a version "3" must not become the integer 3.
    """
    data: dict[str, Any] = {}
    for pair in pairs:
        name, sep, raw = pair.partition("=")
        if not sep or not name.strip():
            raise CliError(f"-d {pair!r}: write it as field=value (e.g. -d version=3)")
        _argv_text(name, f"-d {name!r}: the field name")
        _argv_text(raw, f"-d {name}: the value")
        value: Any = raw
        if raw.lstrip()[:1] in ("[", "{"):
            try:
                value = json.loads(raw)
            except json.JSONDecodeError as exc:
                raise CliError(f"-d {name}: not valid JSON: {exc.msg} at column {exc.colno}") from None
            except (ValueError, RecursionError) as exc:
                raise CliError(f"-d {name}: not usable JSON ({type(exc).__name__})") from None
            _no_lone_surrogate(value, f"-d {name}")
        _set_path(data, name.strip(), value)
    return data


def read_json(path: Path) -> dict[str, Any]:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise CliError(f"{path}: no such file") from None
    except OSError as exc:
        raise CliError(f"{path}: cannot read it: {exc.strerror}") from None
    try:
        # UTF-8 whatever the locale: it is what goes on the wire. A BOM is allowed (RFC 8259).
        text = raw.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        raise CliError(f"{path}: not valid UTF-8: {utf8_problem(exc, json_document=True)}") from None
    try:
        loaded = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CliError(f"{path}: not valid JSON: line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    except (ValueError, RecursionError) as exc:
        raise CliError(f"{path}: not usable JSON ({type(exc).__name__})") from None
    _no_lone_surrogate(loaded, str(path))
    if not isinstance(loaded, dict):
        raise CliError(f"{path}: expected a JSON object, found a {type(loaded).__name__}")
    return loaded


def explain(exc: ValidationError) -> str:
    """One indented line per error: the field's path, what was wrong and what to send."""
    lines = describe_errors(exc)
    shown = [f"  {line}" for line in lines[:_ERRORS_SHOWN]]
    if len(lines) > _ERRORS_SHOWN:
        shown.append(f"  … and {len(lines) - _ERRORS_SHOWN} more")
    return "\n".join(shown)


def build_event(
    type_name: str | None,
    assignments: list[str],
    file: Path | None,
    subject: str | None = None,
    source: str = "urn:aims:cli",
    event_id: str | None = None,
) -> AimsEvent:
    """From a file: a whole CloudEvent, or only its data when a type is given. Flags override."""
    for flag, given in (("--subject", subject), ("--source", source), ("--id", event_id)):
        if given is not None:
            _argv_text(given, flag)
    raw: dict[str, Any] = {}
    if file is not None:
        loaded = read_json(file)
        raw = loaded if "specversion" in loaded or type_name is None else {"data": loaded}
    if type_name is not None:
        raw["type"] = resolve_type(type_name)
    if "type" not in raw:
        raise CliError("say which event: give a TYPE, or a file with a whole CloudEvent")
    event_type = resolve_type(str(raw["type"]))
    raw["type"] = event_type
    data = raw.get("data") or {}
    if not isinstance(data, dict):
        raise CliError("the event's data must be a JSON object")
    for key, value in parse_assignments(assignments).items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    raw["data"] = data
    raw.setdefault("specversion", "1.0")
    raw.setdefault("id", event_id or str(uuid.uuid4()))
    raw.setdefault("source", source)
    raw.setdefault("time", datetime.now(UTC).isoformat())
    if subject is not None:
        raw["subject"] = subject
    try:
        return EVENT_CLASSES[event_type].model_validate(raw)
    except ValidationError as exc:
        # The shapes in the message are JSON; from flags the same location is written with dots.
        hint = f"\n  ({_LOCATION_FLAGS})" if any(e["type"] == "location_shape" for e in exc.errors()) else ""
        raise CliError(
            f"the {event_type} event is not valid, nothing was published:\n{explain(exc)}{hint}"
        ) from None
