"""Incident samples shared by the incident rule, clock and review call tests: policy, reports, records."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta

from flows.incidents.rules import State, Update, triage
from schemas.payloads import Art73Criterion, IncidentCategory, IncidentReported, IncidentUpdateKind, Severity
from schemas.policy import Policy
from schemas.records import CorrectiveAction, Incident, Nonconformity
from tests.people import AISHA, DEV, JON, LI, MARIA, TOM
from tests.resources import example_policy

POLICY = example_policy()
ART73 = POLICY.regulatory.art73
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
INC = "urn:aims:test#inc-1"
NC_ID = f"{INC}/NC"
RESPONDERS = {AISHA, TOM, LI, MARIA, JON}

C = Art73Criterion
K = IncidentUpdateKind


def with_incidents(policy: Policy, **changes: object) -> Policy:
    return policy.model_copy(update={"incidents": policy.incidents.model_copy(update=changes)})


NO_FLOOR = with_incidents(POLICY, severity_floor={})


def reported(
    category: IncidentCategory,
    severity: Severity = Severity.low,
    harms: Sequence[Art73Criterion] = (),
    detected_at: datetime = T0,
) -> IncidentReported:
    return IncidentReported(
        ai_system="credit-scoring",
        severity=severity,
        category=category,
        description="Scores shifted after the release",
        reporter="support@northwind.example",
        occurred_at=detected_at - timedelta(hours=3),
        detected_at=detected_at,
        harms=list(harms),
    )


def triaged(report: IncidentReported, policy: Policy = POLICY, **changes: object) -> Incident:
    """The incident record as triage leaves it."""
    t = triage(report, policy)
    base = Incident(
        id=INC,
        system=report.ai_system,
        title="Scores shifted after the release",
        category=report.category,
        severity=t.severity,
        occurred_at=report.occurred_at,
        detected_at=report.detected_at,
        reported_by=report.reporter,
        status="triaged",
        serious=t.serious,
        criteria=[c.value for c in t.criteria],
        reporting_due_at=t.clock.due_at if t.clock else None,
        deadline_basis=t.clock.basis if t.clock else None,
        reported_severity=report.severity,
        triaged_at=report.detected_at,
    )
    return base.model_copy(update=changes)


SERIOUS = triaged(reported(IncidentCategory.fundamental_rights, Severity.high))  # 15 days
MINOR = triaged(reported(IncidentCategory.performance, Severity.medium))


def incident(serious: bool = True, **changes: object) -> Incident:
    return (SERIOUS if serious else MINOR).model_copy(update=changes)


def nonconformity(root_cause: str = "reweighting skipped in the release pipeline") -> Nonconformity:
    return Nonconformity(
        id=NC_ID,
        source="incident",
        source_ref=INC,
        description="Scores shifted (credit-scoring)",
        root_cause=root_cause,
        opened_at=T0,
    )


def action(
    n: int = 1,
    owner: str = DEV,
    status: str = "open",
    due: date = date(2026, 4, 1),
    description: str = "Retrain with reweighted data",
) -> CorrectiveAction:
    return CorrectiveAction(
        id=f"{INC}/A{n}",
        nonconformity_id=NC_ID,
        description=description,
        owner=owner,
        due=due,
        status=status,
        done_at=T0 + timedelta(days=3) if status != "open" else None,
        effectiveness="approval rates back within 1 %" if status == "verified" else None,
        verified_by=MARIA if status == "verified" else None,
    )


def state(
    inc: Incident | None = None, nc: Nonconformity | None = None, actions: Sequence[CorrectiveAction] = ()
) -> State:
    return State(inc if inc is not None else incident(), nc, tuple(actions))


def update(
    kind: IncidentUpdateKind,
    by: str = TOM,
    detail: str = "",
    action_id: str | None = None,
    owner: str | None = None,
    due: date | None = None,
    at: datetime = T0 + timedelta(hours=5),
) -> Update:
    return Update(INC, kind, by, "slack", at, detail, action_id, owner, due)
