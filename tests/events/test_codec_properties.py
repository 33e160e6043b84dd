"""Property tests (hypothesis) on the input boundaries: the Kafka codec and the CLI's event builder."""

from __future__ import annotations

import json
import string
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from aims.emit import ALIASES, build_event, parse_assignments
from aims.errors import CliError
from events.codec import Reason, Rejected, decode, encode_binary, encode_structured
from events.dead_letter import dead_letter_headers
from schemas.envelope import CORE_ATTRIBUTES
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
    AimsEvent,
    example,
)
from schemas.payloads import (
    ApprovalOutcome,
    Art73Criterion,
    ChangeKind,
    Decision,
    DecisionChannel,
    IncidentCategory,
    IncidentUpdateKind,
    ReassessmentReason,
    RiskLevel,
    RiskTier,
    Severity,
    Verdict,
)

MAX = 256 * 1024
# database=None: nothing is written under the project (.hypothesis/) by these tests.
PROPERTY = settings(
    max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)


def check_outcome(result: object) -> None:
    """What the router relies on: an event, or a rejection it can put in dead-letter headers."""
    assert isinstance(result, AimsEvent | Rejected), type(result)
    if isinstance(result, Rejected):
        assert isinstance(result.reason, Reason)
        assert isinstance(result.detail, str) and result.detail.strip()
        # the detail goes into a Kafka header: it must encode
        headers = dead_letter_headers([], result.reason, result.detail, "aims.events", 0, 0)
        assert dict(headers)["dlq_reason"] == result.reason.value.encode()


# -- strategies ------------------------------------------------------------------------------------

# Printable characters that are not whitespace (no surrogates, which JSON-over-UTF-8 cannot carry).
_solid = st.characters(blacklist_categories=("Cs", "Cc", "Zs", "Zl", "Zp"))
_word = st.text(_solid, min_size=1, max_size=12)
# A `Name`: no leading/trailing whitespace, no newline, inner single spaces allowed.
names = st.lists(_word, min_size=1, max_size=3).map(" ".join).filter(lambda s: len(s) <= 256)
texts = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=200)
# A free-text reason: may be empty.
reasons = st.text(st.characters(blacklist_categories=("Cs",)), max_size=200)
offsets = st.integers(min_value=-(23 * 60 + 59), max_value=23 * 60 + 59).map(
    lambda m: timezone(timedelta(minutes=m))
)
aware = st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2200, 1, 1), timezones=offsets)
naive_or_aware = st.one_of(st.none(), aware, st.datetimes(min_value=datetime(1900, 1, 1)))
_ident = st.text(string.ascii_lowercase + string.digits, min_size=1, max_size=10)
sql_urls = st.one_of(
    st.builds(
        lambda s, u, h, d: f"{s}://{u}@{h}/{d}",
        st.sampled_from(["postgresql", "mysql+pymysql"]),
        _ident,
        _ident,
        _ident,
    ),
    st.builds(lambda h, d: f"postgresql://{h}:5432/{d}", _ident, _ident),
    st.builds(lambda p: f"sqlite:///{p}.db", _ident),
)


def model_data() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {
            "ai_system": names,
            "name": names,
            "version": names,
            "source_uri": names,
            "run_id": names,
            "owner": names,
            "intended_use": texts,
        },
        optional={
            "risk_tier": st.sampled_from(list(RiskTier)).map(str),
            "training_datasets": st.lists(
                st.fixed_dictionaries({"dataset_id": names}, optional={"version": names}), max_size=3
            ),
        },
    )


def data_data() -> st.SearchStrategy[dict[str, Any]]:
    locations = st.one_of(
        st.fixed_dictionaries({"uri": names}, optional={"kind": st.just("file")}),
        st.fixed_dictionaries({"url": sql_urls, "table": names}, optional={"kind": st.just("sql")}),
    )
    return st.fixed_dictionaries(
        {
            "dataset_id": names,
            "location": locations,
            "version": names,
            "change_kind": st.sampled_from(list(ChangeKind)).map(str),
        },
        optional={"row_count": st.integers(min_value=0, max_value=10**30)},
    )


