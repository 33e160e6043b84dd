"""Build an event from command-line flags or a JSON file, with errors that name the field."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from aims.errors import CliError
from schemas.events import EVENT_CLASSES, AimsEvent


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
        value: Any = raw
        if raw.lstrip()[:1] in ("[", "{"):
            try:
                value = json.loads(raw)
            except json.JSONDecodeError as exc:
                raise CliError(f"-d {name}: not valid JSON: {exc.msg} at column {exc.colno}") from None
            except (ValueError, RecursionError) as exc:
                raise CliError(f"-d {name}: not usable JSON ({type(exc).__name__})") from None
        _set_path(data, name.strip(), value)
    return data


def read_json(path: Path) -> dict[str, Any]:
    try:
        loaded = json.loads(path.read_text())
    except FileNotFoundError:
        raise CliError(f"{path}: no such file") from None
    except json.JSONDecodeError as exc:
        raise CliError(f"{path}: not valid JSON: line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    except (ValueError, RecursionError) as exc:
        raise CliError(f"{path}: not usable JSON ({type(exc).__name__})") from None
    except OSError as exc:
        raise CliError(f"{path}: cannot read it: {exc.strerror}") from None
    if not isinstance(loaded, dict):
        raise CliError(f"{path}: expected a JSON object, found a {type(loaded).__name__}")
    return loaded


def explain(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors(include_url=False):
        loc = ".".join(str(p) for p in err["loc"])
        lines.append(f"  {loc or '(event)'}: {err['msg']}")
    return "\n".join(lines)


def build_event(
    type_name: str | None,
    assignments: list[str],
    file: Path | None,
    subject: str | None = None,
    source: str = "urn:aims:cli",
    event_id: str | None = None,
) -> AimsEvent:
    """From a file: a whole CloudEvent, or only its data when a type is given. Flags override."""
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
        raise CliError(
            f"the {event_type} event is not valid, nothing was published:\n{explain(exc)}"
        ) from None
