"""Hypothesis strategies for events: valid payloads of every type, raw events, JSON values, headers."""

from __future__ import annotations

import string
from datetime import datetime, timedelta, timezone
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from events.codec import Reason, Rejected
from events.dead_letter import dead_letter_headers
from schemas.controls import BIDI_CONTROLS, is_control
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

# Printable characters that are not whitespace (no surrogates, which JSON-over-UTF-8 cannot carry,
# and no bidi controls, which names refuse like every other control character).
_solid = st.characters(exclude_categories=("Cs", "Cc", "Zs", "Zl", "Zp"), exclude_characters=BIDI_CONTROLS)
_word = st.text(_solid, min_size=1, max_size=12)
# A `Name`: no leading/trailing whitespace, no newline, inner single spaces allowed.
names = st.lists(_word, min_size=1, max_size=3).map(" ".join).filter(lambda s: len(s) <= 256)
# A `Text`: any characters but controls (line breaks and tabs are kept).
_free = st.characters(blacklist_categories=("Cs",)).filter(lambda ch: ch in "\n\r\t" or not is_control(ch))
texts = st.text(_free, min_size=1, max_size=200)
# A `FileId`: a name the flows name a file after, so never only dots (schemas/file_names.py).
file_ids = names.filter(lambda s: bool(s.strip(".")))
# A `DatasetId`: it names the dataset's suite file as it is.
dataset_ids = st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9._-]{0,40}\Z")
# A free-text reason: may be empty.
reasons = st.text(_free, max_size=200)
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
            "dataset_id": dataset_ids,
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
            "review_id": file_ids,
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
