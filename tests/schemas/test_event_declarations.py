"""Adding an event type is one payload model, one declaration and one routing row.

The type below exists only in this module. Declared, it is decoded from Kafka records in both
modes, validated, exported as a JSON Schema and routed, without any other file knowing of it; and
every declared type's example (the sample the other tests start from) is a valid event of its type.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import Field, ValidationError

from events.codec import Reason, Rejected, decode, encode_binary, encode_structured
from events.routing import ROUTES, Route, routes_for
from schemas.events import (
    DECLARATIONS,
    EVENT_CLASSES,
    AimsEvent,
    EventType,
    declare,
    describe_errors,
    event_adapter,
    example,
    is_event,
    parse_event,
)
from schemas.export import export_json_schemas
from schemas.payloads import Name, Payload

MAX = 256 * 1024
WIDGET_CALIBRATED = "org.aims.test.widget.calibrated"


class WidgetCalibrated(Payload):
    """A test instrument was calibrated."""

    widget: Name = Field(description="The instrument.")
    offset: float = Field(ge=0, description="How far off it was, in its own units.")


class Unrouted(Payload):
    thing: Name = Field(description="Something.")


DECLARATION = EventType(
    WIDGET_CALIBRATED,
    WidgetCalibrated,
    "widget",
    "A widget was calibrated.",
    "The widget and how far off it was.",
    {"widget": "w-7", "offset": 0.25},
    module=__name__,
)


@pytest.fixture
def widget_type(monkeypatch: pytest.MonkeyPatch) -> Iterator[type[AimsEvent[Any]]]:
    """The type declared and routed for one test, then gone again."""
    cls = declare(DECLARATION)
    # The routing row, as `events/routing.py` would carry it.
    monkeypatch.setitem(ROUTES, WIDGET_CALIBRATED, (Route("calibrate-widget/aims"),))
    try:
        yield cls
    finally:
        del EVENT_CLASSES[WIDGET_CALIBRATED]


def widget_raw(**data: Any) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": "cal-1",
        "source": "urn:lab",
        "type": WIDGET_CALIBRATED,
        "data": {**example(WIDGET_CALIBRATED), **data},
    }


def test_a_type_declared_here_is_decoded_in_both_modes(widget_type: type[AimsEvent[Any]]) -> None:
    event = AimsEvent[WidgetCalibrated](
        specversion="1.0", id="cal-1", source="urn:lab", data=WidgetCalibrated(widget="w-7", offset=0.25)
    )
    assert type(event) is widget_type and event.type == WIDGET_CALIBRATED
    assert event.key == "w-7"  # the subject comes from the declared field
    for encode in (encode_structured, encode_binary):
        value, headers = encode(event)
        decoded = decode(value, headers, MAX)
        assert decoded == event and type(decoded) is widget_type
        assert is_event(decoded, WidgetCalibrated) and decoded.data.offset == 0.25
    # As a producer sends it: plain JSON, no class of ours involved.
    from_json = decode(json.dumps(widget_raw()).encode(), [], MAX)
    assert from_json == event


def test_a_type_declared_here_is_validated(widget_type: type[AimsEvent[Any]]) -> None:
    with pytest.raises(ValidationError) as info:
        parse_event(widget_raw(offset=-1))
    assert describe_errors(info.value) == [
        "data.offset: Input should be greater than or equal to 0, got the number -1"
    ]
    refused = decode(json.dumps(widget_raw(colour="blue")).encode(), [], MAX)
    assert isinstance(refused, Rejected) and refused.reason is Reason.invalid_payload
    assert "data.colour" in refused.detail
    # The payload of another type is not this one's.
    other = decode(json.dumps(widget_raw() | {"data": example(DECLARATIONS[0].event_type)}).encode(), [], MAX)
    assert isinstance(other, Rejected) and other.reason is Reason.invalid_payload


def test_a_type_declared_here_is_exported(widget_type: type[AimsEvent[Any]], tmp_path: Path) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    names = {p.name for p in export_json_schemas(tmp_path)}
    assert f"{WIDGET_CALIBRATED}.schema.json" in names
    schema = json.loads((tmp_path / f"{WIDGET_CALIBRATED}.schema.json").read_text())
    assert schema["$id"] == f"urn:aims:schema:{WIDGET_CALIBRATED}"
    assert schema["title"] == "WidgetCalibratedEvent"
    assert schema["properties"]["type"]["const"] == WIDGET_CALIBRATED
    assert schema["properties"]["type"]["description"] == "A widget was calibrated."
    assert schema["$defs"]["WidgetCalibrated"]["properties"]["offset"]["minimum"] == 0
    union = json.loads((tmp_path / "aims-event.schema.json").read_text())
    assert union["discriminator"]["mapping"][WIDGET_CALIBRATED].endswith("/WidgetCalibratedEvent")
    for validator in (jsonschema.Draft202012Validator(schema), jsonschema.Draft202012Validator(union)):
        assert not list(validator.iter_errors(widget_raw()))
        assert list(validator.iter_errors(widget_raw(offset=-1)))


def test_a_type_declared_here_is_routed(widget_type: type[AimsEvent[Any]]) -> None:
    event = parse_event(widget_raw())
    (route,) = routes_for(event.type)
    assert route.flow_name == "calibrate-widget"
    params = route.parameters(event)
    # What the run receives is the whole event, and it validates back into the same event.
    assert params == {"event": event.model_dump(mode="json")}
    assert widget_type.model_validate(json.loads(json.dumps(params))["event"]) == event


def test_the_declaration_is_gone_after_the_test() -> None:
    assert WIDGET_CALIBRATED not in EVENT_CLASSES and WIDGET_CALIBRATED not in ROUTES
    result = decode(json.dumps(_raw_unknown()).encode(), [], MAX)
    assert isinstance(result, Rejected) and result.reason is Reason.unknown_type
    with pytest.raises(ValidationError):
        event_adapter().validate_python(_raw_unknown())


def _raw_unknown() -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": "cal-1",
        "source": "urn:lab",
        "type": WIDGET_CALIBRATED,
        "data": dict(DECLARATION.example),
    }


def test_a_type_or_a_payload_is_declared_once(widget_type: type[AimsEvent[Any]]) -> None:
    with pytest.raises(ValueError, match="declared twice"):
        declare(DECLARATION)
    with pytest.raises(ValueError, match="payload of two event types"):
        declare(EventType("org.aims.test.other", WidgetCalibrated, "widget", "d", "d", module=__name__))
    with pytest.raises(ValueError, match="no field 'nope'"):
        declare(EventType("org.aims.test.third", Unrouted, "nope", "d", "d", module=__name__))
    assert "org.aims.test.third" not in EVENT_CLASSES


# -- every declared type ---------------------------------------------------------------------------


@pytest.mark.parametrize("declaration", DECLARATIONS, ids=lambda d: d.event_type)
def test_every_example_is_a_valid_event_of_its_type(declaration: EventType) -> None:
    event = parse_event(
        {
            "specversion": "1.0",
            "id": "x",
            "source": "urn:aims:tests",
            "type": declaration.event_type,
            "data": example(declaration.event_type),
        }
    )
    assert type(event) is EVENT_CLASSES[declaration.event_type]
    assert AimsEvent[declaration.payload] is type(event)
    assert event.key == str(declaration.example[declaration.subject_field])
    assert type(event).__name__ == declaration.class_name
    # The example is JSON as a producer writes it: it survives a round trip unchanged.
    assert json.loads(json.dumps(declaration.example)) == declaration.example


def test_the_declarations_are_the_event_classes_in_their_order() -> None:
    assert [d.event_type for d in DECLARATIONS] == list(EVENT_CLASSES)
    assert len({d.payload for d in DECLARATIONS}) == len(DECLARATIONS)


def test_an_example_is_a_copy() -> None:
    first = DECLARATIONS[0].event_type
    changed = example(first)
    changed.clear()
    assert example(first) == dict(DECLARATIONS[0].example) != {}
