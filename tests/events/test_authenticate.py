"""The router's check of the system's own events: urn:aims: sources need the installation's signature."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from pydantic import SecretStr

from events.codec import Reason, Rejected, authenticate, decode, encode_binary, encode_structured
from events.dead_letter import dead_letter_headers
from schemas.events import AimsEvent
from schemas.signing import signed
from tests.events.event_strategies import MAX, PROPERTY, valid_events
from tests.factories import make_event

KEY = SecretStr("router-key-for-these-tests-0123456789")
INTERNAL = "urn:aims:onboard-model"


def _rejected(result: AimsEvent | Rejected) -> Rejected:
    assert isinstance(result, Rejected), result
    assert result.reason is Reason.invalid_signature
    return result


def test_an_unsigned_event_claiming_the_systems_source_is_refused_with_the_reason() -> None:
    forged = make_event(source=INTERNAL, id="reassess:credit-scoring/credit-scoring-model/1")
    detail = _rejected(authenticate(forged, KEY)).detail
    assert "urn:aims:onboard-model" in detail and "no signature" in detail
    # The reason is a dead-letter header operators filter on (`aims dlq list --reason`).
    headers = dict(dead_letter_headers([], Reason.invalid_signature, detail, "aims.events", 0, 1))
    assert headers["dlq_reason"] == b"invalid-signature"


def test_an_event_signed_with_another_key_is_refused() -> None:
    forged = signed(make_event(source=INTERNAL), SecretStr("an-attackers-guess-at-the-key-000000"))
    assert "does not match" in _rejected(authenticate(forged, KEY)).detail


def test_without_a_key_the_router_refuses_every_internal_event_and_says_why() -> None:
    genuine = signed(make_event(source=INTERNAL), KEY)
    assert "AIMS_EVENT_SIGNING_KEY" in _rejected(authenticate(genuine, None)).detail


def test_a_case_variant_of_the_systems_source_needs_the_signature_too() -> None:
    _rejected(authenticate(make_event(source="URN:AIMS:onboard-model"), KEY))


def test_an_outside_producers_event_needs_no_signature() -> None:
    event = make_event(source="mlflow://prod")
    assert authenticate(event, KEY) == event
    assert authenticate(event, None) == event


@PROPERTY
@given(valid_events(), st.sampled_from([encode_structured, encode_binary]))
def test_a_signed_internal_event_passes_in_either_binding(event: AimsEvent, encode: object) -> None:
    genuine = signed(event.model_copy(update={"source": INTERNAL}), KEY)
    value, headers = encode(genuine)  # type: ignore[operator]
    decoded = decode(value, headers, 10 * MAX)
    assert isinstance(decoded, AimsEvent)
    assert authenticate(decoded, KEY) == decoded


@PROPERTY
@given(valid_events())
def test_an_altered_copy_of_a_signed_internal_event_is_refused(event: AimsEvent) -> None:
    genuine = signed(event.model_copy(update={"source": INTERNAL}), KEY)
    altered = genuine.model_copy(update={"id": genuine.id + "-2"})
    _rejected(authenticate(altered, KEY))
