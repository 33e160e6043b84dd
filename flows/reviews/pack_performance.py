"""The pack's sections for 9.3.2 d) 1 and 2 (nonconformities, data quality, risks) and 9.3.2 e), the
opportunities for improvement. Pure: no Prefect, no Kafka.
"""

from __future__ import annotations

import itertools
from collections import Counter, defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from schemas.payloads import RiskLevel
from schemas.review_pack import (
    HeatMap,
    Series,
    Table,
    TrendChart,
)

if TYPE_CHECKING:
    from connectors.register.store import UnitOfWork
    from schemas import records as r
    from schemas.policy import Policy
from flows.reviews.pack_common import (
    ALWAYS_PASSES,
    FAILED_RUN_STATES,
    RECURRING_FAILURES,
    Draft,
    Period,
    RunHistory,
    count_of,
    month_end,
    month_of,
    new_draft,
    per_month,
)

# -- 9.3.2 d) 1: nonconformities and corrective actions ---------------------------------------------


def nonconformities_section(uow: UnitOfWork, period: Period, now: datetime) -> Draft:
    ncs = uow.nonconformities.find(order_by="opened_at")
    actions = uow.corrective_actions.find(order_by="due")
    opened = [n for n in ncs if n.opened_at in period]
    closed = [n for n in ncs if n.closed_at in period]
    still_open = [n for n in ncs if n.status != "closed"]
    open_actions = [a for a in actions if a.status == "open"]
    overdue = [a for a in open_actions if a.due < now.date()]
    verified = [a for a in actions if a.verified_at in period]
    by_source = Counter(n.source for n in opened)
    draft = new_draft(
        f"{count_of(len(opened), 'nonconformity', 'nonconformities')} opened and {len(closed)} closed "
        "in the period; "
        f"{count_of(len(open_actions), 'corrective action')} open, {len(overdue)} overdue.",
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


def data_quality_section(uow: UnitOfWork, period: Period) -> Draft:
    per_dataset = _dataset_results(uow, period)
    results = [x for rs in per_dataset.values() for x in rs]
    judged = [x for x in results if x.verdict != "baseline"]
    drifts = [x for x in results if drifted_columns(x)]
    verdicts = Counter(x.verdict for x in judged)
    rate = pass_rate(results)
    draft = new_draft(
        f"{count_of(len(judged), 'data-quality check')} in the period, "
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


def heat_map(policy: Policy, risks: Sequence[r.Risk]) -> HeatMap:
    """`risks` counted by likelihood and impact on the policy's scales (the pack's and the dashboard's)."""
    criteria = policy.risk
    rows = range(len(criteria.likelihood), 0, -1)
    columns = range(1, len(criteria.impact) + 1)
    cells = Counter((x.likelihood, x.impact) for x in risks)
    return HeatMap(
        title="Open risks by likelihood and impact (inherent)",
        likelihood_labels=[criteria.likelihood[i - 1].name for i in rows],
        impact_labels=[criteria.impact[j - 1].name for j in columns],
        counts=[[cells.get((i, j), 0) for j in columns] for i in rows],
        levels=[[criteria.level_for(i, j).value for j in columns] for i in rows],
    )


def risks_section(uow: UnitOfWork, policy: Policy, period: Period) -> Draft:
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
    draft = new_draft(
        f"{count_of(len(risks), 'open risk')}, "
        f"{levels.get(RiskLevel.high, 0) + levels.get(RiskLevel.critical, 0)} "
        f"at high or critical residual level; {raised} raised and {lowered} lowered in the period.",
        open_risks=len(risks),
        **{f"residual_{level.value}": levels.get(level, 0) for level in RiskLevel},
        raised=raised,
        lowered=lowered,
        assessments=len(assessments),
    )
    draft.charts.append(heat_map(policy, risks))
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


# -- 9.3.2 e) ----------------------------------------------------------------------------------------


def improvement_section(uow: UnitOfWork, period: Period, history: RunHistory, now: datetime) -> Draft:
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
        ideas.append(
            f"{count_of(expired, 'approval')} expired undecided: review approver capacity or the SLA."
        )
    overdue = sum(a.due < now.date() for a in uow.corrective_actions.find(status="open"))
    overdue += sum(a.due < now.date() for a in uow.review_actions.find(status="open"))
    if overdue:
        ideas.append(f"{count_of(overdue, 'corrective or review action')} overdue: check owners' capacity.")
    failed = Counter(run.flow_name for run in history.runs if run.state in FAILED_RUN_STATES)
    for flow, count in sorted(failed.items()):
        ideas.append(f"Flow {flow} failed {count_of(count, 'time')}: look at its runs in the Prefect UI.")
    draft = new_draft(
        f"{count_of(len(ideas), 'opportunity', 'opportunities')} drawn from the evidence."
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
