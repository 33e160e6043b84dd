"""The system's own events are signed, so that nobody who can merely produce to the topic can pass
for the system (issue 19, point 5).

Sources under `urn:aims:` are the system's: its flows, its CLI and its demo publish under them, and
their ids are predictable (`reassess:<system>/<model>/<version>`, `<approval>:decided`). Consumers
dedupe on source#id, so a forged copy that arrived first used to be the one kept. Each such event
now carries an HMAC-SHA256, keyed with AIMS_EVENT_SIGNING_KEY, over its canonical form.

Where the signature travels: the CloudEvents extension attribute `aimssig`, not a bare Kafka header.
An extension is part of the event itself, so it is carried the same way in both bindings
(structured: a member of the JSON object; binary: the `ce_aimssig` header, which events.codec
already maps both ways), it survives what copies the event rather than the record (the outbox's JSON
row, `aims dlq replay`, a producer re-encoding structured as binary), and a consumer outside this
system sees it with any CloudEvents SDK. A Kafka header of our own would be lost by the first of
those and would need its own plumbing in each.

What is signed: the canonical form of the event as this system reads it (after validation), every
attribute but the signature. It is the same whichever binding carried the event: attributes as
validated JSON values, extension values in their CloudEvents canonical string form (a binary-mode
header can only carry a string), the default content type spelled out, keys sorted, no whitespace.
So any change to any attribute or to the data breaks the signature, while a re-encoding does not.

Pure: no Kafka, no Prefect; the key is passed in and never logged, stored or shown.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any, Final, TypeVar

from pydantic import SecretStr

from schemas.envelope import CloudEvent

SIGNATURE_ATTRIBUTE: Final = "aimssig"
INTERNAL_SOURCE_PREFIX: Final = "urn:aims:"
# The scheme in front of the digest, so that a later algorithm or key id can be told apart.
_SCHEME: Final = "sha256="
DEFAULT_CONTENT_TYPE: Final = "application/json"

E = TypeVar("E", bound=CloudEvent)


class SigningKeyMissing(ValueError):
    """An event under an `urn:aims:` source was to be published, and no key was there to sign it."""


def claims_internal_source(source: str) -> bool:
    """Whether `source` is one of the system's own: `urn:aims:…`.

    URN schemes and namespace ids are case-insensitive (RFC 8141), so `URN:AIMS:x` claims it too;
    whitespace around it is what a careless producer (or a forger) adds, not another source.
    """
    return source.strip().lower().startswith(INTERNAL_SOURCE_PREFIX)


def canonical_text(value: Any) -> str:
    """An extension value in its CloudEvents canonical string form (what a binary header carries)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def canonical_form(event: CloudEvent) -> bytes:
    """The bytes an event's signature and content hash cover: the same for both bindings."""
    attrs = event.model_dump(mode="json", exclude_none=True)
    for name in event.extensions:
        if name in attrs:
            attrs[name] = canonical_text(attrs[name])
    attrs.pop(SIGNATURE_ATTRIBUTE, None)
    # A binary-mode record always states its content type; a structured one may leave the default.
    attrs.setdefault("datacontenttype", DEFAULT_CONTENT_TYPE)
    # ASCII escapes: total on any text the envelope accepts, and the same bytes on every platform.
    return json.dumps(attrs, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def content_hash(event: CloudEvent) -> str:
    """SHA-256 of the canonical form: tells a redelivery (same hash) from other content under an id."""
    return hashlib.sha256(canonical_form(event)).hexdigest()


def signature(event: CloudEvent, key: SecretStr) -> str:
    digest = hmac.new(key.get_secret_value().encode(), canonical_form(event), hashlib.sha256)
    return _SCHEME + digest.hexdigest()


def signed(event: E, key: SecretStr) -> E:
    """A copy of `event` carrying its signature (a signature it had is replaced)."""
    return event.model_copy(update={SIGNATURE_ATTRIBUTE: signature(event, key)})


def seal(event: E, key: SecretStr | None) -> E:
    """What a publisher of this system sends: its own events (urn:aims: sources) signed.

    Without a key such an event is refused (it would be dead-lettered as forged). An outside
    source's event (an operator emitting for the ML platform) goes as it is: nothing checks a
    signature there, and the event stays exactly what that producer would have sent.
    """
    if not claims_internal_source(event.source):
        return event
    if key is None:
        raise SigningKeyMissing(
            f"events from {event.source} are the system's own and must be signed: "
            "set AIMS_EVENT_SIGNING_KEY (`aims up` creates one in the state folder)"
        )
    return signed(event, key)


def signature_problem(event: CloudEvent, key: SecretStr | None) -> str | None:
    """Why `event` does not authenticate as the system's own; None when its signature is valid."""
    found = event.extensions.get(SIGNATURE_ATTRIBUTE)
    if found is None:
        return "it carries no signature (the aimssig extension attribute)"
    if key is None:
        return "this router has no AIMS_EVENT_SIGNING_KEY to check its signature with"
    if not isinstance(found, str) or not hmac.compare_digest(
        found.encode("utf-8", "surrogatepass"), signature(event, key).encode()
    ):
        return "its signature does not match its content (altered, or signed without the system's key)"
    return None
