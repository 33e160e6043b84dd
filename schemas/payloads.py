"""Payload models (`data`) of the events the ML platform, pipelines and people publish."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    model_serializer,
    model_validator,
)

# The field types and location shapes are part of the payload contract: importable from here too.
from schemas.fields import NAME_PATTERN as NAME_PATTERN
from schemas.fields import DatasetId as DatasetId
from schemas.fields import FileId as FileId
from schemas.fields import Name as Name
from schemas.fields import Payload as Payload
from schemas.fields import RelativePath as RelativePath
from schemas.fields import Text as Text
from schemas.locations import FILE_EXAMPLE as FILE_EXAMPLE
from schemas.locations import LOCATION_TAGS as LOCATION_TAGS
from schemas.locations import SQL_EXAMPLE as SQL_EXAMPLE
from schemas.locations import DatasetLocation as DatasetLocation
from schemas.locations import FileLocation as FileLocation
from schemas.locations import SqlTableLocation as SqlTableLocation


class RiskTier(StrEnum):
    """Risk tier of an AI system, on the EU AI Act's scale."""

    minimal = "minimal"
    limited = "limited"
    high = "high"
    prohibited = "prohibited"


class DatasetRef(Payload):
    dataset_id: Name = Field(description="Identifier of the dataset in the AIMS register.")
    version: Name | None = Field(None, description="Dataset version used; latest if omitted.")


class ModelVersionRegistered(Payload):
    """A model version was registered in the model registry (e.g. MLflow)."""

    ai_system: Name = Field(description="The AI system this model belongs to (inventory name).")
    name: Name = Field(description="Registered model name.")
    version: Name = Field(description="Model version, as the registry numbers it.")
    source_uri: Name = Field(description="Where the model artifacts live, e.g. 's3://…' or 'runs:/…'.")
    run_id: Name = Field(description="Training run that produced the version.")
    owner: Name = Field(description="Accountable person or team who submitted the version.")
    intended_use: Text = Field(description="What the model is meant to be used for (A.9.4).")
    risk_tier: RiskTier | None = Field(None, description="Risk tier if already known.")
    training_datasets: list[DatasetRef] = Field(
        default_factory=list, max_length=1000, description="Datasets the version was trained on."
    )


class ChangeKind(StrEnum):
    created = "created"
    appended = "appended"
    updated = "updated"
    deleted = "deleted"
    schema_changed = "schema_changed"


class DataChanged(Payload):
    """A dataset that feeds AI systems changed: a data source of the policy, and a path or table in it
    (never where to connect: DESIGN.md, trust boundaries). The check resolves it, refusing the rest."""

    dataset_id: DatasetId = Field(
        description="Identifier of the dataset in the AIMS register; its suite file is named after it "
        "(letters, digits, '.', '_', '-')."
    )
    source: Name | None = Field(None, description="A data source of the policy's data_sources.")
    path: RelativePath | None = Field(None, description="A file source's file, relative to its root.")
    table: Name | None = Field(None, description="A SQL source's table, optionally schema-qualified.")
    location: DatasetLocation = Field(
        None,
        description="Deprecated: where the version can be read. Accepted only inside a declared source; "
        "send `source` with `path` or `table` instead.",
    )
    version: Name = Field(description="Version of the dataset after the change.")
    change_kind: ChangeKind = Field(description="What kind of change happened.")
    row_count: int | None = Field(None, ge=0, description="Rows in the new version, if known.")

    @model_validator(mode="after")
    def _one_way_to_name_the_data(self) -> DataChanged:
        if (self.source is None) == (self.location is None):  # `location` is the old form of both
            raise ValueError("name the data: `source` (a data source of the policy) with `path` or `table`")
        if self.source is not None and (self.path is None) == (self.table is None):
            raise ValueError("give one of `path` (in a file source) or `table` (in a SQL source)")
        if self.location is not None and (self.path is not None or self.table is not None):
            raise ValueError("`path` and `table` go with `source`, not with the old `location`")
        return self

    @model_serializer(mode="wrap")
    def _no_null_location(self, handler: SerializerFunctionWrapHandler) -> Any:
        # The contract has no null location (an explicit null is refused): a dump that omits it reads
        # back as the same event, and passes the JSON Schema Prefect checks a run's parameters with.
        dumped = handler(self)
        if self.location is None and isinstance(dumped, dict):
            dumped.pop("location", None)
        return dumped


