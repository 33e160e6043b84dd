"""Register records: what the AIMS register holds, as auditors read it.

Each model is one row of one register table (`connectors/register/tables.py` mirrors the fields).
Identifiers are strings: natural keys where the world has one (an AI system's name, an event's
source#id), random hex otherwise. Times are timezone-aware UTC.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from schemas.payloads import IncidentCategory, RiskLevel, RiskTier, Severity

UNPINNED = "latest"


def new_id() -> str:
    return uuid.uuid4().hex


def utcnow() -> datetime:
    return datetime.now(UTC)


class Record(BaseModel):
    # Validators are built on a record type's first use, not at import: a command reads one or two
    # of the twenty-odd types, and building them all cost every command 20 ms of start-up.
    model_config = ConfigDict(frozen=True, extra="forbid", from_attributes=True, defer_build=True)


class LifecycleStage(StrEnum):
    """Life-cycle stage of an AI system (ISO/IEC 22989 terms, shortened)."""

    inception = "inception"
    development = "development"
    validation = "validation"
    deployed = "deployed"
    retired = "retired"


# -- inventory ------------------------------------------------------------------------------------


class AISystem(Record):
    """An AI system in the inventory (A.4.2, A.6.2.7)."""

    name: str = Field(min_length=1, description="Unique name; the subject of its events.")
    owner: str = Field(min_length=1, description="Accountable person or team.")
    intended_use: str = Field(description="What it is for and for whom (A.9.4).")
    lifecycle_stage: LifecycleStage = Field(LifecycleStage.development)
    risk_tier: RiskTier | None = Field(None, description="EU AI Act tier; None until assessed.")
    description: str = ""
    created_at: AwareDatetime = Field(default_factory=utcnow)
    updated_at: AwareDatetime = Field(default_factory=utcnow)


class ModelVersion(Record):
    """A registered model version of an AI system."""

    id: str = Field(default_factory=new_id)
    system: str = Field(description="AI system name.")
    model_name: str
    version: str
    source_uri: str = Field(description="Where the artifact lives (registry URI).")
    submitted_by: str = Field(description="Who registered it: never its approver (separation of duties).")
    datasets: list[str] = Field(
        default_factory=list, description="Datasets it was trained or evaluated on, as dataset@version."
    )
    event_key: str | None = Field(None, description="The event that announced it.")
    registered_at: AwareDatetime = Field(default_factory=utcnow)

    @staticmethod
    def dataset_ref(dataset: str, version: str | None) -> str:
        # Without a version the model used whatever was latest: provenance (A.7.5) is incomplete.
        return f"{dataset}@{version or UNPINNED}"

    @property
    def dataset_names(self) -> list[str]:
        return [ref.split("@", 1)[0] for ref in self.datasets]

    @property
    def unpinned_datasets(self) -> list[str]:
        return [ref.split("@", 1)[0] for ref in self.datasets if ref.endswith(f"@{UNPINNED}")]


class Dataset(Record):
    name: str = Field(min_length=1)
    owner: str = ""
    description: str = ""
    suite: str | None = Field(None, description="Path of its expectation suite in the repository.")
    created_at: AwareDatetime = Field(default_factory=utcnow)


class DatasetVersion(Record):
    """One version of a dataset, with where it came from (A.7.5 provenance)."""

    id: str = Field(default_factory=new_id)
    dataset: str
    version: str
    location: dict[str, Any] = Field(description="File or SQL table location, as in the event.")
    content_hash: str | None = None
    size_bytes: int | None = None
    change_kind: str | None = None
    produced_by: str | None = Field(None, description="Pipeline or person that produced it.")
    provenance: dict[str, Any] = Field(default_factory=dict, description="Source, lineage, event key.")
    status: str = Field(
        "received",
        description="received: no check judged it (its check failed or crashed: provenance.check_failed "
        "says which run and why), accepted, rejected, superseded, or provisional: checked only against a "
        "drafted (not yet accepted) baseline suite, so never a drift reference.",
    )
    received_at: AwareDatetime = Field(default_factory=utcnow)
    profile: dict[str, Any] | None = Field(
        None, description="Column statistics of this version: the drift reference for the next one."
    )


class DataQualityResult(Record):
    """A data-quality check of one dataset version (A.7.4)."""

    id: str = Field(default_factory=new_id)
    dataset_version_id: str
    suite_name: str
    suite_version: str
    verdict: str = Field(description="passed, failed, warning or baseline.")
    statistics: dict[str, Any] = Field(default_factory=dict)
    expectations: list[dict[str, Any]] = Field(default_factory=list, description="Per-expectation outcomes.")
    drift: dict[str, Any] = Field(default_factory=dict, description="Per-column drift scores.")
    flow_run_id: str | None = None
    checked_at: AwareDatetime = Field(default_factory=utcnow)


class SuiteReview(Record):
    """The review of a dataset's drafted baseline suite (A.7.4): the one reminder its owner gets per
    drafted suite, and every attempt to accept it as the reviewed suite (accepted or refused, why)."""

    id: str = Field(
        description="<dataset>:reminder:<round> or <dataset>:accepted:<round> (round: acceptances "
        "before it); refused-<hash> for a refused attempt."
    )
    dataset: str
    kind: str = Field(description="reminder or acceptance.")
    suite_version: str = Field(description="The version of the drafted suite reviewed.")
    suite_sha256: str | None = Field(None, description="SHA-256 of the suite file as it was accepted.")
    reviewed_version: str | None = Field(None, description="The version the reviewed suite was given.")
    by: str | None = Field(None, description="Who accepted; for a reminder, the owner asked (None: nobody).")
    channel: str = Field(description="cli for an acceptance; slack or register for a reminder.")
    credential: str | None = Field(None, description="What proved the person: the OS login.")
    authenticated: bool | None = Field(None, description="False: accepted, though nobody was proven.")
    accepted: bool = True
    refusal: str | None = None
    note: str = Field("", description="What the reminder said, or why it reached nobody.")
    at: AwareDatetime = Field(default_factory=utcnow)


# -- risk -----------------------------------------------------------------------------------------


class Risk(Record):
    """A risk of an AI system in the register; every reassessment adds a `RiskVersion`."""

    id: str = Field(default_factory=new_id)
    system: str
    category: str = Field(description="Risk source/category (Annex C), e.g. data_quality, fairness.")
    title: str
    owner: str
    status: str = Field("open", description="open, treated, accepted or closed.")
    likelihood: int = Field(ge=1)
    impact: int = Field(ge=1)
    inherent_level: RiskLevel
    treatment: str = ""
    controls: list[str] = Field(default_factory=list, description="Annex A controls of the treatment.")
    residual_level: RiskLevel
    next_review: date | None = None
    version: int = Field(1, ge=1)
    updated_at: AwareDatetime = Field(default_factory=utcnow)


class RiskVersion(Record):
    """A risk as one assessment left it; old versions stay."""

    id: str = Field(default_factory=new_id)
    risk_id: str
    version: int = Field(ge=1)
    likelihood: int = Field(ge=1)
    impact: int = Field(ge=1)
    inherent_level: RiskLevel
    treatment: str = ""
    controls: list[str] = Field(default_factory=list)
    residual_level: RiskLevel
    rationale: list[dict[str, Any]] = Field(default_factory=list, description="Evidence and rule per score.")
    assessed_by: str
    assessed_at: AwareDatetime = Field(default_factory=utcnow)
    assessment_id: str | None = Field(None, description="The assessment that wrote this version.")


class RiskAssessment(Record):
    """One (re)assessment of an AI system's risks: why, on what evidence, and what it decided (8.2)."""

    id: str = Field(description="Derived from the triggering event, so a redelivery finds it done.")
    system: str
    reason: str = Field(
        description="new_model_version, data_quality_failure, drift, incident, scheduled, manual."
    )
    trigger: str = Field(description="source#id of the event that asked for it.")
    evidence: str = Field(description="The register record that prompted it.")
    inputs: dict[str, Any] = Field(description="The evidence the scores were computed from.")
    highest_inherent: RiskLevel
    highest_residual: RiskLevel
    gated: list[str] = Field(default_factory=list, description="Categories that crossed an approval gate.")
    approval_id: str | None = None
    blocked: bool = Field(False, description="Deployment held until a pending risk approval is decided.")
    assessed_by: str
    assessed_at: AwareDatetime = Field(default_factory=utcnow)
    flow_run_id: str | None = None


