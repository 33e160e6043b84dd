"""Typed events: the CloudEvents envelope with `type` narrowed and `data` validated.

Every event type is declared once, in `DECLARATIONS` below: its type string, its payload model (in
`schemas.payloads`), which payload field names its subject, two descriptions and an example payload.
Its class, the union the router validates against (`event_union`), its exported JSON Schema
(`schemas.export`) and its sample in the tests all derive from that declaration. Adding an event
type is one payload model, one declaration and one row in `events/routing.py`.

`AimsEvent[P]` is the event class of the type whose payload model is `P` (e.g.
`AimsEvent[DataChanged]`): the static type and the class that validates are the same.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Final, Generic, Literal, TypeGuard, TypeVar, Union

from pydantic import Field, TypeAdapter, ValidationError, create_model, model_validator
from pydantic_core import ErrorDetails

from schemas.envelope import CloudEvent, printable, shown
from schemas.payloads import (
    LOCATION_TAGS,
    NAME_PATTERN,
    ApprovalDecided,
    ApprovalDecisionSubmitted,
    ApprovalRequested,
    DataChanged,
    DataQualityValidated,
    IncidentReported,
    IncidentUpdated,
    ModelVersionRegistered,
    Payload,
    ReviewRequested,
    RiskAssessed,
    RiskReassessmentRequested,
)

P = TypeVar("P", bound=Payload)


@dataclass(frozen=True)
class EventType:
    """One event type, declared once; `declare` makes its class and adds it to the union."""

    event_type: str  # the CloudEvents `type`, reverse-DNS style
    payload: type[Payload]  # the model of `data`
    subject_field: str  # the payload field that names the subject when the producer leaves `subject` out
    description: str  # what happened, in one line: documents `type` in the JSON Schema
    data_description: str  # what `data` holds: documents `data` in the JSON Schema
    # A valid `data` as a producer writes it (JSON values): the type's documentation and the sample
    # every per-type test starts from. A test validates each one.
    example: Mapping[str, Any] = field(default_factory=dict)
    # Where the class says it lives; pickling finds a class by module and name.
    module: str = __name__

    @property
    def class_name(self) -> str:
        return f"{self.payload.__name__}Event"


class AimsEvent(CloudEvent, Generic[P]):
    """An event this system understands. Each declared class fixes `type` and `data`."""

    data: P

    if TYPE_CHECKING:
        # A declared class defaults `type` to its own type string, so constructors leave it out.
        type: str = ""

    # Set on each declared class: its declaration, and which payload field names the subject.
    declaration: ClassVar[EventType]
    subject_field: ClassVar[str]

    def __class_getitem__(cls, params: Any) -> Any:
        # `AimsEvent[DataChanged]` is the declared class of that payload, not a generic copy without
        # the narrowed `type`: the name a signature uses is the class that validates.
        if cls is AimsEvent:
            declared = _class_of_payload(params)
            if declared is not None:
                return declared
        return super().__class_getitem__(params)

    @model_validator(mode="after")
    def _default_subject(self) -> AimsEvent[P]:
        if self.subject is None:
            # frozen model: set through __dict__ once, during validation
            self.__dict__["subject"] = str(getattr(self.data, self.subject_field))
        return self

    @property
    def key(self) -> str:
        """The Kafka record key: the subject, so one subject's events stay on one partition."""
        assert self.subject is not None  # set by _default_subject
        return self.subject


# Every declared type → its class, in declaration order (the union's and the export's order).
EVENT_CLASSES: dict[str, type[AimsEvent[Any]]] = {}


def _class_of_payload(payload: Any) -> type[AimsEvent[Any]] | None:
    for cls in EVENT_CLASSES.values():
        if cls.declaration.payload is payload:
            return cls
    return None


def event_class(declaration: EventType) -> type[AimsEvent[Any]]:
    """The class a declaration describes: `type` fixed to its string (and defaulting to it), `data`
    validated by its payload model."""
    name, payload, subject = declaration.event_type, declaration.payload, declaration.subject_field
    if subject not in payload.model_fields:
        raise ValueError(f"{name}: {payload.__name__} has no field {subject!r} to name the subject")
    fields: dict[str, Any] = {
        "type": (Literal[name], Field(name, description=declaration.description)),
        "data": (payload, Field(description=declaration.data_description)),
    }
    cls: type[AimsEvent[Any]] = create_model(
        declaration.class_name, __base__=AimsEvent, __module__=declaration.module, **fields
    )
    cls.declaration = declaration
    cls.subject_field = declaration.subject_field
    return cls