@st.composite
def incident_data(draw: st.DrawFn) -> dict[str, Any]:
    occurred = draw(aware)
    delay = draw(st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=400)))
    detected_tz = draw(offsets)
    detected = (occurred + delay).astimezone(detected_tz)
    return {
        "ai_system": draw(names),
        "severity": str(draw(st.sampled_from(list(Severity)))),
        "category": str(draw(st.sampled_from(list(IncidentCategory)))),
        "description": draw(texts),
        "reporter": draw(names),
        "occurred_at": occurred.isoformat(),
        "detected_at": detected.isoformat(),
        "harms": draw(st.lists(st.sampled_from(list(Art73Criterion)).map(str), max_size=3, unique=True)),
    }


def quality_data() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {"dataset_id": names, "version": names, "verdict": st.sampled_from(list(Verdict)).map(str)},
        optional={
            "suite": names,
            "failed_critical": st.lists(names, max_size=3),
            "drifted_columns": st.lists(names, max_size=3),
            "result_id": names,
        },
    )


def reassessment_data() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {
            "ai_system": names,
            "reason": st.sampled_from(list(ReassessmentReason)).map(str),
            "evidence": names,
        },
        optional={"details": st.dictionaries(names, texts, max_size=3)},
    )


def assessed_data() -> st.SearchStrategy[dict[str, Any]]:
    levels = st.sampled_from(list(RiskLevel)).map(str)
    risk = st.fixed_dictionaries(
        {
            "category": names,
            "likelihood": st.integers(1, 10),
            "impact": st.integers(1, 10),
            "inherent": levels,
            "residual": levels,
        },
        optional={"previous": levels},
    )
    return st.fixed_dictionaries(
        {
            "ai_system": names,
            "assessment_id": names,
            "reason": st.sampled_from(list(ReassessmentReason)).map(str),
            "risks": st.lists(risk, max_size=3),
            "highest_inherent": levels,
            "highest_residual": levels,
            "blocked": st.booleans(),
        },
        optional={"approval_id": names},
    )


def approval_requested_data() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {
            "approval_id": names,
            "subject": names,
            "requested_decision": names,
            "risk_level": st.sampled_from(list(RiskLevel)).map(str),
            "requested_by": names,
        },
        optional={"ai_system": names, "summary": texts},
    )


def _decision_fields() -> dict[str, st.SearchStrategy[Any]]:
    return {
        "approver": names,
        "decision": st.sampled_from(list(Decision)).map(str),
        "channel": st.sampled_from(list(DecisionChannel)).map(str),
        "decided_at": aware.map(lambda t: t.isoformat()),
    }


def decision_submitted_data() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {"approval_id": names, "decision_id": names, **_decision_fields()},
        optional={"reason": reasons},
    )


def approval_decided_data() -> st.SearchStrategy[dict[str, Any]]:
    summaries = st.fixed_dictionaries(_decision_fields(), optional={"reason": reasons})
    return (
        st.fixed_dictionaries(
            {
                "approval_id": names,
                "subject": names,
                "requested_decision": names,
                "outcome": st.sampled_from(list(ApprovalOutcome)).map(str),
                "decisions": st.lists(summaries, max_size=3),
                "decided_at": aware.map(lambda t: t.isoformat()),
            },
            optional={"ai_system": names},
        )
        .filter(
            # An approval names the decisions that approved it.
            lambda d: d["outcome"] != ApprovalOutcome.approved or d["decisions"]
        )
        .map(lambda d: {**d, "approved": d["outcome"] == ApprovalOutcome.approved})
    )


def incident_updated_data() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {
            "incident_id": names,
            "update_id": names,
            "kind": st.sampled_from(list(IncidentUpdateKind)).map(str),
            "by": names,
            "channel": st.sampled_from(list(DecisionChannel)).map(str),
            "status": names,
            "at": aware.map(lambda t: t.isoformat()),
        },
        optional={"detail": reasons, "action_id": names},
    )


