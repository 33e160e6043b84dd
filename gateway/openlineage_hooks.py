"""OpenLineage events in: a request is authenticated, decompressed within its cap and parsed, or refused
with its reason.

Order matters (DESIGN.md, "every inbound webhook authenticated before anything is produced"): the
body cap applies before this module sees anything (gateway/limits.py); then the bearer key that the
OpenLineage HTTP transport sends with its `api_key` auth (compared in constant time); then the
`Content-Encoding` (the transport's `compression: gzip`), decompressed to at most the body cap, so a
small gzip bomb cannot expand without bound; only then is the body parsed. A request without the key
learns nothing but "invalid API key".

The transport posts every event to one endpoint: run events (which are read), and dataset and job
events without a run (static lineage: answered and ignored, as MLflow's prompts are).

Pure: no I/O, nothing logged, the key only compared.
"""

from __future__ import annotations

import hmac
import json
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from pydantic import ValidationError

from gateway.mlflow_hooks import Refusal
from schemas.openlineage import EventType, RunEvent

PATH: Final = "/api/v1/lineage"
_ERROR_CHARS: Final = 300
_BEARER: Final = "bearer "


@dataclass(frozen=True)
class Ignored:
    """An authenticated dataset or job event (no run): nothing in it is a change to check."""

    what: str


def read_event(
    key: str, headers: Mapping[str, str], body: bytes, max_bytes: int
) -> RunEvent | Ignored | Refusal:
    """The run event these headers and body carry, an ignored one, or the refusal with its reason."""
    if not key_ok(key, headers.get("authorization")):
        return Refusal(401, "invalid API key")
    encoding = (headers.get("content-encoding") or "identity").strip().lower()
    if encoding == "gzip":
        try:
            body = gunzip(body, max_bytes)
        except ValueError as exc:
            return Refusal(413 if "over" in str(exc) else 400, str(exc))
    elif encoding != "identity":
        shown = json.dumps(encoding[:40])
        return Refusal(415, f"Content-Encoding {shown} is not taken: send the JSON plain or gzip-compressed")
    try:
        raw = json.loads(body, parse_constant=_no_constant)
    except (ValueError, UnicodeDecodeError) as exc:
        return Refusal(400, f"not JSON: {str(exc)[:_ERROR_CHARS]}")
    if not isinstance(raw, dict):
        return Refusal(400, "not an OpenLineage event: the body is no JSON object")
    if "run" not in raw:
        if "dataset" in raw or "job" in raw:
            return Ignored("a dataset or job event (no run): static lineage is not read")
        return Refusal(400, "not an OpenLineage event: it has no run, job or dataset")
    given = raw.get("eventType")
    if given is not None and given not in EventType.__members__:
        shown = json.dumps(str(given)[:40])
        return Refusal(400, f"unknown eventType {shown}: one of {', '.join(EventType.__members__)}")
    try:
        return RunEvent.model_validate(raw)
    except ValidationError as exc:
        return Refusal(400, f"not an OpenLineage run event: {_errors(exc)}")


def key_ok(key: str, authorization: str | None) -> bool:
    """Whether `Authorization` is `Bearer <key>`; in constant time whatever was sent."""
    given = authorization or ""
    given = given[len(_BEARER) :] if given[: len(_BEARER)].lower() == _BEARER else ""
    # Bytes, so a non-ASCII header compares (as unequal) instead of raising.
    return hmac.compare_digest(given.strip().encode("utf-8", "surrogateescape"), key.encode()) and bool(key)


def gunzip(body: bytes, max_bytes: int) -> bytes:
    """The decompressed body; ValueError when it is not gzip, or would be over `max_bytes`."""
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)  # gzip framing only
    try:
        out = inflater.decompress(body, max_bytes + 1)
    except zlib.error as exc:
        raise ValueError(f"Content-Encoding gzip, but the body is not gzip: {exc}") from None
    if len(out) > max_bytes or inflater.unconsumed_tail:
        raise ValueError(f"the decompressed body is over {max_bytes} bytes")
    if not inflater.eof:
        raise ValueError("Content-Encoding gzip, but the body is cut short")
    return out


def _no_constant(name: str) -> object:
    # Python's json reads NaN and Infinity, which are no JSON (and which the audit log cannot hash).
    raise ValueError(f"{name} is not a JSON number")


def _errors(exc: ValidationError) -> str:
    """Where and what, without the input (it may be large, or steer a terminal)."""
    parts = [f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors()]
    return "; ".join(parts)[:_ERROR_CHARS]
