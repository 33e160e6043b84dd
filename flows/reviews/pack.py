"""Gather the management-review pack (9.3.2) from the register and the Prefect run history.

Every section is always built. When its data is missing the section says so in `missing`, because
a review held on thin evidence must show that it was thin rather than look complete (issue 8).
Figures are computed here once; the Markdown and HTML renderers only draw them.
"""

from __future__ import annotations

import itertools
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from schemas.payloads import RiskLevel, Severity
from schemas.review_pack import (
    SECTIONS,
    Attendance,
    Figure,
    HeatMap,
    ReviewPack,
    Section,
    Series,
    Table,
    TrendChart,
)

if TYPE_CHECKING:
    from connectors.prefect_api import FlowRunView
    from connectors.register.audit import AuditReport
    from connectors.register.store import UnitOfWork
    from schemas import records as r
    from schemas.policy import Policy

# A check that passed this many times in a row, and never failed, is a candidate for tightening.
ALWAYS_PASSES = 5
# A dataset that failed this many checks in the period is a recurring failure.
RECURRING_FAILURES = 2
FAILED_RUN_STATES = frozenset({"Failed", "Crashed", "TimedOut"})


@dataclass(frozen=True)
class Period:
    start: datetime
    end: datetime

    def __contains__(self, moment: object) -> bool:
        return isinstance(moment, datetime) and self.start <= moment < self.end

    def months(self) -> list[str]:
        """'YYYY-MM' of every month the period touches, in order: the x axis of the trends."""
        labels: list[str] = []
        year, month = self.start.year, self.start.month
        last = (self.end - timedelta(microseconds=1)).astimezone(UTC)
        while (year, month) <= (last.year, last.month):
            labels.append(f"{year:04d}-{month:02d}")
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)
        return labels or [f"{self.start.year:04d}-{self.start.month:02d}"]


def month_of(moment: datetime) -> str:
    moment = moment.astimezone(UTC)
    return f"{moment.year:04d}-{moment.month:02d}"


def month_end(label: str) -> datetime:
    year, month = (int(part) for part in label.split("-"))
    year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return datetime(year, month, 1, tzinfo=UTC)


def per_month(period: Period, moments: Iterable[datetime]) -> list[float | None]:
    counts = Counter(month_of(m) for m in moments if m in period)
    return [float(counts.get(label, 0)) for label in period.months()]


def previous_review(uow: UnitOfWork, review: r.ManagementReview) -> r.ManagementReview | None:
    """The latest other review whose pack was prepared: the period of this one starts where it ended."""
    prepared = [
        other
        for other in uow.reviews.find()
        if other.id != review.id and other.prepared_at is not None and other.period_end is not None
    ]
    return max(prepared, key=lambda other: other.period_end or other.created_at, default=None)


@dataclass(frozen=True)
class RunHistory:
    """The Prefect flow runs of the period, or why they could not be read."""

    runs: Sequence[FlowRunView] = ()
    error: str | None = None


def gather(
    uow: UnitOfWork,
    policy: Policy,
    review: r.ManagementReview,
    *,
    period: Period,
    meeting_at: datetime,
    now: datetime,
    runs: RunHistory,
    audit: AuditReport | None,
) -> ReviewPack:
    previous = previous_review(uow, review)
    builders = {
        "previous-actions": lambda: _previous_actions(uow, review, period, now),
        "issues": lambda: _issues(uow, policy, previous, period),
        "interested-parties": lambda: _interested_parties(uow, period),
        "performance/nonconformities": lambda: _nonconformities(uow, period, now),
        "performance/data-quality": lambda: _data_quality(uow, period),
        "performance/risks": lambda: _risks(uow, policy, period),
        "performance/incidents": lambda: _incidents(uow, period, now),
        "performance/approvals": lambda: _approvals(uow, period, now),
        "performance/operations": lambda: _operations(runs),
        "performance/audit": lambda: _audit(uow, period, audit),
    }
    sections = [_section(key, clause, title, builders[key]()) for key, clause, title in SECTIONS[:-1]]
    key, clause, title = SECTIONS[-1]
    sections.append(_section(key, clause, title, _improvement(uow, period, runs, now)))
    attendees = [
        Attendance(name=a.name, email=a.email, role=a.role) for a in policy.management_review.attendees
    ]
    return ReviewPack(
        review_id=review.id,
        kind=review.kind,
        reason=review.reason,
        period_start=period.start,
        period_end=period.end,
        meeting_at=meeting_at,
        generated_at=now,
        attendees=attendees,
        agenda=agenda(review),
        sections=sections,
    )


