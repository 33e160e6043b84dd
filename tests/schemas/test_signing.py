"""The signature of the system's own events: what it covers, and that no binding changes it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from pydantic import SecretStr, ValidationError

from events.codec import decode, encode_binary, encode_structured
from schemas.events import EVENT_CLASSES, AimsEvent
from schemas.signing import (
    SIGNATURE_ATTRIBUTE,
    SigningKeyMissing,
    canonical_form,
    claims_internal_source,
    content_hash,
    seal,
    signature_problem,
    signed,
)
from tests.events.event_strategies import MAX, PROPERTY, extension_names, valid_raw_events
from tests.factories import make_event

WHEN = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)

KEY = SecretStr("k" * 32)
keys = st.text(min_size=32, max_size=64).map(SecretStr)
# Extension values of every CloudEvents type a binding carries differently: a binary-mode header is a
# string, a structured-mode member keeps its JSON type.
extension_values = st.one_of(
    st.text(st.characters(blacklist_categories=("Cs",))), st.booleans(), st.integers()
)


@st.composite
def events(draw: st.DrawFn) -> AimsEvent:
    raw = draw(valid_raw_events())
    raw.update(draw(st.dictionaries(extension_names, extension_values, max_size=2)))
    raw.pop(SIGNATURE_ATTRIBUTE, None)
    return EVENT_CLASSES[raw["type"]].model_validate(raw)


@PROPERTY
@given(events(), keys)
def test_a_valid_signature_always_verifies(event: AimsEvent, key: SecretStr) -> None:
    assert signature_problem(signed(event, key), key) is None
    # Signing again (a relay sending a row twice) replaces the signature with the same one.
    assert signed(signed(event, key), key) == signed(event, key)


@PROPERTY
@given(events(), keys, keys)
def test_another_key_never_verifies(event: AimsEvent, key: SecretStr, other: SecretStr) -> None:
    assume(key.get_secret_value() != other.get_secret_value())
    assert signature_problem(signed(event, key), other) is not None


@PROPERTY
@given(events(), keys)
def test_the_canonical_form_and_signature_hold_in_both_bindings(event: AimsEvent, key: SecretStr) -> None:
    sealed = signed(event, key)
    for encode in (encode_structured, encode_binary):
        value, headers = encode(sealed)
        decoded = decode(value, headers, 10 * MAX)
        assert isinstance(decoded, AimsEvent), decoded
        assert canonical_form(decoded) == canonical_form(event)
        assert content_hash(decoded) == content_hash(event)
        assert signature_problem(decoded, key) is None


def _mutations(raw: dict[str, Any]) -> list[tuple[str, Any]]:
    """(path, new value) pairs, each changing one attribute or one data field of `raw`."""
    found: list[tuple[str, Any]] = []
    for name, value in raw.items():
        if name in ("specversion", "type", SIGNATURE_ATTRIBUTE):
            continue
        if isinstance(value, str):
            found.append((name, value + "x"))
    for name, value in (raw.get("data") or {}).items():
        if isinstance(value, str):
            found.append((f"data.{name}", value + "x"))
        elif isinstance(value, bool):
            found.append((f"data.{name}", not value))
        elif isinstance(value, int):
            found.append((f"data.{name}", value + 1))
    found.append(("extra", "added"))  # an extension attribute that was not there
    return found


@PROPERTY
@given(events(), st.data())
def test_any_change_to_any_attribute_or_data_field_breaks_the_signature(
    event: AimsEvent, data: st.DataObject
) -> None:
    raw = signed(event, KEY).model_dump(mode="json", exclude_none=True)
    path, value = data.draw(st.sampled_from(_mutations(raw)))
    if path.startswith("data."):
        raw["data"] = {**raw["data"], path[5:]: value}
    else:
        raw[path] = value
    try:
        changed = EVENT_CLASSES[raw["type"]].model_validate(raw)
    except ValidationError:
        assume(False)  # no longer a valid event: the router refuses it before any signature
        return
    assume(canonical_form(changed) != canonical_form(event))  # not normalised back to the original
    assert signature_problem(changed, KEY) is not None


@PROPERTY
@given(events(), st.integers(min_value=1, max_value=10**6))
def test_a_changed_time_breaks_the_signature(event: AimsEvent, seconds: int) -> None:
    # An event without a time gets one, rather than being filtered out: hypothesis's health check
    # failed on the lowest versions, where most generated events had none.
    timed = event if event.time is not None else event.model_copy(update={"time": WHEN})
    assert timed.time is not None
    moved = signed(timed, KEY).model_copy(update={"time": timed.time + timedelta(seconds=seconds)})
    assert signature_problem(moved, KEY) is not None


def test_an_unsigned_or_tampered_event_says_why() -> None:
    event = make_event(source="urn:aims:onboard-model")
    assert "no signature" in (signature_problem(event, KEY) or "")
    assert "no AIMS_EVENT_SIGNING_KEY" in (signature_problem(signed(event, KEY), None) or "")
    tampered = signed(event, KEY).model_copy(update={SIGNATURE_ATTRIBUTE: "sha256=" + "0" * 64})
    assert "does not match" in (signature_problem(tampered, KEY) or "")
    not_text = signed(event, KEY).model_copy(update={SIGNATURE_ATTRIBUTE: 5})
    assert signature_problem(not_text, KEY) is not None


@pytest.mark.parametrize(
    ("source", "internal"),
    [
        ("urn:aims:onboard-model", True),
        ("URN:AIMS:onboard-model", True),
        (" urn:aims:cli", True),
        ("urn:aimsx:cli", False),
        ("mlflow://prod", False),
        ("urn:tests:producer", False),
        ("https://example.com/urn:aims:x", False),
    ],
)
def test_which_sources_are_the_systems_own(source: str, internal: bool) -> None:
    assert claims_internal_source(source) is internal


def test_seal_signs_with_a_key_and_refuses_the_systems_own_without_one() -> None:
    internal = make_event(source="urn:aims:cli")
    assert signature_problem(seal(internal, KEY), KEY) is None
    with pytest.raises(SigningKeyMissing, match="AIMS_EVENT_SIGNING_KEY"):
        seal(internal, None)
    outside = make_event(source="mlflow://prod")
    # An outside producer's event goes as it is, whoever sends it.
    assert seal(outside, None) == outside == seal(outside, KEY)


def test_the_key_is_never_in_what_is_sent() -> None:
    secret = "the-installation-key-nobody-may-see-0123"
    event = signed(make_event(source="urn:aims:cli"), SecretStr(secret))
    for encode in (encode_structured, encode_binary):
        value, headers = encode(event)
        assert secret.encode() not in value + b"".join(v for _, v in headers)
