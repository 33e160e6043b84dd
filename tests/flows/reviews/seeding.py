"""A register seeded at random (one seed per case) and the review pack gathered from it.

Not a test module: the pack, render and browser tests share it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import text

from connectors.prefect_api import FlowRunView
from connectors.register.store import Register
from flows.reviews.pack import Period, RunHistory, gather
from schemas import records as r
from schemas.payloads import IncidentCategory, RiskLevel, Severity
from schemas.review_pack import Attendance, ReviewPack
from tests.resources import example_policy

NOW = datetime.now(UTC).replace(microsecond=0)
START = NOW - timedelta(days=92)
END = NOW + timedelta(hours=1)  # the audit log stamps the seeding's own writes with the real time
THIS = "scheduled:this"
PREVIOUS = "scheduled:previous"


def _sql_time(moment: datetime) -> str:
    # How the register keeps times on SQLite: naive UTC, microseconds always written.
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


@dataclass
class Seeded:
    register: Register
    runs: list[FlowRunView]

    def one(self, sql: str, **params: Any) -> Any:
        bound = {k: _sql_time(v) if isinstance(v, datetime) else v for k, v in params.items()}
        with self.register.engine.connect() as conn:
            return conn.execute(
                text(sql), {"start": _sql_time(START), "end": _sql_time(END), **bound}
            ).scalar()

    def column(self, sql: str) -> list[Any]:
        with self.register.engine.connect() as conn:
            params = {"start": _sql_time(START), "end": _sql_time(END), "today": NOW.date().isoformat()}
            return [row[0] for row in conn.execute(text(sql), params)]


def _when(rng: random.Random, inside: bool) -> datetime:
    if inside:
        return START + timedelta(seconds=rng.randrange(int((NOW - START).total_seconds())))
    return START - timedelta(days=rng.randrange(1, 200))


def seed_register(reg: Register, rng: random.Random) -> None:
    old_policy = example_policy().model_dump(mode="json")
    old_policy["management_review"] = {**old_policy["management_review"], "lead_time_days": 21}
    old_policy["risk"] = {**old_policy["risk"], "appetite": "medium"}
    with reg.unit_of_work("test") as uow:
        uow.reviews.add(
            r.ManagementReview(
                id=PREVIOUS,
                period_start=START - timedelta(days=90),
                period_end=START,
                meeting_at=START + timedelta(days=14),
                status="closed",
                policy=old_policy,
                prepared_at=START,
                created_at=START - timedelta(days=1),
            )
        )
        uow.reviews.add(r.ManagementReview(id=THIS, meeting_at=NOW + timedelta(days=14), created_at=NOW))
        for n in range(rng.randrange(3, 9)):
            status = rng.choice(["open", "open", "done", "dropped"])
            closed = _when(rng, rng.random() < 0.7) if status != "open" else None
            uow.review_actions.add(
                r.ReviewAction(
                    id=f"{PREVIOUS}/A{n + 1}",
                    review_id=PREVIOUS,
                    description=f"action {n}",
                    owner="aisha.khan@northwind.example",
                    due=NOW.date() + timedelta(days=rng.randrange(-40, 40)),
                    status=status,
                    closed_at=closed,
                )
            )
        for n in range(rng.randrange(4, 10)):
            uow.systems.add(
                r.AISystem(
                    name=f"system-{n}",
                    owner="ml",
                    intended_use="x",
                    risk_tier=rng.choice([None, "minimal", "limited", "high"]),
                    created_at=_when(rng, rng.random() < 0.5),
                )
            )
        for n in range(rng.randrange(0, 6)):
            uow.party_needs.add(
                r.InterestedPartyNeed(
                    party=f"party {n}",
                    need="more transparency",
                    change=rng.choice(["new", "changed", "withdrawn"]),
                    recorded_by="maria",
                    recorded_at=_when(rng, rng.random() < 0.6),
                )
            )
        for n in range(rng.randrange(2, 10)):
            opened = _when(rng, rng.random() < 0.7)
            closed_nc = opened + timedelta(days=rng.randrange(1, 30)) if rng.random() < 0.4 else None
            uow.nonconformities.add(
                r.Nonconformity(
                    id=f"nc-{n}",
                    source=rng.choice(["incident", "data-quality", "audit"]),
                    source_ref=f"ref-{n}",
                    description=f"finding {n}",
                    status="closed" if closed_nc else "open",
                    opened_at=opened,
                    closed_at=closed_nc if closed_nc and closed_nc < NOW else None,
                )
            )
            for m in range(rng.randrange(0, 3)):
                verified = _when(rng, rng.random() < 0.6) if rng.random() < 0.5 else None
                uow.corrective_actions.add(
                    r.CorrectiveAction(
                        id=f"nc-{n}/A{m}",
                        nonconformity_id=f"nc-{n}",
                        description="fix",
                        owner="tom",
                        due=NOW.date() + timedelta(days=rng.randrange(-20, 20)),
                        status="verified" if verified else rng.choice(["open", "done"]),
                        verified_at=verified,
                    )
                )
        for d in range(rng.randrange(1, 4)):
            uow.datasets.add(r.Dataset(name=f"data-{d}"))
            for v in range(rng.randrange(1, 8)):
                uow.dataset_versions.add(
                    r.DatasetVersion(id=f"data-{d}@{v}", dataset=f"data-{d}", version=str(v), location={})
                )
                checked = _when(rng, rng.random() < 0.75)
                column_drift = rng.choice(["none", "none", "warning", "critical"])
                uow.data_quality.add(
                    r.DataQualityResult(
                        id=f"dq-{d}-{v}",
                        dataset_version_id=f"data-{d}@{v}",
                        suite_name=f"data-{d}",
                        suite_version="1",
                        verdict="baseline"
                        if v == 0
                        else rng.choice(["passed", "passed", "failed", "warning"]),
                        drift={"amount": {"level": column_drift}} if v else {},
                        expectations=[{"expectation": "not null: id", "success": True}],
                        checked_at=checked,
                    )
                )
        for n in range(rng.randrange(1, 8)):
            likelihood, impact = rng.randrange(1, 6), rng.randrange(1, 6)
            level = example_policy().risk.level_for(likelihood, impact)
            uow.risks.add(
                r.Risk(
                    id=f"risk-{n}",
                    system="system-0",
                    category="fairness",
                    title=f"risk {n}",
                    owner="aisha",
                    status=rng.choice(["open", "treated", "closed"]),
                    likelihood=likelihood,
                    impact=impact,
                    inherent_level=level,
                    residual_level=rng.choice(list(RiskLevel)),
                )
            )
            for v in range(1, rng.randrange(2, 5)):
                uow.risk_versions.add(
                    r.RiskVersion(
                        id=f"risk-{n}@{v}",
                        risk_id=f"risk-{n}",
                        version=v,
                        likelihood=likelihood,
                        impact=impact,
                        inherent_level=level,
                        residual_level=rng.choice(list(RiskLevel)),
                        assessed_by="flow",
                        assessed_at=START
                        - timedelta(days=30)
                        + timedelta(days=30 * v + rng.randrange(0, 20)),
                    )
                )
        for n in range(rng.randrange(0, 8)):
            detected = _when(rng, rng.random() < 0.8)
            serious = rng.random() < 0.5
            due = detected + timedelta(days=rng.choice([2, 10, 15])) if serious else None
            reported = None
            if due is not None and rng.random() < 0.6:
                reported = due + timedelta(days=rng.choice([-1, 1]))
            uow.incidents.add(
                r.Incident(
                    id=f"inc-{n}",
                    system=rng.choice(["system-0", "system-1"]),
                    title=f"incident {n}",
                    category=IncidentCategory.other,
                    severity=rng.choice(list(Severity)),
                    occurred_at=detected,
                    detected_at=detected,
                    reported_by="support",
                    status=rng.choice(["triaged", "closed"]),
                    serious=serious,
                    reporting_due_at=due,
                    reported_to_authority_at=reported,
                )
            )
        for n in range(rng.randrange(0, 10)):
            requested = _when(rng, rng.random() < 0.8)
            status = rng.choice(["pending", "approved", "rejected", "expired"])
            decided = (
                requested + timedelta(hours=rng.randrange(1, 200))
                if status in ("approved", "rejected")
                else None
            )
            uow.approvals.add(
                r.Approval(
                    id=f"ap-{n}",
                    subject=f"model {n}",
                    requested_decision="go-live",
                    approver_group="model-risk",
                    status=status,
                    requested_by="ml",
                    requested_at=requested,
                    decided_at=decided,
                    escalated_to=["claire.dubois@northwind.example"] if rng.random() < 0.3 else [],
                )
            )
    with reg.unit_of_work("test") as uow:
        # Changes the audit log stamps now: a tier change and a retirement inside the period.
        uow.systems.update(
            "system-0", risk_tier="high" if uow.systems.one("system-0").risk_tier != "high" else "limited"
        )
        if rng.random() < 0.7:
            uow.systems.update("system-1", lifecycle_stage="retired")


def run_history(rng: random.Random) -> list[FlowRunView]:
    flows = ["check-data-quality", "reassess-risk", "handle-incident"]
    states = ["Completed", "Completed", "Failed", "Crashed", "Cancelled"]
    return [
        FlowRunView(
            id=f"run-{n}",
            name=f"run-{n}",
            flow_name=rng.choice(flows),
            state=rng.choice(states),
            idempotency_key=None,
            parameters={},
            created=NOW.isoformat(),
            start_time=NOW.isoformat(),
        )
        for n in range(rng.randrange(0, 12))
    ]


def gather_pack(seeded: Seeded, runs: RunHistory | None = None) -> ReviewPack:
    reg = seeded.register
    with reg.reader() as uow:
        review = uow.reviews.one(THIS)
        return gather(
            uow,
            example_policy(),
            review,
            period=Period(START, END),
            meeting_at=NOW + timedelta(days=14),
            now=NOW,
            runs=runs or RunHistory(runs=seeded.runs),
            audit=reg.verify_audit(),
        )


def bare_pack(review_id: str = "r", sections: list[Any] | None = None, **changes: Any) -> ReviewPack:
    """A pack with one attendee and the given sections, nothing gathered: for what a writer or a
    renderer does with it."""
    now = datetime(2027, 1, 1, tzinfo=UTC)
    pack = ReviewPack(
        review_id=review_id,
        kind="scheduled",
        reason="",
        period_start=now - timedelta(days=90),
        period_end=now,
        meeting_at=now,
        generated_at=now,
        attendees=[Attendance(name="A", email="a@example.com", role="chair")],
        agenda=["x"],
        sections=sections or [],
    )
    return pack.model_copy(update=changes)