class RiskLevel(StrEnum):
    """Level of a risk on the policy's matrix. Order with `rank`: `<` would compare the strings."""

    low = "low"
    medium = "medium"
    high = "high"
    critical = "critical"

    @property
    def rank(self) -> int:
        return list(RiskLevel).index(self)


class Severity(StrEnum):
    """Severity of an incident. Order with `rank`: `<` would compare the strings."""

    low = "low"
    medium = "medium"
    high = "high"
    critical = "critical"

    @property
    def rank(self) -> int:
        return list(Severity).index(self)


class IncidentCategory(StrEnum):
    health_and_safety = "health_and_safety"
    death = "death"
    critical_infrastructure = "critical_infrastructure"
    fundamental_rights = "fundamental_rights"
    property_or_environment = "property_or_environment"
    security = "security"
    privacy = "privacy"
    bias = "bias"
    performance = "performance"
    misuse = "misuse"
    other = "other"


class Art73Criterion(StrEnum):
    """What makes an incident serious under the EU AI Act (Art. 3(49), and 73(3) for the widespread case).

    The criterion also picks the reporting clock: death 10 days, critical infrastructure and a
    widespread infringement 2 days, the others 15 (Art. 73(2)-(4); the policy holds the days).
    """

    death = "death"
    serious_harm_to_health = "serious_harm_to_health"
    critical_infrastructure_disruption = "critical_infrastructure_disruption"
    fundamental_rights_infringement = "fundamental_rights_infringement"
    serious_harm_to_property_or_environment = "serious_harm_to_property_or_environment"
    widespread_infringement = "widespread_infringement"


class IncidentReported(Payload):
    """Someone (or a monitor) reported an incident involving an AI system."""

    ai_system: Name = Field(description="The AI system involved (inventory name).")
    severity: Severity = Field(description="Severity as reported; triage may change it.")
    category: IncidentCategory = Field(description="What kind of harm or failure it is.")
    description: Text = Field(description="What happened, in the reporter's words.")
    reporter: Name = Field(description="Who reported it.")
    occurred_at: AwareDatetime = Field(description="When it happened (with a time zone).")
    detected_at: AwareDatetime = Field(description="When it was detected; regulatory clocks run from here.")
    harms: list[Art73Criterion] = Field(
        default_factory=list,
        max_length=len(Art73Criterion),
        description="Art. 73 harms the reporter knows of (e.g. death); triage adds those the category"
        " and severity imply.",
    )

    @model_validator(mode="after")
    def _detected_after_occurred(self) -> IncidentReported:
        if self.detected_at < self.occurred_at:
            raise ValueError("detected_at is before occurred_at")
        return self


class Verdict(StrEnum):
    passed = "passed"
    failed = "failed"  # a critical expectation failed, or drift crossed its critical threshold
    warning = "warning"  # only warning-severity failures
    baseline = "baseline"  # no reviewed suite yet: a baseline was generated, nothing was judged
    superseded = "superseded"  # a newer version arrived within the coalescing window


class DataQualityValidated(Payload):
    """The outcome of a data-quality check, for downstream consumers."""

    dataset_id: Name = Field(description="The dataset checked.")
    version: Name = Field(description="The version checked.")
    verdict: Verdict = Field(description="What the check concluded.")
    suite: Name | None = Field(None, description="Expectation suite file, if one was applied.")
    suite_version: Name | None = Field(None, description="Its version.")
    failed_critical: list[Name] = Field(
        default_factory=list, max_length=1000, description="Critical expectations that failed."
    )
    failed_warning: list[Name] = Field(
        default_factory=list, max_length=1000, description="Warning-severity expectations that failed."
    )
    drifted_columns: list[Name] = Field(
        default_factory=list, max_length=1000, description="Columns whose drift crossed a threshold."
    )
    content_hash: Name | None = Field(None, description="SHA-256 of the checked content, for files.")
    result_id: Name | None = Field(None, description="The data-quality result in the AIMS register.")


