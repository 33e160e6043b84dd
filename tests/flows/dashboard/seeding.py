"""A register for the dashboard tests: the review pack's random seeding, plus approvals with SLAs,
running and overdue Art. 73 clocks, refused work and (on request) hostile text.

Not a test module: the gather, render and browser tests share it.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

from connectors.register.store import Register
from flows.dashboard.build import build
from flows.reviews.pack_common import RunHistory
from schemas import records as r
from schemas.dashboard import Dashboard
from schemas.payloads import IncidentCategory, RiskLevel, Severity
from tests.flows.reviews.seeding import seed_register
from tests.resources import example_policy, migrated_register

NOW = datetime.now(UTC).replace(microsecond=0)
# Text a producer or a person could have put in the register: markup, a terminal escape (clear the
# screen, red), a right-to-left override that would show "exe.txt" as "txt.exe", and a line break.
HOSTILE = (
    '<script>alert(1)</script><img src="https://evil.example/x.png">\x1b[2J\x1b[31mred\u202eexe.txt\nforged'
)


def seed_dashboard(reg: Register, rng: random.Random, text: str = "") -> None:
    """The pack's seeding, then one approval in each SLA state, clocks, and refused attempts."""
    seed_register(reg, rng)
    sla = example_policy().slas[RiskLevel.high].decision_hours
    with reg.unit_of_work("test") as uow:
        for name, share in (("within", 0.2), ("due-soon", 0.8), ("overdue", 1.5)):
            uow.approvals.add(
                r.Approval(
                    id=f"sla-{name}",
                    subject=f"{text}model {name}",
                    system="system-0",
                    requested_decision="go-live",
                    risk_level=RiskLevel.high,
                    approver_group="model-risk",
                    requested_by="ml",
                    requested_at=NOW - timedelta(hours=sla * share),
                )
            )
        for name, days_left in (("running", 5), ("late", -1)):
            uow.incidents.add(
                r.Incident(
                    id=f"clock-{name}",
                    system="system-0",
                    title=f"{text}incident {name}",
                    category=IncidentCategory.other,
                    severity=Severity.high,
                    occurred_at=NOW - timedelta(days=10),
                    detected_at=NOW - timedelta(days=10),
                    reported_by="support",
                    status="triaged",
                    serious=True,
                    reporting_due_at=NOW + timedelta(days=days_left),
                )
            )
        uow.risks.add(
            r.Risk(
                id="risk-hot",
                system="system-0",
                category="fairness",
                title=f"{text}hot risk",
                owner="aisha",
                likelihood=5,
                impact=5,
                inherent_level=example_policy().risk.level_for(5, 5),
                residual_level=RiskLevel.critical,
            )
        )
        uow.decisions.add(
            r.ApprovalDecision(
                approval_id="sla-within",
                decided_by=f"{text}mallory",
                channel="slack",
                decision="approve",
                accepted=False,
                refusal=f"{text}not an approver",
                decided_at=NOW - timedelta(hours=1),
            )
        )
        uow.incident_updates.add(
            r.IncidentUpdate(
                id="refused-1",
                incident_id="clock-running",
                kind="close",
                by="tom",
                channel="cli",
                accepted=False,
                refusal="not contained",
                at=NOW - timedelta(hours=2),
            )
        )


def seeded_dashboard(
    state: Path, seed: int, text: str = "", prefect: RunHistory | None = None
) -> tuple[Register, Dashboard]:
    reg = migrated_register(state)
    seed_dashboard(reg, random.Random(seed), text)
    return reg, build(reg, example_policy(), NOW, prefect)