def review_requested_data() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {
            "review_id": names,
            "reason": texts,
            "trigger": names,
            "requested_by": names,
            "requested_at": aware.map(lambda t: t.isoformat()),
        }
    )


# A type without a strategy of its own is drawn as its declared example.
DATA_STRATEGIES = {t: st.just(example(t)) for t in EVENT_CLASSES} | {
    MODEL_VERSION_REGISTERED: model_data(),
    DATA_CHANGED: data_data(),
    INCIDENT_REPORTED: incident_data(),
    DATA_QUALITY_VALIDATED: quality_data(),
    RISK_REASSESSMENT_REQUESTED: reassessment_data(),
    RISK_ASSESSED: assessed_data(),
    APPROVAL_REQUESTED: approval_requested_data(),
    APPROVAL_DECISION_SUBMITTED: decision_submitted_data(),
    APPROVAL_DECIDED: approval_decided_data(),
    INCIDENT_UPDATED: incident_updated_data(),
    REVIEW_REQUESTED: review_requested_data(),
}


def test_the_strategies_cover_every_event_type() -> None:
    assert set(DATA_STRATEGIES) == set(EVENT_CLASSES)


extension_names = st.from_regex(r"\A[a-z0-9]{1,20}\Z").filter(lambda n: n not in CORE_ATTRIBUTES)
# Binary mode carries every attribute as a header string, so extensions round-trip as strings.
extensions = st.dictionaries(
    extension_names, st.text(st.characters(blacklist_categories=("Cs",))), max_size=3
)


@st.composite
def valid_raw_events(draw: st.DrawFn) -> dict[str, Any]:
    event_type = draw(st.sampled_from(sorted(EVENT_CLASSES)))
    any_text = st.characters(blacklist_categories=("Cs",))
    raw: dict[str, Any] = {
        "specversion": "1.0",
        "id": draw(st.text(any_text, min_size=1, max_size=256)),
        "source": draw(st.text(any_text, min_size=1, max_size=100)),
        "type": event_type,
        "data": draw(DATA_STRATEGIES[event_type]),
    }
    optional = {
        "subject": st.text(any_text, min_size=1, max_size=100),
        "time": naive_or_aware.map(lambda t: t and t.isoformat()),
        "dataschema": st.text(any_text, max_size=50),
        "datacontenttype": st.sampled_from(["application/json", "application/vnd.aims.event+json"]),
    }
    for key, strategy in optional.items():
        if draw(st.booleans()):
            value = draw(strategy)
            if value is not None:
                raw[key] = value
    raw.update(draw(extensions))
    return raw


def valid_events() -> st.SearchStrategy[AimsEvent]:
    return valid_raw_events().map(lambda raw: EVENT_CLASSES[raw["type"]].model_validate(raw))


json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False), st.text()
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
header_lists = st.lists(
    st.tuples(
        st.one_of(
            st.text(max_size=20),
            st.sampled_from(
                ["ce_specversion", "ce_id", "ce_type", "ce_source", "content-type", "ce_subject", "ce_time"]
            ),
        ),
        st.one_of(st.none(), st.binary(max_size=40), st.sampled_from([b"1.0", DATA_CHANGED.encode(), b"x"])),
    ),
    max_size=6,
)


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
    assert seen == set(Reason) - {Reason.rejected_by_orchestrator}


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


# -- (5) the CLI's emit builder only ever fails with CliError ---------------------------------------

