"""Rewrites of the audit log by someone who can write the database but does not hold the audit key.

The attack found on main (issue 20): change a system's risk tier and owner, re-chain the log from
the altered entry on with the hash the code uses, move the head row along: `aims audit verify`
answered OK, since nothing it compared with lived outside the database. Now entries are HMACs with
a key kept outside it, and the head is anchored outside it (tests/…/test_audit_anchors.py).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy import select, text, update

from connectors.register import audit
from connectors.register.audit import GENESIS, entry_hash
from connectors.register.store import Register
from connectors.register.tables import audit_head, audit_log
from schemas import records as r
from schemas.trail import AuditEntry, EvidenceRecord
from tests.records import sample

AUDIT_KEY = SecretStr("test-audit-key-0123456789abcdef0123456789")


@pytest.fixture
def keyed(register: Register) -> Register:
    """The register with the installation's audit key, as `open_register` gives it to every process."""
    register.audit_key = AUDIT_KEY
    return register


def populate(register: Register) -> None:
    with register.unit_of_work("flow:onboard-model/run-1") as uow:
        uow.systems.add(sample(r.AISystem))
    with register.unit_of_work("cli:ana") as uow:
        uow.systems.update("credit-scoring", owner="model-risk")
        uow.evidence.add(sample(EvidenceRecord))


def keyless_hash(row: dict[str, Any]) -> str:
    """The best hash a forger without the key has: whatever plain hash the code offers for the row."""
    text_hash: Callable[[dict[str, Any], None], str] | None = getattr(audit, "text_entry_hash", None)
    if row.get("encoding") == "jcs" and text_hash is not None:
        return text_hash(row, None)
    return entry_hash({k: row[k] for k in AuditEntry.model_fields})


def rewrite_system(register: Register, **changes: str) -> int:
    """Change the system in its table and in its newest audit entry, re-chain every later entry,
    move the head row: the whole attack, done in SQL. Returns the seq of the rewritten entry."""
    with register.engine.connect() as conn, conn.begin():
        rows = [dict(row) for row in conn.execute(select(audit_log).order_by(audit_log.c.seq)).mappings()]
        victim = max(row["seq"] for row in rows if row["entity"] == "ai_system")
        sets = ", ".join(f"{name} = :{name}" for name in changes)
        conn.execute(text(f"UPDATE ai_system SET {sets} WHERE name = 'credit-scoring'"), changes)
        prev = GENESIS
        for row in rows:
            if row["seq"] == victim:
                if row.get("after_text") is not None:
                    row["after_text"] = audit.jcs({**json.loads(row["after_text"]), **changes})
                else:
                    row["after"] = {**row["after"], **changes}
            if row["seq"] >= victim:
                row["prev_hash"] = prev
                row["hash"] = keyless_hash(row)
                values = {k: v for k, v in row.items() if k != "seq"}
                conn.execute(update(audit_log).where(audit_log.c.seq == row["seq"]).values(**values))
            prev = row["hash"]
        conn.execute(update(audit_head).values(seq=rows[-1]["seq"], hash=prev))
    return victim


def test_a_rewritten_risk_tier_and_owner_rechained_with_the_head_fails_verification(keyed: Register) -> None:
    # Test fails before the fix: the re-chained log verified OK.
    populate(keyed)
    assert keyed.verify_audit().ok
    seq = rewrite_system(keyed, risk_tier="minimal", owner="cli:mallory")
    report = keyed.verify_audit()
    assert not report.ok
    assert report.problem is not None and report.problem.seq == seq and report.problem.kind == "altered"


def forge_newest(register: Register, *, rewrite_head: bool) -> int:
    """Blame the newest entry on someone else, recompute its hash; optionally move the head row along."""
    with register.engine.connect() as conn:
        newest = dict(
            conn.execute(select(audit_log).order_by(audit_log.c.seq.desc()).limit(1)).mappings().one()
        )
    forged = {**newest, "actor": "cli:mallory"}
    forged["hash"] = keyless_hash(forged)
    with register.engine.connect() as conn, conn.begin():
        conn.execute(
            text("UPDATE audit_log SET actor = :actor, hash = :hash WHERE seq = :seq"),
            {"actor": forged["actor"], "hash": forged["hash"], "seq": newest["seq"]},
        )
        if rewrite_head:
            conn.execute(text("UPDATE audit_head SET hash = :hash WHERE id = 1"), {"hash": forged["hash"]})
    return int(newest["seq"])


def test_a_forged_newest_entry_with_its_hash_recomputed_is_caught_by_the_head(register: Register) -> None:
    # Without a key (a log not keyed yet), the head row still catches a forged newest entry.
    populate(register)
    seq = forge_newest(register, rewrite_head=False)
    report = register.verify_audit()
    assert report.problem is not None and (report.problem.seq, report.problem.kind) == (seq, "altered")
    assert "head" in report.problem.detail


def test_a_forged_newest_entry_and_head_are_caught_by_the_key(keyed: Register) -> None:
    # Was xfail(strict): with the head row rewritten too, nothing in the database gave it away.
    populate(keyed)
    assert keyed.verify_audit().ok
    seq = forge_newest(keyed, rewrite_head=True)
    report = keyed.verify_audit()
    assert report.problem is not None and (report.problem.seq, report.problem.kind) == (seq, "altered")