class ReassessmentReason(StrEnum):
    new_model_version = "new_model_version"
    data_quality_failure = "data_quality_failure"
    drift = "drift"
    incident = "incident"
    scheduled = "scheduled"
    manual = "manual"


class RiskReassessmentRequested(Payload):
    """Something happened that may change an AI system's risks (ISO 42001 8.2: on significant change)."""

    ai_system: Name = Field(description="The AI system whose risks must be reassessed.")
    reason: ReassessmentReason = Field(description="Why.")
    evidence: Name = Field(description="The register record that prompted it, e.g. a data-quality result.")
    details: dict[str, Text] = Field(default_factory=dict, description="What a reviewer needs to see why.")


class AssessedRisk(Payload):
    category: Name = Field(description="Risk category (Annex C source), e.g. data_quality or fairness.")
    likelihood: int = Field(ge=1, le=10, description="Likelihood score on the policy's scale.")
    impact: int = Field(ge=1, le=10, description="Impact score on the policy's scale.")
    inherent: RiskLevel = Field(description="Level before treatment.")
    residual: RiskLevel = Field(description="Level after the planned treatment.")
    previous: RiskLevel | None = Field(None, description="Inherent level before this assessment, if any.")


class RiskAssessed(Payload):
    """An AI system's risks were (re)assessed; the ML platform holds deployment while `blocked`."""

    ai_system: Name = Field(description="The AI system assessed.")
    assessment_id: Name = Field(description="The assessment in the AIMS register.")
    reason: ReassessmentReason = Field(description="What triggered it.")
    risks: list[AssessedRisk] = Field(max_length=100, description="Every risk as the assessment left it.")
    highest_inherent: RiskLevel = Field(description="Highest inherent level.")
    highest_residual: RiskLevel = Field(description="Highest residual level.")
    blocked: bool = Field(description="True while an approval of this system's risks is pending.")
    approval_id: Name | None = Field(None, description="The approval this assessment requested, if any.")


# -- approvals (5.3, 6.1.3, 9.1) -------------------------------------------------------------------


class Decision(StrEnum):
    """What an approver answers; `expire` is the deadline's, never a person's."""

    approve = "approve"
    reject = "reject"
    expire = "expire"


class DecisionChannel(StrEnum):
    """Where a decision came from. Every channel reaches the same validating path."""

    slack = "slack"
    jira = "jira"
    cli = "cli"
    prefect_ui = "prefect-ui"
    deadline = "deadline"


class ApprovalOutcome(StrEnum):
    approved = "approved"
    rejected = "rejected"
    expired = "expired"


class ApprovalRequested(Payload):
    """Accountable people must decide something; the request-approval flow asks them and waits."""

    approval_id: Name = Field(description="The approval in the AIMS register; also the subject.")
    ai_system: Name | None = Field(None, description="The AI system it concerns, if any.")
    subject: Name = Field(description="What is decided on, e.g. 'risk-assessment:<id>'.")
    requested_decision: Name = Field(description="e.g. risk-acceptance, risk-treatment, go-live.")
    risk_level: RiskLevel = Field(description="Picks the approver groups, quorum and SLA from the policy.")
    requested_by: Name = Field(description="Who or which flow asks.")
    summary: Text | None = Field(None, description="One paragraph for the approvers.")


class ApprovalDecisionSubmitted(Payload):
    """One accepted decision, already validated and recorded; wakes the waiting request-approval run."""

    approval_id: Name = Field(description="The approval decided on.")
    decision_id: Name = Field(description="The decision in the AIMS register.")
    decision: Decision = Field(description="approve, reject, or expire (the deadline's).")
    approver: Name = Field(description="Who decided, as the policy names them (email or user id).")
    channel: DecisionChannel = Field(description="Where the decision was made.")
    reason: str = Field("", max_length=10_000, description="Why, in the approver's words.")
    decided_at: AwareDatetime = Field(description="When the approver decided.")
    authenticated: bool = Field(True, description="False: no channel proved who decided (policy allowed).")


class DecisionSummary(Payload):
    approver: Name = Field(description="Who decided.")
    decision: Decision = Field(description="What they answered.")
    channel: DecisionChannel = Field(description="Where.")
    reason: str = Field("", max_length=10_000, description="Why, in their words.")
    decided_at: AwareDatetime = Field(description="When.")
    authenticated: bool = Field(True, description="False: no channel proved who decided (policy allowed).")