class ImpactAssessment(Record):
    """An AI system impact assessment (6.1.4, A.5)."""

    id: str = Field(default_factory=new_id)
    system: str
    model_version_id: str | None = None
    status: str = Field("open", description="open until someone completes it, then completed.")
    assessor: str | None = None
    summary: str = ""
    findings: dict[str, Any] = Field(default_factory=dict, description="Individuals, groups, society.")
    due: date | None = None
    opened_at: AwareDatetime = Field(default_factory=utcnow)
    completed_at: AwareDatetime | None = None


# -- approvals ------------------------------------------------------------------------------------


class Approval(Record):
    """A decision requested from accountable people (risk acceptance, go-live, treatment)."""

    id: str = Field(default_factory=new_id)
    subject: str = Field(description="What is to be decided on, e.g. model version or risk id.")
    system: str | None = None
    requested_decision: str
    risk_level: RiskLevel | None = None
    approver_group: str
    quorum: int = Field(1, ge=1)
    context: dict[str, Any] = Field(default_factory=dict)
    status: str = Field("pending", description="pending, approved, rejected or expired.")
    requested_by: str
    requested_at: AwareDatetime = Field(default_factory=utcnow)
    due_at: AwareDatetime | None = None
    decided_at: AwareDatetime | None = None
    flow_run_id: str | None = Field(None, description="The request-approval run that waits for it.")
    # Where the request was posted: the resumed run finds these and posts nothing twice.
    slack_channel: str | None = None
    slack_ts: str | None = None
    jira_issue: str | None = None
    escalated_to: list[str] = Field(
        default_factory=list, description="Groups and people the deadline escalated it to; they may decide."
    )

    @property
    def groups(self) -> list[str]:
        return [g for g in self.approver_group.split(",") if g]


