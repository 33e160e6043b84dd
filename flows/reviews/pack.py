"""Gather the management-review pack (9.3.2) from the register and the Prefect run history.

Every section is always built. When its data is missing the section says so in `missing`, because
a review held on thin evidence must show that it was thin rather than look complete (issue 8).
Figures are computed here once; the Markdown and HTML renderers only draw them.

This module assembles the pack; the sections are built in pack_inputs (9.3.2 a-c), pack_performance
(d 1-2: nonconformities, data quality, risks; e) and pack_operations (d 2: incidents, approvals,
operations, audit), from the parts in pack_common.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from schemas.review_pack import (
    SECTIONS,
    Attendance,
    ReviewPack,
)

if TYPE_CHECKING:
    from connectors.register.audit import AuditReport
    from connectors.register.store import UnitOfWork
    from schemas import records as r
    from schemas.policy import Policy
from flows.reviews.pack_common import Period, RunHistory, section
from flows.reviews.pack_inputs import interested_parties_section, issues_section, previous_actions_section
from flows.reviews.pack_operations import (
    approvals_section,
    audit_section,
    incidents_section,
    operations_section,
)
from flows.reviews.pack_performance import (
    data_quality_section,
    improvement_section,
    nonconformities_section,
    risks_section,
)

__all__ = ["Period", "RunHistory", "agenda", "gather", "previous_review"]


def previous_review(uow: UnitOfWork, review: r.ManagementReview) -> r.ManagementReview | None:
    """The latest other review whose pack was prepared: the period of this one starts where it ended."""
    prepared = [
        other
        for other in uow.reviews.find()
        if other.id != review.id and other.prepared_at is not None and other.period_end is not None
    ]
    return max(prepared, key=lambda other: other.period_end or other.created_at, default=None)


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
        "previous-actions": lambda: previous_actions_section(uow, review, period, now),
        "issues": lambda: issues_section(uow, policy, previous, period),
        "interested-parties": lambda: interested_parties_section(uow, period),
        "performance/nonconformities": lambda: nonconformities_section(uow, period, now),
        "performance/data-quality": lambda: data_quality_section(uow, period),
        "performance/risks": lambda: risks_section(uow, policy, period),
        "performance/incidents": lambda: incidents_section(uow, period, now),
        "performance/approvals": lambda: approvals_section(uow, period, now),
        "performance/operations": lambda: operations_section(runs),
        "performance/audit": lambda: audit_section(uow, period, audit),
    }
    sections = [section(key, clause, title, builders[key]()) for key, clause, title in SECTIONS[:-1]]
    key, clause, title = SECTIONS[-1]
    sections.append(section(key, clause, title, improvement_section(uow, period, runs, now)))
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
