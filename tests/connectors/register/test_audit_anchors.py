"""The audit log against its key and its anchors: rewrites, truncation, downgrades, the migration.

A forger who can write the database but lacks the key can still (1) cut entries off the end and move
the head back, or (2) turn the keyed entries into plain ones (clear `keyed_from`, re-chain with
SHA-256). Only the anchors published outside the register catch those; these tests give the anchors
directly (tests/integration reads them back from Kafka).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy import select, text, update

from connectors.register.anchors import Anchor, AnchorSet, open_anchor
from connectors.register.audit import GENESIS, entry_hash, jcs, text_entry_hash
from connectors.register.store import Register, RegisterError
from connectors.register.tables import audit_head, audit_log
from events.anchors import AnchorPublisher
from schemas import records as r
from schemas.trail import AuditEntry
from tests.connectors.register.legacy_audit import append_legacy_audit
from tests.records import sample

KEY = SecretStr("test-audit-key-0123456789abcdef0123456789")


@pytest.fixture
def keyed(register: Register) -> Register:
    register.audit_key = KEY
    return register


def write(register: Register, updates: int) -> None:
    with register.unit_of_work("flow:onboard-model/run-1") as uow:
        if uow.systems.get("credit-scoring") is None:
            uow.systems.add(sample(r.AISystem))
        for i in range(updates):
            uow.systems.update("credit-scoring", owner=f"owner-{uow.audit_entries()[-1].seq}-{i}")


def anchor_now(register: Register) -> Anchor:
    head = register.audit_head()
    assert head is not None
    return Anchor(seq=head.seq, head=head.hash, keyed_from=head.keyed_from, at=f"t{head.seq}")


def rows(register: Register) -> list[dict[str, Any]]:
    with register.engine.connect() as conn:
        return [dict(row) for row in conn.execute(select(audit_log).order_by(audit_log.c.seq)).mappings()]


def downgrade_and_rewrite(register: Register, from_seq: int, owner: str, key: bytes | None = None) -> None:
    """Clear keyed_from and re-chain every entry with plain SHA-256, rewriting the owner from `from_seq`.

    With `key` (a leaked key), re-chain with it instead and leave keyed_from alone."""
    entries = rows(register)
    keyed_from = entries[0]["seq"] if key is not None else None
    with register.engine.connect() as conn, conn.begin():
        prev = GENESIS
        for row in entries:
            if row["seq"] >= from_seq and row["entity"] == "ai_system" and row["after_text"]:
                row["after_text"] = jcs({**json.loads(row["after_text"]), "owner": owner})
            row["prev_hash"], row["hash"] = prev, text_entry_hash({**row, "prev_hash": prev}, key)
            values = {k: v for k, v in row.items() if k != "seq"}
            conn.execute(update(audit_log).where(audit_log.c.seq == row["seq"]).values(**values))
            prev = row["hash"]
        conn.execute(update(audit_head).values(seq=entries[-1]["seq"], hash=prev, keyed_from=keyed_from))
        conn.execute(text("UPDATE ai_system SET owner = :o"), {"o": owner})


def test_a_downgraded_rewrite_passes_the_key_alone_but_not_the_anchors(keyed: Register) -> None:
    write(keyed, 1)
    first = anchor_now(keyed)  # entry 2, published by a router
    write(keyed, 2)
    assert keyed.verify_audit(AnchorSet.of([first])).ok
    downgrade_and_rewrite(keyed, from_seq=3, owner="mallory")
    # Nothing in the database gives it away any more: every entry is a valid plain one.
    assert keyed.verify_audit().ok
    report = keyed.verify_audit(AnchorSet.of([first]))
    # Every keyed entry had to be re-hashed, the anchored one too: suspect from the start.
    assert report.problem is not None and (report.problem.seq, report.problem.kind) == (1, "rewritten")
    assert report.last_good_anchor is None


def test_with_a_leaked_key_the_anchors_still_name_the_first_entry_after_the_last_good_one(
    keyed: Register,
) -> None:
    write(keyed, 1)
    first = anchor_now(keyed)  # entry 2
    write(keyed, 2)
    second = anchor_now(keyed)  # entry 4
    write(keyed, 1)
    assert keyed.verify_audit(AnchorSet.of([first, second])).ok
    downgrade_and_rewrite(keyed, from_seq=4, owner="mallory", key=KEY.get_secret_value().encode())
    assert keyed.verify_audit().ok  # valid HMACs: the key alone cannot tell
    report = keyed.verify_audit(AnchorSet.of([first, second]))
    # Entry 2 still matches its anchor; entry 4 does not: the first suspect entry is 3.
    assert report.problem is not None and (report.problem.seq, report.problem.kind) == (3, "rewritten")
    assert report.last_good_anchor == 2


def test_a_cleared_keyed_from_is_caught_even_where_the_hashes_were_left(keyed: Register) -> None:
    write(keyed, 2)
    anchor = anchor_now(keyed)
    downgrade_and_rewrite(keyed, from_seq=99, owner="model-risk")  # re-chained, nothing else changed
    report = keyed.verify_audit(AnchorSet.of([anchor]))
    assert report.problem is not None and report.problem.kind in {"rewritten", "downgraded"}


def test_entries_cut_off_the_end_with_the_head_moved_back_are_caught_by_an_anchor(keyed: Register) -> None:
    write(keyed, 1)
    early = anchor_now(keyed)
    write(keyed, 3)
    late = anchor_now(keyed)
    entries = rows(keyed)
    keep = entries[2]  # entry 3: valid HMAC, the forger only deletes
    with keyed.engine.connect() as conn, conn.begin():
        conn.execute(text("DELETE FROM audit_log WHERE seq > 3"))
        conn.execute(update(audit_head).values(seq=3, hash=keep["hash"]))
        conn.execute(text("UPDATE ai_system SET owner = :o"), {"o": json.loads(keep["after_text"])["owner"]})
    assert keyed.verify_audit().ok  # the key alone cannot tell
    report = keyed.verify_audit(AnchorSet.of([early, late]))
    assert report.problem is not None and report.problem.kind == "truncated"
    assert report.problem.seq == early.seq + 1 and str(late.seq) in report.problem.detail


def test_a_log_keyed_from_an_entry_refuses_unkeyed_writers_and_unkeyed_verifiers(keyed: Register) -> None:
    write(keyed, 1)
    assert keyed.audit_head() is not None and keyed.audit_head().keyed_from == 1  # type: ignore[union-attr]
    keyed.audit_key = None
    with pytest.raises(RegisterError, match="AIMS_AUDIT_KEY"):
        write(keyed, 1)
    problem = keyed.verify_audit().problem
    assert problem is not None and problem.kind == "unkeyed"
    keyed.audit_key = SecretStr("another-key-of-at-least-32-characters!!")
    problem = keyed.verify_audit().problem
    assert problem is not None and (problem.seq, problem.kind) == (1, "altered")


def test_anchors_are_tagged_with_the_key() -> None:
    anchor = Anchor(seq=7, head="ab" * 32, keyed_from=1, at="2026-12-05T07:00:00+00:00")
    key = KEY.get_secret_value().encode()
    assert open_anchor(anchor.seal(key), key) == anchor
    assert open_anchor(anchor.seal(b"x" * 32), key) is None
    forged = json.loads(anchor.seal(key))
    forged["seq"] = 6
    assert open_anchor(json.dumps(forged).encode(), key) is None
    assert open_anchor(b"not json", key) is None


class FakeProducer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, bytes]] = []

    def send(self, topic: str, key: bytes, value: bytes) -> FakeProducer:
        self.sent.append((topic, key, value))
        return self

    def get(self, timeout: float) -> None:
        return None


def test_the_publisher_anchors_a_moved_head_when_due_and_never_a_broken_log(keyed: Register) -> None:
    now = [0.0]
    producer = FakeProducer()
    publisher = AnchorPublisher(keyed, producer, "anchors", KEY, every=60, clock=lambda: now[0])
    assert publisher.tick() is None  # an empty log: nothing to anchor
    write(keyed, 1)
    now[0] = 61
    anchor = publisher.tick()
    assert anchor is not None and anchor.seq == 2 and anchor.keyed_from == 1
    assert open_anchor(producer.sent[-1][2], KEY.get_secret_value().encode()) == anchor
    write(keyed, 1)
    assert publisher.tick() is None  # not due yet
    now[0] = 200
    assert publisher.tick() is not None and len(producer.sent) == 2
    now[0] = 300
    assert publisher.tick() is None  # the head did not move
    write(keyed, 1)
    with keyed.engine.connect() as conn, conn.begin():
        conn.execute(text("UPDATE audit_log SET actor = 'mallory' WHERE seq = 4"))
    now[0] = 400
    assert publisher.tick() is None and len(producer.sent) == 2


def test_a_legacy_log_verifies_after_the_migration_and_is_sealed_by_the_first_keyed_entry(
    blank: Register,
) -> None:
    blank.migrate("0010")
    system = sample(r.AISystem)
    with blank.engine.connect() as conn, conn.begin():
        conn.execute(
            text(
                "INSERT INTO ai_system (name, owner, intended_use, lifecycle_stage, risk_tier, description,"
                " created_at, updated_at) VALUES ('credit-scoring', 'ops', 'x', 'deployed', 'limited', '',"
                " '2026-01-01 00:00:00', '2026-01-01 00:00:00')"
            )
        )
    with blank.reader() as uow:
        after = uow.systems.one("credit-scoring").model_dump(mode="json")
    with blank.engine.begin() as conn:  # logged as the register did at 0010
        append_legacy_audit(conn, "insert", "ai_system", "credit-scoring", None, after)
    blank.migrate()
    assert blank.verify_audit().ok  # plain SHA-256 entries, as before
    blank.audit_key = KEY
    with blank.unit_of_work("cli:ana") as uow:
        uow.systems.update(system.name, owner="model-risk")
    report = blank.verify_audit()
    assert report.ok and report.keyed_from == 2
    # Rewriting the legacy entry (plain hash recomputed) breaks its link to the first keyed entry.
    forged = {**rows(blank)[0], "actor": "mallory"}
    with blank.engine.connect() as conn, conn.begin():
        conn.execute(
            text("UPDATE audit_log SET actor = 'mallory', hash = :h WHERE seq = 1"),
            {"h": entry_hash({k: forged[k] for k in AuditEntry.model_fields})},
        )
    problem = blank.verify_audit().problem
    assert problem is not None and (problem.seq, problem.kind) == (2, "reordered")


def test_entries_committed_while_the_log_is_being_read_do_not_look_like_tampering(
    keyed: Register, monkeypatch: pytest.MonkeyPatch
) -> None:
    from connectors.register import verify

    write(keyed, 3)
    batches = verify._batches

    def interleaved(*args: Any, **kwargs: Any) -> Any:
        for i, row in enumerate(batches(*args, **kwargs)):
            if i == 1:
                write(keyed, 2)  # another process commits between two batches
            yield row

    monkeypatch.setattr(verify, "_batches", interleaved)
    report = keyed.verify_audit(batch=1)
    assert report.ok, report.problem
    assert report.entries == 4  # the state at the start of the check