def agenda(review: r.ManagementReview) -> list[str]:
    inputs = [f"{clause} {title}" for key, clause, title in SECTIONS if "/" not in key]
    performance = "9.3.2 d) AIMS performance: nonconformities, monitoring and measurement, audit results"
    return [
        "Opening: attendance and purpose" + (f" ({review.reason})" if review.reason else ""),
        *inputs[:3],
        performance,
        *inputs[3:],
        "9.3.3 Decisions and actions, each with an owner and a due date",
    ]


@dataclass
class _Draft:
    summary: str
    figures: dict[str, Figure]
    tables: list[Table]
    charts: list[TrendChart | HeatMap]
    findings: list[str]
    missing: list[str]


def _draft(summary: str = "", **figures: Figure) -> _Draft:
    return _Draft(summary, dict(figures), [], [], [], [])


def _section(key: str, clause: str, title: str, draft: _Draft) -> Section:
    return Section(
        key=key,
        clause=clause,
        title=title,
        summary=draft.summary,
        figures=draft.figures,
        tables=draft.tables,
        charts=draft.charts,
        findings=draft.findings,
        missing=draft.missing,
    )


def _n(count: int, noun: str, plural: str | None = None) -> str:
    """'1 action', '3 actions': summaries are read aloud in the meeting."""
    return f"{count} {noun if count == 1 else plural or noun + 's'}"


def _day(moment: datetime | date | None) -> str:
    if moment is None:
        return "—"
    return moment.date().isoformat() if isinstance(moment, datetime) else moment.isoformat()


# -- 9.3.2 a) ----------------------------------------------------------------------------------------


def _previous_actions(uow: UnitOfWork, review: r.ManagementReview, period: Period, now: datetime) -> _Draft:
    earlier = [a for a in uow.review_actions.find(order_by="due") if a.review_id != review.id]
    open_ = [a for a in earlier if a.status == "open"]
    overdue = [a for a in open_ if a.due < now.date()]
    done = [a for a in earlier if a.status == "done" and a.closed_at in period]
    dropped = [a for a in earlier if a.status == "dropped" and a.closed_at in period]
    draft = _draft(
        f"{_n(len(open_), 'action')} from earlier reviews open ({len(overdue)} overdue); "
        f"{len(done)} were done and {len(dropped)} dropped in the period.",
        open=len(open_),
        overdue=len(overdue),
        done_in_period=len(done),
        dropped_in_period=len(dropped),
    )
    shown = [*open_, *done, *dropped]
    if shown:
        draft.tables.append(
            Table(
                title="Actions from previous reviews",
                columns=["Action", "Review", "Owner", "Due", "Status"],
                rows=[[a.id, a.review_id, a.owner, a.due.isoformat(), _action_status(a, now)] for a in shown],
            )
        )
    if not earlier:
        draft.missing.append(
            "No actions from earlier management reviews are recorded: either this is the first review "
            "or earlier reviews decided no actions."
        )
    return draft


def _action_status(action: r.ReviewAction, now: datetime) -> str:
    if action.status == "open" and action.due < now.date():
        return f"open, overdue by {(now.date() - action.due).days} d"
    return action.status


# -- 9.3.2 b) ----------------------------------------------------------------------------------------


def _at(entry: r.AuditEntry) -> datetime:
    return datetime.fromisoformat(entry.at).astimezone(UTC)