def declare(declaration: EventType) -> type[AimsEvent[Any]]:
    """Add an event type: from now on it is parsed, validated, exported and may be routed."""
    if declaration.event_type in EVENT_CLASSES:
        raise ValueError(f"event type {declaration.event_type!r} is declared twice")
    if _class_of_payload(declaration.payload) is not None:
        raise ValueError(f"{declaration.payload.__name__} is the payload of two event types")
    cls = event_class(declaration)
    EVENT_CLASSES[declaration.event_type] = cls
    return cls


def is_event(event: AimsEvent[Any], payload: type[P]) -> TypeGuard[AimsEvent[P]]:
    """`isinstance` for a declared class named by its payload (`AimsEvent[P]` cannot be checked)."""
    return isinstance(event.data, payload)


def example(event_type: str) -> dict[str, Any]:
    """A copy of the declared example payload of a type (a test may change it freely)."""
    return copy.deepcopy(dict(EVENT_CLASSES[event_type].declaration.example))


# -- the declarations ------------------------------------------------------------------------------

MODEL_VERSION_REGISTERED: Final = "org.aims.model.version.registered"
DATA_CHANGED: Final = "org.aims.data.changed"
INCIDENT_REPORTED: Final = "org.aims.incident.reported"
DATA_QUALITY_VALIDATED: Final = "org.aims.data.quality.validated"
RISK_REASSESSMENT_REQUESTED: Final = "org.aims.risk.reassessment.requested"
RISK_ASSESSED: Final = "org.aims.risk.assessed"
APPROVAL_REQUESTED: Final = "org.aims.approval.requested"
APPROVAL_DECISION_SUBMITTED: Final = "org.aims.approval.decision.submitted"
APPROVAL_DECIDED: Final = "org.aims.approval.decided"
INCIDENT_UPDATED: Final = "org.aims.incident.updated"
REVIEW_REQUESTED: Final = "org.aims.review.requested"

_DECISION: Final = {
    "approver": "carol@example.com",
    "decision": "approve",
    "channel": "prefect-ui",
    "reason": "Mitigation plan reviewed.",
    "decided_at": "2025-03-02T10:00:00+01:00",
}

DECLARATIONS: Final = (
    EventType(
        MODEL_VERSION_REGISTERED,
        ModelVersionRegistered,
        "ai_system",
        "A model version was registered.",
        "The registered model version.",
        {
            "ai_system": "credit-scoring",
            "name": "credit-scoring-model",
            "version": "3",
            "source_uri": "models:/credit-scoring/3",
            "run_id": "run-42",
            "owner": "alice",
            "intended_use": "Score loan applications",
            "risk_tier": "high",
            "training_datasets": [{"dataset_id": "loans", "version": "v1"}, {"dataset_id": "bureau"}],
        },
    ),
    EventType(
        DATA_CHANGED,
        DataChanged,
        "dataset_id",
        "A dataset changed.",
        "The dataset and its new version.",
        {
            "dataset_id": "loans",
            "source": "lake",
            "path": "loans/2026-11.csv",
            "version": "v2",
            "change_kind": "appended",
            "row_count": 1200,
        },
    ),
    EventType(
        INCIDENT_REPORTED,
        IncidentReported,
        "ai_system",
        "An incident was reported.",
        "The incident as reported.",
        {
            "ai_system": "credit-scoring",
            "severity": "high",
            "category": "bias",
            "description": "Approval rates differ by postcode.",
            "reporter": "bob",
            "occurred_at": "2025-03-01T09:00:00+00:00",
            "detected_at": "2025-03-01T10:30:00+01:00",
        },
    ),
    EventType(
        DATA_QUALITY_VALIDATED,
        DataQualityValidated,
        "dataset_id",
        "A dataset version was checked.",
        "The verdict and what failed or drifted.",
        {
            "dataset_id": "loans",
            "version": "v7",
            "verdict": "warning",
            "failed_warning": ["expect_column_mean_to_be_between(amount)"],
        },
    ),
    EventType(
        RISK_REASSESSMENT_REQUESTED,
        RiskReassessmentRequested,
        "ai_system",
        "An AI system's risks must be reassessed.",
        "The system and why.",
        {"ai_system": "credit-scoring", "reason": "drift", "evidence": "dq-7"},
    ),
    EventType(
        RISK_ASSESSED,
        RiskAssessed,
        "ai_system",
        "An AI system's risks were assessed.",
        "Levels per risk and whether deployment is blocked.",
        {
            "ai_system": "credit-scoring",
            "assessment_id": "ra-1",
            "reason": "incident",
            "risks": [
                {
                    "category": "fairness",
                    "likelihood": 4,
                    "impact": 4,
                    "inherent": "high",
                    "residual": "medium",
                }
            ],
            "highest_inherent": "high",
            "highest_residual": "medium",
            "blocked": True,
            "approval_id": "ap-1",
        },
    ),
    # Approvals are keyed by the approval, so its request and every decision on it stay in order on
    # one partition. The payload's own `subject` (what is decided on) is not the event's subject.
    EventType(
        APPROVAL_REQUESTED,
        ApprovalRequested,
        "approval_id",
        "Accountable people must decide something.",
        "What is to be decided, at which risk level.",
        {
            "approval_id": "ap-1",
            "ai_system": "credit-scoring",
            "subject": "risk-assessment:ra-1",
            "requested_decision": "risk-acceptance",
            "risk_level": "high",
            "requested_by": "reassess-risk",
            "summary": "Fairness risk stays high after treatment; accept the residual risk?",
        },
    ),
    EventType(
        APPROVAL_DECISION_SUBMITTED,
        ApprovalDecisionSubmitted,
        "approval_id",
        "An approver's validated decision (or the deadline).",
        "Who decided what, where and why.",
        {"approval_id": "ap-1", "decision_id": "ap-1:carol@example.com", **_DECISION},
    ),
    EventType(
        APPROVAL_DECIDED,
        ApprovalDecided,
        "approval_id",
        "An approval reached its outcome.",
        "approved, rejected or expired, and the decisions.",
        {
            "approval_id": "ap-1",
            "ai_system": "credit-scoring",
            "subject": "risk-assessment:ra-1",
            "requested_decision": "risk-acceptance",
            "outcome": "approved",
            "approved": True,
            "decisions": [_DECISION],
            "decided_at": "2025-03-02T09:00:05+00:00",
        },
    ),
    # Keyed by the incident, so its updates stay in order on one partition.
    EventType(
        INCIDENT_UPDATED,
        IncidentUpdated,
        "incident_id",
        "A validated update of an incident (containment, report, action …).",
        "Who changed what, where, and the state it left.",
        {
            "incident_id": "urn:support#77",
            "update_id": "urn:support#77:report",
            "kind": "report",
            "by": "carol@example.com",
            "channel": "jira",
            "detail": "NCA-2025-0042",
            "status": "reported-to-authority",
            "at": "2025-03-02T10:00:00+01:00",
        },
    ),
    EventType(
        REVIEW_REQUESTED,
        ReviewRequested,
        "review_id",
        "An extraordinary management review was called.",
        "The review, why, and what called it.",
        {
            "review_id": "extraordinary:serious:urn:support#77",
            "reason": "serious incident urn:support#77 on credit-scoring (death)",
            "trigger": "incident:urn:support#77",
            "requested_by": "flow:handle-incident",
            "requested_at": "2025-03-02T10:00:00+01:00",
        },
    ),
)

