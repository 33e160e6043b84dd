"""Property tests (hypothesis) on the Kafka codec: decode never raises, round trips, mutations rejected."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from events.codec import Reason, Rejected, decode, encode_binary, encode_structured
from schemas.envelope import CORE_ATTRIBUTES
from schemas.events import DATA_CHANGED, EVENT_CLASSES, AimsEvent
from tests.events.event_strategies import (
    DATA_STRATEGIES,
    MAX,
    PROPERTY,
    check_outcome,
    header_lists,
    json_values,
    valid_events,
    valid_raw_events,
)


def test_the_strategies_cover_every_event_type() -> None:
    assert set(DATA_STRATEGIES) == set(EVENT_CLASSES)


# -- (1) + (2): decode never raises; every rejection is explained ---------------------------------


@PROPERTY
@given(
    value=st.one_of(st.none(), st.binary(max_size=2000)),
    headers=header_lists,
    max_bytes=st.integers(min_value=0, max_value=4096),
)
def test_decode_never_raises_on_arbitrary_bytes_and_headers(
    value: bytes | None, headers: list[tuple[str, bytes | None]], max_bytes: int
) -> None:
    check_outcome(decode(value, headers, max_bytes))


@PROPERTY
@given(obj=st.dictionaries(st.text(max_size=20), json_values, max_size=8), headers=header_lists)
def test_decode_never_raises_on_arbitrary_json_objects(obj: dict[str, Any], headers: list[Any]) -> None:
    check_outcome(decode(json.dumps(obj).encode(), headers, MAX))
    check_outcome(decode(json.dumps(obj).encode(), [], MAX))


@PROPERTY
@given(
    base=valid_raw_events(),
    replacements=st.dictionaries(
        st.sampled_from(sorted(CORE_ATTRIBUTES | {"traceparent", "Bad_Name"})), json_values, max_size=4
    ),
)
def test_decode_never_raises_on_near_valid_events(base: dict[str, Any], replacements: dict[str, Any]) -> None:
    raw = {**base, **replacements}
    check_outcome(decode(json.dumps(raw).encode(), [], MAX))


@PROPERTY
@given(
    attrs=st.dictionaries(st.text(max_size=15), st.text(max_size=30), max_size=8),
    value=st.one_of(st.none(), json_values.map(lambda v: json.dumps(v).encode()), st.binary(max_size=50)),
)
def test_decode_never_raises_on_arbitrary_binary_mode_records(
    attrs: dict[str, str], value: bytes | None
) -> None:
    headers = [("ce_specversion", b"1.0"), *((f"ce_{k}", v.encode()) for k, v in attrs.items())]
    check_outcome(decode(value, headers, MAX))


def test_rejections_seen_by_the_properties_cover_every_decode_reason() -> None:
    # A guard that the strategies above reach each reason decode can give (not the router's own).
    samples = [
        decode(b"x" * 10, [], 5),
        decode(b"nope", [], MAX),
        decode(b'{"specversion": "0.3"}', [], MAX),
        decode(b'{"specversion": "1.0"}', [], MAX),
        decode(b'{"specversion": "1.0", "id": "1", "source": "s", "type": "t"}', [], MAX),
        decode(
            json.dumps(
                {"specversion": "1.0", "id": "1", "source": "s", "type": DATA_CHANGED, "data": {}}
            ).encode(),
            [],
            MAX,
        ),
    ]
    for sample in samples:
        check_outcome(sample)
    seen = {s.reason for s in samples if isinstance(s, Rejected)}
    # The router's own reasons: Prefect's refusal, and the checks after decoding (tests/events/
    # test_authenticate.py, tests/connectors/register/test_receipts.py).
    router_reasons = {Reason.rejected_by_orchestrator, Reason.invalid_signature, Reason.conflicting_duplicate}
    assert seen == set(Reason) - router_reasons


# -- (3) round trips of generated valid events ------------------------------------------------------


@PROPERTY
@given(event=valid_events())
def test_generated_events_round_trip_structured(event: AimsEvent) -> None:
    value, headers = encode_structured(event)
    decoded = decode(value, headers, 10 * MAX)
    assert decoded == event, decoded
    assert decoded.subject == event.subject


@PROPERTY
@given(event=valid_events())
def test_generated_events_round_trip_binary(event: AimsEvent) -> None:
    value, headers = encode_binary(event)
    decoded = decode(value, headers, 10 * MAX)
    assert decoded == event, decoded
    assert decoded.subject == event.subject


@PROPERTY
@given(event=valid_events())
def test_subject_defaults_from_the_payload(event: AimsEvent) -> None:
    raw = event.model_dump(mode="json", exclude_none=True)
    raw.pop("subject")
    decoded = decode(json.dumps(raw).encode(), [], 10 * MAX)
    assert isinstance(decoded, AimsEvent)
    assert decoded.subject == str(getattr(decoded.data, type(decoded).subject_field))


# -- (4) mutations of a valid event are rejected ---------------------------------------------------

# Datetimes take numbers as Unix timestamps, so a number is not a wrong type for them.
_DATETIME_KEYS = {"time", "occurred_at", "detected_at", "decided_at", "at", "requested_at"}


def _leaf_paths(raw: dict[str, Any]) -> list[tuple[Any, ...]]:
    paths: list[tuple[Any, ...]] = []
    paths.extend((key,) for key in raw if key in CORE_ATTRIBUTES)
    for key, value in raw["data"].items():
        paths.append(("data", key))
        if isinstance(value, dict):
            paths.extend(("data", key, k) for k in value)
        if isinstance(value, list):
            for i, item in enumerate(value):
                if isinstance(item, dict):
                    paths.extend(("data", key, i, k) for k in item)
                else:
                    paths.append(("data", key, i))
    return paths


def _expected_reason(path: tuple[Any, ...]) -> Reason:
    if path[0] == "data":  # the envelope takes any data; the typed event checks it
        return Reason.invalid_payload
    if path == ("specversion",):
        return Reason.unsupported_specversion
    return Reason.invalid_envelope


def _required(raw: dict[str, Any]) -> list[tuple[Any, ...]]:
    cls = EVENT_CLASSES[raw["type"]]
    payload_cls = cls.model_fields["data"].annotation
    assert payload_cls is not None
    envelope = [(k,) for k in ("specversion", "id", "source", "type", "data")]
    payload = [("data", name) for name, f in payload_cls.model_fields.items() if f.is_required()]
    location = (
        [("data", "location", "uri"), ("data", "location", "table")] if "location" in raw["data"] else []
    )
    return envelope + payload + [p for p in location if p[-1] in raw["data"]["location"]]


def _drop(raw: dict[str, Any], path: tuple[Any, ...]) -> dict[str, Any]:
    mutated = json.loads(json.dumps(raw))
    node = mutated
    for part in path[:-1]:
        node = node[part]
    del node[path[-1]]
    return mutated


def _replace(raw: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    mutated = json.loads(json.dumps(raw))
    node = mutated
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    return mutated


@PROPERTY
@given(raw=valid_raw_events(), data=st.data())
def test_dropping_a_required_key_is_rejected(raw: dict[str, Any], data: st.DataObject) -> None:
    path = data.draw(st.sampled_from(_required(raw)), label="dropped")
    result = decode(json.dumps(_drop(raw, path)).encode(), [], 10 * MAX)
    check_outcome(result)
    assert isinstance(result, Rejected), path
    # A missing specversion is a broken envelope; a present but wrong one is an unsupported version.
    expected = Reason.invalid_envelope if path == ("specversion",) else _expected_reason(path)
    assert result.reason is expected
    # a location without `kind` is inferred from its keys, so the error may name the location only
    named = "location" if path[:2] == ("data", "location") else str(path[-1])
    assert named in result.detail


@PROPERTY
@given(raw=valid_raw_events(), data=st.data())
def test_changing_a_fields_type_is_rejected(raw: dict[str, Any], data: st.DataObject) -> None:
    path = data.draw(st.sampled_from(_leaf_paths(raw)), label="path")
    wrong = [[1, "x"], {"unexpected": [1]}]
    if isinstance(_get(raw, path), str) and path[-1] not in _DATETIME_KEYS:
        wrong += [True, 12.5]
    value = data.draw(st.sampled_from(wrong), label="value")
    result = decode(json.dumps(_replace(raw, path, value)).encode(), [], 10 * MAX)
    check_outcome(result)
    assert isinstance(result, Rejected), (path, value)
    assert result.reason is _expected_reason(path), (path, value, result)


def _get(raw: dict[str, Any], path: tuple[Any, ...]) -> Any:
    node: Any = raw
    for part in path:
        node = node[part]
    return node


@PROPERTY
@given(event=valid_events(), data=st.data())
def test_dropping_a_required_header_in_binary_mode_is_rejected(event: AimsEvent, data: st.DataObject) -> None:
    value, headers = encode_binary(event)
    dropped = data.draw(st.sampled_from(["ce_id", "ce_source", "ce_type", "ce_specversion"]))
    result = decode(value, [(k, v) for k, v in headers if k != dropped], 10 * MAX)
    check_outcome(result)
    assert isinstance(result, Rejected), dropped