class ApprovalDecision(Record):
    """One person's answer: who, when, via which channel, why; refused attempts too."""

    id: str = Field(default_factory=new_id)
    approval_id: str
    decided_by: str
    channel: str = Field(description="slack, jira, cli or prefect-ui.")
    decision: str = Field(description="approve or reject.")
    reason: str = ""
    accepted: bool = Field(True, description="False when the person was not allowed to decide.")
    refusal: str | None = None
    decided_at: AwareDatetime = Field(default_factory=utcnow)
    # None on decisions recorded before 0011, so their audit entries still verify.
    credential: str | None = Field(None, description="What the channel proved: Slack id, Jira account, login")
    authenticated: bool | None = Field(None, description="False: accepted, though nobody was proven")


class ApprovalNotice(Record):
    """A reminder, escalation or follow-up sent for an approval: its id makes each go out once."""

    id: str = Field(description="<approval id>:<kind>:<step>.")
    approval_id: str
    kind: str = Field(description="reminder, escalation, outcome-slack, outcome-jira, refusal-jira …")
    step: str = ""
    recipients: list[str] = Field(default_factory=list)
    sent_at: AwareDatetime = Field(default_factory=utcnow)


# -- incidents and improvement --------------------------------------------------------------------


class Incident(Record):
    id: str = Field(description="source#id of the incident-reported event.")
    system: str
    title: str
    description: str = ""
    category: IncidentCategory
    severity: Severity
    occurred_at: AwareDatetime
    detected_at: AwareDatetime
    reported_by: str
    status: str = Field(
        "reported",
        description="reported, triaged, contained, reported-to-authority, corrective-action or closed.",
    )
    serious: bool = False
    criteria: list[str] = Field(default_factory=list, description="Art. 73 criteria that matched.")
    reporting_due_at: AwareDatetime | None = None
    deadline_basis: str | None = Field(None, description="Which Art. 73 deadline applies.")
    authority_reference: str | None = None
    closed_at: AwareDatetime | None = None
    reported_severity: Severity | None = Field(None, description="As reported, before the policy's floor.")
    triaged_at: AwareDatetime | None = None
    contained_at: AwareDatetime | None = None
    reported_to_authority_at: AwareDatetime | None = None
    slack_channel: str | None = Field(None, description="Where the alert was posted.")
    slack_ts: str | None = None
    jira_issue: str | None = None
    flow_run_id: str | None = Field(None, description="The handle-incident run that triaged it.")
    inventory_finding: str | None = Field(
        None,
        description="The nonconformity recording that its AI system was not in the inventory when it was"
        " reported (A.4.2, A.6.2.6): one per system, which every incident on the system refers to.",
    )


class IncidentUpdate(Record):
    """One attempt to update an incident, accepted or refused, with who, where and why (A.8.4, 10.2)."""

    id: str = Field(description="<incident>:<kind>[:<action>] when accepted; refused-<hash> otherwise.")
    incident_id: str
    kind: str = Field(description="contain, report, root-cause, plan-action, action-done, verify-action …")
    by: str
    channel: str
    detail: str = ""
    action_id: str | None = None
    accepted: bool = True
    refusal: str | None = Field(None, description="Why it was refused.")
    at: AwareDatetime = Field(default_factory=utcnow)


class IncidentNotice(Record):
    """A reminder or alert sent for an incident: its id makes each go out once."""

    id: str = Field(description="<incident id>:<kind>:<step>.")
    incident_id: str
    kind: str = Field(
        description="clock-reminder, clock-overdue, update-slack, update-jira, review-joined-slack,"
        " review-joined-jira …"
    )
    step: str = ""
    recipients: list[str] = Field(default_factory=list)
    sent_at: AwareDatetime = Field(default_factory=utcnow)