assignments = st.one_of(
    st.text(max_size=40),
    st.builds(lambda k, v: f"{k}={v}", st.text(max_size=15), st.text(max_size=25)),
    st.builds(
        lambda k, v: f"{k}={json.dumps(v)}",
        st.sampled_from(["location", "training_datasets", "location.uri", "data", "row_count", "a.b.c"]),
        json_values,
    ),
    st.builds(
        lambda k, v: f"{k}={v}",
        st.sampled_from(
            [
                "ai_system",
                "dataset_id",
                "version",
                "location.uri",
                "location.kind",
                "location",
                "location.table",
                "change_kind",
                "severity",
                "occurred_at",
                "detected_at",
                "row_count",
                "training_datasets.0",
                "a..b",
                ".",
                "",
            ]
        ),
        st.sampled_from(
            [
                "x",
                "3",
                "-1",
                "[",
                "{",
                "[]",
                "{}",
                '{"uri": "/x"}',
                "2025-01-01T00:00:00Z",
                "created",
                "high",
                "",
                " ",
                "null",
            ]
        ),
    ),
)


@PROPERTY
@given(pairs=st.lists(assignments, max_size=6))
def test_parse_assignments_only_raises_cli_error(pairs: list[str]) -> None:
    try:
        result = parse_assignments(pairs)
    except CliError as exc:
        assert str(exc)
        return
    assert isinstance(result, dict)
    for pair in pairs:
        assert pair.partition("=")[0].strip().split(".")[0] in result


@PROPERTY
@given(
    type_name=st.one_of(
        st.none(), st.sampled_from(sorted(ALIASES) + sorted(EVENT_CLASSES)), st.text(max_size=20)
    ),
    pairs=st.lists(assignments, max_size=8),
    subject=st.one_of(st.none(), st.text(max_size=20)),
    event_id=st.one_of(st.none(), st.text(max_size=20)),
    source=st.text(max_size=20),
)
def test_build_event_only_raises_cli_error(
    type_name: str | None, pairs: list[str], subject: str | None, event_id: str | None, source: str
) -> None:
    try:
        event = build_event(type_name, pairs, None, subject=subject, source=source, event_id=event_id)
    except CliError as exc:
        assert str(exc)
        return
    assert isinstance(event, AimsEvent)
    # what the builder accepts, the consumer accepts too
    value, headers = encode_structured(event)
    assert decode(value, headers, 10 * MAX) == event


@PROPERTY
@given(raw=valid_raw_events())
def test_build_event_accepts_every_valid_payload_given_as_json_assignments(raw: dict[str, Any]) -> None:
    pairs = [f"{k}={json.dumps(v) if not isinstance(v, str) else v}" for k, v in raw["data"].items()]
    # plain strings that look like JSON would be parsed as JSON by the CLI: leave those to -f
    assume(all(not (isinstance(v, str) and v.lstrip()[:1] in ("[", "{")) for v in raw["data"].values()))
    try:
        event = build_event(raw["type"], pairs, None, subject=raw.get("subject"), event_id="fixed-id")
    except CliError as exc:  # pragma: no cover - a failure here is a bug
        pytest.fail(f"valid data refused by the CLI: {exc}")
    expected = EVENT_CLASSES[raw["type"]].model_validate({**raw, "id": "fixed-id"})
    assert event.data == expected.data
    assert event.subject == expected.subject


def test_build_event_wraps_validation_errors() -> None:
    # A direct check that pydantic's error is not what escapes (the property above depends on it)
    with pytest.raises(CliError) as info:
        build_event("data-changed", ["dataset_id=x"], None)
    assert "location" in str(info.value)
    assert not isinstance(info.value, ValidationError)


@pytest.mark.parametrize("raw", ["[" * 100_000, "[" + "1" * 5000 + "]"], ids=["deep", "bigint"])
def test_parse_assignments_wraps_every_json_error(raw: str) -> None:
    with pytest.raises(CliError):
        parse_assignments([f"training_datasets={raw}"])


@PROPERTY
@given(value=st.text(max_size=300), flag=st.sampled_from(["--by", "--note"]))
def test_reassess_flags_are_accepted_as_given_or_refused_naming_the_flag(value: str, flag: str) -> None:
    from aims.commands.common import validated
    from schemas.payloads import Name, Text

    try:
        accepted = validated(Name if flag == "--by" else Text, value, flag)
    except CliError as exc:
        assert f"invalid {flag}" in str(exc)
        return
    assert accepted == value