def _issues(uow: UnitOfWork, policy: Policy, previous: r.ManagementReview | None, period: Period) -> _Draft:
    systems = uow.systems.find(order_by="name")
    added = [s for s in systems if s.created_at in period]
    retired: list[str] = []
    tiers: list[list[str]] = []
    for entry in uow.audit_entries("ai_system"):
        if entry.action != "update" or _at(entry) not in period or not entry.before or not entry.after:
            continue
        before, after = entry.before, entry.after
        if after.get("lifecycle_stage") == "retired" and before.get("lifecycle_stage") != "retired":
            retired.append(entry.entity_id)
        if before.get("risk_tier") != after.get("risk_tier"):
            tiers.append(
                [
                    entry.entity_id,
                    str(before.get("risk_tier") or "—"),
                    str(after.get("risk_tier") or "—"),
                    _day(_at(entry)),
                ]
            )
    changes = policy_changes(previous.policy if previous else {}, policy.model_dump(mode="json"))
    draft = _draft(
        f"{_n(len(added), 'AI system')} added, {len(retired)} retired, {_n(len(tiers), 'risk-tier change')}; "
        f"{_n(len(changes), 'policy change')} since the last review.",
        systems=len(systems),
        systems_added=len(added),
        systems_retired=len(retired),
        tier_changes=len(tiers),
        policy_changes=len(changes) if previous and previous.policy else None,
    )
    if added:
        draft.tables.append(
            Table(
                title="AI systems added",
                columns=["System", "Owner", "Stage", "Tier", "Added"],
                rows=[
                    [s.name, s.owner, s.lifecycle_stage, s.risk_tier or "—", _day(s.created_at)]
                    for s in added
                ],
            )
        )
    if retired:
        draft.findings.append("Retired: " + ", ".join(sorted(set(retired))))
    if tiers:
        draft.tables.append(
            Table(title="Risk-tier changes", columns=["System", "From", "To", "On"], rows=tiers)
        )
    if previous is None or not previous.policy:
        draft.figures["policy_changes"] = None
        draft.missing.append(
            "No earlier review recorded the policy, so policy changes cannot be listed; this review "
            "records the current policy for the next one."
        )
    elif changes:
        draft.tables.append(Table(title="Policy changes", columns=["Setting", "Was", "Now"], rows=changes))
    return draft


def policy_changes(before: dict[str, Any], after: dict[str, Any], prefix: str = "") -> list[list[str]]:
    """Leaf settings that differ, as [dotted path, was, now]; lists compare whole."""
    if not before:
        return []
    rows: list[list[str]] = []
    for key in sorted(set(before) | set(after)):
        path, was, now = f"{prefix}{key}", before.get(key), after.get(key)
        if isinstance(was, dict) and isinstance(now, dict):
            rows += policy_changes(was, now, f"{path}.") if was else [[path, "—", _short(now)]]
        elif was != now:
            rows.append([path, _short(was), _short(now)])
    return rows


def _short(value: Any, limit: int = 80) -> str:
    text = "—" if value is None else str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


# -- 9.3.2 c) ----------------------------------------------------------------------------------------


def _interested_parties(uow: UnitOfWork, period: Period) -> _Draft:
    needs = [n for n in uow.party_needs.find(order_by="recorded_at") if n.recorded_at in period]
    kinds = Counter(n.change for n in needs)
    draft = _draft(
        f"{_n(len(needs), 'need')} of interested parties recorded in the period.",
        recorded=len(needs),
        new=kinds.get("new", 0),
        changed=kinds.get("changed", 0),
        withdrawn=kinds.get("withdrawn", 0),
    )
    if needs:
        draft.tables.append(
            Table(
                title="Needs and expectations recorded",
                columns=["Party", "Need", "Change", "Recorded by", "On"],
                rows=[[n.party, n.need, n.change, n.recorded_by, _day(n.recorded_at)] for n in needs],
            )
        )
    else:
        draft.missing.append(
            "No needs or expectations of interested parties were recorded in the period "
            "(`aims parties add` records them); the review should confirm none changed."
        )
    return draft


# -- 9.3.2 d) 1: nonconformities and corrective actions ---------------------------------------------