for _declaration in DECLARATIONS:
    declare(_declaration)

# The classes by name, for signatures and constructors; a new type needs no line here
# (`AimsEvent[ItsPayload]` names it).
ModelVersionRegisteredEvent = AimsEvent[ModelVersionRegistered]
DataChangedEvent = AimsEvent[DataChanged]
IncidentReportedEvent = AimsEvent[IncidentReported]
DataQualityValidatedEvent = AimsEvent[DataQualityValidated]
RiskReassessmentRequestedEvent = AimsEvent[RiskReassessmentRequested]
RiskAssessedEvent = AimsEvent[RiskAssessed]
ApprovalRequestedEvent = AimsEvent[ApprovalRequested]
ApprovalDecisionSubmittedEvent = AimsEvent[ApprovalDecisionSubmitted]
ApprovalDecidedEvent = AimsEvent[ApprovalDecided]
IncidentUpdatedEvent = AimsEvent[IncidentUpdated]
ReviewRequestedEvent = AimsEvent[ReviewRequested]


# -- the union -------------------------------------------------------------------------------------


def event_union() -> Any:
    """Every declared event class, told apart by `type`: what the router validates against."""
    return _union(tuple(EVENT_CLASSES.values()))


def _union(classes: tuple[type[AimsEvent[Any]], ...]) -> Any:
    return Annotated[Union[classes], Field(discriminator="type")]  # noqa: UP007 (a tuple of classes)


def event_adapter() -> TypeAdapter[Any]:
    return _adapter(tuple(EVENT_CLASSES.values()))


@cache
def _adapter(classes: tuple[type[AimsEvent[Any]], ...]) -> TypeAdapter[Any]:
    # Cached per set of classes: a type declared later (a test's) gets an adapter of its own.
    return TypeAdapter(_union(classes))


def parse_event(raw: dict[str, Any]) -> AimsEvent[Any]:
    """Validate a decoded CloudEvent mapping into its typed event.

    Raises `pydantic.ValidationError`; callers that need to tell an unknown type apart check
    `EVENT_CLASSES` first.
    """
    event: AimsEvent[Any] = event_adapter().validate_python(raw)
    return event


# -- validation errors, in a producer's words ------------------------------------------------------

