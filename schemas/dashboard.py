"""The dashboard (issue 22): what `flows/dashboard/gather.py` reads from the register and Prefect, and
`flows/dashboard/render.py` draws as one self-contained HTML page.

Every figure is computed once, when gathering; the renderer only draws. Times are UTC.
"""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from schemas.review_pack import HeatMap

# How far along its limit (an approval's SLA, an incident's Art. 73 clock) something is.
LimitState = Literal["within", "due-soon", "overdue", "none"]


class DashboardModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class OpenApproval(DashboardModel):
    id: str
    subject: str
    system: str | None
    approver_group: str
    risk_level: str | None
    requested_at: AwareDatetime
    age_hours: float
    sla_hours: int | None = Field(description="The policy's decision_hours for its risk level; None: no SLA.")
    due_at: AwareDatetime | None
    state: LimitState = Field(description="within, due-soon (past 3/4 of the SLA), overdue, none (no SLA).")


class OpenIncident(DashboardModel):
    id: str
    title: str
    system: str
    severity: str
    status: str
    serious: bool
    detected_at: AwareDatetime
    reporting_due_at: AwareDatetime | None
    hours_left: float | None = Field(description="Until the Art. 73 report is due; negative when overdue.")
    clock: Literal["running", "overdue", "reported", "none"]
    state: LimitState


class ControlFreshness(DashboardModel):
    id: str
    title: str
    implemented_by: list[str]
    evidence_count: int
    last_evidence_at: AwareDatetime | None
    age_days: float | None = Field(description="Age of the newest evidence; None without evidence.")
    status: str = Field(description="fresh, stale, missing or excluded, by the policy's maximum age.")
    max_age_days: int = Field(description="The policy's maximum age of the control's evidence.")


class Verdict(DashboardModel):
    version: str
    verdict: str
    checked_at: AwareDatetime


class DatasetTrend(DashboardModel):
    dataset: str
    checks: int = Field(description="Every check of the dataset in the register.")
    latest: str | None
    verdicts: list[Verdict] = Field(description="The latest checks, oldest first.")


class FailedWork(DashboardModel):
    at: AwareDatetime | None
    what: str = Field(description="The flow (Prefect) or the kind of record (register).")
    subject: str
    state: str
    detail: str


class FailedRuns(DashboardModel):
    source: Literal["prefect", "register"]
    prefect: str = Field(
        description="'reachable', or 'unknown: <reason>' when Prefect was not asked or failed."
    )
    since: AwareDatetime
    items: list[FailedWork]


class Counts(DashboardModel):
    open_approvals: int
    overdue_approvals: int
    open_incidents: int
    running_clocks: int
    overdue_clocks: int
    controls: int
    controls_with_evidence: int
    datasets: int
    open_risks: int
    failed_runs: int


class Dashboard(DashboardModel):
    generated_at: AwareDatetime
    counts: Counts
    approvals: list[OpenApproval]
    incidents: list[OpenIncident]
    controls: list[ControlFreshness]
    freshness_note: str
    data_quality: list[DatasetTrend]
    heat_map: HeatMap
    failed: FailedRuns
