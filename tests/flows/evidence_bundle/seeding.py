"""A keyed register seeded as the review pack's tests seed it, plus evidence records, decisions
(refused ones too) and incident updates, some inside the period and some outside; and a bundle of it.

Not a test module: the bundle, archive, browser and CLI tests share it.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

from connectors.register import open_register
from connectors.register.audit import AuditReport
from connectors.register.keys import audit_key_path, ensure_key
from connectors.register.store import Register
from flows.evidence_bundle.gather import Bundle, Scope, audit_section, gather
from schemas import records as r
from schemas.catalogue import load_catalogue
from schemas.settings import AimsSettings
from schemas.trail import EvidenceRecord
from tests.flows.reviews.seeding import NOW, START, seed_register

FLOWS = ("check-data-quality", "reassess-risk", "handle-incident", "request-approval", "onboard-model")
# Text from people and events, as an attacker would write it: it must stay text in the index.
HOSTILE = '<img src="https://evil.example/x.png"><script>alert(1)</script>'


def keyed_register(state: Path) -> Register:
    ensure_key(audit_key_path(state))
    register = open_register(AimsSettings(state_dir=state))
    assert register.audit_key is not None
    return register


def moment(rng: random.Random, inside: bool) -> datetime:
    if inside:
        return START + timedelta(seconds=rng.randrange(int((NOW - START).total_seconds())))
    return START - timedelta(days=rng.randrange(1, 200))


def seed(register: Register, rng: random.Random) -> None:
    seed_register(register, rng)
    catalogue = load_catalogue()
    with register.unit_of_work("test") as uow:
        for n in range(rng.randrange(5, 25)):
            flow = rng.choice(FLOWS)
            controls = list(catalogue.ids_for(flow)[1])
            uow.evidence.add(
                EvidenceRecord(
                    event_key=f"test#ev-{n}",
                    flow=flow,
                    event_type="org.aims.test",
                    subject=HOSTILE if n == 0 else f"system-{n % 3}",
                    flow_run_id=f"run-{n}" if rng.random() < 0.8 else None,
                    recorded_at=moment(rng, rng.random() < 0.7),
                    controls=rng.sample(controls, k=min(len(controls), 2)),
                    outcome={"verdict": rng.choice(["passed", "failed"]), "note": HOSTILE},
                    event={"id": f"ev-{n}"},
                )
            )
        for approval in uow.approvals.find():
            for k in range(rng.randrange(0, 4)):
                uow.decisions.add(
                    r.ApprovalDecision(
                        approval_id=approval.id,
                        decided_by=f"person-{k}@northwind.example",
                        channel=rng.choice(["slack", "jira", "cli"]),
                        decision=rng.choice(["approve", "reject"]),
                        reason=HOSTILE if k == 0 else "ok",
                        accepted=k != 1,
                        refusal="not an approver" if k == 1 else None,
                        decided_at=approval.requested_at + timedelta(hours=rng.randrange(1, 400)),
                    )
                )
        for incident in uow.incidents.find():
            for k in range(rng.randrange(0, 3)):
                uow.incident_updates.add(
                    r.IncidentUpdate(
                        id=f"{incident.id}:u{k}",
                        incident_id=incident.id,
                        kind="contain",
                        by="ana@northwind.example",
                        channel="cli",
                        detail=HOSTILE,
                        accepted=k != 1,
                        refusal="not the owner" if k == 1 else None,
                        at=incident.detected_at + timedelta(hours=rng.randrange(1, 800)),
                    )
                )


def seeded(state: Path, rng: random.Random) -> Register:
    register = keyed_register(state)
    seed(register, rng)
    return register


def bundle_of(register: Register, scope: Scope, now: datetime | None = None) -> tuple[Bundle, AuditReport]:
    report = register.verify_audit()
    with register.reader() as uow:
        bundle = gather(
            uow,
            load_catalogue(),
            scope,
            now=now or datetime.now(UTC).replace(microsecond=0),
            organisation="Northwind <Bank>",
            audit=audit_section(report, [], "the anchors topic was not read (--no-anchors)"),
        )
    return bundle, report