# One line per error at most this long; the dead-letter detail and the CLI both quote lines whole.
ERROR_LINE_CHARS: Final = 500
_TAGS_SHOWN = 12
_PATTERNS = {NAME_PATTERN: "must be one line, without leading or trailing whitespace"}
# Type and range errors say what was received: pydantic's message alone does not.
_SAYS_RECEIVED = ("_type", "_parsing", "greater_than", "less_than", "multiple_of", "finite_number")


def _path(loc: tuple[int | str, ...]) -> str:
    """The dotted path a producer wrote: without the union tags pydantic adds to `loc`.

    Validating through the event union puts the event type first ("org.aims.data.changed.data…"),
    and a location's shape after it ("…location.sql.table"); neither is a key in the JSON.
    """
    parts = []
    for i, part in enumerate(loc):
        if i == 0 and part in EVENT_CLASSES:
            continue
        if i > 0 and loc[i - 1] == "location" and part in LOCATION_TAGS:
            continue
        parts.append(str(part))
    return ".".join(parts)


def _send(expected: str) -> str:
    # pydantic's list ("'a', 'b' or 'c'") is ours, not the producer's: only capped, and quoted
    # the JSON way, as the producer writes it.
    listed = printable(expected.replace("'", '"'), 300)
    return f"Send one of {listed}" if "," in expected or " or " in expected else f"Send {listed}"


def _discriminator(ctx: dict[str, Any]) -> str:
    # A field name ("'type'") extends the path; a function ("_location_kind()") is ours, not theirs.
    name = str(ctx.get("discriminator", "")).strip("'")
    return name if name.isidentifier() else ""


def _tags(expected_tags: str) -> str:
    tags = [t.strip().replace("'", '"') for t in expected_tags.split(",")]
    more = f" and {len(tags) - _TAGS_SHOWN} more" if len(tags) > _TAGS_SHOWN else ""
    return ", ".join(tags[:_TAGS_SHOWN]) + more


def _message(err: ErrorDetails) -> tuple[str, str]:
    """(extra path, message) for one pydantic error: what was wrong, what was received, what to send."""
    kind = err["type"]
    ctx: dict[str, Any] = dict(err.get("ctx") or {})
    received = err.get("input")
    msg = err["msg"]
    if kind == "missing":
        return "", "required, but missing"
    if kind == "extra_forbidden":
        return (
            "",
            "not a field here: remove it, or check its spelling (`aims schemas export` lists the fields)",
        )
    if kind in ("value_error", "assertion_error"):
        # Our own validators' words, without pydantic's "Value error, " in front.
        return "", str(ctx.get("error", msg))
    if kind in ("enum", "literal_error"):
        return "", f"got {shown(received)}. {_send(str(ctx.get('expected', '')))}"
    if kind == "union_tag_invalid":
        tags = _tags(str(ctx.get("expected_tags", "")))
        return _discriminator(ctx), f"got {shown(ctx.get('tag'))}. Send one of {tags}"
    if kind == "union_tag_not_found":
        field = _discriminator(ctx)
        return field, "required, but missing" if field else "cannot tell which kind of object this is"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return "", f"expected an object but got {shown(received)}"
    if kind == "list_type":
        return "", f"expected an array but got {shown(received)}"
    if kind == "string_type":
        return "", f"expected a string but got {shown(received)}"
    if kind == "string_unicode":
        return "", "is not valid Unicode text (a lone surrogate such as \\udcff, which UTF-8 cannot carry)"
    if kind == "string_too_short" and ctx.get("min_length") == 1:
        return "", "must not be empty"
    if kind == "string_too_long" and isinstance(received, str):
        return "", f"{msg}, got {len(received)}"
    if kind == "string_pattern_mismatch":
        return "", f"{_PATTERNS.get(str(ctx.get('pattern')), msg)}, got {shown(received)}"
    if kind == "timezone_aware":
        return "", f"needs a time zone (e.g. 2025-03-01T09:00:00Z or +01:00), got {shown(received)}"
    if kind.endswith(_SAYS_RECEIVED) or kind.startswith(_SAYS_RECEIVED):
        return "", f"{msg}, got {shown(received)}"
    return "", msg


def describe_errors(exc: ValidationError) -> list[str]:
    """Each error as one printable line `path: what was wrong … what to send`, path first.

    The router's dead letters and `aims emit` both say it this way. Every quoted value is cut
    short and escaped (`schemas.envelope.shown`), so a line is safe for a header or a terminal.
    """
    lines = []
    for err in exc.errors(include_url=False):
        extra, message = _message(err)
        path = ".".join(p for p in (_path(err["loc"]), extra) if p) or "(event)"
        lines.append(printable(f"{printable(path, 120)}: {message}", ERROR_LINE_CHARS))
    return lines
