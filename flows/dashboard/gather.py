"""Gather the dashboard from the register (and the failed runs Prefect reported, handed in). Pure: no
Prefect, no Kafka, no clock of its own (`now` is passed in), no network.

The counts are taken from the same rows the panels list, so the page cannot say "3 open approvals"
above a table of 2.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Literal

from connectors.register.coverage import evidence_by_id
from flows.freshness.rules import judge_by_policy
from flows.reviews.pack_common import FAILED_RUN_STATES, RunHistory
from flows.reviews.pack_performance import heat_map
from schemas.dashboard import (
    ControlFreshness,
    Counts,
    Dashboard,
    DatasetTrend,
    FailedRuns,
    FailedWork,
    LimitState,
    OpenApproval,
    OpenIncident,
    Verdict,
)

if TYPE_CHECKING:
    from connectors.register.store import UnitOfWork
    from schemas import records as r
    from schemas.catalogue import Catalogue
    from schemas.policy import Policy

# Past this share of its SLA or clock, an item is "due soon".
DUE_SOON = 0.75
# Checks shown per dataset in its verdict strip.
VERDICTS_SHOWN = 20
# How far back failed work is listed.
FAILED_SINCE = timedelta(days=7)
FAILED_SHOWN = 50
FRESHNESS_NOTE = (
    "A control is fresh while its newest evidence is younger than the policy's maximum age for it "
    "(evidence.max_age_days); collect-evidence collects stale ones again and asks their owners."
)


def limit_state(used: float | None) -> LimitState:
    """within, due-soon or overdue for a share of a limit used; none without a limit."""
    if used is None:
        return "none"
    return "overdue" if used >= 1 else "due-soon" if used >= DUE_SOON else "within"


def _hours(span: timedelta) -> float:
    return round(span.total_seconds() / 3600, 1)


def open_approvals(uow: UnitOfWork, policy: Policy, now: datetime) -> list[OpenApproval]:
    rows = []
    for a in uow.approvals.find(status="pending", order_by="requested_at"):
        sla = policy.slas.get(a.risk_level) if a.risk_level else None
        due = a.due_at or (a.requested_at + timedelta(hours=sla.decision_hours) if sla else None)
        limit = sla.decision_hours if sla else (_hours(due - a.requested_at) if due else None)
        age = now - a.requested_at
        used = age.total_seconds() / 3600 / limit if limit else None
        rows.append(
            OpenApproval(
                id=a.id,
                subject=a.subject,
                system=a.system,
                approver_group=a.approver_group,
                risk_level=a.risk_level.value if a.risk_level else None,
                requested_at=a.requested_at,
                age_hours=_hours(age),
                sla_hours=round(limit) if limit else None,
                due_at=due,
                state=limit_state(used),
            )
        )
    return rows


def _incident(i: r.Incident, now: datetime) -> OpenIncident:
    due = i.reporting_due_at
    clock: Literal["running", "overdue", "reported", "none"]
    left: float | None = None
    used: float | None = None
    if due is None:
        clock = "none"
    elif i.reported_to_authority_at is not None:
        clock = "reported"
    else:
        left = _hours(due - now)
        span = (due - i.detected_at).total_seconds()
        used = (now - i.detected_at).total_seconds() / span if span > 0 else 1.0
        clock = "overdue" if now >= due else "running"
    return OpenIncident(
        id=i.id,
        title=i.title,
        system=i.system,
        severity=i.severity.value,
        status=i.status,
        serious=i.serious,
        detected_at=i.detected_at,
        reporting_due_at=due,
        hours_left=left,
        clock=clock,
        state=limit_state(used),
    )


def open_incidents(uow: UnitOfWork, now: datetime) -> list[OpenIncident]:
    incidents = [i for i in uow.incidents.find(order_by="detected_at") if i.status != "closed"]
    # The running clocks first, the nearest deadline first; then the others, newest first.
    rows = [_incident(i, now) for i in incidents]
    clocked = sorted((x for x in rows if x.hours_left is not None), key=lambda x: x.hours_left or 0.0)
    others = sorted((x for x in rows if x.hours_left is None), key=lambda x: x.detected_at, reverse=True)
    return [*clocked, *others]


def control_freshness(
    uow: UnitOfWork, catalogue: Catalogue, policy: Policy, now: datetime
) -> list[ControlFreshness]:
    evidence = evidence_by_id(uow, catalogue)
    judged = judge_by_policy(catalogue, evidence, policy, now)
    return [
        ControlFreshness(
            id=c.id,
            title=c.title,
            implemented_by=list(c.implemented_by),
            evidence_count=c.evidence_count,
            last_evidence_at=c.newest_at,
            age_days=round((now - c.newest_at).total_seconds() / 86400, 1) if c.newest_at else None,
            status=c.status.value,
            max_age_days=c.max_age.days,
        )
        for c in judged
    ]


def data_quality_trends(uow: UnitOfWork) -> list[DatasetTrend]:
    versions = {v.id: v for v in uow.dataset_versions.find()}
    names = {d.name for d in uow.datasets.find()} | {v.dataset for v in versions.values()}
    results: dict[str, list[r.DataQualityResult]] = defaultdict(list)
    for result in uow.data_quality.find(order_by="checked_at"):
        version = versions.get(result.dataset_version_id)
        results[version.dataset if version else "?"].append(result)
    names |= set(results)
    trends = []
    for name in sorted(names):
        checks = results.get(name, [])
        trends.append(
            DatasetTrend(
                dataset=name,
                checks=len(checks),
                latest=checks[-1].verdict if checks else None,
                verdicts=[
                    Verdict(
                        version=versions[x.dataset_version_id].version
                        if x.dataset_version_id in versions
                        else x.dataset_version_id,
                        verdict=x.verdict,
                        checked_at=x.checked_at,
                    )
                    for x in checks[-VERDICTS_SHOWN:]
                ],
            )
        )
    return trends


def _moment(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def failed_runs(uow: UnitOfWork, prefect: RunHistory | None, now: datetime) -> FailedRuns:
    """From Prefect when it answered; else the register's own refused work, and why Prefect is unknown."""
    since = now - FAILED_SINCE
    if prefect is not None and prefect.error is None:
        items = [
            FailedWork(
                at=_moment(run.start_time) or _moment(run.created),
                what=run.flow_name,
                subject=run.name,
                state=run.state,
                detail=f"flow run {run.id}",
            )
            for run in prefect.runs
            if run.state in FAILED_RUN_STATES
        ]
        return FailedRuns(source="prefect", prefect="reachable", since=since, items=items[:FAILED_SHOWN])
    reason = prefect.error if prefect is not None else "not asked"
    items = [
        FailedWork(
            at=d.decided_at,
            what="approval decision",
            subject=d.approval_id,
            state="refused",
            detail=f"{d.decided_by} via {d.channel}: {d.refusal or 'refused'}",
        )
        for d in uow.decisions.find(accepted=False)
        if d.decided_at >= since
    ]
    items += [
        FailedWork(
            at=u.at,
            what="incident update",
            subject=u.incident_id,
            state="refused",
            detail=f"{u.kind} by {u.by} via {u.channel}: {u.refusal or 'refused'}",
        )
        for u in uow.incident_updates.find(accepted=False)
        if u.at >= since
    ]
    items.sort(key=lambda x: x.at or since, reverse=True)
    return FailedRuns(
        source="register", prefect=f"unknown: {reason}", since=since, items=items[:FAILED_SHOWN]
    )