class EvidenceRequest(Record):
    """Evidence of a control asked for again because it went stale: one per control and period, so a
    scheduled collection starts once and the owner is asked once (`collect-evidence`)."""

    id: str = Field(description="<control>@<first day of the period>.")
    control: str = Field(description="The Annex A control whose evidence was stale or missing.")
    status: str = Field(description="stale or missing, when asked.")
    period_start: AwareDatetime = Field(description="When the evidence was due again (this period's start).")
    collections: list[str] = Field(
        default_factory=list, description="What was started: events staged (data check, reassessment)."
    )
    asked: list[str] = Field(default_factory=list, description="Who was asked in Slack, and what for.")
    requested_at: AwareDatetime = Field(default_factory=utcnow)


class Nonconformity(Record):
    """A nonconformity (10.2) with its root cause."""

    id: str = Field(default_factory=new_id)
    source: str = Field(description="What raised it: incident, data-quality, inventory, audit or review.")
    source_ref: str = Field(description="Id of the record that raised it.")
    description: str
    root_cause: str = ""
    status: str = Field("open", description="open, actions-planned, verified or closed.")
    opened_at: AwareDatetime = Field(default_factory=utcnow)
    closed_at: AwareDatetime | None = None
    controls: list[str] = Field(
        default_factory=list, description="The clauses or Annex A controls it is a finding against."
    )


class CorrectiveAction(Record):
    id: str = Field(default_factory=new_id)
    nonconformity_id: str
    description: str
    owner: str
    due: date
    status: str = Field("open", description="open, done or verified.")
    done_at: AwareDatetime | None = None
    effectiveness: str | None = Field(None, description="The effectiveness check, once made.")
    verified_by: str | None = None
    verified_at: AwareDatetime | None = None


class ManagementReview(Record):
    """A management review (9.3): why and when it is held, its pack, and its state until results close it."""

    id: str = Field(
        default_factory=new_id,
        description="scheduled:<meeting date>, extraordinary:<trigger>:<ref>, or requested:<hash>.",
    )
    kind: str = Field("scheduled", description="scheduled or extraordinary.")
    reason: str = ""
    period_start: AwareDatetime | None = None
    period_end: AwareDatetime | None = None
    meeting_at: AwareDatetime | None = None
    status: str = Field("planned", description="requested, planned, prepared or closed.")
    pack: dict[str, Any] = Field(default_factory=dict, description="The 9.3.2 inputs as gathered.")
    pack_path: str | None = None
    results: list[dict[str, Any]] = Field(default_factory=list, description="Decisions (9.3.3).")
    created_at: AwareDatetime = Field(default_factory=utcnow)
    trigger: str | None = Field(None, description="What asked for it: an incident, a person, an event.")
    requested_by: str | None = None
    policy: dict[str, Any] = Field(
        default_factory=dict, description="The policy as it stood when the pack was prepared."
    )
    files: dict[str, str] = Field(default_factory=dict, description="markdown, html and ics paths.")
    jira_issue: str | None = None
    flow_run_id: str | None = Field(None, description="The hold-management-review run that prepared it.")
    prepared_at: AwareDatetime | None = None
    closed_at: AwareDatetime | None = None
    triggers: list[str] = Field(
        default_factory=list,
        description="Everything that called it, in order: `trigger` first, then each incident that joined"
        " it while it was not yet held.",
    )
    pack_triggers: list[str] = Field(
        default_factory=list,
        description="The triggers its pack was gathered with; the attendees are told of later ones apart.",
    )


class ReviewAction(Record):
    id: str = Field(default_factory=new_id, description="<review id>/A<n>.")
    review_id: str
    description: str
    owner: str
    due: date
    status: str = Field("open", description="open, done or dropped.")
    closed_at: AwareDatetime | None = None
    recorded_by: str | None = None
    recorded_at: AwareDatetime | None = None
    closed_by: str | None = None


class ReviewResult(Record):
    """One attempt to record a review result (9.3.3), accepted or refused, from the CLI or Jira."""

    id: str = Field(description="<review id>:<kind>:<hash> when accepted; refused-<hash> otherwise.")
    review_id: str
    kind: str = Field(description="decision, action, action-done, action-dropped or close.")
    by: str
    channel: str = Field(description="cli or jira.")
    text: str = ""
    owner: str | None = None
    due: date | None = None
    action_id: str | None = None
    accepted: bool = True
    refusal: str | None = None
    at: AwareDatetime = Field(default_factory=utcnow)


class InterestedPartyNeed(Record):
    """A need or expectation of an interested party (4.2), as recorded: an input to reviews (9.3.2 c)."""

    id: str = Field(default_factory=new_id)
    party: str = Field(min_length=1, description="Who: regulator, customers, staff, a supplier …")
    need: str = Field(min_length=1)
    change: str = Field("new", description="new, changed or withdrawn.")
    recorded_by: str
    recorded_at: AwareDatetime = Field(default_factory=utcnow)
