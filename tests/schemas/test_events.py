"""The event contract: envelope, payloads, typed events and the exported JSON Schemas."""

from __future__ import annotations

import copy
import inspect
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

import schemas.locations as locations
import schemas.payloads as payloads
from schemas.envelope import CloudEvent
from schemas.events import (
    APPROVAL_DECIDED,
    APPROVAL_DECISION_SUBMITTED,
    APPROVAL_REQUESTED,
    DATA_CHANGED,
    DATA_QUALITY_VALIDATED,
    EVENT_CLASSES,
    INCIDENT_REPORTED,
    INCIDENT_UPDATED,
    MODEL_VERSION_REGISTERED,
    REVIEW_REQUESTED,
    RISK_ASSESSED,
    RISK_REASSESSMENT_REQUESTED,
    ApprovalDecidedEvent,
    ApprovalDecisionSubmittedEvent,
    ApprovalRequestedEvent,
    DataChangedEvent,
    IncidentReportedEvent,
    ModelVersionRegisteredEvent,
    parse_event,
)
from schemas.export import export_json_schemas
from schemas.payloads import FileLocation, Payload, SqlTableLocation
from tests.factories import SAMPLES

MODEL_DATA = SAMPLES[MODEL_VERSION_REGISTERED]
# The old form, a `location` instead of a source and a path: still valid in the contract.
DATA_DATA = {k: v for k, v in SAMPLES[DATA_CHANGED].items() if k not in ("source", "path")}
INCIDENT_DATA = SAMPLES[INCIDENT_REPORTED]
DECISION_SUBMITTED_DATA = SAMPLES[APPROVAL_DECISION_SUBMITTED]
SUBJECT_OF = {
    MODEL_VERSION_REGISTERED: "credit-scoring",
    DATA_CHANGED: "loans",
    INCIDENT_REPORTED: "credit-scoring",
    DATA_QUALITY_VALIDATED: "loans",
    RISK_REASSESSMENT_REQUESTED: "credit-scoring",
    RISK_ASSESSED: "credit-scoring",
    APPROVAL_REQUESTED: "ap-1",
    APPROVAL_DECISION_SUBMITTED: "ap-1",
    APPROVAL_DECIDED: "ap-1",
    INCIDENT_UPDATED: "urn:support#77",
    REVIEW_REQUESTED: "extraordinary:serious:urn:support#77",
}


def raw_event(event_type: str, **overrides: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "specversion": "1.0",
        "id": f"id-{event_type}",
        "source": "urn:aims:tests",
        "type": event_type,
        "data": copy.deepcopy(SAMPLES[event_type]),
    }
    raw.update(overrides)
    return raw


_PAYLOAD_MODULES = {payloads.__name__, locations.__name__}


def payload_models() -> list[type[Payload]]:
    """Every payload model of schemas.payloads and .locations, so a new one is covered unedited."""
    found = [
        obj
        for _, obj in inspect.getmembers(payloads, inspect.isclass)
        if issubclass(obj, Payload) and obj is not Payload and obj.__module__ in _PAYLOAD_MODULES
    ]
    assert len(found) >= 6, found  # the three payloads, DatasetRef and both locations
    return found


# -- valid events --------------------------------------------------------------------------------


def test_the_samples_cover_every_event_type() -> None:
    assert set(SAMPLES) == set(EVENT_CLASSES)


@pytest.mark.parametrize("event_type", sorted(EVENT_CLASSES))
def test_valid_event_parses_to_its_class_with_subject_from_payload(event_type: str) -> None:
    event = parse_event(raw_event(event_type))
    assert type(event) is EVENT_CLASSES[event_type]
    assert event.type == event_type
    assert event.subject == SUBJECT_OF[event_type]
    assert event.key == SUBJECT_OF[event_type]
    assert event.specversion == "1.0"
    assert event.datacontenttype == "application/json"
    assert isinstance(event.data, Payload)


@pytest.mark.parametrize("event_type", sorted(EVENT_CLASSES))
def test_explicit_subject_is_kept(event_type: str) -> None:
    event = parse_event(raw_event(event_type, subject="something-else"))
    assert event.subject == "something-else"
    assert event.key == "something-else"


