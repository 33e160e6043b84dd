"""The pack's sections for the rest of 9.3.2 d) 2: incidents and their clocks, approvals, flow-run
operations and the audit log. Pure: no Prefect, no Kafka.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING

from schemas.payloads import Severity
from schemas.review_pack import (
    Series,
    Table,
    TrendChart,
)

if TYPE_CHECKING:
    from connectors.register.audit import AuditReport
    from connectors.register.store import UnitOfWork
    from schemas import records as r
from flows.reviews.pack_common import (
    FAILED_RUN_STATES,
    Draft,
    Period,
    RunHistory,
    count_of,
    day_of,
    new_draft,
    per_month,
)


def clock_outcome(incident: r.Incident, now: datetime) -> str | None:
    """met, missed or running for a serious incident's Art. 73 clock; None without a clock."""
    due = incident.reporting_due_at
    if due is None:
        return None
    reported = incident.reported_to_authority_at
    if reported is not None:
        return "met" if reported <= due else "missed"
    return "missed" if now > due else "running"


def incidents_section(uow: UnitOfWork, period: Period, now: datetime) -> Draft:
    everything = uow.incidents.find(order_by="detected_at")
    incidents = [i for i in everything if i.detected_at in period]
    clocks = Counter(clock_outcome(i, now) for i in incidents)
    severities = Counter(i.severity for i in incidents)
    draft = new_draft(
        f"{count_of(len(incidents), 'incident')} in the period, {sum(i.serious for i in incidents)} serious; "
        f"Art. 73 clocks met {clocks.get('met', 0)}, missed {clocks.get('missed', 0)}, "
        f"running {clocks.get('running', 0)}.",
        incidents=len(incidents),
        serious=sum(i.serious for i in incidents),
        **{f"severity_{s.value}": severities.get(s, 0) for s in Severity},
        clocks_met=clocks.get("met", 0),
        clocks_missed=clocks.get("missed", 0),
        clocks_running=clocks.get("running", 0),
        open_now=sum(i.status != "closed" for i in everything),
    )
    if incidents:
        draft.tables.append(
            Table(
                title="Incidents in the period",
                columns=["Incident", "System", "Severity", "Serious", "Status", "Art. 73 clock"],
                rows=[
                    [
                        i.title,
                        i.system,
                        i.severity,
                        "yes" if i.serious else "no",
                        i.status,
                        clock_outcome(i, now) or "—",
                    ]
                    for i in incidents
                ],
            )
        )
    else:
        draft.findings.append("No incidents were reported in the period.")
    draft.charts.append(
        TrendChart(
            title="Incidents per month",
            unit="count",
            labels=period.months(),
            series=[
                Series(name="all", values=per_month(period, (i.detected_at for i in incidents))),
                Series(
                    name="serious", values=per_month(period, (i.detected_at for i in incidents if i.serious))
                ),
            ],
        )
    )
    return draft


def decision_hours(approvals: Iterable[r.Approval]) -> list[float]:
    return [
        (a.decided_at - a.requested_at).total_seconds() / 3600
        for a in approvals
        if a.decided_at is not None and a.status in ("approved", "rejected")
    ]


def approvals_section(uow: UnitOfWork, period: Period, now: datetime) -> Draft:
    approvals = [a for a in uow.approvals.find(order_by="requested_at") if a.requested_at in period]
    hours = decision_hours(approvals)
    statuses = Counter(a.status for a in approvals)
    median = round(statistics.median(hours), 1) if hours else None
    escalated = [a for a in approvals if a.escalated_to]
    draft = new_draft(
        f"{count_of(len(approvals), 'approval')} requested in the period; median time to decision "
        + (f"{median} h" if median is not None else "unknown")
        + f"; {statuses.get('expired', 0)} expired, {len(escalated)} escalated.",
        requested=len(approvals),
        approved=statuses.get("approved", 0),
        rejected=statuses.get("rejected", 0),
        expired=statuses.get("expired", 0),
        pending=statuses.get("pending", 0),
        escalated=len(escalated),
        median_hours_to_decision=median,
    )
    late = [a for a in approvals if a.status == "expired" or a.escalated_to]
    if late:
        draft.tables.append(
            Table(
                title="Expired or escalated approvals",
                columns=["Subject", "Group", "Status", "Escalated to", "Requested"],
                rows=[
                    [
                        a.subject,
                        a.approver_group,
                        a.status,
                        ", ".join(a.escalated_to) or "—",
                        day_of(a.requested_at),
                    ]
                    for a in late
                ],
            )
        )
    if not hours:
        draft.missing.append("No approval was decided in the period: the median time to decision is unknown.")
    return draft


def operations_section(history: RunHistory) -> Draft:
    if history.error is not None:
        draft = new_draft("The flow-run history could not be read.", runs=None, failed=None)
        draft.missing.append(
            f"The Prefect server could not be asked for the period's flow runs: {history.error}"
        )
        return draft
    states: dict[str, Counter[str]] = defaultdict(Counter)
    for run in history.runs:
        states[run.flow_name][run.state] += 1
    failed = [run for run in history.runs if run.state in FAILED_RUN_STATES]
    draft = new_draft(
        f"{count_of(len(history.runs), 'flow run')} in the period, {len(failed)} failed or crashed.",
        runs=len(history.runs),
        failed=len(failed),
        flows=len(states),
    )
    if states:
        names = sorted({state for counts in states.values() for state in counts})
        draft.tables.append(
            Table(
                title="Flow runs by flow and final state",
                columns=["Flow", *names],
                rows=[
                    [flow, *(str(counts.get(n, 0)) for n in names)] for flow, counts in sorted(states.items())
                ],
            )
        )
    else:
        draft.missing.append(
            "Prefect has no flow runs for the period: nothing ran, or its history was pruned."
        )
    return draft


def audit_section(uow: UnitOfWork, period: Period, report: AuditReport | None) -> Draft:
    findings = [
        n for n in uow.nonconformities.find(source="audit", order_by="opened_at") if n.opened_at in period
    ]
    draft = new_draft(
        f"{count_of(len(findings), 'internal-audit finding')} in the period; the register's audit log "
        + (
            "verifies."
            if report is not None and report.ok
            else "does NOT verify."
            if report
            else "was not checked."
        ),
        audit_findings=len(findings),
        audit_log_entries=report.entries if report else None,
        audit_log_intact="yes" if report and report.ok else "no" if report else None,
        # The anchor (DESIGN: the head kept outside the register): the pack leaves the register in
        # files, Jira and Slack, so a later rewrite of the log cannot also rewrite this line.
        # `aims audit verify --anchor SEQ:HASH` checks the log against it.
        audit_log_anchor=f"{report.head_seq}:{report.head_hash}" if report and report.ok else None,
    )
    if findings:
        draft.tables.append(
            Table(
                title="Internal audit findings",
                columns=["Finding", "Status", "Opened"],
                rows=[[n.description, n.status, day_of(n.opened_at)] for n in findings],
            )
        )
    else:
        draft.missing.append(
            "No internal audit (9.2) results were recorded in the period (an audit finding is a "
            "nonconformity with source 'audit')."
        )
    if report is not None and report.problem is not None:
        draft.findings.append(f"Audit log problem: {report.problem}")
    return draft