def _nonconformities(uow: UnitOfWork, period: Period, now: datetime) -> _Draft:
    ncs = uow.nonconformities.find(order_by="opened_at")
    actions = uow.corrective_actions.find(order_by="due")
    opened = [n for n in ncs if n.opened_at in period]
    closed = [n for n in ncs if n.closed_at in period]
    still_open = [n for n in ncs if n.status != "closed"]
    open_actions = [a for a in actions if a.status == "open"]
    overdue = [a for a in open_actions if a.due < now.date()]
    verified = [a for a in actions if a.verified_at in period]
    by_source = Counter(n.source for n in opened)
    draft = _draft(
        f"{_n(len(opened), 'nonconformity', 'nonconformities')} opened and {len(closed)} closed "
        "in the period; "
        f"{_n(len(open_actions), 'corrective action')} open, {len(overdue)} overdue.",
        opened=len(opened),
        closed=len(closed),
        open_now=len(still_open),
        actions_open=len(open_actions),
        actions_overdue=len(overdue),
        actions_verified=len(verified),
    )
    if by_source:
        draft.findings.append(
            "Opened by source: "
            + ", ".join(f"{source} {count}" for source, count in sorted(by_source.items()))
        )
    if overdue:
        draft.tables.append(
            Table(
                title="Overdue corrective actions",
                columns=["Action", "Nonconformity", "Owner", "Due"],
                rows=[[a.id, a.nonconformity_id, a.owner, a.due.isoformat()] for a in overdue],
            )
        )
    draft.charts.append(
        TrendChart(
            title="Nonconformities opened and corrective actions verified per month",
            unit="count",
            labels=period.months(),
            series=[
                Series(name="opened", values=per_month(period, (n.opened_at for n in ncs))),
                Series(
                    name="verified",
                    values=per_month(period, (a.verified_at for a in actions if a.verified_at)),
                ),
            ],
        )
    )
    if not ncs:
        draft.missing.append("No nonconformities are recorded at all, so there is no trend to show.")
    return draft


# -- 9.3.2 d) 2: monitoring and measurement ---------------------------------------------------------


def pass_rate(results: Sequence[r.DataQualityResult]) -> float | None:
    judged = [x for x in results if x.verdict != "baseline"]
    if not judged:
        return None
    return round(100 * sum(x.verdict == "passed" for x in judged) / len(judged), 1)


def drifted_columns(result: r.DataQualityResult) -> list[str]:
    return sorted(
        c for c, f in result.drift.items() if isinstance(f, dict) and f.get("level") not in (None, "none")
    )


def _dataset_results(uow: UnitOfWork, period: Period) -> dict[str, list[r.DataQualityResult]]:
    versions = {v.id: v.dataset for v in uow.dataset_versions.find()}
    results: dict[str, list[r.DataQualityResult]] = defaultdict(list)
    for result in uow.data_quality.find(order_by="checked_at"):
        if result.checked_at in period:
            results[versions.get(result.dataset_version_id, "?")].append(result)
    return dict(sorted(results.items()))


def _data_quality(uow: UnitOfWork, period: Period) -> _Draft:
    per_dataset = _dataset_results(uow, period)
    results = [x for rs in per_dataset.values() for x in rs]
    judged = [x for x in results if x.verdict != "baseline"]
    drifts = [x for x in results if drifted_columns(x)]
    verdicts = Counter(x.verdict for x in judged)
    rate = pass_rate(results)
    draft = _draft(
        f"{_n(len(judged), 'data-quality check')} in the period, "
        + (f"{rate}% passed" if rate is not None else "none judged")
        + f"; {len(drifts)} with drift.",
        checks=len(judged),
        passed=verdicts.get("passed", 0),
        failed=verdicts.get("failed", 0),
        warnings=verdicts.get("warning", 0),
        pass_rate_percent=rate,
        drift_findings=len(drifts),
        datasets_checked=len(per_dataset),
    )
    if per_dataset:
        draft.tables.append(
            Table(
                title="Checks per dataset",
                columns=["Dataset", "Checks", "Passed", "Failed", "Warnings", "Pass rate", "Drifted columns"],
                rows=[
                    [
                        name,
                        str(sum(x.verdict != "baseline" for x in rs)),
                        str(sum(x.verdict == "passed" for x in rs)),
                        str(sum(x.verdict == "failed" for x in rs)),
                        str(sum(x.verdict == "warning" for x in rs)),
                        "—" if pass_rate(rs) is None else f"{pass_rate(rs)}%",
                        ", ".join(sorted({c for x in rs for c in drifted_columns(x)})) or "none",
                    ]
                    for name, rs in per_dataset.items()
                ],
            )
        )
    by_month: dict[str, list[r.DataQualityResult]] = defaultdict(list)
    for x in results:
        by_month[month_of(x.checked_at)].append(x)
    draft.charts.append(
        TrendChart(
            title="Data-quality pass rate per month",
            unit="%",
            labels=period.months(),
            series=[
                Series(name="pass rate", values=[pass_rate(by_month.get(m, [])) for m in period.months()])
            ],
        )
    )
    if not judged:
        draft.missing.append(
            "No data-quality checks were judged in the period: pass rates and drift cannot be reported."
        )
    return draft


