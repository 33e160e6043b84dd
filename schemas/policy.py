"""The AIMS policy: risk criteria, approvals, SLAs, reviews, data quality and regulatory clocks.

Policy is data (DESIGN decision 5): the governance team edits one YAML file (`policy/aims-policy.yaml`),
and `schemas.policy_file.load_policy` turns it into a `Policy`, all or nothing. These models only say what
a valid policy is; they read no files and nothing from the environment.

Numbers and booleans are strict: YAML's `yes` is not a quorum of 1 and `"3"` is not a number of days.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Annotated

from pydantic import (
    AfterValidator,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    field_validator,
    model_validator,
)

from schemas.data_sources import DataSource, SizeLimits, SourceId
from schemas.evidence_policy import EvidenceFreshness
from schemas.mlflow import MlflowIntake
from schemas.openlineage import OpenLineageIntake
from schemas.payloads import IncidentCategory, Name, RiskLevel, Severity, Text
from schemas.people import Decisions, Person, Team, duplicate_ids, person_key
from schemas.policy_base import (
    ControlId,
    GroupName,
    JiraProject,
    Justification,
    Loc,
    PolicyModel,
    SlackChannel,
    distinct,
    fail,
)
from schemas.review_policy import ManagementReview

__all__ = ["Policy", "RiskLevel"]

# -- risk criteria (6.1.1, 8.2) -------------------------------------------------------------------


class ScaleLevel(PolicyModel):
    score: StrictInt = Field(ge=1, le=10, description="Position on the scale: 1 (lowest), 2, … N, in order.")
    name: Name = Field(description="Short label used in the register and messages, e.g. 'likely'.")
    description: Text = Field(description="What the level means, so that assessors score alike.")


def _check_scale(levels: tuple[ScaleLevel, ...]) -> tuple[ScaleLevel, ...]:
    problems: list[tuple[Loc, str]] = []
    for i, level in enumerate(levels):
        if level.score != i + 1:
            problems.append(((i, "score"), f"expected score {i + 1}: scores run 1, 2, … N in list order"))
            break
    names = [level.name.casefold() for level in levels]
    for i, name in enumerate(names):
        if name in names[:i]:
            problems.append(((i, "name"), f"name {levels[i].name!r} is used twice"))
    fail("scale", problems)
    return levels


Scale = Annotated[tuple[ScaleLevel, ...], Field(min_length=2, max_length=10), AfterValidator(_check_scale)]


class Band(PolicyModel):
    level: RiskLevel = Field(description="The risk level of this band.")
    max_score: StrictInt = Field(ge=1, le=100, description="Highest likelihood × impact in the band.")


def _check_bands(bands: tuple[Band, ...]) -> tuple[Band, ...]:
    problems: list[tuple[Loc, str]] = []
    for i in range(1, len(bands)):
        if bands[i].level.rank <= bands[i - 1].level.rank:
            problems.append(((i, "level"), f"bands go from low to critical; {bands[i].level} comes too late"))
        if bands[i].max_score <= bands[i - 1].max_score:
            problems.append(((i, "max_score"), f"must be above the previous band's {bands[i - 1].max_score}"))
    fail("bands", problems)
    return bands


class RiskCriteria(PolicyModel):
    likelihood: Scale = Field(description="Likelihood scale, lowest first.")
    impact: Scale = Field(description="Impact scale, lowest first.")
    levels: Annotated[tuple[Band, ...], AfterValidator(_check_bands)] = Field(
        min_length=1,
        max_length=4,
        description="Bands of likelihood × impact, ascending; a score falls in the first band it does not "
        "exceed, and the last band reaches the highest score.",
    )
    appetite: RiskLevel = Field(RiskLevel.low, description="Highest level accepted without an approval.")
    reassessment_days: StrictInt = Field(
        180, ge=1, le=3650, description="A risk is reassessed at least this often (8.2), besides on change."
    )
    evidence_window_days: StrictInt = Field(
        90,
        ge=1,
        le=3650,
        description="Data-quality checks and incidents this many days back are evidence in an assessment.",
    )
    impact_assessment_days: StrictInt = Field(
        30,
        ge=1,
        le=365,
        description="An impact assessment opened for a new model version is due this many days later.",
    )

    @model_validator(mode="after")
    def _bands_cover_matrix(self) -> RiskCriteria:
        top = len(self.likelihood) * len(self.impact)
        last = len(self.levels) - 1
        problems: list[tuple[Loc, str]] = []
        for i, band in enumerate(self.levels[:last]):
            if band.max_score >= top:
                problems.append(
                    (("levels", i, "max_score"), f"reaches {top} already: later bands are unused")
                )
        if self.levels[last].max_score < top:
            problems.append((("levels", last, "max_score"), f"the last band must reach {top} (top score)"))
        fail("risk", problems)
        return self

    def level_for(self, likelihood: int, impact: int) -> RiskLevel:
        for label, value, scale in (
            ("likelihood", likelihood, self.likelihood),
            ("impact", impact, self.impact),
        ):
            if not 1 <= value <= len(scale):
                raise ValueError(f"{label} {value} is outside the policy's {label} scale 1..{len(scale)}")
        score = likelihood * impact
        return next(band.level for band in self.levels if score <= band.max_score)


# -- approvals, SLAs and escalation (5.3, 6.1.3) --------------------------------------------------


class ApproverGroup(PolicyModel):
    members: Annotated[tuple[Name, ...], AfterValidator(distinct)] = Field(
        min_length=1, description="User ids or emails of the people who may decide for the group."
    )
    slack_channel: SlackChannel = Field(description="Where the group's approval requests are posted.")
    jira_project: JiraProject | None = Field(None, description="Jira project for approval issues, if any.")


class ApprovalRule(PolicyModel):
    groups: Annotated[tuple[GroupName, ...], AfterValidator(distinct)] = Field(
        min_length=1, description="Approver groups whose members may decide."
    )
    quorum: StrictInt = Field(1, ge=1, le=20, description="Distinct approvers needed for a decision.")
    distinct_groups: StrictBool = Field(False, description="Each approver of the quorum from another group.")
    separation_of_duties: StrictBool = Field(True, description="The submitter may not approve their own.")

    @model_validator(mode="after")
    def _enough_groups(self) -> ApprovalRule:
        if self.distinct_groups and self.quorum > len(self.groups):
            fail(
                "rule",
                [(("quorum",), f"distinct_groups needs {self.quorum} groups, {len(self.groups)} listed")],
            )
        return self


class EscalationStep(PolicyModel):
    after_hours: StrictInt = Field(ge=1, le=24 * 365, description="Hours after the request, if undecided.")
    notify: Annotated[tuple[Name, ...], AfterValidator(distinct)] = Field(
        min_length=1, description="Approver group names, or email addresses of people, to notify."
    )


def _check_escalation(steps: tuple[EscalationStep, ...]) -> tuple[EscalationStep, ...]:
    problems: list[tuple[Loc, str]] = []
    for i in range(1, len(steps)):
        if steps[i].after_hours <= steps[i - 1].after_hours:
            problems.append(
                ((i, "after_hours"), f"must come after the previous step's {steps[i - 1].after_hours}")
            )
    fail("escalation", problems)
    return steps


class Sla(PolicyModel):
    decision_hours: StrictInt = Field(ge=1, le=24 * 90, description="Hours within which a decision is due.")
    escalation: Annotated[tuple[EscalationStep, ...], AfterValidator(_check_escalation)] = Field(
        (), description="Who is notified, in time order, while the decision is outstanding."
    )
    remind_before_hours: Annotated[tuple[StrictInt, ...], AfterValidator(distinct)] | None = Field(
        None,
        description="Remind the approvers this many hours before the decision is due; "
        "default: once, a quarter of decision_hours before.",
    )
    expire_after_hours: StrictInt | None = Field(
        None,
        ge=1,
        le=24 * 365,
        description="Hours after the request at which an undecided request expires, as not approved; "
        "default: twice decision_hours, and never before the last escalation step.",
    )

    @model_validator(mode="after")
    def _deadlines_in_order(self) -> Sla:
        problems: list[tuple[Loc, str]] = []
        for i, hours in enumerate(self.remind_before_hours or ()):
            if not 1 <= hours < self.decision_hours:
                problems.append(
                    (("remind_before_hours", i), f"must be between 1 and {self.decision_hours - 1} hours")
                )
        last = self.escalation[-1].after_hours if self.escalation else 0
        if self.expire_after_hours is not None and self.expire_after_hours < max(self.decision_hours, last):
            problems.append(
                (
                    ("expire_after_hours",),
                    f"must not come before the decision is due ({self.decision_hours} h) "
                    f"or the last escalation ({last} h)",
                )
            )
        fail("sla", problems)
        return self

    def reminders(self) -> tuple[int, ...]:
        """Hours before the due time at which to remind, largest first."""
        if self.remind_before_hours is not None:
            return tuple(sorted(self.remind_before_hours, reverse=True))
        return (max(1, self.decision_hours // 4),) if self.decision_hours > 1 else ()

    def expiry_hours(self) -> int:
        if self.expire_after_hours is not None:
            return self.expire_after_hours
        last = self.escalation[-1].after_hours if self.escalation else 0
        return max(2 * self.decision_hours, last)


# -- data quality (A.7.4), regulatory clocks (A.8.4), incidents, applicability --------------------


class DataQuality(PolicyModel):
    psi_warning: StrictFloat = Field(0.1, gt=0, le=10, description="Population stability index that warns.")
    psi_critical: StrictFloat = Field(0.25, gt=0, le=10, description="PSI that fails the check.")
    ks_pvalue: StrictFloat = Field(
        0.05, gt=0, lt=1, description="Kolmogorov-Smirnov p-value below which a column has drifted."
    )
    coalesce_seconds: StrictInt = Field(
        60,
        ge=0,
        le=86_400,
        description="A check starts this long after a change; changes to one dataset within it are checked"
        " once (the latest version), the others are recorded as superseded. 0 checks every change at once.",
    )
    limits: SizeLimits = Field(
        default_factory=SizeLimits, description="Size caps of every data source that sets none of its own."
    )

    @model_validator(mode="after")
    def _warning_below_critical(self) -> DataQuality:
        if self.psi_critical <= self.psi_warning:
            fail("data_quality", [(("psi_critical",), f"must be above psi_warning ({self.psi_warning})")])
        return self


def _check_reminders(fractions: tuple[float, ...]) -> tuple[float, ...]:
    problems: list[tuple[Loc, str]] = []
    for i in range(1, len(fractions)):
        if fractions[i] <= fractions[i - 1]:
            problems.append(((i,), f"must be above the previous reminder's {fractions[i - 1]}"))
    fail("reminders", problems)
    return fractions


Fraction = Annotated[StrictFloat, Field(gt=0, lt=1)]


class Art73Clock(PolicyModel):
    """EU AI Act Art. 73: days from awareness of a serious incident to the report to the authority."""

    general_days: StrictInt = Field(15, ge=1, le=365, description="Any serious incident.")
    death_days: StrictInt = Field(10, ge=1, le=365, description="The death of a person.")
    widespread_days: StrictInt = Field(
        2,
        ge=1,
        le=365,
        description="Widespread infringement, or serious disruption of critical infrastructure.",
    )
    reminders: Annotated[tuple[Fraction, ...], AfterValidator(_check_reminders)] = Field(
        (0.5, 0.8), description="Remind when these fractions of the time have passed, e.g. 0.5 = halfway."
    )

    @model_validator(mode="after")
    def _special_within_general(self) -> Art73Clock:
        problems: list[tuple[Loc, str]] = []
        for name, days in (("death_days", self.death_days), ("widespread_days", self.widespread_days)):
            if days > self.general_days:
                problems.append(((name,), f"must not exceed general_days ({self.general_days})"))
        fail("art73", problems)
        return self


class Regulatory(PolicyModel):
    art73: Art73Clock = Field(default_factory=Art73Clock, description="Serious-incident reporting deadlines.")


class IncidentStage(StrEnum):
    """The states an incident moves through (A.8.4, 10.2); Jira and Slack show the same ones."""

    reported = "reported"
    triaged = "triaged"
    contained = "contained"
    reported_to_authority = "reported-to-authority"
    corrective_action = "corrective-action"
    closed = "closed"


def _default_jira_statuses() -> dict[IncidentStage, str]:
    return {
        IncidentStage.triaged: "Triaged",
        IncidentStage.contained: "Contained",
        IncidentStage.reported_to_authority: "Reported to authority",
        IncidentStage.corrective_action: "Corrective action",
        IncidentStage.closed: "Closed",
    }


JiraStatus = Annotated[str, Field(min_length=1, max_length=60, pattern=r"^\S(.*\S)?$")]


class Incidents(PolicyModel):
    slack_channel: SlackChannel = Field(description="Where incidents are announced and coordinated.")
    jira_project: JiraProject = Field(description="Jira project where incident issues are opened.")
    severity_floor: Mapping[IncidentCategory, Severity] = Field(
        default_factory=dict, description="Lowest severity per category: triage raises a lower reported one."
    )
    serious_from: Severity = Field(
        Severity.high,
        description="A harm category (health, critical infrastructure, fundamental rights, property) at"
        " this severity or above counts as an Art. 73 serious incident; death always does.",
    )
    responders: tuple[GroupName, ...] = Field(
        (),
        description="Approver groups whose members may update incidents (contain, report, close);"
        " empty means every group's members. Action owners may always mark their own action done.",
    )
    jira_statuses: Mapping[IncidentStage, JiraStatus] = Field(
        default_factory=_default_jira_statuses,
        description="The Jira status for each stage; transitions are named after their target status,"
        " as Jira names them by default.",
    )

    @field_validator("jira_statuses", mode="after")
    @classmethod
    def _complete_statuses(cls, given: Mapping[IncidentStage, str]) -> dict[IncidentStage, str]:
        # Name only the statuses your workflow calls differently; the others keep their defaults.
        return {**_default_jira_statuses(), **given}

    @model_validator(mode="after")
    def _statusesdistinct(self) -> Incidents:
        seen: dict[str, IncidentStage] = {}
        problems: list[tuple[Loc, str]] = []
        for stage, status in self.jira_statuses.items():
            other = seen.setdefault(status.casefold(), stage)
            if other is not stage:
                problems.append((("jira_statuses", stage.value), f"{status!r} is {other.value}'s status too"))
        fail("incidents", problems)
        return self


class StatementOfApplicability(PolicyModel):
    exclusions: Mapping[ControlId, Justification] = Field(
        default_factory=dict, description="Annex A controls not applied, each with its justification (6.1.3)."
    )


# -- the policy -----------------------------------------------------------------------------------


class Policy(PolicyModel):
    """The whole policy, validated together: cross-references are checked once every part is valid."""

    version: Name = Field(description="Version the governance team bumps on every change; quote it in YAML.")
    organisation: Name = Field(description="The organisation whose AIMS this is.")
    risk: RiskCriteria = Field(description="Risk criteria: scales, matrix bands, appetite, reassessment.")
    approver_groups: Mapping[GroupName, ApproverGroup] = Field(
        min_length=1, description="Named groups of people who may decide approvals."
    )
    approvals: Mapping[RiskLevel, ApprovalRule] = Field(
        default_factory=dict,
        description="Who approves, per risk level; needed for every level above appetite.",
    )
    slas: Mapping[RiskLevel, Sla] = Field(
        default_factory=dict, description="Decision time and escalation, per risk level above appetite."
    )
    management_review: ManagementReview = Field(description="Cadence and attendees of management reviews.")
    data_quality: DataQuality = Field(default_factory=DataQuality, description="Drift thresholds.")
    data_sources: Mapping[SourceId, DataSource] = Field(
        default_factory=dict,
        description="What data-changed events may name: files under roots, or one SQL database each.",
    )
    regulatory: Regulatory = Field(default_factory=Regulatory, description="Regulatory reporting clocks.")
    incidents: Incidents = Field(description="Where incidents go, and severity floors per category.")
    statement_of_applicability: StatementOfApplicability = Field(
        default_factory=StatementOfApplicability, description="Exclusions from Annex A, justified."
    )
    people: Mapping[Name, Person] = Field(
        default_factory=dict,
        description="How each channel proves a person (by the name groups list): Slack user id, Jira "
        "account id, OS logins.",
    )
    teams: Mapping[GroupName, Team] = Field(
        default_factory=dict,
        description="Teams that submit models: separation of duties excludes every member.",
    )
    decisions: Decisions = Field(
        default_factory=Decisions, description="What channels that prove nobody may decide."
    )
    mlflow: MlflowIntake = Field(
        default_factory=MlflowIntake,
        description="What MLflow's registered models, aliases and logged datasets are in AIMS terms.",
    )
    openlineage: OpenLineageIntake = Field(
        default_factory=OpenLineageIntake,
        description="Which OpenLineage output datasets are which data source's (run events in).",
    )
    evidence: EvidenceFreshness = Field(
        default_factory=EvidenceFreshness,
        description="How old each control's newest evidence may be, and who supplies what a person must.",
    )

    @model_validator(mode="after")
    def _cross_references(self) -> Policy:
        groups = self.approver_groups
        problems: list[tuple[Loc, str]] = []
        for level, rule in self.approvals.items():
            unknown = [(i, g) for i, g in enumerate(rule.groups) if g not in groups]
            problems += [
                (("approvals", level.value, "groups", i), f"no approver group {g!r}") for i, g in unknown
            ]
            eligible = {member for g in rule.groups if g in groups for member in groups[g].members}
            if not unknown and rule.quorum > len(eligible):
                loc: Loc = ("approvals", level.value, "quorum")
                problems.append((loc, f"only {len(eligible)} distinct people may approve"))
        for level, sla in self.slas.items():
            for i, step in enumerate(sla.escalation):
                for j, who in enumerate(step.notify):
                    if who not in groups and "@" not in who:
                        loc = ("slas", level.value, "escalation", i, "notify", j)
                        problems.append((loc, f"{who!r} is neither an approver group nor an email address"))
        for i, group in enumerate(self.incidents.responders):
            if group not in groups:
                problems.append((("incidents", "responders", i), f"no approver group {group!r}"))
        names: dict[str, str] = {}
        for name in self.people:
            if names.setdefault(person_key(name), name) != name:
                problems.append((("people", name), f"is {names[person_key(name)]!r} spelled otherwise"))
        for name, field, value in duplicate_ids(self.people):
            problems.append((("people", name, field), f"{value!r} is another person's already"))
        for i, location in enumerate(self.mlflow.dataset_locations):
            if location.source not in self.data_sources:
                loc = ("mlflow", "dataset_locations", i, "source")
                problems.append((loc, f"no data source {location.source!r} in data_sources"))
        for i, lineage in enumerate(self.openlineage.dataset_locations):
            if lineage.source not in self.data_sources:
                loc = ("openlineage", "dataset_locations", i, "source")
                problems.append((loc, f"no data source {lineage.source!r} in data_sources"))
        for level in self.levels_needing_approval():
            for section, present in (("approvals", self.approvals), ("slas", self.slas)):
                if level not in present:
                    problems.append(((section,), f"{level.value!r} is above the appetite and needs an entry"))
        fail("Policy", problems)
        return self

    def levels_needing_approval(self) -> list[RiskLevel]:
        """The levels the matrix can produce that lie above the appetite."""
        return [band.level for band in self.risk.levels if self.needs_approval(band.level)]

    def needs_approval(self, level: RiskLevel) -> bool:
        return level.rank > self.risk.appetite.rank

    def level_for(self, likelihood: int, impact: int) -> RiskLevel:
        """The risk level of a likelihood and impact score; ValueError if either is off its scale."""
        return self.risk.level_for(likelihood, impact)