def gather(
    uow: UnitOfWork,
    policy: Policy,
    catalogue: Catalogue,
    *,
    now: datetime,
    prefect: RunHistory | None,
) -> Dashboard:
    """The dashboard at `now`. `prefect`: the failed runs Prefect reported since `now - FAILED_SINCE`
    (or why it could not be asked); None when it was not asked."""
    approvals = open_approvals(uow, policy, now)
    incidents = open_incidents(uow, now)
    controls = control_freshness(uow, catalogue, policy, now)
    trends = data_quality_trends(uow)
    risks = [x for x in uow.risks.find(order_by="id") if x.status != "closed"]
    failed = failed_runs(uow, prefect, now)
    return Dashboard(
        generated_at=now,
        counts=Counts(
            open_approvals=len(approvals),
            overdue_approvals=sum(a.state == "overdue" for a in approvals),
            open_incidents=len(incidents),
            running_clocks=sum(i.clock == "running" for i in incidents),
            overdue_clocks=sum(i.clock == "overdue" for i in incidents),
            controls=len(controls),
            controls_with_evidence=sum(c.evidence_count > 0 for c in controls),
            datasets=len(trends),
            open_risks=len(risks),
            failed_runs=len(failed.items),
        ),
        approvals=approvals,
        incidents=incidents,
        controls=controls,
        freshness_note=FRESHNESS_NOTE,
        data_quality=trends,
        heat_map=heat_map(policy, risks),
        failed=failed,
    )