@pytest.mark.parametrize("event_type", sorted(EVENT_CLASSES))
def test_typed_class_validates_directly_and_fixes_type(event_type: str) -> None:
    cls = EVENT_CLASSES[event_type]
    raw = raw_event(event_type)
    del raw["type"]
    event = cls.model_validate(raw)
    assert event.type == event_type
    other = next(t for t in EVENT_CLASSES if t != event_type)
    with pytest.raises(ValidationError) as info:
        cls.model_validate(raw_event(event_type, type=other))
    assert any(err["loc"][:1] == ("type",) for err in info.value.errors())


def test_parsed_values_are_typed() -> None:
    model = parse_event(raw_event(MODEL_VERSION_REGISTERED))
    assert isinstance(model, ModelVersionRegisteredEvent)
    assert model.data.risk_tier is payloads.RiskTier.high
    assert [d.dataset_id for d in model.data.training_datasets] == ["loans", "bureau"]
    assert model.data.training_datasets[1].version is None
    data = parse_event(raw_event(DATA_CHANGED))
    assert isinstance(data, DataChangedEvent)
    assert data.data.change_kind is payloads.ChangeKind.appended
    assert data.data.row_count == 1200
    incident = parse_event(raw_event(INCIDENT_REPORTED))
    assert isinstance(incident, IncidentReportedEvent)
    assert incident.data.detected_at - incident.data.occurred_at == timedelta(minutes=30)


def test_approval_values_are_typed_and_keyed_by_the_approval() -> None:
    requested = parse_event(raw_event(APPROVAL_REQUESTED))
    assert isinstance(requested, ApprovalRequestedEvent)
    assert requested.data.risk_level is payloads.RiskLevel.high
    # the payload's `subject` is what is decided on; the event's subject is the approval
    assert requested.data.subject == "risk-assessment:ra-1"
    assert requested.subject == requested.key == "ap-1"
    submitted = parse_event(raw_event(APPROVAL_DECISION_SUBMITTED))
    assert isinstance(submitted, ApprovalDecisionSubmittedEvent)
    assert submitted.data.decision is payloads.Decision.approve
    assert submitted.data.channel is payloads.DecisionChannel.prefect_ui
    decided = parse_event(raw_event(APPROVAL_DECIDED))
    assert isinstance(decided, ApprovalDecidedEvent)
    assert decided.data.outcome is payloads.ApprovalOutcome.approved
    assert decided.data.decisions[0].decided_at == submitted.data.decided_at
    assert decided.data.decided_at - decided.data.decisions[0].decided_at == timedelta(seconds=5)
    # a request and every decision on it share the Kafka key, so they stay in order
    assert requested.key == submitted.key == decided.key


@pytest.mark.parametrize(
    "data",
    [
        {**DECISION_SUBMITTED_DATA, "decision": "abstain"},
        {**DECISION_SUBMITTED_DATA, "channel": "email"},
        {**DECISION_SUBMITTED_DATA, "decided_at": "2025-03-02T10:00:00"},
        {**DECISION_SUBMITTED_DATA, "reason": "x" * 10_001},
        {k: v for k, v in DECISION_SUBMITTED_DATA.items() if k != "decision_id"},
    ],
    ids=["decision", "channel", "naive-time", "long-reason", "no-decision-id"],
)
def test_bad_decision_is_refused(data: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        parse_event(raw_event(APPROVAL_DECISION_SUBMITTED, data=data))


def test_decision_reason_may_be_left_out() -> None:
    data = {k: v for k, v in DECISION_SUBMITTED_DATA.items() if k != "reason"}
    event = parse_event(raw_event(APPROVAL_DECISION_SUBMITTED, data=data))
    assert isinstance(event, ApprovalDecisionSubmittedEvent)
    assert event.data.reason == ""


def test_events_are_frozen() -> None:
    event = parse_event(raw_event(DATA_CHANGED))
    with pytest.raises(ValidationError):
        event.id = "other"  # type: ignore[misc]


def test_version_strings_are_not_numbers() -> None:
    # "3" must stay the string "3"; an integer version is refused rather than silently coerced.
    with pytest.raises(ValidationError):
        parse_event(raw_event(DATA_CHANGED, data={**DATA_DATA, "version": 3}))


# -- descriptions ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "model",
    [*payload_models(), *EVENT_CLASSES.values(), CloudEvent],
    ids=lambda m: m.__name__,
)
def test_every_field_has_a_description(model: type[BaseModel]) -> None:
    missing = [name for name, field in model.model_fields.items() if not (field.description or "").strip()]
    assert not missing, f"{model.__name__}: fields without Field(description=...): {missing}"