class ApprovalDecided(Payload):
    """The final outcome of an approval, for the ML platform: deploy only when `approved`."""

    approval_id: Name = Field(description="The approval in the AIMS register.")
    ai_system: Name | None = Field(None, description="The AI system it concerns, if any.")
    subject: Name = Field(description="What was decided on.")
    requested_decision: Name = Field(description="What was asked.")
    outcome: ApprovalOutcome = Field(description="approved, rejected, or expired (not approved).")
    approved: bool = Field(description="True only for approved: an expired request is not an approval.")
    decisions: list[DecisionSummary] = Field(max_length=100, description="The accepted decisions.")
    decided_at: AwareDatetime = Field(description="When the outcome was reached.")

    @model_validator(mode="after")
    def _approved_means_approved(self) -> ApprovalDecided:
        # The ML platform deploys on `approved`: it must never disagree with the outcome.
        if self.approved != (self.outcome is ApprovalOutcome.approved):
            raise ValueError(f"approved must be {not self.approved} when the outcome is {self.outcome.value}")
        if self.outcome is ApprovalOutcome.approved and not self.decisions:
            raise ValueError("an approved outcome names the decisions that approved it")
        return self


class DecisionInput(BaseModel):
    """What a waiting request-approval run takes to resume: the Prefect UI renders it as a form.

    The form cannot prove who fills it in: a decision typed here is recorded as refused, unless the
    policy (`decisions.prefect_ui: low-risk`) lets it decide low-risk approvals, marked unauthenticated.
    Decide in Slack, Jira or with `aims approvals`. The router fills `decision_id` for a decision
    already validated and recorded elsewhere.
    """

    model_config = ConfigDict(extra="forbid")

    approver: Name = Field(description="Your email; the form cannot prove it (see above).")
    decision: Decision = Field(description="approve or reject (expire is the deadline's only).")
    reason: str = Field("", max_length=10_000, description="Why; a rejection needs a reason.")
    channel: DecisionChannel = Field(DecisionChannel.prefect_ui, description="Leave as prefect-ui.")
    decision_id: Name | None = Field(None, description="Leave empty: set for decisions already recorded.")


# -- incident response (A.8.4, 10.2) -----------------------------------------------------------


class IncidentUpdateKind(StrEnum):
    """What a person may tell the AIMS about an incident, in the order the work usually goes."""

    contain = "contain"  # containment is done
    report = "report"  # the Art. 73 report was filed with the authority; detail = its reference
    root_cause = "root-cause"  # detail = the root cause (opens the nonconformity, 10.2)
    plan_action = "plan-action"  # a corrective action with owner and due date
    action_done = "action-done"  # action_id = the action
    verify_action = "verify-action"  # action_id, detail = the effectiveness check
    close = "close"


class IncidentUpdated(Payload):
    """One accepted update of an incident, already validated and recorded; Slack and Jira follow it."""

    incident_id: Name = Field(description="The incident in the AIMS register; also the subject.")
    update_id: Name = Field(description="The update in the AIMS register.")
    kind: IncidentUpdateKind = Field(description="What changed.")
    by: Name = Field(description="Who made the update, as the policy names them.")
    channel: DecisionChannel = Field(description="Where it was made.")
    detail: str = Field("", max_length=10_000, description="Reference, root cause or effectiveness check.")
    action_id: Name | None = Field(None, description="The corrective action it concerns, if any.")
    status: Name = Field(description="The incident's state after the update.")
    at: AwareDatetime = Field(description="When it was made.")


class ReviewRequested(Payload):
    """An extraordinary management review (9.3) is called, e.g. by a serious or repeated incident."""

    review_id: FileId = Field(
        description="The review in the AIMS register; also the subject and its pack's folder."
    )
    reason: Text = Field(description="Why a review is needed now.")
    trigger: Name = Field(description="What called it, e.g. 'incident:<id>' or 'cli:<person>'.")
    requested_by: Name = Field(description="Who or which flow asks.")
    requested_at: AwareDatetime = Field(description="When it was asked for.")