def level_as_of(versions: Sequence[r.RiskVersion], moment: datetime) -> RiskLevel | None:
    known = [v for v in versions if v.assessed_at < moment]
    return max(known, key=lambda v: v.version).residual_level if known else None


def _risks(uow: UnitOfWork, policy: Policy, period: Period) -> _Draft:
    risks = [x for x in uow.risks.find(order_by="id") if x.status != "closed"]
    versions: dict[str, list[r.RiskVersion]] = defaultdict(list)
    for v in uow.risk_versions.find(order_by="version"):
        versions[v.risk_id].append(v)
    raised = lowered = 0
    for history in versions.values():
        for before, after in itertools.pairwise(history):
            if after.assessed_at in period and after.residual_level.rank != before.residual_level.rank:
                raised += after.residual_level.rank > before.residual_level.rank
                lowered += after.residual_level.rank < before.residual_level.rank
    levels = Counter(x.residual_level for x in risks)
    assessments = [a for a in uow.assessments.find() if a.assessed_at in period]
    draft = _draft(
        f"{_n(len(risks), 'open risk')}, {levels.get(RiskLevel.high, 0) + levels.get(RiskLevel.critical, 0)} "
        f"at high or critical residual level; {raised} raised and {lowered} lowered in the period.",
        open_risks=len(risks),
        **{f"residual_{level.value}": levels.get(level, 0) for level in RiskLevel},
        raised=raised,
        lowered=lowered,
        assessments=len(assessments),
    )
    criteria = policy.risk
    rows = range(len(criteria.likelihood), 0, -1)
    columns = range(1, len(criteria.impact) + 1)
    cells = Counter((x.likelihood, x.impact) for x in risks)
    draft.charts.append(
        HeatMap(
            title="Open risks by likelihood and impact (inherent)",
            likelihood_labels=[criteria.likelihood[i - 1].name for i in rows],
            impact_labels=[criteria.impact[j - 1].name for j in columns],
            counts=[[cells.get((i, j), 0) for j in columns] for i in rows],
            levels=[[criteria.level_for(i, j).value for j in columns] for i in rows],
        )
    )
    months = period.months()
    ends = [min(month_end(m), period.end) for m in months]
    draft.charts.append(
        TrendChart(
            title="Risks by residual level at each month's end",
            unit="count",
            labels=months,
            series=[
                Series(
                    name=level.value,
                    values=[
                        float(sum(level_as_of(vs, end) == level for vs in versions.values())) for end in ends
                    ],
                )
                for level in RiskLevel
            ],
        )
    )
    if risks:
        draft.tables.append(
            Table(
                title="Open risks at high or critical residual level",
                columns=["Risk", "System", "Category", "Inherent", "Residual", "Owner"],
                rows=[
                    [x.title, x.system, x.category, x.inherent_level, x.residual_level, x.owner]
                    for x in risks
                    if x.residual_level.rank >= RiskLevel.high.rank
                ],
            )
        )
    else:
        draft.missing.append("No open risks are recorded: the risk register is empty, not necessarily safe.")
    return draft


def clock_outcome(incident: r.Incident, now: datetime) -> str | None:
    """met, missed or running for a serious incident's Art. 73 clock; None without a clock."""
    due = incident.reporting_due_at
    if due is None:
        return None
    reported = incident.reported_to_authority_at
    if reported is not None:
        return "met" if reported <= due else "missed"
    return "missed" if now > due else "running"


def _incidents(uow: UnitOfWork, period: Period, now: datetime) -> _Draft:
    everything = uow.incidents.find(order_by="detected_at")
    incidents = [i for i in everything if i.detected_at in period]
    clocks = Counter(clock_outcome(i, now) for i in incidents)
    severities = Counter(i.severity for i in incidents)
    draft = _draft(
        f"{_n(len(incidents), 'incident')} in the period, {sum(i.serious for i in incidents)} serious; "
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


def _approvals(uow: UnitOfWork, period: Period, now: datetime) -> _Draft:
    approvals = [a for a in uow.approvals.find(order_by="requested_at") if a.requested_at in period]
    hours = decision_hours(approvals)
    statuses = Counter(a.status for a in approvals)
    median = round(statistics.median(hours), 1) if hours else None
    escalated = [a for a in approvals if a.escalated_to]
    draft = _draft(
        f"{_n(len(approvals), 'approval')} requested in the period; median time to decision "
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
                        _day(a.requested_at),
                    ]
                    for a in late
                ],
            )
        )
    if not hours:
        draft.missing.append("No approval was decided in the period: the median time to decision is unknown.")
    return draft