def test_exported_schema_properties_carry_descriptions(tmp_path: Path) -> None:
    """What producers read is the JSON Schema: every property there is documented too."""
    undocumented = []
    for path in export_json_schemas(tmp_path):
        schema = json.loads(path.read_text())
        for def_name, definition in {"(root)": schema, **schema.get("$defs", {})}.items():
            for prop, spec in definition.get("properties", {}).items():
                if not spec.get("description"):
                    undocumented.append(f"{path.name}:{def_name}.{prop}")
    assert not undocumented


# -- refusals --------------------------------------------------------------------------------------


@pytest.mark.parametrize("event_type", sorted(EVENT_CLASSES))
def test_unknown_payload_field_is_refused(event_type: str) -> None:
    raw = raw_event(event_type)
    raw["data"]["colour"] = "blue"
    with pytest.raises(ValidationError) as info:
        parse_event(raw)
    errors = info.value.errors()
    assert [e["type"] for e in errors] == ["extra_forbidden"]
    assert errors[0]["loc"][-1] == "colour"


@pytest.mark.parametrize(
    ("event_type", "path"),
    [
        (MODEL_VERSION_REGISTERED, ("training_datasets", 0)),
        (APPROVAL_DECIDED, ("decisions", 0)),
    ],
)
def test_unknown_field_in_nested_payload_is_refused(event_type: str, path: tuple[Any, ...]) -> None:
    raw = raw_event(event_type)
    node = raw["data"]
    for part in path:
        node = node[part]
    node["typo"] = 1
    with pytest.raises(ValidationError) as info:
        parse_event(raw)
    assert [e["type"] for e in info.value.errors()] == ["extra_forbidden"]


@pytest.mark.parametrize("event_type", sorted(EVENT_CLASSES))
@pytest.mark.parametrize("key", ["id", "source", "data"])
def test_required_envelope_attribute_missing_is_refused(event_type: str, key: str) -> None:
    raw = raw_event(event_type)
    del raw[key]
    with pytest.raises(ValidationError):
        parse_event(raw)


@pytest.mark.parametrize(
    ("occurred", "detected", "ok"),
    [
        ("2025-03-01T09:00:00+00:00", "2025-03-01T08:59:59+00:00", False),
        ("2025-03-01T09:00:00+00:00", "2025-03-01T09:00:00+00:00", True),
        ("2025-03-01T09:00:00+00:00", "2025-03-02T09:00:00+00:00", True),
        # later wall clock, earlier instant: 10:00+02:00 is 08:00Z
        ("2025-03-01T09:00:00+00:00", "2025-03-01T10:00:00+02:00", False),
        # earlier wall clock, later instant: 08:00-05:00 is 13:00Z
        ("2025-03-01T09:00:00+00:00", "2025-03-01T08:00:00-05:00", True),
    ],
)
def test_detected_at_before_occurred_at_is_refused(occurred: str, detected: str, ok: bool) -> None:
    raw = raw_event(
        INCIDENT_REPORTED, data={**INCIDENT_DATA, "occurred_at": occurred, "detected_at": detected}
    )
    if ok:
        assert parse_event(raw).data.detected_at >= parse_event(raw).data.occurred_at
        return
    with pytest.raises(ValidationError) as info:
        parse_event(raw)
    assert "detected_at is before occurred_at" in str(info.value)


