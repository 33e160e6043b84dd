"""Typed events: the CloudEvents envelope with `type` narrowed and `data` validated.

Adding an event type is one class here plus one row in `events/routing.py`.
"""

from __future__ import annotations

from functools import cache
from typing import Annotated, Any, ClassVar, Final, Literal

from pydantic import Field, TypeAdapter, ValidationError, model_validator
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


class AimsEvent(CloudEvent):
    """An event this system understands. Subclasses fix `type` and `data`."""

    data: Payload

    # Which payload field names the subject when the producer leaves `subject` out.
    subject_field: ClassVar[str]

    @model_validator(mode="after")
    def _default_subject(self) -> AimsEvent:
        if self.subject is None:
            # frozen model: set through __dict__ once, during validation
            self.__dict__["subject"] = str(getattr(self.data, self.subject_field))
        return self

    @property
    def key(self) -> str:
        """The Kafka record key: the subject, so one subject's events stay on one partition."""
        assert self.subject is not None  # set by _default_subject
        return self.subject


class ModelVersionRegisteredEvent(AimsEvent):
    subject_field: ClassVar[str] = "ai_system"
    type: Literal["org.aims.model.version.registered"] = Field(
        MODEL_VERSION_REGISTERED, description="A model version was registered."
    )
    data: ModelVersionRegistered = Field(description="The registered model version.")


class DataChangedEvent(AimsEvent):
    subject_field: ClassVar[str] = "dataset_id"
    type: Literal["org.aims.data.changed"] = Field(DATA_CHANGED, description="A dataset changed.")
    data: DataChanged = Field(description="The dataset and its new version.")


class IncidentReportedEvent(AimsEvent):
    subject_field: ClassVar[str] = "ai_system"
    type: Literal["org.aims.incident.reported"] = Field(
        INCIDENT_REPORTED, description="An incident was reported."
    )
    data: IncidentReported = Field(description="The incident as reported.")


class DataQualityValidatedEvent(AimsEvent):
    subject_field: ClassVar[str] = "dataset_id"
    type: Literal["org.aims.data.quality.validated"] = Field(
        DATA_QUALITY_VALIDATED, description="A dataset version was checked."
    )
    data: DataQualityValidated = Field(description="The verdict and what failed or drifted.")


class RiskReassessmentRequestedEvent(AimsEvent):
    subject_field: ClassVar[str] = "ai_system"
    type: Literal["org.aims.risk.reassessment.requested"] = Field(
        RISK_REASSESSMENT_REQUESTED, description="An AI system's risks must be reassessed."
    )
    data: RiskReassessmentRequested = Field(description="The system and why.")


class RiskAssessedEvent(AimsEvent):
    subject_field: ClassVar[str] = "ai_system"
    type: Literal["org.aims.risk.assessed"] = Field(
        RISK_ASSESSED, description="An AI system's risks were assessed."
    )
    data: RiskAssessed = Field(description="Levels per risk and whether deployment is blocked.")


class ApprovalRequestedEvent(AimsEvent):
    # Keyed by the approval, so its request and every decision on it stay in order on one partition.
    subject_field: ClassVar[str] = "approval_id"
    type: Literal["org.aims.approval.requested"] = Field(
        APPROVAL_REQUESTED, description="Accountable people must decide something."
    )
    data: ApprovalRequested = Field(description="What is to be decided, at which risk level.")


class ApprovalDecisionSubmittedEvent(AimsEvent):
    subject_field: ClassVar[str] = "approval_id"
    type: Literal["org.aims.approval.decision.submitted"] = Field(
        APPROVAL_DECISION_SUBMITTED, description="An approver's validated decision (or the deadline)."
    )
    data: ApprovalDecisionSubmitted = Field(description="Who decided what, where and why.")


class ApprovalDecidedEvent(AimsEvent):
    subject_field: ClassVar[str] = "approval_id"
    type: Literal["org.aims.approval.decided"] = Field(
        APPROVAL_DECIDED, description="An approval reached its outcome."
    )
    data: ApprovalDecided = Field(description="approved, rejected or expired, and the decisions.")


class IncidentUpdatedEvent(AimsEvent):
    # Keyed by the incident, so its updates stay in order on one partition.
    subject_field: ClassVar[str] = "incident_id"
    type: Literal["org.aims.incident.updated"] = Field(
        INCIDENT_UPDATED, description="A validated update of an incident (containment, report, action …)."
    )
    data: IncidentUpdated = Field(description="Who changed what, where, and the state it left.")


class ReviewRequestedEvent(AimsEvent):
    subject_field: ClassVar[str] = "review_id"
    type: Literal["org.aims.review.requested"] = Field(
        REVIEW_REQUESTED, description="An extraordinary management review was called."
    )
    data: ReviewRequested = Field(description="The review, why, and what called it.")


AnyEvent = Annotated[
    ModelVersionRegisteredEvent
    | DataChangedEvent
    | IncidentReportedEvent
    | DataQualityValidatedEvent
    | RiskReassessmentRequestedEvent
    | RiskAssessedEvent
    | ApprovalRequestedEvent
    | ApprovalDecisionSubmittedEvent
    | ApprovalDecidedEvent
    | IncidentUpdatedEvent
    | ReviewRequestedEvent,
    Field(discriminator="type"),
]

EVENT_CLASSES: dict[str, type[AimsEvent]] = {
    MODEL_VERSION_REGISTERED: ModelVersionRegisteredEvent,
    DATA_CHANGED: DataChangedEvent,
    INCIDENT_REPORTED: IncidentReportedEvent,
    DATA_QUALITY_VALIDATED: DataQualityValidatedEvent,
    RISK_REASSESSMENT_REQUESTED: RiskReassessmentRequestedEvent,
    RISK_ASSESSED: RiskAssessedEvent,
    APPROVAL_REQUESTED: ApprovalRequestedEvent,
    APPROVAL_DECISION_SUBMITTED: ApprovalDecisionSubmittedEvent,
    APPROVAL_DECIDED: ApprovalDecidedEvent,
    INCIDENT_UPDATED: IncidentUpdatedEvent,
    REVIEW_REQUESTED: ReviewRequestedEvent,
}


@cache
def event_adapter() -> TypeAdapter[Any]:
    return TypeAdapter(AnyEvent)


def parse_event(raw: dict[str, Any]) -> AimsEvent:
    """Validate a decoded CloudEvent mapping into its typed event.

    Raises `pydantic.ValidationError`; callers that need to tell an unknown type apart check
    `EVENT_CLASSES` first.
    """
    event: AimsEvent = event_adapter().validate_python(raw)
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
