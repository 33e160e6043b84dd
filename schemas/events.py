"""Typed events: the CloudEvents envelope with `type` narrowed and `data` validated.

Adding an event type is one class here plus one row in `events/routing.py`.
"""

from __future__ import annotations

from functools import cache
from typing import Annotated, Any, ClassVar, Final, Literal

from pydantic import Field, TypeAdapter, model_validator

from schemas.envelope import CloudEvent
from schemas.payloads import (
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