@pytest.mark.parametrize("field", ["occurred_at", "detected_at"])
def test_incident_times_must_carry_a_time_zone(field: str) -> None:
    raw = raw_event(INCIDENT_REPORTED, data={**INCIDENT_DATA, field: "2025-03-01T09:00:00"})
    with pytest.raises(ValidationError) as info:
        parse_event(raw)
    assert any(e["loc"][-1] == field for e in info.value.errors())


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://aims:secret@db.internal/aims",
        "postgresql+psycopg://aims:secret@db.internal:5432/aims",
        "mysql://root:@localhost/db",  # an empty password is still a password field
        "postgresql://aims:s%40cret@db/aims",
    ],
)
def test_sql_url_with_password_is_refused(url: str) -> None:
    with pytest.raises(ValidationError) as info:
        SqlTableLocation(url=url, table="loans")
    assert "password" in str(info.value)


def test_sql_url_with_slash_in_password_is_refused() -> None:
    with pytest.raises(ValidationError):
        SqlTableLocation(url="postgresql://aims:p/ss@db.internal/aims", table="loans")


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://aims@db.internal/aims",
        "postgresql://db.internal:5432/aims",
        "sqlite:///var/aims/register.db",
        "sqlite:////abs/path/with:colon@sign.db",  # ':' and '@' in the path, not the authority
    ],
)
def test_sql_url_without_password_is_accepted(url: str) -> None:
    assert SqlTableLocation(url=url, table="loans").url == url


def test_password_in_sql_url_is_refused_inside_an_event() -> None:
    raw = raw_event(
        DATA_CHANGED,
        data={**DATA_DATA, "location": {"kind": "sql", "url": "postgresql://u:pw@h/db", "table": "t"}},
    )
    with pytest.raises(ValidationError):
        parse_event(raw)


# -- location kind inference ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("location", "cls"),
    [
        ({"uri": "/data/loans.csv"}, FileLocation),
        ({"url": "sqlite:///r.db", "table": "loans"}, SqlTableLocation),
        ({"kind": "file", "uri": "s3://b/k.parquet"}, FileLocation),
        ({"kind": "sql", "url": "sqlite:///r.db", "table": "loans"}, SqlTableLocation),
    ],
)
def test_location_kind_is_inferred_or_honoured(location: dict[str, Any], cls: type[Payload]) -> None:
    event = parse_event(raw_event(DATA_CHANGED, data={**DATA_DATA, "location": location}))
    assert isinstance(event, DataChangedEvent)
    assert type(event.data.location) is cls
    assert event.data.location.kind == ("file" if cls is FileLocation else "sql")


@pytest.mark.parametrize(
    "location",
    [
        {"kind": "ftp", "uri": "ftp://x"},
        {"kind": "file", "url": "sqlite:///r.db", "table": "loans"},
        {"uri": "/x.csv", "table": "loans"},  # table implies sql, which has no uri
        {},
        "just-a-string",
    ],
)
def test_bad_location_is_refused(location: Any) -> None:
    with pytest.raises(ValidationError):
        parse_event(raw_event(DATA_CHANGED, data={**DATA_DATA, "location": location}))


# -- envelope --------------------------------------------------------------------------------------


@pytest.mark.parametrize("content_type", ["application/json", "application/vnd.aims+json", None])
def test_json_content_types_are_accepted(content_type: str | None) -> None:
    assert (
        CloudEvent(
            specversion="1.0", id="1", source="s", type="t", datacontenttype=content_type
        ).datacontenttype
        == content_type
    )


@pytest.mark.parametrize("content_type", ["text/plain", "application/xml", "application/jsonx"])
def test_non_json_content_types_are_refused(content_type: str) -> None:
    with pytest.raises(ValidationError):
        CloudEvent(specversion="1.0", id="1", source="s", type="t", datacontenttype=content_type)


@pytest.mark.parametrize("name", ["traceparent", "a", "x1", "abcdefghij0123456789"])
def test_valid_extension_names_are_kept(name: str) -> None:
    event = CloudEvent.model_validate(
        {"specversion": "1.0", "id": "1", "source": "s", "type": "t", name: "v"}
    )
    assert event.extensions == {name: "v"}