def _operations(history: RunHistory) -> _Draft:
    if history.error is not None:
        draft = _draft("The flow-run history could not be read.", runs=None, failed=None)
        draft.missing.append(
            f"The Prefect server could not be asked for the period's flow runs: {history.error}"
        )
        return draft
    states: dict[str, Counter[str]] = defaultdict(Counter)
    for run in history.runs:
        states[run.flow_name][run.state] += 1
    failed = [run for run in history.runs if run.state in FAILED_RUN_STATES]
    draft = _draft(
        f"{_n(len(history.runs), 'flow run')} in the period, {len(failed)} failed or crashed.",
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


def _audit(uow: UnitOfWork, period: Period, report: AuditReport | None) -> _Draft:
    findings = [
        n for n in uow.nonconformities.find(source="audit", order_by="opened_at") if n.opened_at in period
    ]
    draft = _draft(
        f"{_n(len(findings), 'internal-audit finding')} in the period; the register's audit log "
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
    )
    if findings:
        draft.tables.append(
            Table(
                title="Internal audit findings",
                columns=["Finding", "Status", "Opened"],
                rows=[[n.description, n.status, _day(n.opened_at)] for n in findings],
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


# -- 9.3.2 e) ----------------------------------------------------------------------------------------


def _improvement(uow: UnitOfWork, period: Period, history: RunHistory, now: datetime) -> _Draft:
    ideas: list[str] = []
    for dataset, results in _dataset_results(uow, period).items():
        failures = sum(x.verdict == "failed" for x in results)
        if failures >= RECURRING_FAILURES:
            ideas.append(
                f"Dataset {dataset} failed {failures} checks in the period: find the common cause upstream."
            )
    for label, count in sorted(always_passing(uow, period).items()):
        ideas.append(f"Expectation {label} passed all {count} checks in the period: consider tightening it.")
    systems = Counter(i.system for i in uow.incidents.find() if i.detected_at in period)
    for system, count in sorted(systems.items()):
        if count >= 2:
            ideas.append(f"AI system {system} had {count} incidents in the period: review its controls.")
    expired = sum(
        a.status == "expired" for a in uow.approvals.find(status="expired") if a.requested_at in period
    )
    if expired:
        ideas.append(f"{_n(expired, 'approval')} expired undecided: review approver capacity or the SLA.")
    overdue = sum(a.due < now.date() for a in uow.corrective_actions.find(status="open"))
    overdue += sum(a.due < now.date() for a in uow.review_actions.find(status="open"))
    if overdue:
        ideas.append(f"{_n(overdue, 'corrective or review action')} overdue: check owners' capacity.")
    failed = Counter(run.flow_name for run in history.runs if run.state in FAILED_RUN_STATES)
    for flow, count in sorted(failed.items()):
        ideas.append(f"Flow {flow} failed {_n(count, 'time')}: look at its runs in the Prefect UI.")
    draft = _draft(
        f"{_n(len(ideas), 'opportunity', 'opportunities')} drawn from the evidence."
        if ideas
        else "The evidence points to no recurring problem; attendees may still raise opportunities.",
        opportunities=len(ideas),
    )
    draft.findings.extend(ideas)
    return draft


def always_passing(uow: UnitOfWork, period: Period) -> dict[str, int]:
    """'<expectation> on <dataset>' → checks in the period, for those that never failed in ≥ ALWAYS_PASSES."""
    outcomes: dict[str, list[bool]] = defaultdict(list)
    for dataset, results in _dataset_results(uow, period).items():
        for result in results:
            if result.verdict == "baseline":
                continue
            for e in result.expectations:
                outcomes[f"{e.get('expectation', '?')} on {dataset}"].append(bool(e.get("success")))
    return {label: len(seen) for label, seen in outcomes.items() if len(seen) >= ALWAYS_PASSES and all(seen)}