@pytest.mark.parametrize(
    "name", ["TraceParent", "trace_parent", "trace-parent", "abcdefghij01234567890", "é"]
)
def test_invalid_extension_names_are_refused(name: str) -> None:
    with pytest.raises(ValidationError) as info:
        CloudEvent.model_validate({"specversion": "1.0", "id": "1", "source": "s", "type": "t", name: "v"})
    assert "extension attribute" in str(info.value)


def test_dedup_key_is_source_and_id() -> None:
    assert (
        CloudEvent(specversion="1.0", id="42", source="mlflow://prod", type="t").dedup_key
        == "mlflow://prod#42"
    )


# -- JSON Schema export ---------------------------------------------------------------------------


def test_export_writes_one_schema_per_type_plus_the_union(tmp_path: Path) -> None:
    target = tmp_path / "nested" / "out"
    written = export_json_schemas(target)
    assert all(p.parent == target and p.is_file() for p in written)
    names = sorted(p.name for p in written)
    expected = sorted([f"{t}.schema.json" for t in EVENT_CLASSES] + ["aims-event.schema.json"])
    assert names == expected
    assert sorted(p.name for p in target.iterdir()) == expected

    ids = set()
    for path in written:
        schema = json.loads(path.read_text())
        assert isinstance(schema, dict)
        assert schema["$id"].startswith("urn:aims:schema:")
        ids.add(schema["$id"])
        if path.name != "aims-event.schema.json":
            event_type = path.name.removesuffix(".schema.json")
            assert schema["$id"] == f"urn:aims:schema:{event_type}"
            assert schema["properties"]["type"]["const"] == event_type
            assert {"id", "source", "data"} <= set(schema["required"])
    assert len(ids) == len(written)

    union = json.loads((target / "aims-event.schema.json").read_text())
    assert union["$id"] == "urn:aims:schema:any-event"
    assert set(union["discriminator"]["mapping"]) == set(EVENT_CLASSES)
    assert len(union["oneOf"]) == len(EVENT_CLASSES)


def test_export_is_repeatable(tmp_path: Path) -> None:
    first = {p.name: p.read_text() for p in export_json_schemas(tmp_path / "a")}
    second = {p.name: p.read_text() for p in export_json_schemas(tmp_path / "b")}
    assert first == second


def test_exported_schemas_accept_valid_events_and_refuse_invalid_ones(tmp_path: Path) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    written = {p.name: json.loads(p.read_text()) for p in export_json_schemas(tmp_path)}
    union = jsonschema.Draft202012Validator(written["aims-event.schema.json"])
    for event_type in EVENT_CLASSES:
        per_type = jsonschema.Draft202012Validator(written[f"{event_type}.schema.json"])
        as_json = parse_event(raw_event(event_type)).model_dump(mode="json", exclude_none=True)
        assert not list(per_type.iter_errors(as_json)), event_type
        assert not list(union.iter_errors(as_json)), event_type
        bad = copy.deepcopy(as_json)
        bad["data"]["unexpected"] = 1
        assert list(per_type.iter_errors(bad)), event_type
        assert list(union.iter_errors(bad)), event_type
    without_kind = raw_event(DATA_CHANGED, data={**DATA_DATA, "location": {"uri": "/x.csv"}})
    assert not list(union.iter_errors(without_kind))


@pytest.mark.parametrize(
    ("outcome", "approved", "decisions", "says"),
    [
        ("expired", True, [], "approved must be False"),
        ("rejected", True, [], "approved must be False"),
        ("approved", False, [], "approved must be True"),
        ("approved", True, [], "names the decisions"),
    ],
)
def test_an_outcome_and_its_approved_flag_never_disagree(
    outcome: str, approved: bool, decisions: list[Any], says: str
) -> None:
    """The ML platform deploys on `approved`: an expired or rejected request must never carry True."""
    data = {**copy.deepcopy(SAMPLES[APPROVAL_DECIDED]), "outcome": outcome, "approved": approved}
    data["decisions"] = decisions
    with pytest.raises(ValidationError, match=says):
        payloads.ApprovalDecided.model_validate(data)
